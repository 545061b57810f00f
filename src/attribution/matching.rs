//! What the address, port and protocol fields of Azure rules mean, parsed one way for every
//! evaluator (NSG rules, routes, firewall rules, managed-network rules). A field that is not an
//! address, a range or `*` is a name (a service tag, an IP group): matching it needs its prefixes,
//! and without them the answer is [`Match::Unknown`], never a guess.

use crate::model::netaddr::Cidr;
use std::net::IpAddr;

/// Whether one field of a rule covers the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// It does.
    Yes,
    /// It does not.
    No,
    /// It cannot be told from what was read; the string says why, for the report.
    Unknown(String),
}

impl Match {
    /// Combines the fields of one rule: any `No` wins, then any `Unknown`, else `Yes`.
    pub fn all(parts: impl IntoIterator<Item = Match>) -> Match {
        let mut unknown = None;
        for part in parts {
            match part {
                Match::No => return Match::No,
                Match::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Match::Yes => {}
            }
        }
        unknown.map_or(Match::Yes, Match::Unknown)
    }

    /// Alternatives within one field (a rule's list of prefixes): any `Yes` wins, then any
    /// `Unknown`, else `No`.
    pub fn any(parts: impl IntoIterator<Item = Match>) -> Match {
        let mut unknown = None;
        for part in parts {
            match part {
                Match::Yes => return Match::Yes,
                Match::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Match::No => {}
            }
        }
        unknown.map_or(Match::No, Match::Unknown)
    }
}

/// One address field entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `*` (NSG rules, firewall rules).
    Any,
    /// A CIDR block or a single address (as a /32 or /128).
    Net(Cidr),
    /// `first-last`, as Azure Firewall rules allow (`192.168.1.1-192.168.1.12`).
    Range(IpAddr, IpAddr),
    /// Anything else: a service tag, `Internet`, `VirtualNetwork`.
    Name(String),
}

