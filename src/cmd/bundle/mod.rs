//! `amlprobe bundle`: a .tar.gz with what a support engineer asks for next (the report, the
//! resolver setup, the proxy environment, routes, interfaces, versions), every file redacted.

mod routes;

use crate::{files, redact};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the bundle's facts come from; [`Inputs::system`] in real use, temp files in tests.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Files copied as they are (redacted): archive name and source path.
    pub files: Vec<(&'static str, PathBuf)>,
    /// `/proc` (routes and kernel version).
    pub proc_root: PathBuf,
    /// `/sys/class/net` (interfaces and MTUs).
    pub net_class: PathBuf,
    /// Facts gathered already, as archive name and text: on Windows the routes, adapters,
    /// WinHTTP proxy and version (they replace what `proc_root` and `net_class` would give).
    pub captured: Vec<(String, String)>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// The command line.
    pub argv: Vec<String>,
}

impl Inputs {
    /// This machine: the hosts file, then what Windows' own tools say.
    #[cfg(windows)]
    pub fn system() -> Self {
        Inputs {
            files: vec![("etc/hosts", crate::env::sysdns::hosts_path())],
            proc_root: std::path::PathBuf::new(),
            net_class: std::path::PathBuf::new(),
            captured: crate::env::hostinfo::windows_facts(),
            env: std::env::vars().collect(),
            argv: std::env::args().collect(),
        }
    }

    /// This machine.
    #[cfg(not(windows))]
    pub fn system() -> Self {
        Inputs {
            files: vec![
                ("etc/resolv.conf", "/etc/resolv.conf".into()),
                ("etc/hosts", "/etc/hosts".into()),
                ("etc/nsswitch.conf", "/etc/nsswitch.conf".into()),
                ("etc/os-release", "/etc/os-release".into()),
                (
                    "run/systemd/resolve/resolv.conf",
                    "/run/systemd/resolve/resolv.conf".into(),
                ),
                ("etc/systemd/resolved.conf", "/etc/systemd/resolved.conf".into()),
            ],
            proc_root: "/proc".into(),
            net_class: "/sys/class/net".into(),
            captured: Vec::new(),
            env: std::env::vars().collect(),
            argv: std::env::args().collect(),
        }
    }
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive.
    pub name: String,
    /// Redacted contents.
    pub contents: String,
}

/// Environment variables that shape how traffic leaves: proxies and amlprobe's own settings.
fn relevant_env(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("proxy") || n.starts_with("amlprobe_") || n == "ssl_cert_file" || n == "ssl_cert_dir"
}

fn interfaces(net_class: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(net_class)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    let read = |iface: &str, what: &str| {
        files::read_text(&net_class.join(iface).join(what)).map_or_else(|_| "?".into(), |s| s.trim().to_string())
    };
    names
        .iter()
        .map(|n| format!("{n} mtu {} state {}\n", read(n, "mtu"), read(n, "operstate")))
        .collect()
}

