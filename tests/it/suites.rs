//! `amlprobe suites --format json` for each cloud: the built-in suites say what the current
//! Azure documentation says (docs/sources.md), and the context flags change the rendered hosts.
//! Nothing here sends traffic: `suites` only expands templates.

use crate::support;

use serde_json::Value;
use support::{ALL_SUITES, Amlprobe, CONTEXT};

/// `amlprobe suites` with the full context, each flag-value pair of `extra` replacing or
/// adding to it.
fn suites(extra: &[&str]) -> Amlprobe {
    extra
        .chunks(2)
        .fold(Amlprobe::new(["suites"]).args(CONTEXT), |cmd, pair| {
            cmd.flag(pair[0], pair[1])
        })
}

/// Every flow of `amlprobe suites --format json --cloud <cloud>` plus `extra` arguments.
fn flows(cloud: &str, extra: &[&str]) -> Vec<Value> {
    let run = suites(extra).format("json").flag("--cloud", cloud).output();
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .flat_map(|s| s["flows"].as_array().expect("flows").clone())
        .collect()
}

fn every_suite(cloud: &str, extra: &[&str]) -> Vec<Value> {
    flows(cloud, &[&["--suite", ALL_SUITES], extra].concat())
}

fn id(f: &Value) -> &str {
    f["spec"]["id"].as_str().unwrap()
}

/// Whether the flow fails the run in the listed context (after `optional_in` and `when`).
fn required(f: &Value) -> bool {
    f["required"].as_bool().unwrap()
}

fn ports(f: &Value) -> Vec<u64> {
    f["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

/// Rendered hosts of a probed flow (empty for not_testable or skipped flows, which have no
/// targets).
fn hosts(f: &Value) -> Vec<String> {
    let state = f["plan"]["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no plan state: {f:#}"));
    match f["plan"]["targets"].as_array() {
        Some(targets) => targets
            .iter()
            .map(|t| t["host"].as_str().unwrap().to_string())
            .collect(),
        None => {
            assert_ne!(state, "probe", "a probed flow without targets: {f:#}");
            Vec::new()
        }
    }
}

fn flow<'a>(all: &'a [Value], wanted: &str) -> &'a Value {
    all.iter()
        .find(|f| id(f) == wanted)
        .unwrap_or_else(|| panic!("no flow {wanted}"))
}

fn all_hosts(all: &[Value]) -> Vec<String> {
    all.iter().flat_map(hosts).collect()
}

const CLOUDS: [&str; 3] = ["public", "usgov", "china"];

#[test]
fn rstudio_port_8787_is_never_required_and_18881_only_with_a_workspace_private_endpoint() {
    for cloud in CLOUDS {
        let all = every_suite(cloud, &[]);
        for f in all.iter().filter(|f| required(f)) {
            assert!(!ports(f).contains(&8787), "{cloud}: required {} lists 8787", id(f));
        }
        let rstudio = flow(&all, "compute.compute_instance_rstudio");
        assert_eq!(ports(rstudio), vec![8787]);
        assert!(!required(rstudio));
        for kept in ["compute.compute_instance", "workspace.compute_instance"] {
            let f = flow(&all, kept);
            assert_eq!(ports(f), vec![443], "{cloud} {kept}");
            assert_eq!(required(f), cloud != "china", "{cloud} {kept}: optional in China only");
        }
        for language_server in ["compute.compute_instance_18881", "workspace.compute_instance_18881"] {
            assert_eq!(ports(flow(&all, language_server)), vec![18881]);
        }
    }
    // The firewall page's tip: "Ports 8787 and 18881 for compute instance are only needed when
    // your Azure Machine workspace has a private endpoint".
    let public = every_suite("public", &["--public-resource", "workspace"]);
    let f = flow(&public, "compute.compute_instance_18881");
    assert_eq!(f["plan"]["state"], "not_applicable", "{f:#}");
    assert_eq!(f["plan"]["fact"], "workspace_private_endpoint");
    assert!(!required(f));
    let assumed = every_suite(
        "public",
        &[
            "--public-resource",
            "workspace",
            "--assume",
            "workspace_private_endpoint",
        ],
    );
    let f = flow(&assumed, "compute.compute_instance_18881");
    assert_eq!(f["plan"]["state"], "probe", "--assume wins: {f:#}");
    assert!(required(f));
}

