//! The front end: parse, validate, plan, execute, assess, render, exit. The only module that
//! writes to stdout or stderr.

pub mod bundle;
pub mod serve;

use crate::analyze::saved;
use crate::cli::settings::{self, Output, RunConfig, Selection, View};
use crate::cli::{
    BundleArgs, Cli, Command, DiffArgs, Format, ListFormat, MatrixFormat, MergeArgs, RunArgs, RunCommand, ServeArgs,
    SuitesArgs,
};
use crate::env::host::HostFacts;
use crate::model::exit;
use crate::model::suite::Catalog;
use crate::report::{self, Report};
use crate::{cli::progress, plan, runner, sanitize};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// An error that ends the run, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: exit::USAGE,
        message: e.to_string(),
    }
}

/// Prints a command-line error from clap, whose messages quote the offending argument: it is
/// quoted the way validation errors quote values (short, inert, without secrets).
fn command_line_error(mut e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue};
    for kind in [
        ContextKind::InvalidValue,
        ContextKind::InvalidArg,
        ContextKind::InvalidSubcommand,
    ] {
        if let Some(ContextValue::String(raw)) = e.get(kind) {
            let shown = sanitize::echo(raw);
            e.insert(kind, ContextValue::String(shown));
        }
    }
    // A closed stream leaves nothing to report to.
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE))
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return command_line_error(e),
    };
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Suites(args) => suites(args),
        Command::Bundle(args) => bundle(args),
        Command::Diff(args) => diff(args),
        Command::Merge(args) => merge(args),
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Messages can quote files, paths and peers: nothing in them may act on the terminal.
            eprintln!("amlprobe: {}", sanitize::terminal(&f.message));
            ExitCode::from(f.code)
        }
    }
}

fn load_catalog(selection: &Selection) -> Result<Catalog, Failure> {
    let mut catalog = Catalog::builtin().map_err(|e| Failure {
        code: exit::INTERNAL,
        message: e.to_string(),
    })?;
    for file in &selection.suite_files {
        catalog.add_file(file).map_err(usage)?;
    }
    Ok(catalog)
}

fn print(text: &str) -> Result<(), Failure> {
    write_out(|out| out.write_all(text.as_bytes()))
}

/// Writes to stdout through `write`, buffered.
fn write_out(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock>) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        // A closed pipe (`amlprobe run | head`) is the reader's choice, not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: exit::INTERNAL,
            message: format!("writing output: {e}"),
        }),
        _ => Ok(()),
    }
}

fn suites(args: SuitesArgs) -> Result<u8, Failure> {
    let mut selection = settings::suites_selection(args.context).map_err(usage)?;
    let catalog = load_catalog(&selection)?;
    selection.context.settle_facts();
    let chosen = catalog.select(&selection.suites).map_err(usage)?;
    let chosen = plan::applicable(&chosen, !selection.suites.is_empty(), &selection.context);
    let flows = plan::expand(&catalog, &chosen, &selection.context, &plan::Routing::default());
    let listing = report::render::listing::build(&chosen, &flows);
    if args.format == ListFormat::Table {
        // JSON carries them in `context.warnings`; the table's reader needs them said too.
        for w in &selection.context.warnings {
            eprintln!("amlprobe: warning: {}", sanitize::terminal(w));
        }
    }
    print(&match args.format {
        ListFormat::Json => report::render::listing::to_json(&selection.context, &listing) + "\n",
        ListFormat::Table => report::render::listing::to_text(&listing),
    })?;
    Ok(exit::OK)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: exit::INTERNAL,
            message: format!("cannot start the runtime: {e}"),
        })
}

/// Validates the settings, runs the probes once and saves the report where asked.
fn probe_once(args: RunArgs, progress_wanted: bool) -> Result<(RunConfig, Report), Failure> {
    let cfg = RunConfig::from_args(args, &HostFacts::gather()).map_err(usage)?;
    let catalog = load_catalog(&cfg.run.selection)?;
    let chosen = catalog.select(&cfg.run.selection.suites).map_err(usage)?;
    let runtime = runtime()?;
    let (progress, bar) = progress::bar(progress_wanted && cfg.output.view != View::Quiet);
    let report = runtime
        .block_on(runner::run_once(&cfg.run, &catalog, &chosen, progress))
        .map_err(|e| Failure {
            code: e.exit_code(),
            message: e.to_string(),
        })?;
    bar.finish_and_clear();
    runner::save(&report, &cfg.output).map_err(|e| Failure {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    Ok((cfg, report))
}

fn colored(output: &Output) -> bool {
    output.color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
        && crate::env::hostinfo::stdout_takes_ansi()
}

fn run(command: RunCommand) -> Result<u8, Failure> {
    let bundle_to = command
        .bundle
        .map(|p| settings::output_file("bundle", p))
        .transpose()
        .map_err(usage)?;
    let (cfg, report) = probe_once(command.run, true)?;
    print(&match (cfg.output.view, cfg.output.format) {
        (View::Quiet, _) => report::render::table::quiet(&report, colored(&cfg.output)),
        (_, Format::Json) => report.to_json() + "\n",
        (View::All, Format::Table) => report::render::table::render_all(&report, colored(&cfg.output)),
        (View::Screen, Format::Table) => report::render::table::render(&report, colored(&cfg.output)),
        (_, Format::Junit) => report::render::junit::render(&report),
        (_, Format::Prometheus) => report::render::prometheus::render(&report),
        (_, Format::Html) => report::render::html::render(&report),
    })?;
    if let Some(path) = bundle_to {
        // stdout carries the report in the chosen format: the note goes to stderr.
        let json = report.to_json() + "\n";
        let text = report::render::table::render_all(&report, false);
        let html = report::render::html::render(&report);
        eprintln!("{}", write_bundle(&path, &json, &text, Some(&html))?);
    }
    Ok(report.exit_code())
}

/// Writes the support bundle and says what it wrote.
fn write_bundle(path: &std::path::Path, json: &str, text: &str, html: Option<&str>) -> Result<String, Failure> {
    let entries = bundle::collect(&bundle::Inputs::system(), json, text, html);
    // The target was checked before probing: failing now (a full disk) is an I/O failure, 3,
    // as for --report.
    bundle::write(path, &entries).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("--bundle {}: {e}", path.display()),
    })?;
    Ok(format!(
        "amlprobe: wrote {} ({} files, secrets redacted)",
        path.display(),
        entries.len()
    ))
}

