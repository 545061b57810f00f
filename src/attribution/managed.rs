//! Managed virtual network workspaces: the workspace's outbound rules decide what its managed
//! computes reach, not this VNet's NSGs and routes.
//!
//! Shapes (machinelearningservices `workspaceRP.json`, 2024-04-01): `properties.managedNetwork`
//! is `ManagedNetworkSettings` { `isolationMode` Disabled | AllowInternetOutbound |
//! AllowOnlyApprovedOutbound, `outboundRules`: name → `OutboundRule` { `type` FQDN | ServiceTag |
//! PrivateEndpoint, `category`, `status` Inactive | Active, `destination` } }, where a FQDN
//! rule's destination is a name, a ServiceTag rule's is { `serviceTag`, `protocol`, `portRanges`,
//! `action`, `addressPrefixes` ("if provided, the ServiceTag property will be ignored") } and a
//! PrivateEndpoint rule's is { `serviceResourceId`, `subresourceTarget`, `sparkEnabled` }.
//! Limits from how-to-managed-network.md: "FQDN outbound rules only support ports 80 and 443",
//! and in approved-outbound mode "you can't use an FQDN rule to access Azure Storage Accounts.
//! You must use a private endpoint instead."

use super::change::{self, ArmId};
use super::finding::{AzureFinding, Basis, Change, Detail, Effect, FindingKind, Verdict};
use super::matching::{Match, fqdn_covers, in_ports, in_prefixes};
use crate::model::suite::Protocol;
use crate::wire::json;
use serde_json::Value;
use std::net::IpAddr;

/// What a rule reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A name, `*.` wildcards allowed.
    Fqdn(String),
    /// A service tag rule.
    ServiceTag {
        /// The tag.
        tag: String,
        /// `TCP`, `UDP`, `*`.
        protocol: String,
        /// `"80, 8080-8089"`.
        port_ranges: String,
        /// `Allow` (or `Deny`).
        action: String,
        /// The tag's prefixes, when the workspace lists them.
        address_prefixes: Vec<String>,
    },
    /// A private endpoint to a resource.
    PrivateEndpoint {
        /// The resource.
        service_resource_id: String,
        /// `blob`, `file`, `vault`, …
        subresource_target: String,
        /// Names the rule serves, when listed (`--fqdns`).
        fqdns: Vec<String>,
    },
    /// A type this version does not know.
    Other(String),
}

impl Destination {
    fn text(&self) -> String {
        match self {
            Destination::Fqdn(f) => f.clone(),
            Destination::ServiceTag {
                tag,
                protocol,
                port_ranges,
                ..
            } => format!("{tag} {protocol} {port_ranges}"),
            Destination::PrivateEndpoint {
                service_resource_id,
                subresource_target,
                ..
            } => {
                format!("{service_resource_id} ({subresource_target})")
            }
            Destination::Other(t) => t.clone(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Destination::Fqdn(_) => "FQDN",
            Destination::ServiceTag { .. } => "ServiceTag",
            Destination::PrivateEndpoint { .. } => "PrivateEndpoint",
            Destination::Other(_) => "",
        }
    }
}

/// One outbound rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// Its name (the map key).
    pub name: String,
    /// What it reaches.
    pub destination: Destination,
    /// `Active` or `Inactive`.
    pub status: String,
    /// `Required`, `Recommended`, `UserDefined`, `Dependency`.
    pub category: String,
}

/// A workspace's managed network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNetwork {
    /// The workspace's ARM id.
    pub workspace: String,
    /// The isolation mode.
    pub isolation_mode: String,
    /// Its outbound rules.
    pub rules: Vec<OutboundRule>,
}

