//! Validated settings: flags and environment (via clap) over an optional `--config` file, each
//! setting read by its row (`model::values` for the context, `flags.rs` for the rest) and checked
//! once here, so later stages only ever see good values. Nothing here reads the machine: what
//! the run depends on of it comes in as [`HostFacts`], gathered by the caller.

use crate::cli::flags;
use crate::cli::given::{ConfigFile, Layered};
use crate::cli::{ContextArgs, Format, RunArgs, defaults};
use crate::engine::EngineConfig;
use crate::engine::resolvers::{self, ResolverRole, ResolverSpec};
use crate::env::host::{Environment, HostFacts};
use crate::env::imds;
use crate::env::sysproxy;
use crate::files;
use crate::model::context::{Cloud, InvalidValue, Resource, ValueSource, WorkspaceContext};
use crate::model::endpoints::{self, ExpectedIps};
use crate::model::facts::{self, FactValue};
use crate::model::netaddr::Cidr;
use crate::model::values::{self, Slot};
use crate::plan::Routing;
use crate::sanitize;
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

/// Workspace context and suite selection, validated.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The workspace facts, each given one with its source.
    pub context: WorkspaceContext,
    /// `--suite` names (empty: all).
    pub suites: Vec<String>,
    /// `--suite-file` paths.
    pub suite_files: Vec<PathBuf>,
}

/// Everything `amlprobe run` needs, validated: the run and where its report goes.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// What `runner::run_once` takes.
    pub run: RunSettings,
    /// Where the report goes.
    pub output: Output,
}

/// One run's settings, in the parts the stages take: `run_once` hands each stage its own.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The context as given, and the suites (IMDS and ARM complete the context in the run).
    pub selection: Selection,
    /// Where the run may learn more of the context.
    pub learning: Learning,
    /// Proxies and the direct-path comparison (plan and engine).
    pub routing: Routing,
    /// Limits, resolver and trust anchors (engine).
    pub engine: EngineConfig,
    /// Resolvers to compare side by side (empty: no comparison).
    pub compare_resolvers: Vec<ResolverSpec>,
    /// Extra private ranges (verdict).
    pub private_cidrs: Vec<Cidr>,
    /// Exact addresses private-endpoint names must resolve to (verdict; ARM adds to them).
    pub expected_ips: ExpectedIps,
    /// The machine's name in the report (`None`: the kernel's host name).
    pub host_name: Option<String>,
    /// Whether inconclusive/skipped required flows fail (recorded in the report).
    pub strict: bool,
}

/// Where a run learns what was not given: IMDS and ARM.
#[derive(Debug, Clone)]
pub struct Learning {
    /// Where to ask for instance metadata (`None`: don't).
    pub imds: Option<crate::http_client::Url>,
    /// Which workspace to read from ARM (`None`: no discovery).
    pub discovery: Option<crate::discovery::Settings>,
    /// Lines for `context.warnings` from looking for the workspace.
    pub notes: Vec<String>,
    /// The environment the identity sources read (managed identity, workload identity, az).
    pub environment: Environment,
    /// Time for reading the Azure configuration behind the causes (`None`: don't).
    pub attribution: Option<Duration>,
}

