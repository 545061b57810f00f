//! The proxy a run goes through: `--proxy`, else the environment variables, else (Windows) the
//! signed-in user's Internet Options, else WinHTTP's machine proxy. The report names the one that
//! applied ([`ProxySettings::source`]) and says what was seen but not followed: PAC scripts and
//! WPAD are never fetched or guessed at.
//!
//! Why this order: `--proxy` and the variables are explicit for this run; Internet Options are what
//! the browser, the Azure CLI and the Python SDK (urllib's `getproxies_registry`) use for the user at
//! the keyboard; WinHTTP's machine proxy is what services use (Windows Update, agents).
//!
//! The registry values' layout. `WinHttpSettings` (HKLM, what `netsh winhttp set proxy` writes) and
//! `DefaultConnectionSettings` (HKCU, Internet Options' LAN settings) share one: a DWORD version
//! (0x18 or 0x28 for WinHTTP, 0x46 or 0x3C for Internet Options), a DWORD change counter, a DWORD
//! of flags (1 direct, 2 named proxy, 4 PAC script, 8 auto-detect), then length-prefixed
//! (DWORD, little endian) single-byte strings: the proxy list, the bypass list and, in
//! `DefaultConnectionSettings`, the PAC URL. Microsoft documents no byte layout; this is the one
//! Wine's WinHTTP reads and writes (`dlls/winhttp/session.c`, `struct connection_settings_header`,
//! `WinHttpGetDefaultProxyConfiguration`, `WinHttpGetIEProxyConfigForCurrentUser`) and Microsoft's
//! own Exchange Health Checker decodes (microsoft/CSS-Exchange,
//! `Diagnostics/HealthChecker/DataCollection/ServerInformation/Get-HttpProxySetting.ps1`: the proxy
//! length at byte 12, the proxy from byte 16, the bypass list's length right after it).

use crate::model::proxy::{NoProxy, ProxyError, ProxySettings, ProxyUrl};

/// Flag bits of a connection settings value.
const PROXY_TYPE_PROXY: u32 = 2;
const PROXY_USE_PAC_SCRIPT: u32 = 4;
const PROXY_AUTODETECT: u32 = 8;

/// A decoded `WinHttpSettings` or `DefaultConnectionSettings` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PROXY_TYPE_*` and auto-detection bits.
    pub flags: u32,
    /// The proxy list (`host:port`, or per scheme `http=…;https=…`).
    pub proxy: String,
    /// The bypass list (`<local>;*.contoso.com`).
    pub bypass: String,
    /// The PAC script's URL (`DefaultConnectionSettings` only).
    pub auto_config_url: String,
}

impl ConnectionSettings {
    /// Decodes the registry value's bytes.
    #[cfg(any(windows, test))]
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let dword = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        let flags = dword(8).ok_or_else(|| format!("{} bytes, shorter than its 12-byte header", bytes.len()))?;
        let mut at = 12;
        let mut strings = Vec::new();
        // Values written by older tools stop after the bypass list: missing strings are empty.
        while strings.len() < 3 {
            let Some(length) = dword(at) else { break };
            let start = at + 4;
            let text = usize::try_from(length)
                .ok()
                .and_then(|n| bytes.get(start..start.checked_add(n)?))
                .ok_or_else(|| {
                    format!(
                        "its string at byte {at} claims {length} bytes, {} remain",
                        bytes.len() - start.min(bytes.len())
                    )
                })?;
            strings.push(String::from_utf8_lossy(text).into_owned());
            at = start + text.len();
        }
        let mut strings = strings.into_iter();
        Ok(ConnectionSettings {
            flags,
            proxy: strings.next().unwrap_or_default(),
            bypass: strings.next().unwrap_or_default(),
            auto_config_url: strings.next().unwrap_or_default(),
        })
    }

    /// The proxy list, when the value names a proxy in use.
    pub fn named_proxy(&self) -> Option<&str> {
        (self.flags & PROXY_TYPE_PROXY != 0)
            .then_some(self.proxy.trim())
            .filter(|p| !p.is_empty())
    }

    /// Whether a PAC script is configured (`auto_config_url` may still be empty for WinHTTP).
    pub fn uses_pac(&self) -> bool {
        self.flags & PROXY_USE_PAC_SCRIPT != 0
    }

    /// Whether automatic detection (WPAD) is on.
    pub fn auto_detects(&self) -> bool {
        self.flags & PROXY_AUTODETECT != 0
    }
}

