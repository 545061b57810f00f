//! The facts about the user's workspace that suites are templated with, and their validation.
//! Validation follows Azure's naming rules so a typo is caught before any probe is sent.

use crate::model::facts::{self, Fact, FactValue};
use crate::model::values;
use crate::sanitize;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The Azure cloud the workspace lives in; selects host names and domain suffixes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Azure public cloud.
    #[default]
    Public,
    /// Azure US Government.
    Usgov,
    /// Azure China (21Vianet).
    China,
}

impl Cloud {
    /// Every cloud.
    pub const ALL: [Cloud; 3] = [Cloud::Public, Cloud::Usgov, Cloud::China];

    /// The lowercase name used in flags and suite files.
    pub fn as_str(self) -> &'static str {
        values::CLOUDS.names[self as usize]
    }

    /// The cloud named `name` (as [`Cloud::as_str`] gives it).
    pub fn from_name(name: &str) -> Option<Cloud> {
        values::CLOUDS.position(name).map(|i| Cloud::ALL[i])
    }
}

/// A workspace-owned resource that is normally reached through a private endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// The workspace itself (API, notebooks, compute instance names).
    Workspace,
    /// The default storage account.
    Storage,
    /// The workspace key vault.
    KeyVault,
    /// The workspace container registry.
    ContainerRegistry,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 4] = [
        Resource::Workspace,
        Resource::Storage,
        Resource::KeyVault,
        Resource::ContainerRegistry,
    ];

    /// The resource named `name` (snake_case, as flags, the config file and reports write it).
    pub fn from_name(name: &str) -> Option<Resource> {
        values::RESOURCES.position(name).map(|i| Resource::ALL[i])
    }

    /// What to call it in a sentence ("the container registry's private endpoint").
    pub fn label(self) -> &'static str {
        match self {
            Resource::Workspace => "the workspace",
            Resource::Storage => "the storage account",
            Resource::KeyVault => "the key vault",
            Resource::ContainerRegistry => "the container registry",
        }
    }
}

/// Where a context value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    /// A command-line flag or its `AMLPROBE_*` environment variable.
    FlagOrEnv,
    /// The `--config` file.
    Config,
    /// Nothing gave it: the built-in default.
    Default,
    /// Azure instance metadata.
    Imds,
    /// Azure Resource Manager (discovery).
    Arm,
    /// The variables an Azure ML compute instance or job sets (`AZUREML_ARM_*`,
    /// `MLFLOW_TRACKING_URI`), which named the workspace.
    AzureMlEnv,
}

impl ValueSource {
    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueSource::FlagOrEnv => "flag_or_env",
            ValueSource::Config => "config",
            ValueSource::Default => "default",
            ValueSource::Imds => "imds",
            ValueSource::Arm => "arm",
            ValueSource::AzureMlEnv => "azure_ml_env",
        }
    }
}

/// Validated workspace facts. Every field is optional: flows that need a missing one are skipped.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WorkspaceContext {
    /// Azure cloud.
    pub cloud: Cloud,
    /// Workspace region, lower-case (e.g. `eastus`).
    pub region: Option<String>,
    /// Workspace GUID, lower-case.
    pub workspace_id: Option<String>,
    /// Workspace name.
    pub workspace_name: Option<String>,
    /// Default storage account name.
    pub storage_account: Option<String>,
    /// Key vault name.
    pub key_vault: Option<String>,
    /// Container registry name.
    pub container_registry: Option<String>,
    /// Compute instance name.
    pub compute_instance: Option<String>,
    /// The notebook host's first label as Azure actually named it (overrides the derived one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notebook_label: Option<String>,
    /// Domain of the per-instance compute instance names (overrides the cloud's documented one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances_domain: Option<String>,
    /// Location of the registry (or geo-replica) whose data endpoint is probed; the workspace
    /// region when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_registry_region: Option<String>,
    /// Location of the storage account (ARM), for its regional service tag; the workspace
    /// region when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_region: Option<String>,
    /// Location of the key vault (ARM), for its regional service tag; the workspace region when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault_region: Option<String>,
    /// This machine's own region (IMDS `compute.location`): not the workspace's, which may be
    /// another (a hub jump box, an AKS cluster elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_region: Option<String>,
    /// The facts flows depend on (`when`), each with where it came from; the report lists
    /// every fact, assumed ones as `default`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facts: BTreeMap<Fact, FactValue>,
    /// Facts amlprobe derived but is unsure of, with the flag that settles each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Resources reached over public endpoints in this deployment (relaxes `expect = "private"`).
    pub public_resources: BTreeSet<Resource>,
    /// Where each value came from, by field name.
    pub sources: BTreeMap<String, ValueSource>,
    /// Which identity read the workspace from ARM, when discovery did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_source: Option<String>,
}

