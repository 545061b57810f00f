//! Which proxy a target goes through: `--proxy`/`--no-proxy`, else the usual environment
//! variables (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`, either case). On Windows the
//! machine's own settings come after those (`env::sysproxy`); their bypass lists use the
//! Windows form that [`NoProxy::parse_windows`] reads.

use crate::model::netaddr::Cidr;
use crate::sanitize;
use std::net::IpAddr;

/// An HTTP proxy. Credentials never appear in `Display` or reports.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyUrl {
    /// Proxy host name or IP.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// Basic-auth user and password from the URL's userinfo.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for ProxyUrl {
    /// Scheme, host and port only: the user name can be a token too, so no part of the
    /// userinfo is shown, only that there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "http://{host}:{}", self.port)?;
        if self.credentials.is_some() {
            write!(f, " (with credentials)")?;
        }
        Ok(())
    }
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host[:port][/]` or `host:port`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        let rest = match v.split_once("://") {
            Some(("http" | "HTTP", rest)) => rest,
            // Only a well-formed scheme is quoted: text before a stray "://" may be a password.
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) => {
                return Err(format!(
                    "only http:// proxies are supported, not {}://",
                    sanitize::echo(scheme)
                ));
            }
            Some(_) => return Err("the proxy URL's scheme is not http://".into()),
            None => v,
        };
        let (userinfo, after) = match crate::redact::userinfo_end(rest) {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let hostport = after.split(['/', '?', '#']).next().unwrap_or_default();
        let credentials = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            (percent_decode(user), percent_decode(pass))
        });
        let (host, port) =
            crate::model::netaddr::split_host_port(hostport, 80).map_err(|e| format!("the proxy address {e}"))?;
        Ok(ProxyUrl {
            host,
            port,
            credentials,
        })
    }

    /// The `Proxy-Authorization` header value, when the URL carries credentials.
    pub fn authorization(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `no_proxy` entries: `*`, domain suffixes (with or without a leading dot), IPs and CIDRs; from
/// a Windows bypass list also `<local>` and `*` wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    domains: Vec<String>,
    networks: Vec<Cidr>,
    /// `<local>`: names without a dot.
    local: bool,
    /// Windows wildcard patterns (`*.contoso.com`, `10.*`), lower-cased.
    patterns: Vec<String>,
}

impl NoProxy {
    /// Parses a comma-separated `no_proxy` value; entries it can't read are ignored, as curl does.
    pub fn parse(value: &str) -> Self {
        let mut np = NoProxy::default();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                np.all = true;
            } else if let Ok(c) = entry.parse::<Cidr>() {
                np.networks.push(c);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                np.networks.push(
                    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
                        .parse()
                        .expect("host CIDR"),
                );
            } else {
                let host = entry
                    .rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(entry, |(h, _)| h);
                np.domains.push(
                    host.trim_start_matches("*.")
                        .trim_start_matches('.')
                        .to_ascii_lowercase(),
                );
            }
        }
        np
    }

    /// Parses a Windows bypass list (Internet Options' `ProxyOverride`, WinHTTP's bypass list):
    /// entries separated by `;` (or spaces), `*` wildcards anywhere, and `<local>` for names
    /// without a dot (Microsoft Learn, `WINHTTP_PROXY_INFO` and `InternetOpen`: "<local>" bypasses
    /// "any host name that does not contain a period"). Entries it can't read are ignored.
    pub fn parse_windows(value: &str) -> Self {
        let mut np = NoProxy::default();
        for entry in value
            .split([';', ' ', '\t', '\r', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let entry = entry
                .strip_prefix("http://")
                .or_else(|| entry.strip_prefix("https://"))
                .unwrap_or(entry)
                .to_ascii_lowercase();
            if entry == "<local>" {
                np.local = true;
            } else if entry == "*" {
                np.all = true;
            } else if entry.contains('*') {
                np.patterns.push(entry);
            } else if !entry.starts_with('<') {
                let plain = NoProxy::parse(&entry);
                np.domains.extend(plain.domains);
                np.networks.extend(plain.networks);
            }
        }
        np
    }

    /// Adds `other`'s entries to these.
    pub fn extend(&mut self, other: NoProxy) {
        self.all |= other.all;
        self.local |= other.local;
        self.domains.extend(other.domains);
        self.networks.extend(other.networks);
        self.patterns.extend(other.patterns);
    }

    /// Whether `host` bypasses the proxy.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.all || self.patterns.iter().any(|p| wildcard_match(p, &host)) {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.networks.iter().any(|n| n.contains(ip));
        }
        (self.local && !host.contains('.'))
            || self
                .domains
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }
}

/// `pattern` with `*` matching any run of characters (none included) against all of `text`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The proxies in force for this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// For TLS targets (CONNECT tunnel).
    pub https: Option<ProxyUrl>,
    /// For plain-HTTP targets (absolute-form requests).
    pub http: Option<ProxyUrl>,
    /// Hosts that bypass both.
    pub no_proxy: NoProxy,
    /// Where the proxies came from (`--proxy`, the variables' names, a Windows setting), for the
    /// report; `None` when no proxy is in force.
    pub source: Option<String>,
    /// What the report should say about proxy settings that were seen but not followed (a PAC
    /// script, WPAD, a second machine proxy).
    pub notes: Vec<String>,
}

/// The flag a bad proxy value came from, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// Flag or environment variable name.
    pub source: String,
    /// What is wrong.
    pub message: String,
}

impl ProxySettings {
    /// `--proxy` wins over the environment; `--no-proxy` turns proxies off entirely.
    /// `env` looks up an environment variable (injected so tests don't touch the process env).
    pub fn resolve(
        flag: Option<&str>,
        disabled: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProxyError> {
        if disabled {
            return Ok(ProxySettings::default());
        }
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (n.to_string(), v)))
        };
        let parse = |(source, value): (String, String)| {
            ProxyUrl::parse(&value).map_err(|message| ProxyError { source, message })
        };
        let no_proxy = NoProxy::parse(&var(&["no_proxy", "NO_PROXY"]).map(|(_, v)| v).unwrap_or_default());
        if let Some(url) = flag {
            let url = parse(("--proxy".into(), url.to_string()))?;
            return Ok(ProxySettings {
                https: Some(url.clone()),
                http: Some(url),
                no_proxy,
                source: Some("--proxy".into()),
                notes: Vec::new(),
            });
        }
        let mut names = Vec::new();
        let mut named = |found: Option<(String, String)>| {
            found
                .inspect(|(name, _)| names.push(name.clone()))
                .map(parse)
                .transpose()
        };
        let all = named(var(&["all_proxy", "ALL_PROXY"]))?;
        let https = named(var(&["https_proxy", "HTTPS_PROXY"]))?.or_else(|| all.clone());
        let http = named(var(&["http_proxy", "HTTP_PROXY"]))?.or(all);
        Ok(ProxySettings {
            source: (!names.is_empty()).then(|| names.join(", ")),
            https,
            http,
            no_proxy,
            notes: Vec::new(),
        })
    }

    /// The proxy for `host`, for TLS (`tls = true`) or plain HTTP.
    pub fn for_host(&self, host: &str, tls: bool) -> Option<&ProxyUrl> {
        let proxy = if tls { self.https.as_ref() } else { self.http.as_ref() };
        proxy.filter(|_| !self.no_proxy.matches(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn parses_proxy_urls() {
        let p = ProxyUrl::parse("http://alice:s%40cret@proxy.corp:3128/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.credentials, Some(("alice".into(), "s@cret".into())));
        assert_eq!(p.to_string(), "http://proxy.corp:3128 (with credentials)");
        assert_eq!(p.authorization().unwrap(), "Basic YWxpY2U6c0BjcmV0");
        assert_eq!(
            ProxyUrl::parse("10.0.0.4:8080").unwrap().to_string(),
            "http://10.0.0.4:8080"
        );
        assert_eq!(ProxyUrl::parse("http://[fd00::1]:3128").unwrap().host, "fd00::1");
        assert!(ProxyUrl::parse("socks5://p:1080").unwrap_err().contains("socks5"));
        assert!(ProxyUrl::parse("http://p:0").is_err());
        assert!(ProxyUrl::parse("http://").is_err());
    }

    #[test]
    fn no_part_of_the_userinfo_is_ever_shown() {
        let p = ProxyUrl::parse("http://ghp_UserTok3n@proxy:3128").unwrap();
        assert_eq!(p.to_string(), "http://proxy:3128 (with credentials)");
        assert_eq!(format!("{p:?}"), "http://proxy:3128 (with credentials)");
        let p = ProxyUrl::parse("http://alice%3AS3cr3t@proxy:3128").unwrap();
        assert_eq!(p.to_string(), "http://proxy:3128 (with credentials)");
        assert_eq!(ProxyUrl::parse("proxy:3128").unwrap().to_string(), "http://proxy:3128");
    }

    #[test]
    fn unencoded_slash_and_at_stay_in_the_password_as_with_curl() {
        let p = ProxyUrl::parse("http://alice:pa/ss@w@rd@proxy.corp:3128/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.credentials, Some(("alice".into(), "pa/ss@w@rd".into())));
        let bare = ProxyUrl::parse("alice:x/y@10.0.0.9:8080").unwrap();
        assert_eq!((bare.host.as_str(), bare.port), ("10.0.0.9", 8080));
        assert_eq!(bare.credentials, Some(("alice".into(), "x/y".into())));
        let e = ProxyUrl::parse("alice:s3cr://et@proxy:1").unwrap_err();
        assert!(!e.contains("s3cr"), "{e}");
    }

    #[test]
    fn no_proxy_rules() {
        let np = NoProxy::parse(
            ".privatelink.api.azureml.ms, blob.core.windows.net,10.0.0.0/8,169.254.169.254, localhost:8080",
        );
        assert!(np.matches("x.privatelink.api.azureml.ms"));
        assert!(np.matches("acct.blob.core.windows.net"));
        assert!(np.matches("blob.core.windows.net"));
        assert!(!np.matches("xblob.core.windows.net"));
        assert!(np.matches("10.1.2.3"));
        assert!(np.matches("169.254.169.254"));
        assert!(np.matches("localhost"));
        assert!(!np.matches("management.azure.com"));
        assert!(NoProxy::parse("*").matches("anything"));
    }

    /// Forms from Microsoft Learn's `WINHTTP_PROXY_INFO` and Internet Options' "Exceptions" box.
    #[test]
    fn windows_bypass_lists() {
        let np = NoProxy::parse_windows("<local>;*.contoso.com; 10.*;192.168.1.5 ;*internal*;http://plain.example");
        assert!(np.matches("intranet"), "<local>: no dot");
        assert!(!np.matches("intranet.corp.net"));
        assert!(np.matches("www.CONTOSO.com") && !np.matches("contoso.com.evil.net"));
        assert!(np.matches("10.1.2.3") && !np.matches("110.1.2.3"));
        assert!(np.matches("192.168.1.5") && !np.matches("192.168.1.6"));
        assert!(np.matches("svc.internal.example") && np.matches("internal"));
        assert!(np.matches("a.plain.example"), "a plain name is a domain suffix");
        assert!(!np.matches("management.azure.com"));
        assert!(NoProxy::parse_windows("*").matches("anything"));
        assert!(!NoProxy::parse_windows("<-loopback>").matches("localhost"));
        let mut merged = NoProxy::parse(".example.org");
        merged.extend(NoProxy::parse_windows("<local>"));
        assert!(merged.matches("a.example.org") && merged.matches("host"));
    }

    #[test]
    fn wildcards_match_whole_names() {
        assert!(wildcard_match("*.a.com", "x.a.com"));
        assert!(!wildcard_match("*.a.com", "a.com"));
        assert!(wildcard_match("a*c", "ac") && wildcard_match("a*c", "abbc"));
        assert!(!wildcard_match("a*c", "abcd"));
        assert!(wildcard_match("*a*", "banana") && !wildcard_match("*x*", "banana"));
        assert!(!wildcard_match("ab*ba", "aba"), "the parts may not overlap");
    }

    #[test]
    fn environment_and_flags() {
        let env: HashMap<&str, &str> = [
            ("HTTPS_PROXY", "http://u:p@10.0.0.9:3128"),
            ("no_proxy", ".internal"),
            ("ALL_PROXY", "http://all:1"),
        ]
        .into();
        let lookup = |n: &str| env.get(n).map(|v| v.to_string());
        let s = ProxySettings::resolve(None, false, lookup).unwrap();
        assert_eq!(s.https.as_ref().unwrap().port, 3128);
        assert_eq!(s.http.as_ref().unwrap().host, "all");
        assert!(s.for_host("login.microsoftonline.com", true).is_some());
        assert!(s.for_host("a.internal", true).is_none());
        let flag = ProxySettings::resolve(Some("http://flag:8080"), false, lookup).unwrap();
        assert_eq!(flag.https.as_ref().unwrap().host, "flag");
        assert_eq!(s.source.as_deref(), Some("ALL_PROXY, HTTPS_PROXY"));
        assert_eq!(flag.source.as_deref(), Some("--proxy"));
        assert_eq!(
            ProxySettings::resolve(None, true, lookup).unwrap(),
            ProxySettings::default()
        );
        assert_eq!(ProxySettings::resolve(None, false, |_| None).unwrap().source, None);
        let bad =
            ProxySettings::resolve(None, false, |n| (n == "https_proxy").then(|| "ftp://x".to_string())).unwrap_err();
        assert_eq!(bad.source, "https_proxy");
    }
}
