//! Azure Resource Manager reads: the workspace (api-version 2024-04-01), then each of its
//! approved private endpoints (and, when an endpoint lists no custom DNS configs, its NICs) for
//! the exact address of every private name. Shapes: see docs/discovery.md.

use super::token::ArmToken;
use crate::http_client::{Client, Request, Url};
use crate::model::endpoints::{self, ExpectedIps};
use crate::wire::json::text;
use serde_json::Value;
use std::time::{Duration, Instant};

/// api-version of the workspace GET.
const WORKSPACE_API: &str = "2024-04-01";
/// api-version of the private endpoint and network interface GETs.
const NETWORK_API: &str = "2024-05-01";

/// A workspace's ARM id, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRef {
    /// `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>`.
    pub id: String,
    /// The workspace name (last segment).
    pub name: String,
}

impl WorkspaceRef {
    /// Parses an ARM id; segment names are case-insensitive, as ARM treats them.
    pub fn parse(id: &str) -> Result<WorkspaceRef, String> {
        let id = id.trim().trim_end_matches('/');
        let parts: Vec<&str> = id.split('/').collect();
        let shape = [
            "",
            "subscriptions",
            "*",
            "resourcegroups",
            "*",
            "providers",
            "microsoft.machinelearningservices",
            "workspaces",
            "*",
        ];
        let ok = parts.len() == shape.len()
            && parts.iter().zip(shape).all(|(p, s)| {
                if s == "*" {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
                } else {
                    p.eq_ignore_ascii_case(s)
                }
            });
        if !ok {
            return Err(format!(
                "'{}' is not a workspace resource id (/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>)",
                crate::sanitize::echo(id)
            ));
        }
        Ok(WorkspaceRef {
            id: id.to_string(),
            name: parts[8].to_string(),
        })
    }

    /// From the SDK's `config.json` fields.
    pub fn from_parts(subscription: &str, group: &str, name: &str) -> Result<WorkspaceRef, String> {
        WorkspaceRef::parse(&format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            subscription.trim(),
            group.trim(),
            name.trim()
        ))
    }
}

/// One private endpoint connection of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection's name.
    pub name: String,
    /// The private endpoint's ARM id.
    pub endpoint_id: String,
    /// `Approved`, `Pending`, `Rejected`, `Disconnected`, …
    pub status: String,
}

/// A workspace dependency whose own private endpoint connections are read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// `properties.storageAccount`.
    Storage,
    /// `properties.keyVault`.
    KeyVault,
    /// `properties.containerRegistry`.
    Registry,
}

impl Dependency {
    /// How messages name it.
    pub fn label(self) -> &'static str {
        match self {
            Dependency::Storage => "storage account",
            Dependency::KeyVault => "key vault",
            Dependency::Registry => "container registry",
        }
    }

    /// What follows the resource id to list its private endpoint connections: the storage and
    /// key vault `privateEndpointConnections` lists, the registry's own GET (its examples show
    /// `properties.privateEndpointConnections` there). See docs/discovery.md.
    fn connections_path(self) -> &'static str {
        match self {
            Dependency::Storage => "/privateEndpointConnections?api-version=2023-05-01",
            Dependency::KeyVault => "/privateEndpointConnections?api-version=2023-07-01",
            Dependency::Registry => RESOURCE_PATH_REGISTRY,
        }
    }

    /// What follows the resource id to GET the resource itself: its `location`, network rules
    /// and (registry) `dataEndpointEnabled`. The registry's is also its connections path.
    fn resource_path(self) -> &'static str {
        match self {
            Dependency::Storage => "?api-version=2023-05-01",
            Dependency::KeyVault => "?api-version=2023-07-01",
            Dependency::Registry => RESOURCE_PATH_REGISTRY,
        }
    }

    /// Where its network rules are: storage and key vault `properties.networkAcls`, the
    /// registry `properties.networkRuleSet`.
    fn network_rules_pointer(self) -> &'static str {
        match self {
            Dependency::Storage | Dependency::KeyVault => "/properties/networkAcls",
            Dependency::Registry => "/properties/networkRuleSet",
        }
    }
}

/// The registry GET (azure-rest-api-specs `Microsoft.ContainerRegistry/stable/2023-07-01`:
/// `RegistryProperties.dataEndpointEnabled`, `privateEndpointConnections`, `networkRuleSet`).
const RESOURCE_PATH_REGISTRY: &str = "?api-version=2023-07-01";