/// Where a run's report goes.
#[derive(Debug, Clone)]
pub struct Output {
    /// Output on stdout.
    pub format: Format,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// Directory of rotated reports, and how many to keep.
    pub report_dir: Option<(PathBuf, usize)>,
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

/// A number of seconds above 0 and at most [`defaults::MAX_TIMEOUT_SECS`].
fn seconds(flag: &'static str, value: f64) -> Result<f64, InvalidValue> {
    if value > 0.0 && value <= defaults::MAX_TIMEOUT_SECS {
        Ok(value)
    } else {
        Err(InvalidValue {
            flag,
            message: format!(
                "{value} is not a number of seconds above 0 and at most {}",
                defaults::MAX_TIMEOUT_SECS
            ),
        })
    }
}

/// The context values and suites the layers give, each value checked by its row and recorded
/// in `context.sources` with where it came from.
fn selection(given: &Layered) -> Result<Selection, ConfigError> {
    let mut context = WorkspaceContext::default();
    for row in values::VALUES {
        let Some(setting) = &row.setting else { continue };
        let source = given.source(setting);
        match row.slot {
            Slot::Text { field, validate } => {
                let value = given
                    .text(setting)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| validate(v.trim()))
                    .transpose()?;
                if let (Some(_), Some(source)) = (&value, source) {
                    context.sources.insert(row.key.to_string(), source);
                }
                *field(&mut context) = value;
            }
            Slot::Cloud => {
                context.cloud = given
                    .text(setting)
                    .and_then(|name| Cloud::from_name(&name))
                    .unwrap_or_default();
                context
                    .sources
                    .insert(row.key.to_string(), source.unwrap_or(ValueSource::Default));
            }
            Slot::PublicResources => {
                context.public_resources = given
                    .texts(setting)
                    .iter()
                    .filter_map(|name| Resource::from_name(name))
                    .collect();
                if let Some(source) = source {
                    context.sources.insert(row.key.to_string(), source);
                }
            }
            Slot::Facts => {
                for assumption in given.texts(setting) {
                    let (fact, holds) = facts::parse_assumption(&assumption).map_err(|message| InvalidValue {
                        flag: setting.flag,
                        message,
                    })?;
                    let basis = format!("--assume {assumption}");
                    let source = source.unwrap_or(ValueSource::FlagOrEnv);
                    context.facts.insert(fact, FactValue::known(holds, source, basis));
                }
            }
        }
    }
    context.warnings = context.notebook_label_warnings();
    Ok(Selection {
        context,
        suites: given.texts(&flags::SUITE),
        suite_files: given.paths(&flags::SUITE_FILE),
    })
}

/// The `--config` file, if one is named.
fn config_file(path: Option<&Path>) -> Result<ConfigFile, ConfigError> {
    path.map_or_else(|| Ok(ConfigFile::default()), ConfigFile::read)
}

