//! One probing run, from validated settings to a finished [`Report`]: instance metadata, suite
//! expansion, concurrent execution, resolver comparison and verdicts. Shared by `run`, `bundle`
//! and `serve`; it never prints.

use crate::cli::settings::{Output, RunSettings};
use crate::engine::probe::SetupError;
use crate::engine::{Engine, ProgressFn};
use crate::env::imds;
use crate::model::context::{self, ValueSource, WorkspaceContext};
use crate::model::duration::FlagDuration;
use crate::model::facts::{Fact, FactValue};
use crate::model::netaddr::PrivateRanges;
use crate::model::suite::{Catalog, Expectation, Suite};
use crate::report::schema::{FlowReport, ImdsInfo, RootCause};
use crate::report::{self, HostInfo, Report, Settings, Summary, Tool};
use crate::{attribution, discovery, engine, env::hostinfo, env::sysdns, plan, verdict, verdict::causes};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Every name the run resolved, private if any flow needs it private.
fn resolved_names(flows: &[plan::PlannedFlow]) -> Vec<(String, Expectation)> {
    let mut names: BTreeMap<String, Expectation> = BTreeMap::new();
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

/// IMDS tells this machine's region (not the workspace's: ARM does), whether it is an AKS
/// node, and the cloud when the user left it out. Its location can become part of every probed
/// name and DNS query, so it is validated like `--region` (and like ARM's): one that is not a
/// region name is ignored, with the returned line for `context.warnings`.
fn apply_imds_defaults(ctx: &mut WorkspaceContext, info: &ImdsInfo) -> Vec<String> {
    let mut notes = Vec::new();
    if !info.location.is_empty() {
        match context::validate_region(&info.location) {
            Ok(region) => {
                ctx.machine_region = Some(region);
                ctx.sources.insert("machine_region".into(), ValueSource::Imds);
            }
            Err(e) => notes.push(format!(
                "IMDS's location is not usable as the region, so it was ignored: {} (pass --region)",
                e.message
            )),
        }
    }
    if let Some(basis) = info.aks_node() {
        ctx.facts
            .entry(Fact::AksNode)
            .or_insert_with(|| FactValue::known(true, ValueSource::Imds, basis));
    }
    if let Some(cloud) = info
        .cloud()
        .filter(|_| ctx.sources.get("cloud") == Some(&ValueSource::Default))
    {
        ctx.cloud = cloud;
        ctx.sources.insert("cloud".into(), ValueSource::Imds);
    }
    notes
}

/// After the verdicts, never before: what Azure's configuration says about each cause, joined to
/// it within the run's budget. Returns the lines for `context.warnings`.
async fn attribute_causes(
    run: &RunSettings,
    access: Option<&discovery::ArmAccess>,
    causes: &mut [RootCause],
    flows: &[FlowReport],
) -> Vec<String> {
    let asked = attribution::questions(causes, flows);
    let Some(budget) = run.learning.attribution.filter(|_| !asked.is_empty()) else {
        return Vec::new();
    };
    let questions: Vec<attribution::Question> = asked.iter().map(|(_, q)| q.clone()).collect();
    let workspace = run.learning.discovery.as_ref();
    let outcome = match (access, workspace) {
        (Some(access), _) => {
            let target = attribution::Target {
                imds: run.learning.imds.as_ref(),
                workspace: workspace.map(|d| d.workspace.id.as_str()),
                subnet: None,
                azureml_compute: workspace.is_some_and(|d| d.from_azureml_env),
            };
            let limits = attribution::Limits {
                budget,
                ..attribution::Limits::default()
            };
            attribution::attribute(access, &target, &questions, &limits).await
        }
        (None, Some(_)) => attribution::without_access(&questions, "workspace discovery got none: see its warning"),
        (None, None) => {
            attribution::without_access(&questions, "name the workspace: config.json or --workspace-resource-id")
        }
    };
    attribution::join(causes, &asked, outcome.answers);
    outcome.warnings
}

/// Runs the `chosen` suites of `catalog` once and judges every flow.
///
/// Each call builds a fresh engine, so no DNS answer is cached from one run to the next.
pub async fn run_once(
    run: &RunSettings,
    catalog: &Catalog,
    chosen: &[&Suite],
    progress: ProgressFn,
) -> Result<Report, SetupError> {
    let started = Instant::now();
    let started_at = hostinfo::now_rfc3339();
    let mut context = run.selection.context.clone();
    // Instance metadata comes first: its region and cloud change how suites expand.
    let imds_deadline = run.engine.timeout.min(Duration::from_secs(1));
    let (imds, imds_error) = match &run.learning.imds {
        None => (None, None),
        Some(endpoint) => match imds::fetch(endpoint, imds_deadline).await {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        },
    };
    let imds_notes = imds
        .as_ref()
        .map(|info| apply_imds_defaults(&mut context, info))
        .unwrap_or_default();
    // ARM comes after IMDS, whose cloud picks the ARM endpoint, and before suites expand.
    let mut expected_ips = run.expected_ips.clone();
    let mut discovery_notes = run.learning.notes.clone();
    let mut arm_access = None;
    if let Some(settings) = &run.learning.discovery {
        discovery::note_origin(&mut context, settings);
        let env = |name: &str| {
            run.learning
                .environment
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let net = discovery::Network {
            imds: run.learning.imds.as_ref(),
            ca_files: &run.engine.ca_files,
            dns_server: run.engine.dns_server,
            proxies: &run.routing.proxies,
            env: &env,
        };
        match discovery::discover(settings, context.cloud, context.compute_instance.as_deref(), &net).await {
            Ok(mut found) => {
                arm_access = found.access.take();
                discovery_notes.extend(discovery::apply(&mut context, &mut expected_ips, found));
            }
            Err(why) => discovery_notes.push(format!("workspace discovery: {why}")),
        }
    }
    // The workspace's region comes from the flags or ARM; this machine's own region stands in
    // only when neither gave one, and the report says so (a hub jump box or an AKS cluster in
    // another region would probe names that do not exist).
    if context.region.is_none()
        && let Some(machine) = context.machine_region.clone()
    {
        discovery_notes.push(format!(
            "the workspace region is taken to be this machine's region ({machine}, from IMDS): nothing else named it; pass --region if the workspace is in another region"
        ));
        context.region = Some(machine);
        context.sources.insert("region".into(), ValueSource::Imds);
    }
    // The region may have come from IMDS or ARM just now, and the derived notebook label with it.
    context.warnings = context.notebook_label_warnings();
    context.warnings.extend(imds_notes);
    context.warnings.extend(discovery_notes);
    context.warnings.extend(run.routing.proxies.notes.iter().cloned());
    context.settle_facts();
    let chosen = plan::applicable(chosen, !run.selection.suites.is_empty(), &context);
    let flows = plan::expand(catalog, &chosen, &context, &run.routing);
    let engine = Engine::new(run.engine.clone(), run.routing.proxies.clone())?;
    let observed = engine.execute(&flows, progress).await;
    if observed.unfinished > 0 {
        context.warnings.push(format!(
            "the run reached its deadline ({}) with {} host(s) unfinished: their checks are not_observed",
            FlagDuration(engine::run_deadline(run.engine.timeout)),
            observed.unfinished
        ));
    }
    let ranges = PrivateRanges::with_extra(&run.private_cidrs);
    let resolver_comparison = if run.compare_resolvers.is_empty() {
        None
    } else {
        Some(verdict::resolvers::compare(
            engine::resolvers::lookup_everywhere(
                resolved_names(&flows),
                &run.compare_resolvers,
                run.engine.timeout,
                run.engine.dns_concurrency,
            )
            .await?,
            &ranges,
        ))
    };
    let probed: Vec<&str> = observed.dns.keys().map(String::as_str).collect();
    let (resolver, hosts_file) = sysdns::read(&probed);
    let resolver_label = match (run.engine.dns_server, engine.nameservers()) {
        (Some(server), _) => format!("{server} (--dns-server)"),
        (None, []) => "the system resolver".to_string(),
        (None, servers) => format!("{} ({})", servers.join(", "), engine::resolvers::SYSTEM_RESOLVERS),
    };
    let judgement = verdict::Judgement {
        ranges: &ranges,
        expected: &expected_ips,
        hints: &catalog.hints,
        hosts_file: &hosts_file,
        resolver: &resolver_label,
    };
    let mut flow_reports = verdict::assess(&flows, &observed, &judgement);
    let facts = causes::Facts {
        resolver: &resolver_label,
        hints: &catalog.hints,
        causes: &catalog.causes,
        comparison: resolver_comparison.as_deref(),
        ranges: &ranges,
    };
    let mut root_causes = causes::find(&flow_reports, &facts);
    causes::link(&mut flow_reports, &root_causes);
    let attribution_notes = attribute_causes(run, arm_access.as_ref(), &mut root_causes, &flow_reports).await;
    context.warnings.extend(attribution_notes);
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        host: HostInfo {
            hostname: run.host_name.clone().unwrap_or_else(hostinfo::hostname),
            os: hostinfo::os_name(),
            nameservers: engine.nameservers().to_vec(),
            dns_warnings: engine.dns_warnings(),
            resolver,
            imds,
            imds_error,
        },
        context,
        settings: Settings {
            suites: chosen.iter().map(|s| s.meta.name.clone()).collect(),
            timeout_ms: run.engine.timeout.as_millis() as u64,
            concurrency: run.engine.concurrency,
            dns_server: run.engine.dns_server.map(|s| s.to_string()),
            ca_files: run.engine.ca_files.iter().map(|p| p.display().to_string()).collect(),
            private_cidrs: run.private_cidrs.iter().map(ToString::to_string).collect(),
            strict: run.strict,
            proxy_source: run.routing.proxies.source.clone(),
        },
        summary: Summary::of(&flow_reports),
        root_causes,
        reasons: report::glossary(&flow_reports, &catalog.hints),
        flows: flow_reports,
        resolver_comparison,
    })
}

