//! Zero-config discovery (issue 13): with a workspace's ARM id (from `--workspace-resource-id`,
//! the Azure ML SDK's `config.json` or the variables an Azure ML compute sets) and any Azure
//! identity on this machine, ARM tells the
//! workspace id, region, dependent resources, notebook host and the exact private-endpoint
//! addresses. Flags always win; discovered values are marked `arm` in `context.sources`.
//! Discovery never ends a run: what goes wrong becomes one line in `context.warnings`.

pub mod arm;
pub mod azureml_env;
pub mod sdk_config;
pub mod token;

use crate::http_client::{Client, Url};
use crate::model::context::ValueSource;
use crate::model::context::{self, Cloud, InvalidValue, Resource, WorkspaceContext};
use crate::model::endpoints::ExpectedIps;
use crate::model::facts::{Fact, FactValue};
use crate::model::values::{self, ArmValue, Learnt, Slot};
use arm::{ArmFindings, Connection, Dependency, DependencyFacts, WorkspaceRef};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use token::{ArmToken, Source, TokenInputs};

/// Discovery's whole budget: tokens, the workspace and its private endpoints.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Discovery settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The workspace to read.
    pub workspace: WorkspaceRef,
    /// `--arm-endpoint` (`None`: the cloud's).
    pub arm_endpoint: Option<Url>,
    /// `--arm-token-file` or `AMLPROBE_ARM_TOKEN`.
    pub token: Option<ArmToken>,
    /// `--identity-client-id`.
    pub identity_client_id: Option<String>,
    /// The workspace came from the variables an Azure ML compute sets, not a flag or config.json.
    pub from_azureml_env: bool,
}

/// Discovery inputs as flags, environment and config file gave them.
#[derive(Debug, Default)]
pub struct Inputs {
    /// `--workspace-resource-id`.
    pub resource_id: Option<String>,
    /// `--workspace-config`.
    pub workspace_config: Option<PathBuf>,
    /// `--no-discovery`.
    pub off: bool,
    /// `--arm-endpoint`.
    pub arm_endpoint: Option<String>,
    /// `--arm-token-file`.
    pub token_file: Option<PathBuf>,
    /// `AMLPROBE_ARM_TOKEN`.
    pub token_env: Option<String>,
    /// `--identity-client-id`.
    pub identity_client_id: Option<String>,
    /// The SDK config file found near the working directory, and its text.
    pub sdk_config: Option<(PathBuf, String)>,
    /// The variables an Azure ML compute instance or job sets, tried last.
    pub azureml_env: azureml_env::Variables,
}

fn invalid(flag: &'static str, message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        flag,
        message: message.into(),
    }
}

