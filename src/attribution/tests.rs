//! Attribution end to end against the in-process fake ARM: a world where the data plane and the
//! configuration agree (an NSG rule dropping 445, a UDR to a firewall without an application
//! rule, a zone not linked to the VNet, a managed-network workspace without an FQDN rule), a
//! missing permission, and hostile answers. Shapes follow the REST spec examples in testdata/.

use super::fake_arm::{self, Fake, Reply};
use super::finding::FindingKind;
use super::*;
use crate::discovery::token::ArmToken;
use crate::http_client::{Client, Url};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.attribution-test-token.sig";
const SUB: &str = "00000000-1111-2222-3333-444444444444";
const SUB2: &str = "55555555-6666-7777-8888-999999999999";

fn id(sub: &str, rg: &str, rest: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{rest}")
}

fn vm() -> String {
    id(SUB, "rg-ml", "Microsoft.Compute/virtualMachines/vm1")
}
fn nic() -> String {
    id(SUB, "rg-ml", "Microsoft.Network/networkInterfaces/vm1-nic")
}
fn vnet() -> String {
    id(SUB, "rg-net", "Microsoft.Network/virtualNetworks/vnet-ml")
}
fn subnet() -> String {
    format!("{}/subnets/ml", vnet())
}
fn nsg() -> String {
    id(SUB, "rg-net", "Microsoft.Network/networkSecurityGroups/nsg-ml-subnet")
}
fn route_table() -> String {
    id(SUB, "rg-net", "Microsoft.Network/routeTables/rt-ml")
}
fn firewall() -> String {
    id(SUB2, "rg-hub", "Microsoft.Network/azureFirewalls/fw-hub")
}
fn policy() -> String {
    id(SUB2, "rg-hub", "Microsoft.Network/firewallPolicies/fwp-hub")
}
fn zone() -> String {
    id(
        SUB,
        "rg-dns",
        "Microsoft.Network/privateDnsZones/privatelink.api.azureml.ms",
    )
}
fn workspace() -> String {
    id(SUB, "rg-ml", "Microsoft.MachineLearningServices/workspaces/mlws")
}
const WS_NAME: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.privatelink.api.azureml.ms";

fn imds_body() -> Value {
    json!({"compute": {"resourceId": vm(), "vmScaleSetName": "", "location": "eastus"},
           "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.1.0.4", "publicIpAddress": ""}],
                                                "subnet": [{"address": "10.1.0.0", "prefix": "24"}]},
                                       "ipv6": {"ipAddress": []}, "macAddress": "000D3AF806EC"}]}})
}

fn rule(name: &str, priority: i64, access: &str, dst: &str, expanded: &[&str], ports: &str) -> Value {
    json!({"name": name, "protocol": "All", "sourcePortRange": "0-65535", "destinationPortRange": ports,
           "sourceAddressPrefix": "0.0.0.0/0", "destinationAddressPrefix": dst,
           "expandedDestinationAddressPrefix": expanded, "access": access, "priority": priority, "direction": "Outbound"})
}

/// The subnet NSG's effective rules: 445 to Storage denied (the NSG flavour of issue 25's world).
fn effective_nsgs() -> Value {
    let mut smb = rule(
        "securityRules/DenySmbOutbound",
        300,
        "Deny",
        "Storage",
        &["20.60.0.0/16"],
        "445-445",
    );
    smb["protocol"] = "Tcp".into();
    json!({"value": [{
    "networkSecurityGroup": {"id": nsg()},
    "association": {"subnet": {"id": subnet()}},
    "effectiveSecurityRules": [
        smb,
        rule("defaultSecurityRules/AllowVnetOutBound", 65000, "Allow", "VirtualNetwork", &["10.1.0.0/16"], "0-65535"),
        rule("defaultSecurityRules/AllowInternetOutBound", 65001, "Allow", "Internet", &["16.0.0.0/4", "32.0.0.0/3"], "0-65535"),
        rule("defaultSecurityRules/DenyAllOutBound", 65500, "Deny", "0.0.0.0/0", &[], "0-65535"),
    ]}]})
}

/// The subnet's NSG as configured (read when the effective rules are refused).
fn configured_nsg() -> Value {
    let r = |name: &str, priority: i64, access: &str, dst: &str, ports: &str| {
        json!({"name": name, "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": ports,
               "sourceAddressPrefix": "*", "destinationAddressPrefix": dst, "access": access, "priority": priority, "direction": "Outbound"}})
    };
    json!({"id": nsg(), "properties": {
        "securityRules": [r("DenySmbOutbound", 300, "Deny", "20.60.0.0/16", "445")],
        "defaultSecurityRules": [r("DenyAllOutBound", 65500, "Deny", "*", "*")]}})
}

