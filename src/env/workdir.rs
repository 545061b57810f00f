//! Files around the working directory: the Azure ML SDK's workspace `config.json`, found as
//! azure-ai-ml's `MLClient.from_config` finds it (azure-sdk-for-python
//! `sdk/ml/azure-ai-ml/azure/ai/ml/_ml_client.py`, `from_config`; `_file_utils/file_utils.py`,
//! `traverse_up_path_and_find_file`): each of `.azureml/config.json`, `.azureml/project.json`,
//! `aml_config/config.json`, `aml_config/project.json`, `config.json`, `project.json` in turn is
//! looked for in the start directory and up to 20 levels above it, and the first found wins. So
//! a `.azureml/config.json` anywhere up the tree beats a plain `config.json` next to you, as it
//! does for the SDK. `discovery::sdk_config` judges what it says.

use std::path::{Path, PathBuf};

/// Sub-directories searched, in the SDK's order (`""`: the directory itself).
const DIRECTORIES: [&str; 3] = [".azureml", "aml_config", ""];
/// File names searched within each.
const FILES: [&str; 2] = ["config.json", "project.json"];
/// Levels above the start directory searched, as the SDK's `num_levels=20`.
const LEVELS_UP: usize = 20;

/// The SDK config file that `from_config` would use when started in `start`.
pub fn find_sdk_config(start: &Path) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{}").unwrap();
    }

    #[test]
    fn searches_as_the_sdk_does_each_name_up_the_tree_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let deep = root.join("project/notebooks/a");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_sdk_config(&deep), None);
        write(&root.join("project/notebooks/a/project.json"));
        assert_eq!(find_sdk_config(&deep), Some(deep.join("project.json")));
        write(&root.join("project/notebooks/config.json"));
        assert_eq!(
            find_sdk_config(&deep),
            Some(root.join("project/notebooks/config.json")),
            "config.json before project.json"
        );
        write(&root.join("aml_config/project.json"));
        assert_eq!(
            find_sdk_config(&deep),
            Some(root.join("aml_config/project.json")),
            "aml_config/ before a plain file"
        );
        write(&root.join("project/.azureml/config.json"));
        assert_eq!(
            find_sdk_config(&deep),
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
        assert_eq!(
            find_sdk_config(&deep),
            Some(dir.path().join("l0/config.json")),
            "20 levels up"
        );
        std::fs::remove_file(dir.path().join("l0/config.json")).unwrap();
        write(&dir.path().join("config.json"));
        assert_eq!(find_sdk_config(&deep), None, "21 levels up is past the SDK's search");
    }
}
