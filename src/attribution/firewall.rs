//! Azure Firewall policy evaluation, in the documented processing order (Learn "Azure Firewall
//! rule processing logic", rule-processing.md, ms.date 03/23/2026):
//!
//! 1. "The parent policy always takes precedence over the child policy."
//! 2. "The system processes rule collection groups in priority order", then "rule collections
//!    in priority order" (100 highest … 65,000 lowest).
//! 3. "DNAT rules, then network rules, then application rules": the firewall iterates all groups
//!    once per rule type. DNAT applies to inbound traffic to the firewall, so outbound flows
//!    start with network rules.
//! 4. Rules are terminating. Application rules apply only "if the protocol is HTTP, HTTPS, or
//!    MSSQL"; HTTP matches the Host header, HTTPS "according to SNI only".
//! 5. No match: the built-in infrastructure rule collection (platform FQDNs only), then deny.
//!
//! Shapes: `firewallPolicies/{policy}/ruleCollectionGroups` (firewallPolicy.json:
//! `FirewallPolicyRuleCollectionGroup`, `FirewallPolicyFilterRuleCollection` with
//! `action.type` Allow | Deny, rules `ApplicationRule` | `NetworkRule` | `NatRule`).
//! What can't be evaluated is said, never guessed: FQDN tags and web categories (their members
//! are not published in the policy), service tags and IP groups without their prefixes, URL rules.

use super::change::{self, ArmId};
use super::finding::{AzureFinding, Basis, Change, Detail, Effect, FindingKind, Verdict};
use super::matching::{Address, Match, fqdn_covers, in_ports};
use crate::model::suite::Protocol;
use serde::Deserialize;
use std::net::IpAddr;

/// `FirewallPolicyRuleCollectionGroup`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleCollectionGroup {
    /// ARM id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Priority and collections.
    pub properties: GroupProperties,
}

/// `FirewallPolicyRuleCollectionGroupProperties`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupProperties {
    /// 100–65000, lower first.
    pub priority: Option<i64>,
    /// The collections.
    pub rule_collections: Vec<RuleCollection>,
}

/// `FirewallPolicyFilterRuleCollection` or `FirewallPolicyNatRuleCollection`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleCollection {
    /// `ruleCollectionType`: `FirewallPolicyFilterRuleCollection` or `FirewallPolicyNatRuleCollection`.
    #[serde(rename = "ruleCollectionType")]
    pub kind: String,
    /// Name.
    pub name: String,
    /// 100–65000, lower first.
    pub priority: Option<i64>,
    /// `{ "type": "Allow" | "Deny" | "DNAT" }`.
    pub action: Option<Action>,
    /// The rules, all of one type.
    pub rules: Vec<Rule>,
}

/// A collection's action.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Action {
    /// `Allow`, `Deny`, `DNAT`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// `ApplicationRule`, `NetworkRule` or `NatRule` (the discriminator `ruleType`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// `ruleType`: `ApplicationRule`, `NetworkRule`, `NatRule`.
    #[serde(rename = "ruleType")]
    pub kind: String,
    /// Name.
    pub name: String,
    /// Source addresses, ranges or `*`.
    pub source_addresses: Vec<String>,
    /// Source IP group ids.
    pub source_ip_groups: Vec<String>,
    /// Destination addresses or service tags.
    pub destination_addresses: Vec<String>,
    /// Destination IP group ids (network rules).
    pub destination_ip_groups: Vec<String>,
    /// Destination FQDNs (network rules, resolved by the firewall's DNS proxy).
    pub destination_fqdns: Vec<String>,
    /// Destination ports (network rules).
    pub destination_ports: Vec<String>,
    /// `TCP`, `UDP`, `Any`, `ICMP` (network rules).
    pub ip_protocols: Vec<String>,
    /// `Http:80`, `Https:443` (application rules).
    pub protocols: Vec<AppProtocol>,
    /// Target FQDNs, `*.contoso.com` wildcards allowed (application rules).
    pub target_fqdns: Vec<String>,
    /// Target URLs (application rules with TLS inspection).
    pub target_urls: Vec<String>,
    /// FQDN tags (application rules).
    pub fqdn_tags: Vec<String>,
    /// Web categories (application rules).
    pub web_categories: Vec<String>,
}

