//! What attribution (the `attribution` stage) reports: the Azure configuration that decides a flow,
//! what it does to the flow, and a change that would fix it. Part of the JSON contract: each
//! root cause carries its findings and change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What one piece of configuration does to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Lets the flow through (or answers the name correctly).
    Allows,
    /// Stops the flow (a deny rule, a `None` route, a missing record or link).
    Blocks,
    /// Sends the flow elsewhere first (a route to a virtual appliance).
    Redirects,
    /// What was read is not enough to tell; the verdict says what is missing.
    Undetermined,
}

/// The kind of configuration a finding names (issue 25's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A network security group rule.
    NsgRule,
    /// An effective (or user-defined) route.
    Route,
    /// An Azure Firewall policy rule, or its default deny.
    FirewallRule,
    /// A private DNS zone's record set.
    DnsZone,
    /// A private DNS zone's virtual network link, or the VNet's DNS servers.
    DnsLink,
    /// A managed-network outbound rule of the workspace.
    OutboundRule,
}

impl FindingKind {
    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::NsgRule => "NSG rule",
            FindingKind::Route => "route",
            FindingKind::FirewallRule => "Azure Firewall rule",
            FindingKind::DnsZone => "private DNS record",
            FindingKind::DnsLink => "private DNS zone link",
            FindingKind::OutboundRule => "managed network outbound rule",
        }
    }
}

/// Where the configuration was read from: a verdict from the subnet's own rules is labelled so,
/// because it is not what Azure computed for this NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The NIC's effective security rules or effective routes, as Azure computed them.
    EffectiveRules,
    /// The subnet's NSG, the NIC's NSG and the subnet's route table read one by one, because
    /// the effective rules could not be read.
    SubnetRules,
    /// A resource's own configuration (a firewall policy, a DNS zone, a workspace).
    Configuration,
}

impl Basis {
    /// The label the report shows next to the verdict.
    pub fn label(self) -> &'static str {
        match self {
            Basis::EffectiveRules => "from the NIC's effective rules",
            Basis::SubnetRules => "from the subnet's rules (not the NIC's effective rules)",
            Basis::Configuration => "from the resource's configuration",
        }
    }
}

/// The facts of one finding, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Detail {
    /// An NSG rule (effective or as configured).
    NsgRule {
        /// Lower is evaluated first.
        priority: i64,
        /// `Outbound` for every flow amlprobe probes.
        direction: String,
        /// `Allow` or `Deny`.
        access: String,
        /// `Tcp`, `Udp`, `All`/`*`.
        protocol: String,
        /// Destination prefixes as the rule states them (a tag stays a tag).
        destination_prefixes: Vec<String>,
        /// Destination ports as the rule states them.
        destination_ports: Vec<String>,
        /// `network interface` or `subnet`: where the NSG is associated.
        applied_to: String,
    },
    /// A route.
    Route {
        /// The route's prefixes.
        address_prefixes: Vec<String>,
        /// `VirtualAppliance`, `Internet`, `None`, `VnetLocal`, …
        next_hop_type: String,
        /// The appliance address for `VirtualAppliance`.
        next_hop_ips: Vec<String>,
        /// `User`, `VirtualNetworkGateway`, `Default`.
        source: String,
    },
    /// An Azure Firewall policy rule.
    FirewallRule {
        /// The rule collection group.
        rule_collection_group: String,
        /// The group's priority.
        group_priority: Option<i64>,
        /// The rule collection.
        rule_collection: String,
        /// The collection's priority.
        collection_priority: Option<i64>,
        /// `NetworkRule` or `ApplicationRule`.
        rule_type: String,
        /// `Allow` or `Deny`.
        action: String,
    },
    /// No rule of the policy matched: the firewall's default deny.
    FirewallDefault {
        /// The policies evaluated, parent first.
        policies: Vec<String>,
    },
    /// A private DNS zone's A record set (or its absence).
    DnsRecord {
        /// The zone.
        zone: String,
        /// The record set name relative to the zone.
        record: String,
        /// Its A records (empty: no record).
        addresses: Vec<IpAddr>,
    },
    /// A zone's link to this NIC's virtual network (or its absence), and the DNS servers the
    /// machine is given.
    DnsLink {
        /// The zone.
        zone: String,
        /// This NIC's virtual network.
        virtual_network: String,
        /// `Completed`, `InProgress`, or empty when there is no link.
        link_state: String,
        /// Custom DNS servers from the NIC or VNet (empty: Azure-provided DNS).
        dns_servers: Vec<String>,
    },
    /// A managed-network outbound rule (or its absence).
    OutboundRule {
        /// `AllowOnlyApprovedOutbound`, `AllowInternetOutbound`.
        isolation_mode: String,
        /// `FQDN`, `ServiceTag`, `PrivateEndpoint`, or empty when no rule matched.
        rule_type: String,
        /// The rule's destination as written.
        destination: String,
        /// `Active` or `Inactive`.
        status: String,
    },
}

/// What the configuration does, and in words why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    /// The effect on the flow.
    pub effect: Effect,
    /// One sentence, e.g. "denies TCP 443 to 20.37.158.0: rule DenyInternetOutbound matches first".
    pub says: String,
}

/// One piece of Azure configuration that decides (part of) a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzureFinding {
    /// The ARM id of the resource holding it (an NSG, a route table or NIC, a firewall policy,
    /// a DNS zone, a workspace).
    pub resource: String,
    /// What kind of configuration it is.
    pub kind: FindingKind,
    /// Its name (the rule, route, record or link name).
    pub name: String,
    /// Its facts.
    pub detail: Detail,
    /// What it does to this flow.
    pub verdict: Verdict,
    /// Where it was read from.
    pub basis: Basis,
}

/// A change that would fix the flow: Azure CLI commands (one per line) and, where a resource
/// can be written, its Bicep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// `az …` commands, one per line, values shell-quoted.
    pub az: String,
    /// The same change as Bicep, when it is one resource.
    pub bicep: Option<String>,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Attribution {
    /// The configuration that decides the flow, in the order Azure applies it.
    pub azure: Vec<AzureFinding>,
    /// A change that would fix it, when one can be written.
    pub change: Option<Change>,
    /// What could not be evaluated and why (a service tag without prefixes, an FQDN tag, a
    /// parent policy not read); never a guess.
    pub notes: Vec<String>,
}

#[cfg(test)]
impl Attribution {
    /// The first finding that blocks.
    pub fn blocker(&self) -> Option<&AzureFinding> {
        blocker(&self.azure)
    }
}

/// The first of `findings` that blocks the flow.
pub fn blocker(findings: &[AzureFinding]) -> Option<&AzureFinding> {
    findings.iter().find(|f| f.verdict.effect == Effect::Blocks)
}
