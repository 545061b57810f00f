//! Network security group evaluation, as Azure does it for outbound traffic.
//!
//! - Input: the `EffectiveNetworkSecurityGroupListResult` of `POST …/networkInterfaces/{nic}/
//!   effectiveNetworkSecurityGroups` (azure-rest-api-specs `networkInterface.json`), or the same
//!   shape built from the NIC's and the subnet's NSGs when the effective rules can't be read.
//! - Order: "For outbound traffic, Azure processes the rules in a network security group
//!   associated to a network interface first, if there's one, and then the rules in a network
//!   security group associated to the subnet" and a deny in the first is "never evaluated by"
//!   the second (network-security-group-how-it-works.md). No NSG at a stage lets traffic through.
//! - Within an NSG: "Rules are processed in priority order, with lower numbers processed before
//!   higher numbers … Once traffic matches a rule, processing stops"; two rules can't share a
//!   priority and direction (network-security-groups-overview.md). If an answer ever carries a
//!   tie, the listed order is kept and a note says so.
//! - A rule matches on protocol (`All`/`*` is any), destination port ranges, destination prefixes
//!   (a service tag through the rule's `expandedDestinationAddressPrefix` or the NSG's `tagMap`),
//!   and the source address and port. A tag without its prefixes, or a source port range other
//!   than all ports (the client's port is ephemeral), makes a rule `Unknown`: the verdict is then
//!   undetermined unless every such rule before the deciding one has the same access.
//! - The platform's 168.63.129.16 and 169.254.169.254 answer only to rules naming their
//!   AzurePlatform tags.

use super::change::{self, ArmId};
use super::finding::{AzureFinding, Basis, Detail, Effect, FindingKind, Verdict};
use super::matching::{Address, Match, Ports, in_ports, in_prefixes};
use crate::model::suite::Protocol;
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// `{ "id": … }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SubResource {
    /// The ARM id.
    #[serde(default)]
    pub id: String,
}

/// `EffectiveNetworkSecurityGroupListResult`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EffectiveNsgList {
    /// The groups.
    #[serde(default)]
    pub value: Vec<EffectiveNsg>,
}

/// `EffectiveNetworkSecurityGroup`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveNsg {
    /// The NSG.
    #[serde(default)]
    pub network_security_group: Option<SubResource>,
    /// Where it is associated.
    #[serde(default)]
    pub association: Association,
    /// Its rules, user and default.
    #[serde(default)]
    pub effective_security_rules: Vec<SecurityRule>,
    /// Tag → prefixes (typed `string` with `additionalProperties` in the spec: read as JSON).
    #[serde(default)]
    pub tag_map: Option<Value>,
}

/// `EffectiveNetworkSecurityGroupAssociation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Association {
    /// Azure Virtual Network Manager, when its admin rules apply too.
    #[serde(default)]
    pub network_manager: Option<SubResource>,
    /// The subnet the NSG is associated with.
    #[serde(default)]
    pub subnet: Option<SubResource>,
    /// The NIC the NSG is associated with.
    #[serde(default)]
    pub network_interface: Option<SubResource>,
}

/// `EffectiveNetworkSecurityRule` (and, read from an NSG directly, `SecurityRule`'s properties).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityRule {
    /// `securityRules/<name>` or `defaultSecurityRules/<name>` in effective rules.
    pub name: String,
    /// `Tcp`, `Udp`, `All` (effective) or `*`, `Icmp`, … (configured).
    pub protocol: String,
    /// Source port or range.
    pub source_port_range: Option<String>,
    /// Source ports.
    pub source_port_ranges: Vec<String>,
    /// Destination port or range.
    pub destination_port_range: Option<String>,
    /// Destination ports.
    pub destination_port_ranges: Vec<String>,
    /// Source prefix or tag.
    pub source_address_prefix: Option<String>,
    /// Source prefixes.
    pub source_address_prefixes: Vec<String>,
    /// Destination prefix or tag.
    pub destination_address_prefix: Option<String>,
    /// Destination prefixes.
    pub destination_address_prefixes: Vec<String>,
    /// The source tag's prefixes.
    pub expanded_source_address_prefix: Vec<String>,
    /// The destination tag's prefixes.
    pub expanded_destination_address_prefix: Vec<String>,
    /// `Allow` or `Deny`.
    pub access: String,
    /// Lower first.
    pub priority: Option<i64>,
    /// `Inbound` or `Outbound`.
    pub direction: String,
}

