//! The machine's own name-resolution setup, recorded in the report: what `/etc/resolv.conf`
//! says, what systemd-resolved forwards to, and `/etc/hosts` entries that override probed names.
//! On Windows: the adapters' DNS servers and search suffixes (hickory's system configuration reads
//! them through GetAdaptersAddresses and the TCP/IP registry keys) and
//! `%SystemRoot%\System32\drivers\etc\hosts`.

use crate::report::schema::{HostsOverride, ResolverSetup};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `nameserver` and `search` lines of a resolv.conf.
#[cfg(any(not(windows), test))]
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

#[cfg(not(windows))]
fn read_file(path: &str) -> String {
    crate::files::read_text(std::path::Path::new(path)).unwrap_or_default()
}

/// The system's nameservers (resolv.conf's, and systemd-resolved's upstreams behind its stub).
#[cfg(not(windows))]
pub fn system_nameservers() -> Vec<IpAddr> {
    let (mut servers, _) = parse_resolv_conf(&read_file("/etc/resolv.conf"));
    if servers.iter().any(|s| s == "127.0.0.53") {
        // systemd-resolved's stub hides the real servers; list those too.
        servers.extend(parse_resolv_conf(&read_file("/run/systemd/resolve/resolv.conf")).0);
    }
    servers.iter().filter_map(|s| s.parse().ok()).collect()
}

/// The DNS servers of the adapters that are up.
#[cfg(windows)]
pub fn system_nameservers() -> Vec<IpAddr> {
    hickory_resolver::system_conf::read_system_conf()
        .map(|(config, _)| config.name_servers().iter().map(|ns| ns.ip).collect())
        .unwrap_or_default()
}

/// Search domains, systemd-resolved's upstreams and the hosts file.
#[cfg(not(windows))]
fn read_setup() -> (Vec<String>, Vec<String>, String) {
    let (servers, search_domains) = parse_resolv_conf(&read_file("/etc/resolv.conf"));
    let upstream_nameservers = if servers.iter().any(|s| s == "127.0.0.53") {
        parse_resolv_conf(&read_file("/run/systemd/resolve/resolv.conf")).0
    } else {
        Vec::new()
    };
    (search_domains, upstream_nameservers, read_file("/etc/hosts"))
}

/// The search list and primary DNS suffix, and the hosts file (no forwarding stub to look behind).
#[cfg(windows)]
fn read_setup() -> (Vec<String>, Vec<String>, String) {
    let search_domains = hickory_resolver::system_conf::read_system_conf()
        .map(|(config, _)| {
            config
                .search()
                .iter()
                .chain(config.domain().filter(|d| !d.is_root()))
                .map(|n| n.to_string().trim_end_matches('.').to_string())
                .collect()
        })
        .unwrap_or_default();
    // Windows writes the hosts file in the ANSI code page as often as in UTF-8.
    let hosts = crate::files::read_bytes(&hosts_path())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (search_domains, Vec::new(), hosts)
}

/// `%SystemRoot%\System32\drivers\etc\hosts`.
#[cfg(windows)]
pub fn hosts_path() -> std::path::PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    std::path::Path::new(&root).join(r"System32\drivers\etc\hosts")
}

/// Reads the live configuration; `probed` limits hosts overrides to names this run probed.
pub fn read(probed: &[&str]) -> (ResolverSetup, BTreeMap<String, Vec<IpAddr>>) {
    let (search_domains, upstream_nameservers, hosts_text) = read_setup();
    let mut hosts = parse_hosts(&hosts_text);
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
