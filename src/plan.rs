//! Suite expansion: render every selected flow's templates for this context and cloud, and
//! decide per flow whether it is probed, skipped for missing context, or not testable.

use crate::model::context::WorkspaceContext;
use crate::model::facts::{Fact, FactValue};
use crate::model::proxy::ProxySettings;
use crate::model::suite::HttpCheck;
use crate::model::suite::{Catalog, Expectation, FlowSpec, Protocol, Suite};
use crate::model::template::{self, Lookup, TemplateError};
use crate::model::values;
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
    /// Not probed: a fact the flow depends on (`when`) does not hold here.
    NotApplicable {
        /// The fact.
        fact: Fact,
        /// Its value and basis.
        value: FactValue,
    },
}

/// A flow ready for execution.
#[derive(Debug, Clone)]
pub struct PlannedFlow {
    /// Suite name.
    pub suite: String,
    /// The flow as written.
    pub spec: FlowSpec,
    /// Whether a blocked flow fails the run here: `required` as written, unless the flow is
    /// optional in this cloud (`optional_in`) or does not apply (`when`).
    pub required: bool,
    /// The service tag for this context: its `{region}`-style suffix rendered, or dropped
    /// (the tag without a region is valid too) when that region is unknown.
    pub service_tag: String,
    /// Why the flow is optional or not applicable here, when it is.
    pub applicability: Option<String>,
    /// What to do with it.
    pub plan: FlowPlan,
}

/// The selected suites that run here: every suite the user named, and of the others those
/// whose facts (`when`) hold.
pub fn applicable<'a>(chosen: &[&'a Suite], named: bool, ctx: &WorkspaceContext) -> Vec<&'a Suite> {
    chosen
        .iter()
        .filter(|s| named || s.meta.when.iter().all(|f| ctx.fact(*f).holds))
        .copied()
        .collect()
}

/// `template` for this context; a service tag whose regional suffix cannot be rendered loses
/// the suffix (`Storage.{storage_region}` → `Storage`), which NSGs and Azure Firewall accept too.
fn service_tag(template: &str, lookup: &dyn Fn(&str) -> Lookup) -> String {
    template::render(template, lookup).unwrap_or_else(|_| {
        let base = template.split(".{").next().unwrap_or(template);
        template::render(base, lookup).unwrap_or_else(|_| base.to_string())
    })
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
        .map(|(suite, spec)| {
            let plan = plan_flow(spec, ctx, routing, &lookup);
            let optional_here = spec.optional_in.contains(&ctx.cloud);
            let applicability = match &plan {
                FlowPlan::NotApplicable { fact, value } => {
                    Some(format!("applies only when {} (here: {})", fact.describe(), value.basis))
                }
                _ if spec.required && optional_here => Some(format!(
                    "optional in the {} cloud: no source settles it there (see its source)",
                    ctx.cloud.as_str()
                )),
                _ => None,
            };
            PlannedFlow {
                suite: suite.meta.name.clone(),
                required: spec.required && !optional_here && !matches!(plan, FlowPlan::NotApplicable { .. }),
                service_tag: service_tag(&spec.service_tag, &lookup),
                applicability,
                spec: spec.clone(),
                plan,
            }
        })
        .collect()
}

