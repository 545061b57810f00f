//! Facts about the machine the probes ran from.

/// The host name, from the kernel.
#[cfg(not(windows))]
pub fn hostname() -> String {
    crate::files::read_text(std::path::Path::new("/proc/sys/kernel/hostname"))
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The host name: TCP/IP's (the DNS host label), else the NetBIOS computer name.
#[cfg(windows)]
pub fn hostname() -> String {
    super::winreg::machine_string(r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", "Hostname")
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The OS pretty name from `/etc/os-release`.
#[cfg(not(windows))]
pub fn os_name() -> String {
    let text = crate::files::read_text(std::path::Path::new("/etc/os-release")).unwrap_or_default();
    pretty_name(&text).unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// The Windows edition, release and build, from the registry `winver` reads.
#[cfg(windows)]
pub fn os_name() -> String {
    const KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";
    let text = |name: &str| super::winreg::machine_string(KEY, name).unwrap_or_default();
    windows_version(
        &text("ProductName"),
        &text("DisplayVersion"),
        &text("CurrentBuild"),
        super::winreg::machine_u32(KEY, "UBR"),
    )
}

#[cfg(not(windows))]
fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// `Windows Server 2022 Datacenter 21H2 (build 20348.2762)`. Windows 11 still writes "Windows 10"
/// in `ProductName`; its builds start at 22000 (Microsoft Learn, "Windows 11 release information"),
/// so the name is corrected from the build number.
#[cfg(any(windows, test))]
fn windows_version(product: &str, display: &str, build: &str, ubr: Option<u32>) -> String {
    let build_number = build.trim().parse::<u32>().ok();
    let mut name = product.trim().to_string();
    if build_number.is_some_and(|b| b >= 22_000)
        && let Some(rest) = name.strip_prefix("Windows 10")
    {
        name = format!("Windows 11{rest}");
    }
    if name.is_empty() {
        name = "Windows".into();
    }
    if !display.trim().is_empty() {
        name = format!("{name} {}", display.trim());
    }
    match (build_number, ubr) {
        (Some(b), Some(u)) => format!("{name} (build {b}.{u})"),
        (Some(b), None) => format!("{name} (build {b})"),
        _ => name,
    }
}

/// Whether stdout understands ANSI colour codes: always on Unix terminals; on Windows only once
/// the console accepted virtual-terminal processing (SetConsoleMode, done here). Callers check
/// `NO_COLOR` and whether stdout is a terminal first.
pub fn stdout_takes_ansi() -> bool {
    #[cfg(windows)]
    {
        console::Term::stdout().features().colors_supported()
    }
    #[cfg(not(windows))]
    {
        true
    }
}

/// What a support engineer asks a Windows machine next, for the bundle (name, text): the
/// version, the routes (`route print`), the adapters (`ipconfig /all`) and the proxies
/// (`netsh winhttp show proxy`, and the registry values amlprobe decodes itself, since netsh's
/// labels are localised). Each tool gets [`TOOL_DEADLINE`]; one that fails says why in its file.
#[cfg(windows)]
pub fn windows_facts() -> Vec<(String, String)> {
    let system32 =
        std::path::Path::new(&std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into())).join("System32");
    let tool = |exe: &str, args: &[&str]| {
        run_tool(&system32.join(exe), args, TOOL_DEADLINE)
            .unwrap_or_else(|e| format!("# {exe} {}: {e}\n", args.join(" ")))
    };
    vec![
        ("windows.txt".into(), format!("{}\nhost {}\n", os_name(), hostname())),
        ("routes.txt".into(), tool("route.exe", &["print"])),
        ("interfaces.txt".into(), tool("ipconfig.exe", &["/all"])),
        (
            "winhttp-proxy.txt".into(),
            tool("netsh.exe", &["winhttp", "show", "proxy"]) + &super::sysproxy::describe_system(),
        ),
    ]
}

/// How long one Windows tool may run for the bundle.
#[cfg(windows)]
const TOOL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `exe` with `args` and returns its stdout (console tools write the OEM code page: bytes
/// that are not UTF-8 are replaced), killing it at `deadline`.
#[cfg(windows)]
fn run_tool(exe: &std::path::Path, args: &[&str], deadline: std::time::Duration) -> Result<String, String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.by_ref().take(crate::files::MAX_INPUT).read_to_end(&mut out);
        out
    });
    let started = std::time::Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not finish within {} s: stopped", deadline.as_secs()));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    let out = reader.join().map_err(|_| "its output could not be read")?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The current time, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[cfg(not(windows))]
    #[test]
    fn reads_pretty_name() {
        let text = "NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n";
        assert_eq!(super::pretty_name(text).as_deref(), Some("Ubuntu 22.04.4 LTS"));
    }

    #[test]
    fn names_windows_versions_like_winver() {
        use super::windows_version;
        assert_eq!(
            windows_version("Windows Server 2022 Datacenter", "21H2", "20348", Some(2762)),
            "Windows Server 2022 Datacenter 21H2 (build 20348.2762)"
        );
        assert_eq!(
            windows_version("Windows 10 Enterprise", "23H2", "22631", Some(4460)),
            "Windows 11 Enterprise 23H2 (build 22631.4460)",
            "Windows 11 keeps 'Windows 10' in ProductName"
        );
        assert_eq!(
            windows_version("Windows 10 Pro", "", "19045", None),
            "Windows 10 Pro (build 19045)"
        );
        assert_eq!(windows_version("", "", "", None), "Windows");
    }

    /// Under Wine these come from Wine's registry and tools; on Windows from the real ones.
    #[cfg(windows)]
    #[test]
    fn reads_this_windows_host() {
        assert!(super::os_name().contains("Windows"), "{}", super::os_name());
        assert_ne!(super::hostname(), "unknown");
        let facts = super::windows_facts();
        let names: Vec<&str> = facts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["windows.txt", "routes.txt", "interfaces.txt", "winhttp-proxy.txt"]
        );
        assert!(facts.iter().all(|(_, text)| !text.is_empty()));
    }

    /// A tool that outlives its deadline is stopped, and says so.
    #[cfg(windows)]
    #[test]
    fn a_hanging_tool_is_stopped_at_its_deadline() {
        let system32 = std::path::Path::new(&std::env::var_os("SystemRoot").unwrap()).join("System32");
        let started = std::time::Instant::now();
        let e = super::run_tool(
            &system32.join("cmd.exe"),
            &["/c", "for /l %i in (1,0,2) do rem"],
            std::time::Duration::from_millis(500),
        )
        .unwrap_err();
        assert!(
            e.contains("stopped") && started.elapsed() < std::time::Duration::from_secs(10),
            "{e}"
        );
    }
}