/// Everything the bundle holds, redacted; `report_json`, `report_text` and `report_html` (the
/// page a support engineer opens first; absent for a saved report, which is not re-rendered)
/// are the run's report.
pub fn collect(inputs: &Inputs, report_json: &str, report_text: &str, report_html: Option<&str>) -> Vec<Entry> {
    let mut entries = vec![
        Entry {
            name: "report.json".into(),
            contents: report_json.into(),
        },
        Entry {
            name: "report.txt".into(),
            contents: report_text.into(),
        },
    ];
    if let Some(html) = report_html {
        entries.push(Entry {
            name: "report.html".into(),
            contents: html.into(),
        });
    }
    let mut missing = Vec::new();
    for (name, path) in &inputs.files {
        match files::read_text(path) {
            Ok(contents) => entries.push(Entry {
                name: (*name).into(),
                contents,
            }),
            Err(e) => missing.push(format!("{}: {e}", path.display())),
        }
    }
    let mut env: Vec<String> = inputs
        .env
        .iter()
        .filter(|(k, _)| relevant_env(k))
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    env.sort();
    entries.push(Entry {
        name: "proxy-env.txt".into(),
        contents: if env.is_empty() {
            "# no proxy or AMLPROBE_ variables set\n".into()
        } else {
            env.concat()
        },
    });
    let proc = |f: &str| files::read_text(&inputs.proc_root.join(f)).unwrap_or_default();
    for (name, contents) in &inputs.captured {
        entries.push(Entry {
            name: name.clone(),
            contents: contents.clone(),
        });
    }
    let captured = |name: &str| inputs.captured.iter().any(|(n, _)| n == name);
    if !captured("routes.txt") {
        let mut routes = routes::ipv4(&proc("net/route"));
        routes.extend(routes::ipv6(&proc("net/ipv6_route")));
        entries.push(Entry {
            name: "routes.txt".into(),
            contents: routes.iter().map(|r| format!("{r}\n")).collect(),
        });
    }
    if !captured("interfaces.txt") {
        entries.push(Entry {
            name: "interfaces.txt".into(),
            contents: interfaces(&inputs.net_class),
        });
    }
    let kernel = proc("sys/kernel/osrelease");
    entries.push(Entry {
        name: "version.txt".into(),
        contents: format!(
            "amlprobe {}\n{}command {}\n{}",
            env!("CARGO_PKG_VERSION"),
            if kernel.trim().is_empty() {
                String::new()
            } else {
                format!("kernel {}\n", kernel.trim())
            },
            inputs.argv.join(" "),
            missing
                .iter()
                .map(|m| format!("not collected: {m}\n"))
                .collect::<String>()
        ),
    });
    for e in &mut entries {
        e.contents = redact::text(&e.contents).into_owned();
    }
    entries
}

/// Writes `entries` as a gzip'd tar to `output` (mode 0600: it describes the network), whole or
/// not at all (see [`files::write_atomic`]): a full disk leaves no half archive and no temporary
/// file, and a target that is not a regular file is refused.
pub fn write(output: &Path, entries: &[Entry]) -> std::io::Result<()> {
    files::write_atomic(output, 0o600, |file| write_archive(file, entries))
}