/// Validates `amlprobe suites` arguments.
pub fn suites_selection(args: ContextArgs) -> Result<Selection, ConfigError> {
    let file = config_file(args.config.as_deref())?;
    selection(&Layered::new([args.given.into_values()], file))
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

/// The engine's limits, resolver and trust anchors.
fn engine(given: &Layered) -> Result<EngineConfig, InvalidValue> {
    let timeout = seconds(
        "timeout",
        given.seconds(&flags::TIMEOUT).unwrap_or(defaults::TIMEOUT_SECS),
    )?;
    let concurrency = in_range(
        "concurrency",
        given.count(&flags::CONCURRENCY).unwrap_or(defaults::CONCURRENCY),
    )?;
    let per_destination = in_range(
        "per-destination",
        given
            .count(&flags::PER_DESTINATION)
            .unwrap_or(defaults::PER_DESTINATION),
    )?;
    let dns_concurrency = in_range(
        "dns-concurrency",
        given
            .count(&flags::DNS_CONCURRENCY)
            .unwrap_or(defaults::DNS_CONCURRENCY),
    )?;
    let udp_timeout = seconds(
        "udp-timeout",
        given
            .seconds(&flags::UDP_TIMEOUT)
            .unwrap_or_else(|| timeout.min(defaults::UDP_TIMEOUT_CAP_SECS)),
    )?;
    Ok(EngineConfig {
        timeout: Duration::from_secs_f64(timeout),
        concurrency,
        per_destination,
        dns_concurrency,
        udp_timeout: Duration::from_secs_f64(udp_timeout),
        dns_server: given
            .text(&flags::DNS_SERVER)
            .map(|s| parse_dns_server(&s))
            .transpose()?,
        ca_files: given.paths(&flags::CA_FILE),
    })
}

/// `--private-cidr`.
fn private_cidrs(given: &Layered) -> Result<Vec<Cidr>, InvalidValue> {
    given
        .texts(&flags::PRIVATE_CIDR)
        .iter()
        .map(|c| {
            c.trim().parse::<Cidr>().map_err(|message| InvalidValue {
                flag: "private-cidr",
                message,
            })
        })
        .collect()
}

/// The proxies (`--proxy`, `--no-proxy`, else the environment's, else on Windows the machine's)
/// and `--compare-direct`.
fn routing(given: &Layered, host: &HostFacts) -> Result<Routing, InvalidValue> {
    let proxies = sysproxy::choose(
        given.text(&flags::PROXY).as_deref(),
        given.switch(&flags::NO_PROXY),
        host.environment.lookup(),
        &host.system_proxy,
    )
    .map_err(|e| InvalidValue {
        flag: "proxy",
        message: format!("{} (from {})", e.message, e.source),
    })?;
    Ok(Routing {
        proxies,
        compare_direct: given.switch(&flags::COMPARE_DIRECT),
    })
}

/// `--expect-ip` pairs and the `--private-endpoints` file.
fn expected_ips(given: &Layered) -> Result<ExpectedIps, InvalidValue> {
    let mut expected = ExpectedIps::new();
    for pair in given.texts(&flags::EXPECT_IP) {
        endpoints::parse_pair(&pair, &mut expected).map_err(|message| InvalidValue {
            flag: "expect-ip",
            message,
        })?;
    }
    if let Some(path) = given.path(&flags::PRIVATE_ENDPOINTS) {
        let text = files::read_input("private-endpoints", &path)?;
        endpoints::parse_file(&text, &mut expected).map_err(|m| InvalidValue {
            flag: "private-endpoints",
            message: format!("{} {m}", path.display()),
        })?;
    }
    Ok(expected)
}

/// Where the run may learn more: IMDS (asked by default on an Azure VM only) and ARM.
fn learning(given: &Layered, host: &HostFacts) -> Result<Learning, InvalidValue> {
    let imds = match (given.switch(&flags::NO_IMDS), given.text(&flags::IMDS_ENDPOINT)) {
        (true, _) => None,
        (false, Some(url)) => Some(imds::parse_endpoint(&url).map_err(|message| InvalidValue {
            flag: "imds-endpoint",
            message,
        })?),
        (false, None) => host
            .on_azure
            .then(|| imds::parse_endpoint(imds::DEFAULT_ENDPOINT).expect("valid default")),
    };
    let (discovery, notes) = crate::discovery::settings(crate::discovery::Inputs {
        resource_id: given.text(&flags::WORKSPACE_RESOURCE_ID),
        workspace_config: given.path(&flags::WORKSPACE_CONFIG),
        off: given.switch(&flags::NO_DISCOVERY),
        arm_endpoint: given.text(&flags::ARM_ENDPOINT),
        token_file: given.path(&flags::ARM_TOKEN_FILE),
        token_env: host
            .environment
            .get("AMLPROBE_ARM_TOKEN")
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string),
        identity_client_id: given.text(&flags::IDENTITY_CLIENT_ID),
        sdk_config: host.sdk_config.clone().map(|found| (found.path, found.text)),
        azureml_env: crate::discovery::azureml_env::Variables::read(host.environment.lookup()),
    })?;
    let budget = seconds(
        "attribution-budget",
        given
            .seconds(&flags::ATTRIBUTION_BUDGET)
            .unwrap_or(defaults::ATTRIBUTION_BUDGET_SECS),
    )?;
    Ok(Learning {
        imds,
        discovery,
        notes,
        environment: host.environment.clone(),
        attribution: (!given.switch(&flags::NO_ATTRIBUTION)).then(|| Duration::from_secs_f64(budget)),
    })
}

