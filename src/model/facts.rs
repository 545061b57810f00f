//! Facts about this deployment that decide whether a flow applies at all: a suite or a flow
//! names them in `when`, so conditional requirements stay data (docs/suite-format.md). Each
//! fact is known from a source (ARM, IMDS, `--assume`) or else assumed from the rest of the
//! context, and the report says which.

use crate::model::context::{Resource, ValueSource, WorkspaceContext};
use serde::{Deserialize, Serialize};

/// A fact a suite or flow can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The workspace has a private endpoint (in this VNet or one it resolves through).
    WorkspacePrivateEndpoint,
    /// The workspace's container registry serves layers from its own data endpoint
    /// (`<registry>.<region>.data.azurecr.io`): it has a private endpoint or dedicated data
    /// endpoints. Otherwise that name does not exist and layers come from storage.
    RegistryDataEndpoint,
    /// This machine is an AKS node.
    AksNode,
}

impl Fact {
    /// Every fact, in documentation order.
    pub const ALL: [Fact; 3] = [
        Fact::WorkspacePrivateEndpoint,
        Fact::RegistryDataEndpoint,
        Fact::AksNode,
    ];

    /// The snake_case name used in suites, `--assume` and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Fact::WorkspacePrivateEndpoint => "workspace_private_endpoint",
            Fact::RegistryDataEndpoint => "registry_data_endpoint",
            Fact::AksNode => "aks_node",
        }
    }

    /// What the fact says, for messages: "applies only when <this>".
    pub fn describe(self) -> &'static str {
        match self {
            Fact::WorkspacePrivateEndpoint => "the workspace has a private endpoint",
            Fact::RegistryDataEndpoint => {
                "the container registry has a data endpoint (a private endpoint or dedicated data endpoints)"
            }
            Fact::AksNode => "this machine is an AKS node",
        }
    }

    /// The fact named `name`, if any.
    pub fn parse(name: &str) -> Option<Fact> {
        Fact::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fact's value and why amlprobe holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FactValue {
    /// Whether the fact holds.
    pub holds: bool,
    /// Where the value came from; `default` when it is assumed from the rest of the context.
    pub source: ValueSource,
    /// Why, in a few words ("ARM: registry myacr has dataEndpointEnabled").
    pub basis: String,
}

impl FactValue {
    /// A value a source told.
    pub fn known(holds: bool, source: ValueSource, basis: impl Into<String>) -> FactValue {
        FactValue {
            holds,
            source,
            basis: basis.into(),
        }
    }
}

/// What amlprobe assumes when no source told the fact: a resource that is not a
/// `--public-resource` is on a private endpoint (the premise of every `expect = "private"`
/// flow), and a registry on a private endpoint has its data endpoint; nothing says this is an
/// AKS node (the Kubernetes manifests name the `aks` suite).
pub fn assumed(fact: Fact, ctx: &WorkspaceContext) -> FactValue {
    let private = |r: Resource, flag: &str| {
        let public = ctx.public_resources.contains(&r);
        let basis = if public {
            format!("assumed no: {flag} is reached over its public endpoint")
        } else {
            format!("assumed: {flag} is not a --public-resource, so it is on a private endpoint")
        };
        FactValue::known(!public, ValueSource::Default, basis)
    };
    match fact {
        Fact::WorkspacePrivateEndpoint => private(Resource::Workspace, "the workspace"),
        Fact::RegistryDataEndpoint => private(Resource::ContainerRegistry, "the container registry"),
        Fact::AksNode => FactValue::known(
            false,
            ValueSource::Default,
            "not known to be an AKS node (the AKS manifests run --suite aks)",
        ),
    }
}

/// Parses one `--assume` value: `FACT`, `FACT=yes` or `FACT=no`.
pub fn parse_assumption(value: &str) -> Result<(Fact, bool), String> {
    let (name, holds) = match value.trim().split_once('=') {
        None => (value.trim(), true),
        Some((name, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => (name.trim(), true),
            "no" | "false" => (name.trim(), false),
            _ => {
                return Err(format!(
                    "'{}' is not FACT, FACT=yes or FACT=no",
                    crate::sanitize::echo(value)
                ));
            }
        },
    };
    let fact = Fact::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Fact::ALL.iter().map(|f| f.as_str()).collect();
        format!(
            "'{}' is not a fact (known: {})",
            crate::sanitize::echo(name),
            known.join(", ")
        )
    })?;
    Ok((fact, holds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_assumed_private_unless_public() {
        let mut ctx = WorkspaceContext::default();
        for fact in [Fact::WorkspacePrivateEndpoint, Fact::RegistryDataEndpoint] {
            assert!(assumed(fact, &ctx).holds, "{fact}");
        }
        ctx.public_resources.insert(Resource::ContainerRegistry);
        let v = assumed(Fact::RegistryDataEndpoint, &ctx);
        assert!(!v.holds && v.basis.contains("public endpoint"), "{v:?}");
        assert!(assumed(Fact::WorkspacePrivateEndpoint, &ctx).holds);
        assert!(!assumed(Fact::AksNode, &ctx).holds);
    }

    #[test]
    fn assumptions_parse_or_name_the_facts() {
        assert_eq!(parse_assumption("aks_node").unwrap(), (Fact::AksNode, true));
        assert_eq!(
            parse_assumption("registry_data_endpoint=no").unwrap(),
            (Fact::RegistryDataEndpoint, false)
        );
        let e = parse_assumption("aks=yes").unwrap_err();
        assert!(
            e.contains("known: workspace_private_endpoint, registry_data_endpoint, aks_node"),
            "{e}"
        );
        assert!(parse_assumption("aks_node=maybe").is_err());
    }
}
