//! `amlprobe suites`: what each suite would probe for the given context, without probing.

use crate::model::context::WorkspaceContext;
use crate::model::suite::{HostsMatch, Suite};
use crate::plan::{App, FlowPlan, PlannedFlow, Route};
use crate::report::schema::{ListedCheck, ListedFlow, ListedPlan, ListedSuite, ListedTarget, SuitesListing};
use crate::sanitize::terminal;
use std::fmt::Write;

/// One suite and its expanded flows.
#[derive(Debug)]
pub struct SuiteListing<'a> {
    /// Suite name.
    pub name: &'a str,
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: &'a str,
    /// `built-in` or a file path.
    pub origin: &'a str,
    /// Flows applying to the context's cloud.
    pub flows: Vec<&'a PlannedFlow>,
}

/// Groups planned flows under their suites.
pub fn build<'a>(suites: &[&'a Suite], flows: &'a [PlannedFlow]) -> Vec<SuiteListing<'a>> {
    suites
        .iter()
        .map(|s| SuiteListing {
            name: &s.meta.name,
            title: &s.meta.title,
            description: &s.meta.description,
            origin: &s.origin,
            flows: flows.iter().filter(|f| f.suite == s.meta.name).collect(),
        })
        .collect()
}

/// JSON form: the [`SuitesListing`] contract (docs/suites.schema.json).
pub fn to_json(context: &WorkspaceContext, listing: &[SuiteListing]) -> String {
    let doc = SuitesListing {
        context: context.clone(),
        suites: listing
            .iter()
            .map(|s| ListedSuite {
                name: s.name.to_string(),
                title: s.title.to_string(),
                description: s.description.to_string(),
                origin: s.origin.to_string(),
                flows: s.flows.iter().map(|f| listed(f)).collect(),
            })
            .collect(),
    };
    crate::sanitize::json(&doc)
}

fn listed(flow: &PlannedFlow) -> ListedFlow {
    let plan = match &flow.plan {
        FlowPlan::Probe {
            targets,
            private_dns_zone,
        } => ListedPlan::Probe {
            targets: targets
                .iter()
                .map(|t| ListedTarget {
                    host: t.host.clone(),
                    expect: t.expect,
                    resolve: t.resolve,
                    checks: t
                        .checks
                        .iter()
                        .map(|c| ListedCheck {
                            port: c.port,
                            protocol: c.protocol,
                            app: c.app.as_str().to_string(),
                            http: c.http,
                            route: c.route,
                        })
                        .collect(),
                })
                .collect(),
            private_dns_zone: private_dns_zone.clone(),
        },
        FlowPlan::MissingContext { flags } => ListedPlan::MissingContext {
            flags: flags.iter().map(|f| (*f).to_string()).collect(),
        },
        FlowPlan::NotTestable { why } => ListedPlan::NotTestable { why: why.clone() },
        FlowPlan::NotApplicable { fact, value } => ListedPlan::NotApplicable {
            fact: *fact,
            basis: value.basis.clone(),
        },
    };
    ListedFlow {
        suite: flow.suite.clone(),
        spec: flow.spec.clone(),
        required: flow.required,
        service_tag: flow.service_tag.clone(),
        applicability: flow.applicability.clone(),
        plan,
    }
}

/// Text form.
pub fn to_text(listing: &[SuiteListing]) -> String {
    let mut out = String::new();
    for suite in listing {
        let _ = writeln!(
            out,
            "{} — {} ({})",
            terminal(suite.name),
            terminal(suite.title),
            terminal(suite.origin)
        );
        for f in &suite.flows {
            let s = &f.spec;
            let need = if f.required { "required" } else { "optional" };
            let any = if s.hosts_match == HostsMatch::Any {
                ", any one host"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<34} {} ({}, {}, {need}{any})",
                s.id,
                terminal(&s.title),
                s.direction.as_str(),
                terminal(&f.service_tag)
            );
            if let Some(why) = &f.applicability {
                let _ = writeln!(out, "      {}", terminal(why));
            }
            match &f.plan {
                FlowPlan::Probe { targets, .. } => {
                    for t in targets {
                        let checks: Vec<String> = t
                            .checks
                            .iter()
                            .map(|c| {
                                let app = match c.app {
                                    App::None => "",
                                    App::Tls => "+tls",
                                    App::Http => "+http",
                                    App::Smb => "+smb",
                                };
                                let via = if c.route == Route::Proxy { " via proxy" } else { "" };
                                format!("{}/{}{app}{via}", c.protocol.as_str(), c.port)
                            })
                            .collect();
                        let expect = t.expect.as_str();
                        let _ = writeln!(
                            out,
                            "      probe {} dns(expect {expect}) {}",
                            terminal(&t.host),
                            checks.join(" ")
                        );
                    }
                }
                FlowPlan::MissingContext { flags } => {
                    let _ = writeln!(out, "      skipped: needs {}", flags.join(", "));
                }
                FlowPlan::NotTestable { why } => {
                    let _ = writeln!(out, "      not testable: {}", terminal(why));
                }
                FlowPlan::NotApplicable { .. } => {
                    let _ = writeln!(out, "      skipped: not applicable");
                }
            }
            if let Some(w) = &s.representative_of {
                let _ = writeln!(out, "      (stands for {})", terminal(w));
            }
        }
        out.push('\n');
    }
    out
}
