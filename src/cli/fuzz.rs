//! Property tests of the two parsers that read user files: suites (`--suite-file`) and the
//! `--config` file. Whatever the bytes, they answer Ok or a typed error naming a line: never a
//! panic, never a hang. Bounded to a few hundred cases so `cargo test` stays quick; raise
//! PROPTEST_CASES for a longer run.

use crate::cli::run_args;
use crate::cli::settings::RunConfig;
use crate::model::suite::{Catalog, SuiteError};
use proptest::prelude::*;

/// A small valid suite to mutate.
const SUITE: &str = r#"[suite]
name = "t"
title = "test"
description = "fuzz"

[[flow]]
id = "t.a"
title = "a"
direction = "outbound"
service_tag = "X"
required = true
scenario = "s"
source = "s"
hosts = ["{region}.api.azureml.ms"]
ports = [443, 80]
"#;

/// A small valid config file to mutate.
const CONFIG: &str = r#"cloud = "public"
region = "eastus"
workspace_id = "00000000-0000-0000-0000-000000000000"
suite = ["compute"]
timeout = 5
"#;

fn load_suite(text: &str) -> Result<(), SuiteError> {
    let mut catalog = Catalog::builtin().expect("the built-in catalog loads");
    catalog.add_suite("fuzz.toml", "fuzz", text)
}

fn load_config(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write the config");
    let path = path.to_str().expect("utf-8 temp path");
    let run = run_args(&["--no-imds", "--no-discovery", "--config", path]);
    RunConfig::from_args(run, &crate::env::host::HostFacts::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `base` with the bytes at `at..at + len` replaced by `insert` (positions wrap, on char edges).
fn mutate(base: &str, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = base.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    chars[..at]
        .iter()
        .chain(insert.chars().collect::<Vec<_>>().iter())
        .chain(&chars[end..])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_is_a_suite_or_a_located_error(text in "\\PC{0,400}") {
        if let Err(SuiteError::Invalid { line, .. }) = load_suite(&text) {
            prop_assert!(line >= 1);
        }
    }

    #[test]
    fn a_mutated_suite_is_a_suite_or_a_located_error(at in 0usize..600, len in 0usize..40, insert in "[ -~\\n\\[\\]{}\"=]{0,30}") {
        if let Err(SuiteError::Invalid { line, .. }) = load_suite(&mutate(SUITE, at, len, &insert)) {
            prop_assert!(line >= 1 && line <= SUITE.lines().count() + 30);
        }
    }

    #[test]
    fn a_mutated_config_file_is_settings_or_one_error_line(at in 0usize..200, len in 0usize..30, insert in "[ -~\\n\\[\\]\"=]{0,30}") {
        if let Err(message) = load_config(&mutate(CONFIG, at, len, &insert)) {
            prop_assert!(!message.trim().is_empty());
        }
    }
}