impl Address {
    /// Parses one entry; never fails: what is not an address is a name.
    pub fn parse(text: &str) -> Address {
        let t = text.trim();
        if t == "*" {
            return Address::Any;
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            if let Ok(net) = format!("{ip}/{len}").parse() {
                return Address::Net(net);
            }
        }
        if let Ok(net) = t.parse::<Cidr>() {
            return Address::Net(net);
        }
        if let Some((a, b)) = t.split_once('-')
            && let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>())
        {
            return Address::Range(a, b);
        }
        Address::Name(t.to_string())
    }

    /// Whether `ip` is covered; a name is `Unknown`.
    pub fn covers(&self, ip: IpAddr) -> Match {
        let yes = |b: bool| if b { Match::Yes } else { Match::No };
        match self {
            Address::Any => Match::Yes,
            Address::Net(net) => yes(net.contains(ip)),
            Address::Range(a, b) => yes(match (a, b, ip) {
                (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => {
                    (u32::from(*a)..=u32::from(*b)).contains(&u32::from(x))
                }
                (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => {
                    (u128::from(*a)..=u128::from(*b)).contains(&u128::from(x))
                }
                _ => false,
            }),
            Address::Name(name) => Match::Unknown(format!(
                "'{}' is a name (a service tag or similar) whose address prefixes were not given",
                crate::sanitize::echo(name)
            )),
        }
    }
}

/// Whether `ip` is in any of `prefixes` (CIDR blocks as ARM lists them in expanded prefixes and
/// tag maps). Entries that are not addresses make the answer `Unknown` unless another entry matches.
pub fn in_prefixes(prefixes: &[String], ip: IpAddr) -> Match {
    Match::any(prefixes.iter().map(|p| Address::parse(p).covers(ip)))
}

/// One port field entry: `*`, `443`, `100-400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl Ports {
    /// Parses `*`, `N` or `N-M` (0–65535).
    pub fn parse(text: &str) -> Option<Ports> {
        let t = text.trim();
        if t == "*" {
            return Some(Ports {
                first: 0,
                last: u16::MAX,
            });
        }
        let (a, b) = t.split_once('-').unwrap_or((t, t));
        let (first, last) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (first <= last).then_some(Ports { first, last })
    }

    /// Whether `port` is inside.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// Whether `port` is covered by a list of port entries (`"80, 8080-8089"` entries are split on
/// commas too, as managed-network service tag rules write them). An unparsable entry is `Unknown`.
pub fn in_ports(entries: &[String], port: u16) -> Match {
    Match::any(
        entries
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(|e| match Ports::parse(e) {
                Some(p) if p.contains(port) => Match::Yes,
                Some(_) => Match::No,
                None => Match::Unknown(format!(
                    "port entry '{}' is not a port or range",
                    crate::sanitize::echo(e)
                )),
            }),
    )
}

/// Whether an FQDN pattern of an application or outbound rule covers `host`: `*` covers every
/// name, `*.contoso.com` covers names below contoso.com but not contoso.com itself (Azure
/// Firewall FAQ, "How do wildcards work in an application rule target FQDN?"); otherwise the
/// names must be equal. Case and a trailing dot do not matter in DNS names.
pub fn fqdn_covers(pattern: &str, host: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let (pattern, host) = (norm(pattern), norm(host));
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(parent) => host.len() > parent.len() + 1 && host.ends_with(&format!(".{parent}")),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_parse_as_azure_writes_them() {
        assert_eq!(Address::parse("*"), Address::Any);
        assert_eq!(Address::parse("0.0.0.0/0").covers(ip("13.107.6.1")), Match::Yes);
        assert_eq!(Address::parse("10.0.0.4").covers(ip("10.0.0.4")), Match::Yes);
        assert_eq!(Address::parse("10.0.0.4").covers(ip("10.0.0.5")), Match::No);
        let range = Address::parse("192.168.1.1-192.168.1.12");
        assert_eq!(range.covers(ip("192.168.1.12")), Match::Yes);
        assert_eq!(range.covers(ip("192.168.1.13")), Match::No);
        assert_eq!(Address::parse("2001:db8::/32").covers(ip("2001:db8::1")), Match::Yes);
        assert_eq!(Address::parse("10.0.0.0/8").covers(ip("2001:db8::1")), Match::No);
        assert!(matches!(
            Address::parse("AzureResourceManager").covers(ip("1.2.3.4")),
            Match::Unknown(_)
        ));
    }

    #[test]
    fn a_match_elsewhere_in_the_list_settles_an_unknown_entry() {
        let list = vec!["Storage".to_string(), "10.0.0.0/8".to_string()];
        assert_eq!(in_prefixes(&list, ip("10.1.2.3")), Match::Yes);
        assert!(matches!(in_prefixes(&list, ip("20.1.2.3")), Match::Unknown(_)));
        assert_eq!(in_prefixes(&["10.0.0.0/8".to_string()], ip("20.1.2.3")), Match::No);
    }

    #[test]
    fn ports_and_lists() {
        assert_eq!(Ports::parse("0-65535"), Some(Ports { first: 0, last: 65535 }));
        assert_eq!(Ports::parse("*"), Ports::parse("0-65535"));
        assert!(Ports::parse("443").unwrap().contains(443));
        assert!(Ports::parse("444-443").is_none());
        assert!(Ports::parse("http").is_none());
        let managed = vec!["80, 8080-8089".to_string()];
        assert_eq!(in_ports(&managed, 8085), Match::Yes);
        assert_eq!(in_ports(&managed, 443), Match::No);
        assert!(matches!(in_ports(&["x".into()], 443), Match::Unknown(_)));
    }

    #[test]
    fn wildcards_cover_subdomains_but_not_the_apex() {
        assert!(fqdn_covers("*.blob.core.windows.net", "sa.blob.core.windows.net"));
        assert!(fqdn_covers("*.core.windows.net", "sa.blob.core.windows.net"));
        assert!(!fqdn_covers("*.contoso.com", "contoso.com"));
        assert!(!fqdn_covers("*.contoso.com", "evilcontoso.com"));
        assert!(fqdn_covers("Management.Azure.com.", "management.azure.com"));
        assert!(fqdn_covers("*", "anything.example"));
        assert!(!fqdn_covers("management.azure.com", "login.microsoftonline.com"));
    }

    #[test]
    fn combining_rule_fields() {
        let u = || Match::Unknown("tag".into());
        assert_eq!(Match::all([Match::Yes, u(), Match::No]), Match::No);
        assert!(matches!(Match::all([Match::Yes, u()]), Match::Unknown(_)));
        assert_eq!(Match::all([Match::Yes, Match::Yes]), Match::Yes);
        assert_eq!(Match::any([Match::No, u(), Match::Yes]), Match::Yes);
        assert_eq!(Match::any(Vec::new()), Match::No);
    }
}
