//! The Azure ML SDK's workspace `config.json`, read as azure-ai-ml's `MLClient.from_config`
//! does (azure-sdk-for-python `sdk/ml/azure-ai-ml/azure/ai/ml/_ml_client.py`, `from_config` and
//! `_get_workspace_info`). `env::workdir` finds it as the SDK does; here it is judged. The file
//! names the workspace either by `Scope` (its ARM id) or by `subscription_id`, `resource_group`
//! and `workspace_name`.

use super::arm::WorkspaceRef;
use serde_json::Value;
use std::path::Path;

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