impl SecurityRule {
    /// The rule's name without the `securityRules/` or `defaultSecurityRules/` prefix.
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    fn is_default(&self) -> bool {
        self.name.starts_with("defaultSecurityRules/")
    }

    fn allows(&self) -> bool {
        self.access.eq_ignore_ascii_case("allow")
    }

    fn outbound(&self) -> bool {
        self.direction.eq_ignore_ascii_case("outbound")
    }

    /// The destination prefixes as stated (the plural field when set).
    pub fn destinations(&self) -> Vec<String> {
        list_or_single(
            &self.destination_address_prefixes,
            self.destination_address_prefix.as_ref(),
        )
    }

    /// The destination ports as stated.
    pub fn destination_ports(&self) -> Vec<String> {
        list_or_single(&self.destination_port_ranges, self.destination_port_range.as_ref())
    }

    fn sources(&self) -> Vec<String> {
        list_or_single(&self.source_address_prefixes, self.source_address_prefix.as_ref())
    }

    fn source_ports(&self) -> Vec<String> {
        list_or_single(&self.source_port_ranges, self.source_port_range.as_ref())
    }
}

fn list_or_single(list: &[String], single: Option<&String>) -> Vec<String> {
    if list.is_empty() {
        single.into_iter().cloned().collect()
    } else {
        list.to_vec()
    }
}

/// The flow being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// This NIC's address, when known.
    pub source: Option<IpAddr>,
    /// Where the flow goes.
    pub destination: IpAddr,
    /// Destination port.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl Flow {
    fn describe(&self) -> String {
        let proto = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        };
        format!("{proto} {} to {}", self.port, self.destination)
    }
}

/// Where an NSG is associated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedTo {
    /// The network interface (evaluated first for outbound traffic).
    NetworkInterface,
    /// The subnet.
    Subnet,
}

impl AppliedTo {
    fn label(self) -> &'static str {
        match self {
            AppliedTo::NetworkInterface => "network interface",
            AppliedTo::Subnet => "subnet",
        }
    }
}

/// What one NSG decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule matched.
    Matched(SecurityRule),
    /// A rule might match but can't be evaluated, and it would decide differently.
    Undetermined(SecurityRule, String),
    /// No outbound rule matched (the default rules were missing from what was read).
    NothingMatched,
}

/// One NSG at one stage of the outbound path.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The NSG's ARM id.
    pub nsg_id: String,
    /// Where it applies.
    pub applied_to: AppliedTo,
    /// What it decides.
    pub decision: Decision,
    /// Whether traffic reaches it (a deny on the NIC's NSG means the subnet's is never asked).
    pub reached: bool,
    /// Its outbound rule priorities, for choosing a free one in a change.
    pub priorities: Vec<i64>,
}

/// Both stages' decisions.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// NIC stage first, then subnet stage.
    pub stages: Vec<Stage>,
    /// What the evaluation could not cover.
    pub notes: Vec<String>,
}

#[cfg(test)]
impl Outcome {
    /// What the NSGs do to the flow, stage by stage in Azure's order.
    pub fn effect(&self) -> Effect {
        for stage in self.stages.iter().filter(|s| s.reached) {
            match &stage.decision {
                Decision::Matched(rule) if rule.allows() => {}
                Decision::Matched(_) => return Effect::Blocks,
                Decision::Undetermined(..) | Decision::NothingMatched => return Effect::Undetermined,
            }
        }
        Effect::Allows
    }
}

/// The platform's virtual IPs: DNS, DHCP and health (168.63.129.16) and IMDS (169.254.169.254).
/// They "aren't subject to the configured network security groups unless targeted by service
/// tags specific to each service" — AzurePlatformDNS, AzurePlatformIMDS, AzurePlatformLKM
/// (network-security-groups-overview.md, "Azure platform considerations").
const PLATFORM_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(std::net::Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
];

fn targets_platform(rule: &SecurityRule) -> bool {
    rule.destinations()
        .iter()
        .any(|d| d.to_ascii_lowercase().starts_with("azureplatform"))
}

