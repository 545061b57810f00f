//! Route selection, as Azure does it (virtual-networks-udr-overview.md, "How Azure selects a
//! route"): among `Active` routes, the longest prefix containing the destination wins; on equal
//! prefixes "User-defined route, BGP route, System route" in that order; and "System routes for
//! traffic related to virtual network, virtual network peerings, or virtual network service
//! endpoints, are preferred routes, even if BGP routes are more specific."
//!
//! Input: `EffectiveRoute[]` from `POST …/networkInterfaces/{nic}/effectiveRouteTable`
//! (networkInterface.json: `source` User | VirtualNetworkGateway | Default | Unknown, `state`
//! Active | Invalid), or routes built from the subnet's route table and the VNet's address space
//! when the effective routes can't be read. A prefix that is not an address range (a service tag
//! in a UDR) can't be compared; it leaves the choice undetermined unless the winner is a host route.

use super::finding::{AzureFinding, Basis, Detail, Effect, FindingKind, Verdict};
use crate::model::netaddr::Cidr;
use serde::Deserialize;
use std::net::IpAddr;

/// `EffectiveRouteListResult`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EffectiveRouteList {
    /// The routes.
    #[serde(default)]
    pub value: Vec<EffectiveRoute>,
}

/// `EffectiveRoute`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EffectiveRoute {
    /// The UDR's name, when it is one.
    pub name: Option<String>,
    /// `User`, `VirtualNetworkGateway` (BGP), `Default`, `Unknown`.
    pub source: String,
    /// `Active` or `Invalid`.
    pub state: String,
    /// Prefixes in CIDR notation.
    pub address_prefix: Vec<String>,
    /// The appliance address for `VirtualAppliance`.
    pub next_hop_ip_address: Vec<String>,
    /// `VirtualAppliance`, `Internet`, `None`, `VnetLocal`, `VirtualNetworkGateway`, `VNetPeering`, …
    pub next_hop_type: String,
}

impl EffectiveRoute {
    fn rank(&self) -> u8 {
        // Lower wins on equal prefixes: user, then BGP, then system.
        match self.source.to_ascii_lowercase().as_str() {
            "user" => 0,
            "virtualnetworkgateway" => 1,
            "default" => 2,
            _ => 3,
        }
    }

    /// The system routes the doc prefers even over more specific BGP routes.
    fn is_vnet_system_route(&self) -> bool {
        self.source.eq_ignore_ascii_case("default")
            && matches!(
                self.next_hop_type.to_ascii_lowercase().as_str(),
                "vnetlocal" | "vnetpeering" | "vnetglobalpeering" | "virtualnetworkserviceendpoint"
            )
    }

    /// The next hop addresses that parse.
    pub fn next_hop_ips(&self) -> Vec<IpAddr> {
        self.next_hop_ip_address
            .iter()
            .filter_map(|a| a.trim().parse().ok())
            .collect()
    }
}

/// The outcome of route selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// This route carries the flow; `prefix` is the prefix that matched.
    Chosen {
        /// The route.
        route: EffectiveRoute,
        /// The matching prefix.
        prefix: String,
    },
    /// No active route covers the destination (the default 0.0.0.0/0 route was not in what was read).
    NoRoute,
    /// A route whose prefix can't be compared might be the longer match.
    Undetermined(String),
}

/// Picks the route for `destination`.
pub fn select(routes: &[EffectiveRoute], destination: IpAddr) -> Selection {
    let active = routes.iter().filter(|r| r.state.eq_ignore_ascii_case("active"));
    let mut candidates: Vec<(&EffectiveRoute, Cidr, &String)> = Vec::new();
    let mut unreadable = Vec::new();
    for route in active {
        for prefix in &route.address_prefix {
            match prefix.trim().parse::<Cidr>() {
                Ok(net) if net.contains(destination) => candidates.push((route, net, prefix)),
                Ok(_) => {}
                Err(_) => unreadable.push(prefix.clone()),
            }
        }
    }
    // Longest prefix first, then user over BGP over system.
    candidates.sort_by_key(|(r, net, _)| (std::cmp::Reverse(net.prefix_len()), r.rank()));
    let Some(&(mut winner, mut net, mut prefix)) = candidates.first() else {
        return if unreadable.is_empty() {
            Selection::NoRoute
        } else {
            Selection::Undetermined(undetermined(&unreadable))
        };
    };
    if winner.source.eq_ignore_ascii_case("virtualnetworkgateway")
        && let Some(&(system, n, p)) = candidates.iter().find(|(r, _, _)| r.is_vnet_system_route())
    {
        (winner, net, prefix) = (system, n, p);
    }
    let host_route = net.prefix_len() == if destination.is_ipv4() { 32 } else { 128 };
    if !unreadable.is_empty() && !host_route {
        return Selection::Undetermined(undetermined(&unreadable));
    }
    Selection::Chosen {
        route: winner.clone(),
        prefix: prefix.clone(),
    }
}

