//! Azure Instance Metadata Service: where this VM is, for the report and as the default region
//! and cloud. Always direct (IMDS must never go through a proxy) and under a short deadline, so a
//! machine outside Azure loses at most that deadline.

use crate::http_client::{Client, Request, Url};
use crate::report::schema::ImdsInfo;
use crate::sanitize;
use serde_json::Value;
#[cfg(any(not(windows), test))]
use std::path::Path;
use std::time::Duration;

/// The documented link-local endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Every Azure VM carries this DMI chassis asset tag, the ASCII codes of "MSFT AZURE VM":
/// cloud-init's Azure datasource (`cloudinit/sources/azure/identity.py`,
/// `ChassisAssetTag.AZURE_CLOUD`) and Microsoft's own check ("If the asset tag is different than
/// 7783-7084-3265-9085-8269-3286-77", azure-docs `automation/troubleshoot/update-agent-issues-linux.md`,
/// "Dmidecode check") both compare the whole value.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Where the kernel publishes DMI data.
#[cfg(not(windows))]
const DMI_ROOT: &str = "/sys/class/dmi/id";

/// Whether this machine is an Azure VM, by its DMI chassis asset tag. The default endpoint is
/// only asked on Azure, so nothing is sent to 169.254.169.254 anywhere else.
#[cfg(not(windows))]
pub fn on_azure() -> bool {
    on_azure_under(Path::new(DMI_ROOT))
}

/// Whether this machine is an Azure VM, by the chassis asset tag in the SMBIOS table that
/// Windows' firmware table API returns (the same value Linux reads from DMI).
#[cfg(windows)]
pub fn on_azure() -> bool {
    smbioslib::raw_smbios_from_device()
        .ok()
        .and_then(|raw| super::smbios::chassis_asset_tag(&raw))
        .is_some_and(|tag| tag == AZURE_ASSET_TAG)
}

/// [`on_azure`] reading `chassis_asset_tag` under `dmi_root` (a fixture in tests).
#[cfg(any(not(windows), test))]
fn on_azure_under(dmi_root: &Path) -> bool {
    crate::files::read_text(&dmi_root.join("chassis_asset_tag")).is_ok_and(|t| t.trim() == AZURE_ASSET_TAG)
}

const PATH: &str = "/metadata/instance?api-version=2021-02-01";

/// Parses the `/metadata/instance` JSON.
pub fn parse(body: &str) -> Result<ImdsInfo, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("IMDS answered invalid JSON: {e}"))?;
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let nics = v
        .pointer("/network/interface")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut info = ImdsInfo {
        location: text("/compute/location").to_ascii_lowercase(),
        name: text("/compute/name"),
        vm_id: text("/compute/vmId"),
        vm_size: text("/compute/vmSize"),
        az_environment: text("/compute/azEnvironment"),
        resource_id: text("/compute/resourceId"),
        vm_scale_set_name: text("/compute/vmScaleSetName"),
        // tagsList rather than the `;`-joined tags string, which tags containing `;` break
        // (IMDS docs, "Tags").
        tag_names: v
            .pointer("/compute/tagsList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .take(64)
            .map(str::to_string)
            .collect(),
        ..Default::default()
    };
    for nic in &nics {
        for ip in nic
            .pointer("/ipv4/ipAddress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            info.private_ips
                .extend(ip.get("privateIpAddress").and_then(Value::as_str).map(str::to_string));
        }
        for net in nic
            .pointer("/ipv4/subnet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(a), Some(p)) = (
                net.get("address").and_then(Value::as_str),
                net.get("prefix").and_then(Value::as_str),
            ) {
                info.subnets.push(format!("{a}/{p}"));
            }
        }
    }
    if info.location.is_empty() && info.vm_id.is_empty() {
        return Err("IMDS answered without compute metadata".into());
    }
    Ok(info)
}

/// `--imds-endpoint`: an `http://host[:port]` URL (IMDS is plain HTTP and never proxied).
pub fn parse_endpoint(url: &str) -> Result<Url, String> {
    match Url::parse(url) {
        Ok(u) if !u.tls => Ok(u),
        Ok(_) => Err(format!("'{}' must start with http://", sanitize::echo(url))),
        Err(e) => Err(format!("'{}' {e}", sanitize::echo(url))),
    }
}

