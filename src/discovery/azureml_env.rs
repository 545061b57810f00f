//! The workspace an Azure ML compute instance or job names in its environment, tried when no flag
//! and no SDK `config.json` names one (sources in docs/discovery.md §4b):
//!
//! 1. `AZUREML_ARM_SUBSCRIPTION`, `AZUREML_ARM_RESOURCEGROUP`, `AZUREML_ARM_WORKSPACE_NAME`: Azure
//!    ML's own, set in jobs (Microsoft's job samples and SDKs read them there).
//! 2. `MLFLOW_TRACKING_URI` when it is an `azureml:` URI: Azure ML sets it on compute instances and
//!    in jobs, and it carries the workspace's ARM id. It comes second because it is MLflow's
//!    variable, which users also point at workspaces of their own choosing.
//!
//! `CI_RESOURCE_GROUP` and `CI_WORKSPACE` (compute instance) name no subscription, so they only
//! say what is missing. A variable that is set but unusable is one line, never an error.

use super::arm::WorkspaceRef;
use crate::sanitize::echo;

const SUBSCRIPTION: &str = "AZUREML_ARM_SUBSCRIPTION";
const RESOURCE_GROUP: &str = "AZUREML_ARM_RESOURCEGROUP";
const WORKSPACE_NAME: &str = "AZUREML_ARM_WORKSPACE_NAME";
const MLFLOW_TRACKING_URI: &str = "MLFLOW_TRACKING_URI";
const CI_RESOURCE_GROUP: &str = "CI_RESOURCE_GROUP";
const CI_WORKSPACE: &str = "CI_WORKSPACE";

/// The variables, as the environment gave them; blank counts as unset.
#[derive(Debug, Default, Clone)]
pub struct Variables {
    /// `AZUREML_ARM_SUBSCRIPTION`.
    pub subscription: Option<String>,
    /// `AZUREML_ARM_RESOURCEGROUP`.
    pub resource_group: Option<String>,
    /// `AZUREML_ARM_WORKSPACE_NAME`.
    pub workspace_name: Option<String>,
    /// `MLFLOW_TRACKING_URI`.
    pub mlflow_tracking_uri: Option<String>,
    /// `CI_RESOURCE_GROUP`.
    pub ci_resource_group: Option<String>,
    /// `CI_WORKSPACE`.
    pub ci_workspace: Option<String>,
}

impl Variables {
    /// Reads them through `env` (e.g. `std::env::var`).
    pub fn read(env: impl Fn(&str) -> Option<String>) -> Variables {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        Variables {
            subscription: get(SUBSCRIPTION),
            resource_group: get(RESOURCE_GROUP),
            workspace_name: get(WORKSPACE_NAME),
            mlflow_tracking_uri: get(MLFLOW_TRACKING_URI),
            ci_resource_group: get(CI_RESOURCE_GROUP),
            ci_workspace: get(CI_WORKSPACE),
        }
    }
}

/// The workspace the variables name (`None`: none does), and one line for `context.warnings`
/// per variable that is set but could not be used.
pub fn find(vars: &Variables) -> (Option<WorkspaceRef>, Vec<String>) {
    let mut notes = Vec::new();
    let found = from_arm_variables(vars, &mut notes).or_else(|| from_tracking_uri(vars, &mut notes));
    if found.is_none()
        && let (Some(group), Some(name)) = (&vars.ci_resource_group, &vars.ci_workspace)
    {
        notes.push(format!(
            "workspace discovery: {CI_WORKSPACE} and {CI_RESOURCE_GROUP} name workspace '{}' in resource group '{}', but nothing here names its subscription: pass --workspace-resource-id",
            echo(name),
            echo(group)
        ));
    }
    (found, notes)
}

fn from_arm_variables(vars: &Variables, notes: &mut Vec<String>) -> Option<WorkspaceRef> {
    let named = [
        (SUBSCRIPTION, &vars.subscription),
        (RESOURCE_GROUP, &vars.resource_group),
        (WORKSPACE_NAME, &vars.workspace_name),
    ];
    if let [Some(subscription), Some(group), Some(name)] = named.map(|(_, v)| v.as_deref()) {
        return match WorkspaceRef::from_parts(subscription, group, name) {
            Ok(workspace) => Some(workspace),
            Err(e) => {
                notes.push(format!(
                    "workspace discovery: {SUBSCRIPTION}, {RESOURCE_GROUP} and {WORKSPACE_NAME} were passed over: {e}"
                ));
                None
            }
        };
    }
    let unset: Vec<&str> = named.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
    if unset.len() < named.len() {
        notes.push(format!(
            "workspace discovery: {SUBSCRIPTION}, {RESOURCE_GROUP} and {WORKSPACE_NAME} were passed over: {} not set",
            unset.join(" and ")
        ));
    }
    None
}

