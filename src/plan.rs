//! Suite expansion: render every selected flow's templates for this context and cloud, and
//! decide per flow whether it is probed, skipped for missing context, or not testable.

use crate::model::context::{CONTEXT_VARIABLES, WorkspaceContext};
use crate::model::proxy::ProxySettings;
use crate::model::suite::HttpCheck;
use crate::model::suite::{Catalog, Expectation, FlowSpec, Protocol, Suite};
use crate::model::template::{self, Lookup, TemplateError};
use serde::Serialize;
use std::collections::BTreeSet;

/// The application protocol spoken after the connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum App {
    /// Connect only.
    None,
    /// TLS handshake, then an HTTP request unless the flow says `http = "none"`.
    Tls,
    /// Plain HTTP request.
    Http,
    /// SMB2 negotiation.
    Smb,
}

impl App {
    /// The lowercase name as `amlprobe suites --format json` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            App::None => "none",
            App::Tls => "tls",
            App::Http => "http",
            App::Smb => "smb",
        }
    }
}

/// How traffic reaches the target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Straight to the resolved addresses.
    Direct,
    /// Through the configured HTTP proxy.
    Proxy,
}

impl Route {
    /// The lowercase name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Proxy => "proxy",
        }
    }
}

/// One connection-level check on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Check {
    /// Destination port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// What is spoken after the connect.
    pub app: App,
    /// What the HTTP answer must look like.
    pub http: HttpCheck,
    /// Direct or through the proxy.
    pub route: Route,
}

/// A concrete host with what to check on it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Rendered host name.
    pub host: String,
    /// Required shape of its DNS answer (after `--public-resource` relaxations).
    pub expect: Expectation,
    /// Whether to resolve the name here: not needed when every check goes through the proxy
    /// (the proxy resolves it) and no private answer is required.
    pub resolve: bool,
    /// Port checks; empty for DNS-only flows.
    pub checks: Vec<Check>,
    /// The ports whose checks go through the proxy, so [`Target::real_route`] is a lookup and a
    /// flow with thousands of ports is judged in linear time.
    proxied: BTreeSet<(u16, Protocol)>,
}

impl Target {
    /// A target with `checks`; it is resolved here unless every check goes through the proxy
    /// and no private answer is required.
    pub fn new(host: String, expect: Expectation, checks: Vec<Check>) -> Target {
        let resolve =
            expect == Expectation::Private || checks.is_empty() || checks.iter().any(|c| c.route == Route::Direct);
        let proxied = checks
            .iter()
            .filter(|c| c.route == Route::Proxy)
            .map(|c| (c.port, c.protocol))
            .collect();
        Target {
            host,
            expect,
            resolve,
            checks,
            proxied,
        }
    }

    /// The path real clients take to `port`: the proxy for the port's scheme when one applies
    /// (the plan then has a proxied check for it), else direct. A direct check of a proxied
    /// port exists only for `--compare-direct` and never stands in for the real path.
    pub fn real_route(&self, port: u16, protocol: Protocol) -> Route {
        if self.proxied.contains(&(port, protocol)) {
            Route::Proxy
        } else {
            Route::Direct
        }
    }

    /// Whether `check` is on the real path of its port.
    pub fn is_real(&self, check: Check) -> bool {
        check.route == self.real_route(check.port, check.protocol)
    }

    /// Whether the local DNS answer matters for the verdict: a private answer is required, the
    /// flow is DNS-only, or some port's real path connects to the resolved addresses. Behind a
    /// proxy the proxy resolves the name itself.
    pub fn dns_counts(&self) -> bool {
        self.expect == Expectation::Private
            || self.checks.is_empty()
            || self.checks.iter().any(|c| c.route == Route::Direct && self.is_real(*c))
    }
}

/// How the run reaches targets.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Proxies in force.
    pub proxies: ProxySettings,
    /// Also probe the direct path of proxied targets.
    pub compare_direct: bool,
}

/// What will happen to a flow.
#[derive(Debug, Clone)]
pub enum FlowPlan {
    /// Probe these targets.
    Probe {
        /// Concrete targets.
        targets: Vec<Target>,
        /// Rendered private DNS zone, for hints.
        private_dns_zone: Option<String>,
    },
    /// Not probed: these flags would enable it.
    MissingContext {
        /// Flags to pass.
        flags: Vec<&'static str>,
    },
    /// Never probed, for this reason.
    NotTestable {
        /// Explanation.
        why: String,
    },
}

/// A flow ready for execution.
#[derive(Debug, Clone)]
pub struct PlannedFlow {
    /// Suite name.
    pub suite: String,
    /// The flow as written.
    pub spec: FlowSpec,
    /// What to do with it.
    pub plan: FlowPlan,
}

/// Every selected flow that applies to the context's cloud, in suite order.
pub fn expand(catalog: &Catalog, suites: &[&Suite], ctx: &WorkspaceContext, routing: &Routing) -> Vec<PlannedFlow> {
    let cloud_values = catalog.clouds.get(&ctx.cloud);
    let lookup = |name: &str| match ctx.variable(name) {
        Ok(Some(v)) => Lookup::Value(v),
        Ok(None) => Lookup::Missing,
        Err(()) => cloud_values
            .and_then(|c| c.get(name))
            .map_or(Lookup::Unknown, |v| Lookup::Value(v.clone())),
    };
    suites
        .iter()
        .flat_map(|suite| suite.flows.iter().map(move |f| (suite, f)))
        .filter(|(_, f)| f.applies_to(ctx.cloud))
        .map(|(suite, spec)| PlannedFlow {
            suite: suite.meta.name.clone(),
            spec: spec.clone(),
            plan: plan_flow(spec, ctx, routing, &lookup),
        })
        .collect()
}

