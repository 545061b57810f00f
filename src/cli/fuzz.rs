//! Property tests of the two parsers that read user files: suites (`--suite-file`) and the
//! `--config` file. Whatever the bytes, they answer Ok or a typed error naming a line: never a
//! panic, never a hang; a suite that loads renders as well-formed JUnit XML. Bounded to a few hundred cases so `cargo test` stays quick; raise
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
    catalog.add_suite("fuzz.toml", "fuzz", text)?;
    junit_is_xml(&catalog);
    Ok(())
}

/// A suite that loads reaches the renderers: its flow ids, titles and suite name, as a report
/// of its flows would show them, must leave the JUnit output well-formed XML.
fn junit_is_xml(catalog: &Catalog) {
    let suite = catalog.suites.last().expect("the suite just added");
    let mut report = crate::report::test_support::sample_report();
    let template = report.flows[1].clone();
    report.flows = suite
        .flows
        .iter()
        .map(|f| crate::report::FlowReport {
            id: f.id.clone(),
            suite: suite.meta.name.clone(),
            title: f.title.clone(),
            message: format!("{}: {}", suite.meta.title, f.scenario),
            hint: Some(f.source.clone()),
            ..template.clone()
        })
        .collect();
    let junit = crate::report::render::junit::render(&report);
    crate::report::render::junit::tests::assert_well_formed(&junit, report.flows.len());
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

/// Titles are free text: any character, among them controls and the non-characters XML 1.0
/// forbids (a regex strategy never draws those).
fn hostile_title() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just('\u{fffe}'),
        Just('\u{ffff}'),
        Just('\u{fdd0}'),
        Just('\u{0}'),
        Just('\u{b}'),
        Just('\u{1b}'),
        Just('\u{9b}'),
        Just('\u{202e}'),
        Just('<'),
        Just('&'),
        any::<char>(),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(String::from_iter)
}

proptest! {
    // Each case loads the built-in catalog too: fewer cases keep `cargo test` quick.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_suite_with_any_titles_loads_and_renders_as_xml(
        suite_title in hostile_title(),
        flow_title in hostile_title(),
    ) {
        let quote = |t: &str| toml::Value::String(t.to_string()).to_string();
        let text = SUITE
            .replacen("title = \"test\"", &format!("title = {}", quote(&suite_title)), 1)
            .replacen("title = \"a\"", &format!("title = {}", quote(&flow_title)), 1)
            .replacen("scenario = \"s\"", &format!("scenario = {}", quote(&flow_title)), 1);
        prop_assert!(load_suite(&text).is_ok(), "{text}");
    }
}