fn effective_routes() -> Value {
    let route = |source: &str, state: &str, prefix: &str, hop: &str, ip: &[&str]| json!({"source": source, "state": state, "addressPrefix": [prefix], "nextHopType": hop, "nextHopIpAddress": ip});
    json!({"value": [
        route("Default", "Active", "10.1.0.0/16", "VnetLocal", &[]),
        route("Default", "Invalid", "0.0.0.0/0", "Internet", &[]),
        {"name": "to-firewall", "source": "User", "state": "Active", "addressPrefix": ["0.0.0.0/0"], "nextHopType": "VirtualAppliance", "nextHopIpAddress": ["10.0.1.4"]},
        route("Default", "Active", "10.0.0.0/8", "None", &[]),
    ]})
}

/// How the world misbehaves.
#[derive(Clone, Copy, Default)]
struct Twist {
    /// The effective security rules action is refused.
    forbid_effective_nsg: bool,
    /// IMDS describes an instance of a uniform scale set.
    uniform: bool,
    /// The VM can't be read (an Azure ML compute's, in Microsoft's subscription).
    forbid_vm: bool,
}

fn world(twist: Twist) -> impl Fn(&str, &str) -> Reply + Send + Sync + 'static {
    move |method, target| {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path == "/metadata/instance" {
            let mut body = imds_body();
            if twist.uniform {
                body["compute"]["vmScaleSetName"] = "aks-nodepool1-12345678-vmss".into();
            }
            return Reply::json(200, body);
        }
        if twist.forbid_vm && path == vm() {
            return Reply::json(403, json!({"error": {"code": "AuthorizationFailed"}}));
        }
        let effective_nsg = format!("{}/effectiveNetworkSecurityGroups", nic());
        let effective_routes_path = format!("{}/effectiveRouteTable", nic());
        let operation = format!("{}/operationResults/op1", nic());
        match (method, path) {
            ("POST", p) if p == effective_nsg && twist.forbid_effective_nsg => Reply::json(
                403,
                json!({"error": {"code": "AuthorizationFailed", "message": "does not have authorization to perform action"}}),
            ),
            ("POST", p) if p == effective_nsg => Reply::json(200, effective_nsgs()),
            ("POST", p) if p == effective_routes_path => Reply::raw(202, String::new())
                .header("Location", &format!("http://HOST{operation}?api-version=2024-05-01"))
                .header("Retry-After", "0"),
            ("GET", p) if p == operation => Reply::json(200, effective_routes()),
            ("GET", "/subscriptions") if query.contains("skipToken") => {
                Reply::json(200, json!({"value": [{"subscriptionId": SUB2}]}))
            }
            ("GET", "/subscriptions") => Reply::json(
                200,
                json!({"value": [{"subscriptionId": SUB}], "nextLink": "http://HOST/subscriptions?api-version=2022-12-01&$skipToken=2"}),
            ),
            ("GET", p) if p == vm() => Reply::json(
                200,
                json!({"id": vm(), "properties": {"networkProfile": {"networkInterfaces": [{"id": nic()}]}}}),
            ),
            ("GET", p) if p == nic() => Reply::json(
                200,
                json!({"id": nic(), "properties": {
                "macAddress": "00-0D-3A-F8-06-EC", "primary": true, "dnsSettings": {"dnsServers": []},
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"primary": true, "privateIPAddress": "10.1.0.4", "subnet": {"id": subnet()}}}]}}),
            ),
            ("GET", p) if p == subnet() => Reply::json(
                200,
                json!({"id": subnet(), "properties": {
                "addressPrefix": "10.1.0.0/24", "networkSecurityGroup": {"id": nsg()}, "routeTable": {"id": route_table()}}}),
            ),
            ("GET", p) if p == vnet() => Reply::json(
                200,
                json!({"id": vnet(), "properties": {
                "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "dhcpOptions": {"dnsServers": []}}}),
            ),
            ("GET", p) if p == nsg() => Reply::json(200, configured_nsg()),
            ("GET", p) if p == route_table() => Reply::json(
                200,
                json!({"id": route_table(), "properties": {"routes": [
                {"name": "to-firewall", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"}}]}}),
            ),
            ("GET", p) if p == format!("/subscriptions/{SUB}/providers/Microsoft.Network/azureFirewalls") => {
                Reply::json(200, json!({"value": []}))
            }
            ("GET", p) if p == format!("/subscriptions/{SUB2}/providers/Microsoft.Network/azureFirewalls") => {
                Reply::json(
                    200,
                    json!({"value": [{
                "id": firewall(), "name": "fw-hub", "properties": {
                    "ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": "10.0.1.4"}}],
                    "firewallPolicy": {"id": policy()}}}]}),
                )
            }
            ("GET", p) if p == policy() => Reply::json(200, json!({"id": policy(), "properties": {}})),
            ("GET", p) if p == format!("{}/ruleCollectionGroups", policy()) => Reply::json(
                200,
                json!({"value": [{
                "id": format!("{}/ruleCollectionGroups/DefaultApplicationRuleCollectionGroup", policy()),
                "name": "DefaultApplicationRuleCollectionGroup",
                "properties": {"priority": 300, "ruleCollections": [{
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "allow-entra", "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [{"ruleType": "ApplicationRule", "name": "entra", "sourceAddresses": ["10.1.0.0/16"],
                               "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["login.microsoftonline.com"]}]}]}}]}),
            ),
            ("GET", p) if p == format!("/subscriptions/{SUB}/providers/Microsoft.Network/privateDnsZones") => {
                Reply::json(
                    200,
                    json!({"value": [{"id": zone(), "name": "privatelink.api.azureml.ms"}]}),
                )
            }
            ("GET", p) if p == format!("/subscriptions/{SUB2}/providers/Microsoft.Network/privateDnsZones") => {
                Reply::json(200, json!({"value": []}))
            }
            ("GET", p) if p == format!("{}/virtualNetworkLinks", zone()) => Reply::json(
                200,
                json!({"value": [{
                "id": format!("{}/virtualNetworkLinks/hub", zone()), "name": "hub",
                "properties": {"virtualNetwork": {"id": id(SUB2, "rg-hub", "Microsoft.Network/virtualNetworks/vnet-hub")},
                               "registrationEnabled": false, "virtualNetworkLinkState": "Completed", "provisioningState": "Succeeded"}}]}),
            ),
            ("GET", p) if p == format!("{}/A/fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus", zone()) => {
                Reply::json(
                    200,
                    json!({"name": "x", "properties": {"aRecords": [{"ipv4Address": "10.1.0.5"}]}}),
                )
            }
            ("GET", p) if p == workspace() => Reply::json(
                200,
                json!({"id": workspace(), "properties": {"managedNetwork": {
                "isolationMode": "AllowOnlyApprovedOutbound",
                "outboundRules": {"pypi": {"type": "FQDN", "destination": "pypi.org", "status": "Active", "category": "UserDefined"}}}}}),
            ),
            _ => Reply::not_found(),
        }
    }
}

/// The fake answers with `http://HOST` links; this puts its real origin in.
async fn start_world(twist: Twist) -> Fake {
    let host: std::sync::Arc<std::sync::OnceLock<String>> = std::sync::Arc::default();
    let h = host.clone();
    let route = world(twist);
    let fake = fake_arm::start(move |m, t| {
        let mut reply = route(m, t);
        let origin = h.get().cloned().unwrap_or_default();
        reply.body = reply.body.replace("http://HOST", &origin);
        for (_, v) in &mut reply.headers {
            *v = v.replace("http://HOST", &origin);
        }
        reply
    })
    .await;
    host.set(fake.url.origin()).unwrap();
    fake
}

fn access(fake: &Fake) -> ArmAccess {
    ArmAccess {
        client: Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
        arm: fake.url.clone(),
        token: ArmToken::new(TOKEN).unwrap(),
    }
}

fn questions() -> Vec<Question> {
    vec![
        Question::Destination {
            host: "mlwsstorage01.file.core.windows.net".into(),
            addresses: vec!["20.60.1.1".parse().unwrap()],
            ports: vec![445],
            protocol: Protocol::Tcp,
            service_tag: Some("Storage".into()),
        },
        Question::FirewallDenied {
            fqdns: vec!["management.azure.com".into()],
            ports: vec![443],
        },
        Question::Zone {
            zone: "privatelink.api.azureml.ms".into(),
            name: WS_NAME.into(),
            expected_ip: Some("10.1.0.5".parse().unwrap()),
            observed: vec!["20.43.1.1".parse().unwrap()],
            private_endpoint: None,
        },
        Question::Destination {
            host: "huggingface.co".into(),
            addresses: vec!["40.1.1.1".parse().unwrap()],
            ports: vec![443],
            protocol: Protocol::Tcp,
            service_tag: None,
        },
    ]
}

async fn run(fake: &Fake, qs: &[Question]) -> Outcome {
    let imds = fake.url.clone();
    let ws = workspace();
    let target = Target {
        imds: Some(&imds),
        workspace: Some(&ws),
        ..Default::default()
    };
    run_for(fake, &target, qs).await
}

async fn run_for(fake: &Fake, target: &Target<'_>, qs: &[Question]) -> Outcome {
    let limits = Limits {
        budget: Duration::from_secs(5),
        in_flight: 4,
    };
    Box::pin(attribute(&access(fake), target, qs, &limits)).await
}

fn says(a: &Attribution) -> String {
    a.azure
        .iter()
        .map(|f| format!("{:?} {:?} {}", f.kind, f.verdict.effect, f.verdict.says))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn each_cause_names_what_blocks_it_and_the_fix() {
    let fake = start_world(Twist::default()).await;
    let out = Box::pin(run(&fake, &questions())).await;
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let [smb, denied, zone, hf] = &out.answers[..] else {
        panic!("{out:?}")
    };

    // The NSG rule dropping 445, named, with an allow rule just before it.
    let blocker = smb.blocker().unwrap();
    assert_eq!(
        (blocker.kind, blocker.name.as_str(), blocker.basis),
        (FindingKind::NsgRule, "DenySmbOutbound", Basis::EffectiveRules)
    );
    assert!(
        blocker.verdict.says.contains(
            "denies TCP 445 to 20.60.1.1: NSG nsg-ml-subnet on the subnet, rule DenySmbOutbound (priority 300)"
        ),
        "{}",
        says(smb)
    );
    let change = smb.change.as_ref().unwrap();
    assert!(change.az.contains(&format!("az network nsg rule create --subscription {SUB} -g rg-net --nsg-name nsg-ml-subnet -n Allow-Storage-445 --priority 290 --direction Outbound --access Allow --protocol Tcp --destination-address-prefixes Storage --destination-port-ranges 445")), "{}", change.az);
    // The UDR to the firewall, and the firewall's default deny for 445 (no network rule).
    assert!(
        smb.azure
            .iter()
            .any(|f| f.kind == FindingKind::Route && f.verdict.effect == Effect::Redirects && f.name == "to-firewall"),
        "{}",
        says(smb)
    );
    assert!(
        smb.azure
            .iter()
            .any(|f| f.kind == FindingKind::FirewallRule && f.verdict.says.contains("default deny")),
        "{}",
        says(smb)
    );
    // This VM is in a customer VNet: the workspace's managed network governs its own computes,
    // not this one, so its outbound rules are neither read nor named.
    for answer in &out.answers {
        assert!(
            answer.azure.iter().all(|f| f.kind != FindingKind::OutboundRule)
                && answer.change.as_ref().is_none_or(|c| !c.az.contains("outbound-rule")),
            "{}",
            says(answer)
        );
    }
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.starts_with(&format!("GET {}?", workspace()))),
        "{:#?}",
        fake.requests()
    );

    // The firewall that sent HTTP 470: no application rule for management.azure.com.
    let fw = denied.blocker().unwrap();
    assert_eq!(
        (fw.kind, fw.resource.as_str()),
        (FindingKind::FirewallRule, policy().as_str())
    );
    assert_eq!(
        denied.change.as_ref().unwrap().az,
        format!(
            "az network firewall policy rule-collection-group collection add-filter-collection --subscription {SUB2} -g rg-hub --policy-name fwp-hub --rule-collection-group-name DefaultApplicationRuleCollectionGroup -n amlprobe-allow-management.azure.com --collection-priority 65000 --action Allow --rule-name amlprobe-allow-management.azure.com --source-addresses 10.1.0.4 --rule-type ApplicationRule --protocols Https=443 --target-fqdns management.azure.com"
        )
    );

    // The zone is linked to the hub only.
    let link = zone.blocker().unwrap();
    assert_eq!(link.kind, FindingKind::DnsLink);
    assert!(link.verdict.says.contains("is not linked to"), "{}", says(zone));
    assert!(zone.change.as_ref().unwrap().az.starts_with(&format!("az network private-dns link vnet create --subscription {SUB} -g rg-dns -z privatelink.api.azureml.ms -n link-vnet-ml -v {}", vnet())));
    assert!(
        zone.notes
            .iter()
            .any(|n| n.contains("answered 20.43.1.1 where the private endpoint is 10.1.0.5"))
    );

    // The NSG allows huggingface.co.
    assert!(
        hf.azure
            .iter()
            .any(|f| f.kind == FindingKind::NsgRule && f.verdict.effect == Effect::Allows)
    );

    // The long-running effective-routes POST was polled on ARM; the token went to ARM only and
    // never to IMDS.
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("GET {}/operationResults/op1", nic()))),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("skipToken=2")),
        "the subscriptions' nextLink was followed"
    );
    for r in &requests {
        assert_eq!(r.starts_with("GET /metadata/"), !r.contains(TOKEN), "{r}");
    }
}

#[tokio::test]
async fn a_zone_question_about_the_public_name_reads_its_record_in_the_zone() {
    // The runner asks about the name the probes used (the public one, which Azure's public DNS
    // CNAMEs into the privatelink zone), not the privatelink name.
    let fake = start_world(Twist::default()).await;
    let q = Question::Zone {
        zone: "privatelink.api.azureml.ms".into(),
        name: "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms".into(),
        expected_ip: None,
        observed: vec![],
        private_endpoint: None,
    };
    let out = Box::pin(run(&fake, &[q])).await;
    let answer = &out.answers[0];
    let link = answer.blocker().unwrap();
    assert_eq!(link.kind, FindingKind::DnsLink, "{}", says(answer));
    assert!(link.verdict.says.contains("is not linked to"), "{}", says(answer));
    assert!(
        answer.azure.iter().any(
            |f| f.kind == FindingKind::DnsZone && f.name == "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus"
        ),
        "{}",
        says(answer)
    );
    assert!(
        answer
            .change
            .as_ref()
            .unwrap()
            .az
            .starts_with("az network private-dns link vnet create"),
        "{answer:?}"
    );
    assert!(answer.notes.is_empty(), "{:?}", answer.notes);
}

#[tokio::test]
async fn one_collection_allows_every_denied_name_on_every_denied_protocol() {
    // login.microsoftonline.com passes on 443 (rule entra) but not on 80; management.azure.com
    // on neither: one collection for both names and both protocols, not one per port (each
    // would create a collection of the same name and priority).
    let fake = start_world(Twist::default()).await;
    let q = Question::FirewallDenied {
        fqdns: vec!["login.microsoftonline.com".into(), "management.azure.com".into()],
        ports: vec![80, 443],
    };
    let out = Box::pin(run(&fake, &[q])).await;
    let change = out.answers[0].change.as_ref().unwrap();
    let collections: Vec<&str> = change
        .az
        .lines()
        .filter(|l| l.contains("add-filter-collection"))
        .collect();
    assert_eq!(collections.len(), 1, "{}", change.az);
    assert!(
        collections[0].ends_with(
            "--rule-type ApplicationRule --protocols Http=80 Https=443 --target-fqdns login.microsoftonline.com management.azure.com"
        ),
        "{}",
        change.az
    );
    assert!(
        out.answers[0]
            .azure
            .iter()
            .any(|f| f.verdict.effect == Effect::Allows && f.verdict.says.contains("login.microsoftonline.com:443")),
        "{}",
        says(&out.answers[0])
    );
}

#[tokio::test]
async fn a_refused_permission_is_named_and_the_subnet_rules_still_decide() {
    let fake = start_world(Twist {
        forbid_effective_nsg: true,
        ..Default::default()
    })
    .await;
    let out = Box::pin(run(&fake, &questions()[..1])).await;
    assert!(
        out.warnings.iter().any(|w| w.contains("needs Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action (HTTP 403 (AuthorizationFailed))")),
        "{:?}",
        out.warnings
    );
    // Only the NSG verdicts were rebuilt: the warning says so, not "NSG and route".
    assert!(
        out.warnings.iter().any(|w| w
            == "Azure attribution: NSG verdicts are from the subnet's rules (not the NIC's effective rules)"),
        "{:?}",
        out.warnings
    );
    let blocker = out.answers[0].blocker().unwrap();
    assert_eq!(
        (blocker.name.as_str(), blocker.basis),
        ("DenySmbOutbound", Basis::SubnetRules)
    );
    // The routes were still effective ones.
    assert!(
        out.answers[0]
            .azure
            .iter()
            .any(|f| f.kind == FindingKind::Route && f.basis == Basis::EffectiveRules)
    );
}

#[tokio::test]
async fn a_uniform_scale_set_instance_is_said_and_its_vm_not_read() {
    let fake = start_world(Twist {
        uniform: true,
        ..Default::default()
    })
    .await;
    let out = Box::pin(run(&fake, &questions()[..1])).await;
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("uniform scale set aks-nodepool1-12345678-vmss")
                && w.contains("no effective security rules or routes API")),
        "{:?}",
        out.warnings
    );
    assert!(
        !fake.requests().iter().any(|r| r.contains("virtualMachines/vm1")),
        "{:?}",
        fake.requests()
    );
    assert!(
        out.answers[0].azure.is_empty(),
        "an AKS node is in a customer VNet: no managed-network rule decides it: {:?}",
        out.answers[0]
    );
}

#[tokio::test]
async fn an_azure_ml_compute_is_judged_from_its_subnet() {
    let fake = start_world(Twist {
        forbid_vm: true,
        ..Default::default()
    })
    .await;
    let imds = fake.url.clone();
    let subnet = subnet();
    let target = Target {
        imds: Some(&imds),
        subnet: Some(&subnet),
        azureml_compute: true,
        ..Default::default()
    };
    let out = Box::pin(run_for(&fake, &target, &questions()[..1])).await;
    assert!(
        out.warnings.iter().any(|w| w.contains("Microsoft-owned subscription")),
        "{:?}",
        out.warnings
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w.ends_with("from the subnet's rules (not the NIC's effective rules)")),
        "{:?}",
        out.warnings
    );
    let blocker = out.answers[0].blocker().unwrap();
    assert_eq!(
        (blocker.name.as_str(), blocker.basis),
        ("DenySmbOutbound", Basis::SubnetRules)
    );
    // The route table's UDR, rebuilt with the system routes, still leads to the firewall.
    assert!(out.answers[0].azure.iter().any(|f| f.kind == FindingKind::Route
        && f.basis == Basis::SubnetRules
        && f.verdict.effect == Effect::Redirects));
    assert!(
        out.answers[0].notes.iter().any(|n| n.contains("BGP")),
        "{:?}",
        out.answers[0].notes
    );
}

#[tokio::test]
async fn a_managed_compute_s_firewall_denial_names_the_missing_outbound_rule() {
    // On a managed network's compute, the VM and NIC can't be read; the managed network's
    // outbound rules decide, also for a denial seen as the firewall's (HTTP 470, a close after
    // the ClientHello).
    let fake = start_world(Twist {
        forbid_vm: true,
        ..Default::default()
    })
    .await;
    let imds = fake.url.clone();
    let ws = workspace();
    let target = Target {
        imds: Some(&imds),
        workspace: Some(&ws),
        azureml_compute: true,
        ..Default::default()
    };
    let q = Question::FirewallDenied {
        fqdns: vec!["huggingface.co".into(), "pypi.org".into()],
        ports: vec![443],
    };
    let out = Box::pin(run_for(&fake, &target, &[q, questions()[0].clone()])).await;
    // A storage account can't be reached by an FQDN rule: said, and no command guessed.
    let smb = &out.answers[1];
    assert!(
        smb.notes.iter().any(|n| n.contains("storage account name")),
        "{:?}",
        smb.notes
    );
    assert!(
        smb.change.as_ref().is_none_or(|c| !c.az.contains("outbound-rule")),
        "{:?}",
        smb.change
    );
    let answer = &out.answers[0];
    let blocker = answer.blocker().unwrap();
    assert_eq!(
        (blocker.kind, blocker.name.as_str()),
        (FindingKind::OutboundRule, "no matching outbound rule"),
        "{}",
        says(answer)
    );
    assert!(blocker.verdict.says.contains("huggingface.co:443"), "{}", says(answer));
    assert_eq!(
        answer.change.as_ref().unwrap().az,
        format!(
            "az ml workspace outbound-rule set --subscription {SUB} -g rg-ml --workspace-name mlws --rule allow-huggingface.co --type fqdn --destination huggingface.co"
        ),
        "the name the rule covers gets none"
    );
    assert!(
        answer
            .azure
            .iter()
            .any(|f| f.kind == FindingKind::OutboundRule && f.verdict.effect == Effect::Allows && f.name == "pypi"),
        "{}",
        says(answer)
    );
    assert!(
        answer.notes.iter().all(|n| !n.contains("routes could not be read")),
        "{:?}",
        answer.notes
    );
    assert!(
        out.warnings.iter().any(|w| w.contains("Microsoft-owned subscription")),
        "{:?}",
        out.warnings
    );
}

#[tokio::test]
async fn without_a_token_there_is_one_warning() {
    let out = without_access(&questions(), "no identity (IMDS: not an Azure VM)");
    assert_eq!(out.answers.len(), 4);
    assert_eq!(
        out.warnings,
        [
            "Azure attribution: no ARM token to read the network configuration with (no identity (IMDS: not an Azure VM))"
        ]
    );
}

/// An `Arm` on a fake, for the hostile-answer tests.
fn arm_on(fake: &Fake, budget: Duration, in_flight: usize) -> (Client, Url, ArmToken, Limits) {
    (
        Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
        fake.url.clone(),
        ArmToken::new(TOKEN).unwrap(),
        Limits { budget, in_flight },
    )
}

#[tokio::test]
async fn a_location_or_next_link_elsewhere_is_never_followed_with_the_token() {
    let elsewhere = fake_arm::start(|_, _| Reply::json(200, json!({"value": []}))).await;
    let evil = elsewhere.url.origin();
    let fake = fake_arm::start(move |method, target| match method {
        "POST" => Reply::raw(202, String::new())
            .header("Location", &format!("{evil}/steal?x=1"))
            .header("Retry-After", "0"),
        _ if target.starts_with("/list") => {
            Reply::json(200, json!({"value": [1], "nextLink": format!("{evil}/list2")}))
        }
        _ => Reply::not_found(),
    })
    .await;
    let (client, url, token, limits) = arm_on(&fake, Duration::from_secs(3), 2);
    let arm = read::Arm::new(&client, &url, &token, &limits);
    let e = arm
        .post_lro(
            "/subscriptions/s/x/effectiveRouteTable?api-version=1",
            "the routes",
            "p",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Unavailable::Refused { why, .. } if why.contains("not followed (the token is sent to ARM only)")),
        "{e}"
    );
    let e = arm.list("/list?api-version=1", "a list", "p").await.unwrap_err();
    assert!(e.to_string().contains("not followed"), "{e}");
    assert!(elsewhere.requests().is_empty(), "{:?}", elsewhere.requests());
}

