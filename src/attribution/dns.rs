//! Private DNS evaluation: does this VNet's resolver answer a privatelink name with the expected
//! address? Facts used (docs/attribution.md has the sources):
//!
//! - A zone "overrides name resolution for all names within the scope of the root of the zone
//!   … to all Virtual Networks the Private DNS Zone is linked to", and its records "are only
//!   returned to devices resolving domains using the default Azure DNS Virtual Server IP
//!   address", 168.63.129.16 (azure-ai-docs how-to-custom-dns.md). So a zone not linked to this
//!   NIC's VNet is not consulted, and with custom DNS servers the link alone does not help: the
//!   servers must forward to 168.63.129.16 from a VNet linked to the zone.
//! - Links: `virtualNetworkLinks` with `virtualNetwork.id`, `registrationEnabled`,
//!   `virtualNetworkLinkState` InProgress | Completed, `provisioningState` (privatedns.json).
//! - Records: `A/{relativeRecordSetName}` with `aRecords[].ipv4Address`.

use super::change::{self, ArmId};
use super::finding::{AzureFinding, Basis, Change, Detail, Effect, FindingKind, Verdict};
use serde_json::Value;
use std::net::IpAddr;

/// A zone's virtual network link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VnetLink {
    /// The link's ARM id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The linked VNet's ARM id.
    pub virtual_network: String,
    /// `InProgress` or `Completed`.
    pub link_state: String,
    /// `Succeeded`, `Failed`, …
    pub provisioning_state: String,
}

impl VnetLink {
    /// From one element of a `VirtualNetworkLinkListResult`.
    pub fn parse(v: &Value) -> Option<VnetLink> {
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        let virtual_network = text("/properties/virtualNetwork/id");
        (!virtual_network.is_empty()).then(|| VnetLink {
            id: text("/id"),
            name: text("/name"),
            virtual_network,
            link_state: text("/properties/virtualNetworkLinkState"),
            provisioning_state: text("/properties/provisioningState"),
        })
    }

    fn completed(&self) -> bool {
        self.link_state.eq_ignore_ascii_case("completed")
            && (self.provisioning_state.is_empty() || self.provisioning_state.eq_ignore_ascii_case("succeeded"))
    }
}

/// What was read of the record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The record set and its A records (a wildcard record when the name itself has none).
    Found {
        /// Its name relative to the zone.
        name: String,
        /// Its addresses.
        addresses: Vec<IpAddr>,
    },
    /// ARM answered 404: no such record set.
    Missing,
    /// It could not be read; the string says why.
    NotRead(String),
}

/// The A records of a `RecordSet` document.
pub fn record_addresses(v: &Value) -> Vec<IpAddr> {
    v.pointer("/properties/aRecords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("ipv4Address")?.as_str()?.parse().ok())
        .collect()
}

/// One zone and what was read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Its ARM id.
    pub id: String,
    /// Its links (all of them).
    pub links: Vec<VnetLink>,
    /// The questioned name's record set in it.
    pub record: Record,
}

/// Where this machine's queries go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolver {
    /// This NIC's VNet.
    pub vnet: Option<String>,
    /// Custom DNS servers: the NIC's `dnsSettings.dnsServers`, else the VNet's
    /// `dhcpOptions.dnsServers`; empty means Azure-provided DNS.
    pub dns_servers: Vec<String>,
}

/// The name asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The privatelink zone, e.g. `privatelink.api.azureml.ms`.
    pub zone: String,
    /// The full name in it.
    pub name: String,
    /// The private endpoint's address, when known.
    pub expected: Option<IpAddr>,
}

