//! What attribution reads, in order, and what it makes of each answer:
//!
//! 1. Together: IMDS (this VM's `compute.resourceId`, `vmScaleSetName`, NIC MACs and IPs), the
//!    workspace (its managed network), the subscriptions the identity can read.
//! 2. The VM → `networkProfile.networkInterfaces` → the NIC whose MAC or private IP IMDS lists.
//! 3. Together: the NIC's effective security rules and effective routes (long-running POSTs),
//!    its subnet and VNet. Where the effective rules can't be read, the NIC's and the subnet's
//!    NSGs and the subnet's route table instead, labelled [`Basis::SubnetRules`].
//! 4. Together: Azure Firewalls whose private IP is a `VirtualAppliance` next hop, with their
//!    policy chain's rule collection groups; the private DNS zones asked about, their links and
//!    records.
//!
//! Request shapes and api-versions: docs/attribution.md.

use super::Question;
use super::change::ArmId;
use super::dns::{self, Record, VnetLink, Zone};
use super::finding::Basis;
use super::firewall::{Policy, RuleCollectionGroup};
use super::managed::{self, ManagedNetwork};
use super::nsg::{Association, EffectiveNsg, EffectiveNsgList, SecurityRule, SubResource};
use super::read::{Arm, Unavailable, join_all};
use super::routes::{self, EffectiveRoute, EffectiveRouteList, Selection};
use crate::http_client::{Client, Request, Url};
use crate::wire::json::{strings, text};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// Microsoft.Network resources (networkInterface.json, azureFirewall.json, firewallPolicy.json,
/// virtualNetwork.json, networkSecurityGroup.json, routeTable.json, privateEndpoint.json).
const NETWORK_API: &str = "2024-05-01";
/// Microsoft.Compute virtual machines (ComputeRP `virtualMachine.json`).
const COMPUTE_API: &str = "2024-07-01";
/// Private DNS zones (privatedns.json).
const PRIVATE_DNS_API: &str = "2024-06-01";
/// Microsoft.Resources subscriptions (subscriptions.json).
const SUBSCRIPTIONS_API: &str = "2022-12-01";
/// Azure ML workspaces (workspaceRP.json).
const WORKSPACE_API: &str = "2024-04-01";
/// IMDS instance metadata (instance-metadata-service.md's current version).
const IMDS_PATH: &str = "/metadata/instance?api-version=2025-04-07";
/// Parent policies followed at most.
const MAX_POLICY_DEPTH: usize = 3;

/// The RBAC action each read needs, as the warning names it (Azure resource provider
/// operations, role-based-access-control/permissions/networking.md and compute.md).
mod permission {
    pub const VM: &str = "Microsoft.Compute/virtualMachines/read";
    pub const NIC: &str = "Microsoft.Network/networkInterfaces/read";
    pub const EFFECTIVE_NSG: &str = "Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action";
    pub const EFFECTIVE_ROUTES: &str = "Microsoft.Network/networkInterfaces/effectiveRouteTable/action";
    pub const SUBNET: &str = "Microsoft.Network/virtualNetworks/subnets/read";
    pub const VNET: &str = "Microsoft.Network/virtualNetworks/read";
    pub const NSG: &str = "Microsoft.Network/networkSecurityGroups/read";
    pub const ROUTE_TABLE: &str = "Microsoft.Network/routeTables/read";
    pub const SUBSCRIPTIONS: &str = "Microsoft.Resources/subscriptions/read";
    pub const FIREWALLS: &str = "Microsoft.Network/azureFirewalls/read";
    pub const POLICY: &str = "Microsoft.Network/firewallPolicies/read";
    pub const RULE_GROUPS: &str = "Microsoft.Network/firewallPolicies/ruleCollectionGroups/read";
    pub const ZONES: &str = "Microsoft.Network/privateDnsZones/read";
    pub const LINKS: &str = "Microsoft.Network/privateDnsZones/virtualNetworkLinks/read";
    pub const RECORDS: &str = "Microsoft.Network/privateDnsZones/A/read";
    pub const ZONE_GROUPS: &str = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read";
    pub const WORKSPACE: &str = "Microsoft.MachineLearningServices/workspaces/read";
    /// Every one, for the custom role's test.
    #[cfg(test)]
    pub const ALL: &[&str] = &[
        VM,
        NIC,
        EFFECTIVE_NSG,
        EFFECTIVE_ROUTES,
        SUBNET,
        VNET,
        NSG,
        ROUTE_TABLE,
        SUBSCRIPTIONS,
        FIREWALLS,
        POLICY,
        RULE_GROUPS,
        ZONES,
        LINKS,
        RECORDS,
        ZONE_GROUPS,
        WORKSPACE,
    ];
}