fn undetermined(unreadable: &[String]) -> String {
    let names: Vec<String> = unreadable.iter().map(|p| crate::sanitize::echo(p)).collect();
    format!(
        "active routes for {} are not address ranges, so the longest match can't be told",
        names.join(", ")
    )
}

/// What the chosen route does to the flow.
pub fn effect(route: &EffectiveRoute) -> Effect {
    match route.next_hop_type.to_ascii_lowercase().as_str() {
        "none" => Effect::Blocks,
        "virtualappliance" => Effect::Redirects,
        _ => Effect::Allows,
    }
}

/// The finding for a selection; `holder` is the resource the routes were read from (the NIC
/// for effective routes, the route table for a UDR).
/// `destination` names what is sent: an address, or "the internet" for the default route.
pub fn finding(selection: &Selection, destination: &str, holder: &str, basis: Basis) -> Option<AzureFinding> {
    let Selection::Chosen { route, prefix } = selection else {
        return None;
    };
    let hop = &route.next_hop_type;
    let says = match effect(route) {
        Effect::Blocks => format!("drops traffic to {destination}: the route for {prefix} has next hop None"),
        Effect::Redirects => format!(
            "sends traffic to {destination} to the virtual appliance {} (route for {prefix}, source {})",
            route.next_hop_ip_address.join(", "),
            route.source
        ),
        _ => format!(
            "sends traffic to {destination} to {hop} (route for {prefix}, source {})",
            route.source
        ),
    };
    Some(AzureFinding {
        resource: holder.to_string(),
        kind: FindingKind::Route,
        name: route
            .name
            .clone()
            .unwrap_or_else(|| format!("{} route {prefix}", route.source)),
        detail: Detail::Route {
            address_prefixes: route.address_prefix.clone(),
            next_hop_type: hop.clone(),
            next_hop_ips: route.next_hop_ip_address.clone(),
            source: route.source.clone(),
        },
        verdict: Verdict {
            effect: effect(route),
            says,
        },
        basis,
    })
}

/// The default system routes every subnet gets (virtual-networks-udr-overview.md, "Default"):
/// the VNet's own address space to `VnetLocal`, 0.0.0.0/0 to `Internet`, and the RFC 1918 and
/// RFC 6598 ranges to `None` — except a reserved range the address space includes, whose route
/// "Azure removes" or turns into `Virtual network`.
pub fn system_routes(address_space: &[String]) -> Vec<EffectiveRoute> {
    let route = |prefix: &str, hop: &str| EffectiveRoute {
        source: "Default".into(),
        state: "Active".into(),
        address_prefix: vec![prefix.to_string()],
        next_hop_type: hop.into(),
        ..Default::default()
    };
    let space: Vec<Cidr> = address_space.iter().filter_map(|p| p.trim().parse().ok()).collect();
    let mut routes: Vec<EffectiveRoute> = address_space.iter().map(|p| route(p, "VnetLocal")).collect();
    routes.push(route("0.0.0.0/0", "Internet"));
    for reserved in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"] {
        let net: Cidr = reserved.parse().expect("valid reserved range");
        let covered = space
            .iter()
            .any(|s| s.prefix_len() <= net.prefix_len() && s.contains(first_address(net)));
        if !covered {
            routes.push(route(reserved, "None"));
        }
    }
    routes
}

fn first_address(net: Cidr) -> IpAddr {
    net.to_string()
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a CIDR starts with an address")
}