/// What a dependency's own GET says about how it is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyFacts {
    /// `location`, as given.
    pub location: Option<String>,
    /// `properties.dataEndpointEnabled` (registries).
    pub data_endpoint_enabled: bool,
    /// The network rules' `defaultAction` (`Allow`, `Deny`).
    pub default_action: Option<String>,
    /// How many virtual network rules (service endpoints) the network rules list.
    pub vnet_rules: usize,
    /// `properties.publicNetworkAccess`.
    pub public_network_access: Option<String>,
}

/// Parses a storage account, key vault or registry GET body.
pub fn parse_dependency(dependency: Dependency, body: &str) -> Result<DependencyFacts, String> {
    let v: Value = serde_json::from_str(body).map_err(|_| "ARM answered with invalid JSON")?;
    let rules = v.pointer(dependency.network_rules_pointer());
    Ok(DependencyFacts {
        location: text(&v, "/location"),
        data_endpoint_enabled: v
            .pointer("/properties/dataEndpointEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        default_action: rules.and_then(|r| text(r, "/defaultAction")),
        vnet_rules: rules
            .and_then(|r| r.get("virtualNetworkRules"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        public_network_access: text(&v, "/properties/publicNetworkAccess"),
    })
}

/// What the workspace document says, as given (validation happens when it is applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceFacts {
    /// `name`.
    pub name: Option<String>,
    /// `location`.
    pub location: Option<String>,
    /// `properties.workspaceId`.
    pub workspace_id: Option<String>,
    /// Last segment of `properties.storageAccount`.
    pub storage_account: Option<String>,
    /// Last segment of `properties.keyVault`.
    pub key_vault: Option<String>,
    /// Last segment of `properties.containerRegistry`.
    pub container_registry: Option<String>,
    /// Last segment of `properties.applicationInsights`.
    pub application_insights: Option<String>,
    /// `properties.notebookInfo.fqdn`.
    pub notebook_fqdn: Option<String>,
    /// `properties.publicNetworkAccess`.
    pub public_network_access: Option<String>,
    /// `properties.managedNetwork.isolationMode`.
    pub isolation_mode: Option<String>,
    /// `properties.privateEndpointConnections`.
    pub connections: Vec<Connection>,
    /// ARM ids of the storage account, key vault and registry.
    pub dependencies: Vec<(Dependency, String)>,
}

fn last_segment(id: Option<String>) -> Option<String> {
    id.and_then(|i| i.trim_end_matches('/').rsplit('/').next().map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// Parses the workspace GET body.
pub fn parse_workspace(body: &str) -> Result<WorkspaceFacts, String> {
    let v: Value = serde_json::from_str(body).map_err(|_| "ARM answered the workspace GET with invalid JSON")?;
    if v.get("properties").is_none_or(|p| !p.is_object()) {
        return Err("ARM answered the workspace GET without properties".into());
    }
    let dependencies = [
        (Dependency::Storage, "/properties/storageAccount"),
        (Dependency::KeyVault, "/properties/keyVault"),
        (Dependency::Registry, "/properties/containerRegistry"),
    ]
    .into_iter()
    .filter_map(|(d, pointer)| Some((d, text(&v, pointer)?)))
    .collect();
    Ok(WorkspaceFacts {
        name: text(&v, "/name"),
        location: text(&v, "/location"),
        workspace_id: text(&v, "/properties/workspaceId"),
        storage_account: last_segment(text(&v, "/properties/storageAccount")),
        key_vault: last_segment(text(&v, "/properties/keyVault")),
        container_registry: last_segment(text(&v, "/properties/containerRegistry")),
        application_insights: last_segment(text(&v, "/properties/applicationInsights")),
        notebook_fqdn: text(&v, "/properties/notebookInfo/fqdn"),
        public_network_access: text(&v, "/properties/publicNetworkAccess"),
        isolation_mode: text(&v, "/properties/managedNetwork/isolationMode"),
        connections: parse_connections(&v),
        dependencies,
    })
}

/// Private endpoint connections from a resource (`properties.privateEndpointConnections`) or a
/// connection list (`value`).
pub fn parse_connections(v: &Value) -> Vec<Connection> {
    v.pointer("/properties/privateEndpointConnections")
        .or_else(|| v.get("value"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(Connection {
                name: text(c, "/name").unwrap_or_default(),
                endpoint_id: text(c, "/properties/privateEndpoint/id")?,
                status: text(c, "/properties/privateLinkServiceConnectionState/status").unwrap_or_default(),
            })
        })
        .collect()
}

/// A private endpoint's `customDnsConfigs` as expected addresses, and its NIC ids.
pub fn parse_private_endpoint(body: &str) -> Result<(ExpectedIps, Vec<String>), String> {
    let v: Value = serde_json::from_str(body).map_err(|_| "invalid JSON")?;
    let mut ips = ExpectedIps::new();
    if let Some(configs) = v.pointer("/properties/customDnsConfigs") {
        // An endpoint with no custom DNS configs adds nothing here: its NICs are read instead.
        let _ = endpoints::parse_file(&configs.to_string(), &mut ips);
    }
    let nics = v
        .pointer("/properties/networkInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| text(n, "/id"))
        .collect();
    Ok((ips, nics))
}

/// A private endpoint NIC's `ipConfigurations[].properties.{privateIPAddress,
/// privateLinkConnectionProperties.fqdns}` as expected addresses.
pub fn parse_nic(body: &str) -> Result<ExpectedIps, String> {
    let v: Value = serde_json::from_str(body).map_err(|_| "invalid JSON")?;
    let mut ips = ExpectedIps::new();
    if let Some(configs) = v.pointer("/properties/ipConfigurations") {
        let _ = endpoints::parse_file(&configs.to_string(), &mut ips);
    }
    Ok(ips)
}

/// Why the workspace could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    /// 401: the token itself was refused.
    #[error(
        "ARM did not accept the token from {0} (HTTP 401{1}): it has expired, or is for another cloud or audience than ARM"
    )]
    BadToken(&'static str, String),
    /// 403: the identity may not read the workspace.
    #[error(
        "ARM refused to show workspace {workspace} (HTTP {status}{code}): the identity from {source_label} needs the Reader role on the workspace and on its private endpoints"
    )]
    Denied {
        /// The workspace name.
        workspace: String,
        /// 403.
        status: u16,
        /// ` (AuthorizationFailed)` or empty.
        code: String,
        /// Where the token came from.
        source_label: &'static str,
    },
    /// 404.
    #[error("ARM has no workspace {0}: check --workspace-resource-id or the workspace config.json")]
    NotFound(String),
    /// Any other answer.
    #[error("ARM answered the workspace GET with HTTP {0}{1}")]
    Status(u16, String),
    /// No answer.
    #[error("ARM unreachable: {0}")]
    Unreachable(String),
    /// An answer that is not a workspace.
    #[error("{0}")]
    Malformed(String),
}

/// ARM's `error.code`, shown as ` (Code)`.
fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| text(&v, "/error/code"))
        .map(|c| format!(" ({})", crate::sanitize::echo(&c)))
        .unwrap_or_default()
}