/// What the DNS configuration does for `name`: findings, a change, notes.
pub fn evaluate(
    name: &Lookup,
    zones: &[Zone],
    resolver: &Resolver,
) -> (Vec<AzureFinding>, Option<Change>, Vec<String>) {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut commands: Vec<String> = Vec::new();
    let mut bicep = None;
    let vnet = resolver.vnet.clone().unwrap_or_default();
    let zone_name = name.zone.trim_end_matches('.').to_ascii_lowercase();
    let relative = relative_name(&name.name, &zone_name);
    if !resolver.dns_servers.is_empty() {
        findings.push(link_finding(
            &zone_name,
            zones.first().map_or("", |z| z.id.as_str()),
            &vnet,
            "",
            resolver,
            Effect::Undetermined,
            format!(
                "this machine is given custom DNS servers ({}): a zone linked to this VNet answers only queries sent to Azure DNS (168.63.129.16), so those servers must forward {} to 168.63.129.16 from a VNet linked to the zone",
                resolver.dns_servers.join(", "),
                parent_domain(&zone_name)
            ),
        ));
    }
    if zones.is_empty() {
        notes.push(format!(
            "no private DNS zone {zone_name} was found in the subscriptions this identity can read"
        ));
        return (findings, None, notes);
    }
    let Some(relative) = relative else {
        notes.push(format!(
            "{} is not a name in zone {zone_name}",
            crate::sanitize::echo(&name.name)
        ));
        return (findings, None, notes);
    };
    if resolver.vnet.is_none() {
        notes.push(format!(
            "this machine's virtual network is not known, so zone {zone_name}'s links were not checked"
        ));
    }
    // Azure DNS in this VNet consults the zone linked to it; if none is, the first one found is
    // the one to link.
    let linked = zones.iter().find_map(|z| {
        z.links
            .iter()
            .find(|l| !vnet.is_empty() && l.virtual_network.eq_ignore_ascii_case(&vnet))
            .map(|l| (z, l))
    });
    let zone = match linked {
        Some((zone, link)) if link.completed() => {
            findings.push(link_finding(
                &zone_name,
                &zone.id,
                &vnet,
                &link.link_state,
                resolver,
                Effect::Allows,
                format!("zone {zone_name} is linked to this VNet (link {})", link.name),
            ));
            zone
        }
        Some((zone, link)) => {
            findings.push(link_finding(
                &zone_name,
                &zone.id,
                &vnet,
                &link.link_state,
                resolver,
                Effect::Blocks,
                format!(
                    "zone {zone_name}'s link {} to this VNet is not complete (state {}, provisioning {}): the VNet's resolver does not use the zone yet",
                    link.name,
                    empty_dash(&link.link_state),
                    empty_dash(&link.provisioning_state)
                ),
            ));
            zone
        }
        None if resolver.vnet.is_none() => &zones[0],
        None => {
            let zone = zones.iter().find(|z| matches!(&z.record, Record::Found { addresses, .. } if name.expected.is_some_and(|e| addresses.contains(&e)))).unwrap_or(&zones[0]);
            findings.push(link_finding(
                &zone_name,
                &zone.id,
                &vnet,
                "",
                resolver,
                Effect::Blocks,
                format!(
                    "zone {zone_name} is not linked to {vnet}: Azure DNS there does not consult it, so {} gets the public answer",
                    name.name
                ),
            ));
            if let Some((cmd, b)) = link_command(&zone.id, &vnet) {
                commands.push(cmd);
                bicep = Some(b);
            }
            zone
        }
    };
    let record_finding = |effect: Effect, addresses: Vec<IpAddr>, says: String| AzureFinding {
        resource: zone.id.clone(),
        kind: FindingKind::DnsZone,
        name: relative.clone(),
        detail: Detail::DnsRecord {
            zone: zone_name.clone(),
            record: relative.clone(),
            addresses,
        },
        verdict: Verdict { effect, says },
        basis: Basis::Configuration,
    };
    match &zone.record {
        Record::Missing => {
            findings.push(record_finding(
                Effect::Blocks,
                Vec::new(),
                format!(
                    "zone {zone_name} has no A record {relative}: a linked VNet gets NXDOMAIN for {}",
                    name.name
                ),
            ));
            if let Some(ip) = name.expected {
                commands.extend(record_command(&zone.id, "add-record", &relative, ip));
            }
        }
        Record::Found { name: found, addresses } => match name.expected {
            Some(ip) if addresses.contains(&ip) => findings.push(record_finding(
                Effect::Allows,
                addresses.clone(),
                format!("A record {found} in zone {zone_name} holds {ip}, the private endpoint's address"),
            )),
            Some(ip) => {
                let listed: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
                findings.push(record_finding(
                    Effect::Blocks,
                    addresses.clone(),
                    format!(
                        "A record {found} in zone {zone_name} holds {}, not the private endpoint's {ip}",
                        if listed.is_empty() {
                            "no address".into()
                        } else {
                            listed.join(", ")
                        }
                    ),
                ));
                // A wildcard's own record is not this name's: add the name's record instead.
                if *found == relative {
                    commands.extend(record_command(&zone.id, "add-record", &relative, ip));
                    for wrong in addresses {
                        commands.extend(record_command(&zone.id, "remove-record", &relative, *wrong));
                    }
                } else {
                    commands.extend(record_command(&zone.id, "add-record", &relative, ip));
                }
            }
            None => findings.push(record_finding(
                Effect::Allows,
                addresses.clone(),
                format!("A record {found} in zone {zone_name} exists (the endpoint's address is not known to compare)"),
            )),
        },
        Record::NotRead(why) => notes.push(format!("the record {relative} in zone {zone_name} was not read: {why}")),
    }
    let change = (!commands.is_empty()).then(|| Change {
        az: commands.join("\n"),
        bicep,
    });
    (findings, change, notes)
}