fn write_archive(out: &mut impl Write, entries: &[Entry]) -> std::io::Result<()> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("amlprobe-bundle/{}", e.name),
            e.contents.as_bytes(),
        )?;
    }
    tar.into_inner()?.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Secrets planted in every input; none may reach the archive.
    const SECRETS: [&str; 8] = [
        "Pr0xyPassw0rd",
        "sigSECRETvalue123",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.SflKxwRJSMeKKF2QT4fwpM",
        "AKIAzzSECRETkey9876",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX",
        "hunter2hunter2",
        "bearerTOKENvalue42",
        "MIIEsecretPEMbody",
    ];

    fn planted(tag: &str) -> String {
        format!(
            "# {tag}\nhttps_proxy=http://user:{}@proxy:3128\nurl https://sa.blob.core.windows.net/c?sv=1&sig={}\n\
             token {}\nAccountKey={}\nkey: {}\npassword=\"{}\"\nAuthorization: Bearer {}\n\
             -----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4], SECRETS[5], SECRETS[6], SECRETS[7]
        )
    }

    fn unpack(path: &Path) -> Vec<(String, String)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut text = String::new();
                e.read_to_string(&mut text).unwrap();
                (name, text)
            })
            .collect()
    }

    #[test]
    fn no_planted_secret_reaches_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = |name: &str, text: &str| {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        let inputs = Inputs {
            files: vec![
                (
                    "etc/resolv.conf",
                    file("resolv.conf", &(planted("resolv") + "nameserver 10.0.0.4\n")),
                ),
                ("etc/hosts", file("hosts", &planted("hosts"))),
                ("etc/missing", root.join("does-not-exist")),
            ],
            proc_root: root.join("proc"),
            net_class: root.join("net"),
            captured: Vec::new(),
            env: vec![
                ("HTTPS_PROXY".into(), format!("http://alice:{}@proxy:3128", SECRETS[0])),
                ("AMLPROBE_PROXY".into(), planted("env")),
                ("HOME".into(), "/root".into()),
            ],
            argv: vec!["amlprobe".into(), "bundle".into(), "--proxy".into(), planted("argv")],
        };
        file("proc/net/route", "Iface\tDestination\tGateway\n");
        file("proc/sys/kernel/osrelease", "6.1.0\n");
        file("net/eth0/mtu", "1500\n");
        let out = root.join("b.tar.gz");
        let json = serde_json::json!({ "message": planted("json"), "proxy": format!("http://u:{}@p:1", SECRETS[0]) });
        let entries = collect(&inputs, &json.to_string(), &planted("text"), Some(&planted("html")));
        write(&out, &entries).unwrap();
        let files = unpack(&out);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "report.json",
            "report.txt",
            "report.html",
            "etc/resolv.conf",
            "etc/hosts",
            "proxy-env.txt",
            "routes.txt",
            "interfaces.txt",
            "version.txt",
        ] {
            assert!(
                names.contains(&format!("amlprobe-bundle/{want}").as_str()),
                "{want} missing from {names:?}"
            );
        }
        for (name, text) in &files {
            for s in SECRETS {
                assert!(!text.contains(s), "{s} leaked into {name}:\n{text}");
            }
        }
        let text_of = |n: &str| &files.iter().find(|(f, _)| f.ends_with(n)).unwrap().1;
        assert!(text_of("resolv.conf").contains("nameserver 10.0.0.4"));
        assert!(text_of("proxy-env.txt").contains("HTTPS_PROXY=http://***@proxy:3128"));
        assert!(!text_of("proxy-env.txt").contains("HOME"));
        assert!(text_of("interfaces.txt").contains("eth0 mtu 1500"));
        assert!(text_of("version.txt").contains("not collected:"));
        assert!(serde_json::from_str::<serde_json::Value>(text_of("report.json")).is_ok());
        assert!(text_of("report.html").starts_with("# html"));
        let saved = collect(&inputs, "{}", "summary", None);
        assert!(
            !saved.iter().any(|e| e.name == "report.html"),
            "a saved report is not re-rendered"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    /// Windows' facts arrive captured (tool output, decoded registry values): they replace the
    /// /proc and /sys readings and are redacted like everything else.
    #[test]
    fn captured_windows_facts_replace_proc_and_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let route_print = "IPv4 Route Table\r\n Network Destination        Netmask          Gateway       Interface  Metric\r\n          0.0.0.0          0.0.0.0         10.0.0.1        10.0.0.4     10\r\n";
        let inputs = Inputs {
            files: Vec::new(),
            proc_root: dir.path().join("no-proc"),
            net_class: dir.path().join("no-sys"),
            captured: vec![
                ("routes.txt".into(), route_print.into()),
                (
                    "interfaces.txt".into(),
                    "Ethernet adapter Ethernet:\r\n   DNS Servers . . . : 168.63.129.16\r\n".into(),
                ),
                (
                    "winhttp-proxy.txt".into(),
                    format!("Proxy Server(s) :  http://alice:{}@proxy:3128\n", SECRETS[0]),
                ),
            ],
            env: Vec::new(),
            argv: vec!["amlprobe.exe".into(), "bundle".into()],
        };
        let entries = collect(&inputs, "{}", "summary", None);
        let text_of = |n: &str| {
            let found: Vec<&Entry> = entries.iter().filter(|e| e.name == n).collect();
            assert_eq!(found.len(), 1, "{n} once");
            found[0].contents.clone()
        };
        assert_eq!(text_of("routes.txt"), route_print);
        assert!(text_of("interfaces.txt").contains("168.63.129.16"));
        assert!(!text_of("winhttp-proxy.txt").contains(SECRETS[0]));
        assert!(
            text_of("version.txt")
                .starts_with(&format!("amlprobe {}\ncommand amlprobe.exe", env!("CARGO_PKG_VERSION")))
        );
    }
}