/// A context value that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct InvalidValue {
    /// The flag the value came from, without dashes.
    pub flag: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl From<crate::files::InputError> for InvalidValue {
    fn from(e: crate::files::InputError) -> Self {
        InvalidValue {
            flag: e.flag,
            message: format!("{}: {}", e.path.display(), e.source),
        }
    }
}

fn invalid(flag: &'static str, message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        flag,
        message: message.into(),
    }
}

/// `'<value, quoted safely>' is not <what>`, for `--flag`.
fn not_a(flag: &'static str, value: &str, what: &str) -> InvalidValue {
    invalid(flag, format!("'{}' is not {what}", sanitize::echo(value)))
}

/// Names a user might paste as a host name (or a connection string) instead of the bare
/// resource name.
fn reject_fqdn(flag: &'static str, value: &str, what: &str) -> Result<(), InvalidValue> {
    if value.contains(['=', ';']) {
        return Err(invalid(
            flag,
            format!(
                "'{}' looks like a connection string; give the {what} only",
                sanitize::echo(value)
            ),
        ));
    }
    if value.contains('.') {
        let first = value.split('.').next().unwrap_or_default();
        return Err(invalid(
            flag,
            format!(
                "'{}' looks like a host name; give the {what} only (e.g. '{}')",
                sanitize::echo(value),
                sanitize::echo(first)
            ),
        ));
    }
    Ok(())
}