/// The user's Internet Options (HKCU `…\Internet Settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternetOptions {
    /// `ProxyEnable` = 1: "Use a proxy server for your LAN".
    pub enabled: bool,
    /// `ProxyServer`.
    pub server: String,
    /// `ProxyOverride`: the exceptions, `<local>` for "Bypass proxy server for local addresses".
    pub overrides: String,
    /// `AutoConfigURL`: "Use automatic configuration script".
    pub auto_config_url: String,
    /// "Automatically detect settings", from the flags of `DefaultConnectionSettings`.
    pub auto_detect: bool,
}

/// The machine's own proxy settings (always empty outside Windows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProxy {
    /// The signed-in user's Internet Options.
    pub internet_options: Option<InternetOptions>,
    /// WinHTTP's machine proxy (`netsh winhttp show proxy`).
    pub winhttp: Option<ConnectionSettings>,
    /// Why a value could not be read (malformed bytes), for the report.
    pub unreadable: Vec<String>,
}

/// Internet Options' proxy source name in reports.
const INTERNET_OPTIONS: &str = "Windows Internet Options (ProxyServer)";
/// WinHTTP's.
const WINHTTP: &str = "WinHTTP machine proxy (netsh winhttp)";

/// The proxies for this run, from `flag`, the environment (`env`) and this machine's settings
/// (`system`, read by [`system`] into the host facts): the order and the notes, without I/O.
pub fn choose(
    flag: Option<&str>,
    disabled: bool,
    env: impl Fn(&str) -> Option<String>,
    system: &SystemProxy,
) -> Result<ProxySettings, ProxyError> {
    let mut settings = ProxySettings::resolve(flag, disabled, &env)?;
    if disabled || flag.is_some() {
        return Ok(settings);
    }
    let options = system.internet_options.as_ref();
    let user_proxy = options
        .filter(|o| o.enabled && !o.server.trim().is_empty())
        .map(|o| (o.server.as_str(), o.overrides.as_str()));
    let machine_proxy = system
        .winhttp
        .as_ref()
        .and_then(|w| w.named_proxy().map(|p| (p, w.bypass.as_str())));
    let mut notes = system.unreadable.clone();
    let from_env = settings.source.is_some();
    let candidates = [(INTERNET_OPTIONS, user_proxy), (WINHTTP, machine_proxy)];
    for (source, found) in candidates {
        let Some((list, bypass)) = found else { continue };
        if settings.source.is_none() {
            let (https, http) = per_scheme(list).map_err(|message| ProxyError {
                source: source.into(),
                message,
            })?;
            settings.https = https;
            settings.http = http;
            settings.no_proxy.extend(NoProxy::parse_windows(bypass));
            settings.source = Some(source.into());
        } else {
            let applied = settings.source.as_deref().unwrap_or_default();
            notes.push(format!(
                "{source} is set too ({}), not applied: {applied} comes first",
                crate::sanitize::echo(list)
            ));
        }
    }
    if let Some(o) = options {
        let followed = if from_env {
            ""
        } else {
            "; pass --proxy with the proxy it picks"
        };
        if !o.auto_config_url.trim().is_empty() {
            notes.push(format!(
                "Internet Options use an automatic configuration script ({}): amlprobe does not run PAC scripts, so browsers may pick another proxy{followed}",
                crate::sanitize::echo(o.auto_config_url.trim())
            ));
        }
        if o.auto_detect {
            notes.push(format!(
                "Internet Options detect proxy settings automatically (WPAD): amlprobe does not follow WPAD, so browsers may pick another proxy{followed}"
            ));
        }
    }
    if let Some(w) = &system.winhttp
        && (w.uses_pac() || w.auto_detects())
    {
        notes.push("WinHTTP is set to a PAC script or WPAD: amlprobe does not follow them".into());
    }
    settings.notes = notes;
    Ok(settings)
}