fn from_tracking_uri(vars: &Variables, notes: &mut Vec<String>) -> Option<WorkspaceRef> {
    let uri = vars.mlflow_tracking_uri.as_deref()?.trim();
    // Any other scheme is an MLflow server elsewhere: nothing to do with Azure ML, and no mistake.
    if !uri.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("azureml:")) {
        return None;
    }
    // The ARM id sits in the path; a private-link workspace's host and prefix differ (learn:
    // how-to-use-mlflow-configure-tracking), so it is looked for rather than expected at a place.
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let start = path.to_ascii_lowercase().find("/subscriptions/");
    let id = start.map(|at| path[at..].split('/').take(9).collect::<Vec<_>>().join("/"));
    let parsed = id
        .as_deref()
        .ok_or_else(|| "it has no /subscriptions/…/workspaces/<name> path".to_string())
        .and_then(WorkspaceRef::parse);
    match parsed {
        Ok(workspace) => Some(workspace),
        Err(e) => {
            notes.push(format!(
                "workspace discovery: {MLFLOW_TRACKING_URI} '{}' was passed over: {e}",
                echo(uri)
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-1111-2222-3333-444444444444";
    const URI: &str = "azureml://westus2.api.azureml.ms/mlflow/v1.0/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlws01";

    fn arm_variables() -> Variables {
        Variables {
            subscription: Some(SUB.into()),
            resource_group: Some("rg-job".into()),
            workspace_name: Some("wsjob".into()),
            ..Default::default()
        }
    }

    #[test]
    fn reads_the_variables_and_treats_blank_as_unset() {
        let vars = Variables::read(|name| match name {
            "AZUREML_ARM_SUBSCRIPTION" => Some(SUB.into()),
            "AZUREML_ARM_RESOURCEGROUP" => Some("  ".into()),
            "MLFLOW_TRACKING_URI" => Some(URI.into()),
            _ => None,
        });
        assert_eq!(vars.subscription.as_deref(), Some(SUB));
        assert_eq!(vars.resource_group, None);
        assert_eq!(vars.mlflow_tracking_uri.as_deref(), Some(URI));
    }

    #[test]
    fn the_arm_variables_name_the_workspace_before_the_tracking_uri() {
        let (found, notes) = find(&Variables {
            mlflow_tracking_uri: Some(URI.into()),
            ..arm_variables()
        });
        let found = found.unwrap();
        assert_eq!(found.name, "wsjob");
        assert_eq!(
            found.id,
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-job/providers/Microsoft.MachineLearningServices/workspaces/wsjob"
            )
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn the_tracking_uri_names_the_workspace_on_a_compute_instance() {
        let (found, notes) = find(&Variables {
            mlflow_tracking_uri: Some(URI.into()),
            ci_resource_group: Some("rg-ml".into()),
            ci_workspace: Some("mlws01".into()),
            ..Default::default()
        });
        let found = found.unwrap();
        assert_eq!(found.name, "mlws01");
        assert!(
            found
                .id
                .starts_with(&format!("/subscriptions/{SUB}/resourceGroups/rg-ml/"))
        );
        assert!(notes.is_empty(), "{notes:?}");
        // Another host and prefix (a private-link workspace), a query and an upper-case scheme.
        let other = URI.replace(
            "azureml://westus2.api.azureml.ms/mlflow/v1.0",
            "AzureML://abc.workspace.westus2.api.azureml.ms/mlflow/v2.0",
        ) + "?x=1";
        let (again, _) = find(&Variables {
            mlflow_tracking_uri: Some(other),
            ..Default::default()
        });
        assert_eq!(again, Some(found));
    }

    #[test]
    fn an_mlflow_server_elsewhere_is_not_a_mistake() {
        let (found, notes) = find(&Variables {
            mlflow_tracking_uri: Some("http://127.0.0.1:5000".into()),
            ..Default::default()
        });
        assert_eq!(found, None);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_malformed_variable_is_one_line_and_the_next_source_is_tried() {
        let (found, notes) = find(&Variables {
            subscription: Some("not/a-guid".into()),
            mlflow_tracking_uri: Some(URI.into()),
            ..arm_variables()
        });
        assert_eq!(found.map(|w| w.name).as_deref(), Some("mlws01"));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("AZUREML_ARM_WORKSPACE_NAME were passed over"),
            "{notes:?}"
        );
        assert!(notes[0].contains("is not a workspace resource id"), "{notes:?}");

        let (found, notes) = find(&Variables {
            subscription: Some(SUB.into()),
            mlflow_tracking_uri: Some("azureml://westus2.api.azureml.ms/mlflow/v1.0/\x1b[31m".into()),
            ..Default::default()
        });
        assert_eq!(found, None);
        let all = notes.join("\n");
        assert_eq!(notes.len(), 2, "{all}");
        assert!(
            all.contains("AZUREML_ARM_RESOURCEGROUP and AZUREML_ARM_WORKSPACE_NAME not set"),
            "{all}"
        );
        assert!(all.contains("MLFLOW_TRACKING_URI"), "{all}");
        assert!(all.contains("no /subscriptions/"), "{all}");
        assert!(!all.contains('\x1b'), "values are echoed safely: {all}");
    }

    #[test]
    fn the_compute_instance_variables_say_the_subscription_is_missing() {
        let (found, notes) = find(&Variables {
            ci_resource_group: Some("rg-ml".into()),
            ci_workspace: Some("mlws01".into()),
            ..Default::default()
        });
        assert_eq!(found, None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("workspace 'mlws01' in resource group 'rg-ml'"),
            "{notes:?}"
        );
        assert!(notes[0].contains("--workspace-resource-id"), "{notes:?}");
        assert!(find(&Variables::default()) == (None, Vec::new()));
    }
}