/// What ARM told: the workspace, exact private-endpoint addresses, and what went wrong on the way.
#[derive(Debug, Clone, Default)]
pub struct ArmFindings {
    /// The workspace document's facts.
    pub workspace: WorkspaceFacts,
    /// Exact addresses from approved private endpoints.
    pub expected: ExpectedIps,
    /// The dependencies' private endpoint connections, each with its owner
    /// (`storage account <name>`).
    pub dependency_connections: Vec<(String, Connection)>,
    /// What each dependency's own GET said, for those whose GET and connection list were
    /// both read (a dependency missing here tells nothing about its private endpoints).
    pub dependency_facts: Vec<(Dependency, String, DependencyFacts)>,
    /// Endpoints that could not be read, one line each.
    pub problems: Vec<String>,
    /// The compute instance's domain, when its ARM document was read.
    pub instances_domain: Option<String>,
}

async fn get(
    client: &Client,
    arm: &Url,
    token: &ArmToken,
    path: &str,
    deadline: Instant,
) -> Result<crate::http_client::Response, String> {
    let url = arm.join(path);
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let request = Request {
        method: "GET",
        url: &url,
        headers: vec![("Authorization", token.bearer())],
        body: None,
    };
    client.send(request, left).await
}

/// Pages of one list followed at most: a resource with more private endpoint connections than
/// this is not one a probe run should spend its discovery budget on.
const MAX_PAGES: usize = 10;

