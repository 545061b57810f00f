//! `--report-dir`: one JSON file per run plus `latest.json`, keeping only the newest N, so a
//! systemd timer or cloud-init can run amlprobe forever without filling the disk.

use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "amlprobe-";
/// The copy of the newest report that watchers read.
pub const LATEST: &str = "latest.json";

/// `amlprobe-20261125T101500.123Z.json`: sorts by time as text.
fn file_name(now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:3]Z");
    format!("{PREFIX}{}.json", now.format(&format).unwrap_or_default())
}

/// Writes `json` as a new timestamped report and as `latest.json` in `dir` (created if
/// missing), then deletes the oldest timestamped reports beyond `keep`. Returns the new file.
pub fn write_rotated(dir: &Path, json: &str, keep: usize) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(time::OffsetDateTime::now_utc()));
    // Whole or not at all: readers (and `latest.json` watchers) never see half a report.
    crate::files::write_text(&path, json)?;
    crate::files::write_text(&dir.join(LATEST), json)?;
    let mut reports: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && Path::new(n).extension().is_some_and(|e| e == "json"))
        })
        .collect();
    reports.sort();
    let excess = reports.len().saturating_sub(keep.max(1));
    for old in &reports[..excess] {
        std::fs::remove_file(old)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_reports_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not ours").unwrap();
        let mut written = Vec::new();
        for i in 0..5 {
            written.push(write_rotated(dir.path(), &format!("{{\"run\":{i}}}"), 3).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 5, "3 reports + latest.json + notes.txt: {names:?}");
        for kept in &written[2..] {
            assert!(kept.exists(), "{kept:?}");
        }
        assert!(!written[0].exists() && !written[1].exists());
        assert_eq!(std::fs::read_to_string(dir.path().join(LATEST)).unwrap(), "{\"run\":4}");
        assert!(dir.path().join("notes.txt").exists());
    }

    #[cfg(unix)]
    #[test]
    fn never_writes_through_a_planted_latest_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(LATEST)).unwrap();
        let e = write_rotated(dir.path(), "{}", 3).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")),
            "no temporary file is left"
        );
    }

    #[test]
    fn names_sort_by_time() {
        let a = file_name(time::macros::datetime!(2026-11-25 09:59:59.999 UTC));
        let b = file_name(time::macros::datetime!(2026-11-25 10:00:00.000 UTC));
        assert_eq!(a, "amlprobe-20261125T095959.999Z.json");
        assert!(a < b);
    }
}
