//! Facts about the machine the probes ran from.

/// The host name, from the kernel.
pub fn hostname() -> String {
    crate::files::read_text(std::path::Path::new("/proc/sys/kernel/hostname"))
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The OS pretty name from `/etc/os-release`.
pub fn os_name() -> String {
    let text = crate::files::read_text(std::path::Path::new("/etc/os-release")).unwrap_or_default();
    pretty_name(&text).unwrap_or_else(|| std::env::consts::OS.to_string())
}

fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// The current time, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_pretty_name() {
        let text = "NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n";
        assert_eq!(super::pretty_name(text).as_deref(), Some("Ubuntu 22.04.4 LTS"));
    }
}
