//! Every file amlprobe reads or writes goes through here: inputs are read up to [`MAX_INPUT`]
//! (so `/dev/zero` or a runaway file costs 16 MiB, not the machine's memory) and outputs are
//! written whole or not at all, never through a symlink and never over a device, FIFO or
//! directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest input file amlprobe reads (config, suite, CA, private-endpoint and report files).
pub const MAX_INPUT: u64 = 16 << 20;

/// Reads `path` whole, refusing (without reading further) anything larger than [`MAX_INPUT`].
pub fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    read_bytes_capped(path, MAX_INPUT)
}

fn read_bytes_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    // One byte more than allowed tells "exactly the cap" from "too large".
    File::open(path)?.take(cap + 1).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB: refused", cap >> 20),
        ));
    }
    Ok(data)
}

/// [`read_bytes`] as UTF-8 text.
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bytes(path)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Why an output path is refused: `None` when it is absent or a regular file. A symlink at the
/// final component is refused whatever it points to (it is never followed).
pub fn unfit_output(path: &Path) -> io::Result<Option<&'static str>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            Ok(if t.is_file() {
                None
            } else if t.is_symlink() {
                Some("a symbolic link")
            } else if t.is_dir() {
                Some("a directory")
            } else {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::FileTypeExt;
                    if t.is_fifo() {
                        return Ok(Some("a FIFO"));
                    }
                    if t.is_char_device() || t.is_block_device() {
                        return Ok(Some("a device"));
                    }
                    if t.is_socket() {
                        return Ok(Some("a socket"));
                    }
                }
                Some("not a regular file")
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn refuse_unfit(path: &Path) -> io::Result<()> {
    match unfit_output(path)? {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}, not a regular file: refused (only regular files are replaced)"),
        )),
    }
}

/// A temporary file that is deleted when dropped, unless it was renamed into place.
struct Temp {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
        open_temporaries().remove(&self.path);
    }
}

/// The temporaries this process has open, so it never takes one of its own for stale.
fn open_temporaries() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<PathBuf>> {
    static OPEN: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// If `file` names a temporary [`create_temp`] made (`.NAME.PID.N.tmp`): NAME and PID.
fn temporary_of(file: &str) -> Option<(&str, u32)> {
    let inner = file.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let (n, pid, name) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(n) && !name.is_empty()).then_some(())?;
    Some((name, pid.parse().ok().filter(|_| digits(pid))?))
}

