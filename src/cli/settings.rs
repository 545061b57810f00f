//! Validated settings: flags and environment (via clap) layered over an optional `--config` TOML
//! file, checked once here so the engine only ever sees good values.

use crate::cli::{ContextArgs, Format, RunArgs, defaults};
use crate::engine::EngineConfig;
use crate::engine::resolvers::{self, ResolverRole, ResolverSpec};
use crate::env::imds;
use crate::env::sysdns;
use crate::files;
use crate::model::context::ValueSource;
use crate::model::context::{self, Cloud, InvalidValue, Resource, WorkspaceContext};
use crate::model::endpoints::{self, ExpectedIps};
use crate::model::facts::{self, FactValue};
use crate::model::netaddr::Cidr;
use crate::plan::Routing;
use crate::sanitize;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A setting that cannot be used. Always one line naming the flag or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The config file could not be read.
    #[error("--config {file}: {source}")]
    Read {
        /// The path.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is malformed.
    #[error("{file}:{line}: {message}")]
    File {
        /// The path.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The `--config` file: same names as the flags, with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    cloud: Option<Cloud>,
    region: Option<String>,
    workspace_id: Option<String>,
    workspace_name: Option<String>,
    storage_account: Option<String>,
    key_vault: Option<String>,
    container_registry: Option<String>,
    container_registry_region: Option<String>,
    compute_instance: Option<String>,
    instances_domain: Option<String>,
    notebook_label: Option<String>,
    #[serde(default)]
    public_resource: Vec<Resource>,
    #[serde(default)]
    assume: Vec<String>,
    #[serde(default)]
    suite: Vec<String>,
    #[serde(default)]
    suite_file: Vec<PathBuf>,
    timeout: Option<f64>,
    concurrency: Option<usize>,
    per_destination: Option<usize>,
    dns_concurrency: Option<usize>,
    udp_timeout: Option<f64>,
    dns_server: Option<String>,
    #[serde(default)]
    ca_file: Vec<PathBuf>,
    #[serde(default)]
    private_cidr: Vec<String>,
    format: Option<Format>,
    report: Option<PathBuf>,
    report_dir: Option<PathBuf>,
    keep_reports: Option<usize>,
    host_name: Option<String>,
    strict: Option<bool>,
    proxy: Option<String>,
    no_proxy: Option<bool>,
    imds_endpoint: Option<String>,
    no_imds: Option<bool>,
    compare_resolvers: Option<bool>,
    azure_dns: Option<String>,
    compare_direct: Option<bool>,
    #[serde(default)]
    expect_ip: Vec<String>,
    private_endpoints: Option<PathBuf>,
    workspace_resource_id: Option<String>,
    workspace_config: Option<PathBuf>,
    no_discovery: Option<bool>,
    arm_endpoint: Option<String>,
    arm_token_file: Option<PathBuf>,
    identity_client_id: Option<String>,
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let file = path.display().to_string();
    let text = files::read_text(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    let mut cfg: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::File {
        line: crate::model::suite::toml_error_line(&text, &e),
        file,
        message: sanitize::parser_message(e.message().trim()),
    })?;
    // Relative paths in the file are relative to the file, not to wherever amlprobe runs.
    let base = path.parent().unwrap_or(Path::new("."));
    for p in cfg
        .suite_file
        .iter_mut()
        .chain(cfg.ca_file.iter_mut())
        .chain(cfg.report.iter_mut())
        .chain(cfg.report_dir.iter_mut())
        .chain(cfg.private_endpoints.iter_mut())
        .chain(cfg.workspace_config.iter_mut())
        .chain(cfg.arm_token_file.iter_mut())
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(cfg)
}

/// Workspace context and suite selection, validated.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The workspace facts.
    pub context: WorkspaceContext,
    /// `--suite` names (empty: all).
    pub suites: Vec<String>,
    /// `--suite-file` paths.
    pub suite_files: Vec<PathBuf>,
}