/// Reads `properties.managedNetwork` from a workspace document; `None` when it has none or
/// isolation is `Disabled`.
pub fn parse(workspace: &str, doc: &Value) -> Option<ManagedNetwork> {
    let net = doc.pointer("/properties/managedNetwork")?;
    let text = |v: &Value, p: &str| json::text(v, p).unwrap_or_default();
    let isolation_mode = text(net, "/isolationMode");
    if isolation_mode.is_empty() || isolation_mode.eq_ignore_ascii_case("disabled") {
        return None;
    }
    let rules = net
        .get("outboundRules")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, rule)| {
            let d = rule.get("destination").cloned().unwrap_or(Value::Null);
            let list = |p: &str| json::strings(&d, p);
            let destination = match text(rule, "/type").to_ascii_lowercase().as_str() {
                "fqdn" => Destination::Fqdn(d.as_str().unwrap_or_default().to_string()),
                "servicetag" => Destination::ServiceTag {
                    tag: text(&d, "/serviceTag"),
                    protocol: text(&d, "/protocol"),
                    port_ranges: text(&d, "/portRanges"),
                    action: text(&d, "/action"),
                    address_prefixes: list("/addressPrefixes"),
                },
                "privateendpoint" => Destination::PrivateEndpoint {
                    service_resource_id: text(&d, "/serviceResourceId"),
                    subresource_target: text(&d, "/subresourceTarget"),
                    fqdns: list("/fqdns"),
                },
                other => Destination::Other(other.to_string()),
            };
            OutboundRule {
                name: name.clone(),
                destination,
                status: text(rule, "/status"),
                category: text(rule, "/category"),
            }
        })
        .collect();
    Some(ManagedNetwork {
        workspace: workspace.to_string(),
        isolation_mode,
        rules,
    })
}

/// The flow a managed compute would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The name, when the flow has one.
    pub fqdn: Option<String>,
    /// The address, when known.
    pub destination: Option<IpAddr>,
    /// Destination port.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The service tag the suite documents for the destination, when it knows one.
    pub service_tag: Option<String>,
    /// The probes saw the managed network's firewall deny this flow (HTTP 470, a close after the
    /// ClientHello): no rule let it through, whatever a service tag's unread prefixes hold.
    pub denied_by_firewall: bool,
}

impl Flow {
    fn describe(&self) -> String {
        let target = self
            .fqdn
            .clone()
            .or_else(|| self.destination.map(|d| d.to_string()))
            .unwrap_or_else(|| "?".into());
        format!("{target}:{}", self.port)
    }
}

fn rule_matches(rule: &OutboundRule, flow: &Flow) -> Match {
    match &rule.destination {
        Destination::Fqdn(pattern) => match &flow.fqdn {
            Some(f) if fqdn_covers(pattern, f) && matches!(flow.port, 80 | 443) => Match::Yes,
            _ => Match::No,
        },
        Destination::ServiceTag {
            tag,
            protocol,
            port_ranges,
            action,
            address_prefixes,
        } => {
            if action.eq_ignore_ascii_case("deny") {
                return Match::No;
            }
            let proto = match (protocol.to_ascii_lowercase().as_str(), flow.protocol) {
                ("*" | "any", _) | ("tcp", Protocol::Tcp) | ("udp", Protocol::Udp) => Match::Yes,
                _ => Match::No,
            };
            let port = in_ports(std::slice::from_ref(port_ranges), flow.port);
            let destination = if !address_prefixes.is_empty() {
                flow.destination
                    .map_or(Match::Unknown("the destination address is not known".into()), |ip| {
                        in_prefixes(address_prefixes, ip)
                    })
            } else if flow.service_tag.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(tag)) {
                Match::Yes
            } else {
                Match::Unknown(format!(
                    "cannot evaluate service tag {} without its prefixes",
                    crate::sanitize::echo(tag)
                ))
            };
            Match::all([proto, port, destination])
        }
        Destination::PrivateEndpoint { fqdns, .. } => match &flow.fqdn {
            Some(f) if fqdns.iter().any(|p| fqdn_covers(p, f)) => Match::Yes,
            _ => Match::No,
        },
        Destination::Other(_) => Match::No,
    }
}