fn empty_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// `name`'s record set in `zone` (`abc.workspace.eastus` in `privatelink.api.azureml.ms`), for
/// a name in the zone and for the public name the probes use, which Azure's public DNS CNAMEs
/// into it: the zone's "public DNS zone forwarders" are the zone without `privatelink.`, and
/// `vault.<suffix>` besides for Key Vault's `privatelink.vaultcore.<suffix>` (azure-docs
/// `articles/private-link/private-endpoint-dns.md`), so `abc.workspace.eastus.api.azureml.ms`
/// is `abc.workspace.eastus` and `kv.vault.azure.net` is `kv`.
pub fn relative_name(name: &str, zone: &str) -> Option<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let under = |domain: &str| {
        name.strip_suffix(domain)?
            .strip_suffix('.')
            .filter(|rel| !rel.is_empty())
            .map(str::to_string)
    };
    if name == zone || name.ends_with(&format!(".{zone}")) {
        return under(&zone);
    }
    let public = zone.strip_prefix("privatelink.")?;
    if let Some(rel) = under(public) {
        return Some(rel);
    }
    let suffix = public.strip_prefix("vaultcore.")?;
    under(&format!("vault.{suffix}")).filter(|rel| !rel.contains('.'))
}

/// The wildcard record set that covers `relative` when it has none of its own (`*.rest`).
pub fn wildcard_of(relative: &str) -> Option<String> {
    relative.split_once('.').map(|(_, rest)| format!("*.{rest}"))
}

/// The public domain a privatelink zone shadows: `privatelink.api.azureml.ms` → `api.azureml.ms`.
fn parent_domain(zone: &str) -> &str {
    zone.strip_prefix("privatelink.").unwrap_or(zone)
}

fn link_finding(
    zone: &str,
    zone_id: &str,
    vnet: &str,
    link_state: &str,
    resolver: &Resolver,
    effect: Effect,
    says: String,
) -> AzureFinding {
    AzureFinding {
        resource: zone_id.to_string(),
        kind: FindingKind::DnsLink,
        name: format!(
            "{zone} → {}",
            ArmId::parse(vnet).map_or_else(|| "this VNet".into(), |v| v.name)
        ),
        detail: Detail::DnsLink {
            zone: zone.to_string(),
            virtual_network: vnet.to_string(),
            link_state: link_state.to_string(),
            dns_servers: resolver.dns_servers.clone(),
        },
        verdict: Verdict { effect, says },
        basis: Basis::Configuration,
    }
}

/// `az network private-dns link vnet create` and its Bicep.
fn link_command(zone_id: &str, vnet_id: &str) -> Option<(String, String)> {
    let zone = ArmId::parse(zone_id)?;
    let vnet = ArmId::parse(vnet_id)?;
    let link = change::rule_name(&["link", &vnet.name]);
    let az = change::command(
        &["az", "network", "private-dns", "link", "vnet", "create"],
        &[
            ("--subscription", &zone.subscription),
            ("-g", &zone.resource_group),
            ("-z", &zone.name),
            ("-n", &link),
            ("-v", vnet_id),
            ("-e", "false"),
        ],
    )?;
    let bicep = format!(
        "resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {{\n  name: '{}/{link}'\n  location: 'global'\n  properties: {{\n    registrationEnabled: false\n    virtualNetwork: {{\n      id: '{vnet_id}'\n    }}\n  }}\n}}",
        zone.name
    );
    Some((az, bicep))
}