/// `FirewallPolicyRuleApplicationProtocol`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppProtocol {
    /// `Http`, `Https` (and `Mssql` in classic rules).
    pub protocol_type: String,
    /// Port.
    pub port: Option<i64>,
}

/// One policy's rule collection groups; a chain is given parent first.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The policy's ARM id.
    pub id: String,
    /// Its groups.
    pub groups: Vec<RuleCollectionGroup>,
}

/// The application protocol of a flow, for application rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// Plain HTTP (matched on the Host header).
    Http,
    /// TLS (matched on SNI).
    Https,
}

impl AppKind {
    fn name(self) -> &'static str {
        match self {
            AppKind::Http => "Http",
            AppKind::Https => "Https",
        }
    }
}

/// The flow as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// This NIC's address (the firewall sees it unless something NATs in between).
    pub source: Option<IpAddr>,
    /// The name the client asked for (SNI or Host).
    pub fqdn: Option<String>,
    /// The destination address, when known.
    pub destination: Option<IpAddr>,
    /// Destination port.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// HTTP or HTTPS, for application rules; `None`: application rules don't apply.
    pub app: Option<AppKind>,
}

impl Flow {
    fn describe(&self) -> String {
        let target = match (&self.fqdn, self.destination) {
            (Some(f), _) => f.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "?".into(),
        };
        format!("{target}:{}", self.port)
    }
}

/// Where a rule sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The policy holding it.
    pub policy: String,
    /// The group's ARM id.
    pub group_id: String,
    /// The group's name.
    pub group: String,
    /// The group's priority.
    pub group_priority: Option<i64>,
    /// The collection's name.
    pub collection: String,
    /// The collection's priority.
    pub collection_priority: Option<i64>,
    /// The rule's name.
    pub rule: String,
    /// `NetworkRule` or `ApplicationRule`.
    pub rule_type: String,
    /// `Allow` or `Deny`.
    pub action: String,
}

impl Hit {
    fn allows(&self) -> bool {
        self.action.eq_ignore_ascii_case("allow")
    }
}

/// What the policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule matched.
    Matched(Hit),
    /// A rule that can't be evaluated might match and would decide differently.
    Undetermined(Hit, String),
    /// No rule matched: the firewall denies by default.
    DefaultDeny,
}

/// The decision and what could not be evaluated on the way.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// Notes.
    pub notes: Vec<String>,
}

/// Evaluates `flow` against a policy chain (parent first).
pub fn evaluate(policies: &[Policy], flow: &Flow) -> Outcome {
    let mut notes = Vec::new();
    let mut pending: Vec<(Hit, String)> = Vec::new();
    let passes: &[&str] = if flow.app.is_some() {
        &["NetworkRule", "ApplicationRule"]
    } else {
        &["NetworkRule"]
    };
    for &pass in passes {
        for (hit, rule) in ordered(policies, pass) {
            let matched = if pass == "NetworkRule" {
                network_rule_matches(rule, flow)
            } else {
                application_rule_matches(rule, flow)
            };
            match matched {
                Match::No => {}
                Match::Unknown(why) => pending.push((hit, why)),
                Match::Yes => {
                    if let Some((first, why)) = pending.iter().find(|(p, _)| p.allows() != hit.allows()) {
                        return Outcome {
                            decision: Decision::Undetermined(first.clone(), why.clone()),
                            notes,
                        };
                    }
                    notes.extend(pending.iter().map(|(p, why)| {
                        format!(
                            "rule {} could not be evaluated ({why}); it would decide the same",
                            p.rule
                        )
                    }));
                    return Outcome {
                        decision: Decision::Matched(hit),
                        notes,
                    };
                }
            }
        }
    }
    if flow.app.is_none() {
        notes.push(format!(
            "application rules were not evaluated: they apply only to HTTP, HTTPS and MSSQL, and {} is not known to be one",
            flow.describe()
        ));
    }
    // A rule that might match but can't be evaluated: the default deny isn't certain unless it
    // would deny too.
    if pending.iter().all(|(p, _)| !p.allows()) {
        notes.extend(pending.iter().map(|(p, why)| {
            format!(
                "rule {} could not be evaluated ({why}); it would deny like the default",
                p.rule
            )
        }));
    }
    match pending.into_iter().find(|(p, _)| p.allows()) {
        Some((hit, why)) => Outcome {
            decision: Decision::Undetermined(hit, why),
            notes,
        },
        None => Outcome {
            decision: Decision::DefaultDeny,
            notes,
        },
    }
}

