//! Command-line definitions (clap): the commands here; the settings' arguments are built from
//! their rows (`model::values`, `flags.rs`) by `given.rs`. Parsing only records values;
//! `settings.rs` validates them.

pub mod defaults;
pub mod flags;
#[cfg(test)]
mod fuzz;
pub mod given;
#[cfg(test)]
mod packaged;
pub mod progress;
pub mod settings;

use clap::{Args, Parser, Subcommand, ValueEnum};
use given::Given;
use std::path::PathBuf;

/// Tells which Azure Machine Learning network flows work from this machine, and why the others don't.
#[derive(Debug, Parser)]
#[command(name = "amlprobe", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Probe every flow of the selected suites and report which work.
    Run(RunCommand),
    /// List suites, flows and the concrete probes they expand to, without sending anything.
    Suites(SuitesArgs),
    /// Run the probes (or take a saved report) and pack what support asks for into a .tar.gz.
    Bundle(BundleArgs),
    /// Compare two reports: which flows changed state. Exit 1 when one got worse.
    Diff(DiffArgs),
    /// Merge reports from many nodes into a node × flow matrix.
    Merge(MergeArgs),
    /// Re-run the suites on an interval; serve /metrics, /healthz and /report over HTTP.
    Serve(ServeArgs),
}

/// Workspace facts and suite selection, shared by `run` and `suites`: `--config` and one
/// argument per row of `model::values` and `flags::SELECTION`.
/// Each flag can also come from the environment (`AMLPROBE_<NAME>`) or a `--config` file.
#[derive(Debug, Clone, Args)]
pub struct ContextArgs {
    /// TOML file with any of these settings (keys as the flag names with '_' for '-').
    #[arg(long, env = "AMLPROBE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The context values and suites given.
    #[command(flatten)]
    pub given: Given<given::Context>,
}

/// Output formats of `run`, in `flags::FORMATS` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human table.
    #[default]
    Table,
    /// The JSON report.
    Json,
    /// JUnit XML, one test case per flow, for CI systems.
    Junit,
    /// Prometheus text exposition, for node-exporter's textfile collector.
    Prometheus,
    /// One self-contained HTML page, for a ticket.
    Html,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::Table,
        Format::Json,
        Format::Junit,
        Format::Prometheus,
        Format::Html,
    ];

    /// The format `--format` names.
    pub fn from_name(name: &str) -> Option<Format> {
        flags::FORMATS.position(name).map(|i| Format::ALL[i])
    }
}

/// Output formats of `suites` and `diff`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Human table.
    #[default]
    Table,
    /// JSON.
    Json,
}

/// Output formats of `merge`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    /// Human table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// A Markdown table to paste into a ticket.
    Markdown,
    /// A self-contained HTML heatmap: flows × node groups.
    Html,
}

/// `amlprobe run`: the context, one argument per row of `flags::RUN`, the output switches and
/// one argument per row of `flags::DISCOVERY`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// How the run probes and reports.
    #[command(flatten)]
    pub given: Given<given::Run>,
    /// No ANSI colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Print only the root causes of required flows and the summary line.
    #[arg(long, short, conflicts_with = "all")]
    pub quiet: bool,
    /// The table lists every flow, grouped by suite, and every root cause in full (by default it
    /// fits on one screen: the causes of required flows and the required flows that fail).
    #[arg(long, short = 'v', visible_short_alias = 'a')]
    pub all: bool,
    /// Learning the workspace from ARM (`run`, `bundle`, `serve`).
    #[command(flatten)]
    pub discovery: Given<given::Discovery>,
}

/// `amlprobe run`: the shared run settings plus what only a one-shot run does.
#[derive(Debug, Clone, Args)]
pub struct RunCommand {
    #[command(flatten)]
    pub run: RunArgs,
    /// Also pack what support asks for (this report, resolver and proxy settings, routes) into
    /// FILE.tar.gz, secrets redacted; as `amlprobe bundle` does.
    #[arg(long, value_name = "FILE.tar.gz")]
    pub bundle: Option<PathBuf>,
}