#[test]
fn microsoft_graph_is_a_studio_flow_not_a_compute_one() {
    for cloud in CLOUDS {
        let all = every_suite(cloud, &[]);
        let graph = match cloud {
            "public" => "graph.microsoft.com",
            "usgov" => "graph.microsoft.us",
            _ => "graph.chinacloudapi.cn",
        };
        let compute: Vec<&Value> = all.iter().filter(|f| f["suite"] == "compute").collect();
        if cloud != "china" {
            // In China graph.chinacloudapi.cn is also the compute tables' AAD Graph host.
            assert!(
                !compute
                    .iter()
                    .any(|f| required(f) && hosts(f).iter().any(|h| h == graph)),
                "{cloud}: {graph} in a required compute flow"
            );
        }
        assert!(all.iter().all(|f| id(f) != "compute.ms_graph"));
        let studio = flow(&all, "studio.ms_graph");
        assert_eq!(hosts(studio), vec![graph.to_string()], "{cloud}");
        assert!(
            required(studio),
            "the firewall page lists it as an integrated-notebook host"
        );
        let aad = flow(&all, "compute.aad_graph");
        let expected = if cloud == "china" {
            "graph.chinacloudapi.cn"
        } else {
            "graph.windows.net"
        };
        assert_eq!(hosts(aad), vec![expected.to_string()], "{cloud}");
    }
}

#[test]
fn compute_instance_names_are_probed_in_both_documented_forms() {
    for (cloud, custom_dns, firewall_page) in [
        ("public", "instances.ml.azure.ms", "instances.azureml.ms"),
        ("usgov", "instances.ml.azure.us", "instances.azureml.us"),
        ("china", "instances.ml.azure.ms", "instances.azureml.cn"),
    ] {
        let all = every_suite(cloud, &[]);
        let expected = vec![
            format!("ci-alice.eastus.{custom_dns}"),
            format!("ci-alice.eastus.{firewall_page}"),
        ];
        for f in ["compute.compute_instance", "workspace.compute_instance"] {
            let f = flow(&all, f);
            assert_eq!(hosts(f), expected, "{cloud}");
            assert_eq!(f["spec"]["hosts_match"], "any", "either form will do");
        }
    }
}

#[test]
fn instances_domain_flag_env_and_config_change_the_instance_hosts() {
    // One domain given settles both documented forms: one host.
    let all = every_suite("china", &["--instances-domain", "instances.azureml.ms"]);
    assert_eq!(
        hosts(flow(&all, "compute.compute_instance")),
        vec!["ci-alice.eastus.instances.azureml.ms"]
    );
    assert_eq!(
        hosts(flow(&all, "workspace.compute_instance_ssh")),
        vec!["ci-alice-22.eastus.instances.azureml.ms"]
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ws.toml");
    std::fs::write(&config, "instances_domain = \"instances.azureml.us\"\n").unwrap();
    let all = every_suite("usgov", &["--config", config.to_str().unwrap()]);
    assert_eq!(
        hosts(flow(&all, "compute.compute_instance")),
        vec!["ci-alice.eastus.instances.azureml.us"]
    );
    let run = suites(&[])
        .format("json")
        .env("AMLPROBE_INSTANCES_DOMAIN", "instances.example.test")
        .output();
    assert!(
        run.stdout.contains("ci-alice.eastus.instances.example.test"),
        "{}",
        run.stderr
    );
    let bad = Amlprobe::new(["suites", "--instances-domain", "https://x.example"]).output();
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--instances-domain"), "{}", bad.stderr);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn derived_notebook_label_warns_when_uncertain() {
    let derived = suites(&["--workspace-name", "my_ws"]).format("json");
    let warnings = derived.output().json()["context"]["warnings"].clone();
    let text = warnings.to_string();
    assert!(text.contains("--notebook-label") && text.contains('_'), "{warnings}");
    let given = suites(&[
        "--workspace-name",
        "my_ws",
        "--notebook-label",
        "ml-my-ws-eastus-fb7e20a0",
    ])
    .format("json")
    .output()
    .json();
    let context = given["context"].as_object().expect("a context object");
    assert_eq!(context["notebook_label"], "ml-my-ws-eastus-fb7e20a0", "{context:#?}");
    assert!(!context.contains_key("warnings"), "{context:#?}");
    let long = "a".repeat(33);
    let run = suites(&["--workspace-name", &long]).output();
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("truncated"),
        "{}",
        run.stderr
    );
}

#[test]
fn mcr_cdn_storage_is_required_on_aks_nodes_only() {
    let all = every_suite("public", &[]);
    for (f, on_aks) in [("images.mcr_cdn", false), ("aks.mcr_cdn", true)] {
        let f = flow(&all, f);
        assert_eq!(hosts(f), vec!["mcr-0001.mcr-msedge.net"]);
        assert_eq!(required(f), on_aks, "only the AKS egress page lists it");
    }
    let china = every_suite("china", &[]);
    assert_eq!(hosts(flow(&china, "aks.mcr_china")), vec!["mcr.azure.cn"]);
}

