//! Zero-config discovery (issue 13): with a workspace's ARM id (from `--workspace-resource-id`
//! or the Azure ML SDK's `config.json`) and any Azure identity on this machine, ARM tells the
//! workspace id, region, dependent resources, notebook host and the exact private-endpoint
//! addresses. Flags always win; discovered values are marked `arm` in `context.sources`.
//! Discovery never ends a run: what goes wrong becomes one line in `context.warnings`.

pub mod arm;
pub mod sdk_config;
pub mod token;

use crate::http_client::{Client, Url};
use crate::model::context::ValueSource;
use crate::model::context::{self, Cloud, InvalidValue, Resource, WorkspaceContext};
use crate::model::endpoints::ExpectedIps;
use arm::{ArmFindings, WorkspaceRef};
use std::collections::BTreeMap;
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
    /// Where the SDK config search starts (`None`: no search).
    pub search_from: Option<PathBuf>,
}

fn invalid(flag: &'static str, message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        flag,
        message: message.into(),
    }
}

/// Validates the inputs; `None` when discovery is off or no workspace is named anywhere.
pub fn settings(inputs: Inputs) -> Result<Option<Settings>, InvalidValue> {
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
        return Ok(None);
    }
    // A config.json found by searching may belong to something else: one that names no
    // workspace is passed over rather than refused.
    let workspace = explicit.or_else(|| {
        let found = sdk_config::find(inputs.search_from.as_deref()?)?;
        sdk_config::parse(&crate::files::read_text(&found).ok()?).ok()
    });
    Ok(workspace.map(|workspace| Settings {
        workspace,
        arm_endpoint,
        token,
        identity_client_id,
    }))
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
pub async fn discover(settings: &Settings, cloud: Cloud, net: &Network<'_>) -> Result<Found, String> {
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
    let findings = arm::read(&client, &arm, &token, source.label(), &settings.workspace, deadline)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Found { findings, source })
}

/// Fills one context value the flags left open, marking it `arm`; an unusable value becomes a note.
fn fill(
    slot: &mut Option<String>,
    sources: &mut BTreeMap<String, ValueSource>,
    notes: &mut Vec<String>,
    key: &str,
    value: Option<String>,
    check: fn(&str) -> Result<String, InvalidValue>,
) {
    let Some(v) = value.filter(|_| slot.is_none()) else {
        return;
    };
    match check(&v) {
        Ok(v) => {
            *slot = Some(v);
            sources.insert(key.to_string(), ValueSource::Arm);
        }
        Err(e) => notes.push(format!("ARM's {key} is not usable: {}", e.message)),
    }
}

/// Fills what the flags left open, adds exact addresses for names the flags did not pin, and
/// returns the lines to put in `context.warnings`.
pub fn apply(ctx: &mut WorkspaceContext, expected: &mut ExpectedIps, found: Found) -> Vec<String> {
    let ws = found.findings.workspace;
    let mut notes = Vec::new();
    let n = &mut notes;
    let s = &mut ctx.sources;
    fill(&mut ctx.region, s, n, "region", ws.location, context::validate_region);
    fill(
        &mut ctx.workspace_id,
        s,
        n,
        "workspace_id",
        ws.workspace_id,
        context::validate_workspace_id,
    );
    fill(
        &mut ctx.workspace_name,
        s,
        n,
        "workspace_name",
        ws.name,
        context::validate_workspace_name,
    );
    let storage = ws.storage_account.map(|a| a.to_ascii_lowercase());
    fill(
        &mut ctx.storage_account,
        s,
        n,
        "storage_account",
        storage,
        context::validate_storage_account,
    );
    fill(
        &mut ctx.key_vault,
        s,
        n,
        "key_vault",
        ws.key_vault,
        context::validate_key_vault,
    );
    let registry = ws.container_registry;
    fill(
        &mut ctx.container_registry,
        s,
        n,
        "container_registry",
        registry,
        context::validate_container_registry,
    );
    // The notebook host as Azure named it: no guessing at how long names are truncated.
    let label = ws
        .notebook_fqdn
        .as_deref()
        .and_then(|f| f.split('.').next())
        .map(str::to_string);
    fill(
        &mut ctx.notebook_label,
        s,
        n,
        "notebook_label",
        label,
        context::validate_notebook_label,
    );
    if ws
        .public_network_access
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("enabled"))
        && ctx.public_resources.insert(Resource::Workspace)
    {
        ctx.sources.insert("public_resources".into(), ValueSource::Arm);
    }
    if let Some(mode) = ws
        .isolation_mode
        .as_deref()
        .filter(|m| !m.eq_ignore_ascii_case("disabled"))
    {
        notes.push(format!(
            "the workspace uses a managed virtual network (isolation mode {}): its computes run in Microsoft's managed network, not in this VNet, so their outbound flows are not the ones probed here",
            crate::sanitize::echo(mode)
        ));
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
    use arm::{Connection, WorkspaceFacts};

    fn found(workspace: WorkspaceFacts) -> Found {
        Found {
            findings: ArmFindings {
                workspace,
                ..Default::default()
            },
            source: Source::Imds,
        }
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
        assert!(settings(Inputs::default()).unwrap().is_none());
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w";
        let on = settings(Inputs {
            resource_id: Some(id.into()),
            token_env: Some("tok".into()),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(on.workspace.name, "w");
        assert!(!format!("{on:?}").contains("tok\""), "the token never shows: {on:?}");
        let off = settings(Inputs {
            resource_id: Some(id.into()),
            off: true,
            ..Default::default()
        });
        assert!(off.unwrap().is_none());
    }
}