/// The filter rules of `rule_type`, in processing order: policies parent first, groups by
/// priority, collections by priority, rules as listed.
fn ordered<'a>(policies: &'a [Policy], rule_type: &'a str) -> impl Iterator<Item = (Hit, &'a Rule)> + 'a {
    policies.iter().flat_map(move |policy| {
        let mut groups: Vec<&RuleCollectionGroup> = policy.groups.iter().collect();
        groups.sort_by_key(|g| g.properties.priority.unwrap_or(i64::MAX));
        groups.into_iter().flat_map(move |group| {
            let mut collections: Vec<&RuleCollection> = group
                .properties
                .rule_collections
                .iter()
                .filter(|c| c.kind.eq_ignore_ascii_case("FirewallPolicyFilterRuleCollection"))
                .collect();
            collections.sort_by_key(|c| c.priority.unwrap_or(i64::MAX));
            collections.into_iter().flat_map(move |collection| {
                collection
                    .rules
                    .iter()
                    .filter(move |r| r.kind.eq_ignore_ascii_case(rule_type))
                    .map(move |rule| {
                        let hit = Hit {
                            policy: policy.id.clone(),
                            group_id: group.id.clone(),
                            group: group.name.clone(),
                            group_priority: group.properties.priority,
                            collection: collection.name.clone(),
                            collection_priority: collection.priority,
                            rule: rule.name.clone(),
                            rule_type: rule.kind.clone(),
                            action: collection.action.as_ref().map(|a| a.kind.clone()).unwrap_or_default(),
                        };
                        (hit, rule)
                    })
            })
        })
    })
}

fn source_matches(rule: &Rule, flow: &Flow) -> Match {
    let stated = Match::any(
        rule.source_addresses
            .iter()
            .map(|s| match (Address::parse(s), flow.source) {
                (Address::Any, _) => Match::Yes,
                (a, Some(ip)) => a.covers(ip),
                (_, None) => Match::Unknown("this NIC's address is not known".into()),
            }),
    );
    if stated == Match::No && !rule.source_ip_groups.is_empty() {
        return Match::Unknown("its source IP groups were not read".into());
    }
    stated
}

fn destination_address_matches(addresses: &[String], flow: &Flow) -> Match {
    Match::any(addresses.iter().map(|d| match (Address::parse(d), flow.destination) {
        (Address::Any, _) => Match::Yes,
        (Address::Name(tag), _) => Match::Unknown(format!(
            "cannot evaluate service tag {} without its prefixes",
            crate::sanitize::echo(&tag)
        )),
        (a, Some(ip)) => a.covers(ip),
        (_, None) => Match::Unknown("the destination address is not known".into()),
    }))
}

fn network_rule_matches(rule: &Rule, flow: &Flow) -> Match {
    let protocol =
        Match::any(
            rule.ip_protocols
                .iter()
                .map(|p| match (p.to_ascii_lowercase().as_str(), flow.protocol) {
                    ("any", _) | ("tcp", Protocol::Tcp) | ("udp", Protocol::Udp) => Match::Yes,
                    _ => Match::No,
                }),
        );
    let port = in_ports(&rule.destination_ports, flow.port);
    let fqdn = match &flow.fqdn {
        Some(f) if rule.destination_fqdns.iter().any(|p| fqdn_covers(p, f)) => Match::Yes,
        _ => Match::No,
    };
    let mut destination = Match::any([destination_address_matches(&rule.destination_addresses, flow), fqdn]);
    if destination == Match::No && !rule.destination_ip_groups.is_empty() {
        destination = Match::Unknown("its destination IP groups were not read".into());
    }
    Match::all([protocol, port, source_matches(rule, flow), destination])
}