fn plan_flow(spec: &FlowSpec, ctx: &WorkspaceContext, routing: &Routing, lookup: &dyn Fn(&str) -> Lookup) -> FlowPlan {
    if let Some(why) = &spec.not_testable {
        return FlowPlan::NotTestable { why: why.clone() };
    }
    if let Some((fact, value)) = spec.when.iter().map(|f| (*f, ctx.fact(*f))).find(|(_, v)| !v.holds) {
        return FlowPlan::NotApplicable { fact, value };
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
        let mut flags: Vec<&'static str> = values::variables()
            .filter(|v| missing.iter().any(|m| m == v.name))
            .map(|v| v.given_by)
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
    use crate::model::facts::{Fact, FactValue};

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
                    FlowPlan::NotApplicable { .. } => {}
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

    const CONDITIONAL: &str = r#"
[suite]
name = "cond"
title = "Conditional flows"
default = false
when = ["aks_node"]

[[flow]]
id = "cond.language_server"
title = "Language server, only with a workspace private endpoint"
direction = "outbound"
service_tag = "AzureMachineLearning"
required = true
scenario = "s"
source = "s"
hosts = ["{compute_instance}.{region}.{instances_domain}", "{compute_instance}.{region}.{instances_domain_alt}"]
hosts_match = "any"
ports = [18881]
when = ["workspace_private_endpoint"]
optional_in = ["china"]

[[flow]]
id = "cond.registry_data"
title = "Registry data endpoint"
direction = "outbound"
service_tag = "AzureContainerRegistry.{container_registry_region}"
required = true
scenario = "s"
source = "s"
hosts = ["{container_registry}.{container_registry_region}.data.{acr_suffix}"]
ports = [443]
when = ["registry_data_endpoint"]
"#;

    fn conditional() -> Catalog {
        let mut catalog = Catalog::builtin().unwrap();
        catalog.add_suite("cond.toml", "cond.toml", CONDITIONAL).unwrap();
        catalog
    }

    fn planned<'a>(flows: &'a [PlannedFlow], id: &str) -> &'a PlannedFlow {
        flows.iter().find(|f| f.spec.id == id).unwrap()
    }

    #[test]
    fn a_flow_whose_fact_does_not_hold_is_not_applicable_and_not_required() {
        let catalog = conditional();
        let suites = catalog.select(&["cond".to_string()]).unwrap();
        let mut ctx = full_context(Cloud::Public);
        let flows = expand(&catalog, &suites, &ctx, &Routing::default());
        let f = planned(&flows, "cond.language_server");
        assert!(
            matches!(f.plan, FlowPlan::Probe { .. }) && f.required,
            "assumed private"
        );
        ctx.public_resources.insert(Resource::Workspace);
        let flows = expand(&catalog, &suites, &ctx, &Routing::default());
        let f = planned(&flows, "cond.language_server");
        assert!(
            matches!(
                f.plan,
                FlowPlan::NotApplicable {
                    fact: Fact::WorkspacePrivateEndpoint,
                    ..
                }
            ),
            "{:?}",
            f.plan
        );
        assert!(!f.required);
        assert!(
            f.applicability
                .as_deref()
                .unwrap()
                .contains("the workspace has a private endpoint"),
            "{:?}",
            f.applicability
        );
        // A fact a source told wins over what the context implies.
        ctx.facts.insert(
            Fact::WorkspacePrivateEndpoint,
            FactValue::known(true, crate::model::context::ValueSource::FlagOrEnv, "--assume"),
        );
        let flows = expand(&catalog, &suites, &ctx, &Routing::default());
        assert!(matches!(
            planned(&flows, "cond.language_server").plan,
            FlowPlan::Probe { .. }
        ));
        ctx.public_resources.insert(Resource::ContainerRegistry);
        let flows = expand(&catalog, &suites, &ctx, &Routing::default());
        assert!(matches!(
            planned(&flows, "cond.registry_data").plan,
            FlowPlan::NotApplicable {
                fact: Fact::RegistryDataEndpoint,
                ..
            }
        ));
    }

    #[test]
    fn a_flow_can_be_optional_in_one_cloud() {
        let catalog = conditional();
        let suites = catalog.select(&["cond".to_string()]).unwrap();
        let required = |cloud| {
            let flows = expand(&catalog, &suites, &full_context(cloud), &Routing::default());
            let f = planned(&flows, "cond.language_server");
            (f.required, f.applicability.is_some())
        };
        assert_eq!(required(Cloud::Public), (true, false));
        assert_eq!(required(Cloud::China), (false, true));
    }

    #[test]
    fn alternatives_render_both_documented_forms_unless_one_is_given() {
        let catalog = conditional();
        let suites = catalog.select(&["cond".to_string()]).unwrap();
        let hosts = |ctx: &WorkspaceContext| {
            let flows = expand(&catalog, &suites, ctx, &Routing::default());
            match &planned(&flows, "cond.language_server").plan {
                FlowPlan::Probe { targets, .. } => targets.iter().map(|t| t.host.clone()).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        };
        let mut ctx = full_context(Cloud::Public);
        assert_eq!(
            hosts(&ctx),
            [
                "ci-alice.eastus.instances.ml.azure.ms",
                "ci-alice.eastus.instances.azureml.ms"
            ]
        );
        ctx.instances_domain = Some("instances.example.net".into());
        assert_eq!(
            hosts(&ctx),
            ["ci-alice.eastus.instances.example.net"],
            "one override, one host"
        );
    }

    #[test]
    fn service_tags_carry_the_resource_region_or_none() {
        let catalog = conditional();
        let suites = catalog.select(&["cond".to_string()]).unwrap();
        let tag = |ctx: &WorkspaceContext| {
            let flows = expand(&catalog, &suites, ctx, &Routing::default());
            planned(&flows, "cond.registry_data").service_tag.clone()
        };
        let mut ctx = full_context(Cloud::Public);
        assert_eq!(tag(&ctx), "AzureContainerRegistry.eastus");
        ctx.container_registry_region = Some("westeurope".into());
        assert_eq!(tag(&ctx), "AzureContainerRegistry.westeurope");
        let unknown = WorkspaceContext::default();
        assert_eq!(
            tag(&unknown),
            "AzureContainerRegistry",
            "no region: the tag without one"
        );
    }

    #[test]
    fn a_suite_with_facts_runs_unnamed_only_when_they_hold() {
        let catalog = conditional();
        let all = catalog.select(&[]).unwrap();
        let mut ctx = full_context(Cloud::Public);
        let names = |v: Vec<&Suite>| v.iter().map(|s| s.meta.name.clone()).collect::<Vec<_>>();
        assert!(!names(applicable(&all, false, &ctx)).contains(&"cond".to_string()));
        assert!(!names(applicable(&all, false, &ctx)).contains(&"aks".to_string()));
        ctx.facts.insert(
            Fact::AksNode,
            FactValue::known(true, crate::model::context::ValueSource::Imds, "tags"),
        );
        let on_aks = names(applicable(&all, false, &ctx));
        assert!(
            on_aks.contains(&"cond".to_string()) && on_aks.contains(&"aks".to_string()),
            "{on_aks:?}"
        );
        let named = catalog.select(&["cond".to_string()]).unwrap();
        assert_eq!(names(applicable(&named, true, &WorkspaceContext::default())), ["cond"]);
    }
}