/// `amlprobe suites`.
#[derive(Debug, Clone, Args)]
pub struct SuitesArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `amlprobe bundle`.
#[derive(Debug, Clone, Args)]
pub struct BundleArgs {
    /// The archive to write (.tar.gz).
    #[arg(value_name = "FILE.tar.gz")]
    pub output: PathBuf,
    /// Pack this saved JSON report instead of probing now.
    #[arg(long, value_name = "REPORT.json")]
    pub from_report: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `amlprobe diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The earlier report (or node A's).
    #[arg(value_name = "OLD.json")]
    pub old: PathBuf,
    /// The later report (or node B's).
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    /// Also list flows that did not change.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `amlprobe merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Report files, or directories whose *.json files are reports.
    #[arg(value_name = "REPORT", required = true)]
    pub paths: Vec<PathBuf>,
    /// Only flows whose result differs between nodes.
    #[arg(long)]
    pub differences: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: MatrixFormat,
}

/// `amlprobe serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve /metrics, /healthz and /report on; loopback unless given (in a pod or for
    /// a scraper on another machine: 0.0.0.0:9477, which also exposes /report, see
    /// --metrics-only and --report-token-file).
    #[arg(long, env = "AMLPROBE_LISTEN", value_name = "ADDR", default_value = defaults::LISTEN)]
    pub listen: String,
    /// Serve /metrics and /healthz only: /report (host names, addresses, proxy settings) is 404.
    #[arg(long, env = "AMLPROBE_METRICS_ONLY", conflicts_with = "report_token_file")]
    pub metrics_only: bool,
    /// /report answers only requests with `Authorization: Bearer <token>`, the token being this
    /// file's contents (surrounding whitespace ignored); others get 401.
    #[arg(long, env = "AMLPROBE_REPORT_TOKEN_FILE", value_name = "FILE")]
    pub report_token_file: Option<PathBuf>,
    /// Time between runs, e.g. 30s, 5m, 1h.
    #[arg(long, env = "AMLPROBE_INTERVAL", value_name = "DURATION", default_value = defaults::INTERVAL)]
    pub interval: String,
    /// Random spread added to each wait (and to the first run), so a fleet doesn't probe in
    /// lockstep [default: a tenth of --interval; 0 for none].
    #[arg(long, env = "AMLPROBE_JITTER", value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Also answer requests whose Host header names NAME (repeatable); IP addresses and
    /// localhost always are, any other name gets 421, so a web page rebound to this address
    /// cannot read the endpoints.
    #[arg(
        long = "allow-host",
        env = "AMLPROBE_ALLOW_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// Accept an --interval below 1s (soak benchmarks only).
    #[arg(long, hide = true)]
    pub no_interval_floor: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Parses `amlprobe <words…>`: the one way unit tests build a command line. No argument reads
/// its environment variable here, so `AMLPROBE_*` exported in the shell running the tests
/// changes nothing.
#[cfg(test)]
pub(crate) fn parse_argv<T: Into<std::ffi::OsString>>(words: impl IntoIterator<Item = T>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_subcommands(|sub| sub.mut_args(|arg| arg.env(None)));
    let matches =
        command.try_get_matches_from(std::iter::once("amlprobe".into()).chain(words.into_iter().map(Into::into)))?;
    Cli::from_arg_matches(&matches)
}

/// The run settings of `amlprobe run <words…>`, which must parse.
#[cfg(test)]
pub(crate) fn run_args(words: &[&str]) -> RunArgs {
    let cli =
        parse_argv(std::iter::once("run").chain(words.iter().copied())).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    let Command::Run(run) = cli.command else {
        unreachable!("parsed a run command")
    };
    run.run
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_listens_on_loopback_unless_told_otherwise() {
        let Command::Serve(args) = parse_argv(["serve"]).unwrap().command else {
            unreachable!()
        };
        assert_eq!(args.listen, "127.0.0.1:9477");
        assert!(!args.metrics_only && args.report_token_file.is_none());
        let both = parse_argv(["serve", "--metrics-only", "--report-token-file", "t"]);
        assert!(
            both.is_err(),
            "--metrics-only and --report-token-file exclude each other"
        );
    }
}