/// With `--compare-resolvers`: the system's resolvers, `--dns-server` and Azure DNS (asked by
/// default on an Azure VM only), each once.
fn compare_resolvers(
    given: &Layered,
    host: &HostFacts,
    dns_server: Option<SocketAddr>,
) -> Result<Vec<ResolverSpec>, InvalidValue> {
    if !given.switch(&flags::COMPARE_RESOLVERS) {
        return Ok(Vec::new());
    }
    let mut compared: Vec<ResolverSpec> = host
        .nameservers
        .iter()
        .map(|ip| ResolverSpec {
            address: SocketAddr::new(*ip, 53),
            role: ResolverRole::ResolvConf,
        })
        .collect();
    compared.extend(dns_server.map(|address| ResolverSpec {
        address,
        role: ResolverRole::DnsServer,
    }));
    let azure = match given.text(&flags::AZURE_DNS) {
        Some(a) => Some(parse_address("azure-dns", &a)?),
        // 168.63.129.16 answers only inside Azure; elsewhere don't send it anything.
        None => host
            .on_azure
            .then(|| SocketAddr::new(resolvers::AZURE_DNS.parse().expect("valid"), 53)),
    };
    compared.extend(azure.map(|address| ResolverSpec {
        address,
        role: ResolverRole::AzureDns,
    }));
    compared.dedup_by_key(|r| r.address);
    Ok(compared)
}

/// Where the report goes; colours and the view are the command line's alone.
fn output(given: &Layered, no_color: bool, view: View) -> Result<Output, InvalidValue> {
    let format = given
        .text(&flags::FORMAT)
        .and_then(|name| Format::from_name(&name))
        .unwrap_or_default();
    let report = given
        .path(&flags::REPORT)
        .map(|path| output_file("report", path))
        .transpose()?;
    let report_dir = match given.path(&flags::REPORT_DIR) {
        None => None,
        Some(dir) => {
            let keep = given.count(&flags::KEEP_REPORTS).unwrap_or(defaults::KEEP_REPORTS);
            if keep == 0 {
                return Err(InvalidValue {
                    flag: "keep-reports",
                    message: "must keep at least 1 report".into(),
                });
            }
            Some((output_dir("report-dir", dir)?, keep))
        }
    };
    Ok(Output {
        format,
        report,
        report_dir,
        color: !no_color,
        view,
    })
}