/// Evaluates `flow` against the groups, NIC stage then subnet stage.
pub fn evaluate(groups: &[EffectiveNsg], flow: &Flow) -> Outcome {
    let mut outcome = Outcome::default();
    let platform = PLATFORM_ADDRESSES.contains(&flow.destination);
    if platform {
        outcome.notes.push(format!(
            "{} is a platform address: only NSG rules naming its AzurePlatform service tag apply to it",
            flow.destination
        ));
    }
    if groups.iter().any(|g| g.association.network_manager.is_some()) {
        outcome.notes.push(
            "Azure Virtual Network Manager security admin rules apply to this network and are evaluated before NSG rules; they are not part of this evaluation".into(),
        );
    }
    if groups.is_empty() {
        outcome
            .notes
            .push("no NSG is associated with the network interface or its subnet: NSGs let every flow through".into());
    }
    let mut reached = true;
    for applied_to in [AppliedTo::NetworkInterface, AppliedTo::Subnet] {
        for group in groups.iter().filter(|g| match applied_to {
            AppliedTo::NetworkInterface => g.association.network_interface.is_some(),
            AppliedTo::Subnet => g.association.subnet.is_some(),
        }) {
            let (decision, notes) = if platform {
                let mut only_platform = group.clone();
                only_platform.effective_security_rules.retain(targets_platform);
                decide(&only_platform, flow)
            } else {
                decide(group, flow)
            };
            outcome.notes.extend(notes);
            if platform && decision == Decision::NothingMatched {
                continue;
            }
            let allows = matches!(&decision, Decision::Matched(rule) if rule.allows());
            outcome.stages.push(Stage {
                nsg_id: group.network_security_group.clone().unwrap_or_default().id,
                applied_to,
                decision,
                reached,
                priorities: group
                    .effective_security_rules
                    .iter()
                    .filter(|r| r.outbound())
                    .filter_map(|r| r.priority)
                    .collect(),
            });
            reached &= allows;
        }
    }
    outcome
}

/// One NSG's decision, and notes about rules it could not evaluate.
fn decide(group: &EffectiveNsg, flow: &Flow) -> (Decision, Vec<String>) {
    let mut notes = Vec::new();
    let mut rules: Vec<&SecurityRule> = group.effective_security_rules.iter().filter(|r| r.outbound()).collect();
    rules.sort_by_key(|r| r.priority.unwrap_or(i64::MAX));
    for pair in rules.windows(2) {
        if pair[0].priority.is_some() && pair[0].priority == pair[1].priority {
            notes.push(format!(
                "rules {} and {} share priority {}, which Azure does not allow; they were taken in the order listed",
                pair[0].short_name(),
                pair[1].short_name(),
                pair[0].priority.unwrap_or_default()
            ));
        }
    }
    let mut pending: Vec<(&SecurityRule, String)> = Vec::new();
    for rule in rules {
        match rule_matches(rule, group.tag_map.as_ref(), flow) {
            Match::No => {}
            Match::Unknown(why) => pending.push((rule, why)),
            Match::Yes => {
                // Rules before it that might have matched change nothing if they'd decide alike.
                if let Some((first, why)) = pending.iter().find(|(r, _)| r.allows() != rule.allows()) {
                    return (Decision::Undetermined((*first).clone(), why.clone()), notes);
                }
                for (r, why) in &pending {
                    notes.push(format!(
                        "rule {} (priority {}) could not be evaluated ({why}); it would decide the same",
                        r.short_name(),
                        r.priority.unwrap_or_default()
                    ));
                }
                return (Decision::Matched(rule.clone()), notes);
            }
        }
    }
    match pending.into_iter().next() {
        Some((rule, why)) => (Decision::Undetermined(rule.clone(), why), notes),
        None => (Decision::NothingMatched, notes),
    }
}