/// Fetches instance metadata within `timeout`: directly, never through a proxy.
pub async fn fetch(endpoint: &Url, timeout: Duration) -> Result<ImdsInfo, String> {
    let client = Client::plain();
    let url = endpoint.join(PATH);
    let request = Request {
        method: "GET",
        url: &url,
        headers: vec![("Metadata", "true".into())],
        body: None,
    };
    let response = client
        .send(request, timeout)
        .await
        .map_err(|e| format!("{e} (not an Azure VM?)"))?;
    if response.status != 200 {
        return Err(format!("IMDS answered HTTP {}", response.status));
    }
    parse(&response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::context::Cloud;

    #[test]
    fn recognises_the_full_azure_asset_tag_only() {
        let dir = tempfile::tempdir().unwrap();
        let tag = |value: &str| {
            std::fs::write(dir.path().join("chassis_asset_tag"), value).unwrap();
            on_azure_under(dir.path())
        };
        assert!(
            tag("7783-7084-3265-9085-8269-3286-77\n"),
            "the tag a real Azure VM shows"
        );
        assert!(!tag("7783-7084-3265-9085\n"), "a truncated tag is not Azure");
        assert!(!tag("None\n"), "Hyper-V outside Azure");
        std::fs::remove_file(dir.path().join("chassis_asset_tag")).unwrap();
        assert!(!on_azure_under(dir.path()), "no DMI data");
    }

    /// Under Wine the table comes from the host's DMI data; on Windows from the firmware.
    #[cfg(windows)]
    #[test]
    fn the_firmware_table_api_returns_a_table_that_parses() {
        let raw = smbioslib::raw_smbios_from_device().expect("GetSystemFirmwareTable('RSMB')");
        let length = u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize;
        assert_eq!(raw.len(), 8 + length, "RawSMBIOSData header and table");
        // Whatever the tag, reading it must agree with on_azure().
        let tag = crate::env::smbios::chassis_asset_tag(&raw);
        assert_eq!(on_azure(), tag.as_deref() == Some(AZURE_ASSET_TAG));
    }

    const SAMPLE: &str = r#"{"compute":{"azEnvironment":"AzurePublicCloud","location":"EastUS","name":"ci-alice",
        "resourceId":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/ci-alice",
        "vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6","vmSize":"Standard_DS3_v2"},
        "network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.1.2.4","publicIpAddress":""}],
        "subnet":[{"address":"10.1.2.0","prefix":"24"}]},"ipv6":{"ipAddress":[]},"macAddress":"000D3AF806EC"}]}}"#;

    #[test]
    fn parses_the_documented_shape() {
        let i = parse(SAMPLE).unwrap();
        assert_eq!(i.location, "eastus");
        assert_eq!(i.cloud(), Some(Cloud::Public));
        assert_eq!(i.private_ips, vec!["10.1.2.4"]);
        assert_eq!(i.subnets, vec!["10.1.2.0/24"]);
        assert!(parse("{}").is_err());
        assert!(parse("<html>").is_err());
        assert_eq!(i.aks_node(), None, "a plain VM is not an AKS node");
    }

    #[test]
    fn an_aks_node_is_told_by_its_tags() {
        // The shape of an AKS node's compute metadata: a uniform scale set in the node resource
        // group, tagged by AKS.
        let node = SAMPLE.replace(
            r#""vmSize":"Standard_DS3_v2""#,
            r#""vmSize":"Standard_DS3_v2","vmScaleSetName":"aks-nodepool1-12345678-vmss",
            "tagsList":[{"name":"aks-managed-poolName","value":"nodepool1"},{"name":"team","value":"ml"}]"#,
        );
        let i = parse(&node).unwrap();
        assert_eq!(i.vm_scale_set_name, "aks-nodepool1-12345678-vmss");
        assert_eq!(i.tag_names, ["aks-managed-poolName", "team"]);
        assert!(i.aks_node().unwrap().contains("aks-managed-poolName"));
    }

    #[test]
    fn endpoint_forms() {
        let url = parse_endpoint("http://169.254.169.254").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("169.254.169.254", 80));
        let url = parse_endpoint("http://127.0.0.1:8080/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 8080));
        assert!(parse_endpoint("https://x").is_err());
        assert!(parse_endpoint("http://:80").is_err());
    }

    #[tokio::test]
    async fn fetches_from_a_server_and_sends_the_metadata_header() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 2048];
            let n = s.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{SAMPLE}", SAMPLE.len());
            s.write_all(reply.as_bytes()).await.unwrap();
            request
        });
        let info = fetch(
            &parse_endpoint(&format!("http://127.0.0.1:{port}")).unwrap(),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(info.vm_size, "Standard_DS3_v2");
        assert!(server.await.unwrap().contains("Metadata: true"));
    }

    #[tokio::test]
    async fn a_silent_endpoint_costs_only_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let started = std::time::Instant::now();
        let err = fetch(
            &parse_endpoint(&format!("http://127.0.0.1:{port}")).unwrap(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2) && err.contains("did not answer within"),
            "{err}"
        );
    }
}