/// The path of a list's next page (`nextLink`, as Key Vault's list pages, azure-rest-api-specs
/// `Microsoft.KeyVault/stable/2023-07-01` `listPrivateEndpointConnection.json`), or `None` on
/// the last page. A next page elsewhere than `arm` is refused: the token goes to ARM only.
fn next_page(arm: &Url, list: &Value) -> Result<Option<String>, String> {
    let Some(link) = list.get("nextLink").and_then(Value::as_str).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let refused = || {
        format!(
            "a nextLink outside {} was not followed (the token is sent to ARM only): '{}'",
            arm.origin(),
            crate::sanitize::echo(link)
        )
    };
    let url = Url::parse(link).map_err(|_| refused())?;
    if url.origin() != arm.origin() {
        return Err(refused());
    }
    url.path
        .strip_prefix(arm.path.trim_end_matches('/'))
        .map(|p| Some(p.to_string()))
        .ok_or_else(refused)
}

/// The instance domain the compute instance `name`'s applications are served under, from its
/// ARM document (`properties.properties.applications[].endpointUri`, e.g.
/// `https://<name>.<region>.instances.azureml.ms/lab`): the service's own answer to which of
/// the two documented forms this workspace uses.
pub fn parse_instances_domain(body: &str, name: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.pointer("/properties/properties/applications")?
        .as_array()?
        .iter()
        .filter_map(|a| a.get("endpointUri").and_then(Value::as_str))
        .find_map(|uri| {
            let host = uri.split("://").nth(1)?.split(['/', ':', '?']).next()?;
            let labels: Vec<&str> = host.split('.').collect();
            // <name>[-<port>].<region>.<domain…>
            let first = labels.first()?;
            let own = first.eq_ignore_ascii_case(name)
                || first
                    .rsplit_once('-')
                    .is_some_and(|(n, port)| n.eq_ignore_ascii_case(name) && port.chars().all(|c| c.is_ascii_digit()));
            (own && labels.len() > 3 && labels[2].eq_ignore_ascii_case("instances")).then(|| labels[2..].join("."))
        })
}

/// Reads the compute instance `name` of `workspace` for its instance domain; `None` when ARM
/// does not say (no such compute, no permission, another compute type).
pub async fn read_instances_domain(
    client: &Client,
    arm: &Url,
    token: &ArmToken,
    workspace: &WorkspaceRef,
    name: &str,
    deadline: Instant,
) -> Option<String> {
    let path = format!("{}/computes/{name}?api-version={WORKSPACE_API}", workspace.id);
    let r = get(client, arm, token, &path, deadline).await.ok()?;
    (r.status == 200)
        .then(|| parse_instances_domain(&r.body, name))
        .flatten()
}

/// GETs a storage account or key vault itself.
async fn read_dependency(
    client: &Client,
    arm: &Url,
    token: &ArmToken,
    dependency: Dependency,
    id: &str,
    deadline: Instant,
) -> Result<DependencyFacts, String> {
    let r = get(
        client,
        arm,
        token,
        &format!("{id}{}", dependency.resource_path()),
        deadline,
    )
    .await?;
    if r.status != 200 {
        return Err(format!(
            "ARM answered HTTP {}{} (Reader on it tells its region and network rules)",
            r.status,
            error_code(&r.body)
        ));
    }
    parse_dependency(dependency, &r.body)
}

