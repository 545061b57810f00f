//! The routing table as `ip route` would print it, read from `/proc/net/route` and
//! `/proc/net/ipv6_route` (no iproute2 in a scratch container).

use std::net::{Ipv4Addr, Ipv6Addr};

/// IPv4 routes: hex fields are little-endian.
pub fn ipv4(proc_net_route: &str) -> Vec<String> {
    let hex4 = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.swap_bytes()));
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let (dev, dest, gateway, metric, mask) = (f[0], hex4(f[1])?, hex4(f[2])?, f[6], hex4(f[7])?);
            let prefix = u32::from(mask).count_ones();
            let mut route = if prefix == 0 && dest.is_unspecified() {
                "default".to_string()
            } else {
                format!("{dest}/{prefix}")
            };
            if !gateway.is_unspecified() {
                route.push_str(&format!(" via {gateway}"));
            }
            route.push_str(&format!(" dev {dev}"));
            if metric != "0" {
                route.push_str(&format!(" metric {metric}"));
            }
            Some(route)
        })
        .collect()
}

/// IPv6 routes: dest, prefix, source, source prefix, next hop, metric, …, device.
pub fn ipv6(proc_net_ipv6_route: &str) -> Vec<String> {
    let hex16 = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
    proc_net_ipv6_route
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let (dest, prefix, via, metric, dev) = (
                hex16(f[0])?,
                u8::from_str_radix(f[1], 16).ok()?,
                hex16(f[4])?,
                u32::from_str_radix(f[5], 16).ok()?,
                f[9],
            );
            if dev == "lo" {
                return None;
            }
            let mut route = if prefix == 0 {
                "default".to_string()
            } else {
                format!("{dest}/{prefix}")
            };
            if !via.is_unspecified() {
                route.push_str(&format!(" via {via}"));
            }
            route.push_str(&format!(" dev {dev} metric {metric}"));
            Some(route)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_routes_read_like_ip_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            ipv4(text),
            vec!["default via 10.0.0.1 dev eth0 metric 100", "10.0.0.0/24 dev eth0"]
        );
    }

    #[test]
    fn ipv6_routes_read_like_ip_route() {
        let text = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n\
                    00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 00000001       lo\n";
        assert_eq!(
            ipv6(text),
            vec![
                "fd00::/64 dev eth0 metric 256",
                "default via fd00::1 dev eth0 metric 1024"
            ]
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(ipv4("header\nnot a route\n").is_empty());
        assert!(ipv6("zz 40 short\n").is_empty());
    }
}