/// What the managed network does to `flow`: a finding, a change, notes.
pub fn evaluate(net: &ManagedNetwork, flow: &Flow) -> (AzureFinding, Option<Change>, Vec<String>) {
    let mut notes = Vec::new();
    let finding = |effect: Effect, rule: Option<&OutboundRule>, says: String| AzureFinding {
        resource: net.workspace.clone(),
        kind: FindingKind::OutboundRule,
        name: rule.map_or_else(|| "no matching outbound rule".into(), |r| r.name.clone()),
        detail: Detail::OutboundRule {
            isolation_mode: net.isolation_mode.clone(),
            rule_type: rule.map_or("", |r| r.destination.kind()).into(),
            destination: rule.map(|r| r.destination.text()).unwrap_or_default(),
            status: rule.map(|r| r.status.clone()).unwrap_or_default(),
        },
        verdict: Verdict { effect, says },
        basis: Basis::Configuration,
    };
    if net.isolation_mode.eq_ignore_ascii_case("AllowInternetOutbound") {
        let says = format!(
            "isolation mode AllowInternetOutbound lets the workspace's managed computes reach {} over the internet",
            flow.describe()
        );
        return (finding(Effect::Allows, None, says), None, notes);
    }
    let mut unknown: Option<(&OutboundRule, String)> = None;
    let mut ruled_out: Vec<&str> = Vec::new();
    for rule in &net.rules {
        let active = rule.status.is_empty() || rule.status.eq_ignore_ascii_case("active");
        match rule_matches(rule, flow) {
            Match::Yes if active => {
                let says = format!(
                    "outbound rule {} ({} {}) allows the workspace's managed computes to reach {}",
                    rule.name,
                    rule.destination.kind(),
                    rule.destination.text(),
                    flow.describe()
                );
                return (finding(Effect::Allows, Some(rule), says), None, notes);
            }
            Match::Yes => notes.push(format!(
                "outbound rule {} would allow it but is {}",
                rule.name, rule.status
            )),
            Match::Unknown(_) if active && flow.denied_by_firewall => ruled_out.push(&rule.name),
            Match::Unknown(why) if active => {
                unknown.get_or_insert((rule, why));
            }
            _ => {}
        }
        if let (Destination::Fqdn(p), Some(f)) = (&rule.destination, &flow.fqdn)
            && fqdn_covers(p, f)
            && !matches!(flow.port, 80 | 443)
        {
            notes.push(format!(
                "FQDN outbound rule {} names {f} but FQDN rules only support ports 80 and 443",
                rule.name
            ));
        }
    }
    // No rule surely allows it: the missing rule is worth writing even when a service tag rule
    // might cover the address, since only a rule for the name is certain.
    let change = outbound_rule_change(net, flow, &mut notes);
    if let Some((rule, why)) = unknown {
        let says = format!(
            "no FQDN or private endpoint rule allows {}; outbound rule {} may cover its address but cannot be evaluated: {why}",
            flow.describe(),
            rule.name
        );
        return (finding(Effect::Undetermined, Some(rule), says), change, notes);
    }
    let mut says = format!(
        "no outbound rule of the workspace's managed network allows {}, and isolation mode {} denies everything not approved",
        flow.describe(),
        net.isolation_mode
    );
    if !ruled_out.is_empty() {
        says.push_str(&format!(
            " (its firewall denied this very flow, so service tag rule {} does not cover it either)",
            ruled_out.join(", ")
        ));
    }
    (finding(Effect::Blocks, None, says), change, notes)
}

/// Storage account names (public, US Gov, China clouds): FQDN rules can't reach them.
fn is_storage(fqdn: &str) -> bool {
    let f = fqdn.to_ascii_lowercase();
    ["core.windows.net", "core.usgovcloudapi.net", "core.chinacloudapi.cn"]
        .iter()
        .any(|s| f.ends_with(&format!(".{s}")))
}