/// A route table's routes as effective routes (`source` User): `properties.routes[]` of
/// routeTable.json with `addressPrefix`, `nextHopType`, `nextHopIpAddress`. A UDR with the same
/// prefix as a system route overrides it, which selection's ranking already does.
pub fn user_routes(route_table: &serde_json::Value) -> Vec<EffectiveRoute> {
    let text = |v: &serde_json::Value, p: &str| v.pointer(p).and_then(serde_json::Value::as_str).map(str::to_string);
    route_table
        .pointer("/properties/routes")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(EffectiveRoute {
                name: text(r, "/name"),
                source: "User".into(),
                state: "Active".into(),
                address_prefix: vec![text(r, "/properties/addressPrefix")?],
                next_hop_ip_address: text(r, "/properties/nextHopIpAddress").into_iter().collect(),
                next_hop_type: text(r, "/properties/nextHopType")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = include_str!("testdata/NetworkInterfaceEffectiveRouteTableList.json");

    fn spec_routes() -> Vec<EffectiveRoute> {
        let v: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        serde_json::from_value::<EffectiveRouteList>(v["responses"]["200"]["body"].clone())
            .unwrap()
            .value
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn route(source: &str, prefix: &str, hop: &str, next: &str) -> EffectiveRoute {
        EffectiveRoute {
            name: (source == "User").then(|| format!("udr-{prefix}")),
            source: source.into(),
            state: "Active".into(),
            address_prefix: vec![prefix.into()],
            next_hop_ip_address: if next.is_empty() { vec![] } else { vec![next.into()] },
            next_hop_type: hop.into(),
        }
    }

    fn hop(s: &Selection) -> &str {
        match s {
            Selection::Chosen { route, .. } => &route.next_hop_type,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_spec_example_routes_vnet_internet_and_drops_reserved_ranges() {
        let routes = spec_routes();
        assert_eq!(
            hop(&select(&routes, ip("172.20.2.9"))),
            "VnetLocal",
            "/24 beats the /12 None route"
        );
        assert_eq!(hop(&select(&routes, ip("20.37.158.1"))), "Internet");
        let none = select(&routes, ip("10.9.9.9"));
        assert_eq!(hop(&none), "None");
        let Selection::Chosen { route, .. } = &none else {
            unreachable!()
        };
        assert_eq!(effect(route), Effect::Blocks);
        let f = finding(&none, "10.9.9.9", "/nic", Basis::EffectiveRules).unwrap();
        assert!(
            f.verdict
                .says
                .starts_with("drops traffic to 10.9.9.9: the route for 10.0.0.0/8 has next hop None"),
            "{}",
            f.verdict.says
        );
    }

    #[test]
    fn longest_prefix_then_user_over_bgp_over_system() {
        let routes = vec![
            route("Default", "0.0.0.0/0", "Internet", ""),
            route("User", "0.0.0.0/0", "VirtualAppliance", "10.0.100.4"),
            route(
                "VirtualNetworkGateway",
                "20.0.0.0/8",
                "VirtualNetworkGateway",
                "192.0.2.1",
            ),
            route("User", "20.0.0.0/8", "Internet", ""),
            route("User", "20.37.0.0/16", "None", ""),
        ];
        assert_eq!(
            hop(&select(&routes, ip("33.0.0.1"))),
            "VirtualAppliance",
            "user beats system on 0.0.0.0/0"
        );
        assert_eq!(
            hop(&select(&routes, ip("20.1.0.1"))),
            "Internet",
            "user beats BGP on /8"
        );
        assert_eq!(hop(&select(&routes, ip("20.37.0.1"))), "None", "the /16 is longer");
        let Selection::Chosen { route, .. } = select(&routes, ip("33.0.0.1")) else {
            unreachable!()
        };
        assert_eq!(route.next_hop_ips(), vec![ip("10.0.100.4")]);
        assert_eq!(effect(&route), Effect::Redirects);
    }

    #[test]
    fn vnet_system_routes_beat_more_specific_bgp_routes() {
        let routes = vec![
            route("Default", "10.1.0.0/16", "VnetLocal", ""),
            route(
                "VirtualNetworkGateway",
                "10.1.2.0/24",
                "VirtualNetworkGateway",
                "192.0.2.1",
            ),
        ];
        assert_eq!(hop(&select(&routes, ip("10.1.2.3"))), "VnetLocal");
    }

    #[test]
    fn invalid_routes_are_ignored_and_unreadable_prefixes_are_not_guessed() {
        let mut overridden = route("Default", "0.0.0.0/0", "Internet", "");
        overridden.state = "Invalid".into();
        assert_eq!(select(&[overridden], ip("33.0.0.1")), Selection::NoRoute);
        let routes = vec![
            route("Default", "0.0.0.0/0", "Internet", ""),
            route("User", "Storage", "VirtualAppliance", "10.0.0.4"),
        ];
        assert!(matches!(select(&routes, ip("33.0.0.1")), Selection::Undetermined(w) if w.contains("Storage")));
        let host = vec![
            route("User", "33.0.0.1/32", "Internet", ""),
            route("User", "Storage", "None", ""),
        ];
        assert_eq!(
            hop(&select(&host, ip("33.0.0.1"))),
            "Internet",
            "nothing is longer than a host route"
        );
    }

    #[test]
    fn system_routes_follow_the_documented_defaults() {
        let routes = system_routes(&["10.1.0.0/16".into()]);
        assert_eq!(hop(&select(&routes, ip("10.1.5.5"))), "VnetLocal");
        assert_eq!(hop(&select(&routes, ip("10.2.5.5"))), "None");
        assert_eq!(hop(&select(&routes, ip("52.1.1.1"))), "Internet");
        let wide = system_routes(&["10.0.0.0/8".into()]);
        assert_eq!(
            hop(&select(&wide, ip("10.2.5.5"))),
            "VnetLocal",
            "an address space equal to a reserved range replaces its None route"
        );
        let table = serde_json::json!({"properties": {"routes": [
            {"name": "to-fw", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.100.4"}},
            {"name": "broken", "properties": {}}
        ]}});
        let mut all = routes.clone();
        all.extend(user_routes(&table));
        assert_eq!(user_routes(&table).len(), 1);
        assert_eq!(hop(&select(&all, ip("52.1.1.1"))), "VirtualAppliance");
    }
}