/// Reads the workspace and its approved private endpoints before `deadline`.
pub async fn read(
    client: &Client,
    arm: &Url,
    token: &ArmToken,
    source_label: &'static str,
    workspace: &WorkspaceRef,
    deadline: Instant,
) -> Result<ArmFindings, ArmError> {
    let response = get(
        client,
        arm,
        token,
        &format!("{}?api-version={WORKSPACE_API}", workspace.id),
        deadline,
    )
    .await
    .map_err(ArmError::Unreachable)?;
    match response.status {
        200 => {}
        401 => return Err(ArmError::BadToken(source_label, error_code(&response.body))),
        403 => {
            return Err(ArmError::Denied {
                workspace: workspace.name.clone(),
                status: response.status,
                code: error_code(&response.body),
                source_label,
            });
        }
        404 => return Err(ArmError::NotFound(workspace.name.clone())),
        s => return Err(ArmError::Status(s, error_code(&response.body))),
    }
    let mut findings = ArmFindings {
        workspace: parse_workspace(&response.body).map_err(ArmError::Malformed)?,
        ..Default::default()
    };
    for (dependency, id) in findings.workspace.dependencies.clone() {
        let name = id.rsplit('/').next().unwrap_or_default().to_string();
        // Names ARM chose end up in warnings: quoted inert and short where they are built.
        let owner = format!("{} {}", dependency.label(), crate::sanitize::echo(&name));
        let mut facts = None;
        if dependency != Dependency::Registry {
            facts = read_dependency(client, arm, token, dependency, &id, deadline)
                .await
                .map_err(|e| findings.problems.push(format!("{owner}: {e}")))
                .ok();
        }
        let mut listed = true;
        let mut next = Some(format!("{id}{}", dependency.connections_path()));
        let mut pages = 0;
        while let Some(path) = next.take() {
            match get(client, arm, token, &path, deadline).await {
                Ok(r) if r.status == 200 => match serde_json::from_str::<Value>(&r.body) {
                    Ok(v) => {
                        if dependency == Dependency::Registry && pages == 0 {
                            facts = parse_dependency(dependency, &r.body).ok();
                        }
                        findings
                            .dependency_connections
                            .extend(parse_connections(&v).into_iter().map(|c| (owner.clone(), c)));
                        pages += 1;
                        match next_page(arm, &v) {
                            Ok(Some(_)) if pages == MAX_PAGES => findings.problems.push(format!(
                                "{owner}: its private endpoint connections run past {MAX_PAGES} pages; the rest were not read"
                            )),
                            Ok(page) => next = page,
                            Err(e) => findings.problems.push(format!("{owner}: {e}")),
                        }
                    }
                    Err(_) => {
                        listed = false;
                        findings
                            .problems
                            .push(format!("{owner}: ARM answered with invalid JSON"));
                    }
                },
                Ok(r) => {
                    listed = false;
                    findings.problems.push(format!(
                        "{owner}: ARM answered HTTP {}{} (Reader on it is needed for exact-IP checks of its names)",
                        r.status,
                        error_code(&r.body)
                    ));
                }
                Err(e) => {
                    listed = false;
                    findings.problems.push(format!("{owner}: {e}"));
                }
            }
        }
        if let (true, Some(facts)) = (listed, facts) {
            findings.dependency_facts.push((dependency, name, facts));
        }
    }
    let mut approved: Vec<String> = findings
        .workspace
        .connections
        .iter()
        .chain(findings.dependency_connections.iter().map(|(_, c)| c))
        .filter(|c| c.status.eq_ignore_ascii_case("approved"))
        .map(|c| c.endpoint_id.clone())
        .collect();
    approved.sort();
    approved.dedup();
    for endpoint in approved {
        let short = crate::sanitize::echo(endpoint.rsplit('/').next().unwrap_or_default());
        let (ips, nics) = match get(
            client,
            arm,
            token,
            &format!("{endpoint}?api-version={NETWORK_API}"),
            deadline,
        )
        .await
        {
            Ok(r) if r.status == 200 => match parse_private_endpoint(&r.body) {
                Ok(parsed) => parsed,
                Err(e) => {
                    findings.problems.push(format!("private endpoint {short}: {e}"));
                    continue;
                }
            },
            Ok(r) => {
                findings.problems.push(format!(
                    "private endpoint {short}: ARM answered HTTP {}{} (Reader on its resource group is needed for exact-IP checks)",
                    r.status,
                    error_code(&r.body)
                ));
                continue;
            }
            Err(e) => {
                findings.problems.push(format!("private endpoint {short}: {e}"));
                continue;
            }
        };
        let mut ips = ips;
        if ips.is_empty() {
            for nic in nics {
                match get(
                    client,
                    arm,
                    token,
                    &format!("{nic}?api-version={NETWORK_API}"),
                    deadline,
                )
                .await
                {
                    Ok(r) if r.status == 200 => ips.extend(parse_nic(&r.body).unwrap_or_default()),
                    Ok(r) => findings.problems.push(format!(
                        "network interface of private endpoint {short}: ARM answered HTTP {}",
                        r.status
                    )),
                    Err(e) => findings
                        .problems
                        .push(format!("network interface of private endpoint {short}: {e}")),
                }
            }
        }
        for (name, addresses) in ips {
            let entry = findings.expected.entry(name).or_default();
            for a in addresses {
                if !entry.contains(&a) {
                    entry.push(a);
                }
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_says_its_region_rules_and_data_endpoint() {
        // Shapes of the GETs: Microsoft.Storage 2023-05-01 StorageAccount (networkAcls),
        // Microsoft.KeyVault 2023-07-01 Vault (networkAcls), Microsoft.ContainerRegistry
        // 2023-07-01 Registry (networkRuleSet, dataEndpointEnabled).
        let storage = r#"{"location":"westeurope","properties":{"networkAcls":{"defaultAction":"Deny",
            "virtualNetworkRules":[{"id":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/a"}],"ipRules":[]}}}"#;
        let f = parse_dependency(Dependency::Storage, storage).unwrap();
        assert_eq!(f.location.as_deref(), Some("westeurope"));
        assert_eq!((f.default_action.as_deref(), f.vnet_rules), (Some("Deny"), 1));
        assert!(!f.data_endpoint_enabled);
        let registry = r#"{"location":"northeurope","properties":{"dataEndpointEnabled":true,
            "dataEndpointHostNames":["acr.northeurope.data.azurecr.io"],"networkRuleSet":{"defaultAction":"Allow"},
            "publicNetworkAccess":"Enabled"}}"#;
        let f = parse_dependency(Dependency::Registry, registry).unwrap();
        assert!(f.data_endpoint_enabled);
        assert_eq!(f.default_action.as_deref(), Some("Allow"));
        assert_eq!(f.public_network_access.as_deref(), Some("Enabled"));
        assert_eq!(
            parse_dependency(Dependency::KeyVault, "{}").unwrap(),
            DependencyFacts::default()
        );
        assert!(parse_dependency(Dependency::KeyVault, "<html>").is_err());
    }

    #[test]
    fn the_instance_domain_comes_from_the_compute_applications() {
        let compute = |uri: &str| {
            format!(
                r#"{{"properties":{{"computeType":"ComputeInstance","properties":{{"applications":[{{"displayName":"Jupyter","endpointUri":"{uri}"}}]}}}}}}"#
            )
        };
        assert_eq!(
            parse_instances_domain(
                &compute("https://ci-alice.westeurope.instances.azureml.ms/tree/"),
                "ci-alice"
            )
            .as_deref(),
            Some("instances.azureml.ms")
        );
        assert_eq!(
            parse_instances_domain(
                &compute("https://CI-Alice-8787.eastus.instances.ml.azure.ms"),
                "ci-alice"
            )
            .as_deref(),
            Some("instances.ml.azure.ms")
        );
        for other in [
            "https://someone-else.eastus.instances.azureml.ms",
            "https://ci-alice.eastus.notebooks.azure.net",
            "not a uri",
        ] {
            assert_eq!(parse_instances_domain(&compute(other), "ci-alice"), None, "{other}");
        }
        assert_eq!(parse_instances_domain("{}", "ci-alice"), None);
    }

    #[test]
    fn next_pages_are_followed_on_arm_only() {
        let arm = Url::parse("https://management.azure.com").unwrap();
        let page = |link: Value| serde_json::json!({"value": [], "nextLink": link});
        assert_eq!(next_page(&arm, &page(Value::Null)), Ok(None));
        assert_eq!(next_page(&arm, &serde_json::json!({"value": []})), Ok(None));
        assert_eq!(
            next_page(
                &arm,
                &page("https://management.azure.com/subscriptions/s/x?api-version=1&$skipToken=2".into())
            ),
            Ok(Some("/subscriptions/s/x?api-version=1&$skipToken=2".into()))
        );
        for elsewhere in [
            "https://attacker.example/subscriptions/s/x",
            "http://management.azure.com/subscriptions/s/x",
            "https://management.azure.com:8443/x",
            "not a url",
        ] {
            let e = next_page(&arm, &page(elsewhere.into())).unwrap_err();
            assert!(e.contains("not followed"), "{elsewhere}: {e}");
        }
        let prefixed = Url::parse("https://arm.test/base").unwrap();
        assert_eq!(
            next_page(&prefixed, &page("https://arm.test/base/x?p=2".into())),
            Ok(Some("/x?p=2".into()))
        );
    }
    use std::net::IpAddr;

    const WORKSPACE: &str = include_str!("../../tests/fixtures/arm/workspace.json");
    const WS_PE: &str = include_str!("../../tests/fixtures/arm/ws-pe.json");
    const SPOKE_PE: &str = include_str!("../../tests/fixtures/arm/spoke-pe.json");
    const SPOKE_NIC: &str = include_str!("../../tests/fixtures/arm/spoke-pe-nic.json");

    #[test]
    fn workspace_ids_follow_arm_shape() {
        let w = WorkspaceRef::parse(
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg-ml/providers/microsoft.machinelearningservices/workspaces/mlws01/",
        )
        .unwrap();
        assert_eq!(w.name, "mlws01");
        for bad in [
            "",
            "mlws01",
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
            "/subscriptions//resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w",
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/extra",
        ] {
            assert!(WorkspaceRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            WorkspaceRef::from_parts("s", "g", "n").unwrap().id,
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/n"
        );
    }

    #[test]
    fn reads_the_workspace_document() {
        let f = parse_workspace(WORKSPACE).unwrap();
        assert_eq!(f.workspace_id.as_deref(), Some("fb7e20a0-8891-458b-b969-55ddb3382f51"));
        assert_eq!(f.location.as_deref(), Some("eastus"));
        assert_eq!(f.storage_account.as_deref(), Some("mlwsstorage01"));
        assert_eq!(f.key_vault.as_deref(), Some("mlws-kv-01"));
        assert_eq!(f.container_registry.as_deref(), Some("mlwsacr01"));
        assert_eq!(f.application_insights.as_deref(), Some("mlws-ai"));
        assert_eq!(f.public_network_access.as_deref(), Some("Disabled"));
        assert_eq!(f.isolation_mode.as_deref(), Some("Disabled"));
        assert!(f.notebook_fqdn.unwrap().ends_with(".eastus.notebooks.azure.net"));
        let statuses: Vec<&str> = f.connections.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(statuses, ["Approved", "Pending"]);
        assert!(f.connections[0].endpoint_id.ends_with("/privateEndpoints/ws-pe"));
        assert!(parse_workspace("{}").is_err());
        assert!(parse_workspace("<html>").is_err());
    }

    #[test]
    fn reads_exact_addresses_from_endpoints_and_nics() {
        let (ips, nics) = parse_private_endpoint(WS_PE).unwrap();
        let five: IpAddr = "10.1.0.5".parse().unwrap();
        assert_eq!(
            ips["fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms"],
            vec![five]
        );
        assert_eq!(ips.len(), 3);
        assert_eq!(nics.len(), 1);
        let (ips, nics) = parse_private_endpoint(SPOKE_PE).unwrap();
        assert!(ips.is_empty(), "no custom DNS configs");
        assert!(nics[0].ends_with("spoke-pe.nic.0002"));
        let ips = parse_nic(SPOKE_NIC).unwrap();
        assert_eq!(
            ips["fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms"],
            vec!["10.2.0.7".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn reads_the_dependencies_connections() {
        let f = parse_workspace(WORKSPACE).unwrap();
        let kinds: Vec<Dependency> = f.dependencies.iter().map(|(d, _)| *d).collect();
        assert_eq!(kinds, [Dependency::Storage, Dependency::KeyVault, Dependency::Registry]);
        assert!(f.dependencies[0].1.ends_with("/storageAccounts/mlwsstorage01"));
        let list = |text: &str| parse_connections(&serde_json::from_str(text).unwrap());
        let storage = list(include_str!("../../tests/fixtures/arm/storage-pe-connections.json"));
        assert_eq!((storage[0].status.as_str(), storage.len()), ("Approved", 1));
        assert!(storage[0].endpoint_id.ends_with("/privateEndpoints/sa-blob-pe"));
        let vault = list(include_str!("../../tests/fixtures/arm/keyvault-pe-connections.json"));
        assert_eq!(vault[0].status, "Pending");
        assert!(list(include_str!("../../tests/fixtures/arm/registry.json")).is_empty());
    }

    #[test]
    fn denial_names_the_role() {
        let e = ArmError::Denied {
            workspace: "mlws01".into(),
            status: 403,
            code: error_code(r#"{"error":{"code":"AuthorizationFailed","message":"..."}}"#),
            source_label: "managed identity (IMDS)",
        }
        .to_string();
        assert!(
            e.contains("HTTP 403 (AuthorizationFailed)") && e.contains("Reader role"),
            "{e}"
        );
    }
}