/// Whether process `pid` is gone, as far as this machine can tell (`/proc`; elsewhere it is
/// taken to be running, so nothing is removed).
fn gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes from `dir` the temporaries of the targets `for_target` names that a stopped run
/// left: one killed (SIGTERM, SIGKILL, a power cut) between creating its temporary and renaming
/// it. A temporary is stale when the process that made it is gone, or is this one and does not
/// have it open (a container's amlprobe is often PID 1 on every start). Only regular files with
/// exactly that name are removed; a failure to remove one is no error.
pub fn remove_stale_temporaries(dir: &Path, for_target: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((target, pid)) = name.to_str().and_then(temporary_of) else {
            continue;
        };
        let stale = if pid == std::process::id() {
            !open_temporaries().contains(&entry.path())
        } else {
            gone(pid)
        };
        if stale && for_target(target) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates a new, unique file beside `path`: `.NAME.PID.N.tmp` with `create_new`, so an
/// existing file (or a symlink planted under that name) is never opened.
fn create_temp(path: &Path, mode: u32) -> io::Result<(File, Temp)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "names no file"))?;
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp) {
            Ok(file) => {
                open_temporaries().insert(tmp.clone());
                return Ok((file, Temp { path: tmp, keep: false }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Writes `path` whole or not at all: `write` fills a new temporary file in the same directory,
/// which is flushed to disk and renamed over `path`. A target that exists and is not a regular
/// file (symlink, device, FIFO, directory) is refused and left alone. On every error (a full
/// disk, a failing `write`) the temporary file is removed and an older `path` stays as it was.
///
/// `mode` is the new file's permissions (before the umask); replacing a regular file keeps that
/// file's permissions instead, so a report made private stays private.
pub fn write_atomic(path: &Path, mode: u32, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    refuse_unfit(path)?;
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        remove_stale_temporaries(
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            |target| target == name,
        );
    }
    let (mut file, mut temp) = create_temp(path, mode)?;
    #[cfg(unix)]
    if let Ok(old) = std::fs::symlink_metadata(path)
        && old.file_type().is_file()
    {
        use std::os::unix::fs::PermissionsExt;
        let keep = std::fs::Permissions::from_mode(old.permissions().mode() & 0o7777);
        file.set_permissions(keep)?;
    }
    write(&mut file)?;
    file.flush()?;
    file.sync_all()?;
    drop(file);
    // Checked again just before the rename: the window for swapping in a symlink is short.
    refuse_unfit(path)?;
    std::fs::rename(&temp.path, path)?;
    temp.keep = true;
    // The rename itself is durable once the directory is synced (best effort: not every
    // file system allows opening a directory).
    #[cfg(unix)]
    if let Ok(dir) = File::open(
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    ) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// [`write_atomic`] with `contents`, mode 0644 before the umask.
pub fn write_text(path: &Path, contents: &str) -> io::Result<()> {
    write_atomic(path, 0o666, |f| f.write_all(contents.as_bytes()))
}

/// An input file named by a flag that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {}: {source}", path.display())]
pub struct InputError {
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The file.
    pub path: std::path::PathBuf,
    /// Why it could not be read.
    pub source: io::Error,
}

/// Reads an input file named by `flag`, at most [`MAX_INPUT`] bytes.
pub fn read_input(flag: &'static str, path: &Path) -> Result<String, InputError> {
    read_text(path).map_err(|source| InputError {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_a_regular_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_text(&path, "old").unwrap();
        write_text(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["r.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_permissions_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_text(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_text(&path, "new").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let fresh = dir.path().join("b.tar.gz");
        write_atomic(&fresh, 0o600, |f| f.write_all(b"x")).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// A disk that fills up half way: the old report stays, no temporary file is left.
    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_text(&path, "old report").unwrap();
        let e = write_atomic(&path, 0o666, |f| {
            f.write_all(b"first half")?;
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old report");
        assert_eq!(names(dir.path()), ["r.json"]);
        // And the same for a file that did not exist yet: nothing at all is left.
        let fresh = dir.path().join("new.json");
        assert!(write_atomic(&fresh, 0o666, |_| Err(io::Error::from_raw_os_error(28))).is_err());
        assert_eq!(names(dir.path()), ["r.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_fifos_directories_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        std::fs::write(&real, "untouched").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let device = dir.path().join("null.tar.gz");
        std::os::unix::fs::symlink("/dev/null", &device).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for (path, what) in [
            (&link, "a symbolic link"),
            (&dangling, "a symbolic link"),
            (&device, "a symbolic link"),
            (&fifo, "a FIFO"),
            (&sub, "a directory"),
        ] {
            let e = write_text(path, "overwritten").unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("refused"), "{path:?}: {e}");
        }
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "untouched");
        assert!(!dir.path().join("nowhere").exists());
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(std::fs::symlink_metadata(&device).unwrap().file_type().is_symlink());
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(
            &std::fs::symlink_metadata(&fifo).unwrap().file_type()
        ));
        assert_eq!(
            names(dir.path()),
            ["dangling.json", "fifo", "link.json", "null.tar.gz", "real.txt", "sub"]
        );
        // The real device itself, by its own name, is refused too (and never opened).
        assert_eq!(unfit_output(Path::new("/dev/null")).unwrap(), Some("a device"));
    }

    /// On Windows the replace is std's rename, MoveFileExW with MOVEFILE_REPLACE_EXISTING
    /// (library/std/src/sys/fs/windows.rs), so an older file is replaced, not refused.
    #[test]
    fn refuses_a_directory_and_replaces_a_file_on_every_platform() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("report.json");
        std::fs::create_dir(&sub).unwrap();
        let e = write_text(&sub, "x").unwrap_err().to_string();
        assert!(e.contains("a directory") && e.contains("refused"), "{e}");
        assert!(sub.is_dir());
        let file = dir.path().join("r.json");
        for text in ["first", "second, longer", "third"] {
            write_text(&file, text).unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        }
        assert_eq!(names(dir.path()), ["r.json", "report.json"]);
    }

    /// Windows' device names are not regular files: writing there is refused, nothing is created.
    #[cfg(windows)]
    #[test]
    fn refuses_windows_devices() {
        for device in ["NUL", "CON"] {
            assert!(write_text(Path::new(device), "x").is_err(), "{device}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(write_text(&dir.path().join("NUL"), "x").is_err());
        assert!(names(dir.path()).is_empty());
    }

    /// A run killed between creating its temporary and renaming it leaves `.NAME.PID.N.tmp`:
    /// the next write of NAME removes it, and nothing else.
    #[cfg(unix)]
    #[test]
    fn the_next_write_removes_temporaries_stopped_runs_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let me = std::process::id();
        let planted = [
            (format!(".r.json.{}.0.tmp", u32::MAX - 1), false), // a process long gone
            (format!(".r.json.{me}.77.tmp"), false),            // this one, not open
            (format!(".r.json.{}.3.tmp", 1), true),             // init: still running
            (format!(".other.json.{}.0.tmp", u32::MAX - 1), true), // another target
            (".r.json.x.0.tmp".to_string(), true),              // not a temporary's name
            (".r.json.123.tmp".to_string(), true),
        ];
        for (name, _) in &planted {
            std::fs::write(dir.path().join(name), "half").unwrap();
        }
        let as_dir = dir.path().join(format!(".r.json.{}.1.tmp", u32::MAX - 1));
        std::fs::create_dir(&as_dir).unwrap();
        write_text(&path, "whole").unwrap();
        for (name, kept) in &planted {
            assert_eq!(dir.path().join(name).exists(), *kept, "{name}");
        }
        assert!(as_dir.is_dir(), "only regular files are removed");
        assert_eq!(temporary_of(".a.b.json.12.3.tmp"), Some(("a.b.json", 12)));
        assert_eq!(temporary_of(".json.12.3.tmp"), Some(("json", 12)));
        assert_eq!(temporary_of("..12.3.tmp"), None);
    }

    #[test]
    fn reads_up_to_the_cap_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.toml");
        std::fs::write(&path, vec![b'a'; 1024]).unwrap();
        assert_eq!(read_bytes_capped(&path, 1024).unwrap().len(), 1024);
        let e = read_bytes_capped(&path, 1023).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_text(&path).unwrap_err().to_string().contains("UTF-8"));
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_input_stops_at_the_cap() {
        let started = std::time::Instant::now();
        let e = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("larger than 16 MiB"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
