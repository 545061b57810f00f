//! Reading reports back (for `diff` and `merge`): only the fields those need, so reports from
//! other amlprobe versions with extra fields still load.

use crate::model::outcome::FlowStatus;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A report file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an amlprobe JSON report.
    #[error("{path}: not an amlprobe report ({message})")]
    Parse {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A directory held no report.
    #[error("{0}: no *.json report in this directory")]
    EmptyDirectory(String),
}

/// The parts of a report `diff` and `merge` read.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedReport {
    /// JSON contract version.
    pub schema_version: u32,
    /// Start time.
    pub started_at: String,
    /// The machine.
    pub host: SavedHost,
    /// Every flow.
    pub flows: Vec<SavedFlow>,
    /// Root causes (absent from reports older than them).
    #[serde(default)]
    pub root_causes: Vec<SavedCause>,
    /// The settings that decide its exit code.
    #[serde(default)]
    pub settings: SavedSettings,
    /// The file it was read from.
    #[serde(skip)]
    pub origin: String,
}

/// The machine a saved report came from.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedHost {
    /// Host name.
    pub hostname: String,
}

/// The settings of a saved report that decide its exit code.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SavedSettings {
    /// `--strict`: inconclusive or skipped required flows failed that run too.
    #[serde(default)]
    pub strict: bool,
}

/// One flow of a saved report.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedFlow {
    /// Flow id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Whether it fails the run when blocked.
    pub required: bool,
    /// The verdict.
    pub status: FlowStatus,
    /// Reason code, kept as text so codes from newer versions still load.
    pub reason: Option<String>,
    /// What happened.
    pub message: String,
    /// What to change.
    #[serde(default)]
    pub hint: Option<String>,
}

/// One root cause of a saved report.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedCause {
    /// Its number in that report.
    pub id: u32,
    /// Reason code, as text.
    pub reason: String,
    /// The shared thing (DNS server, zone, issuer, proxy, port and service tag, host).
    pub subject: String,
    /// What is wrong.
    pub summary: String,
    /// What to change.
    #[serde(default)]
    pub fix: String,
    /// The flows it explains.
    pub flows: Vec<String>,
}

impl SavedCause {
    /// What makes two reports' causes the same cause: the reason and subject (ids and counts
    /// differ from run to run).
    pub fn key(&self) -> (&str, &str) {
        (&self.reason, &self.subject)
    }
}

/// Reads one report file.
pub fn load(path: &Path) -> Result<SavedReport, LoadError> {
    let text = crate::files::read_text(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, path)
}

/// Reads a report file's `text`, read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<SavedReport, LoadError> {
    let shown = path.display().to_string();
    let mut report: SavedReport = serde_json::from_str(text).map_err(|e| LoadError::Parse {
        path: shown.clone(),
        message: crate::sanitize::parser_message(&e.to_string()),
    })?;
    // Every version so far has the fields read here (schema 2 regrouped root causes, whose
    // id, reason, subject, summary, fix and flows stay), so a fleet mid-upgrade still merges.
    if !(1..=crate::report::SCHEMA_VERSION).contains(&report.schema_version) {
        return Err(LoadError::Parse {
            path: shown,
            message: format!(
                "schema_version {} where this amlprobe reads 1 to {}",
                report.schema_version,
                crate::report::SCHEMA_VERSION
            ),
        });
    }
    report.origin = shown;
    Ok(report)
}

/// The report files `paths` name: files as given, and every `*.json` in directories (sorted by
/// name).
pub fn report_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| LoadError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect();
            if found.is_empty() {
                return Err(LoadError::EmptyDirectory(path.display().to_string()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads report files, and every `*.json` in directories (sorted by name).
#[cfg(test)]
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<SavedReport>, LoadError> {
    report_files(paths)?.iter().map(|f| load(f)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::test_support::sample_report;

    #[test]
    fn a_written_report_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, sample_report().to_json()).unwrap();
        let saved = load(&path).unwrap();
        assert_eq!(saved.host.hostname, "node-a");
        assert_eq!(saved.flows.len(), 2);
        assert_eq!(saved.flows[1].status, FlowStatus::Blocked);
        assert_eq!(saved.flows[1].reason.as_deref(), Some("tcp_timeout"));
        assert_eq!(saved.root_causes[0].subject, "TCP 443 to Storage");
        assert_eq!(saved.root_causes[0].flows, ["w.blob"]);
        assert_eq!(load_all(&[dir.path().to_path_buf()]).unwrap().len(), 1);
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "{\"schema_version\": 1}").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not an amlprobe report", path.display())),
            "{e}"
        );
        std::fs::write(
            &path,
            sample_report()
                .to_json()
                .replace("\"schema_version\": 2", "\"schema_version\": 9"),
        )
        .unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("schema_version 9"));
        std::fs::write(
            &path,
            sample_report()
                .to_json()
                .replace("\"schema_version\": 2", "\"schema_version\": 1"),
        )
        .unwrap();
        assert!(load(&path).is_ok(), "a report of schema 1 still loads");
        let e = load(&dir.path().join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_all(&[empty.path().to_path_buf()]),
            Err(LoadError::EmptyDirectory(_))
        ));
    }
}
