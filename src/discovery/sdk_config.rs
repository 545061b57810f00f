//! The Azure ML SDK's workspace `config.json` (`subscription_id`, `resource_group`,
//! `workspace_name`), looked up as the SDK does: `./config.json`, `./.azureml/config.json`, then
//! the same in each parent directory.

use super::arm::WorkspaceRef;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The first SDK config file from `start` upward.
pub fn find(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        [dir.join("config.json"), dir.join(".azureml").join("config.json")]
            .into_iter()
            .find(|p| p.is_file())
    })
}

/// The workspace a config file names.
pub fn parse(text: &str) -> Result<WorkspaceRef, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| "is not valid JSON".to_string())?;
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("has no {name}"))
    };
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

    #[test]
    fn finds_the_nearest_config_upward() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("project/notebooks/a");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(dir.path().join("project/.azureml")).unwrap();
        std::fs::write(dir.path().join("project/.azureml/config.json"), CONFIG).unwrap();
        assert_eq!(find(&deep), Some(dir.path().join("project/.azureml/config.json")));
        std::fs::write(dir.path().join("project/notebooks/config.json"), CONFIG).unwrap();
        assert_eq!(find(&deep), Some(dir.path().join("project/notebooks/config.json")));
    }

    #[test]
    fn reads_the_three_fields() {
        let w = parse(CONFIG).unwrap();
        assert_eq!(w.name, "mlws01");
        assert!(w.id.starts_with("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/"));
        assert!(parse("{}").unwrap_err().contains("subscription_id"));
        assert!(
            parse(r#"{"subscription_id":"s","resource_group":"g"}"#)
                .unwrap_err()
                .contains("workspace_name")
        );
        assert!(parse("nope").is_err());
    }
}
