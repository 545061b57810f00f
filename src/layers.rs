//! The modules' dependency order, enforced (docs/architecture.md): a module may use only the
//! modules of lower layers (unit-test modules aside), so data flows one way and a new import
//! that runs back up, or a cycle, fails `cargo test` instead of slowly undoing the layout. The
//! engine observes and never names a reason code: those are `verdict/`'s alone.

use std::path::Path;

/// Lowest first. Modules in one layer don't use each other.
const LAYERS: &[&[&str]] = &[
    &["files", "redact", "wire"],
    &["sanitize"],
    &["model"],
    &["plan"],
    &["report"],
    &["engine", "analyze"],
    &["verdict"],
    &["http_client"],
    &["env", "discovery"],
    // Attribution reuses discovery's ARM access (its token type and client), so it sits just
    // above it, at discovery's stage of the run.
    &["attribution"],
    &["cli"],
    &["runner"],
    &["cmd"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules a source text names through `crate::`.
fn used_modules(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first segment of each top-level item.
            Some(group) => {
                let mut depth = 0;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => return true,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        false
                    })
                    .map_or(group.len(), |(j, _)| j);
                let mut items = Vec::new();
                let (mut depth, mut start) = (0, 0);
                for (j, c) in group[..end].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(&group[start..j]);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                items.push(&group[start..end]);
                items.into_iter().map(str::trim).collect()
            }
            None => vec![rest],
        };
        for name in names {
            let module: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !module.is_empty() {
                used.push(module);
            }
        }
    }
    used
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if ["lib", "main", "layers"].contains(&module) {
            continue;
        }
        let own = layer(module).unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests may reach up for fixtures (a sanitiser test renders every format); the
        // order binds the code they test. They sit at the end of each file.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for used in used_modules(code) {
            if used == module {
                continue;
            }
            match layer(&used) {
                Some(l) if l < own => {}
                _ => wrong.push(format!("{} uses crate::{used}", rel.display())),
            }
        }
        checked += 1;
    }
    assert!(checked > 60, "only {checked} files checked");
    assert!(
        wrong.is_empty(),
        "imports that run back up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_engine_observes_and_never_names_a_reason_code() {
    // docs/architecture.md: every reason code is decided in verdict/. A probe that picked a code
    // itself would bring back a second place to look.
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine"), &mut files);
    assert!(files.len() >= 10, "{} engine sources found", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("ReasonCode"), "{} names a ReasonCode", path.display());
    }
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let text = "use crate::{cli::progress, plan, env::{a, b}};\nlet x = crate::files::read(p);";
    assert_eq!(used_modules(text), ["cli", "plan", "env", "files"]);
}
