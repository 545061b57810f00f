//! The Azure ML SDK's workspace `config.json`, found and read as azure-ai-ml's
//! `MLClient.from_config` does (azure-sdk-for-python `sdk/ml/azure-ai-ml/azure/ai/ml/_ml_client.py`,
//! `from_config` and `_get_workspace_info`; `_file_utils/file_utils.py`,
//! `traverse_up_path_and_find_file`): each of `.azureml/config.json`, `.azureml/project.json`,
//! `aml_config/config.json`, `aml_config/project.json`, `config.json`, `project.json` in turn is
//! looked for in the start directory and up to 20 levels above it, and the first found wins. So
//! a `.azureml/config.json` anywhere up the tree beats a plain `config.json` next to you, as it
//! does for the SDK. The file names the workspace either by `Scope` (its ARM id) or by
//! `subscription_id`, `resource_group` and `workspace_name`.

use super::arm::WorkspaceRef;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Sub-directories searched, in the SDK's order (`""`: the directory itself).
const DIRECTORIES: [&str; 3] = [".azureml", "aml_config", ""];
/// File names searched within each.
const FILES: [&str; 2] = ["config.json", "project.json"];
/// Levels above the start directory searched, as the SDK's `num_levels=20`.
const LEVELS_UP: usize = 20;

/// The SDK config file that `from_config` would use when started in `start`.
pub fn find(start: &Path) -> Option<PathBuf> {
    DIRECTORIES
        .iter()
        .flat_map(|dir| FILES.iter().map(move |file| Path::new(dir).join(file)))
        .find_map(|relative| {
            start
                .ancestors()
                .take(LEVELS_UP + 1)
                .map(|d| d.join(&relative))
                .find(|p| p.is_file())
        })
}

/// Whether a config file that names no workspace was still meant as the SDK's: it stands in
/// `.azureml/` or `aml_config/`, or carries one of the SDK's keys. A `config.json` of some other
/// tool is none of these, and passing it over needs no word.
pub fn is_sdk_config(path: &Path, text: &str) -> bool {
    let in_sdk_dir = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == ".azureml" || d == "aml_config");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let has_sdk_key = serde_json::from_str::<Value>(text).is_ok_and(|v| {
        ["Scope", "subscription_id", "resource_group", "workspace_name"]
            .iter()
            .any(|k| v.get(k).is_some())
    });
    in_sdk_dir || has_sdk_key
}

/// The workspace a config file names.
pub fn parse(text: &str) -> Result<WorkspaceRef, String> {
    // The SDK reads it as utf-8-sig: a byte-order mark is allowed.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v: Value = serde_json::from_str(text).map_err(|_| "is not valid JSON".to_string())?;
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("has no {name}"))
    };
    if let Some(scope) = v.get("Scope").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        return WorkspaceRef::parse(scope).map_err(|e| format!("has a Scope that is not a workspace id: {e}"));
    }
    WorkspaceRef::from_parts(
        field("subscription_id")?,
        field("resource_group")?,
        field("workspace_name")?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "rg-ml", "workspace_name": "mlws01"}"#;

    fn write(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, CONFIG).unwrap();
    }

    #[test]
    fn searches_as_the_sdk_does_each_name_up_the_tree_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let deep = root.join("project/notebooks/a");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(&deep), None);
        write(&root.join("project/notebooks/a/project.json"));
        assert_eq!(find(&deep), Some(deep.join("project.json")));
        write(&root.join("project/notebooks/config.json"));
        assert_eq!(
            find(&deep),
            Some(root.join("project/notebooks/config.json")),
            "config.json before project.json"
        );
        write(&root.join("aml_config/project.json"));
        assert_eq!(
            find(&deep),
            Some(root.join("aml_config/project.json")),
            "aml_config/ before a plain file"
        );
        write(&root.join("project/.azureml/config.json"));
        assert_eq!(
            find(&deep),
            Some(root.join("project/.azureml/config.json")),
            ".azureml/ anywhere up the tree before the rest"
        );
    }

    #[test]
    fn looks_no_more_than_twenty_levels_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for level in 0..21 {
            deep.push(format!("l{level}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        write(&dir.path().join("l0/config.json"));
        assert_eq!(find(&deep), Some(dir.path().join("l0/config.json")), "20 levels up");
        std::fs::remove_file(dir.path().join("l0/config.json")).unwrap();
        write(&dir.path().join("config.json"));
        assert_eq!(find(&deep), None, "21 levels up is past the SDK's search");
    }

    #[test]
    fn only_a_config_meant_for_the_sdk_is_said_to_be_passed_over() {
        let plain = Path::new("/p/config.json");
        assert!(!is_sdk_config(plain, r#"{"port": 8080}"#), "another tool's config.json");
        assert!(!is_sdk_config(plain, "not json"));
        assert!(is_sdk_config(plain, r#"{"workspace_name": "w"}"#));
        assert!(is_sdk_config(plain, "\u{feff}{\"Scope\": \"/subscriptions/x\"}"));
        assert!(is_sdk_config(Path::new("/p/.azureml/config.json"), "{}"));
        assert!(is_sdk_config(Path::new("/p/aml_config/project.json"), "not json"));
    }

    #[test]
    fn reads_the_three_fields_or_the_scope() {
        let w = parse(CONFIG).unwrap();
        assert_eq!(w.name, "mlws01");
        assert!(w.id.starts_with("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/"));
        assert_eq!(
            parse(&format!("\u{feff}{CONFIG}")).unwrap(),
            w,
            "a byte-order mark is allowed"
        );
        let scoped = parse(
            r#"{"Scope": "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlws01"}"#,
        )
        .unwrap();
        assert_eq!(scoped, w);
        assert!(parse(r#"{"Scope": "/subscriptions/x"}"#).unwrap_err().contains("Scope"));
        assert!(parse("{}").unwrap_err().contains("subscription_id"));
        assert!(
            parse(r#"{"subscription_id":"s","resource_group":"g"}"#)
                .unwrap_err()
                .contains("workspace_name")
        );
        assert!(parse("nope").is_err());
    }
}