fn plan_flow(spec: &FlowSpec, ctx: &WorkspaceContext, routing: &Routing, lookup: &dyn Fn(&str) -> Lookup) -> FlowPlan {
    if let Some(why) = &spec.not_testable {
        return FlowPlan::NotTestable { why: why.clone() };
    }
    let mut hosts = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for t in &spec.hosts {
        match template::render(t, lookup) {
            Ok(h) => hosts.push(h.to_ascii_lowercase()),
            Err(errors) => missing.extend(errors.into_iter().filter_map(|e| match e {
                TemplateError::Missing(v) => Some(v),
                // Catalog validation already rejected unknown and malformed templates.
                TemplateError::Unknown(_) | TemplateError::Malformed(_) => None,
            })),
        }
    }
    if !missing.is_empty() {
        let mut flags: Vec<&'static str> = CONTEXT_VARIABLES
            .iter()
            .filter(|(v, _)| missing.iter().any(|m| m == v))
            .map(|(_, flag)| *flag)
            .collect();
        flags.dedup();
        return FlowPlan::MissingContext { flags };
    }
    let relaxed = spec.resource.is_some_and(|r| ctx.public_resources.contains(&r));
    let expect = if relaxed { Expectation::Any } else { spec.expect };
    let set = |ports: Vec<u16>| ports.into_iter().collect::<BTreeSet<u16>>();
    let (tls, http, smb) = (set(spec.tls_ports()), set(spec.http_ports()), set(spec.smb_ports()));
    let app = |port: u16| {
        if tls.contains(&port) {
            App::Tls
        } else if http.contains(&port) {
            App::Http
        } else if smb.contains(&port) {
            App::Smb
        } else {
            App::None
        }
    };
    hosts.dedup();
    let target = |host: String| {
        let mut checks = Vec::new();
        for &port in &spec.ports {
            let app = app(port);
            let proxied = match app {
                App::Tls => routing.proxies.for_host(&host, true).is_some(),
                App::Http => routing.proxies.for_host(&host, false).is_some(),
                App::None | App::Smb => false,
            };
            let check = |route| Check {
                port,
                protocol: spec.protocol,
                app,
                http: spec.http,
                route,
            };
            if proxied {
                checks.push(check(Route::Proxy));
            }
            if !proxied || routing.compare_direct {
                checks.push(check(Route::Direct));
            }
        }
        Target::new(host, expect, checks)
    };
    FlowPlan::Probe {
        targets: hosts.into_iter().map(target).collect(),
        private_dns_zone: spec
            .private_dns_zone
            .as_ref()
            .and_then(|z| template::render(z, lookup).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::context::{Cloud, Resource};

    fn full_context(cloud: Cloud) -> WorkspaceContext {
        WorkspaceContext {
            cloud,
            region: Some("eastus".into()),
            workspace_id: Some("fb7e20a0-8891-458b-b969-55ddb3382f51".into()),
            workspace_name: Some("myws".into()),
            storage_account: Some("mystorage".into()),
            key_vault: Some("mykv".into()),
            container_registry: Some("myacr01".into()),
            compute_instance: Some("ci-alice".into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_builtin_flow_renders_for_every_cloud() {
        let catalog = Catalog::builtin().unwrap();
        // Every suite, including those that run only when named.
        let suites: Vec<&Suite> = catalog.suites.iter().collect();
        for cloud in Cloud::ALL {
            let flows = expand(&catalog, &suites, &full_context(cloud), &Routing::default());
            assert!(!flows.is_empty(), "{cloud:?}");
            for f in flows {
                match &f.plan {
                    FlowPlan::Probe { targets, .. } => {
                        for t in targets {
                            assert!(
                                !t.host.contains(['{', '}', ' ']) && t.host.contains('.'),
                                "{}: {}",
                                f.spec.id,
                                t.host
                            );
                        }
                    }
                    FlowPlan::NotTestable { why } => assert!(!why.trim().is_empty(), "{}", f.spec.id),
                    FlowPlan::MissingContext { flags } => panic!("{} lacks {flags:?} with a full context", f.spec.id),
                }
            }
        }
    }

    #[test]
    fn missing_context_names_the_flags() {
        let catalog = Catalog::builtin().unwrap();
        let suites = catalog.select(&[]).unwrap();
        let flows = expand(&catalog, &suites, &WorkspaceContext::default(), &Routing::default());
        let skipped: Vec<_> = flows
            .iter()
            .filter(|f| matches!(f.plan, FlowPlan::MissingContext { .. }))
            .collect();
        let probed = flows
            .iter()
            .filter(|f| matches!(f.plan, FlowPlan::Probe { .. }))
            .count();
        assert!(!skipped.is_empty() && probed > 0, "context-free flows are still probed");
        for f in skipped {
            let FlowPlan::MissingContext { flags } = &f.plan else {
                unreachable!()
            };
            assert!(flags.iter().all(|fl| fl.starts_with("--")), "{}: {flags:?}", f.spec.id);
        }
    }

    #[test]
    fn public_resource_relaxes_private_expectation() {
        let catalog = Catalog::builtin().unwrap();
        let suites = catalog.select(&[]).unwrap();
        let mut ctx = full_context(Cloud::Public);
        let storage_private = |flows: &[PlannedFlow]| {
            flows
                .iter()
                .filter(|f| f.spec.resource == Some(Resource::Storage))
                .any(|f| match &f.plan {
                    FlowPlan::Probe { targets, .. } => targets.iter().any(|t| t.expect == Expectation::Private),
                    _ => false,
                })
        };
        assert!(storage_private(&expand(&catalog, &suites, &ctx, &Routing::default())));
        ctx.public_resources.insert(Resource::Storage);
        assert!(!storage_private(&expand(&catalog, &suites, &ctx, &Routing::default())));
    }
}
