//! Defaults of the settings, each named once. `settings.rs` applies them after flags, the
//! environment and `--config` (so a value's source stays known), the help text states them,
//! and a test keeps the two in step.

/// `--timeout`, seconds.
pub const TIMEOUT_SECS: f64 = 5.0;
/// `--udp-timeout`, seconds, when it is below `--timeout`: inside a VNet an ICMP unreachable
/// comes back within milliseconds, so a silent port need not cost the whole timeout.
pub const UDP_TIMEOUT_CAP_SECS: f64 = 1.0;
/// The longest `--timeout` and `--udp-timeout` taken, seconds.
pub const MAX_TIMEOUT_SECS: f64 = 120.0;
/// `--attribution-budget`, seconds: issue 25 bounds all ARM reads behind the causes together.
pub const ATTRIBUTION_BUDGET_SECS: f64 = 10.0;
/// `--concurrency`.
pub const CONCURRENCY: usize = 64;
/// `--per-destination`.
pub const PER_DESTINATION: usize = 16;
/// `--dns-concurrency`.
pub const DNS_CONCURRENCY: usize = 64;
/// The largest `--concurrency`, `--per-destination` and `--dns-concurrency` taken.
pub const MAX_PARALLEL: usize = 4096;
/// `--keep-reports`.
pub const KEEP_REPORTS: usize = 48;
/// `serve --listen`: loopback unless asked, since `/report` tells a network's layout.
pub const LISTEN: &str = "127.0.0.1:9477";
/// `serve --interval`.
pub const INTERVAL: &str = "5m";
/// The shortest `serve --interval`: runs back to back would flood the resolver and the network.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// The help of `--flag` under `subcommand`.
    fn help(subcommand: &str, flag: &str) -> String {
        let cli = Cli::command();
        let sub = cli.find_subcommand(subcommand).unwrap();
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("{subcommand} has no --{flag}"));
        let mut text = arg.get_help().map(ToString::to_string).unwrap_or_default();
        for d in arg.get_default_values() {
            text.push_str(&format!(" [default: {}]", d.to_string_lossy()));
        }
        text
    }

    #[test]
    fn the_help_states_each_default_the_settings_apply() {
        let cases = [
            ("run", "timeout", format!("[default: {TIMEOUT_SECS}]")),
            ("run", "udp-timeout", format!("at most {UDP_TIMEOUT_CAP_SECS}]")),
            ("run", "concurrency", format!("[default: {CONCURRENCY}]")),
            ("run", "per-destination", format!("[default: {PER_DESTINATION}]")),
            ("run", "dns-concurrency", format!("[default: {DNS_CONCURRENCY}]")),
            (
                "run",
                "attribution-budget",
                format!("[default: {ATTRIBUTION_BUDGET_SECS}]"),
            ),
            ("run", "keep-reports", format!("[default: {KEEP_REPORTS}]")),
            ("serve", "listen", format!("[default: {LISTEN}]")),
            ("serve", "interval", format!("[default: {INTERVAL}]")),
        ];
        for (subcommand, flag, want) in cases {
            let text = help(subcommand, flag);
            assert!(text.contains(&want), "{subcommand} --{flag}: {text:?} lacks {want:?}");
        }
    }
}