#[test]
fn the_aks_suite_runs_only_when_named_or_on_an_aks_node() {
    let default = flows("public", &[]);
    assert!(
        !default.iter().any(|f| f["suite"] == "aks"),
        "not on a compute instance or jump box"
    );
    let on_node = flows("public", &["--assume", "aks_node"]);
    assert!(on_node.iter().any(|f| f["suite"] == "aks"));
    let named = flows("public", &["--suite", "aks"]);
    assert!(named.iter().all(|f| f["suite"] == "aks") && !named.is_empty());
}

#[test]
fn aks_binaries_are_probed_on_both_mirrors() {
    for cloud in ["public", "usgov"] {
        let all = every_suite(cloud, &[]);
        assert_eq!(hosts(flow(&all, "aks.acs_mirror")), vec!["acs-mirror.azureedge.net"]);
        let new = flow(&all, "aks.packages_aks");
        assert_eq!(hosts(new), vec!["packages.aks.azure.com"]);
        assert!(new["spec"]["title"].as_str().unwrap().contains("replaces acs-mirror"));
    }
}

#[test]
fn arc_suite_is_optional_and_documents_the_agent_endpoints() {
    let default = flows("public", &[]);
    assert!(
        !default
            .iter()
            .any(|f| f["suite"] == "arc" || f["suite"] == "aks-training")
    );
    let arc = flows("public", &["--suite", "arc"]);
    let hosts = all_hosts(&arc);
    for h in [
        "gbl.his.arc.azure.com",
        "eastus.login.microsoft.com",
        "guestnotificationservice.azure.com",
        "linuxgeneva-microsoft.azurecr.io",
        "eastus.dp.kubernetesconfiguration.azure.com",
    ] {
        assert!(hosts.iter().any(|x| x == h), "{h} not in {hosts:?}");
    }
    // Removed from the Arc pages in 2025 (azure-management-docs commit a93cd719).
    assert!(!hosts.iter().any(|h| h == "k8connecthelm.azureedge.net"), "{hosts:?}");
    let bus = flow(&arc, "arc.service_bus");
    assert_eq!(bus["plan"]["state"], "not_testable");
    assert!(bus["spec"]["not_testable"].as_str().unwrap().contains("WebSocket"));
    let gov = all_hosts(&flows("usgov", &["--suite", "arc", "--region", "usgovvirginia"]));
    assert!(gov.iter().any(|h| h == "usgv.his.arc.azure.us"), "{gov:?}");
    assert!(
        gov.iter().any(|h| h == "usgovvirginia.login.microsoftonline.us"),
        "{gov:?}"
    );
    let cn = all_hosts(&flows("china", &["--suite", "arc", "--region", "chinaeast2"]));
    assert!(cn.iter().any(|h| h == "gbl.his.arc.azure.cn"), "{cn:?}");
    assert!(cn.iter().any(|h| h == "mcr.azk8s.cn"), "{cn:?}");
}