/// Everything `amlprobe run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Context and suites.
    pub selection: Selection,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Extra private ranges.
    pub private_cidrs: Vec<Cidr>,
    /// Proxies and the direct-path comparison.
    pub routing: Routing,
    /// Exact addresses private-endpoint names must resolve to.
    pub expected_ips: ExpectedIps,
    /// Where to ask for instance metadata (`None`: don't).
    pub imds: Option<crate::http_client::Url>,
    /// Which workspace to read from ARM (`None`: no discovery).
    pub discovery: Option<crate::discovery::Settings>,
    /// Lines for `context.warnings` from looking for the workspace.
    pub discovery_notes: Vec<String>,
    /// Resolvers to compare side by side (empty: no comparison).
    pub compare_resolvers: Vec<ResolverSpec>,
    /// Output on stdout.
    pub format: Format,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// Directory of rotated reports, and how many to keep.
    pub report_dir: Option<(PathBuf, usize)>,
    /// The machine's name in the report (`None`: the kernel's host name).
    pub host_name: Option<String>,
    /// Whether inconclusive/skipped required flows fail.
    pub strict: bool,
    /// Colours wanted (before the TTY check).
    pub color: bool,
    /// How much the table shows.
    pub view: View,
}

/// How much the table shows (`--quiet`, the default, `--all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The root causes of required flows and the summary line.
    Quiet,
    /// One screen.
    Screen,
    /// Every flow and every cause.
    All,
}

fn first<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(file)
}

/// A count flag, 1 to [`defaults::MAX_PARALLEL`].
fn in_range(flag: &'static str, value: usize) -> Result<usize, InvalidValue> {
    if (1..=defaults::MAX_PARALLEL).contains(&value) {
        Ok(value)
    } else {
        Err(InvalidValue {
            flag,
            message: format!("{value} is not between 1 and {}", defaults::MAX_PARALLEL),
        })
    }
}

fn first_list<T>(flag: Vec<T>, file: Vec<T>) -> Vec<T> {
    if flag.is_empty() { file } else { flag }
}

fn validated(
    value: Option<String>,
    check: fn(&str) -> Result<String, InvalidValue>,
) -> Result<Option<String>, InvalidValue> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| check(v.trim()))
        .transpose()
}

fn source<T>(flag: Option<&T>, file: Option<&T>) -> Option<ValueSource> {
    match (flag, file) {
        (Some(_), _) => Some(ValueSource::FlagOrEnv),
        (None, Some(_)) => Some(ValueSource::Config),
        (None, None) => None,
    }
}

fn selection(args: ContextArgs, file: &mut FileConfig) -> Result<Selection, ConfigError> {
    let mut sources = std::collections::BTreeMap::new();
    sources.insert(
        "cloud".to_string(),
        source(args.cloud.as_ref(), file.cloud.as_ref()).unwrap_or(ValueSource::Default),
    );
    sources.extend(source(args.region.as_ref(), file.region.as_ref()).map(|s| ("region".to_string(), s)));
    let mut context = WorkspaceContext {
        cloud: first(args.cloud, file.cloud).unwrap_or_default(),
        region: validated(first(args.region, file.region.take()), context::validate_region)?,
        workspace_id: validated(
            first(args.workspace_id, file.workspace_id.take()),
            context::validate_workspace_id,
        )?,
        workspace_name: validated(
            first(args.workspace_name, file.workspace_name.take()),
            context::validate_workspace_name,
        )?,
        storage_account: validated(
            first(args.storage_account, file.storage_account.take()),
            context::validate_storage_account,
        )?,
        key_vault: validated(
            first(args.key_vault, file.key_vault.take()),
            context::validate_key_vault,
        )?,
        container_registry: validated(
            first(args.container_registry, file.container_registry.take()),
            context::validate_container_registry,
        )?,
        container_registry_region: validated(
            first(args.container_registry_region, file.container_registry_region.take()),
            context::validate_container_registry_region,
        )?,
        compute_instance: validated(
            first(args.compute_instance, file.compute_instance.take()),
            context::validate_compute_instance,
        )?,
        instances_domain: validated(
            first(args.instances_domain, file.instances_domain.take()),
            context::validate_instances_domain,
        )?,
        notebook_label: validated(
            first(args.notebook_label, file.notebook_label.take()),
            context::validate_notebook_label,
        )?,
        public_resources: first_list(args.public_resource, std::mem::take(&mut file.public_resource))
            .into_iter()
            .collect(),
        storage_region: None,
        key_vault_region: None,
        machine_region: None,
        facts: first_list(args.assume, std::mem::take(&mut file.assume))
            .iter()
            .map(|a| {
                let (fact, holds) = facts::parse_assumption(a).map_err(|message| InvalidValue {
                    flag: "assume",
                    message,
                })?;
                Ok((
                    fact,
                    FactValue::known(holds, ValueSource::FlagOrEnv, format!("--assume {a}")),
                ))
            })
            .collect::<Result<_, InvalidValue>>()?,
        sources,
        token_source: None,
        warnings: Vec::new(),
    };
    context.warnings = context.notebook_label_warnings();
    Ok(Selection {
        context,
        suites: first_list(args.suite, std::mem::take(&mut file.suite)),
        suite_files: first_list(args.suite_file, std::mem::take(&mut file.suite_file)),
    })
}