fn rule_matches(rule: &SecurityRule, tag_map: Option<&Value>, flow: &Flow) -> Match {
    let Some(_) = rule.priority else {
        return Match::Unknown("the rule has no priority".into());
    };
    let protocol = match rule.protocol.to_ascii_lowercase().as_str() {
        "all" | "*" | "any" => Match::Yes,
        "tcp" => yes(flow.protocol == Protocol::Tcp),
        "udp" => yes(flow.protocol == Protocol::Udp),
        _ => Match::No,
    };
    let ports = rule.destination_ports();
    let port = if ports.is_empty() {
        Match::Unknown("the rule states no destination port".into())
    } else {
        in_ports(&ports, flow.port)
    };
    let destination = address_matches(
        &rule.destinations(),
        &rule.expanded_destination_address_prefix,
        tag_map,
        flow.destination,
    );
    let source = match flow.source {
        Some(ip) => address_matches(&rule.sources(), &rule.expanded_source_address_prefix, tag_map, ip),
        None => Match::any(rule.sources().iter().map(|s| match Address::parse(s) {
            Address::Any => Match::Yes,
            Address::Net(net) if net.prefix_len() == 0 => Match::Yes,
            _ => Match::Unknown("this NIC's address is not known".into()),
        })),
    };
    // The client's port is ephemeral: only a rule for every source port surely matches.
    let source_ports = rule.source_ports();
    let every_port = |p: &String| Ports::parse(p).is_some_and(|p| p.first == 0 && p.last == u16::MAX);
    let source_port = if source_ports.is_empty() || source_ports.iter().any(every_port) {
        Match::Yes
    } else {
        Match::Unknown("the rule limits source ports, and the client's port is ephemeral".into())
    };
    Match::all([protocol, port, destination, source, source_port])
}

fn yes(b: bool) -> Match {
    if b { Match::Yes } else { Match::No }
}

/// Matches `ip` against stated prefixes; a tag is looked up in the rule's expansion, then in
/// the NSG's tag map.
fn address_matches(stated: &[String], expanded: &[String], tag_map: Option<&Value>, ip: IpAddr) -> Match {
    Match::any(stated.iter().map(|p| match Address::parse(p) {
        Address::Name(tag) => {
            if !expanded.is_empty() {
                return in_prefixes(expanded, ip);
            }
            match tag_map.and_then(|m| m.get(&tag)).and_then(Value::as_array) {
                Some(list) => {
                    let prefixes: Vec<String> = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
                    in_prefixes(&prefixes, ip)
                }
                None => Match::Unknown(format!(
                    "service tag {} is used without its address prefixes",
                    crate::sanitize::echo(&tag)
                )),
            }
        }
        address => address.covers(ip),
    }))
}

/// The findings of an outcome: the rule that decided at each stage, in Azure's order.
pub fn findings(outcome: &Outcome, flow: &Flow, basis: Basis) -> Vec<AzureFinding> {
    // Why a stage is not reached: the NIC's NSG denies, or what it does can't be told.
    let nic_denies = outcome.stages.iter().any(|s| {
        s.applied_to == AppliedTo::NetworkInterface && matches!(&s.decision, Decision::Matched(r) if !r.allows())
    });
    outcome
        .stages
        .iter()
        .filter_map(|stage| {
            let nsg = ArmId::parse(&stage.nsg_id).map_or(stage.nsg_id.clone(), |a| a.name);
            let (rule, effect, says) = match &stage.decision {
                Decision::Matched(rule) => {
                    let verb = if rule.allows() { "allows" } else { "denies" };
                    let default = if rule.is_default() { "default " } else { "" };
                    let mut says = format!(
                        "{verb} {}: NSG {nsg} on the {}, {default}rule {} (priority {}) matches first",
                        flow.describe(),
                        stage.applied_to.label(),
                        rule.short_name(),
                        rule.priority.unwrap_or_default()
                    );
                    if !stage.reached {
                        says = if nic_denies {
                            format!("not reached now (the network interface's NSG denies first); once it allows, this {says}")
                        } else {
                            format!(
                                "reached only if the network interface's NSG lets the flow through (what it does can't be told from what was read); then this {says}"
                            )
                        };
                    }
                    let effect = if rule.allows() { Effect::Allows } else { Effect::Blocks };
                    (rule, effect, says)
                }
                Decision::Undetermined(rule, why) => (
                    rule,
                    Effect::Undetermined,
                    format!(
                        "NSG {nsg} on the {}: rule {} (priority {}) may match {} but cannot be evaluated: {why}",
                        stage.applied_to.label(),
                        rule.short_name(),
                        rule.priority.unwrap_or_default(),
                        flow.describe()
                    ),
                ),
                Decision::NothingMatched => return None,
            };
            Some(AzureFinding {
                resource: stage.nsg_id.clone(),
                kind: FindingKind::NsgRule,
                name: rule.short_name().to_string(),
                detail: Detail::NsgRule {
                    priority: rule.priority.unwrap_or_default(),
                    direction: rule.direction.clone(),
                    access: rule.access.clone(),
                    protocol: rule.protocol.clone(),
                    destination_prefixes: rule.destinations(),
                    destination_ports: rule.destination_ports(),
                    applied_to: stage.applied_to.label().into(),
                },
                verdict: Verdict { effect, says },
                basis,
            })
        })
        .collect()
}

