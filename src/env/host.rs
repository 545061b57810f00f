//! What a run reads from this machine before its settings are validated, gathered in one
//! place by the caller ([`HostFacts::gather`]): validation (`cli::settings`) then reads no file
//! and no environment of its own, and its tests start from [`HostFacts::default`] (nothing),
//! whatever the machine they run on. Plain data, each platform's readers filling the same
//! fields (adapter DNS and the registry's proxies on Windows).

use crate::env::sysproxy::{self, SystemProxy};
use crate::env::{imds, sysdns, workdir};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The machine's facts that settings depend on.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// This is an Azure VM (the DMI asset tag): IMDS and Azure DNS are asked only then.
    pub on_azure: bool,
    /// The system's resolvers (resolv.conf's and systemd-resolved's upstreams behind its stub;
    /// on Windows the adapters'); `--compare-resolvers` asks each.
    pub nameservers: Vec<IpAddr>,
    /// The machine's own proxy settings (Windows: Internet Options, WinHTTP), after the
    /// environment's proxy variables.
    pub system_proxy: SystemProxy,
    /// The process environment: the proxy variables, `AMLPROBE_ARM_TOKEN`, an Azure ML
    /// compute's variables and the identity variables discovery reads.
    pub environment: Environment,
    /// The Azure ML SDK's config file nearest the working directory, when there is one.
    pub sdk_config: Option<FoundFile>,
}

/// A file found by looking for it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it says.
    pub text: String,
}

impl HostFacts {
    /// Reads this machine's facts.
    pub fn gather() -> HostFacts {
        let sdk_config = std::env::current_dir()
            .ok()
            .and_then(|dir| workdir::find_sdk_config(&dir))
            .and_then(|path| {
                let text = crate::files::read_text(&path).ok()?;
                Some(FoundFile { path, text })
            });
        HostFacts {
            on_azure: imds::on_azure(),
            nameservers: sysdns::system_nameservers(),
            system_proxy: sysproxy::system(),
            environment: Environment::current(),
            sdk_config,
        }
    }
}

/// The process environment, read once. `Debug` shows the names only: values can be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// This process's variables (those whose name and value are text).
    pub fn current() -> Environment {
        std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect()
    }

    /// The value of `name`, if it is set (on Windows, whatever the case of its name, as
    /// `std::env::var` finds it there).
    pub fn get(&self, name: &str) -> Option<&str> {
        let exact = self.0.get(name);
        #[cfg(windows)]
        let exact = exact.or_else(|| {
            self.0
                .iter()
                .find_map(|(k, v)| k.eq_ignore_ascii_case(name).then_some(v))
        });
        exact.map(String::as_str)
    }

    /// A lookup by name, as the readers that take one want it.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name).map(str::to_string)
    }
}

impl FromIterator<(String, String)> for Environment {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Environment(pairs.into_iter().collect())
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_never_shows_its_values() {
        let env: Environment = [("AMLPROBE_ARM_TOKEN".to_string(), "secret-value".to_string())]
            .into_iter()
            .collect();
        assert_eq!(env.get("AMLPROBE_ARM_TOKEN"), Some("secret-value"));
        assert_eq!(env.lookup()("HOME"), None);
        let shown = format!(
            "{:?}",
            HostFacts {
                environment: env,
                ..HostFacts::default()
            }
        );
        assert!(
            shown.contains("AMLPROBE_ARM_TOKEN") && !shown.contains("secret-value"),
            "{shown}"
        );
    }
}
