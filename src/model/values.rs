//! Every context value, declared once: one row each, with how it is given (flag, environment
//! variable, config key, help), how a given value is checked, which template variables it
//! provides, and what else may learn it (ARM, IMDS, an Azure ML compute's variables). From these
//! rows come the command line and the config file (`cli`), the template lookup
//! ([`WorkspaceContext::variable`], used by `plan`), the suite check (`model::suite`), discovery's
//! fill (`discovery::apply`) and the keys of `context.sources`. Adding a context value is one
//! row, a field of [`WorkspaceContext`] and its tests.

use crate::model::context::{self, InvalidValue, WorkspaceContext};
use crate::model::setting::{Choices, Kind, Setting};

/// One context value.
#[derive(Debug)]
pub struct ContextValue {
    /// Its field in [`WorkspaceContext`] and its key in `context.sources`.
    pub key: &'static str,
    /// How it is given on the command line, in the environment and in `--config` (`None`:
    /// it is only learnt, never given).
    pub setting: Option<Setting>,
    /// Where it lands in the context, and how a given value is checked.
    pub slot: Slot,
    /// The template variables it provides.
    pub variables: &'static [Variable],
    /// What else tells it when nothing gave it, each recorded as the value's source.
    pub learnt_from: &'static [Learnt],
}

/// Where a context value lands.
#[derive(Debug)]
pub enum Slot {
    /// A name, id, region or domain, checked (and normalised) by `validate`; blank is absent.
    Text {
        /// The field.
        field: fn(&mut WorkspaceContext) -> &mut Option<String>,
        /// The check, whose error names the flag.
        validate: fn(&str) -> Result<String, InvalidValue>,
    },
    /// [`WorkspaceContext::cloud`]: always set, `default` when nothing gave it.
    Cloud,
    /// [`WorkspaceContext::public_resources`].
    PublicResources,
    /// [`WorkspaceContext::facts`], each fact with its own source.
    Facts,
}

/// A template variable (`{name}` in suite files) and how a context gives it.
#[derive(Debug)]
pub struct Variable {
    /// The name in templates.
    pub name: &'static str,
    /// Its value in a context (`None`: not known in this run).
    pub read: fn(&WorkspaceContext) -> Option<String>,
    /// What would give it, for a flow skipped without it (`missing_context`).
    pub given_by: &'static str,
    /// Without a value it is the cloud's (`probes/clouds.toml`), not missing: the context only
    /// overrides it.
    pub overrides_cloud: bool,
}

/// A source that may tell a context value nothing gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learnt {
    /// ARM, through discovery.
    Arm(ArmValue),
    /// Instance metadata.
    Imds,
    /// The variables an Azure ML compute sets, which named the workspace.
    AzureMlEnv,
}

/// What ARM tells, as discovery reads it (`discovery::arm_value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmValue {
    /// The workspace's `location`.
    WorkspaceLocation,
    /// The workspace's `workspaceId`.
    WorkspaceId,
    /// The workspace's name.
    WorkspaceName,
    /// The name of its `storageAccount`.
    StorageAccount,
    /// The name of its `keyVault`.
    KeyVault,
    /// The name of its `containerRegistry`.
    ContainerRegistry,
    /// The container registry's `location`.
    RegistryLocation,
    /// The storage account's `location`.
    StorageLocation,
    /// The key vault's `location`.
    KeyVaultLocation,
    /// The domain of the compute instance's own endpoint.
    InstancesDomain,
    /// The first label of the workspace's `notebookInfo.fqdn`.
    NotebookLabel,
    /// The resources reached without a private endpoint (public network access, no approved
    /// connection).
    PublicAccess,
}

/// The cloud choices, in [`context::Cloud::ALL`] order.
pub const CLOUDS: Choices = Choices {
    type_name: "Cloud",
    names: &["public", "usgov", "china"],
    help: &["Azure public cloud", "Azure US Government", "Azure China (21Vianet)"],
};

/// The resource choices of `--public-resource`, in [`context::Resource::ALL`] order.
pub const RESOURCES: Choices = Choices {
    type_name: "Resource",
    names: &["workspace", "storage", "key_vault", "container_registry"],
    help: &[
        "The workspace itself (API, notebooks, compute instance names)",
        "The default storage account",
        "The workspace key vault",
        "The workspace container registry",
    ],
};

