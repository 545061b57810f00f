//! The front end: parse, validate, plan, execute, assess, render, exit. The only module that
//! writes to stdout or stderr.

use crate::cli::{Cli, Command, Format, RunArgs, SuitesArgs};
use crate::config::{self, RunConfig, Selection};
use crate::context::WorkspaceContext;
use crate::engine::Engine;
use crate::imds::{self, ImdsInfo};
use crate::netaddr::PrivateRanges;
use crate::report::{self, HostInfo, Report, Settings, Summary, Tool, exit};
use crate::suite::Catalog;
use crate::suite::Expectation;
use crate::{hostinfo, plan, progress, resolvers, sysdns, verdict};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

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

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Suites(args) => suites(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("amlprobe: {}", f.message);
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
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`amlprobe run | head`) is the reader's choice, not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: exit::INTERNAL,
            message: format!("writing output: {e}"),
        }),
        _ => Ok(()),
    }
}

fn suites(args: SuitesArgs) -> Result<u8, Failure> {
    let selection = config::suites_selection(args.context).map_err(usage)?;
    let catalog = load_catalog(&selection)?;
    let chosen = catalog.select(&selection.suites).map_err(usage)?;
    let flows = plan::expand(&catalog, &chosen, &selection.context, &plan::Routing::default());
    let listing = report::listing::build(&chosen, &flows);
    print(&match args.format {
        Format::Json => report::listing::to_json(&selection.context, &listing) + "\n",
        Format::Table => report::listing::to_text(&listing),
    })?;
    Ok(exit::OK)
}

/// Every name the run resolved, private if any flow needs it private.
fn resolved_names(flows: &[plan::PlannedFlow]) -> Vec<(String, Expectation)> {
    let mut names: std::collections::BTreeMap<String, Expectation> = std::collections::BTreeMap::new();
    for flow in flows {
        if let plan::FlowPlan::Probe { targets, .. } = &flow.plan {
            for t in targets.iter().filter(|t| t.resolve) {
                let e = names.entry(t.host.clone()).or_insert(t.expect);
                if t.expect == Expectation::Private {
                    *e = Expectation::Private;
                }
            }
        }
    }
    names.into_iter().collect()
}

/// IMDS fills in the region and cloud the user left out.
fn apply_imds_defaults(ctx: &mut WorkspaceContext, info: &ImdsInfo) {
    if ctx.region.is_none() && !info.location.is_empty() {
        ctx.region = Some(info.location.clone());
        ctx.sources.insert("region".into(), "imds".into());
    }
    if let Some(cloud) = info
        .cloud()
        .filter(|_| ctx.sources.get("cloud").is_some_and(|s| s == "default"))
    {
        ctx.cloud = cloud;
        ctx.sources.insert("cloud".into(), "imds".into());
    }
}

fn run(args: RunArgs) -> Result<u8, Failure> {
    let started = Instant::now();
    let started_at = hostinfo::now_rfc3339();
    let mut cfg = RunConfig::from_args(args).map_err(usage)?;
    let catalog = load_catalog(&cfg.selection)?;
    let chosen = catalog.select(&cfg.selection.suites).map_err(usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: exit::INTERNAL,
            message: format!("cannot start the runtime: {e}"),
        })?;
    // Instance metadata comes first: its region and cloud change how suites expand.
    let imds_deadline = cfg.engine.timeout.min(Duration::from_secs(1));
    let (imds, imds_error) = match &cfg.imds {
        None => (None, None),
        Some(endpoint) => match runtime.block_on(imds::fetch(endpoint, imds_deadline)) {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        },
    };
    if let Some(info) = &imds {
        apply_imds_defaults(&mut cfg.selection.context, info);
    }
    let flows = plan::expand(&catalog, &chosen, &cfg.selection.context, &cfg.routing);
    let engine = {
        // hickory's resolver needs a runtime context to be built.
        let _guard = runtime.enter();
        Engine::new(cfg.engine.clone()).map_err(usage)?
    };
    let (progress, bar) = progress::bar(!cfg.quiet);
    let observed = runtime.block_on(engine.execute(&flows, progress));
    bar.finish_and_clear();
    let ranges = PrivateRanges::with_extra(&cfg.private_cidrs);
    let resolver_comparison = if cfg.compare_resolvers.is_empty() {
        None
    } else {
        let names = resolved_names(&flows);
        let compared = runtime.block_on(resolvers::compare(
            names,
            &cfg.compare_resolvers,
            cfg.engine.timeout,
            cfg.engine.concurrency,
            &ranges,
        ));
        Some(compared.map_err(usage)?)
    };
    let probed: Vec<&str> = observed.dns.keys().map(String::as_str).collect();
    let (resolver, hosts_file) = sysdns::read(&probed);
    let judgement = verdict::Judgement {
        ranges: &ranges,
        expected: &cfg.expected_ips,
        hints: &catalog.hints,
        hosts_file: &hosts_file,
    };
    let flow_reports = verdict::assess(&flows, &observed, &judgement);
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        host: HostInfo {
            hostname: hostinfo::hostname(),
            os: hostinfo::os_name(),
            nameservers: engine.nameservers().to_vec(),
            resolver,
            imds,
            imds_error,
        },
        context: cfg.selection.context.clone(),
        settings: Settings {
            suites: chosen.iter().map(|s| s.meta.name.clone()).collect(),
            timeout_ms: cfg.engine.timeout.as_millis() as u64,
            concurrency: cfg.engine.concurrency,
            dns_server: cfg.engine.dns_server.map(|s| s.to_string()),
            ca_files: cfg.engine.ca_files.iter().map(|p| p.display().to_string()).collect(),
            private_cidrs: cfg.private_cidrs.iter().map(ToString::to_string).collect(),
            strict: cfg.strict,
        },
        summary: Summary::of(&flow_reports),
        flows: flow_reports,
        resolver_comparison,
    };
    if let Some(path) = &cfg.report {
        std::fs::write(path, report.to_json() + "\n")
            .map_err(|e| usage(format!("--report {}: {e}", path.display())))?;
    }
    let color =
        cfg.color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal();
    print(&match (cfg.quiet, cfg.format) {
        (true, _) => report::table::summary_line(&report) + "\n",
        (false, Format::Json) => report.to_json() + "\n",
        (false, Format::Table) => report::table::render(&report, color),
    })?;
    Ok(report.exit_code())
}
