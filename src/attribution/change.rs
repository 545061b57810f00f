//! Writing the commands a change consists of: ARM ids split into the parts `az` takes, and every
//! value shell-quoted. Values come from ARM answers, so one with a control character yields no
//! command at all rather than one that does something else when pasted.
//!
//! Flags were checked against the Azure CLI sources (see docs/attribution.md): `az network nsg
//! rule create` (azure-cli `network/aaz/latest/network/nsg/rule/_create.py`), `az network
//! private-dns link vnet create` (`privatedns/aaz/latest/network/private_dns/link/vnet/_create.py`),
//! `az network private-dns record-set a add-record|remove-record` (`privatedns/_params.py`),
//! `az network firewall policy rule-collection-group collection add-filter-collection`
//! (azure-cli-extensions `azure-firewall/azext_firewall/_params.py`), `az ml workspace
//! outbound-rule set` (azure-cli-extensions `machinelearningservices` `_workspace_outbound_rule.py`
//! and the Learn reference).

/// An ARM resource id, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmId {
    /// The whole id as given.
    pub id: String,
    /// `subscriptions/<this>`.
    pub subscription: String,
    /// `resourceGroups/<this>`.
    pub resource_group: String,
    /// The last segment.
    pub name: String,
}

impl ArmId {
    /// Splits `/subscriptions/<s>/resourceGroups/<g>/providers/…/<name>` (segment names in any
    /// case, as ARM treats them).
    pub fn parse(id: &str) -> Option<ArmId> {
        let parts: Vec<&str> = id.trim_end_matches('/').split('/').collect();
        let ok = parts.len() >= 7
            && parts[0].is_empty()
            && parts[1].eq_ignore_ascii_case("subscriptions")
            && parts[3].eq_ignore_ascii_case("resourcegroups")
            && parts[5].eq_ignore_ascii_case("providers")
            && parts.iter().skip(1).all(|p| !p.is_empty());
        ok.then(|| ArmId {
            id: id.to_string(),
            subscription: parts[2].to_string(),
            resource_group: parts[4].to_string(),
            name: parts[parts.len() - 1].to_string(),
        })
    }

    /// The id of the resource `levels` segments pairs up: a subnet's VNet is `parent(1)`.
    pub fn ancestor(&self, levels: usize) -> Option<String> {
        let parts: Vec<&str> = self.id.trim_end_matches('/').split('/').collect();
        let keep = parts.len().checked_sub(2 * levels)?;
        (keep >= 9).then(|| parts[..keep].join("/"))
    }
}

/// One shell word: bare when it holds only characters no shell treats specially, else in single
/// quotes. `None` for a value with a control character.
pub fn word(value: &str) -> Option<String> {
    if value.chars().any(char::is_control) {
        return None;
    }
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@,+-".contains(c));
    Some(if bare {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    })
}

/// Builds one command from literal words and `(flag, value)` pairs; `None` if a value cannot be
/// written safely.
pub fn command(words: &[&str], flags: &[(&str, &str)]) -> Option<String> {
    let mut out = words.join(" ");
    for (flag, value) in flags {
        out.push(' ');
        out.push_str(flag);
        out.push(' ');
        out.push_str(&word(value)?);
    }
    Some(out)
}

/// A name Azure accepts for a rule, record-less resource or link: word characters, `.`, `-`,
/// `_`, starting with a word character, at most 80 characters (the NSG and firewall rule name
/// rules in network-security-groups-overview.md and rule-processing.md).
pub fn rule_name(parts: &[&str]) -> String {
    let mut name = String::new();
    for c in parts.join("-").chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c
        } else {
            '-'
        };
        // A run of separators around a replaced character becomes one '-'.
        match (name.chars().last(), c) {
            (Some('-'), '-' | '.') => {}
            (Some('.'), '-') => {
                name.pop();
                name.push('-');
            }
            _ => name.push(c),
        }
    }
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    name.chars()
        .take(80)
        .collect::<String>()
        .trim_end_matches(['.', '-'])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_az_arguments() {
        let id = ArmId::parse(
            "/subscriptions/s1/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/ml",
        )
        .unwrap();
        assert_eq!(
            (id.subscription.as_str(), id.resource_group.as_str(), id.name.as_str()),
            ("s1", "rg-net", "ml")
        );
        assert_eq!(
            id.ancestor(1).unwrap(),
            "/subscriptions/s1/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet1"
        );
        assert!(id.ancestor(2).is_none(), "no ancestor above the top-level resource");
        assert!(ArmId::parse("/subscriptions/s1").is_none());
        assert!(ArmId::parse("subscriptions/s/resourceGroups/g/providers/x/y").is_none());
    }

    #[test]
    fn values_are_quoted_and_control_characters_refused() {
        assert_eq!(word("AzureResourceManager").unwrap(), "AzureResourceManager");
        assert_eq!(word("*.blob.core.windows.net").unwrap(), "'*.blob.core.windows.net'");
        assert_eq!(word("rg (prod)").unwrap(), "'rg (prod)'");
        assert_eq!(word("it's").unwrap(), r"'it'\''s'");
        assert_eq!(word("$(reboot)").unwrap(), "'$(reboot)'");
        assert!(word("a\nb").is_none());
        assert!(command(&["az", "x"], &[("-n", "ok"), ("-g", "bad\r")]).is_none());
        assert_eq!(command(&["az", "x"], &[("-n", "a b")]).unwrap(), "az x -n 'a b'");
    }

    #[test]
    fn rule_names_follow_azure_naming() {
        assert_eq!(
            rule_name(&["Allow", "AzureResourceManager", "443"]),
            "Allow-AzureResourceManager-443"
        );
        assert_eq!(
            rule_name(&["Allow", "*.blob.core.windows.net", "443"]),
            "Allow-blob.core.windows.net-443"
        );
        assert_eq!(rule_name(&["link", "vnet (1)"]), "link-vnet-1");
        assert!(rule_name(&["x"; 60]).len() <= 80);
    }
}