/// A value given as text.
const fn text(
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    value_name: &'static str,
    help: &'static str,
) -> Setting {
    Setting::new(key, flag, env, value_name, help, Kind::Text)
}

/// The value of a field, or else the workspace region.
fn or_region(own: Option<&String>, ctx: &WorkspaceContext) -> Option<String> {
    own.or(ctx.region.as_ref()).cloned()
}

/// Every context value, in `--help` order (the learnt-only ones where their variables belong).
pub const VALUES: &[ContextValue] = &[
    ContextValue {
        key: "cloud",
        setting: Some(Setting::new(
            "cloud",
            "cloud",
            "AMLPROBE_CLOUD",
            "CLOUD",
            "Azure cloud of the workspace [default: public]",
            Kind::Choice(&CLOUDS),
        )),
        slot: Slot::Cloud,
        variables: &[],
        learnt_from: &[Learnt::Imds],
    },
    ContextValue {
        key: "region",
        setting: Some(text(
            "region",
            "region",
            "AMLPROBE_REGION",
            "REGION",
            "Workspace region, e.g. eastus",
        )),
        slot: Slot::Text {
            field: |c| &mut c.region,
            validate: context::validate_region,
        },
        variables: &[Variable {
            name: "region",
            read: |c| c.region.clone(),
            given_by: "--region",
            overrides_cloud: false,
        }],
        // IMDS: this machine's region stands in when nothing else named one (runner).
        learnt_from: &[Learnt::Arm(ArmValue::WorkspaceLocation), Learnt::Imds],
    },
    ContextValue {
        key: "workspace_id",
        setting: Some(text(
            "workspace_id",
            "workspace-id",
            "AMLPROBE_WORKSPACE_ID",
            "GUID",
            "Workspace id (GUID; the workspaceId property, not the ARM resource id)",
        )),
        slot: Slot::Text {
            field: |c| &mut c.workspace_id,
            validate: context::validate_workspace_id,
        },
        variables: &[Variable {
            name: "workspace_id",
            read: |c| c.workspace_id.clone(),
            given_by: "--workspace-id",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::WorkspaceId)],
    },
    ContextValue {
        key: "workspace_name",
        setting: Some(text(
            "workspace_name",
            "workspace-name",
            "AMLPROBE_WORKSPACE_NAME",
            "NAME",
            "Workspace name",
        )),
        slot: Slot::Text {
            field: |c| &mut c.workspace_name,
            validate: context::validate_workspace_name,
        },
        variables: &[Variable {
            name: "workspace_name",
            read: |c| c.workspace_name.clone(),
            given_by: "--workspace-name",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::WorkspaceName), Learnt::AzureMlEnv],
    },
    ContextValue {
        key: "storage_account",
        setting: Some(text(
            "storage_account",
            "storage-account",
            "AMLPROBE_STORAGE_ACCOUNT",
            "NAME",
            "Default storage account name of the workspace",
        )),
        slot: Slot::Text {
            field: |c| &mut c.storage_account,
            validate: context::validate_storage_account,
        },
        variables: &[Variable {
            name: "storage_account",
            read: |c| c.storage_account.clone(),
            given_by: "--storage-account",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::StorageAccount)],
    },
    ContextValue {
        key: "key_vault",
        setting: Some(text(
            "key_vault",
            "key-vault",
            "AMLPROBE_KEY_VAULT",
            "NAME",
            "Key vault name of the workspace",
        )),
        slot: Slot::Text {
            field: |c| &mut c.key_vault,
            validate: context::validate_key_vault,
        },
        variables: &[Variable {
            name: "key_vault",
            read: |c| c.key_vault.clone(),
            given_by: "--key-vault",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::KeyVault)],
    },
    ContextValue {
        key: "container_registry",
        setting: Some(text(
            "container_registry",
            "container-registry",
            "AMLPROBE_CONTAINER_REGISTRY",
            "NAME",
            "Container registry name of the workspace",
        )),
        slot: Slot::Text {
            field: |c| &mut c.container_registry,
            validate: context::validate_container_registry,
        },
        variables: &[Variable {
            name: "container_registry",
            read: |c| c.container_registry.clone(),
            given_by: "--container-registry",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::ContainerRegistry)],
    },
    ContextValue {
        key: "container_registry_region",
        setting: Some(text(
            "container_registry_region",
            "container-registry-region",
            "AMLPROBE_CONTAINER_REGISTRY_REGION",
            "REGION",
            "Region of the container registry (or the geo-replica this VNet pulls from), for its `<registry>.<region>.data` endpoint [default: --region]",
        )),
        slot: Slot::Text {
            field: |c| &mut c.container_registry_region,
            validate: context::validate_container_registry_region,
        },
        variables: &[Variable {
            name: "container_registry_region",
            read: |c| or_region(c.container_registry_region.as_ref(), c),
            given_by: "--container-registry-region, or --region",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::RegistryLocation)],
    },
    ContextValue {
        key: "storage_region",
        setting: None,
        slot: Slot::Text {
            field: |c| &mut c.storage_region,
            validate: context::validate_region,
        },
        variables: &[Variable {
            name: "storage_region",
            read: |c| or_region(c.storage_region.as_ref(), c),
            given_by: "--region",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::StorageLocation)],
    },
    ContextValue {
        key: "key_vault_region",
        setting: None,
        slot: Slot::Text {
            field: |c| &mut c.key_vault_region,
            validate: context::validate_region,
        },
        variables: &[Variable {
            name: "key_vault_region",
            read: |c| or_region(c.key_vault_region.as_ref(), c),
            given_by: "--region",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::KeyVaultLocation)],
    },
    ContextValue {
        key: "machine_region",
        setting: None,
        slot: Slot::Text {
            field: |c| &mut c.machine_region,
            validate: context::validate_region,
        },
        variables: &[Variable {
            name: "machine_region",
            read: |c| c.machine_region.clone(),
            given_by: "IMDS (on an Azure VM)",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Imds],
    },
    ContextValue {
        key: "compute_instance",
        setting: Some(text(
            "compute_instance",
            "compute-instance",
            "AMLPROBE_COMPUTE_INSTANCE",
            "NAME",
            "Compute instance name",
        )),
        slot: Slot::Text {
            field: |c| &mut c.compute_instance,
            validate: context::validate_compute_instance,
        },
        variables: &[Variable {
            name: "compute_instance",
            read: |c| c.compute_instance.clone(),
            given_by: "--compute-instance",
            overrides_cloud: false,
        }],
        learnt_from: &[],
    },
    ContextValue {
        key: "instances_domain",
        setting: Some(text(
            "instances_domain",
            "instances-domain",
            "AMLPROBE_INSTANCES_DOMAIN",
            "DOMAIN",
            "Domain of the compute instance names (`<instance>.<region>.<domain>`), when your private endpoint lists another one than the cloud's documented default",
        )),
        slot: Slot::Text {
            field: |c| &mut c.instances_domain,
            validate: context::validate_instances_domain,
        },
        // An override settles the domain: the documented form and the older one alike.
        variables: &[
            Variable {
                name: "instances_domain",
                read: |c| c.instances_domain.clone(),
                given_by: "--instances-domain",
                overrides_cloud: true,
            },
            Variable {
                name: "instances_domain_alt",
                read: |c| c.instances_domain.clone(),
                given_by: "--instances-domain",
                overrides_cloud: true,
            },
        ],
        learnt_from: &[Learnt::Arm(ArmValue::InstancesDomain)],
    },
    ContextValue {
        key: "notebook_label",
        setting: Some(text(
            "notebook_label",
            "notebook-label",
            "AMLPROBE_NOTEBOOK_LABEL",
            "LABEL",
            "First label of the workspace's notebook host, as its private endpoint lists it (`ml-<name>-<region>-<id>`); derived from name, region and id when absent",
        )),
        slot: Slot::Text {
            field: |c| &mut c.notebook_label,
            validate: context::validate_notebook_label,
        },
        variables: &[Variable {
            name: "notebook_label",
            read: WorkspaceContext::notebook_label,
            given_by: "--notebook-label, or --workspace-name, --region and --workspace-id",
            overrides_cloud: false,
        }],
        learnt_from: &[Learnt::Arm(ArmValue::NotebookLabel)],
    },
    ContextValue {
        key: "public_resources",
        setting: Some(Setting::new(
            "public_resource",
            "public-resource",
            "AMLPROBE_PUBLIC_RESOURCE",
            "RESOURCE",
            "A workspace resource reached over its public endpoint in this deployment (repeatable); its names then need not resolve to private addresses",
            Kind::Choices(&RESOURCES),
        )),
        slot: Slot::PublicResources,
        variables: &[],
        learnt_from: &[Learnt::Arm(ArmValue::PublicAccess)],
    },
    ContextValue {
        key: "facts",
        setting: Some(Setting::new(
            "assume",
            "assume",
            "AMLPROBE_ASSUME",
            "FACT[=no]",
            "A fact about this deployment that decides whether flows apply (repeatable): FACT or FACT=no, one of workspace_private_endpoint, registry_data_endpoint, aks_node; it wins over what ARM, IMDS or the rest of the context imply",
            Kind::Texts,
        )),
        slot: Slot::Facts,
        variables: &[],
        // Each fact records its own source (`FactValue::source`): ARM, IMDS or `--assume`.
        learnt_from: &[],
    },
];

/// Every template variable a context provides.
pub fn variables() -> impl Iterator<Item = &'static Variable> {
    VALUES.iter().flat_map(|v| v.variables)
}