/// `az ml workspace outbound-rule set` for the missing rule, when one can be written.
fn outbound_rule_change(net: &ManagedNetwork, flow: &Flow, notes: &mut Vec<String>) -> Option<Change> {
    let ws = ArmId::parse(&net.workspace)?;
    let base = [
        ("--subscription", ws.subscription.as_str()),
        ("-g", ws.resource_group.as_str()),
        ("--workspace-name", ws.name.as_str()),
    ];
    let words = ["az", "ml", "workspace", "outbound-rule", "set"];
    let port = flow.port.to_string();
    let az = match (&flow.fqdn, &flow.service_tag) {
        (Some(f), _) if is_storage(f) => {
            notes.push(format!(
                "{f} is a storage account name: in approved-outbound mode an FQDN rule can't reach it; add a private endpoint rule (--type private_endpoint --service-resource-id <the account's id> --subresource-target <blob|file|…>)"
            ));
            return None;
        }
        (Some(f), _) if matches!(flow.port, 80 | 443) => {
            let name = change::rule_name(&["allow", f]);
            let mut flags = base.to_vec();
            flags.extend([
                ("--rule", name.as_str()),
                ("--type", "fqdn"),
                ("--destination", f.as_str()),
            ]);
            change::command(&words, &flags)?
        }
        (_, Some(tag)) => {
            let name = change::rule_name(&["allow", tag, &port]);
            let protocol = if flow.protocol == Protocol::Tcp { "TCP" } else { "UDP" };
            let mut flags = base.to_vec();
            flags.extend([
                ("--rule", name.as_str()),
                ("--type", "service_tag"),
                ("--service-tag", tag.as_str()),
                ("--protocol", protocol),
                ("--port-ranges", port.as_str()),
            ]);
            change::command(&words, &flags)?
        }
        _ => return None,
    };
    Some(Change { az, bicep: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_RULE: &str = include_str!("testdata/getRule.json");
    const WS: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/test-rg/providers/Microsoft.MachineLearningServices/workspaces/aml-workspace-name";

    /// A workspace document whose managed network holds the spec example's rule plus a service
    /// tag rule and a private endpoint rule in the spec's shapes.
    fn workspace(mode: &str) -> Value {
        let example: Value = serde_json::from_str(GET_RULE).unwrap();
        let fqdn_rule = example["responses"]["200"]["body"]["properties"].clone();
        serde_json::json!({"properties": {"managedNetwork": {"isolationMode": mode, "outboundRules": {
            "rule_name_1": fqdn_rule,
            "pypi": {"type": "FQDN", "destination": "*.pypi.org", "status": "Active", "category": "UserDefined"},
            "monitor": {"type": "ServiceTag", "status": "Active", "category": "UserDefined",
                        "destination": {"serviceTag": "AzureMonitor", "protocol": "TCP", "portRanges": "443", "action": "Allow"}},
            "blob": {"type": "PrivateEndpoint", "status": "Active", "category": "Required",
                     "destination": {"serviceResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/sa", "subresourceTarget": "blob", "sparkEnabled": false}}
        }}}})
    }

    fn flow(fqdn: &str, port: u16) -> Flow {
        Flow {
            fqdn: Some(fqdn.into()),
            destination: None,
            port,
            protocol: Protocol::Tcp,
            service_tag: None,
            denied_by_firewall: false,
        }
    }

    #[test]
    fn spec_rule_shapes_parse_and_disabled_isolation_is_not_applicable() {
        let net = parse(WS, &workspace("AllowOnlyApprovedOutbound")).unwrap();
        assert_eq!(net.rules.len(), 4);
        let spec = net.rules.iter().find(|r| r.name == "rule_name_1").unwrap();
        assert_eq!(
            spec.destination,
            Destination::Fqdn("destination_of_the_fqdn_rule".into())
        );
        assert_eq!(
            (spec.status.as_str(), spec.category.as_str()),
            ("Active", "UserDefined")
        );
        assert!(parse(WS, &workspace("Disabled")).is_none());
        assert!(parse(WS, &serde_json::json!({"properties": {}})).is_none());
    }

    #[test]
    fn fqdn_rules_cover_80_and_443_only() {
        let net = parse(WS, &workspace("AllowOnlyApprovedOutbound")).unwrap();
        let (f, change, _) = evaluate(&net, &flow("files.pypi.org", 443));
        assert_eq!((f.verdict.effect, f.name.as_str()), (Effect::Allows, "pypi"));
        assert!(change.is_none());
        let (f, _, notes) = evaluate(&net, &flow("files.pypi.org", 8443));
        assert_eq!(f.verdict.effect, Effect::Blocks);
        assert!(
            notes.iter().any(|n| n.contains("only support ports 80 and 443")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_missing_rule_gets_the_outbound_rule_command() {
        let net = parse(WS, &workspace("AllowOnlyApprovedOutbound")).unwrap();
        // The AzureMonitor rule on 443 might cover the address: undetermined, yet the FQDN rule
        // is the certain fix.
        let (f, change, _) = evaluate(&net, &flow("huggingface.co", 443));
        assert_eq!(
            (f.kind, f.verdict.effect),
            (FindingKind::OutboundRule, Effect::Undetermined)
        );
        assert!(
            f.verdict.says.starts_with(
                "no FQDN or private endpoint rule allows huggingface.co:443; outbound rule monitor may cover"
            ),
            "{}",
            f.verdict.says
        );
        let without_tags = ManagedNetwork {
            rules: net.rules.iter().filter(|r| r.name != "monitor").cloned().collect(),
            ..net.clone()
        };
        assert_eq!(
            evaluate(&without_tags, &flow("huggingface.co", 443)).0.verdict.effect,
            Effect::Blocks
        );
        assert_eq!(
            change.unwrap().az,
            "az ml workspace outbound-rule set --subscription 00000000-1111-2222-3333-444444444444 -g test-rg --workspace-name aml-workspace-name --rule allow-huggingface.co --type fqdn --destination huggingface.co"
        );
        let (_, change, notes) = evaluate(&net, &flow("sa2.blob.core.windows.net", 443));
        assert!(change.is_none());
        assert!(notes[0].contains("private endpoint rule"), "{notes:?}");
    }

    #[test]
    fn service_tag_rules_need_prefixes_or_the_documented_tag() {
        let net = parse(WS, &workspace("AllowOnlyApprovedOutbound")).unwrap();
        let mut monitor = flow("eastus.monitoring.azure.com", 443);
        let (f, _, _) = evaluate(&net, &monitor);
        assert_eq!(f.verdict.effect, Effect::Undetermined);
        assert!(
            f.verdict
                .says
                .contains("cannot evaluate service tag AzureMonitor without its prefixes"),
            "{}",
            f.verdict.says
        );
        monitor.service_tag = Some("AzureMonitor".into());
        assert_eq!(evaluate(&net, &monitor).0.verdict.effect, Effect::Allows);
        let mut other = flow("x.example", 5671);
        other.service_tag = Some("EventHub".into());
        let (_, change, _) = evaluate(&net, &other);
        assert!(change.unwrap().az.ends_with(
            "--rule allow-EventHub-5671 --type service_tag --service-tag EventHub --protocol TCP --port-ranges 5671"
        ));
    }

    #[test]
    fn a_denial_the_firewall_answered_rules_out_the_unread_service_tags() {
        let net = parse(WS, &workspace("AllowOnlyApprovedOutbound")).unwrap();
        let denied = Flow {
            denied_by_firewall: true,
            ..flow("huggingface.co", 443)
        };
        let (f, change, _) = evaluate(&net, &denied);
        assert_eq!(
            (f.verdict.effect, f.name.as_str()),
            (Effect::Blocks, "no matching outbound rule")
        );
        assert!(
            f.verdict
                .says
                .ends_with("so service tag rule monitor does not cover it either)"),
            "{}",
            f.verdict.says
        );
        assert!(change.unwrap().az.ends_with("--type fqdn --destination huggingface.co"));
        // A rule that allows the name still allows it: the denial was of another flow.
        let allowed = Flow {
            denied_by_firewall: true,
            ..flow("files.pypi.org", 443)
        };
        assert_eq!(evaluate(&net, &allowed).0.verdict.effect, Effect::Allows);
    }

    #[test]
    fn internet_outbound_mode_allows() {
        let net = parse(WS, &workspace("AllowInternetOutbound")).unwrap();
        assert_eq!(
            evaluate(&net, &flow("huggingface.co", 443)).0.verdict.effect,
            Effect::Allows
        );
    }
}