/// `az network private-dns record-set a add-record|remove-record`.
fn record_command(zone_id: &str, verb: &str, relative: &str, ip: IpAddr) -> Option<String> {
    let zone = ArmId::parse(zone_id)?;
    let ip = ip.to_string();
    change::command(
        &["az", "network", "private-dns", "record-set", "a", verb],
        &[
            ("--subscription", &zone.subscription),
            ("-g", &zone.resource_group),
            ("-z", &zone.name),
            ("-n", relative),
            ("-a", &ip),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: &str = include_str!("testdata/VirtualNetworkLinkList.json");
    const RECORD: &str = include_str!("testdata/RecordSetAGet.json");
    const ZONE_ID: &str = "/subscriptions/subscriptionId/resourceGroups/resourceGroup1/providers/Microsoft.Network/privateDnsZones/privatezone1.com";
    const LINKED_VNET: &str = "/subscriptions/virtualNetworkSubscriptionId/resourceGroups/virtualNetworkResourceGroup/providers/Microsoft.Network/virtualNetworks/virtualNetworkName";
    const OTHER_VNET: &str =
        "/subscriptions/s/resourceGroups/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-ml";

    fn spec_links() -> Vec<VnetLink> {
        let v: Value = serde_json::from_str(LINKS).unwrap();
        v["responses"]["200"]["body"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(VnetLink::parse)
            .collect()
    }

    fn spec_record() -> Record {
        let v: Value = serde_json::from_str(RECORD).unwrap();
        Record::Found {
            name: "recorda".into(),
            addresses: record_addresses(&v["responses"]["200"]["body"]),
        }
    }

    fn question(expected: &str) -> Lookup {
        Lookup {
            zone: "privatezone1.com".into(),
            name: "recordA.privatezone1.com".into(),
            expected: Some(expected.parse().unwrap()),
        }
    }

    fn resolver(vnet: &str) -> Resolver {
        Resolver {
            vnet: Some(vnet.into()),
            dns_servers: vec![],
        }
    }

    fn zone(links: Vec<VnetLink>, record: Record) -> Zone {
        Zone {
            id: ZONE_ID.into(),
            links,
            record,
        }
    }

    #[test]
    fn spec_examples_a_linked_zone_with_the_right_record_is_fine() {
        // The example lists the completed link first; the in-progress second link is another.
        let links = spec_links();
        assert_eq!(links.len(), 2);
        let (f, change, notes) = evaluate(
            &question("1.2.3.4"),
            &[zone(links, spec_record())],
            &resolver(LINKED_VNET),
        );
        assert!(change.is_none() && notes.is_empty(), "{change:?} {notes:?}");
        assert_eq!(
            f.iter().map(|f| f.verdict.effect).collect::<Vec<_>>(),
            [Effect::Allows, Effect::Allows]
        );
        assert_eq!(f[1].kind, FindingKind::DnsZone);
    }

    #[test]
    fn record_with_another_ip_is_named_with_the_commands() {
        let (f, change, _) = evaluate(
            &question("10.1.0.5"),
            &[zone(spec_links(), spec_record())],
            &resolver(LINKED_VNET),
        );
        assert_eq!(f[1].verdict.effect, Effect::Blocks);
        assert!(
            f[1].verdict
                .says
                .contains("holds 1.2.3.4, not the private endpoint's 10.1.0.5"),
            "{}",
            f[1].verdict.says
        );
        let az = change.unwrap().az;
        assert_eq!(
            az,
            "az network private-dns record-set a add-record --subscription subscriptionId -g resourceGroup1 -z privatezone1.com -n recorda -a 10.1.0.5\naz network private-dns record-set a remove-record --subscription subscriptionId -g resourceGroup1 -z privatezone1.com -n recorda -a 1.2.3.4"
        );
    }

    #[test]
    fn missing_record_and_missing_link() {
        let (f, change, _) = evaluate(
            &question("10.1.0.5"),
            &[zone(spec_links(), Record::Missing)],
            &resolver(OTHER_VNET),
        );
        assert_eq!((f[0].kind, f[0].verdict.effect), (FindingKind::DnsLink, Effect::Blocks));
        assert!(
            f[0].verdict
                .says
                .contains("is not linked to /subscriptions/s/resourceGroups/rg-spoke"),
            "{}",
            f[0].verdict.says
        );
        assert_eq!((f[1].kind, f[1].verdict.effect), (FindingKind::DnsZone, Effect::Blocks));
        let change = change.unwrap();
        let lines: Vec<&str> = change.az.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "az network private-dns link vnet create --subscription subscriptionId -g resourceGroup1 -z privatezone1.com -n link-vnet-ml -v {OTHER_VNET} -e false"
            )
        );
        assert!(lines[1].contains("add-record") && lines[1].ends_with("-n recorda -a 10.1.0.5"));
        assert!(change.bicep.unwrap().contains("virtualNetworkLinks@2024-06-01"));
    }

    #[test]
    fn a_link_in_progress_is_not_yet_a_link() {
        let mut links = spec_links();
        links[0].virtual_network = OTHER_VNET.into();
        // The second example link (InProgress) points at LINKED_VNET.
        let (f, change, _) = evaluate(
            &question("1.2.3.4"),
            &[zone(links, spec_record())],
            &resolver(LINKED_VNET),
        );
        assert_eq!(f[0].verdict.effect, Effect::Blocks);
        assert!(
            f[0].verdict.says.contains("not complete (state InProgress"),
            "{}",
            f[0].verdict.says
        );
        assert!(change.is_none(), "nothing to run: the link is on its way");
    }

    #[test]
    fn custom_dns_servers_make_the_link_alone_insufficient() {
        let r = Resolver {
            vnet: Some(LINKED_VNET.into()),
            dns_servers: vec!["10.0.0.4".into()],
        };
        let (f, _, _) = evaluate(&question("1.2.3.4"), &[zone(spec_links(), spec_record())], &r);
        assert_eq!(f[0].verdict.effect, Effect::Undetermined);
        assert!(
            f[0].verdict
                .says
                .contains("must forward privatezone1.com to 168.63.129.16"),
            "{}",
            f[0].verdict.says
        );
    }

    #[test]
    fn names_outside_the_zone_and_absent_zones_are_said() {
        let mut q = question("1.2.3.4");
        q.name = "other.example".into();
        let (_, _, notes) = evaluate(&q, &[zone(spec_links(), Record::Missing)], &resolver(LINKED_VNET));
        assert!(notes[0].contains("is not a name in zone"), "{notes:?}");
        let (f, change, notes) = evaluate(&question("1.2.3.4"), &[], &resolver(LINKED_VNET));
        assert!(f.is_empty() && change.is_none());
        assert!(notes[0].contains("no private DNS zone privatezone1.com was found"));
    }

    #[test]
    fn an_unknown_vnet_is_not_called_unlinked() {
        let (f, change, notes) = evaluate(
            &question("1.2.3.4"),
            &[zone(vec![], spec_record())],
            &Resolver::default(),
        );
        assert!(f.iter().all(|f| f.kind == FindingKind::DnsZone), "{f:?}");
        assert!(change.is_none());
        assert!(notes[0].contains("virtual network is not known"), "{notes:?}");
    }

    #[test]
    fn relative_and_wildcard_names() {
        assert_eq!(
            relative_name("A.B.privatelink.api.azureml.ms.", "privatelink.api.azureml.ms").as_deref(),
            Some("a.b")
        );
        assert_eq!(
            relative_name("privatelink.api.azureml.ms", "privatelink.api.azureml.ms"),
            None
        );
        // Suffixes match on label boundaries.
        assert_eq!(
            relative_name("a.xprivatelink.api.azureml.ms", "privatelink.api.azureml.ms").as_deref(),
            Some("a.xprivatelink")
        );
        assert_eq!(relative_name("xapi.azureml.ms", "privatelink.api.azureml.ms"), None);
        // The public names the probes use, as Azure's public DNS CNAMEs them into the zone.
        for (name, zone, rel) in [
            (
                "Abc.workspace.eastus.api.azureml.ms",
                "privatelink.api.azureml.ms",
                "abc.workspace.eastus",
            ),
            ("sa.blob.core.windows.net", "privatelink.blob.core.windows.net", "sa"),
            (
                "acr.eastus.data.azurecr.io",
                "privatelink.azurecr.io",
                "acr.eastus.data",
            ),
            ("kv.vault.azure.net", "privatelink.vaultcore.azure.net", "kv"),
            (
                "kv.vault.usgovcloudapi.net",
                "privatelink.vaultcore.usgovcloudapi.net",
                "kv",
            ),
        ] {
            assert_eq!(relative_name(name, zone).as_deref(), Some(rel), "{name}");
        }
        for (name, zone) in [
            ("api.azureml.ms", "privatelink.api.azureml.ms"),
            ("sa.blob.core.windows.net", "privatelink.file.core.windows.net"),
            ("a.b.vault.azure.net", "privatelink.vaultcore.azure.net"),
            ("kv.vault.azure.net", "vaultcore.azure.net"),
        ] {
            assert_eq!(relative_name(name, zone), None, "{name} in {zone}");
        }
        assert_eq!(
            wildcard_of("ep.guid.inference.eastus").as_deref(),
            Some("*.guid.inference.eastus")
        );
        assert_eq!(wildcard_of("single"), None);
    }
}