/// Where to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// IMDS, when amlprobe may ask it.
    pub imds: Option<&'a Url>,
    /// The workspace's ARM id, for its managed network.
    pub workspace: Option<&'a str>,
    /// A subnet to read when this machine's NIC can't be (an Azure ML compute's subnet).
    pub subnet: Option<&'a str>,
    /// This is an Azure ML compute instance or cluster node (its VM is in Microsoft's
    /// subscription, so a refused VM read says that rather than a missing permission).
    pub azureml_compute: bool,
}

/// The effective (or rebuilt) routes and where they came from.
#[derive(Debug, Clone)]
pub struct Routes {
    /// The routes.
    pub list: Vec<EffectiveRoute>,
    /// Effective, or rebuilt from the subnet.
    pub basis: Basis,
    /// The NIC (effective) or the route table / subnet (rebuilt).
    pub holder: String,
}

/// An Azure Firewall whose private IP is a next hop.
#[derive(Debug, Clone)]
pub struct Firewall {
    /// Its ARM id.
    pub id: String,
    /// Its private IPs.
    pub private_ips: Vec<IpAddr>,
    /// Its policy chain (parent first), or why it can't be evaluated.
    pub policies: Result<Vec<Policy>, String>,
}

/// Everything read.
#[derive(Debug, Default)]
pub struct Evidence {
    /// This NIC's private address.
    pub source_ip: Option<IpAddr>,
    /// This NIC's VNet.
    pub vnet: Option<String>,
    /// Custom DNS servers (NIC's, else VNet's).
    pub dns_servers: Vec<String>,
    /// NSGs and where they came from.
    pub nsgs: Option<(Vec<EffectiveNsg>, Basis)>,
    /// Routes.
    pub routes: Option<Routes>,
    /// Firewalls at the next hops.
    pub firewalls: Vec<Firewall>,
    /// Private DNS zones per zone question (by index).
    pub zones: BTreeMap<usize, Vec<Zone>>,
    /// The workspace's managed network.
    pub managed: Option<ManagedNetwork>,
    /// What could not be read.
    pub unavailable: Vec<Unavailable>,
    /// What the rebuilt evaluation can't see.
    pub notes: Vec<String>,
}

/// A resource's name for messages, inert.
fn short(id: &str) -> String {
    crate::sanitize::echo(id.trim_end_matches('/').rsplit('/').next().unwrap_or(id))
}

/// What IMDS says about this VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    /// `compute.resourceId`.
    pub resource_id: String,
    /// `compute.vmScaleSetName`.
    pub scale_set: String,
    /// `compute.virtualMachineScaleSet.id` is set: a flexible scale set's instance.
    pub flexible: bool,
    /// `network.interface[].macAddress`, upper-case hex digits only.
    pub macs: Vec<String>,
    /// `network.interface[].ipv4.ipAddress[].privateIpAddress`.
    pub ips: Vec<IpAddr>,
}

