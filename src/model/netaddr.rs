//! Address classification: which answers count as private-endpoint addresses.

use crate::sanitize;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The prefix length: longest-prefix route selection compares it.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `addr` lies inside this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| {
            format!(
                "'{s}' is not in CIDR form (expected e.g. 10.0.0.0/8)",
                s = sanitize::echo(s)
            )
        })?;
        let network: IpAddr = ip
            .parse()
            .map_err(|_| format!("'{ip}' is not an IP address", ip = sanitize::echo(ip)))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            format!(
                "'{prefix}' is not a prefix length between 0 and {max}",
                prefix = sanitize::echo(prefix)
            )
        })?;
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The ranges a private endpoint can sit in: RFC 1918, shared address space (100.64/10, used by
/// some VNets) and IPv6 unique local addresses, plus whatever the user adds.
#[derive(Debug, Clone)]
pub struct PrivateRanges {
    ranges: Vec<Cidr>,
    /// How many of `ranges` are built in; the rest the user declared.
    builtin: usize,
}

impl PrivateRanges {
    /// The built-in ranges plus `extra`.
    pub fn with_extra(extra: &[Cidr]) -> Self {
        let mut ranges: Vec<Cidr> = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ]
        .iter()
        .map(|c| c.parse().expect("built-in CIDR"))
        .collect();
        let builtin = ranges.len();
        ranges.extend_from_slice(extra);
        PrivateRanges { ranges, builtin }
    }

    /// Whether `addr` is in one of the private ranges. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.0.5`) is judged by its IPv4 address: that is where a connection goes.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.ranges
            .iter()
            .any(|r| r.contains(addr) || r.contains(addr.to_canonical()))
    }

    /// Whether `addr` is in a range the user declared (`--private-cidr`), not a built-in one.
    pub fn declares(&self, addr: IpAddr) -> bool {
        self.ranges[self.builtin..]
            .iter()
            .any(|r| r.contains(addr) || r.contains(addr.to_canonical()))
    }
}

/// Ranges no service endpoint can sit in, with what each is: a name answering one of them is
/// sinkholed (blocked by a DNS filter) or misconfigured, even when something local answers there.
const SINKHOLES: [(&str, &str); 10] = [
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.169.254/32", "link-local, Azure instance metadata"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("255.255.255.255/32", "broadcast"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
];

/// What kind of non-destination `addr` is (loopback, unspecified, link-local, multicast,
/// broadcast), or `None` for an address a service can have. IPv4-mapped addresses are judged
/// by their IPv4 address.
pub fn sinkhole_kind(addr: IpAddr) -> Option<&'static str> {
    let addr = addr.to_canonical();
    SINKHOLES
        .iter()
        .find(|(cidr, _)| cidr.parse::<Cidr>().expect("built-in CIDR").contains(addr))
        .map(|(_, kind)| *kind)
}

/// Splits `host[:port]` or `[v6]:port` (a URL's authority without user info); `default_port`
/// when none is given. The one host:port parser of proxy URLs and HTTP URLs.
pub fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("has an unbalanced '['")?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err("has junk after the IPv6 address".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("has '{}', which is not a port", crate::sanitize::echo(p)))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_forms() {
        assert_eq!(split_host_port("proxy:3128", 80).unwrap(), ("proxy".into(), 3128));
        assert_eq!(split_host_port("proxy", 80).unwrap(), ("proxy".into(), 80));
        assert_eq!(split_host_port("[fd00::1]:443", 80).unwrap(), ("fd00::1".into(), 443));
        assert_eq!(split_host_port("[fd00::1]", 80).unwrap(), ("fd00::1".into(), 80));
        for bad in ["", ":80", "p:0", "p:x", "p:70000", "[fd00::1", "[fd00::1]x"] {
            assert!(split_host_port(bad, 80).is_err(), "{bad}");
        }
    }

    #[test]
    fn builtin_ranges_classify_addresses() {
        let p = PrivateRanges::with_extra(&[]);
        for private in [
            "10.1.0.5",
            "172.16.4.4",
            "172.31.255.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert!(p.contains(private.parse().unwrap()), "{private}");
        }
        for public in [
            "20.38.1.1",
            "172.32.0.1",
            "8.8.8.8",
            "127.0.0.1",
            "2001:db8::1",
            "100.128.0.1",
        ] {
            assert!(!p.contains(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_their_ipv4_address() {
        let p = PrivateRanges::with_extra(&["192.0.2.0/24".parse().unwrap()]);
        assert!(p.contains("::ffff:10.1.0.5".parse().unwrap()));
        assert!(!p.contains("::ffff:20.38.1.1".parse().unwrap()));
        assert!(p.declares("::ffff:192.0.2.7".parse().unwrap()));
        assert!(
            !p.declares("::ffff:10.1.0.5".parse().unwrap()),
            "built-in, not declared"
        );
    }

    #[test]
    fn every_sinkhole_range_is_named() {
        for (addr, kind) in [
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local, Azure instance metadata"),
            ("169.254.10.1", "link-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("224.0.0.251", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::ffff:169.254.169.254", "link-local, Azure instance metadata"),
        ] {
            assert_eq!(sinkhole_kind(addr.parse().unwrap()), Some(kind), "{addr}");
        }
        for service in [
            "10.1.0.5",
            "20.38.1.1",
            "1.0.0.1",
            "128.0.0.1",
            "169.255.0.1",
            "223.255.255.255",
            "fd00::1",
            "fec0::1",
            "2603:1030::1",
            "::ffff:10.1.0.5",
        ] {
            assert_eq!(sinkhole_kind(service.parse().unwrap()), None, "{service}");
        }
    }

    #[test]
    fn extra_ranges_count_as_private() {
        let p = PrivateRanges::with_extra(&["127.0.0.0/8".parse().unwrap()]);
        assert!(p.contains("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn cidr_parse_rejects_bad_input() {
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
        assert!("::/0".parse::<Cidr>().unwrap().contains("::1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
    }
}