/// User rules take priorities 100–4096 (network-security-groups-overview.md, and `az network
/// nsg rule create --priority`'s help).
const USER_PRIORITIES: std::ops::RangeInclusive<i64> = 100..=4096;

/// A free priority evaluated before `deny`: ten below it where free (leaving room between),
/// else the nearest free one below; `None` when every priority below is taken.
pub fn free_priority_before(deny: i64, taken: &[i64]) -> Option<i64> {
    let start = (deny - 10).min(*USER_PRIORITIES.end());
    let below = (*USER_PRIORITIES.start()..deny.min(*USER_PRIORITIES.end() + 1)).rev();
    std::iter::once(start)
        .chain(below)
        .find(|p| USER_PRIORITIES.contains(p) && *p < deny && !taken.contains(p))
}

/// `az network nsg rule create` (and its Bicep) for every NSG that denies, reached or not,
/// allowing `protocol` to `destinations` on `ports`, each placed just before its denying rule.
pub fn allow_commands(
    outcome: &Outcome,
    protocol: Protocol,
    destinations: &[String],
    ports: &[u16],
    label: &str,
) -> Vec<(String, String)> {
    outcome
        .stages
        .iter()
        .filter_map(|stage| allow_command(stage, protocol, destinations, ports, label))
        .collect()
}

fn allow_command(
    stage: &Stage,
    protocol: Protocol,
    destinations: &[String],
    ports: &[u16],
    label: &str,
) -> Option<(String, String)> {
    let Decision::Matched(rule) = &stage.decision else {
        return None;
    };
    let deny = rule.priority.filter(|_| !rule.allows())?;
    let nsg = ArmId::parse(&stage.nsg_id)?;
    let priority = free_priority_before(deny, &stage.priorities)?.to_string();
    let proto = match protocol {
        Protocol::Tcp => "Tcp",
        Protocol::Udp => "Udp",
    };
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let name = change::rule_name(&["Allow", label, &ports.join("-")]);
    let mut cmd = change::command(
        &["az", "network", "nsg", "rule", "create"],
        &[
            ("--subscription", &nsg.subscription),
            ("-g", &nsg.resource_group),
            ("--nsg-name", &nsg.name),
            ("-n", &name),
            ("--priority", &priority),
            ("--direction", "Outbound"),
            ("--access", "Allow"),
            ("--protocol", proto),
        ],
    )?;
    // Both flags take a space-separated list.
    for (flag, values) in [
        ("--destination-address-prefixes", destinations),
        ("--destination-port-ranges", &ports),
    ] {
        let quoted: Vec<String> = values.iter().map(|v| change::word(v)).collect::<Option<_>>()?;
        cmd.push_str(&format!(" {flag} {}", quoted.join(" ")));
    }
    let bicep = bicep_rule(&nsg.name, &name, &priority, proto, destinations, &ports);
    Some((cmd, bicep))
}