/// MAC addresses compared as IMDS (`000D3AF806EC`) and ARM (`00-0D-3A-F8-06-EC`) write them.
fn mac(m: &str) -> String {
    m.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Parses `/metadata/instance` (instance-metadata-service.md, "Instance metadata").
pub fn parse_instance(body: &str) -> Option<Instance> {
    let v: Value = serde_json::from_str(body).ok()?;
    let nics = v
        .pointer("/network/interface")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Some(Instance {
        resource_id: text(&v, "/compute/resourceId")?,
        scale_set: text(&v, "/compute/vmScaleSetName").unwrap_or_default(),
        flexible: text(&v, "/compute/virtualMachineScaleSet/id").is_some(),
        macs: nics
            .iter()
            .filter_map(|n| text(n, "/macAddress"))
            .map(|m| mac(&m))
            .collect(),
        ips: nics
            .iter()
            .flat_map(|n| {
                n.pointer("/ipv4/ipAddress")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| text(&a, "/privateIpAddress")?.parse().ok())
            .collect(),
    })
}

async fn read_instance(imds: Option<&Url>, left: Duration) -> Result<Instance, Unavailable> {
    let Some(endpoint) = imds else {
        return Err(Unavailable::NotAzureVm(
            "IMDS was not asked (not an Azure VM, or --no-imds)".into(),
        ));
    };
    let url = endpoint.join(IMDS_PATH);
    let request = Request {
        method: "GET",
        url: &url,
        headers: vec![("Metadata", "true".into())],
        body: None,
    };
    // IMDS answers at once when it is there; the rest of the budget is for ARM.
    let response = Client::plain()
        .send(request, left.min(Duration::from_secs(2)))
        .await
        .map_err(Unavailable::NotAzureVm)?;
    if response.status != 200 {
        return Err(Unavailable::NotAzureVm(format!(
            "IMDS answered HTTP {}",
            response.status
        )));
    }
    parse_instance(&response.body)
        .ok_or_else(|| Unavailable::NotAzureVm("IMDS answered without compute.resourceId".into()))
}

/// Reads everything the questions need within the budget.
pub async fn gather(arm: &Arm<'_>, target: &Target<'_>, questions: &[Question]) -> Evidence {
    let mut ev = Evidence::default();
    let wants_network = questions.iter().any(|q| !matches!(q, Question::Zone { .. }));
    let (instance, workspace, subscriptions) = tokio::join!(
        read_instance(target.imds, arm.left()),
        async {
            match target.workspace {
                // A managed network's outbound rules govern the workspace's own computes only.
                Some(ws) if wants_network && target.azureml_compute => Some(
                    arm.get(
                        format!("{ws}?api-version={WORKSPACE_API}"),
                        "the workspace",
                        permission::WORKSPACE,
                    )
                    .await
                    .map(|doc| managed::parse(ws, &doc)),
                ),
                _ => None,
            }
        },
        arm.list(
            format!("/subscriptions?api-version={SUBSCRIPTIONS_API}"),
            "the subscriptions the identity can read",
            permission::SUBSCRIPTIONS
        ),
    );
    match workspace {
        Some(Ok(net)) => ev.managed = net,
        Some(Err(e)) => ev.unavailable.push(e),
        None => {}
    }
    let mut subscriptions: BTreeSet<String> = match subscriptions {
        Ok(list) => list.iter().filter_map(|s| text(s, "/subscriptionId")).collect(),
        Err(e) => {
            ev.unavailable.push(e);
            BTreeSet::new()
        }
    };
    let nic = match instance {
        Ok(instance) => find_nic(arm, &instance, target, &mut ev).await,
        Err(e) => {
            ev.unavailable.push(e);
            None
        }
    };
    let subnet = nic
        .as_ref()
        .and_then(|n| primary_ip_configuration(n).and_then(|c| text(&c, "/properties/subnet/id")))
        .or_else(|| target.subnet.map(str::to_string));
    if let Some(subnet) = &subnet {
        if let Some(a) = ArmId::parse(subnet) {
            subscriptions.insert(a.subscription);
        }
        Box::pin(read_rules(arm, nic.as_ref(), subnet, wants_network, &mut ev)).await;
    }
    let hops = appliance_hops(&ev, questions);
    let subscriptions: Vec<String> = subscriptions.into_iter().collect();
    let (firewalls, zones) = tokio::join!(
        read_firewalls(arm, &subscriptions, &hops),
        read_zones(arm, &subscriptions, questions)
    );
    ev.firewalls = firewalls.0;
    ev.unavailable.extend(firewalls.1);
    ev.zones = zones.0;
    ev.unavailable.extend(zones.1);
    ev
}

fn primary_ip_configuration(nic: &Value) -> Option<Value> {
    let configs = nic.pointer("/properties/ipConfigurations")?.as_array()?;
    configs
        .iter()
        .find(|c| c.pointer("/properties/primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| configs.first())
        .cloned()
}

/// VM → its NICs → the one IMDS describes.
async fn find_nic(arm: &Arm<'_>, instance: &Instance, target: &Target<'_>, ev: &mut Evidence) -> Option<Value> {
    // IMDS gives `virtualMachineScaleSet.id` for flexible scale sets only ("isn't available for
    // Virtual Machine Scale Sets created with uniform orchestration"); a flexible instance is a
    // plain VM with standalone NICs.
    if !instance.scale_set.is_empty() && !instance.flexible {
        ev.unavailable.push(Unavailable::UniformScaleSet {
            scale_set: crate::sanitize::echo(&instance.scale_set),
        });
        return None;
    }
    if ArmId::parse(&instance.resource_id).is_none() {
        ev.unavailable.push(Unavailable::NotAzureVm(format!(
            "IMDS's compute.resourceId '{}' is not an ARM id",
            crate::sanitize::echo(&instance.resource_id)
        )));
        return None;
    }
    let vm = match arm
        .get(
            format!("{}?api-version={COMPUTE_API}", instance.resource_id),
            format!("virtual machine {}", short(&instance.resource_id)),
            permission::VM,
        )
        .await
    {
        Ok(vm) => vm,
        Err(Unavailable::Forbidden { .. } | Unavailable::NotFound { .. }) if target.azureml_compute => {
            ev.unavailable.push(Unavailable::MicrosoftOwnedNic {
                vm: crate::sanitize::echo(&instance.resource_id),
            });
            return None;
        }
        Err(e) => {
            ev.unavailable.push(e);
            return None;
        }
    };
    let ids: Vec<String> = vm
        .pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| text(n, "/id"))
        .collect();
    let reads = ids.iter().map(|id| {
        arm.get(
            format!("{id}?api-version={NETWORK_API}"),
            format!("network interface {}", short(id)),
            permission::NIC,
        )
    });
    let mut candidates = Vec::new();
    for result in join_all(reads.collect()).await {
        match result {
            Ok(nic) => candidates.push(nic),
            Err(e) => ev.unavailable.push(e),
        }
    }
    let matches = |nic: &Value| {
        let mac_ok = text(nic, "/properties/macAddress").is_some_and(|m| instance.macs.contains(&mac(&m)));
        let ip_ok = nic
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| text(c, "/properties/privateIPAddress")?.parse::<IpAddr>().ok())
            .any(|ip| instance.ips.contains(&ip));
        mac_ok || ip_ok
    };
    let primary = |nic: &&&Value| nic.pointer("/properties/primary").and_then(Value::as_bool) == Some(true);
    let mine: Vec<&Value> = candidates.iter().filter(|n| matches(n)).collect();
    let nic = mine.iter().find(primary).or(mine.first()).map(|n| (*n).clone())?;
    let config = primary_ip_configuration(&nic);
    ev.source_ip = config
        .as_ref()
        .and_then(|c| text(c, "/properties/privateIPAddress")?.parse().ok());
    ev.dns_servers = strings(&nic, "/properties/dnsSettings/dnsServers");
    Some(nic)
}

/// The NIC's effective rules and routes (or the subnet's), its subnet and VNet.
async fn read_rules(arm: &Arm<'_>, nic: Option<&Value>, subnet_id: &str, wants_network: bool, ev: &mut Evidence) {
    let nic_id = nic.and_then(|n| text(n, "/id"));
    let nic_name = nic_id.as_deref().map(short).unwrap_or_default();
    let vnet_id = ArmId::parse(subnet_id).and_then(|a| a.ancestor(1));
    let effective = |action: &'static str, what: String, needs: &'static str| {
        let path = nic_id
            .as_ref()
            .map(|id| format!("{id}/{action}?api-version={NETWORK_API}"));
        async move {
            match path {
                Some(path) if wants_network => Some(arm.post_lro(&path, &what, needs).await),
                _ => None,
            }
        }
    };
    let (nsgs, routes, subnet, vnet) = tokio::join!(
        effective(
            "effectiveNetworkSecurityGroups",
            format!("the effective security rules of network interface {nic_name}"),
            permission::EFFECTIVE_NSG
        ),
        effective(
            "effectiveRouteTable",
            format!("the effective routes of network interface {nic_name}"),
            permission::EFFECTIVE_ROUTES
        ),
        arm.get(
            format!("{subnet_id}?api-version={NETWORK_API}"),
            format!("subnet {}", short(subnet_id)),
            permission::SUBNET
        ),
        async {
            match &vnet_id {
                Some(v) => Some(
                    arm.get(
                        format!("{v}?api-version={NETWORK_API}"),
                        format!("virtual network {}", short(v)),
                        permission::VNET,
                    )
                    .await,
                ),
                None => None,
            }
        },
    );
    ev.vnet.clone_from(&vnet_id);
    let subnet = subnet.map_err(|e| ev.unavailable.push(e)).ok();
    let vnet = match vnet {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            ev.unavailable.push(e);
            None
        }
        None => None,
    };
    if ev.dns_servers.is_empty() {
        ev.dns_servers = vnet
            .as_ref()
            .map(|v| strings(v, "/properties/dhcpOptions/dnsServers"))
            .unwrap_or_default();
    }
    if !wants_network {
        return;
    }
    match nsgs.map(|r| r.and_then(|v| parse_as::<EffectiveNsgList>(v, "the effective security rules"))) {
        Some(Ok(list)) => ev.nsgs = Some((list.value, Basis::EffectiveRules)),
        other => {
            if let Some(Err(e)) = other {
                ev.unavailable.push(e);
            }
            ev.nsgs = rebuilt_nsgs(arm, nic, subnet.as_ref(), ev).await;
        }
    }
    match routes.map(|r| r.and_then(|v| parse_as::<EffectiveRouteList>(v, "the effective routes"))) {
        Some(Ok(list)) => {
            ev.routes = Some(Routes {
                list: list.value,
                basis: Basis::EffectiveRules,
                holder: nic_id.clone().unwrap_or_default(),
            });
        }
        other => {
            if let Some(Err(e)) = other {
                ev.unavailable.push(e);
            }
            ev.routes = rebuilt_routes(arm, subnet_id, subnet.as_ref(), vnet.as_ref(), ev).await;
        }
    }
}

fn parse_as<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, Unavailable> {
    serde_json::from_value(v).map_err(|_| Unavailable::Malformed { what: what.into() })
}

/// The NIC's and the subnet's NSGs as effective groups, when the effective rules can't be read.
async fn rebuilt_nsgs(
    arm: &Arm<'_>,
    nic: Option<&Value>,
    subnet: Option<&Value>,
    ev: &mut Evidence,
) -> Option<(Vec<EffectiveNsg>, Basis)> {
    let subnet = subnet?;
    let mut wanted = Vec::new();
    if let (Some(nic), Some(id)) = (nic, nic.and_then(|n| text(n, "/properties/networkSecurityGroup/id"))) {
        let association = Association {
            network_interface: text(nic, "/id").map(|id| SubResource { id }),
            ..Default::default()
        };
        wanted.push((id, association));
    }
    if let Some(id) = text(subnet, "/properties/networkSecurityGroup/id") {
        let association = Association {
            subnet: text(subnet, "/id").map(|id| SubResource { id }),
            ..Default::default()
        };
        wanted.push((id, association));
    }
    let reads = wanted.iter().map(|(id, _)| {
        arm.get(
            format!("{id}?api-version={NETWORK_API}"),
            format!("network security group {}", short(id)),
            permission::NSG,
        )
    });
    let mut groups = Vec::new();
    for (result, (id, association)) in join_all(reads.collect()).await.into_iter().zip(wanted) {
        match result {
            Ok(doc) => groups.push(EffectiveNsg {
                network_security_group: Some(SubResource { id }),
                association,
                effective_security_rules: configured_rules(&doc),
                tag_map: None,
            }),
            // Half the NSGs is not an evaluation: say nothing rather than half.
            Err(e) => {
                ev.unavailable.push(e);
                return None;
            }
        }
    }
    Some((groups, Basis::SubnetRules))
}

/// An NSG's `securityRules` and `defaultSecurityRules` as effective rules (names prefixed the
/// way the effective list names them).
fn configured_rules(nsg: &Value) -> Vec<SecurityRule> {
    [
        ("securityRules", "/properties/securityRules"),
        ("defaultSecurityRules", "/properties/defaultSecurityRules"),
    ]
    .into_iter()
    .flat_map(|(kind, pointer)| {
        nsg.pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(move |r| {
                let mut rule: SecurityRule = serde_json::from_value(r.get("properties")?.clone()).ok()?;
                rule.name = format!("{kind}/{}", text(&r, "/name").unwrap_or_default());
                Some(rule)
            })
    })
    .collect()
}

/// Routes rebuilt from the documented system routes, the VNet's address space and peerings, and
/// the subnet's route table.
async fn rebuilt_routes(
    arm: &Arm<'_>,
    subnet_id: &str,
    subnet: Option<&Value>,
    vnet: Option<&Value>,
    ev: &mut Evidence,
) -> Option<Routes> {
    let vnet = vnet?;
    let subnet = subnet?;
    let mut list = routes::system_routes(&strings(vnet, "/properties/addressSpace/addressPrefixes"));
    for peering in vnet
        .pointer("/properties/virtualNetworkPeerings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if text(peering, "/properties/peeringState").is_some_and(|s| s.eq_ignore_ascii_case("connected")) {
            list.extend(
                strings(peering, "/properties/remoteAddressSpace/addressPrefixes")
                    .into_iter()
                    .map(|p| EffectiveRoute {
                        source: "Default".into(),
                        state: "Active".into(),
                        address_prefix: vec![p],
                        next_hop_type: "VNetPeering".into(),
                        ..Default::default()
                    }),
            );
        }
    }
    let mut holder = subnet_id.to_string();
    if let Some(table) = text(subnet, "/properties/routeTable/id") {
        match arm
            .get(
                format!("{table}?api-version={NETWORK_API}"),
                format!("route table {}", short(&table)),
                permission::ROUTE_TABLE,
            )
            .await
        {
            Ok(doc) => list.extend(routes::user_routes(&doc)),
            Err(e) => {
                ev.unavailable.push(e);
                return None;
            }
        }
        holder = table;
    }
    ev.notes.push("routes were rebuilt from the subnet's route table and the VNet: routes learned over BGP (VPN or ExpressRoute gateways) are not visible this way".into());
    Some(Routes {
        list,
        basis: Basis::SubnetRules,
        holder,
    })
}

