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

/// Whether `name` is exactly what [`file_name`] writes: `amlprobe-`, 8 digits, `T`, 6 digits,
/// `.`, 3 digits, `Z.json`. Rotation touches nothing else, whoever put it there.
fn is_own_name(name: &str) -> bool {
    let Some(stamp) = name.strip_prefix(PREFIX).and_then(|n| n.strip_suffix("Z.json")) else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match stamp.split_once('T').map(|(date, rest)| (date, rest.split_once('.'))) {
        Some((date, Some((clock, millis)))) => digits(date, 8) && digits(clock, 6) && digits(millis, 3),
        _ => false,
    }
}

/// Writes `json` as a new timestamped report and as `latest.json` in `dir` (created if
/// missing), then deletes the oldest timestamped reports beyond `keep`: only regular files
/// whose names amlprobe writes (a directory or link under such a name is left alone). Returns
/// the new file.
pub fn write_rotated(dir: &Path, json: &str, keep: usize) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    // A run stopped while writing an earlier report left its temporary: removed here, as the
    // next write of that same name (latest.json) would.
    crate::files::remove_stale_temporaries(dir, is_own_name);
    let path = dir.join(file_name(time::OffsetDateTime::now_utc()));
    // Whole or not at all: readers (and `latest.json` watchers) never see half a report.
    crate::files::write_text(&path, json)?;
    crate::files::write_text(&dir.join(LATEST), json)?;
    let mut reports: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_own_name))
        // The entry's own type: a symbolic link is not followed.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Files amlprobe did not write are never deleted, names that sort after the timestamps
    /// don't push out each run's own report, and a directory under a report's name is skipped.
    #[test]
    fn rotation_deletes_only_its_own_reports() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = [
            "amlprobe-notes.json",
            "amlprobe-zz-after-every-timestamp.json",
            "amlprobe-zzz.json",
            "amlprobe-2026.json",
            "amlprobe-20261125T101500.123Z.json.bak",
            "amlprobe-20261125T101500Z.json",
            "amlprobe-20261125T1015001.23Z.json",
            "xamlprobe-20200101T000000.000Z.json",
        ];
        for name in foreign {
            std::fs::write(dir.path().join(name), "not ours").unwrap();
        }
        let planted_dir = "amlprobe-20000101T000000.000Z.json";
        std::fs::create_dir(dir.path().join(planted_dir)).unwrap();
        std::fs::write(dir.path().join(planted_dir).join("keep"), "x").unwrap();
        let old = "amlprobe-20000101T000000.001Z.json";
        std::fs::write(dir.path().join(old), "{\"run\":\"old\"}").unwrap();
        let mut written = Vec::new();
        for i in 0..3 {
            written.push(write_rotated(dir.path(), &format!("{{\"run\":{i}}}"), 2).expect("never an error"));
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        for kept in &written[1..] {
            assert!(kept.exists(), "each run keeps its own report: {kept:?}");
        }
        assert!(!written[0].exists() && !dir.path().join(old).exists());
        let left = names(dir.path());
        for name in foreign.iter().chain([&planted_dir]) {
            assert!(left.iter().any(|n| n == name), "{name} was deleted: {left:?}");
        }
        assert!(dir.path().join(planted_dir).join("keep").exists());
        assert_eq!(left.len(), foreign.len() + 1 + 2 + 1, "{left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_under_a_reports_name_is_not_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.json");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("amlprobe-20000101T000000.000Z.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_rotated(dir.path(), "{}", 1).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    /// A run stopped while writing its timestamped report left that name's temporary: the next
    /// rotation removes it (a foreign temporary-like name stays).
    #[cfg(unix)]
    #[test]
    fn rotation_removes_temporaries_stopped_runs_left() {
        let dir = tempfile::tempdir().unwrap();
        let gone = u32::MAX - 1;
        let stale = dir
            .path()
            .join(format!(".amlprobe-20000101T000000.000Z.json.{gone}.0.tmp"));
        let foreign = dir.path().join(format!(".notes.json.{gone}.0.tmp"));
        std::fs::write(&stale, "half").unwrap();
        std::fs::write(&foreign, "not ours").unwrap();
        write_rotated(dir.path(), "{}", 3).unwrap();
        assert!(!stale.exists() && foreign.exists(), "{:?}", names(dir.path()));
    }

    #[test]
    fn own_names_are_exactly_the_timestamp_format() {
        assert!(is_own_name(&file_name(
            time::macros::datetime!(2026-11-25 09:59:59.999 UTC)
        )));
        for other in [
            "amlprobe-.json",
            "amlprobe-20261125T095959.999Z.json ",
            "amlprobe-2026112aT095959.999Z.json",
            LATEST,
        ] {
            assert!(!is_own_name(other), "{other}");
        }
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