/// Validates the inputs: the settings (`None` when discovery is off or no workspace is named
/// anywhere), and lines for `context.warnings` about variables that were set but unusable.
pub fn settings(inputs: Inputs) -> Result<(Option<Settings>, Vec<String>), InvalidValue> {
    let arm_endpoint = inputs
        .arm_endpoint
        .map(|u| match Url::parse(&u) {
            Ok(url) if url.tls => Ok(url),
            Ok(_) => Err(invalid("arm-endpoint", "ARM is only spoken to over https://")),
            Err(e) => Err(invalid("arm-endpoint", format!("'{}' {e}", crate::sanitize::echo(&u)))),
        })
        .transpose()?;
    let token = match (&inputs.token_file, &inputs.token_env) {
        (Some(path), _) => {
            let text = crate::files::read_input("arm-token-file", path)?;
            Some(ArmToken::new(&text).map_err(|m| invalid("arm-token-file", format!("{}: {m}", path.display())))?)
        }
        (None, Some(value)) => {
            Some(ArmToken::new(value).map_err(|m| invalid("arm-token-file", format!("AMLPROBE_ARM_TOKEN {m}")))?)
        }
        (None, None) => None,
    };
    let identity_client_id = inputs
        .identity_client_id
        .map(|id| {
            context::validate_workspace_id(id.trim()).map_err(|_| {
                invalid(
                    "identity-client-id",
                    format!("'{}' is not a client id (a GUID)", crate::sanitize::echo(&id)),
                )
            })
        })
        .transpose()?;
    let explicit = match (&inputs.resource_id, &inputs.workspace_config) {
        (Some(id), _) => Some(WorkspaceRef::parse(id).map_err(|m| invalid("workspace-resource-id", m))?),
        (None, Some(path)) => {
            let text = crate::files::read_input("workspace-config", path)?;
            Some(sdk_config::parse(&text).map_err(|m| invalid("workspace-config", format!("{} {m}", path.display())))?)
        }
        (None, None) => None,
    };
    if inputs.off {
        return Ok((None, Vec::new()));
    }
    // A config.json found by searching may belong to something else: one that names no
    // workspace is passed over rather than refused, and said only when it is the SDK's.
    let mut notes = Vec::new();
    let found = match (&explicit, inputs.sdk_config) {
        (None, Some(found)) => Some(found),
        _ => None,
    };
    let named = explicit.or_else(|| {
        let (path, text) = found?;
        sdk_config::parse(&text)
            .inspect_err(|why| {
                if sdk_config::is_sdk_config(&path, &text) {
                    notes.push(format!(
                        "workspace discovery: {} {why}; it was passed over",
                        crate::sanitize::echo(&path.display().to_string())
                    ));
                }
            })
            .ok()
    });
    let (workspace, from_azureml_env) = match named {
        Some(workspace) => (Some(workspace), false),
        None => {
            let (workspace, env_notes) = azureml_env::find(&inputs.azureml_env);
            notes.extend(env_notes);
            (workspace, true)
        }
    };
    let settings = workspace.map(|workspace| Settings {
        workspace,
        arm_endpoint,
        token,
        identity_client_id,
        from_azureml_env,
    });
    Ok((settings, notes))
}

/// Marks the workspace name as the Azure ML variables' when they named the workspace and no
/// flag named it, so `context.sources` says where the workspace came from even when ARM is
/// out of reach.
pub fn note_origin(ctx: &mut WorkspaceContext, settings: &Settings) {
    if !settings.from_azureml_env || ctx.workspace_name.is_some() {
        return;
    }
    if let Ok(name) = context::validate_workspace_name(&settings.workspace.name) {
        ctx.workspace_name = Some(name);
        ctx.sources.insert("workspace_name".into(), ValueSource::AzureMlEnv);
    }
}

/// The cloud's ARM audience and default endpoint.
pub fn arm_audience(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => "https://management.azure.com",
        Cloud::Usgov => "https://management.usgovcloudapi.net",
        Cloud::China => "https://management.chinacloudapi.cn",
    }
}

/// The cloud's Entra ID authority (azure-identity's `AzureAuthorityHosts`).
fn authority(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => "https://login.microsoftonline.com",
        Cloud::Usgov => "https://login.microsoftonline.us",
        Cloud::China => "https://login.chinacloudapi.cn",
    }
}

/// What discovery found, with the token source that read it.
#[derive(Debug)]
pub struct Found {
    /// ARM's answers.
    pub findings: ArmFindings,
    /// Where the token came from.
    pub source: Source,
    /// An Azure ML compute's variables named the workspace: this machine is one of its computes.
    pub on_azureml_compute: bool,
    /// The token, client and endpoint discovery used, for later ARM reads (attribution) to
    /// reuse rather than acquire a second token: take it before [`apply`] consumes the rest.
    pub access: Option<ArmAccess>,
}

/// An ARM endpoint with a token for it and the client that reaches it.
pub struct ArmAccess {
    /// The HTTP client (trust store, DNS server, proxies of the run).
    pub client: Client,
    /// ARM's base URL (the cloud's, or `--arm-endpoint`).
    pub arm: Url,
    /// The bearer token; only ever sent to `arm`'s origin.
    pub token: ArmToken,
}

impl std::fmt::Debug for ArmAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmAccess")
            .field("arm", &self.arm.origin())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Where discovery's requests go.