#[test]
fn china_container_registry_flows_are_real_and_under_azurecr_cn() {
    let all = every_suite("china", &[]);
    assert!(all.iter().all(|f| id(f) != "images.workspace_acr_china"));
    let mut seen = 0;
    for f in [
        "images.workspace_acr",
        "images.workspace_acr_data",
        "aks.workspace_acr",
        "aks.workspace_acr_data",
    ] {
        let f = flow(&all, f);
        assert_eq!(f["plan"]["state"], "probe", "{}", id(f));
        assert_eq!(f["plan"]["private_dns_zone"], "privatelink.azurecr.cn");
        for h in hosts(f) {
            assert!(h.ends_with(".azurecr.cn"), "{h}");
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
    assert!(all_hosts(&all).contains(&"myacr01.eastus.data.azurecr.cn".to_string()));
}

#[test]
fn container_registry_region_picks_the_data_endpoint() {
    let all = every_suite("public", &[]);
    assert_eq!(
        hosts(flow(&all, "images.workspace_acr_data")),
        vec!["myacr01.eastus.data.azurecr.io"],
        "defaults to the workspace region"
    );
    let all = every_suite("public", &["--container-registry-region", "westeurope"]);
    assert_eq!(
        hosts(flow(&all, "images.workspace_acr_data")),
        vec!["myacr01.westeurope.data.azurecr.io"]
    );
    assert_eq!(
        hosts(flow(&all, "aks.workspace_acr_data")),
        vec!["myacr01.westeurope.data.azurecr.io"]
    );
    assert_eq!(
        flow(&all, "images.workspace_acr_data")["service_tag"],
        "AzureContainerRegistry.westeurope",
        "the registry's own region in its service tag"
    );
    // A registry reached over its public endpoint has no data endpoint unless ARM says so.
    let public = every_suite("public", &["--public-resource", "container_registry"]);
    let f = flow(&public, "images.workspace_acr_data");
    assert_eq!(f["plan"]["state"], "not_applicable", "{f:#}");
    assert_eq!(f["plan"]["fact"], "registry_data_endpoint");
    let bad = Amlprobe::new(["suites", "--container-registry-region", "West Europe"]).output();
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--container-registry-region"), "{}", bad.stderr);
}

#[test]
fn app_insights_uses_each_clouds_suffix() {
    for (cloud, host) in [
        ("public", "dc.applicationinsights.azure.com"),
        ("usgov", "dc.applicationinsights.us"),
        ("china", "dc.applicationinsights.azure.cn"),
    ] {
        let all = every_suite(cloud, &[]);
        assert_eq!(
            hosts(flow(&all, "optional.app_insights")),
            vec![host.to_string()],
            "{cloud}"
        );
        if cloud != "public" {
            let public: Vec<String> = all_hosts(&all)
                .into_iter()
                .filter(|h| h.contains("applicationinsights.azure.com") || h == "dc.services.visualstudio.com")
                .collect();
            assert!(public.is_empty(), "{cloud}: {public:?}");
        }
    }
}

#[test]
fn vscode_ports_and_download_cdn_are_listed_as_optional() {
    let all = every_suite("public", &[]);
    let ports_flow = flow(&all, "optional.vscode_server_ports");
    assert_eq!(ports(ports_flow), (8704..=8710).collect::<Vec<u64>>());
    assert!(!required(ports_flow));
    let cdn = flow(&all, "optional.vscode_download_cdn");
    assert_eq!(hosts(cdn), vec!["vscode.download.prss.microsoft.com"]);
    assert!(!required(cdn));
}

#[test]
fn serverless_models_host_is_listed_as_optional() {
    let all = every_suite("public", &[]);
    let f = flow(&all, "optional.serverless_models");
    assert_eq!(hosts(f), vec!["models.ai.azure.com"]);
    assert!(!required(f));
}

#[test]
fn kubernetes_training_hosts_are_required_only_in_aks_training() {
    let all = every_suite("public", &[]);
    for f in all.iter().filter(|f| f["suite"] == "aks") {
        let h = hosts(f);
        if h.iter()
            .any(|h| h == "pypi.org" || h.ends_with("ubuntu.com") || h == "ppa.launchpad.net")
        {
            assert!(!required(f), "{} is required in aks", id(f));
        }
    }
    assert!(required(flow(&all, "aks-training.pypi")));
    let archives = flow(&all, "aks-training.ubuntu_archives");
    assert!(required(archives) && ports(archives) == vec![80]);
    assert!(hosts(archives).contains(&"archive.ubuntu.com".to_string()));
}

#[test]
fn legacy_inbound_rows_are_marked_and_never_required() {
    for cloud in CLOUDS {
        let all = every_suite(cloud, &[]);
        for f in all.iter().filter(|f| f["spec"]["direction"] == "inbound") {
            let p = ports(f);
            let legacy = p.contains(&29876) || id(f) == "compute.inbound_lb_44224";
            if legacy {
                assert!(!required(f), "{cloud}: {} is required", id(f));
                assert!(f["spec"]["title"].as_str().unwrap().starts_with("Legacy"), "{}", id(f));
            }
        }
        let current = flow(&all, "compute.inbound_aml_44224");
        assert_eq!(current["spec"]["service_tag"], "AzureMachineLearning");
    }
}

#[test]
fn mcr_data_representative_says_why_one_name_stands_for_the_wildcard() {
    let all = every_suite("public", &[]);
    for f in ["images.mcr_data", "aks.mcr_data"] {
        let rep = flow(&all, f)["spec"]["representative_of"].as_str().unwrap().to_string();
        assert!(
            rep.starts_with("*.data.mcr.microsoft.com") && rep.contains("no per-region"),
            "{rep}"
        );
    }
}

#[test]
fn every_builtin_flow_cites_a_dated_primary_page() {
    for cloud in CLOUDS {
        for f in every_suite(cloud, &[]) {
            let source = f["spec"]["source"].as_str().unwrap();
            let dated = source.contains("ms.date") || source.contains("undated") || source.contains("seed 00");
            assert!(dated, "{cloud}: {} has no dated source: {source}", id(&f));
        }
    }
}