/// The settings of the context values that are given.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    VALUES.iter().filter_map(|v| v.setting.as_ref())
}

impl WorkspaceContext {
    /// The value of template variable `name`, if a context value provides it and it is known.
    /// `Err(())` means the context does not supply `name`: no row provides it, or it only
    /// overrides a per-cloud value (`instances_domain`) and was not given.
    #[allow(clippy::result_unit_err)]
    pub fn variable(&self, name: &str) -> Result<Option<String>, ()> {
        let variable = variables().find(|v| v.name == name).ok_or(())?;
        match (variable.read)(self) {
            None if variable.overrides_cloud => Err(()),
            value => Ok(value),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::context::{Cloud, Resource, ValueSource};

    /// Every source a row's `context.sources` entry may name: what gives it, its default, and
    /// what may learn it.
    pub(crate) fn sources_of(row: &ContextValue) -> Vec<ValueSource> {
        let mut sources = Vec::new();
        if row.setting.is_some() {
            sources.extend([ValueSource::FlagOrEnv, ValueSource::Config]);
        }
        if matches!(row.slot, Slot::Cloud) {
            sources.push(ValueSource::Default);
        }
        sources.extend(row.learnt_from.iter().map(|l| match l {
            Learnt::Arm(_) => ValueSource::Arm,
            Learnt::Imds => ValueSource::Imds,
            Learnt::AzureMlEnv => ValueSource::AzureMlEnv,
        }));
        sources
    }

    /// Every `context.sources` entry of `ctx` is a row's, from a source that row declares.
    pub(crate) fn assert_sources_declared(ctx: &WorkspaceContext) {
        for (key, source) in &ctx.sources {
            // Exact addresses are no context value: ARM pins them beside the flags'.
            if key == "expected_ips" {
                continue;
            }
            let row = VALUES
                .iter()
                .find(|v| v.key == key)
                .unwrap_or_else(|| panic!("context.sources has {key}, which no row declares"));
            assert!(
                sources_of(row).contains(source),
                "{key} recorded as {source:?}, not among {:?}",
                sources_of(row)
            );
        }
    }

    #[test]
    fn the_rows_follow_the_naming_rules() {
        crate::model::setting::tests::check_rows(settings());
        let mut keys = std::collections::BTreeSet::new();
        for v in VALUES {
            assert!(keys.insert(v.key), "{} twice", v.key);
        }
        let mut names = std::collections::BTreeSet::new();
        for v in variables() {
            assert!(names.insert(v.name), "{{{}}} provided twice", v.name);
        }
    }

    #[test]
    fn the_choices_are_the_types_own_words() {
        for (i, cloud) in Cloud::ALL.into_iter().enumerate() {
            assert_eq!(CLOUDS.names[i], cloud.as_str());
            assert_eq!(serde_json::to_value(cloud).unwrap(), CLOUDS.names[i]);
        }
        for (i, resource) in Resource::ALL.into_iter().enumerate() {
            assert_eq!(Resource::from_name(RESOURCES.names[i]), Some(resource));
            assert_eq!(serde_json::to_value(resource).unwrap(), RESOURCES.names[i]);
        }
        assert_eq!(
            (CLOUDS.names.len(), RESOURCES.names.len()),
            (Cloud::ALL.len(), Resource::ALL.len())
        );
    }

    /// Each text value set through its row's field is what its variables read, and nothing
    /// else's: `variable()` and the table cannot disagree.
    #[test]
    fn every_variable_reads_its_own_rows_field() {
        for row in VALUES {
            let Slot::Text { field, .. } = row.slot else {
                assert!(row.variables.is_empty(), "{}: only text values are templated", row.key);
                continue;
            };
            let mut ctx = WorkspaceContext::default();
            *field(&mut ctx) = Some(format!("marker-{}", row.key));
            for v in row.variables {
                assert_eq!(
                    ctx.variable(v.name),
                    Ok(Some(format!("marker-{}", row.key))),
                    "{{{}}} of {}",
                    v.name,
                    row.key
                );
            }
            for other in VALUES.iter().filter(|o| o.key != row.key) {
                for v in other.variables {
                    let seen = ctx.variable(v.name).ok().flatten();
                    // Regions fall back to the workspace region, and the notebook label is derived.
                    let derived = row.key == "region" || v.name == "notebook_label";
                    assert!(
                        derived || seen.is_none(),
                        "{{{}}} reads {}'s field: {seen:?}",
                        v.name,
                        row.key
                    );
                }
            }
        }
        assert_eq!(WorkspaceContext::default().variable("no_such_value"), Err(()));
    }

    /// The `{name}`s of a template.
    fn names_in(template: &str) -> Vec<&str> {
        template
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect()
    }

    /// Every variable a built-in suite names (hosts, private DNS zones, service tags) is a
    /// row's, or a value of each cloud the flow applies to (`probes/clouds.toml`); one that only
    /// overrides a cloud's value must be the cloud's too.
    #[test]
    fn every_suite_template_names_a_variable_a_row_or_the_cloud_provides() {
        let catalog = crate::model::suite::Catalog::builtin().expect("the built-in suites load");
        let mut checked = 0;
        for flow in catalog.suites.iter().flat_map(|s| &s.flows) {
            let templates = flow
                .hosts
                .iter()
                .chain(&flow.private_dns_zone)
                .chain([&flow.service_tag]);
            for name in templates.flat_map(|t| names_in(t)) {
                checked += 1;
                if variables().any(|v| v.name == name && !v.overrides_cloud) {
                    continue;
                }
                for cloud in Cloud::ALL.into_iter().filter(|c| flow.applies_to(*c)) {
                    assert!(
                        catalog.clouds[&cloud].contains_key(name),
                        "{}: {{{name}}} is neither a context value (model::values) nor in [{}] of probes/clouds.toml",
                        flow.id,
                        cloud.as_str()
                    );
                }
            }
        }
        assert!(checked > 100, "the suites were read: {checked} variables");
        assert_eq!(names_in("{a}.x.{b}"), ["a", "b"]);
    }

    #[test]
    fn instances_domain_overrides_only_when_given() {
        let ctx = WorkspaceContext::default();
        assert_eq!(ctx.variable("instances_domain"), Err(()), "the cloud's value applies");
        assert_eq!(ctx.variable("instances_domain_alt"), Err(()));
        let given = WorkspaceContext {
            instances_domain: Some(context::validate_instances_domain("Instances.AzureML.ms.").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            given.variable("instances_domain"),
            Ok(Some("instances.azureml.ms".to_string()))
        );
        assert_eq!(
            given.variable("instances_domain_alt"),
            Ok(Some("instances.azureml.ms".to_string()))
        );
    }

    #[test]
    fn regions_default_to_the_workspace_region() {
        let ctx = WorkspaceContext {
            region: Some("eastus".into()),
            ..Default::default()
        };
        for name in ["container_registry_region", "storage_region", "key_vault_region"] {
            assert_eq!(ctx.variable(name), Ok(Some("eastus".into())), "{name}");
        }
        assert_eq!(ctx.variable("machine_region"), Ok(None), "never the workspace's");
        let replica = WorkspaceContext {
            container_registry_region: Some(context::validate_container_registry_region("WestEurope").unwrap()),
            ..ctx
        };
        assert_eq!(
            replica.variable("container_registry_region"),
            Ok(Some("westeurope".into()))
        );
    }
}