pub struct Network<'a> {
    /// IMDS, when amlprobe may ask it.
    pub imds: Option<&'a crate::http_client::Url>,
    /// `--ca-file`.
    pub ca_files: &'a [PathBuf],
    /// `--dns-server`.
    pub dns_server: Option<SocketAddr>,
    /// The run's proxies, for `https://` requests.
    pub proxies: &'a crate::model::proxy::ProxySettings,
    /// The environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Gets a token and reads the workspace within [`DEADLINE`]. The error is one line.
pub async fn discover(
    settings: &Settings,
    cloud: Cloud,
    compute_instance: Option<&str>,
    net: &Network<'_>,
) -> Result<Found, String> {
    let deadline = Instant::now() + DEADLINE;
    let client = Client::new(net.ca_files, net.dns_server, net.proxies.clone())?;
    let inputs = TokenInputs {
        given: settings.token.as_ref(),
        audience: arm_audience(cloud),
        authority: authority(cloud),
        imds: net.imds,
        client_id: settings.identity_client_id.as_deref(),
        env: net.env,
    };
    let (token, source) = token::acquire(&inputs, &client, deadline)
        .await
        .map_err(|e| format!("{e}; pass the workspace facts as flags"))?;
    let arm = match &settings.arm_endpoint {
        Some(url) => url.clone(),
        None => Url::parse(arm_audience(cloud)).expect("valid ARM URL"),
    };
    let mut findings = arm::read(&client, &arm, &token, source.label(), &settings.workspace, deadline)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(name) = compute_instance {
        findings.instances_domain =
            arm::read_instances_domain(&client, &arm, &token, &settings.workspace, name, deadline).await;
    }
    Ok(Found {
        findings,
        source,
        on_azureml_compute: settings.from_azureml_env,
        access: Some(ArmAccess { client, arm, token }),
    })
}

/// What ARM told for `what`, as the context value takes it.
pub fn arm_value(findings: &ArmFindings, what: ArmValue) -> Option<String> {
    let ws = &findings.workspace;
    let location = |dependency: Dependency| {
        findings
            .dependency_facts
            .iter()
            .find(|(d, _, _)| *d == dependency)
            .and_then(|(_, _, facts)| facts.location.as_ref())
            .map(|l| l.to_ascii_lowercase())
    };
    match what {
        ArmValue::WorkspaceLocation => ws.location.clone(),
        ArmValue::WorkspaceId => ws.workspace_id.clone(),
        ArmValue::WorkspaceName => ws.name.clone(),
        // ARM shows the account as created; its host names (and the rule) are lower-case.
        ArmValue::StorageAccount => ws.storage_account.as_ref().map(|a| a.to_ascii_lowercase()),
        ArmValue::KeyVault => ws.key_vault.clone(),
        ArmValue::ContainerRegistry => ws.container_registry.clone(),
        ArmValue::RegistryLocation => location(Dependency::Registry),
        ArmValue::StorageLocation => location(Dependency::Storage),
        ArmValue::KeyVaultLocation => location(Dependency::KeyVault),
        // The compute instance's domain as the service serves it: settles the two documented forms.
        ArmValue::InstancesDomain => findings.instances_domain.clone(),
        // The notebook host as Azure named it: no guessing at how long names are truncated.
        ArmValue::NotebookLabel => ws
            .notebook_fqdn
            .as_deref()
            .and_then(|f| f.split('.').next())
            .map(str::to_string),
        // Not one value: `apply` and `apply_dependency` weigh access and endpoints.
        ArmValue::PublicAccess => None,
    }
}

/// Fills each text value the flags left open with what ARM told, marking it `arm`; an unusable
/// value becomes a note.
fn fill(ctx: &mut WorkspaceContext, notes: &mut Vec<String>, findings: &ArmFindings) {
    for value in values::VALUES {
        let Slot::Text { field, validate } = value.slot else {
            continue;
        };
        let told = value.learnt_from.iter().find_map(|l| match l {
            Learnt::Arm(what) => arm_value(findings, *what),
            Learnt::Imds | Learnt::AzureMlEnv => None,
        });
        let Some(told) = told.filter(|_| field(ctx).is_none()) else {
            continue;
        };
        match validate(&told) {
            Ok(v) => {
                *field(ctx) = Some(v);
                ctx.sources.insert(value.key.to_string(), ValueSource::Arm);
            }
            Err(e) => notes.push(format!("ARM's {} is not usable: {}", value.key, e.message)),
        }
    }
}