#[tokio::test]
async fn crlf_in_an_id_and_a_huge_body_are_refused_not_sent_or_parsed() {
    let fake = fake_arm::start(|_, target| {
        if target.starts_with("/huge") {
            return Reply::raw(200, "[".repeat(3 * 1024 * 1024));
        }
        if target.starts_with("/metadata/instance") {
            return Reply::json(200, imds_body());
        }
        // The VM lists a NIC whose id would smuggle a header into the next request.
        Reply::json(200, json!({"properties": {"networkProfile": {"networkInterfaces": [
            {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n?x HTTP/1.1\r\nHost: evil\r\n\r\nGET /"}]}}}))
    })
    .await;
    let (client, url, token, limits) = arm_on(&fake, Duration::from_secs(3), 2);
    let arm = read::Arm::new(&client, &url, &token, &limits);
    let started = Instant::now();
    let e = arm.get("/huge?api-version=1", "a huge answer", "p").await.unwrap_err();
    assert!(matches!(e, Unavailable::Malformed { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let imds = fake.url.clone();
    let target = Target {
        imds: Some(&imds),
        ..Default::default()
    };
    let ev = gather::gather(&arm, &target, &questions()[..1]).await;
    assert!(
        ev.unavailable
            .iter()
            .any(|u| matches!(u, Unavailable::Refused { why, .. } if why.contains("is not an ARM path"))),
        "{:?}",
        ev.unavailable
    );
    assert!(
        !fake.requests().iter().any(|r| r.contains("evil")),
        "{:?}",
        fake.requests()
    );
    let warnings: Vec<String> = ev.unavailable.iter().map(Unavailable::warning).collect();
    assert!(
        warnings.iter().all(|w| !w.contains('\n') && !w.contains('\r')),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn the_budget_bounds_everything_and_requests_are_limited_in_flight() {
    let fake = fake_arm::start(|_, _| Reply::json(200, json!({})).after(Duration::from_secs(20))).await;
    let (client, url, token, limits) = arm_on(&fake, Duration::from_millis(400), 2);
    let arm = read::Arm::new(&client, &url, &token, &limits);
    let started = Instant::now();
    let e = arm.get("/slow?api-version=1", "a slow answer", "p").await.unwrap_err();
    assert!(matches!(e, Unavailable::Timeout { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // A fresh fake: the slow request above is still being held by the first.
    let fake = fake_arm::start(|_, _| Reply::json(200, json!({})).after(Duration::from_millis(100))).await;
    let (client, url, token, limits) = arm_on(&fake, Duration::from_secs(5), 2);
    let arm = read::Arm::new(&client, &url, &token, &limits);
    let gets: Vec<_> = (0..6)
        .map(|i| arm.get(format!("/fast/{i}?api-version=1"), "fast", "p"))
        .collect();
    assert!(read::join_all(gets).await.iter().all(Result::is_ok));
    assert!(
        fake.most_at_once.load(Ordering::SeqCst) <= 2,
        "{}",
        fake.most_at_once.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_long_one_ends_in_the_budget() {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = polls.clone();
    let host: std::sync::Arc<std::sync::OnceLock<String>> = std::sync::Arc::default();
    let h = host.clone();
    let fake = fake_arm::start(move |method, target| {
        let origin = h.get().cloned().unwrap_or_default();
        match (method, target.split('?').next().unwrap_or_default()) {
            ("POST", "/long") => Reply::raw(202, String::new())
                .header("Location", &format!("{origin}/op"))
                .header("Retry-After", "600"),
            ("POST", _) => Reply::raw(202, String::new())
                .header("Location", &format!("{origin}/op"))
                .header("Retry-After", "1"),
            ("GET", "/op") if p.fetch_add(1, Ordering::SeqCst) == 0 => Reply::raw(202, String::new())
                .header("Location", &format!("{origin}/op"))
                .header("Retry-After", "0"),
            _ => Reply::json(200, json!({"value": []})),
        }
    })
    .await;
    host.set(fake.url.origin()).unwrap();
    let (client, url, token, limits) = arm_on(&fake, Duration::from_secs(4), 2);
    let arm = read::Arm::new(&client, &url, &token, &limits);
    let started = Instant::now();
    let v = arm.post_lro("/op-start?api-version=1", "routes", "p").await.unwrap();
    assert_eq!(v, json!({"value": []}));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 2, "a second 202 is polled again");
    let e = arm.post_lro("/long?api-version=1", "routes", "p").await.unwrap_err();
    assert!(matches!(e, Unavailable::Timeout { .. }), "{e}");
}

#[test]
fn refusals_of_one_permission_collapse_into_one_warning() {
    let forbidden = |what: &str| Unavailable::Forbidden {
        what: what.into(),
        permission: "Microsoft.Network/azureFirewalls/read",
        code: String::new(),
    };
    let ev = gather::Evidence {
        unavailable: vec![
            forbidden("the Azure Firewalls in subscription a"),
            forbidden("the Azure Firewalls in subscription b"),
        ],
        ..Default::default()
    };
    assert_eq!(
        warnings(&ev),
        [
            "Azure attribution: reading the Azure Firewalls in subscription a needs Microsoft.Network/azureFirewalls/read (HTTP 403); 1 more reads were refused for the same permission"
        ]
    );
}

fn cause(kind: CauseKind, subject: &str, destinations: Vec<crate::report::schema::CauseDestination>) -> RootCause {
    RootCause {
        id: 1,
        kind,
        reason: crate::model::outcome::ReasonCode::TcpTimeout,
        subject: subject.into(),
        summary: String::new(),
        fix: String::new(),
        commands: vec!["az network nsg rule create -g <resource-group>".into()],
        destinations,
        resolver: None,
        service_tag: Some("Storage.eastus".into()),
        azure: Vec::new(),
        change: None,
        azure_notes: Vec::new(),
        required: true,
        required_flows: 1,
        flows: vec!["compute.storage_file".into()],
        probes: 1,
    }
}

/// `workspace.blob`: sa.blob.core.windows.net answered 10.1.0.9 where 10.1.0.5 was expected.
fn blob_flow() -> crate::report::schema::FlowReport {
    use crate::model::outcome::{ProbeStatus, ReasonCode};
    use crate::report::schema::{FlowReport, ProbeKind, ProbeReport};
    let host = "sa.blob.core.windows.net";
    let probe = ProbeReport {
        reason: Some(ReasonCode::DnsWrongIp),
        addresses: Some(vec!["10.1.0.9".parse().unwrap()]),
        expected_addresses: Some(vec!["10.1.0.5".parse().unwrap()]),
        ..ProbeReport::new(
            ProbeKind::Dns,
            host,
            None,
            None,
            ProbeStatus::Fail,
            crate::plan::Route::Direct,
        )
    };
    FlowReport {
        private_dns_zone: Some("privatelink.blob.core.windows.net".into()),
        ..FlowReport::sample("workspace.blob", vec![probe])
    }
}

fn to(host: &str, ports: &[u16]) -> crate::report::schema::CauseDestination {
    crate::report::schema::CauseDestination {
        host: host.into(),
        protocol: Protocol::Tcp,
        ports: ports.to_vec(),
        addresses: vec!["20.60.1.2".parse().unwrap()],
    }
}

#[test]
fn causes_raise_the_questions_arm_can_answer_and_take_back_the_answers() {
    let mut causes = vec![
        cause(
            CauseKind::Destination,
            "TCP 445 to sa.file.core.windows.net",
            vec![to("sa.file.core.windows.net", &[445])],
        ),
        cause(CauseKind::DnsServer, "10.0.0.4 (resolv.conf)", vec![to("a.test", &[])]),
        cause(
            CauseKind::FirewallRules,
            "direct",
            vec![to("a.test", &[80, 443]), to("b.test", &[443])],
        ),
        cause(
            CauseKind::PrivateDnsZone,
            "privatelink.blob.core.windows.net",
            vec![to("sa.blob.core.windows.net", &[]), to("sb.blob.core.windows.net", &[])],
        ),
    ];
    causes[3].flows = vec!["workspace.blob".into()];
    let asked = super::questions(&causes, &[blob_flow()]);
    let kinds: Vec<usize> = asked.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        kinds,
        [0, 2, 3, 3],
        "a resolver is no ARM configuration; a zone asks per name"
    );
    assert!(matches!(
        &asked[0].1,
        Question::Destination { service_tag: Some(t), ports, .. } if t == "Storage.eastus" && ports == &[445]
    ));
    assert!(matches!(
        &asked[1].1,
        Question::FirewallDenied { fqdns, ports } if fqdns == &["a.test", "b.test"] && ports == &[80, 443]
    ));
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(
        matches!(
            &asked[2].1,
            Question::Zone { name, expected_ip: Some(e), observed, .. }
                if name == "sa.blob.core.windows.net" && *e == ip("10.1.0.5") && observed == &[ip("10.1.0.9")]
        ),
        "the DNS probe tells what was expected and answered: {:?}",
        asked[2].1
    );
    assert!(
        matches!(&asked[3].1, Question::Zone { expected_ip: None, observed, .. } if observed.is_empty()),
        "a name no probe looked up has nothing to compare: {:?}",
        asked[3].1
    );
    let answer = |says: &str, az: &str| Attribution {
        azure: vec![AzureFinding {
            resource: "/subscriptions/s/x".into(),
            kind: FindingKind::NsgRule,
            name: "DenyAll".into(),
            detail: finding::Detail::FirewallDefault { policies: vec![] },
            verdict: finding::Verdict {
                effect: Effect::Blocks,
                says: says.into(),
            },
            basis: Basis::EffectiveRules,
        }],
        change: Some(Change {
            az: az.into(),
            bicep: None,
        }),
        notes: vec!["a note".into()],
    };
    join(
        &mut causes,
        &asked,
        vec![
            answer("denies 445", "az one"),
            Attribution::default(),
            answer("no record", "az two"),
            answer("no record", "az three"),
        ],
    );
    assert_eq!(causes[0].azure.len(), 1);
    assert_eq!(causes[0].change.as_ref().unwrap().az, "az one");
    assert_eq!(causes[3].azure.len(), 1, "the same finding twice is kept once");
    assert_eq!(causes[3].change.as_ref().unwrap().az, "az two\naz three");
    assert_eq!(causes[3].azure_notes, ["a note"]);
    assert!(causes[1].azure.is_empty() && causes[2].change.is_none());
}