/// A workspace GUID (8-4-4-4-12 hex digits), returned lower-case.
pub fn validate_workspace_id(value: &str) -> Result<String, InvalidValue> {
    let groups: Vec<&str> = value.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(not_a(
            "workspace-id",
            value,
            "a GUID (expected 8-4-4-4-12 hex digits, the workspace's workspaceId)",
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// An Azure region's programmatic name such as `eastus` or `usgovvirginia`, returned lower-case.
pub fn validate_region(value: &str) -> Result<String, InvalidValue> {
    region_named("region", value)
}

/// `--container-registry-region`: the registry's (or geo-replica's) region, same rules as `--region`.
pub fn validate_container_registry_region(value: &str) -> Result<String, InvalidValue> {
    region_named("container-registry-region", value)
}

fn region_named(flag: &'static str, value: &str) -> Result<String, InvalidValue> {
    let v = value.to_ascii_lowercase();
    if v.contains(' ') {
        return Err(invalid(
            flag,
            format!(
                "'{value}' has spaces; use the programmatic name (e.g. 'eastus', not 'East US')",
                value = sanitize::echo(value)
            ),
        ));
    }
    if !(2..=40).contains(&v.len())
        || !v.starts_with(|c: char| c.is_ascii_lowercase())
        || !v.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(not_a(
            flag,
            value,
            "an Azure region name (letters and digits, e.g. 'westeurope')",
        ));
    }
    Ok(v)
}

/// `--instances-domain`: a DNS domain such as `instances.azureml.ms`, returned lower-case.
pub fn validate_instances_domain(value: &str) -> Result<String, InvalidValue> {
    let v = value.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if v.len() > 253 || v.split('.').count() < 2 || !v.split('.').all(label_ok) {
        return Err(not_a(
            "instances-domain",
            value,
            "a DNS domain (e.g. 'instances.azureml.ms'; no scheme, wildcard or instance name)",
        ));
    }
    Ok(v)
}

/// How one kind of Azure resource name may look: each rule is one row below, so the rules can be
/// compared at a glance and one check applies them all.
struct NameRule {
    /// The flag, without dashes.
    flag: &'static str,
    /// What to call the bare name when a host name or connection string is pasted instead
    /// (`None`: not checked).
    bare: Option<&'static str>,
    /// Allowed lengths.
    len: std::ops::RangeInclusive<usize>,
    /// Allowed first character.
    first: fn(char) -> bool,
    /// Allowed characters.
    chars: fn(char) -> bool,
    /// Whether a hyphen may end the name.
    may_end_in_hyphen: bool,
    /// Whether two hyphens may stand together.
    may_double_hyphen: bool,
    /// Whether the name is returned lower-case (DNS is case-insensitive; Azure shows it so).
    lower_case: bool,
    /// What the name should have been, for the error.
    what: &'static str,
}

fn alphanumeric(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn letter(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn alphanumeric_or_hyphen(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

const WORKSPACE_NAME: NameRule = NameRule {
    flag: "workspace-name",
    bare: None,
    len: 3..=33,
    first: alphanumeric,
    chars: |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    may_end_in_hyphen: true,
    may_double_hyphen: true,
    lower_case: false,
    what: "a workspace name (3-33 letters, digits, '-' or '_', starting with a letter or digit)",
};

const STORAGE_ACCOUNT: NameRule = NameRule {
    flag: "storage-account",
    bare: Some("account name"),
    len: 3..=24,
    first: alphanumeric,
    chars: |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    may_end_in_hyphen: true,
    may_double_hyphen: true,
    lower_case: false,
    what: "a storage account name (3-24 lower-case letters and digits)",
};

const KEY_VAULT: NameRule = NameRule {
    flag: "key-vault",
    bare: Some("vault name"),
    len: 3..=24,
    first: letter,
    chars: alphanumeric_or_hyphen,
    may_end_in_hyphen: false,
    may_double_hyphen: false,
    lower_case: true,
    what: "a key vault name (3-24 letters, digits and single hyphens, starting with a letter)",
};

const CONTAINER_REGISTRY: NameRule = NameRule {
    flag: "container-registry",
    bare: Some("registry name"),
    len: 5..=50,
    first: alphanumeric,
    chars: alphanumeric,
    may_end_in_hyphen: true,
    may_double_hyphen: true,
    lower_case: true,
    what: "a container registry name (5-50 letters and digits)",
};

const COMPUTE_INSTANCE: NameRule = NameRule {
    flag: "compute-instance",
    bare: Some("instance name"),
    len: 3..=24,
    first: letter,
    chars: alphanumeric_or_hyphen,
    may_end_in_hyphen: false,
    may_double_hyphen: true,
    lower_case: true,
    what: "a compute instance name (3-24 letters, digits and hyphens, starting with a letter)",
};

const NOTEBOOK_LABEL: NameRule = NameRule {
    flag: "notebook-label",
    bare: Some("first label of the notebook host"),
    len: 1..=63,
    first: alphanumeric,
    chars: alphanumeric_or_hyphen,
    may_end_in_hyphen: false,
    may_double_hyphen: true,
    lower_case: true,
    what: "one DNS label (1-63 letters, digits and inner hyphens)",
};

impl NameRule {
    fn check(&self, value: &str) -> Result<String, InvalidValue> {
        if let Some(bare) = self.bare {
            reject_fqdn(self.flag, value, bare)?;
        }
        let ok = self.len.contains(&value.len())
            && value.starts_with(self.first)
            && value.chars().all(self.chars)
            && (self.may_end_in_hyphen || !value.ends_with('-'))
            && (self.may_double_hyphen || !value.contains("--"));
        if !ok {
            return Err(not_a(self.flag, value, self.what));
        }
        Ok(if self.lower_case {
            value.to_ascii_lowercase()
        } else {
            value.to_string()
        })
    }
}

/// A workspace name: 3-33 characters, letters, digits, `-` and `_`, starting with a letter or digit.
pub fn validate_workspace_name(value: &str) -> Result<String, InvalidValue> {
    WORKSPACE_NAME.check(value)
}

/// A storage account name: 3-24 lower-case letters and digits.
pub fn validate_storage_account(value: &str) -> Result<String, InvalidValue> {
    STORAGE_ACCOUNT.check(value)
}

/// A key vault name: 3-24 letters, digits and single hyphens, starting with a letter.
pub fn validate_key_vault(value: &str) -> Result<String, InvalidValue> {
    KEY_VAULT.check(value)
}

/// A container registry name: 5-50 letters and digits, returned lower-case (as in its login server).
pub fn validate_container_registry(value: &str) -> Result<String, InvalidValue> {
    CONTAINER_REGISTRY.check(value)
}

/// A compute instance name: 3-24 letters, digits and hyphens, starting with a letter.
pub fn validate_compute_instance(value: &str) -> Result<String, InvalidValue> {
    COMPUTE_INSTANCE.check(value)
}

/// Validates `--notebook-label`: one lower-case DNS label, as in `ml-<name>-<region>-<id>`.
pub fn validate_notebook_label(value: &str) -> Result<String, InvalidValue> {
    NOTEBOOK_LABEL.check(value)
}

impl WorkspaceContext {
    /// The value of `fact`: what a source told, else what the rest of the context implies.
    pub fn fact(&self, fact: Fact) -> FactValue {
        self.facts
            .get(&fact)
            .cloned()
            .unwrap_or_else(|| facts::assumed(fact, self))
    }

    /// Records every fact no source told as assumed, so the report shows each one's basis.
    pub fn settle_facts(&mut self) {
        for fact in Fact::ALL {
            let value = self.fact(fact);
            self.facts.insert(fact, value);
        }
    }

    /// `ml-<workspace name, truncated>-<region>-<workspace id>`, at most 63 characters (one DNS
    /// label), as Azure names the workspace's notebook host; `--notebook-label` wins, because
    /// Azure's truncation of long names is not documented.
    pub fn notebook_label(&self) -> Option<String> {
        if let Some(label) = &self.notebook_label {
            return Some(label.clone());
        }
        let (name, region, id) = (
            self.workspace_name.as_ref()?,
            self.region.as_ref()?,
            self.workspace_id.as_ref()?,
        );
        let name: String = name.to_ascii_lowercase().chars().take(name_room(region, id)).collect();
        Some(format!("ml-{name}-{region}-{id}"))
    }

    /// Why the derived notebook label may not be the host Azure created: the workspace name has
    /// an `_` (not valid in a host name, and Azure's replacement is not documented) or was
    /// truncated (Azure's rule is not documented exactly; the docs' own US Gov example is cut at
    /// 62 characters, not 63). `None` with `--notebook-label`, or when nothing was derived.
    pub fn notebook_label_warnings(&self) -> Vec<String> {
        let (None, Some(name), Some(region), Some(id)) = (
            &self.notebook_label,
            &self.workspace_name,
            &self.region,
            &self.workspace_id,
        ) else {
            return Vec::new();
        };
        let mut doubts = Vec::new();
        if name.contains('_') {
            doubts.push("the workspace name has '_', which a host name cannot contain");
        }
        if name.len() > name_room(region, id) {
            doubts.push("the workspace name was truncated to fit 63 characters, and Azure's truncation rule is not documented exactly");
        }
        if doubts.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "notebook host label derived as '{}' may not be the one Azure created ({}); pass --notebook-label with the first label of the notebooks FQDN your workspace private endpoint lists",
            self.notebook_label().unwrap_or_default(),
            doubts.join("; ")
        )]
    }
}

/// Characters left for the workspace name in `ml-<name>-<region>-<id>` within one DNS label.
fn name_room(region: &str, id: &str) -> usize {
    63usize.saturating_sub("ml-".len() + 1 + region.len() + 1 + id.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_id_must_be_a_guid() {
        assert_eq!(
            validate_workspace_id("FB7E20A0-8891-458B-B969-55DDB3382F51").unwrap(),
            "fb7e20a0-8891-458b-b969-55ddb3382f51"
        );
        for bad in [
            "",
            "fb7e20a0",
            "fb7e20a0-8891-458b-b969-55ddb3382f5",
            "zb7e20a0-8891-458b-b969-55ddb3382f51",
        ] {
            let e = validate_workspace_id(bad).unwrap_err();
            assert_eq!(e.flag, "workspace-id");
        }
    }

    #[test]
    fn names_follow_azure_rules() {
        assert!(validate_storage_account("mystorage01").is_ok());
        assert!(validate_storage_account("My_Storage").is_err());
        let e = validate_storage_account("mystorage.blob.core.windows.net").unwrap_err();
        assert!(e.message.contains("host name"), "{e}");
        assert!(validate_key_vault("kv-ml-01").is_ok());
        assert!(validate_key_vault("1kv").is_err());
        assert!(validate_key_vault("kv--x").is_err());
        assert!(validate_container_registry("MyRegistry1").unwrap() == "myregistry1");
        assert!(validate_container_registry("acr").is_err());
        assert!(validate_compute_instance("ci-alice").is_ok());
        assert!(validate_compute_instance("ci_alice").is_err());
        assert!(validate_workspace_name("my-ws_1").is_ok());
        assert!(validate_workspace_name("-ws").is_err());
        assert_eq!(validate_region("EastUS").unwrap(), "eastus");
        assert!(validate_region("East US").unwrap_err().message.contains("programmatic"));
    }

    #[test]
    fn error_names_the_flag() {
        let e = validate_storage_account("BAD").unwrap_err();
        assert!(e.to_string().starts_with("--storage-account: "), "{e}");
    }

    #[test]
    fn notebook_label_is_one_dns_label() {
        let ctx = WorkspaceContext {
            region: Some("eastus".into()),
            workspace_id: Some("fb7e20a0-8891-458b-b969-55ddb3382f51".into()),
            workspace_name: Some("MyWorkspace".into()),
            ..Default::default()
        };
        assert_eq!(
            ctx.notebook_label().unwrap(),
            "ml-myworkspace-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51"
        );
        let long = WorkspaceContext {
            workspace_name: Some("a".repeat(33)),
            ..ctx
        };
        assert_eq!(long.notebook_label().unwrap().len(), 63);
        let given = WorkspaceContext {
            notebook_label: Some("ml-given-eastus-x".into()),
            ..WorkspaceContext::default()
        };
        assert_eq!(given.notebook_label().unwrap(), "ml-given-eastus-x");
        assert_eq!(validate_notebook_label("ML-Ws-EastUS-1").unwrap(), "ml-ws-eastus-1");
        for bad in ["-x", "a.b", &"a".repeat(64), "a_b"] {
            assert!(
                validate_notebook_label(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("--notebook-label: "),
                "{bad}"
            );
        }
    }

    #[test]
    fn domains_and_registry_regions_are_checked() {
        assert_eq!(
            validate_instances_domain("Instances.AzureML.ms.").unwrap(),
            "instances.azureml.ms"
        );
        for bad in [
            "https://instances.azureml.ms",
            "*.instances.azureml.ms",
            "azureml",
            "a..b",
            "-x.ms",
        ] {
            let e = validate_instances_domain(bad).unwrap_err().to_string();
            assert!(e.starts_with("--instances-domain: "), "{bad}: {e}");
        }
        assert_eq!(validate_container_registry_region("WestEurope").unwrap(), "westeurope");
        let e = validate_container_registry_region("West Europe")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--container-registry-region: "), "{e}");
    }

    #[test]
    fn uncertain_notebook_labels_are_flagged() {
        let base = WorkspaceContext {
            region: Some("eastus".into()),
            workspace_id: Some("fb7e20a0-8891-458b-b969-55ddb3382f51".into()),
            workspace_name: Some("myworkspace".into()),
            ..Default::default()
        };
        assert!(
            base.notebook_label_warnings().is_empty(),
            "a plain short name is certain"
        );
        let underscore = WorkspaceContext {
            workspace_name: Some("my_ws".into()),
            ..base.clone()
        };
        let w = underscore.notebook_label_warnings();
        assert!(
            w.len() == 1 && w[0].contains("'_'") && w[0].contains("--notebook-label"),
            "{w:?}"
        );
        let long = WorkspaceContext {
            workspace_name: Some("a".repeat(33)),
            ..base.clone()
        };
        let w = long.notebook_label_warnings();
        assert!(
            w.len() == 1 && w[0].contains("truncated") && w[0].contains("--notebook-label"),
            "{w:?}"
        );
        let given = WorkspaceContext {
            notebook_label: Some("ml-my-ws-eastus-x".into()),
            ..underscore
        };
        assert!(
            given.notebook_label_warnings().is_empty(),
            "--notebook-label settles it"
        );
    }
}