/// Records a fact ARM told, unless `--assume` already settled it.
fn note_fact(ctx: &mut WorkspaceContext, fact: Fact, holds: bool, basis: String) {
    ctx.facts
        .entry(fact)
        .or_insert_with(|| FactValue::known(holds, ValueSource::Arm, basis));
}

/// What a dependency's own GET and its approved private endpoints tell (its region is filled
/// with the other values): whether a registry has a data endpoint, and whether a
/// storage account or key vault is reached without a private endpoint (a service endpoint or
/// public access, both supported: how-to-secure-workspace-vnet), so its names resolve publicly.
fn apply_dependency(
    ctx: &mut WorkspaceContext,
    notes: &mut Vec<String>,
    dependency: Dependency,
    owner: &str,
    endpoints: usize,
    facts: &DependencyFacts,
) {
    let resource = match dependency {
        Dependency::Storage => Resource::Storage,
        Dependency::KeyVault => Resource::KeyVault,
        Dependency::Registry => Resource::ContainerRegistry,
    };
    let owner = crate::sanitize::echo(owner);
    if dependency == Dependency::Registry {
        let why = match (endpoints, facts.data_endpoint_enabled) {
            (0, false) => "has no approved private endpoint and dataEndpointEnabled is off".to_string(),
            (0, true) => "has dataEndpointEnabled".to_string(),
            (n, _) => format!("has {n} approved private endpoint connection(s)"),
        };
        note_fact(
            ctx,
            Fact::RegistryDataEndpoint,
            endpoints > 0 || facts.data_endpoint_enabled,
            format!("ARM: {owner} {why}"),
        );
        return;
    }
    if endpoints > 0 || !ctx.public_resources.insert(resource) {
        return;
    }
    ctx.sources.insert("public_resources".into(), ValueSource::Arm);
    let rules = match (&facts.default_action, facts.vnet_rules) {
        (Some(action), n) => format!(
            "network rules: default action {}, {n} virtual network rule(s)",
            crate::sanitize::echo(action)
        ),
        (None, _) => "no network rules".to_string(),
    };
    notes.push(format!(
        "{owner} has no approved private endpoint ({rules}): it is reached through a service endpoint or its public endpoint, so its names are expected to resolve to public addresses"
    ));
}