/// Validates `amlprobe suites` arguments.
pub fn suites_selection(args: ContextArgs) -> Result<Selection, ConfigError> {
    let mut file = match &args.config {
        Some(p) => load_file(p)?,
        None => FileConfig::default(),
    };
    selection(args, &mut file)
}

fn parse_address(flag: &'static str, value: &str) -> Result<SocketAddr, InvalidValue> {
    let v = value.trim();
    v.parse::<SocketAddr>()
        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| InvalidValue {
            flag,
            message: format!(
                "'{value}' is not an IP address or IP:PORT (IPv6 with a port: [::1]:5353)",
                value = sanitize::echo(value)
            ),
        })
}

/// Parses `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(flag: &'static str, value: &str) -> Result<Duration, InvalidValue> {
    parse_duration_from(flag, value, false)
}

/// Parses `--jitter`: a duration as [`parse_duration`] takes, or zero (`0`, `0s`): no spread.
pub fn parse_jitter(value: &str) -> Result<Duration, InvalidValue> {
    parse_duration_from("jitter", value, true)
}

fn parse_duration_from(flag: &'static str, value: &str, zero_ok: bool) -> Result<Duration, InvalidValue> {
    let v = value.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>().map(|n| n * scale) {
        Ok(secs) if secs.is_finite() && (secs > 0.0 || (zero_ok && secs == 0.0)) && secs <= 7.0 * 86400.0 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(InvalidValue {
            flag,
            message: format!(
                "'{value}' is not a duration like {}500ms, 30s, 5m or 1h (up to 7 days)",
                if zero_ok { "0, " } else { "" },
                value = sanitize::echo(value)
            ),
        }),
    }
}

/// An output file whose directory exists and that is absent or a regular file, so a run is never
/// wasted on a path it can't write, and a symlink, device or FIFO is never replaced.
pub fn output_file(flag: &'static str, path: PathBuf) -> Result<PathBuf, InvalidValue> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(InvalidValue {
            flag,
            message: format!("{} is not a directory", dir.display()),
        });
    }
    unfit_output(flag, &path)?;
    Ok(path)
}

fn unfit_output(flag: &'static str, path: &Path) -> Result<(), InvalidValue> {
    match files::unfit_output(path) {
        Ok(None) => Ok(()),
        Ok(Some(what)) => Err(InvalidValue {
            flag,
            message: format!("{} is {what}, not a regular file: refused", path.display()),
        }),
        Err(e) => Err(InvalidValue {
            flag,
            message: format!("{}: {e}", path.display()),
        }),
    }
}

/// A `--report-dir`: a directory (or a link to one) or a path to create, whose `latest.json` is
/// absent or a regular file.
pub fn output_dir(flag: &'static str, dir: PathBuf) -> Result<PathBuf, InvalidValue> {
    if dir.exists() && !dir.is_dir() {
        return Err(InvalidValue {
            flag,
            message: format!("{} is not a directory", dir.display()),
        });
    }
    unfit_output(flag, &dir.join(crate::report::store::LATEST))?;
    Ok(dir)
}