/// A Windows proxy list: `host:port` for every scheme, or per scheme `http=host:port;https=host:port`
/// (`;` or spaces between entries; Microsoft Learn, `WINHTTP_PROXY_INFO`:
/// `([<scheme>=][<scheme>"://"]<server>[":"<port>])`). Returns the proxies for HTTPS and HTTP
/// targets; other schemes (`ftp=`, `socks=`) are not used.
pub fn per_scheme(list: &str) -> Result<(Option<ProxyUrl>, Option<ProxyUrl>), String> {
    let (mut https, mut http, mut any) = (None, None, None);
    for entry in list.split([';', ' ', '\t']).map(str::trim).filter(|e| !e.is_empty()) {
        let (slot, value) = match entry.split_once('=') {
            Some((scheme, value)) if scheme.eq_ignore_ascii_case("https") => (&mut https, value),
            Some((scheme, value)) if scheme.eq_ignore_ascii_case("http") => (&mut http, value),
            Some(_) => continue,
            None => (&mut any, entry),
        };
        // The first entry for a scheme wins; later ones are fall-backs this run does not try.
        if slot.is_none() {
            *slot = Some(ProxyUrl::parse(value)?);
        }
    }
    Ok((https.or_else(|| any.clone()), http.or(any)))
}

/// The machine's proxy settings as decoded from the registry, for the support bundle.
#[cfg(windows)]
pub fn describe_system() -> String {
    describe(&system())
}

/// [`describe_system`] over given settings.
#[cfg(any(windows, test))]
fn describe(system: &SystemProxy) -> String {
    let mut out = String::from("\n# the registry values, as amlprobe decodes them\n");
    match &system.winhttp {
        Some(w) => out.push_str(&format!(
            "WinHttpSettings: flags {:#x}, proxy \"{}\", bypass \"{}\"\n",
            w.flags, w.proxy, w.bypass
        )),
        None => out.push_str("WinHttpSettings: not set (direct access)\n"),
    }
    if let Some(o) = &system.internet_options {
        out.push_str(&format!(
            "Internet Options: ProxyEnable {}, ProxyServer \"{}\", ProxyOverride \"{}\", AutoConfigURL \"{}\", automatic detection {}\n",
            u8::from(o.enabled),
            o.server,
            o.overrides,
            o.auto_config_url,
            if o.auto_detect { "on" } else { "off" }
        ));
    }
    for why in &system.unreadable {
        out.push_str(&format!("{why}\n"));
    }
    out
}

/// This machine's settings, read from the registry.
#[cfg(windows)]
pub fn system() -> SystemProxy {
    use super::winreg;
    const USER_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings";
    const CONNECTIONS: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
    let mut unreadable = Vec::new();
    let mut decode = |what: &str, bytes: Option<Vec<u8>>| {
        bytes.and_then(|b| {
            ConnectionSettings::parse(&b)
                .map_err(|e| unreadable.push(format!("{what} is unreadable ({e}): not used")))
                .ok()
        })
    };
    let winhttp = decode("WinHttpSettings", winreg::machine_bytes(CONNECTIONS, "WinHttpSettings"));
    let lan = decode(
        "DefaultConnectionSettings",
        winreg::user_bytes(&format!(r"{USER_KEY}\Connections"), "DefaultConnectionSettings"),
    );
    let internet_options = InternetOptions {
        enabled: winreg::user_u32(USER_KEY, "ProxyEnable") == Some(1),
        server: winreg::user_string(USER_KEY, "ProxyServer").unwrap_or_default(),
        overrides: winreg::user_string(USER_KEY, "ProxyOverride").unwrap_or_default(),
        auto_config_url: winreg::user_string(USER_KEY, "AutoConfigURL").unwrap_or_default(),
        auto_detect: lan.is_some_and(|l| l.auto_detects()),
    };
    SystemProxy {
        internet_options: Some(internet_options),
        winhttp,
        unreadable,
    }
}