fn application_rule_matches(rule: &Rule, flow: &Flow) -> Match {
    let protocol = Match::any(rule.protocols.iter().map(|p| {
        let port_ok = p.port == Some(i64::from(flow.port));
        let kind_ok = flow.app.is_some_and(|k| p.protocol_type.eq_ignore_ascii_case(k.name()));
        if port_ok && kind_ok { Match::Yes } else { Match::No }
    }));
    let mut target = Vec::new();
    if let Some(fqdn) = &flow.fqdn {
        target.push(if rule.target_fqdns.iter().any(|p| fqdn_covers(p, fqdn)) {
            Match::Yes
        } else {
            Match::No
        });
    } else if !rule.target_fqdns.is_empty() {
        target.push(Match::Unknown("the name the client asked for is not known".into()));
    }
    target.extend(rule.fqdn_tags.iter().map(|t| {
        Match::Unknown(format!(
            "FQDN tag {} can't be expanded: its names are not published in the policy",
            crate::sanitize::echo(t)
        ))
    }));
    target.extend(
        rule.web_categories
            .iter()
            .map(|c| Match::Unknown(format!("web category {} can't be evaluated", crate::sanitize::echo(c)))),
    );
    if !rule.target_urls.is_empty() {
        target.push(Match::Unknown(
            "URL rules need the request's path (TLS inspection)".into(),
        ));
    }
    if !rule.destination_addresses.is_empty() {
        target.push(destination_address_matches(&rule.destination_addresses, flow));
    }
    Match::all([protocol, source_matches(rule, flow), Match::any(target)])
}

/// The finding for an outcome.
pub fn finding(outcome: &Outcome, policies: &[Policy], flow: &Flow) -> AzureFinding {
    let rule_finding = |hit: &Hit, effect: Effect, says: String| AzureFinding {
        resource: hit.policy.clone(),
        kind: FindingKind::FirewallRule,
        name: hit.rule.clone(),
        detail: Detail::FirewallRule {
            rule_collection_group: hit.group.clone(),
            group_priority: hit.group_priority,
            rule_collection: hit.collection.clone(),
            collection_priority: hit.collection_priority,
            rule_type: hit.rule_type.clone(),
            action: hit.action.clone(),
        },
        verdict: Verdict { effect, says },
        basis: Basis::Configuration,
    };
    match &outcome.decision {
        Decision::Matched(hit) => {
            let (verb, effect) = if hit.allows() {
                ("allows", Effect::Allows)
            } else {
                ("denies", Effect::Blocks)
            };
            let says = format!(
                "{verb} {}: {} {} in collection {} (priority {}) of group {} (priority {}) matches first",
                flow.describe(),
                kind_label(&hit.rule_type),
                hit.rule,
                hit.collection,
                hit.collection_priority.unwrap_or_default(),
                hit.group,
                hit.group_priority.unwrap_or_default()
            );
            rule_finding(hit, effect, says)
        }
        Decision::Undetermined(hit, why) => {
            let says = format!(
                "{} {} may match {} but cannot be evaluated: {why}",
                kind_label(&hit.rule_type),
                hit.rule,
                flow.describe()
            );
            rule_finding(hit, Effect::Undetermined, says)
        }
        Decision::DefaultDeny => AzureFinding {
            resource: policies.last().map(|p| p.id.clone()).unwrap_or_default(),
            kind: FindingKind::FirewallRule,
            name: "default deny".into(),
            detail: Detail::FirewallDefault {
                policies: policies.iter().map(|p| p.id.clone()).collect(),
            },
            verdict: Verdict {
                effect: Effect::Blocks,
                says: format!(
                    "denies {}: no network or application rule matches, so the firewall's default deny applies (its infrastructure rule collection covers platform names only)",
                    flow.describe()
                ),
            },
            basis: Basis::Configuration,
        },
    }
}

fn kind_label(rule_type: &str) -> &'static str {
    if rule_type.eq_ignore_ascii_case("ApplicationRule") {
        "application rule"
    } else {
        "network rule"
    }
}

