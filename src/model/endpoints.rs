//! Expected private-endpoint addresses: from `--expect-ip FQDN=IP` and `--private-endpoints FILE`
//! (the JSON of `az network private-endpoint show`, `az network nic show`, or `fqdn ip` lines).

use crate::sanitize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Host name (lower-case, no trailing dot) → the addresses it must resolve to.
pub type ExpectedIps = BTreeMap<String, Vec<IpAddr>>;

fn add(map: &mut ExpectedIps, fqdn: &str, ip: IpAddr) {
    let key = fqdn.trim().trim_end_matches('.').to_ascii_lowercase();
    let entry = map.entry(key).or_default();
    if !entry.contains(&ip) {
        entry.push(ip);
    }
}

/// Parses one `--expect-ip` value.
pub fn parse_pair(value: &str, map: &mut ExpectedIps) -> Result<(), String> {
    let (fqdn, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("'{value}' is not FQDN=IP", value = sanitize::echo(value)))?;
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not an IP address", sanitize::echo(ip.trim())))?;
    if fqdn.trim().is_empty() || !fqdn.contains('.') {
        return Err(format!("'{fqdn}' is not a host name", fqdn = sanitize::echo(fqdn)));
    }
    add(map, fqdn, ip);
    Ok(())
}

/// Parses a private-endpoints file: JSON (object or array, searched for `customDnsConfigs` and
/// NIC `ipConfigurations`) or plain `fqdn ip` lines (`#` comments allowed).
pub fn parse_file(text: &str, map: &mut ExpectedIps) -> Result<usize, String> {
    let before: usize = map.values().map(Vec::len).sum();
    match serde_json::from_str::<Value>(text) {
        Ok(json) => collect_json(&json, map),
        Err(_) if text.trim_start().starts_with(['{', '[']) => return Err("is not valid JSON".into()),
        Err(_) => {
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(format!("line {}: expected 'fqdn ip'", i + 1));
                };
                // Accept either order, as hosts files put the address first.
                let (fqdn, ip) = if a.parse::<IpAddr>().is_ok() { (b, a) } else { (a, b) };
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("line {}: '{ip}' is not an IP address", i + 1, ip = sanitize::echo(ip)))?;
                add(map, fqdn, ip);
            }
        }
    }
    let added = map.values().map(Vec::len).sum::<usize>() - before;
    if added == 0 {
        return Err("names no FQDN with an IP address".into());
    }
    Ok(added)
}

fn collect_json(v: &Value, map: &mut ExpectedIps) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_json(i, map)),
        Value::Object(obj) => {
            // Private endpoint: customDnsConfigs[].{fqdn, ipAddresses[]}
            if let (Some(Value::String(fqdn)), Some(Value::Array(ips))) = (obj.get("fqdn"), obj.get("ipAddresses")) {
                ips.iter()
                    .filter_map(|i| i.as_str()?.parse().ok())
                    .for_each(|ip| add(map, fqdn, ip));
            }
            // NIC: ipConfigurations[].{privateIpAddress, privateLinkConnectionProperties.fqdns[]}
            if let (Some(Value::String(ip)), Some(Value::Array(fqdns))) = (
                obj.get("privateIpAddress")
                    .or_else(|| obj.get("properties").and_then(|p| p.get("privateIPAddress"))),
                obj.get("privateLinkConnectionProperties")
                    .or_else(|| {
                        obj.get("properties")
                            .and_then(|p| p.get("privateLinkConnectionProperties"))
                    })
                    .and_then(|p| p.get("fqdns")),
            ) && let Ok(ip) = ip.parse()
            {
                fqdns.iter().filter_map(Value::as_str).for_each(|f| add(map, f, ip));
            }
            obj.values().for_each(|child| collect_json(child, map));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_private_endpoint_json() {
        let pe = r#"{"name":"pe","customDnsConfigs":[{"fqdn":"ws.workspace.eastus.api.azureml.ms","ipAddresses":["10.1.0.5"]},
            {"fqdn":"ws.workspace.eastus.cert.api.azureml.ms","ipAddresses":["10.1.0.5"]}]}"#;
        let mut m = ExpectedIps::new();
        assert_eq!(parse_file(pe, &mut m).unwrap(), 2);
        assert_eq!(
            m["ws.workspace.eastus.api.azureml.ms"],
            vec!["10.1.0.5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn reads_nic_json() {
        let nic = r#"[{"IPAddress":"x","ipConfigurations":[{"privateIpAddress":"10.1.0.6",
            "privateLinkConnectionProperties":{"fqdns":["ml-ws-eastus-1.eastus.notebooks.azure.net"]}}]}]"#;
        let mut m = ExpectedIps::new();
        parse_file(nic, &mut m).unwrap();
        assert!(m.contains_key("ml-ws-eastus-1.eastus.notebooks.azure.net"));
    }

    #[test]
    fn reads_lines_and_pairs() {
        let mut m = ExpectedIps::new();
        parse_file(
            "# pe\nacct.blob.core.windows.net 10.1.0.9\n10.1.0.10 acct.file.core.windows.net\n",
            &mut m,
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        parse_pair("KV.vault.azure.net.=10.1.0.11", &mut m).unwrap();
        assert!(m.contains_key("kv.vault.azure.net"));
        assert!(parse_pair("kv.vault.azure.net", &mut m).is_err());
        assert!(parse_pair("kv.vault.azure.net=ten", &mut m).is_err());
        assert!(parse_file("just-one-field\n", &mut m).unwrap_err().contains("line 1"));
        assert!(parse_file("{}", &mut m).is_err());
    }
}