/// A bearer token from `path`: its contents without surrounding whitespace. Errors name the flag
/// and the file, never the token.
pub fn read_token(flag: &'static str, path: &Path) -> Result<std::sync::Arc<[u8]>, InvalidValue> {
    let text = files::read_input(flag, path)?;
    let token = text.trim();
    let fail = |message: &str| InvalidValue {
        flag,
        message: format!("{}: {message}", path.display()),
    };
    if token.is_empty() {
        return Err(fail("holds no token"));
    }
    if token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(fail(
            "the token must be one line of printable ASCII without spaces, up to 4096 characters",
        ));
    }
    Ok(std::sync::Arc::from(token.as_bytes()))
}

fn validate_host_name(value: &str) -> Result<String, InvalidValue> {
    let v = value.trim();
    if v.is_empty() || v.len() > 253 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidValue {
            flag: "host-name",
            message: format!(
                "'{value}' is not a host or node name (1-253 characters, no spaces)",
                value = sanitize::echo(value)
            ),
        });
    }
    Ok(v.to_string())
}

/// Parses a listen address: `IP:PORT` or `:PORT` (all interfaces).
pub fn parse_listen(value: &str) -> Result<SocketAddr, InvalidValue> {
    let v = value.trim();
    let full = if v.starts_with(':') {
        format!("0.0.0.0{v}")
    } else {
        v.to_string()
    };
    full.parse().map_err(|_| InvalidValue {
        flag: "listen",
        message: format!(
            "'{value}' is not IP:PORT (e.g. 0.0.0.0:9477, [::]:9477 or :9477)",
            value = sanitize::echo(value)
        ),
    })
}

/// Parses `serve --interval`: a duration of at least [`defaults::MIN_INTERVAL`], unless
/// `floor_off` (the hidden `--no-interval-floor` of the soak benchmarks).
pub fn parse_interval(value: &str, floor_off: bool) -> Result<Duration, InvalidValue> {
    let interval = parse_duration("interval", value)?;
    if interval < defaults::MIN_INTERVAL && !floor_off {
        return Err(InvalidValue {
            flag: "interval",
            message: format!(
                "'{}' is shorter than {}s: runs back to back would flood the resolver and the network",
                sanitize::echo(value),
                defaults::MIN_INTERVAL.as_secs()
            ),
        });
    }
    Ok(interval)
}

/// Parses `serve --allow-host`: a host name requests may carry in `Host` (besides IP addresses
/// and `localhost`), lower case.
pub fn parse_allow_host(value: &str) -> Result<String, InvalidValue> {
    let name = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) || name.parse::<IpAddr>().is_ok() {
        return Err(InvalidValue {
            flag: "allow-host",
            message: format!(
                "'{}' is not a host name (letters, digits, '-' and '.'; IP addresses are always allowed)",
                sanitize::echo(value)
            ),
        });
    }
    Ok(name)
}

fn parse_dns_server(value: &str) -> Result<SocketAddr, InvalidValue> {
    parse_address("dns-server", value)
}