/// Where a denial sits in the processing order: (policy, group priority, collection priority),
/// the default deny last. An allow collection placed before the earliest of several denials
/// comes before all of them (application rules are one pass over every group in order).
pub fn denial_rank(outcome: &Outcome, policies: &[Policy]) -> (usize, i64, i64) {
    match &outcome.decision {
        Decision::Matched(hit) if !hit.allows() => (
            policies.iter().position(|p| p.id == hit.policy).unwrap_or(usize::MAX),
            hit.group_priority.unwrap_or(i64::MAX),
            hit.collection_priority.unwrap_or(i64::MAX),
        ),
        _ => (usize::MAX, i64::MAX, i64::MAX),
    }
}

/// `az network firewall policy rule-collection-group collection add-filter-collection` adding an
/// Allow collection evaluated before whatever denies: application rules for `fqdns` (exactly
/// those names) when the flow is HTTP(S), else a network rule for the destination address.
/// `protocols` are the application protocols and ports the rule covers (several denied flows
/// of one cause: one collection for all of them); empty means the flow's own.
pub fn allow_change(
    outcome: &Outcome,
    policies: &[Policy],
    flow: &Flow,
    fqdns: &[String],
    protocols: &[(AppKind, u16)],
) -> Option<Change> {
    // The group to add to, and the collection priority to use.
    let (group_id, taken, before) = match &outcome.decision {
        Decision::Matched(hit) if !hit.allows() => (
            hit.group_id.clone(),
            taken_priorities(policies, &hit.group_id),
            hit.collection_priority?,
        ),
        Decision::DefaultDeny => {
            let policy = policies.last()?;
            // Beside the rules of the kind being added (a group may hold both kinds; its own
            // kind is where people look), else in the group evaluated first.
            let kind = if flow.app.is_some() && !fqdns.is_empty() {
                "ApplicationRule"
            } else {
                "NetworkRule"
            };
            let holds_kind = |g: &RuleCollectionGroup| {
                g.properties
                    .rule_collections
                    .iter()
                    .any(|c| c.rules.iter().any(|r| r.kind.eq_ignore_ascii_case(kind)))
            };
            let group = policy
                .groups
                .iter()
                .min_by_key(|g| (!holds_kind(g), g.properties.priority.unwrap_or(i64::MAX)))?;
            (group.id.clone(), taken_priorities(policies, &group.id), 65001)
        }
        _ => return None,
    };
    let priority = (100..before.min(65001)).rev().find(|p| !taken.contains(p))?.to_string();
    let group = ArmId::parse(&group_id)?;
    let policy = ArmId::parse(&ArmId::parse(&group_id)?.ancestor(1)?)?;
    let source = flow.source.map_or_else(|| "*".to_string(), |s| s.to_string());
    let port = flow.port.to_string();
    let label = fqdns
        .first()
        .cloned()
        .or_else(|| flow.destination.map(|d| d.to_string()))
        .unwrap_or_default();
    let name = change::rule_name(&["amlprobe", "allow", &label]);
    let mut flags: Vec<(&str, &str)> = vec![
        ("--subscription", &policy.subscription),
        ("-g", &policy.resource_group),
        ("--policy-name", &policy.name),
        ("--rule-collection-group-name", &group.name),
        ("-n", &name),
        ("--collection-priority", &priority),
        ("--action", "Allow"),
        ("--rule-name", &name),
        ("--source-addresses", &source),
    ];
    let list: Vec<String>;
    let list_flag;
    // Flags taking a space-separated list, after the single-valued ones.
    let mut lists: Vec<(&str, Vec<String>)> = Vec::new();
    match flow.app {
        Some(app) if !fqdns.is_empty() => {
            let mut covered: Vec<(AppKind, u16)> = if protocols.is_empty() {
                vec![(app, flow.port)]
            } else {
                protocols.to_vec()
            };
            covered.sort_by_key(|(_, port)| *port);
            covered.dedup();
            flags.push(("--rule-type", "ApplicationRule"));
            lists.push((
                "--protocols",
                covered.iter().map(|(k, p)| format!("{}={p}", k.name())).collect(),
            ));
            list = fqdns.to_vec();
            list_flag = "--target-fqdns";
        }
        _ => {
            let destination = flow.destination?.to_string();
            flags.push(("--rule-type", "NetworkRule"));
            flags.push((
                "--ip-protocols",
                if flow.protocol == Protocol::Tcp { "TCP" } else { "UDP" },
            ));
            flags.push(("--destination-ports", &port));
            list = vec![destination];
            list_flag = "--destination-addresses";
        }
    }
    let mut az = change::command(
        &[
            "az",
            "network",
            "firewall",
            "policy",
            "rule-collection-group",
            "collection",
            "add-filter-collection",
        ],
        &flags,
    )?;
    lists.push((list_flag, list));
    for (flag, values) in lists {
        let quoted: Vec<String> = values.iter().map(|v| change::word(v)).collect::<Option<_>>()?;
        az.push_str(&format!(" {flag} {}", quoted.join(" ")));
    }
    Some(Change { az, bicep: None })
}