/// The virtual appliance addresses the questions' flows are routed to.
fn appliance_hops(ev: &Evidence, questions: &[Question]) -> BTreeSet<IpAddr> {
    let Some(routes) = &ev.routes else {
        return BTreeSet::new();
    };
    let mut destinations: Vec<IpAddr> = Vec::new();
    for q in questions {
        match q {
            Question::Destination { addresses, .. } => destinations.extend(addresses),
            // A firewall's denial with no address: the hop of the default route.
            Question::FirewallDenied { .. } => destinations.push(IpAddr::from([0, 0, 0, 0])),
            Question::Zone { .. } => {}
        }
    }
    destinations
        .into_iter()
        .filter_map(|d| match routes::select(&routes.list, d) {
            Selection::Chosen { route, .. } if routes::effect(&route) == super::finding::Effect::Redirects => {
                Some(route.next_hop_ips())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// Azure Firewalls whose private IP is one of `hops`, with their policies.
async fn read_firewalls(
    arm: &Arm<'_>,
    subscriptions: &[String],
    hops: &BTreeSet<IpAddr>,
) -> (Vec<Firewall>, Vec<Unavailable>) {
    let mut problems = Vec::new();
    if hops.is_empty() {
        return (Vec::new(), problems);
    }
    let lists = subscriptions.iter().map(|s| {
        arm.list(
            format!("/subscriptions/{s}/providers/Microsoft.Network/azureFirewalls?api-version={NETWORK_API}"),
            format!("the Azure Firewalls in subscription {}", crate::sanitize::echo(s)),
            permission::FIREWALLS,
        )
    });
    let mut found: Vec<(String, Vec<IpAddr>, Value)> = Vec::new();
    for result in join_all(lists.collect()).await {
        match result {
            Ok(list) => {
                for fw in list {
                    let ips: Vec<IpAddr> = fw
                        .pointer("/properties/ipConfigurations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|c| text(c, "/properties/privateIPAddress")?.parse().ok())
                        .collect();
                    if ips.iter().any(|ip| hops.contains(ip))
                        && let Some(id) = text(&fw, "/id")
                    {
                        found.push((id, ips, fw));
                    }
                }
            }
            Err(e) => problems.push(e),
        }
    }
    let chains = found.iter().map(|(_, _, fw)| async move {
        match text(fw, "/properties/firewallPolicy/id") {
            Some(policy) => policy_chain(arm, &policy).await,
            None => Err("it uses classic rules (no firewall policy), which this version does not evaluate".to_string()),
        }
    });
    let firewalls = join_all(chains.collect())
        .await
        .into_iter()
        .zip(found)
        .map(|(policies, (id, private_ips, _))| Firewall {
            id,
            private_ips,
            policies,
        })
        .collect();
    (firewalls, problems)
}

/// A policy and its parents, parent first; an unreadable one is why.
async fn policy_chain(arm: &Arm<'_>, policy: &str) -> Result<Vec<Policy>, String> {
    let mut chain = Vec::new();
    let mut next = Some(policy.to_string());
    while let Some(id) = next.take() {
        if chain.len() == MAX_POLICY_DEPTH {
            return Err(format!("its policy chain is deeper than {MAX_POLICY_DEPTH} policies"));
        }
        let (doc, groups) = tokio::join!(
            arm.get(
                format!("{id}?api-version={NETWORK_API}"),
                format!("firewall policy {}", short(&id)),
                permission::POLICY
            ),
            arm.list(
                format!("{id}/ruleCollectionGroups?api-version={NETWORK_API}"),
                format!("the rule collection groups of firewall policy {}", short(&id)),
                permission::RULE_GROUPS
            )
        );
        let doc = doc.map_err(|e| e.to_string())?;
        let groups: Vec<RuleCollectionGroup> = groups
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|g| serde_json::from_value(g).ok())
            .collect();
        next = text(&doc, "/properties/basePolicy/id");
        chain.push(Policy { id, groups });
    }
    chain.reverse();
    Ok(chain)
}

/// The zones each zone question names, with their links and the questioned record.
async fn read_zones(
    arm: &Arm<'_>,
    subscriptions: &[String],
    questions: &[Question],
) -> (BTreeMap<usize, Vec<Zone>>, Vec<Unavailable>) {
    let mut problems = Vec::new();
    let asked: Vec<(usize, &str, &str, Option<&str>)> = questions
        .iter()
        .enumerate()
        .filter_map(|(i, q)| match q {
            Question::Zone {
                zone,
                name,
                private_endpoint,
                ..
            } => Some((i, zone.as_str(), name.as_str(), private_endpoint.as_deref())),
            _ => None,
        })
        .collect();
    if asked.is_empty() {
        return (BTreeMap::new(), problems);
    }
    // Every zone the identity can see, read once when a question has no endpoint to start from.
    let mut all_zones: Vec<String> = Vec::new();
    if asked.iter().any(|(_, _, _, pe)| pe.is_none()) {
        let lists = subscriptions.iter().map(|s| {
            arm.list(
                format!("/subscriptions/{s}/providers/Microsoft.Network/privateDnsZones?api-version={PRIVATE_DNS_API}"),
                format!("the private DNS zones in subscription {}", crate::sanitize::echo(s)),
                permission::ZONES,
            )
        });
        for result in join_all(lists.collect()).await {
            match result {
                Ok(list) => all_zones.extend(list.iter().filter_map(|z| text(z, "/id"))),
                Err(e) => problems.push(e),
            }
        }
    }
    let per_question = asked.iter().map(|&(i, zone, name, endpoint)| {
        let all_zones = &all_zones;
        async move {
            let mut problems = Vec::new();
            let ids: Vec<String> = match endpoint {
                Some(pe) => match arm
                    .list(
                        format!("{pe}/privateDnsZoneGroups?api-version={NETWORK_API}"),
                        format!("the DNS zone groups of private endpoint {}", short(pe)),
                        permission::ZONE_GROUPS,
                    )
                    .await
                {
                    Ok(groups) => groups
                        .iter()
                        .flat_map(|g| {
                            g.pointer("/properties/privateDnsZoneConfigs")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default()
                        })
                        .filter_map(|c| text(&c, "/properties/privateDnsZoneId"))
                        .collect(),
                    Err(e) => {
                        problems.push(e);
                        Vec::new()
                    }
                },
                None => all_zones.clone(),
            };
            let ids: Vec<String> = ids
                .into_iter()
                .filter(|id| short(id).eq_ignore_ascii_case(zone.trim_end_matches('.')))
                .collect();
            let reads = ids.iter().map(|id| read_zone(arm, id, zone, name));
            let mut zones = Vec::new();
            for (z, p) in join_all(reads.collect()).await {
                zones.push(z);
                problems.extend(p);
            }
            (i, zones, problems)
        }
    });
    let mut out = BTreeMap::new();
    for (i, zones, p) in join_all(per_question.collect()).await {
        out.insert(i, zones);
        problems.extend(p);
    }
    (out, problems)
}

/// One zone's links and the record for `name` (its wildcard when it has none).
async fn read_zone(arm: &Arm<'_>, zone_id: &str, zone: &str, name: &str) -> (Zone, Vec<Unavailable>) {
    let mut problems = Vec::new();
    let relative = dns::relative_name(name, &zone.trim_end_matches('.').to_ascii_lowercase());
    let record_path = |rel: &str| format!("{zone_id}/A/{rel}?api-version={PRIVATE_DNS_API}");
    let what = format!("the A records of zone {}", short(zone_id));
    let (links, record) = tokio::join!(
        arm.list(
            format!("{zone_id}/virtualNetworkLinks?api-version={PRIVATE_DNS_API}"),
            format!("the virtual network links of zone {}", short(zone_id)),
            permission::LINKS
        ),
        async {
            let rel = relative.as_deref()?;
            Some(arm.get(record_path(rel), what.as_str(), permission::RECORDS).await)
        }
    );
    let links = links
        .map_err(|e| problems.push(e))
        .unwrap_or_default()
        .iter()
        .filter_map(VnetLink::parse)
        .collect();
    let record = match (record, &relative) {
        (None, _) | (_, None) => {
            Record::NotRead(format!("{} is not a name in zone {zone}", crate::sanitize::echo(name)))
        }
        (Some(Ok(doc)), Some(rel)) => Record::Found {
            name: rel.clone(),
            addresses: dns::record_addresses(&doc),
        },
        (Some(Err(Unavailable::NotFound { .. })), Some(rel)) => match dns::wildcard_of(rel) {
            Some(wild) => match arm.get(&record_path(&wild), &what, permission::RECORDS).await {
                Ok(doc) => Record::Found {
                    name: wild,
                    addresses: dns::record_addresses(&doc),
                },
                Err(Unavailable::NotFound { .. }) => Record::Missing,
                Err(e) => Record::NotRead(e.to_string()),
            },
            None => Record::Missing,
        },
        (Some(Err(e)), Some(_)) => {
            let why = e.to_string();
            problems.push(e);
            Record::NotRead(why)
        }
    };
    (
        Zone {
            id: zone_id.to_string(),
            links,
            record,
        },
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_gives_the_vm_macs_and_addresses() {
        let body = r#"{"compute":{"resourceId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1","vmScaleSetName":""},
            "network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4","publicIpAddress":""}],"subnet":[{"address":"10.1.0.0","prefix":"24"}]},"macAddress":"000D3AF806EC"}]}}"#;
        let i = parse_instance(body).unwrap();
        assert_eq!(i.macs, ["000D3AF806EC"]);
        assert_eq!(mac("00-0D-3A-F8-06-ec"), "000D3AF806EC");
        assert_eq!(i.ips, ["10.1.0.4".parse::<IpAddr>().unwrap()]);
        assert!(!i.flexible && i.scale_set.is_empty());
        assert!(parse_instance(r#"{"compute":{}}"#).is_none());
    }

    #[test]
    fn the_custom_role_grants_every_read_and_nothing_broader() {
        let role: Value =
            serde_json::from_str(include_str!("../../packaging/azure/amlprobe-reader-role.json")).unwrap();
        let actions = strings(&role, "/Actions");
        for needed in permission::ALL {
            assert!(actions.iter().any(|a| a == needed), "the role lacks {needed}");
        }
        assert!(
            actions
                .iter()
                .all(|a| !a.contains('*') && (a.ends_with("/read") || a.ends_with("/action"))),
            "{actions:?}"
        );
        assert_eq!(strings(&role, "/DataActions"), Vec::<String>::new());
    }

    #[test]
    fn configured_rules_read_like_effective_ones() {
        let nsg = serde_json::json!({"properties": {
            "securityRules": [{"name": "DenyInternetOutbound", "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                "sourceAddressPrefix": "*", "destinationAddressPrefix": "Internet", "access": "Deny", "priority": 4000, "direction": "Outbound"}}],
            "defaultSecurityRules": [{"name": "DenyAllOutBound", "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Deny", "priority": 65500, "direction": "Outbound"}}]
        }});
        let rules = configured_rules(&nsg);
        assert_eq!(rules.len(), 2);
        assert_eq!(
            (rules[0].name.as_str(), rules[0].priority),
            ("securityRules/DenyInternetOutbound", Some(4000))
        );
        assert_eq!(rules[1].name, "defaultSecurityRules/DenyAllOutBound");
    }
}