/// The same rule as a Bicep `securityRules` child resource (property names from
/// `SecurityRulePropertiesFormat`, networkSecurityGroup.json).
fn bicep_rule(nsg: &str, name: &str, priority: &str, proto: &str, destinations: &[String], ports: &[String]) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("'{}'", s.replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "resource allowRule 'Microsoft.Network/networkSecurityGroups/securityRules@2024-05-01' = {{\n  name: '{nsg}/{name}'\n  properties: {{\n    priority: {priority}\n    direction: 'Outbound'\n    access: 'Allow'\n    protocol: '{proto}'\n    sourceAddressPrefix: '*'\n    sourcePortRange: '*'\n    destinationAddressPrefixes: [{}]\n    destinationPortRanges: [{}]\n  }}\n}}",
        list(destinations),
        list(ports)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = include_str!("testdata/NetworkInterfaceEffectiveNSGList.json");

    fn spec_groups() -> Vec<EffectiveNsg> {
        let v: Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        serde_json::from_value::<EffectiveNsgList>(v["responses"]["200"]["body"].clone())
            .unwrap()
            .value
    }

    fn flow(dst: &str, port: u16) -> Flow {
        Flow {
            source: Some("10.1.0.4".parse().unwrap()),
            destination: dst.parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
        }
    }

    fn rule(name: &str, priority: i64, access: &str, dst: &str, ports: &str) -> SecurityRule {
        SecurityRule {
            name: format!("securityRules/{name}"),
            protocol: "Tcp".into(),
            source_port_range: Some("0-65535".into()),
            destination_port_range: Some(ports.into()),
            source_address_prefix: Some("0.0.0.0/0".into()),
            destination_address_prefix: Some(dst.into()),
            access: access.into(),
            priority: Some(priority),
            direction: "Outbound".into(),
            ..Default::default()
        }
    }

    fn default_rules() -> Vec<SecurityRule> {
        let mut internet = rule("AllowInternetOutBound", 65001, "Allow", "Internet", "0-65535");
        internet.name = "defaultSecurityRules/AllowInternetOutBound".into();
        internet.protocol = "All".into();
        internet.expanded_destination_address_prefix =
            vec!["32.0.0.0/3".into(), "4.0.0.0/6".into(), "1.0.0.0/8".into()];
        let mut deny = rule("DenyAllOutBound", 65500, "Deny", "0.0.0.0/0", "0-65535");
        deny.name = "defaultSecurityRules/DenyAllOutBound".into();
        deny.protocol = "All".into();
        vec![internet, deny]
    }

    fn nsg(name: &str, on_nic: bool, mut rules: Vec<SecurityRule>) -> EffectiveNsg {
        rules.extend(default_rules());
        let id = |kind: &str, n: &str| {
            Some(SubResource {
                id: format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/{kind}/{n}"),
            })
        };
        EffectiveNsg {
            network_security_group: id("networkSecurityGroups", name),
            association: Association {
                network_interface: if on_nic { id("networkInterfaces", "nic1") } else { None },
                subnet: if on_nic {
                    None
                } else {
                    id("virtualNetworks", "v/subnets/ml")
                },
                network_manager: None,
            },
            effective_security_rules: rules,
            tag_map: None,
        }
    }

    #[test]
    fn the_spec_example_allows_internet_through_the_expanded_default_rule() {
        let groups = spec_groups();
        let out = evaluate(&groups, &flow("33.1.2.3", 443));
        assert_eq!(out.effect(), Effect::Allows);
        let Decision::Matched(rule) = &out.stages[0].decision else {
            panic!("{out:?}")
        };
        assert_eq!(rule.short_name(), "AllowInternetOutBound");
        assert!(
            out.notes.iter().any(|n| n.contains("Virtual Network Manager")),
            "{:?}",
            out.notes
        );
        // The example NSG is associated with both the NIC and the subnet: two stages, same rule.
        assert_eq!(out.stages.len(), 2);
        // 20.0.0.0 is outside the example's Internet expansion, and the example has no deny
        // default: nothing matches, which is said rather than guessed.
        let out = evaluate(&groups, &flow("20.0.0.1", 443));
        assert!(matches!(out.stages[0].decision, Decision::NothingMatched));
        assert_eq!(out.effect(), Effect::Undetermined);
        // Inbound rules never decide an outbound flow, even on their port.
        assert_eq!(evaluate(&groups, &flow("0.0.0.0", 6579)).effect(), Effect::Undetermined);
    }

    #[test]
    fn priority_order_decides_and_names_the_rule() {
        let groups = [nsg(
            "nsg-ml-subnet",
            false,
            vec![
                rule("DenyInternetOutbound", 4000, "Deny", "0.0.0.0/0", "*"),
                rule("AllowArm", 3000, "Allow", "20.37.158.0/23", "443"),
            ],
        )];
        let allowed = evaluate(&groups, &flow("20.37.158.5", 443));
        assert_eq!(allowed.effect(), Effect::Allows);
        let denied = evaluate(&groups, &flow("20.37.160.5", 443));
        assert_eq!(denied.effect(), Effect::Blocks);
        let f = findings(&denied, &flow("20.37.160.5", 443), Basis::EffectiveRules);
        assert_eq!(f[0].name, "DenyInternetOutbound");
        assert!(f[0].verdict.says.contains("denies TCP 443 to 20.37.160.5: NSG nsg-ml-subnet on the subnet, rule DenyInternetOutbound (priority 4000)"), "{}", f[0].verdict.says);
    }

    #[test]
    fn port_ranges_lists_and_protocols() {
        let mut smb = rule("DenySmb", 200, "Deny", "*", "444-450");
        smb.destination_port_ranges = vec!["139".into(), "444-450".into()];
        let mut udp = rule("DenyUdp", 100, "Deny", "*", "*");
        udp.protocol = "Udp".into();
        let groups = [nsg("n", true, vec![smb, udp])];
        assert_eq!(evaluate(&groups, &flow("33.0.0.1", 445)).effect(), Effect::Blocks);
        assert_eq!(evaluate(&groups, &flow("33.0.0.1", 139)).effect(), Effect::Blocks);
        assert_eq!(
            evaluate(&groups, &flow("33.0.0.1", 443)).effect(),
            Effect::Allows,
            "TCP skips the UDP rule"
        );
        let mut f = flow("33.0.0.1", 443);
        f.protocol = Protocol::Udp;
        assert_eq!(evaluate(&groups, &f).effect(), Effect::Blocks);
    }

    #[test]
    fn an_undetermined_nic_nsg_is_not_called_a_deny() {
        // Rebuilt from the configured NSGs, the NIC's default rules name tags without their
        // prefixes: its verdict can't be told, and the subnet's deny must not say the NIC's NSG
        // denies first.
        let mut vnet = rule("AllowVnetOutBound", 65000, "Allow", "VirtualNetwork", "0-65535");
        vnet.name = "defaultSecurityRules/AllowVnetOutBound".into();
        let groups = [
            nsg(
                "nsg-subnet",
                false,
                vec![rule("DenySmb", 300, "Deny", "10.10.1.0/24", "445")],
            ),
            nsg("nsg-nic", true, vec![vnet]),
        ];
        let out = evaluate(&groups, &flow("10.10.1.16", 445));
        assert!(matches!(out.stages[0].decision, Decision::Undetermined(..)), "{out:?}");
        assert!(!out.stages[1].reached);
        let f = findings(&out, &flow("10.10.1.16", 445), Basis::SubnetRules);
        assert_eq!((f[1].name.as_str(), f[1].verdict.effect), ("DenySmb", Effect::Blocks));
        assert!(
            f[1].verdict
                .says
                .starts_with("reached only if the network interface's NSG lets the flow through")
                && !f[1].verdict.says.contains("denies first"),
            "{}",
            f[1].verdict.says
        );
    }

    #[test]
    fn nic_nsg_first_and_a_deny_there_hides_the_subnet() {
        let groups = [
            nsg("nsg-subnet", false, vec![rule("DenyAll", 4000, "Deny", "*", "*")]),
            nsg("nsg-nic", true, vec![rule("DenyNic", 200, "Deny", "*", "443")]),
        ];
        let out = evaluate(&groups, &flow("33.0.0.1", 443));
        assert_eq!(out.stages[0].applied_to, AppliedTo::NetworkInterface);
        assert!(out.stages[0].reached && !out.stages[1].reached);
        let f = findings(&out, &flow("33.0.0.1", 443), Basis::EffectiveRules);
        assert!(
            f[1].verdict.says.starts_with("not reached now"),
            "{}",
            f[1].verdict.says
        );
        // Both denials get their own allow rule, so one change fixes the flow.
        let cmds = allow_commands(
            &out,
            Protocol::Tcp,
            &["AzureResourceManager".into()],
            &[443],
            "AzureResourceManager",
        );
        assert_eq!(cmds.len(), 2);
        assert!(
            cmds[0].0.contains("--nsg-name nsg-nic") && cmds[0].0.contains("--priority 190"),
            "{}",
            cmds[0].0
        );
        assert!(cmds[1].0.contains("--nsg-name nsg-subnet -n Allow-AzureResourceManager-443 --priority 3990 --direction Outbound --access Allow --protocol Tcp --destination-address-prefixes AzureResourceManager --destination-port-ranges 443"), "{}", cmds[1].0);
        assert!(
            cmds[1]
                .1
                .contains("destinationAddressPrefixes: ['AzureResourceManager']")
        );
    }

    #[test]
    fn longer_prefixes_and_zero_slash_zero_are_both_just_membership() {
        // Unlike routes, NSG rules have no longest-prefix preference: priority alone decides.
        let groups = [nsg(
            "n",
            false,
            vec![
                rule("AllowAll", 100, "Allow", "0.0.0.0/0", "*"),
                rule("DenyOne", 200, "Deny", "33.0.0.1/32", "*"),
            ],
        )];
        assert_eq!(evaluate(&groups, &flow("33.0.0.1", 443)).effect(), Effect::Allows);
    }

    #[test]
    fn a_tag_without_prefixes_is_undetermined_unless_it_cannot_change_the_answer() {
        let groups = [nsg(
            "n",
            false,
            vec![rule("AllowStorage", 100, "Allow", "Storage", "443")],
        )];
        let out = evaluate(&groups, &flow("33.0.0.1", 443));
        // AllowStorage would allow, and the next deciding rule (AllowInternetOutBound) allows too.
        assert_eq!(out.effect(), Effect::Allows);
        assert!(
            out.notes
                .iter()
                .any(|n| n.contains("AllowStorage") && n.contains("would decide the same"))
        );
        let out = evaluate(&groups, &flow("20.0.0.1", 443));
        // Outside the Internet expansion: DenyAllOutBound decides, and AllowStorage might not.
        assert_eq!(out.effect(), Effect::Undetermined);
        let f = findings(&out, &flow("20.0.0.1", 443), Basis::SubnetRules);
        assert!(
            f[0].verdict
                .says
                .contains("service tag Storage is used without its address prefixes"),
            "{}",
            f[0].verdict.says
        );
        assert_eq!(f[0].basis, Basis::SubnetRules);
        // The NSG's tag map settles it.
        let mut mapped = groups[0].clone();
        mapped.tag_map = Some(serde_json::json!({"Storage": ["20.0.0.0/24"]}));
        assert_eq!(evaluate(&[mapped], &flow("20.0.0.1", 443)).effect(), Effect::Allows);
    }

    #[test]
    fn ties_are_reported_and_limited_source_ports_are_not_guessed() {
        let mut sport = rule("DenyFromPort", 100, "Deny", "*", "*");
        sport.source_port_range = Some("1024-2048".into());
        let groups = [nsg(
            "n",
            false,
            vec![
                rule("A", 300, "Allow", "*", "*"),
                rule("B", 300, "Deny", "*", "*"),
                sport,
            ],
        )];
        let out = evaluate(&groups, &flow("33.0.0.1", 443));
        assert!(
            out.notes.iter().any(|n| n.contains("share priority 300")),
            "{:?}",
            out.notes
        );
        assert_eq!(
            out.effect(),
            Effect::Undetermined,
            "the ephemeral source port decides rule DenyFromPort"
        );
    }

    #[test]
    fn free_priorities_sit_just_before_the_deny() {
        assert_eq!(free_priority_before(4000, &[]), Some(3990));
        assert_eq!(free_priority_before(4000, &[3990]), Some(3999));
        assert_eq!(free_priority_before(65500, &[]), Some(4096));
        assert_eq!(free_priority_before(105, &[]), Some(104));
        assert_eq!(free_priority_before(100, &[]), None);
        assert_eq!(free_priority_before(101, &[100]), None);
    }

    #[test]
    fn platform_addresses_answer_only_to_their_tags() {
        let groups = [nsg("n", false, vec![rule("DenyAll", 100, "Deny", "*", "*")])];
        let out = evaluate(&groups, &flow("168.63.129.16", 53));
        assert_eq!(out.effect(), Effect::Allows, "{out:?}");
        assert!(out.stages.is_empty() && out.notes[0].contains("platform address"));
        let mut dns = rule("DenyAzureDns", 200, "Deny", "AzurePlatformDNS", "*");
        dns.expanded_destination_address_prefix = vec!["168.63.129.16/32".into()];
        let groups = [nsg("n", false, vec![dns])];
        assert_eq!(evaluate(&groups, &flow("168.63.129.16", 53)).effect(), Effect::Blocks);
    }

    #[test]
    fn no_nsg_lets_everything_through() {
        let out = evaluate(&[], &flow("33.0.0.1", 445));
        assert_eq!(out.effect(), Effect::Allows);
        assert!(out.notes[0].contains("no NSG"));
    }
}