/// Only Windows has machine proxy settings amlprobe reads.
#[cfg(not(windows))]
pub fn system() -> SystemProxy {
    SystemProxy::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The value Windows ships ("Direct access (no proxy server)" in `netsh winhttp show proxy`),
    /// as `netsh winhttp reset proxy` writes it and troubleshooting guides quote it:
    /// `"WinHttpSettings"=hex:18,00,00,00,00,00,00,00,01,00,00,00,00,00,00,00,00,00,00,00`.
    const WINDOWS_DEFAULT: &str = "1800000000000000010000000000000000000000";

    /// `WinHttpSettings` as Wine 8.0's `WinHttpSetDefaultProxyConfiguration` wrote it for
    /// proxy `proxy.contoso.com:8080`, bypass `<local>;*.contoso.com` (captured with
    /// `reg query` under Wine; tests/windows/README.md says how).
    const WINE_WRITTEN: &str = "1800000000000000020000001600000070726F78792E636F6E746F736F2E636F6D3A38303830150000003C6C6F63616C3E3B2A2E636F6E746F736F2E636F6D";

    #[test]
    fn decodes_the_windows_default_as_direct_access() {
        let s = ConnectionSettings::parse(&hex(WINDOWS_DEFAULT)).unwrap();
        assert_eq!(s.flags, 1);
        assert_eq!(s.named_proxy(), None);
        assert!(!s.uses_pac() && !s.auto_detects());
    }

    #[test]
    fn decodes_a_machine_proxy_with_its_bypass_list() {
        let s = ConnectionSettings::parse(&hex(WINE_WRITTEN)).unwrap();
        assert_eq!(s.named_proxy(), Some("proxy.contoso.com:8080"));
        assert_eq!(s.bypass, "<local>;*.contoso.com");
        assert_eq!(s.auto_config_url, "");
    }

    /// Internet Options' own value carries the PAC URL as a third string; the flags say whether
    /// it, the LAN proxy and auto-detection are on (0x0F: all three).
    #[test]
    fn decodes_a_default_connection_settings_value_with_a_pac_url() {
        let mut v = hex("46000000070000000F000000");
        for text in ["10.0.0.5:3128", "<local>", "http://wpad.contoso.com/wpad.dat"] {
            v.extend((text.len() as u32).to_le_bytes());
            v.extend(text.as_bytes());
        }
        v.extend([0u8; 32]);
        let s = ConnectionSettings::parse(&v).unwrap();
        assert_eq!(s.named_proxy(), Some("10.0.0.5:3128"));
        assert_eq!(s.auto_config_url, "http://wpad.contoso.com/wpad.dat");
        assert!(s.uses_pac() && s.auto_detects());
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let real = hex(WINE_WRITTEN);
        for cut in [0, 4, 11] {
            assert!(ConnectionSettings::parse(&real[..cut]).unwrap_err().contains("header"));
        }
        let e = ConnectionSettings::parse(&real[..20]).unwrap_err();
        assert!(e.contains("claims 22 bytes, 4 remain"), "{e}");
        let mut huge = hex(WINDOWS_DEFAULT);
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ConnectionSettings::parse(&huge).is_err());
        // The proxy bit without a proxy string is direct access.
        let s = ConnectionSettings::parse(&hex("2800000000000000030000000000000000000000")).unwrap();
        assert_eq!(s.named_proxy(), None);
    }

    #[test]
    fn per_scheme_proxy_lists() {
        let (https, http) = per_scheme("proxy.contoso.com:8080").unwrap();
        assert_eq!(https.unwrap().to_string(), "http://proxy.contoso.com:8080");
        assert_eq!(http.unwrap().to_string(), "http://proxy.contoso.com:8080");
        let (https, http) = per_scheme("http=web:80;https=secure:8443;ftp=ftp:21").unwrap();
        assert_eq!(
            (https.unwrap().host, http.unwrap().host),
            ("secure".into(), "web".into())
        );
        let (https, http) = per_scheme("http=http://web:80 fallback:3128").unwrap();
        assert_eq!(
            (https.unwrap().host, http.unwrap().host),
            ("fallback".into(), "web".into())
        );
        let (https, http) = per_scheme("socks=s:1080").unwrap();
        assert!(https.is_none() && http.is_none());
        assert!(per_scheme("https=https://p:443").unwrap_err().contains("https"));
    }

    fn windows(user: Option<(&str, &str)>, machine: Option<&str>) -> SystemProxy {
        SystemProxy {
            internet_options: Some(InternetOptions {
                enabled: user.is_some(),
                server: user.map(|u| u.0).unwrap_or_default().into(),
                overrides: user.map(|u| u.1).unwrap_or_default().into(),
                ..Default::default()
            }),
            winhttp: machine.map(|m| ConnectionSettings::parse(&hex(m)).unwrap()),
            unreadable: Vec::new(),
        }
    }

    #[test]
    fn internet_options_come_before_winhttp_and_say_so() {
        let system = windows(Some(("http=u:80;https=u:443", "<local>")), Some(WINE_WRITTEN));
        let s = choose(None, false, |_| None, &system).unwrap();
        assert_eq!(s.source.as_deref(), Some(INTERNET_OPTIONS));
        assert_eq!(s.https.as_ref().unwrap().port, 443);
        assert!(s.for_host("intranet", true).is_none(), "<local> bypasses");
        assert!(s.for_host("login.microsoftonline.com", true).is_some());
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(s.notes[0].starts_with(WINHTTP) && s.notes[0].contains("proxy.contoso.com:8080"));
    }

    #[test]
    fn winhttp_applies_when_nothing_else_names_a_proxy() {
        let s = choose(None, false, |_| None, &windows(None, Some(WINE_WRITTEN))).unwrap();
        assert_eq!(s.source.as_deref(), Some(WINHTTP));
        assert_eq!(s.http.as_ref().unwrap().to_string(), "http://proxy.contoso.com:8080");
        assert!(s.for_host("files.contoso.com", true).is_none());
        assert!(s.for_host("management.azure.com", true).is_some());
        let direct = choose(None, false, |_| None, &windows(None, Some(WINDOWS_DEFAULT))).unwrap();
        assert_eq!(direct, ProxySettings::default());
    }

    #[test]
    fn flags_and_variables_come_first() {
        let system = windows(Some(("u:80", "")), Some(WINE_WRITTEN));
        let env = |n: &str| (n == "HTTPS_PROXY").then(|| "http://e:3128".to_string());
        let s = choose(None, false, env, &system).unwrap();
        assert_eq!(s.source.as_deref(), Some("HTTPS_PROXY"));
        assert_eq!(s.https.as_ref().unwrap().host, "e");
        assert!(s.http.is_none(), "the variables decide both schemes");
        assert_eq!(s.notes.len(), 2);
        let flag = choose(Some("http://f:1"), false, env, &system).unwrap();
        assert_eq!((flag.source.as_deref(), flag.notes.len()), (Some("--proxy"), 0));
        assert_eq!(choose(None, true, env, &system).unwrap(), ProxySettings::default());
    }

    #[test]
    fn pac_and_wpad_are_named_never_followed() {
        let mut system = windows(None, None);
        let options = system.internet_options.as_mut().unwrap();
        options.auto_config_url = "http://wpad.contoso.com/proxy.pac".into();
        options.auto_detect = true;
        let s = choose(None, false, |_| None, &system).unwrap();
        assert_eq!(s.source, None, "no proxy is guessed");
        assert_eq!(s.notes.len(), 2);
        assert!(s.notes[0].contains("http://wpad.contoso.com/proxy.pac") && s.notes[0].contains("does not run PAC"));
        assert!(s.notes[1].contains("WPAD") && s.notes[1].contains("--proxy"));
    }

    #[test]
    fn describes_the_decoded_values_for_the_bundle() {
        let text = describe(&windows(Some(("u:80", "<local>")), Some(WINE_WRITTEN)));
        assert!(
            text.contains(
                "WinHttpSettings: flags 0x2, proxy \"proxy.contoso.com:8080\", bypass \"<local>;*.contoso.com\""
            ),
            "{text}"
        );
        assert!(
            text.contains("ProxyEnable 1, ProxyServer \"u:80\", ProxyOverride \"<local>\""),
            "{text}"
        );
        assert!(describe(&SystemProxy::default()).contains("not set (direct access)"));
    }

    #[test]
    fn a_bad_windows_proxy_names_its_source() {
        let e = choose(None, false, |_| None, &windows(Some(("https=https://p:443", "")), None)).unwrap_err();
        assert_eq!(e.source, INTERNET_OPTIONS);
    }
}