fn taken_priorities(policies: &[Policy], group_id: &str) -> Vec<i64> {
    policies
        .iter()
        .flat_map(|p| &p.groups)
        .filter(|g| g.id.eq_ignore_ascii_case(group_id))
        .flat_map(|g| &g.properties.rule_collections)
        .filter_map(|c| c.priority)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const WEB_CATEGORIES: &str = include_str!("testdata/FirewallPolicyRuleCollectionGroupWithWebCategoriesList.json");
    const NETWORK_RULES: &str = include_str!("testdata/FirewallPolicyRuleCollectionGroupList.json");

    fn spec_policy(text: &str) -> Policy {
        let v: Value = serde_json::from_str(text).unwrap();
        let groups: Vec<RuleCollectionGroup> =
            serde_json::from_value(v["responses"]["200"]["body"]["value"].clone()).unwrap();
        Policy {
            id: "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/firewallPolicies/firewallPolicy"
                .into(),
            groups,
        }
    }

    fn https(fqdn: &str, source: &str) -> Flow {
        Flow {
            source: Some(source.parse().unwrap()),
            fqdn: Some(fqdn.into()),
            destination: None,
            port: 443,
            protocol: Protocol::Tcp,
            app: Some(AppKind::Https),
        }
    }

    fn group(id: &str, priority: i64, collections: Vec<RuleCollection>) -> RuleCollectionGroup {
        RuleCollectionGroup {
            id: format!(
                "/subscriptions/s/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/fwp/ruleCollectionGroups/{id}"
            ),
            name: id.into(),
            properties: GroupProperties {
                priority: Some(priority),
                rule_collections: collections,
            },
        }
    }

    fn collection(name: &str, priority: i64, action: &str, rules: Vec<Rule>) -> RuleCollection {
        RuleCollection {
            kind: "FirewallPolicyFilterRuleCollection".into(),
            name: name.into(),
            priority: Some(priority),
            action: Some(Action { kind: action.into() }),
            rules,
        }
    }

    fn app_rule(name: &str, fqdns: &[&str]) -> Rule {
        Rule {
            kind: "ApplicationRule".into(),
            name: name.into(),
            source_addresses: vec!["10.1.0.0/16".into()],
            protocols: vec![AppProtocol {
                protocol_type: "Https".into(),
                port: Some(443),
            }],
            target_fqdns: fqdns.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn net_rule(name: &str, dst: &str, ports: &str) -> Rule {
        Rule {
            kind: "NetworkRule".into(),
            name: name.into(),
            source_addresses: vec!["*".into()],
            destination_addresses: vec![dst.into()],
            destination_ports: vec![ports.into()],
            ip_protocols: vec!["TCP".into()],
            ..Default::default()
        }
    }

    fn policy(groups: Vec<RuleCollectionGroup>) -> Policy {
        Policy {
            id: "/subscriptions/s/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/fwp".into(),
            groups,
        }
    }

    #[test]
    fn spec_examples_web_categories_are_not_guessed_and_network_denies_are_found() {
        let web = spec_policy(WEB_CATEGORIES);
        let out = evaluate(&[web], &https("hacking.example", "10.0.0.5"));
        // Deny rule1 with a web category might match; the default deny would deny too.
        assert_eq!(out.decision, Decision::DefaultDeny);
        assert!(
            out.notes.iter().any(|n| n.contains("web category Hacking")),
            "{:?}",
            out.notes
        );
        let net = spec_policy(NETWORK_RULES);
        let mut flow = https("management.azure.com", "10.1.25.7");
        flow.destination = Some("20.37.158.1".parse().unwrap());
        let out = evaluate(std::slice::from_ref(&net), &flow);
        let Decision::Matched(hit) = &out.decision else {
            panic!("{out:?}")
        };
        assert_eq!(
            (hit.rule.as_str(), hit.action.as_str(), hit.collection_priority),
            ("network-rule-1", "Deny", Some(120))
        );
        // Outside the rule's source range the network rule does not match.
        assert_eq!(
            evaluate(&[net], &https("management.azure.com", "10.2.0.1")).decision,
            Decision::DefaultDeny
        );
    }

    #[test]
    fn network_rules_come_before_application_rules_whatever_the_priorities() {
        let p = policy(vec![
            group(
                "apps",
                100,
                vec![collection(
                    "deny-apps",
                    100,
                    "Deny",
                    vec![app_rule("deny-arm", &["management.azure.com"])],
                )],
            ),
            group(
                "nets",
                500,
                vec![collection(
                    "allow-web",
                    900,
                    "Allow",
                    vec![net_rule("allow-443", "*", "443")],
                )],
            ),
        ]);
        let out = evaluate(&[p], &https("management.azure.com", "10.1.0.4"));
        let Decision::Matched(hit) = out.decision else { panic!() };
        assert_eq!(hit.rule, "allow-443", "the rule-processing doc's example 1");
    }

    #[test]
    fn group_then_collection_priority_and_parent_first() {
        let child = policy(vec![
            group(
                "late",
                300,
                vec![collection("allow", 100, "Allow", vec![app_rule("allow-all", &["*"])])],
            ),
            group(
                "early",
                200,
                vec![
                    collection(
                        "deny",
                        500,
                        "Deny",
                        vec![app_rule("deny-blob", &["*.blob.core.windows.net"])],
                    ),
                    collection(
                        "allow",
                        400,
                        "Allow",
                        vec![app_rule("allow-sa", &["sa.blob.core.windows.net"])],
                    ),
                ],
            ),
        ]);
        let flow = https("sa.blob.core.windows.net", "10.1.0.4");
        let Decision::Matched(hit) = evaluate(std::slice::from_ref(&child), &flow).decision else {
            panic!()
        };
        assert_eq!(hit.rule, "allow-sa", "collection 400 comes before 500 in group 200");
        let Decision::Matched(hit) = evaluate(
            std::slice::from_ref(&child),
            &https("other.blob.core.windows.net", "10.1.0.4"),
        )
        .decision
        else {
            panic!()
        };
        assert_eq!(hit.rule, "deny-blob");
        let mut parent = policy(vec![group(
            "base",
            60000,
            vec![collection(
                "base-deny",
                65000,
                "Deny",
                vec![app_rule("base-deny-sa", &["sa.blob.core.windows.net"])],
            )],
        )]);
        parent.id = parent.id.replace("fwp", "fwp-parent");
        let Decision::Matched(hit) = evaluate(&[parent, child], &flow).decision else {
            panic!()
        };
        assert_eq!(hit.rule, "base-deny-sa", "the parent policy takes precedence");
    }

    #[test]
    fn no_match_is_the_default_deny_and_the_change_lists_exactly_the_fqdns() {
        // The network rules' group is evaluated first; the application rule goes beside its kind.
        let p = policy(vec![
            group(
                "DefaultNetworkRuleCollectionGroup",
                200,
                vec![collection(
                    "allow-dns",
                    100,
                    "Allow",
                    vec![net_rule("dns", "10.0.0.4", "53")],
                )],
            ),
            group(
                "DefaultApplicationRuleCollectionGroup",
                300,
                vec![collection(
                    "allow-ms",
                    100,
                    "Allow",
                    vec![app_rule("login", &["login.microsoftonline.com"])],
                )],
            ),
        ]);
        let flow = https("management.azure.com", "10.1.0.4");
        let out = evaluate(std::slice::from_ref(&p), &flow);
        assert_eq!(out.decision, Decision::DefaultDeny);
        let f = finding(&out, std::slice::from_ref(&p), &flow);
        assert_eq!((f.kind, f.verdict.effect), (FindingKind::FirewallRule, Effect::Blocks));
        let change = allow_change(
            &out,
            &[p],
            &flow,
            &["management.azure.com".into(), "*.azureml.ms".into()],
            &[],
        )
        .unwrap();
        assert_eq!(
            change.az,
            "az network firewall policy rule-collection-group collection add-filter-collection --subscription s -g rg-hub --policy-name fwp --rule-collection-group-name DefaultApplicationRuleCollectionGroup -n amlprobe-allow-management.azure.com --collection-priority 65000 --action Allow --rule-name amlprobe-allow-management.azure.com --source-addresses 10.1.0.4 --rule-type ApplicationRule --protocols Https=443 --target-fqdns management.azure.com '*.azureml.ms'"
        );
    }

    #[test]
    fn a_deny_gets_an_allow_collection_just_before_it() {
        let p = policy(vec![group(
            "g",
            200,
            vec![collection("deny", 300, "Deny", vec![net_rule("deny-445", "*", "445")])],
        )]);
        let flow = Flow {
            source: Some("10.1.0.4".parse().unwrap()),
            fqdn: Some("sa.file.core.windows.net".into()),
            destination: Some("20.60.1.1".parse().unwrap()),
            port: 445,
            protocol: Protocol::Tcp,
            app: None,
        };
        let out = evaluate(std::slice::from_ref(&p), &flow);
        assert!(matches!(&out.decision, Decision::Matched(h) if h.rule == "deny-445"));
        let other = Flow {
            port: 446,
            ..flow.clone()
        };
        let unmatched = evaluate(std::slice::from_ref(&p), &other);
        assert_eq!(unmatched.decision, Decision::DefaultDeny);
        assert!(
            unmatched
                .notes
                .iter()
                .any(|n| n.contains("application rules were not evaluated")),
            "{:?}",
            unmatched.notes
        );
        let change = allow_change(&out, &[p], &flow, &[], &[]).unwrap();
        assert!(change.az.contains("--collection-priority 299 ") && change.az.contains("--rule-type NetworkRule --ip-protocols TCP --destination-ports 445 --destination-addresses 20.60.1.1"), "{}", change.az);
    }

    #[test]
    fn tags_groups_and_unknown_destinations_are_said_not_guessed() {
        let mut fqdn_tag = app_rule("windows-update", &[]);
        fqdn_tag.fqdn_tags = vec!["WindowsUpdate".into()];
        let p = policy(vec![group(
            "g",
            100,
            vec![collection("allow-tag", 100, "Allow", vec![fqdn_tag])],
        )]);
        let out = evaluate(std::slice::from_ref(&p), &https("management.azure.com", "10.1.0.4"));
        let Decision::Undetermined(hit, why) = &out.decision else {
            panic!("{out:?}")
        };
        assert_eq!(hit.rule, "windows-update");
        assert!(why.contains("FQDN tag WindowsUpdate can't be expanded"), "{why}");
        let tagged = policy(vec![group(
            "g",
            100,
            vec![collection(
                "deny",
                100,
                "Deny",
                vec![net_rule("deny-arm", "AzureResourceManager", "443")],
            )],
        )]);
        let mut flow = https("management.azure.com", "10.1.0.4");
        flow.destination = Some("20.37.158.1".parse().unwrap());
        // A deny that might match before a default deny: denied either way.
        assert_eq!(
            evaluate(std::slice::from_ref(&tagged), &flow).decision,
            Decision::DefaultDeny
        );
        let allow_tag = policy(vec![group(
            "g",
            100,
            vec![collection(
                "allow",
                100,
                "Allow",
                vec![net_rule("allow-arm", "AzureResourceManager", "443")],
            )],
        )]);
        let Decision::Undetermined(_, why) = evaluate(&[allow_tag], &flow).decision else {
            panic!()
        };
        assert!(
            why.contains("cannot evaluate service tag AzureResourceManager without its prefixes"),
            "{why}"
        );
    }
}