/// Fills what the flags left open, adds exact addresses for names the flags did not pin, and
/// returns the lines to put in `context.warnings`.
pub fn apply(ctx: &mut WorkspaceContext, expected: &mut ExpectedIps, found: Found) -> Vec<String> {
    let mut notes = Vec::new();
    fill(ctx, &mut notes, &found.findings);
    let ws = found.findings.workspace;
    let n = &mut notes;
    if ws
        .public_network_access
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("enabled"))
        && ctx.public_resources.insert(Resource::Workspace)
    {
        ctx.sources.insert("public_resources".into(), ValueSource::Arm);
    }
    let approved = |c: &Connection| c.status.eq_ignore_ascii_case("approved");
    let workspace_endpoints = ws.connections.iter().filter(|c| approved(c)).count();
    note_fact(
        ctx,
        Fact::WorkspacePrivateEndpoint,
        workspace_endpoints > 0,
        format!("ARM: the workspace has {workspace_endpoints} approved private endpoint connection(s)"),
    );
    for (dependency, name, facts) in &found.findings.dependency_facts {
        let owner = format!("{} {name}", dependency.label());
        let endpoints = found
            .findings
            .dependency_connections
            .iter()
            .filter(|(o, c)| *o == owner && approved(c))
            .count();
        apply_dependency(ctx, n, *dependency, &owner, endpoints, facts);
    }
    if let Some(mode) = ws
        .isolation_mode
        .as_deref()
        .filter(|m| !m.eq_ignore_ascii_case("disabled"))
    {
        // Its outbound rules govern the workspace's own computes only, not a VM in a customer VNet.
        notes.push(if found.on_azureml_compute {
            format!(
                "the workspace uses a managed virtual network (isolation mode {}): this compute's outbound flows go through it, so its outbound rules decide what they reach",
                crate::sanitize::echo(mode)
            )
        } else {
            format!(
                "the workspace uses a managed virtual network (isolation mode {}): its computes run in Microsoft's managed network, not in this VNet, so their outbound flows are not the ones probed here",
                crate::sanitize::echo(mode)
            )
        });
    }
    let workspace_connections = ws.connections.iter().map(|c| ("workspace", c));
    let dependency_connections = found
        .findings
        .dependency_connections
        .iter()
        .map(|(owner, c)| (owner.as_str(), c));
    for (owner, c) in workspace_connections
        .chain(dependency_connections)
        .filter(|(_, c)| !c.status.eq_ignore_ascii_case("approved"))
    {
        let status = if c.status.is_empty() {
            "without a status"
        } else {
            &c.status
        };
        notes.push(format!(
            "{owner}'s private endpoint connection {} (endpoint {}) is {}, not Approved: names on that endpoint don't reach the {owner} until it is approved",
            crate::sanitize::echo(&c.name),
            crate::sanitize::echo(c.endpoint_id.rsplit('/').next().unwrap_or_default()),
            crate::sanitize::echo(status),
        ));
    }
    let mut pinned = false;
    for (name, addresses) in found.findings.expected {
        // A name the flags pinned keeps the flags' addresses.
        if let std::collections::btree_map::Entry::Vacant(slot) = expected.entry(name) {
            slot.insert(addresses);
            pinned = true;
        }
    }
    if pinned {
        ctx.sources.insert("expected_ips".into(), ValueSource::Arm);
    }
    ctx.token_source = Some(found.source.label().into());
    notes.extend(found.findings.problems);
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use arm::DependencyFacts;
    use arm::WorkspaceFacts;

    fn found(workspace: WorkspaceFacts) -> Found {
        Found {
            findings: ArmFindings {
                workspace,
                ..Default::default()
            },
            source: Source::Imds,
            on_azureml_compute: false,
            access: None,
        }
    }

    #[test]
    fn a_managed_network_governs_its_own_computes_only() {
        let managed = || WorkspaceFacts {
            isolation_mode: Some("AllowOnlyApprovedOutbound".into()),
            ..Default::default()
        };
        let elsewhere = apply(
            &mut WorkspaceContext::default(),
            &mut ExpectedIps::new(),
            found(managed()),
        )
        .join("\n");
        assert!(elsewhere.contains("not the ones probed here"), "{elsewhere}");
        let on_compute = apply(
            &mut WorkspaceContext::default(),
            &mut ExpectedIps::new(),
            Found {
                on_azureml_compute: true,
                ..found(managed())
            },
        )
        .join("\n");
        assert!(
            on_compute.contains("this compute's outbound flows go through it"),
            "{on_compute}"
        );
        assert!(!on_compute.contains("not the ones probed here"), "{on_compute}");
    }

    #[test]
    fn a_public_managed_workspace_is_said_so() {
        let mut ctx = WorkspaceContext::default();
        let notes = apply(
            &mut ctx,
            &mut ExpectedIps::new(),
            found(WorkspaceFacts {
                public_network_access: Some("Enabled".into()),
                isolation_mode: Some("AllowOnlyApprovedOutbound".into()),
                storage_account: Some("Not_A_Name".into()),
                connections: vec![Connection {
                    name: "c1".into(),
                    endpoint_id: "/x/privateEndpoints/pe1".into(),
                    status: "Rejected".into(),
                }],
                ..Default::default()
            }),
        );
        assert!(ctx.public_resources.contains(&Resource::Workspace));
        assert_eq!(ctx.sources["public_resources"], ValueSource::Arm);
        assert_eq!(ctx.token_source.as_deref(), Some("managed identity (IMDS)"));
        assert!(ctx.storage_account.is_none());
        let all = notes.join("\n");
        assert!(
            all.contains("managed virtual network (isolation mode AllowOnlyApprovedOutbound)"),
            "{all}"
        );
        assert!(all.contains("c1 (endpoint pe1) is Rejected, not Approved"), "{all}");
        assert!(all.contains("ARM's storage_account is not usable"), "{all}");
    }

    #[test]
    fn dependencies_tell_regions_facts_and_service_endpoints() {
        let mut ctx = WorkspaceContext::default();
        let mut f = found(WorkspaceFacts {
            connections: vec![Connection {
                name: "ws".into(),
                endpoint_id: "/x/privateEndpoints/pe-ws".into(),
                status: "Approved".into(),
            }],
            ..Default::default()
        });
        let facts = |location: &str, data: bool| DependencyFacts {
            location: Some(location.into()),
            data_endpoint_enabled: data,
            default_action: Some("Deny".into()),
            vnet_rules: 1,
            public_network_access: None,
        };
        f.findings.dependency_facts = vec![
            (Dependency::Storage, "st1".into(), facts("WestEurope", false)),
            (Dependency::KeyVault, "kv1".into(), facts("northeurope", false)),
            (Dependency::Registry, "acr1".into(), facts("uksouth", false)),
        ];
        // The vault and the registry have private endpoints; the storage account has none.
        for owner in ["key vault kv1", "container registry acr1"] {
            f.findings.dependency_connections.push((
                owner.into(),
                Connection {
                    name: "c".into(),
                    endpoint_id: "/x/privateEndpoints/pe".into(),
                    status: "Approved".into(),
                },
            ));
        }
        let notes = apply(&mut ctx, &mut ExpectedIps::new(), f);
        crate::model::values::tests::assert_sources_declared(&ctx);
        assert_eq!(ctx.storage_region.as_deref(), Some("westeurope"));
        assert_eq!(ctx.key_vault_region.as_deref(), Some("northeurope"));
        assert_eq!(ctx.container_registry_region.as_deref(), Some("uksouth"));
        assert_eq!(ctx.sources["container_registry_region"], ValueSource::Arm);
        assert!(
            ctx.public_resources.contains(&Resource::Storage),
            "a service endpoint account"
        );
        assert!(!ctx.public_resources.contains(&Resource::KeyVault));
        let all = notes.join("\n");
        assert!(
            all.contains("storage account st1 has no approved private endpoint (network rules: default action Deny, 1 virtual network rule(s))"),
            "{all}"
        );
        let ws = &ctx.facts[&Fact::WorkspacePrivateEndpoint];
        assert!(ws.holds && ws.source == ValueSource::Arm, "{ws:?}");
        let acr = &ctx.facts[&Fact::RegistryDataEndpoint];
        assert!(
            acr.holds && acr.basis.contains("1 approved private endpoint"),
            "{acr:?}"
        );
    }

    /// Every text value a row says ARM tells is filled from ARM's answer and marked `arm`.
    #[test]
    fn every_value_arm_tells_is_filled_and_marked() {
        let mut f = found(WorkspaceFacts {
            name: Some("mlws01".into()),
            location: Some("eastus".into()),
            workspace_id: Some("fb7e20a0-8891-458b-b969-55ddb3382f51".into()),
            storage_account: Some("MyStorage01".into()),
            key_vault: Some("kv-ml".into()),
            container_registry: Some("acrml01".into()),
            notebook_fqdn: Some("ml-mlws01-eastus-fb7e.notebooks.azure.net".into()),
            ..Default::default()
        });
        f.findings.instances_domain = Some("instances.azureml.ms".into());
        f.findings.dependency_facts = [Dependency::Storage, Dependency::KeyVault, Dependency::Registry]
            .into_iter()
            .map(|d| {
                let facts = DependencyFacts {
                    location: Some("WestEurope".into()),
                    ..Default::default()
                };
                (d, "r".to_string(), facts)
            })
            .collect();
        let mut ctx = WorkspaceContext::default();
        let notes = apply(&mut ctx, &mut ExpectedIps::new(), f);
        assert!(!notes.iter().any(|n| n.contains("not usable")), "{notes:?}");
        let told = values::VALUES.iter().filter(|v| {
            matches!(v.slot, Slot::Text { .. }) && v.learnt_from.iter().any(|l| matches!(l, Learnt::Arm(_)))
        });
        let mut filled = 0;
        for value in told {
            assert_eq!(ctx.sources.get(value.key), Some(&ValueSource::Arm), "{}", value.key);
            filled += 1;
        }
        assert_eq!(filled, 11);
        assert_eq!(ctx.storage_account.as_deref(), Some("mystorage01"));
        assert_eq!(ctx.notebook_label.as_deref(), Some("ml-mlws01-eastus-fb7e"));
        assert_eq!(ctx.key_vault_region.as_deref(), Some("westeurope"));
        crate::model::values::tests::assert_sources_declared(&ctx);
    }

    #[test]
    fn a_registry_without_endpoints_has_no_data_endpoint_and_assumptions_win() {
        let registry = |ctx: &mut WorkspaceContext, data| {
            let mut f = found(WorkspaceFacts::default());
            f.findings.dependency_facts = vec![(
                Dependency::Registry,
                "acr1".into(),
                DependencyFacts {
                    data_endpoint_enabled: data,
                    ..Default::default()
                },
            )];
            apply(ctx, &mut ExpectedIps::new(), f);
        };
        let mut ctx = WorkspaceContext::default();
        registry(&mut ctx, false);
        let acr = &ctx.facts[&Fact::RegistryDataEndpoint];
        assert!(
            !acr.holds && acr.basis.contains("dataEndpointEnabled is off"),
            "{acr:?}"
        );
        assert!(
            !ctx.facts[&Fact::WorkspacePrivateEndpoint].holds,
            "no approved workspace connection"
        );
        let mut dedicated = WorkspaceContext::default();
        registry(&mut dedicated, true);
        assert!(dedicated.facts[&Fact::RegistryDataEndpoint].holds);
        let mut assumed = WorkspaceContext::default();
        assumed.facts.insert(
            Fact::RegistryDataEndpoint,
            FactValue::known(true, ValueSource::FlagOrEnv, "--assume registry_data_endpoint"),
        );
        registry(&mut assumed, false);
        assert_eq!(
            assumed.facts[&Fact::RegistryDataEndpoint].source,
            ValueSource::FlagOrEnv
        );
    }

    #[test]
    fn flags_keep_their_values_and_a_private_workspace_stays_private() {
        let mut ctx = WorkspaceContext {
            region: Some("westeurope".into()),
            ..Default::default()
        };
        let mut expected = ExpectedIps::new();
        expected.insert("a.test".into(), vec!["10.0.0.1".parse().unwrap()]);
        let mut f = found(WorkspaceFacts {
            location: Some("eastus".into()),
            public_network_access: Some("Disabled".into()),
            isolation_mode: Some("Disabled".into()),
            ..Default::default()
        });
        f.findings
            .expected
            .insert("a.test".into(), vec!["10.9.9.9".parse().unwrap()]);
        f.findings
            .expected
            .insert("b.test".into(), vec!["10.0.0.2".parse().unwrap()]);
        let notes = apply(&mut ctx, &mut expected, f);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(ctx.region.as_deref(), Some("westeurope"));
        assert!(!ctx.sources.contains_key("region"));
        assert!(ctx.public_resources.is_empty());
        assert_eq!(
            expected["a.test"],
            vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(expected.contains_key("b.test"));
    }

    #[test]
    fn settings_need_a_workspace_and_honour_no_discovery() {
        assert!(settings(Inputs::default()).unwrap().0.is_none());
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w";
        let on = settings(Inputs {
            resource_id: Some(id.into()),
            token_env: Some("tok".into()),
            ..Default::default()
        })
        .unwrap()
        .0
        .unwrap();
        assert_eq!(on.workspace.name, "w");
        assert!(!format!("{on:?}").contains("tok\""), "the token never shows: {on:?}");
        let off = settings(Inputs {
            resource_id: Some(id.into()),
            off: true,
            ..Default::default()
        });
        assert!(off.unwrap().0.is_none());
    }

    /// The SDK config file found from `dir`, as the host facts carry it.
    fn found_in(dir: &std::path::Path) -> Option<(PathBuf, String)> {
        crate::env::workdir::find_sdk_config(dir).map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
    }

    fn job_variables() -> azureml_env::Variables {
        azureml_env::Variables {
            subscription: Some("00000000-1111-2222-3333-444444444444".into()),
            resource_group: Some("rg-job".into()),
            workspace_name: Some("wsjob".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_broken_sdk_config_is_one_line_and_another_tools_config_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".azureml")).unwrap();
        std::fs::write(
            dir.path().join(".azureml/config.json"),
            r#"{"Scope": "/subscriptions/x"}"#,
        )
        .unwrap();
        let (found, notes) = settings(Inputs {
            sdk_config: found_in(dir.path()),
            azureml_env: job_variables(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(found.unwrap().workspace.name, "wsjob", "the next source is tried");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains(&format!(
                "{} has a Scope",
                std::path::Path::new(".azureml").join("config.json").display()
            )) && notes[0].ends_with("it was passed over"),
            "{notes:?}"
        );

        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("config.json"), r#"{"port": 8080}"#).unwrap();
        let (found, notes) = settings(Inputs {
            sdk_config: found_in(other.path()),
            ..Default::default()
        })
        .unwrap();
        assert!(found.is_none());
        assert!(
            notes.is_empty(),
            "another tool's config.json is not ours to judge: {notes:?}"
        );
    }

    #[test]
    fn flags_and_the_sdk_config_win_over_the_azure_ml_variables() {
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/flagws";
        let (flag, notes) = settings(Inputs {
            resource_id: Some(id.into()),
            azureml_env: azureml_env::Variables {
                subscription: Some("not a guid/".into()),
                ..job_variables()
            },
            ..Default::default()
        })
        .unwrap();
        let flag = flag.unwrap();
        assert_eq!(flag.workspace.name, "flagws");
        assert!(!flag.from_azureml_env);
        assert!(notes.is_empty(), "unused variables are not judged: {notes:?}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"subscription_id": "s", "resource_group": "g", "workspace_name": "sdkws"}"#,
        )
        .unwrap();
        let (sdk, _) = settings(Inputs {
            sdk_config: found_in(dir.path()),
            azureml_env: job_variables(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(sdk.unwrap().workspace.name, "sdkws");

        let (env, notes) = settings(Inputs {
            sdk_config: found_in(tempfile::tempdir().unwrap().path()),
            azureml_env: job_variables(),
            ..Default::default()
        })
        .unwrap();
        let env = env.unwrap();
        assert_eq!(env.workspace.name, "wsjob");
        assert!(env.from_azureml_env);
        assert!(notes.is_empty(), "{notes:?}");

        let (off, notes) = settings(Inputs {
            off: true,
            azureml_env: job_variables(),
            ..Default::default()
        })
        .unwrap();
        assert!(off.is_none() && notes.is_empty());
    }

    #[test]
    fn a_malformed_azure_ml_variable_is_a_warning_not_an_error() {
        let (found, notes) = settings(Inputs {
            azureml_env: azureml_env::Variables {
                workspace_name: None,
                ..job_variables()
            },
            ..Default::default()
        })
        .expect("never fatal");
        assert!(found.is_none());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("AZUREML_ARM_WORKSPACE_NAME not set"), "{notes:?}");
    }

    #[test]
    fn the_workspace_name_says_the_azure_ml_variables_named_it() {
        let (found, _) = settings(Inputs {
            azureml_env: job_variables(),
            ..Default::default()
        })
        .unwrap();
        let found = found.unwrap();
        let mut ctx = WorkspaceContext::default();
        note_origin(&mut ctx, &found);
        assert_eq!(ctx.workspace_name.as_deref(), Some("wsjob"));
        assert_eq!(ctx.sources["workspace_name"], ValueSource::AzureMlEnv);

        let mut flagged = WorkspaceContext {
            workspace_name: Some("mine".into()),
            ..Default::default()
        };
        note_origin(&mut flagged, &found);
        assert_eq!(flagged.workspace_name.as_deref(), Some("mine"));
        assert!(!flagged.sources.contains_key("workspace_name"));

        let mut from_flag = WorkspaceContext::default();
        note_origin(
            &mut from_flag,
            &Settings {
                from_azureml_env: false,
                ..found
            },
        );
        assert!(from_flag.workspace_name.is_none());
    }
}