impl RunConfig {
    /// Validates `amlprobe run` arguments against this machine's `host` facts, in the order the
    /// flags are listed. Reads the files the settings name (`--config`, `--private-endpoints`,
    /// `--arm-token-file`, `--workspace-config`), nothing else.
    pub fn from_args(args: RunArgs, host: &HostFacts) -> Result<Self, ConfigError> {
        let file = config_file(args.context.config.as_deref())?;
        let given = Layered::new(
            [
                args.context.given.into_values(),
                args.given.into_values(),
                args.discovery.into_values(),
            ],
            file,
        );
        let selection = selection(&given)?;
        let engine = engine(&given)?;
        let private_cidrs = private_cidrs(&given)?;
        let routing = routing(&given, host)?;
        let expected_ips = expected_ips(&given)?;
        let learning = learning(&given, host)?;
        let compare_resolvers = compare_resolvers(&given, host, engine.dns_server)?;
        let view = match (args.quiet, args.all) {
            (true, _) => View::Quiet,
            (false, true) => View::All,
            (false, false) => View::Screen,
        };
        let output = output(&given, args.no_color, view)?;
        let host_name = given
            .text(&flags::HOST_NAME)
            .map(|n| validate_host_name(&n))
            .transpose()?;
        Ok(RunConfig {
            run: RunSettings {
                selection,
                learning,
                routing,
                engine,
                compare_resolvers,
                private_cidrs,
                expected_ips,
                host_name,
                strict: given.switch(&flags::STRICT),
            },
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::run_args;

    /// Validates `args` on a machine that tells nothing.
    fn from_args(args: RunArgs) -> Result<RunConfig, ConfigError> {
        RunConfig::from_args(args, &HostFacts::default())
    }

    #[test]
    fn defaults_apply() {
        let c = from_args(run_args(&[])).unwrap();
        assert_eq!(c.run.engine.timeout, Duration::from_secs(5));
        assert_eq!(c.run.engine.concurrency, 64);
        assert_eq!(c.run.engine.per_destination, 16);
        assert_eq!(c.run.engine.udp_timeout, Duration::from_secs(1));
        assert_eq!(c.run.selection.context.cloud, Cloud::Public);
        assert_eq!(c.output.format, Format::Table);
    }

    #[test]
    fn the_udp_wait_is_at_most_the_timeout_unless_given() {
        let short = from_args(run_args(&["--timeout", "0.5"])).unwrap();
        assert_eq!(short.run.engine.udp_timeout, Duration::from_millis(500));
        let given = from_args(run_args(&["--udp-timeout", "3"])).unwrap();
        assert_eq!(given.run.engine.udp_timeout, Duration::from_secs(3));
    }

    #[test]
    fn the_azure_configuration_is_read_within_its_budget_unless_turned_off() {
        let default = from_args(run_args(&[])).unwrap();
        assert_eq!(default.run.learning.attribution, Some(Duration::from_secs(10)));
        let given = from_args(run_args(&["--attribution-budget", "2.5"])).unwrap();
        assert_eq!(given.run.learning.attribution, Some(Duration::from_millis(2500)));
        let off = from_args(run_args(&["--no-attribution", "--attribution-budget", "3"])).unwrap();
        assert_eq!(off.run.learning.attribution, None);
    }

    #[test]
    fn an_out_of_range_wait_says_the_range_it_needs() {
        for flag in ["--timeout", "--udp-timeout", "--attribution-budget"] {
            for value in ["0", "121"] {
                let e = from_args(run_args(&[flag, value])).unwrap_err().to_string();
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
            let e = from_args(run_args(argv)).unwrap_err().to_string();
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
        let c = from_args(run_args(&["--config", p, "--storage-account", "flagsa"])).unwrap();
        assert_eq!(c.run.selection.context.region.as_deref(), Some("westeurope"));
        assert_eq!(c.run.selection.context.storage_account.as_deref(), Some("flagsa"));
        assert_eq!(c.run.selection.suite_files, vec![dir.path().join("extra.toml")]);
        assert_eq!(c.run.engine.timeout, Duration::from_millis(2500));
        assert!(c.run.selection.context.public_resources.contains(&Resource::Storage));
    }

    /// Every context value given records where it came from: a flag (or its variable), the
    /// config file, or the default.
    #[test]
    fn each_given_context_value_records_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.toml");
        std::fs::write(
            &path,
            "region = \"westeurope\"\nkey_vault = \"kv-file\"\npublic_resource = [\"storage\"]\nassume = [\"aks_node\"]\n",
        )
        .unwrap();
        let c = from_args(run_args(&[
            "--config",
            path.to_str().unwrap(),
            "--storage-account",
            "flagsa",
            "--workspace-id",
            "fb7e20a0-8891-458b-b969-55ddb3382f51",
            "--compute-instance",
            "ci-alice",
        ]))
        .unwrap();
        let ctx = &c.run.selection.context;
        let source = |key: &str| ctx.sources.get(key).copied();
        assert_eq!(source("cloud"), Some(ValueSource::Default));
        for key in ["storage_account", "workspace_id", "compute_instance"] {
            assert_eq!(source(key), Some(ValueSource::FlagOrEnv), "{key}");
        }
        for key in ["region", "key_vault", "public_resources"] {
            assert_eq!(source(key), Some(ValueSource::Config), "{key}");
        }
        assert_eq!(source("workspace_name"), None, "not given, not recorded");
        let aks = &ctx.facts[&crate::model::facts::Fact::AksNode];
        assert!(aks.holds && aks.source == ValueSource::Config, "{aks:?}");
        crate::model::values::tests::assert_sources_declared(ctx);
    }

    #[test]
    fn config_file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.toml");
        std::fs::write(&path, "region = \"eastus\"\nstorage_acount = \"x\"\n").unwrap();
        let e = from_args(run_args(&["--config", path.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ws.toml:2:") && e.contains("storage_acount"), "{e}");
        std::fs::write(&path, "region = \"East US\"\n").unwrap();
        let e = from_args(run_args(&["--config", path.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--region: "), "{e}");
    }
}
