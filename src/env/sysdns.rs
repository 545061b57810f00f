//! The machine's own name-resolution setup, recorded in the report: what `/etc/resolv.conf`
//! says, what systemd-resolved forwards to, and `/etc/hosts` entries that override probed names.

use crate::report::schema::{HostsOverride, ResolverSetup};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `nameserver` and `search` lines of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut servers, mut search) = (Vec::new(), Vec::new());
    for line in text.lines().map(|l| l.split(['#', ';']).next().unwrap_or_default()) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search" | "domain") => search.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    (servers, search)
}

/// Name → addresses from an `/etc/hosts` text (names lower-cased).
pub fn parse_hosts(text: &str) -> BTreeMap<String, Vec<IpAddr>> {
    let mut map: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for line in text.lines().map(|l| l.split('#').next().unwrap_or_default()) {
        let mut words = line.split_whitespace();
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in words {
            map.entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default()
                .push(ip);
        }
    }
    map
}

fn read_file(path: &str) -> String {
    crate::files::read_text(std::path::Path::new(path)).unwrap_or_default()
}

/// The system's nameservers (resolv.conf's, and systemd-resolved's upstreams behind its stub).
pub fn system_nameservers() -> Vec<IpAddr> {
    let (mut servers, _) = parse_resolv_conf(&read_file("/etc/resolv.conf"));
    if servers.iter().any(|s| s == "127.0.0.53") {
        // systemd-resolved's stub hides the real servers; list those too.
        servers.extend(parse_resolv_conf(&read_file("/run/systemd/resolve/resolv.conf")).0);
    }
    servers.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Reads the live configuration; `probed` limits hosts overrides to names this run probed.
pub fn read(probed: &[&str]) -> (ResolverSetup, BTreeMap<String, Vec<IpAddr>>) {
    let read = |p: &str| crate::files::read_text(std::path::Path::new(p)).unwrap_or_default();
    let (servers, search_domains) = parse_resolv_conf(&read("/etc/resolv.conf"));
    let upstream_nameservers = if servers.iter().any(|s| s == "127.0.0.53") {
        parse_resolv_conf(&read("/run/systemd/resolve/resolv.conf")).0
    } else {
        Vec::new()
    };
    let mut hosts = parse_hosts(&read("/etc/hosts"));
    hosts.retain(|name, _| probed.contains(&name.as_str()));
    let hosts_overrides = hosts
        .iter()
        .flat_map(|(name, ips)| {
            ips.iter().map(|ip| HostsOverride {
                name: name.clone(),
                address: *ip,
            })
        })
        .collect();
    (
        ResolverSetup {
            search_domains,
            upstream_nameservers,
            hosts_overrides,
        },
        hosts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolv_conf() {
        let (servers, search) =
            parse_resolv_conf("# stub\nnameserver 127.0.0.53\noptions edns0\nsearch abc.internal.cloudapp.net ; x\n");
        assert_eq!(servers, vec!["127.0.0.53"]);
        assert_eq!(search, vec!["abc.internal.cloudapp.net"]);
    }

    #[test]
    fn reads_hosts() {
        let m =
            parse_hosts("127.0.0.1 localhost\n10.1.0.5 WS.workspace.eastus.api.azureml.ms ws2 # pinned\nbad line\n");
        assert_eq!(
            m["ws.workspace.eastus.api.azureml.ms"],
            vec!["10.1.0.5".parse::<IpAddr>().unwrap()]
        );
        assert!(m.contains_key("ws2") && !m.contains_key("bad"));
    }
}
