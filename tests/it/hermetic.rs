//! The tests' environment never reaches the binary: on an Azure ML compute instance (the tool's
//! main home) the shell holds `AZUREML_ARM_*`, `MLFLOW_TRACKING_URI`, `MSI_*`, `IDENTITY_*` and
//! perhaps `AMLPROBE_*` variables, each of which would change a run (a workspace to discover, an
//! identity to ask, a region, a suite, a proxy). The command builder starts every run from an
//! empty environment; this proves it by running part of the built-in suites from a test process
//! that carries such variables, and comparing with the same run from this one.

use crate::support::{self, Amlprobe, Dns, LOCAL};
use serde_json::Value;

/// What an Azure ML compute instance's shell may hold, plus amlprobe's own variables set to
/// values that would each change the run (or refuse it: `--no-imds` with an IMDS endpoint).
const COMPUTE_INSTANCE: &[(&str, &str)] = &[
    ("AZUREML_ARM_SUBSCRIPTION", "00000000-1111-2222-3333-444444444444"),
    ("AZUREML_ARM_RESOURCEGROUP", "rg-ml"),
    ("AZUREML_ARM_WORKSPACE_NAME", "mlws01"),
    (
        "MLFLOW_TRACKING_URI",
        "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlws01",
    ),
    ("MSI_ENDPOINT", "http://127.0.0.1:9/msi/token"),
    ("MSI_SECRET", "compute-secret"),
    ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/identity"),
    ("IDENTITY_HEADER", "compute-header"),
    ("DEFAULT_IDENTITY_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
    ("CI_RESOURCE_GROUP", "rg-ml"),
    ("CI_WORKSPACE", "mlws01"),
    ("AMLPROBE_REGION", "westeurope"),
    ("AMLPROBE_SUITE", "arc"),
    ("AMLPROBE_STORAGE_ACCOUNT", "otherstorage"),
    ("AMLPROBE_PUBLIC_RESOURCE", "storage"),
    ("AMLPROBE_ASSUME", "aks_node"),
    ("AMLPROBE_TIMEOUT", "9"),
    ("AMLPROBE_STRICT", "true"),
    ("AMLPROBE_IMDS_ENDPOINT", "http://127.0.0.1:9"),
    ("AMLPROBE_ARM_TOKEN", "eyJ0eXAiOiJKV1QifQ.compute.c2ln"),
    ("AMLPROBE_FORMAT", "table"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("NO_COLOR", "1"),
];

/// Where the run made under [`COMPUTE_INSTANCE`] leaves its result for the test that started it.
const OUT: &str = "AMLPROBE_IT_HERMETIC_OUT";

/// The workspace, compute and images suites against a resolver that answers two names with
/// loopback (where nothing listens on their ports), refuses one and knows no other: exit code
/// and report, less what differs from run to run (times, the resolver's port).
fn representative_run() -> (i32, Value) {
    let dns = support::dns_server(&[
        ("mystorage.blob.core.windows.net", Dns::A(vec![LOCAL])),
        ("mcr.microsoft.com", Dns::A(vec![LOCAL])),
        ("login.microsoftonline.com", Dns::Refused),
    ]);
    let r = Amlprobe::offline("run", dns)
        .flag("--suite", "workspace,compute,images")
        .args(support::CONTEXT)
        .format("json")
        .output();
    let text = r.stdout.replace(&dns.to_string(), "DNS");
    let mut report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    forget_times(&mut report);
    (r.code, report)
}

fn forget_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in ["started_at", "duration_ms", "elapsed_ms"] {
                map.remove(key);
            }
            map.values_mut().for_each(forget_times);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_times),
        _ => {}
    }
}

/// Run by [`a_compute_instances_environment_changes_no_result`] in a child test process that
/// carries [`COMPUTE_INSTANCE`]; on its own it only makes the run.
#[test]
#[ignore = "started by a_compute_instances_environment_changes_no_result"]
fn run_under_a_compute_instances_environment() {
    let (code, report) = representative_run();
    if let Ok(out) = std::env::var(OUT) {
        std::fs::write(out, serde_json::json!({"code": code, "report": report}).to_string()).unwrap();
    }
}

#[test]
fn a_compute_instances_environment_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hermetic::run_under_a_compute_instances_environment",
            "--ignored",
            "--test-threads=1",
        ])
        .envs(COMPUTE_INSTANCE.iter().copied())
        .env(OUT, &out)
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stdout));
    let there: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let (code, here) = representative_run();
    assert_eq!(there["code"], code, "the exit code");
    assert_eq!(there["report"], here, "the whole report, times aside");
    let flows = here["flows"].as_array().unwrap();
    assert!(flows.len() > 20, "{} flows", flows.len());
    assert_eq!(here["context"]["region"], "eastus", "the flags', not AMLPROBE_REGION's");
    assert_eq!(here["context"]["sources"]["storage_account"], "flag_or_env");
    let warnings = here["context"]["warnings"].to_string();
    assert!(
        !warnings.contains("workspace discovery") && !warnings.contains("mlws01"),
        "no workspace looked for, none named by the compute's variables: {warnings}"
    );
    for reason in ["dns_nxdomain", "dns_refused", "tcp_refused"] {
        assert!(flows.iter().any(|f| f["reason"] == reason), "some flow {reason}");
    }
}