fn bundle(args: BundleArgs) -> Result<u8, Failure> {
    settings::output_file("bundle", args.output.clone()).map_err(usage)?;
    let (json, text, html, code) = match &args.from_report {
        Some(path) => {
            // The saved JSON is packed byte for byte; the table and the page are rendered again
            // when this version wrote it, else the archive says what the report is.
            let json = crate::files::read_input("from-report", path).map_err(usage)?;
            match Report::from_json(&json) {
                Ok(report) => (
                    json,
                    report::render::table::render_all(&report, false),
                    Some(report::render::html::render(&report)),
                    exit::OK,
                ),
                Err(_) => {
                    let loaded = saved::parse(&json, path).map_err(|e| usage(format!("--from-report {e}")))?;
                    let summary = format!(
                        "report of {} at {} ({} flows)\n",
                        sanitize::terminal(&loaded.host.hostname),
                        sanitize::terminal(&loaded.started_at),
                        loaded.flows.len()
                    );
                    (json, summary, None, exit::OK)
                }
            }
        }
        None => {
            let (_, report) = probe_once(args.run, true)?;
            (
                report.to_json() + "\n",
                report::render::table::render_all(&report, false),
                Some(report::render::html::render(&report)),
                report.exit_code(),
            )
        }
    };
    print(&(write_bundle(&args.output, &json, &text, html.as_deref())? + "\n"))?;
    Ok(code)
}

fn diff(args: DiffArgs) -> Result<u8, Failure> {
    let old = saved::load(&args.old).map_err(usage)?;
    let new = saved::load(&args.new).map_err(usage)?;
    let d = crate::analyze::diff::compare(&old, &new);
    print(&match args.format {
        ListFormat::Json => d.to_json() + "\n",
        ListFormat::Table => crate::analyze::diff::to_text(&d, args.all),
    })?;
    Ok(d.exit_code())
}

fn merge(args: MergeArgs) -> Result<u8, Failure> {
    // One report in memory at a time: the matrix keeps only what it shows.
    let mut merger = crate::analyze::matrix::Merger::default();
    for file in saved::report_files(&args.paths).map_err(usage)? {
        merger.add(&saved::load(&file).map_err(usage)?);
    }
    let m = merger.finish();
    if args.format == MatrixFormat::Json {
        write_out(|out| m.write_json(out))?;
        return Ok(m.exit_code());
    }
    print(&match args.format {
        MatrixFormat::Json => unreachable!("written above"),
        MatrixFormat::Table => crate::analyze::matrix::to_text(&m, args.differences),
        MatrixFormat::Markdown => crate::analyze::matrix::to_markdown(&m, args.differences),
        MatrixFormat::Html => crate::analyze::heatmap::render(&m, args.differences),
    })?;
    Ok(m.exit_code())
}

fn serve(args: ServeArgs) -> Result<u8, Failure> {
    let listen = settings::parse_listen(&args.listen).map_err(usage)?;
    let interval = settings::parse_interval(&args.interval, args.no_interval_floor).map_err(usage)?;
    let allowed_hosts = args
        .allow_hosts
        .iter()
        .map(|h| settings::parse_allow_host(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let jitter = match &args.jitter {
        Some(j) => settings::parse_jitter(j).map_err(usage)?,
        None => interval / 10,
    };
    let report = match (&args.report_token_file, args.metrics_only) {
        (_, true) => serve::ReportAccess::Off,
        (Some(path), false) => {
            serve::ReportAccess::Token(settings::read_token("report-token-file", path).map_err(usage)?)
        }
        (None, false) => serve::ReportAccess::Open,
    };
    let cfg = RunConfig::from_args(args.run, &HostFacts::gather()).map_err(usage)?;
    let catalog = load_catalog(&cfg.run.selection)?;
    catalog.select(&cfg.run.selection.suites).map_err(usage)?;
    let runtime = runtime()?;
    let listener = runtime
        .block_on(serve::bind(listen))
        .map_err(|e| usage(format!("--listen {listen}: {e}")))?;
    let suites = cfg.run.selection.suites.clone();
    let log: serve::LogFn = Arc::new(|line| {
        // A log line that cannot be written (closed stdout) is dropped; the endpoints still answer.
        let _ = print(&(line + "\n"));
    });
    runtime.block_on(serve::serve(
        serve::ServeConfig {
            interval,
            jitter,
            report,
            allowed_hosts,
        },
        listener,
        Arc::new(cfg),
        Arc::new(catalog),
        suites,
        log,
    ));
    Ok(exit::OK)
}
