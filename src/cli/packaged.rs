//! The command lines and settings that ship in `packaging/` go through the real argument
//! parser and settings validation here, so a renamed flag or key breaks `cargo test`, not a
//! fleet's first boot.

use super::Cli;
use super::settings::RunConfig;
use clap::CommandFactory;
use std::collections::BTreeSet;

const MANIFESTS: [(&str, &str); 4] = [
    ("job.yaml", include_str!("../../packaging/kubernetes/job.yaml")),
    ("cronjob.yaml", include_str!("../../packaging/kubernetes/cronjob.yaml")),
    (
        "daemonset.yaml",
        include_str!("../../packaging/kubernetes/daemonset.yaml"),
    ),
    (
        "daemonset-hostnetwork.yaml",
        include_str!("../../packaging/kubernetes/daemonset-hostnetwork.yaml"),
    ),
];
const CONFIGMAP: &str = include_str!("../../packaging/kubernetes/configmap.yaml");
const SERVICE: &str = include_str!("../../packaging/systemd/amlprobe.service");
const CLOUD_INIT: &str = include_str!("../../packaging/cloud-init/amlprobe.yaml");

/// Every `args: [...]` list of a manifest (they are written as JSON flow sequences).
fn container_args(manifest: &str) -> Vec<Vec<String>> {
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("args:"))
        .map(|list| serde_json::from_str(list.trim()).expect("args is a JSON-style list"))
        .collect()
}

/// The words after the `amlprobe` binary in a shell command line.
fn words_after_binary(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.ends_with("/amlprobe"))
        .expect("the line runs amlprobe");
    words[at + 1..].iter().map(|w| (*w).to_string()).collect()
}

fn parses(argv: &[String]) -> Cli {
    super::parse_argv(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

#[test]
fn every_packaged_command_line_parses() {
    let mut seen = 0;
    for (file, manifest) in MANIFESTS {
        let lists = container_args(manifest);
        assert!(!lists.is_empty(), "{file} has no args");
        for args in lists {
            parses(&args);
            seen += 1;
        }
    }
    let exec = SERVICE
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has ExecStart");
    parses(&words_after_binary(exec));
    let runcmd = CLOUD_INIT
        .lines()
        .find(|l| l.trim_start().starts_with("/usr/local/bin/amlprobe run"))
        .expect("cloud-init runs amlprobe");
    parses(&words_after_binary(runcmd));
    assert_eq!(seen, 4);
}

/// Every `AMLPROBE_*` environment variable the binary reads.
fn known_environment() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for sub in Cli::command().get_subcommands() {
        for arg in sub.get_arguments() {
            if let Some(env) = arg.get_env() {
                names.insert(env.to_string_lossy().into_owned());
            }
        }
    }
    names
}

#[test]
fn every_configmap_key_is_a_variable_amlprobe_reads() {
    let known = known_environment();
    let keys: Vec<&str> = CONFIGMAP
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k))
        .filter(|k| k.starts_with("AMLPROBE_"))
        .collect();
    assert!(keys.len() >= 5, "{keys:?}");
    for key in keys {
        assert!(known.contains(key), "{key} is not read by amlprobe: {known:?}");
    }
}

#[test]
fn the_cloud_init_config_file_is_valid_settings() {
    let start = CLOUD_INIT
        .find("path: /etc/amlprobe/config.toml")
        .expect("cloud-init writes the config file");
    let block = &CLOUD_INIT[start..];
    let body: Vec<&str> = block
        .lines()
        .skip_while(|l| !l.trim().starts_with("content: |"))
        .skip(1)
        .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
        .map(|l| l.strip_prefix("      ").unwrap_or(""))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, body.join("\n")).unwrap();
    let run = super::run_args(&["--config", path.to_str().unwrap(), "--no-imds", "--no-discovery"]);
    let cfg = RunConfig::from_args(run, &crate::env::host::HostFacts::default())
        .unwrap_or_else(|e| panic!("the shipped config.toml: {e}"));
    assert_eq!(cfg.run.selection.context.region.as_deref(), Some("eastus"));
    assert_eq!(cfg.run.selection.suites, ["workspace", "compute", "images"]);
}