impl SaveError {
    /// A report that could not be written after a complete run is an I/O failure, not a usage
    /// error: the target was checked before probing.
    #[allow(clippy::unused_self, reason = "every error type answers exit_code() alike")]
    pub fn exit_code(&self) -> u8 {
        crate::model::exit::INTERNAL
    }
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} {path}: {source}")]
pub struct SaveError {
    /// `report` or `report-dir`.
    pub flag: &'static str,
    /// The path.
    pub path: String,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Writes the report where `--report` and `--report-dir` say.
pub fn save(report: &Report, output: &Output) -> Result<(), SaveError> {
    let json = report.to_json() + "\n";
    if let Some(path) = &output.report {
        // A page for a ticket when the name asks for one; the JSON contract otherwise.
        let html = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let page;
        let contents = if html {
            page = report::render::html::render(report);
            &page
        } else {
            &json
        };
        crate::files::write_text(path, contents).map_err(|source| SaveError {
            flag: "report",
            path: path.display().to_string(),
            source,
        })?;
    }
    if let Some((dir, keep)) = &output.report_dir {
        report::store::write_rotated(dir, &json, *keep).map_err(|source| SaveError {
            flag: "report-dir",
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile or broken IMDS must not put escapes or extra labels into every probed name.
    #[test]
    fn an_imds_location_that_is_not_a_region_is_ignored_with_a_warning() {
        for bad in [
            "eastus\u{1b}[2J",
            "eastus.evil.example",
            "east us",
            "eastus\r\nx",
            &"a".repeat(70_000),
        ] {
            let mut ctx = WorkspaceContext::default();
            let info = ImdsInfo {
                location: bad.to_string(),
                ..Default::default()
            };
            let notes = apply_imds_defaults(&mut ctx, &info);
            assert!(ctx.machine_region.is_none(), "{bad:?} became the region");
            assert!(!ctx.sources.contains_key("machine_region"));
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(
                notes[0].starts_with("IMDS's location is not usable as the region") && notes[0].len() < 300,
                "{notes:?}"
            );
            assert!(!notes[0].contains('\u{1b}') && !notes[0].contains('\r'), "{notes:?}");
        }
        let mut ctx = WorkspaceContext::default();
        let info = ImdsInfo {
            location: "westeurope".into(),
            ..Default::default()
        };
        assert!(apply_imds_defaults(&mut ctx, &info).is_empty());
        assert_eq!(ctx.machine_region.as_deref(), Some("westeurope"));
        assert_eq!(ctx.sources["machine_region"], ValueSource::Imds);
        assert!(ctx.region.is_none(), "the workspace's region is ARM's or the flags'");
    }
}