impl RunConfig {
    /// Validates `amlprobe run` arguments.
    pub fn from_args(args: RunArgs) -> Result<Self, ConfigError> {
        let mut file = match &args.context.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let selection = selection(args.context, &mut file)?;
        let timeout = first(args.timeout, file.timeout).unwrap_or(defaults::TIMEOUT_SECS);
        if !(timeout > 0.0 && timeout <= defaults::MAX_TIMEOUT_SECS) {
            return Err(InvalidValue {
                flag: "timeout",
                message: format!(
                    "{timeout} is not a number of seconds above 0 and at most {}",
                    defaults::MAX_TIMEOUT_SECS
                ),
            }
            .into());
        }
        let concurrency = in_range(
            "concurrency",
            first(args.concurrency, file.concurrency).unwrap_or(defaults::CONCURRENCY),
        )?;
        let per_destination = in_range(
            "per-destination",
            first(args.per_destination, file.per_destination).unwrap_or(defaults::PER_DESTINATION),
        )?;
        let dns_concurrency = in_range(
            "dns-concurrency",
            first(args.dns_concurrency, file.dns_concurrency).unwrap_or(defaults::DNS_CONCURRENCY),
        )?;
        let udp_timeout =
            first(args.udp_timeout, file.udp_timeout).unwrap_or_else(|| timeout.min(defaults::UDP_TIMEOUT_CAP_SECS));
        if !(udp_timeout > 0.0 && udp_timeout <= defaults::MAX_TIMEOUT_SECS) {
            return Err(InvalidValue {
                flag: "udp-timeout",
                message: format!(
                    "{udp_timeout} is not a number of seconds above 0 and at most {}",
                    defaults::MAX_TIMEOUT_SECS
                ),
            }
            .into());
        }
        let dns_server = first(args.dns_server, file.dns_server)
            .map(|s| parse_dns_server(&s))
            .transpose()?;
        let private_cidrs = first_list(args.private_cidr, file.private_cidr)
            .iter()
            .map(|c| {
                c.trim().parse::<Cidr>().map_err(|message| InvalidValue {
                    flag: "private-cidr",
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let no_proxy = args.no_proxy || file.no_proxy.unwrap_or(false);
        let proxy_flag = first(args.proxy, file.proxy);
        let proxies = crate::env::sysproxy::resolve(proxy_flag.as_deref(), no_proxy).map_err(|e| InvalidValue {
            flag: "proxy",
            message: format!("{} (from {})", e.message, e.source),
        })?;
        let mut expected_ips = ExpectedIps::new();
        for pair in first_list(args.expect_ip, file.expect_ip) {
            endpoints::parse_pair(&pair, &mut expected_ips).map_err(|message| InvalidValue {
                flag: "expect-ip",
                message,
            })?;
        }
        if let Some(path) = first(args.private_endpoints, file.private_endpoints) {
            let text = files::read_input("private-endpoints", &path).map_err(InvalidValue::from)?;
            endpoints::parse_file(&text, &mut expected_ips).map_err(|m| InvalidValue {
                flag: "private-endpoints",
                message: format!("{} {m}", path.display()),
            })?;
        }
        let imds = match (
            args.no_imds || file.no_imds.unwrap_or(false),
            first(args.imds_endpoint, file.imds_endpoint),
        ) {
            (true, _) => None,
            (false, Some(url)) => Some(imds::parse_endpoint(&url).map_err(|message| InvalidValue {
                flag: "imds-endpoint",
                message,
            })?),
            (false, None) => {
                imds::on_azure().then(|| imds::parse_endpoint(imds::DEFAULT_ENDPOINT).expect("valid default"))
            }
        };
        let (discovery, discovery_notes) = crate::discovery::settings(crate::discovery::Inputs {
            resource_id: first(args.discovery.workspace_resource_id, file.workspace_resource_id),
            workspace_config: first(args.discovery.workspace_config, file.workspace_config),
            off: args.discovery.no_discovery || file.no_discovery.unwrap_or(false),
            arm_endpoint: first(args.discovery.arm_endpoint, file.arm_endpoint),
            token_file: first(args.discovery.arm_token_file, file.arm_token_file),
            token_env: std::env::var("AMLPROBE_ARM_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            identity_client_id: first(args.discovery.identity_client_id, file.identity_client_id),
            search_from: std::env::current_dir().ok(),
            azureml_env: crate::discovery::azureml_env::Variables::read(|name| std::env::var(name).ok()),
        })?;
        let mut compare_resolvers = Vec::new();
        if args.compare_resolvers || file.compare_resolvers.unwrap_or(false) {
            for ip in sysdns::system_nameservers() {
                compare_resolvers.push(ResolverSpec {
                    address: SocketAddr::new(ip, 53),
                    role: ResolverRole::ResolvConf,
                });
            }
            compare_resolvers.extend(dns_server.map(|address| ResolverSpec {
                address,
                role: ResolverRole::DnsServer,
            }));
            let azure = match first(args.azure_dns, file.azure_dns) {
                Some(a) => Some(parse_address("azure-dns", &a)?),
                // 168.63.129.16 answers only inside Azure; elsewhere don't send it anything.
                None => imds::on_azure().then(|| SocketAddr::new(resolvers::AZURE_DNS.parse().expect("valid"), 53)),
            };
            compare_resolvers.extend(azure.map(|address| ResolverSpec {
                address,
                role: ResolverRole::AzureDns,
            }));
            compare_resolvers.dedup_by_key(|r| r.address);
        }
        let routing = Routing {
            proxies,
            compare_direct: args.compare_direct || file.compare_direct.unwrap_or(false),
        };
        Ok(RunConfig {
            selection,
            engine: EngineConfig {
                timeout: Duration::from_secs_f64(timeout),
                concurrency,
                per_destination,
                dns_concurrency,
                udp_timeout: Duration::from_secs_f64(udp_timeout),
                dns_server,
                ca_files: first_list(args.ca_file, file.ca_file),
            },
            private_cidrs,
            routing,
            expected_ips,
            imds,
            discovery,
            discovery_notes,
            compare_resolvers,
            format: first(args.format, file.format).unwrap_or_default(),
            report: first(args.report, file.report)
                .map(|path| output_file("report", path))
                .transpose()?,
            report_dir: match first(args.report_dir, file.report_dir) {
                None => None,
                Some(dir) => {
                    let keep = first(args.keep_reports, file.keep_reports).unwrap_or(defaults::KEEP_REPORTS);
                    if keep == 0 {
                        return Err(InvalidValue {
                            flag: "keep-reports",
                            message: "must keep at least 1 report".into(),
                        }
                        .into());
                    }
                    Some((output_dir("report-dir", dir)?, keep))
                }
            },
            host_name: first(args.host_name, file.host_name)
                .map(|n| validate_host_name(&n))
                .transpose()?,
            strict: args.strict || file.strict.unwrap_or(false),
            color: !args.no_color,
            view: match (args.quiet, args.all) {
                (true, _) => View::Quiet,
                (false, true) => View::All,
                (false, false) => View::Screen,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::run_args;

    #[test]
    fn defaults_apply() {
        let c = RunConfig::from_args(run_args(&[])).unwrap();
        assert_eq!(c.engine.timeout, Duration::from_secs(5));
        assert_eq!(c.engine.concurrency, 64);
        assert_eq!(c.engine.per_destination, 16);
        assert_eq!(c.engine.udp_timeout, Duration::from_secs(1));
        assert_eq!(c.selection.context.cloud, Cloud::Public);
        assert_eq!(c.format, Format::Table);
    }

    #[test]
    fn the_udp_wait_is_at_most_the_timeout_unless_given() {
        let short = RunConfig::from_args(run_args(&["--timeout", "0.5"])).unwrap();
        assert_eq!(short.engine.udp_timeout, Duration::from_millis(500));
        let given = RunConfig::from_args(run_args(&["--udp-timeout", "3"])).unwrap();
        assert_eq!(given.engine.udp_timeout, Duration::from_secs(3));
    }

    #[test]
    fn an_out_of_range_wait_says_the_range_it_needs() {
        for flag in ["--timeout", "--udp-timeout"] {
            for value in ["0", "121"] {
                let e = RunConfig::from_args(run_args(&[flag, value])).unwrap_err().to_string();
                assert!(e.ends_with("is not a number of seconds above 0 and at most 120"), "{e}");
            }
        }
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: [(&[&str], &str); 12] = [
            (&["--workspace-id", "nope"], "--workspace-id: "),
            (&["--timeout", "0"], "--timeout: "),
            (&["--concurrency", "0"], "--concurrency: "),
            (&["--per-destination", "0"], "--per-destination: "),
            (&["--dns-concurrency", "5000"], "--dns-concurrency: "),
            (&["--udp-timeout", "0"], "--udp-timeout: "),
            (&["--dns-server", "dns.example"], "--dns-server: "),
            (&["--private-cidr", "10.0.0.0"], "--private-cidr: "),
            (&["--storage-account", "x.blob.core.windows.net"], "--storage-account: "),
            (&["--host-name", "two words"], "--host-name: "),
            (
                &["--instances-domain", "*.instances.azureml.ms"],
                "--instances-domain: ",
            ),
            (
                &["--container-registry-region", "West Europe"],
                "--container-registry-region: ",
            ),
        ];
        for (argv, prefix) in cases {
            let e = RunConfig::from_args(run_args(argv)).unwrap_err().to_string();
            assert!(e.starts_with(prefix), "{argv:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn durations_and_listen_addresses() {
        assert_eq!(parse_duration("interval", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("interval", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("interval", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("interval", "1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("interval", "10").unwrap(), Duration::from_secs(10));
        for bad in ["", "0s", "5x", "-1m", "m", "30 days", "8760h"] {
            let e = parse_duration("interval", bad).unwrap_err().to_string();
            assert!(e.starts_with("--interval: "), "{bad}: {e}");
        }
        for zero in ["0", "0s", "0ms", " 0m "] {
            assert_eq!(parse_jitter(zero).unwrap(), Duration::ZERO, "{zero}");
        }
        assert_eq!(parse_jitter("30s").unwrap(), Duration::from_secs(30));
        for bad in ["", "-1s", "soon", "8d"] {
            let e = parse_jitter(bad).unwrap_err().to_string();
            assert!(e.starts_with("--jitter: "), "{bad}: {e}");
        }
        assert_eq!(parse_interval("1s", false).unwrap(), Duration::from_secs(1));
        let e = parse_interval("1ms", false).unwrap_err().to_string();
        assert_eq!(
            e,
            "--interval: '1ms' is shorter than 1s: runs back to back would flood the resolver and the network"
        );
        assert_eq!(parse_interval("1ms", true).unwrap(), Duration::from_millis(1));
        assert_eq!(parse_allow_host("Amlprobe.Internal.").unwrap(), "amlprobe.internal");
        for bad in ["", "a b", "10.0.0.1", "evil.example:80", "-x.test", "a..b", "x/y"] {
            let e = parse_allow_host(bad).unwrap_err().to_string();
            assert!(e.starts_with("--allow-host: "), "{bad}: {e}");
        }
        assert_eq!(parse_listen(":9477").unwrap(), "0.0.0.0:9477".parse().unwrap());
        assert_eq!(parse_listen("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert!(
            parse_listen("localhost:80")
                .unwrap_err()
                .to_string()
                .starts_with("--listen: ")
        );
    }

    #[test]
    fn dns_server_forms() {
        assert_eq!(parse_dns_server("10.0.0.4").unwrap(), "10.0.0.4:53".parse().unwrap());
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_dns_server("[::1]:5353").unwrap(), "[::1]:5353".parse().unwrap());
    }

    #[test]
    fn config_file_fills_in_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.toml");
        std::fs::write(
            &path,
            "region = \"westeurope\"\nstorage_account = \"filesa\"\nsuite_file = [\"extra.toml\"]\ntimeout = 2.5\npublic_resource = [\"storage\"]\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = RunConfig::from_args(run_args(&["--config", p, "--storage-account", "flagsa"])).unwrap();
        assert_eq!(c.selection.context.region.as_deref(), Some("westeurope"));
        assert_eq!(c.selection.context.storage_account.as_deref(), Some("flagsa"));
        assert_eq!(c.selection.suite_files, vec![dir.path().join("extra.toml")]);
        assert_eq!(c.engine.timeout, Duration::from_millis(2500));
        assert!(c.selection.context.public_resources.contains(&Resource::Storage));
    }

    #[test]
    fn config_file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.toml");
        std::fs::write(&path, "region = \"eastus\"\nstorage_acount = \"x\"\n").unwrap();
        let e = RunConfig::from_args(run_args(&["--config", path.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ws.toml:2:") && e.contains("storage_acount"), "{e}");
        std::fs::write(&path, "region = \"East US\"\n").unwrap();
        let e = RunConfig::from_args(run_args(&["--config", path.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--region: "), "{e}");
    }
}
