//! Atomic file output: data goes to a hidden temporary file in the target's
//! directory and is renamed over the target only once complete, so readers
//! (and a resumed run) see either the old file or the whole new one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files of other hosts, or of earlier versions whose names carry
/// no host, are removed only when older than this: their writer may be alive
/// on another machine sharing the folder (Slurm shards on NFS).
pub const STALE_AGE: Duration = Duration::from_secs(24 * 3600);

/// This machine's name as it appears in temporary file names: letters,
/// digits, `-` and `_` only, so the name parses back.
fn host_tag() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .or_else(|_| std::env::var("COMPUTERNAME"))
            .unwrap_or_default();
        let tag: String =
            raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect();
        if tag.is_empty() {
            "host".to_string()
        } else {
            tag
        }
    })
}

/// `.NAME.HOST~PID.TAG.tmp` beside `target`: unique across threads (TAG is a
/// counter or a caller's word), processes and hosts sharing one folder, and
/// parsed back by [`temp_owner`]. Every temporary file of the project is
/// named here.
pub fn temp_path_for(target: &Path, tag: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.{}~{}.{tag}.tmp", host_tag(), std::process::id()))
}

fn counter_temp_path(target: &Path) -> PathBuf {
    temp_path_for(target, &COUNTER.fetch_add(1, Ordering::Relaxed).to_string())
}

/// Who wrote a temporary file, from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TempOwner {
    /// `.NAME.HOST~PID.TAG.tmp`.
    Process {
        /// The writer's host name.
        host: String,
        /// The writer's process id on that host.
        pid: u32,
    },
    /// `.NAME.PID.N.tmp` of earlier versions: the host is unknown.
    Legacy {
        /// The writer's process id.
        pid: u32,
    },
}

/// The writer of a temporary file named by [`temp_path_for`] (or by earlier
/// versions); `None` for any other name.
pub fn temp_owner(file_name: &str) -> Option<TempOwner> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let (_tag, owner, _name) = (parts.next()?, parts.next()?, parts.next().filter(|n| !n.is_empty())?);
    match owner.split_once('~') {
        Some((host, pid)) if !host.is_empty() => {
            Some(TempOwner::Process { host: host.to_string(), pid: pid.parse().ok()? })
        }
        Some(_) => None,
        None => Some(TempOwner::Legacy { pid: owner.parse().ok()? }),
    }
}

/// Whether a temporary file can be removed: its writer on this host is gone,
/// or (other hosts, unknown hosts) it is older than [`STALE_AGE`].
fn is_stale(owner: &TempOwner, age: Option<Duration>) -> bool {
    let old = age.is_some_and(|a| a >= STALE_AGE);
    match owner {
        TempOwner::Process { host, pid } if host == host_tag() => {
            *pid != std::process::id()
                && Path::new("/proc/self").exists()
                && !Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => old,
    }
}

/// Removes the temporary files that killed runs left under `dir` (recursively)
/// and returns their paths. Files whose writer may still be alive are kept:
/// this host's live processes, and other hosts' files younger than [`STALE_AGE`].
pub fn remove_stale_temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for e in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok) {
        if !(e.file_type().is_file() || e.file_type().is_symlink()) {
            continue;
        }
        let Some(owner) = e.file_name().to_str().and_then(temp_owner) else { continue };
        let age = e.path().symlink_metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if is_stale(&owner, age) && fs::remove_file(e.path()).is_ok() {
            removed.push(e.into_path());
        }
    }
    removed
}

fn already_committed() -> io::Error {
    io::Error::other("atomic file already committed")
}

/// A file being written; it appears under its final name only on [`commit`].
/// Dropped without commit, the temporary file is removed.
///
/// [`commit`]: AtomicFile::commit
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the parent directories and a temporary file beside `target`.
    pub fn create(target: &Path) -> io::Result<Self> {
        if let Some(parent) = target.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)?;
            }
        }
        let temp = counter_temp_path(target);
        let file = File::create(&temp)?;
        Ok(AtomicFile { target: target.to_path_buf(), temp, writer: Some(BufWriter::new(file)) })
    }

    /// The open writer. It is only ever `None` after [`commit`](AtomicFile::commit)
    /// (which consumes `self`) or inside `Drop`, so this error is defensive.
    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.writer.as_mut().ok_or_else(already_committed)
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(writer) = self.writer.take() else {
            return Err(already_committed());
        };
        let result = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| fs::rename(&self.temp, &self.target));
        // A failed commit (disk full, target folder gone) must not leave the
        // temporary file behind: Drop no longer sees the writer.
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.txt");
        write_atomic(&target, b"one").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one");

        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"two, unfinished").unwrap();
        drop(f);
        assert_eq!(fs::read(&target).unwrap(), b"one");
        let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file must be removed on drop");
    }

    #[test]
    fn temp_names_parse_back() {
        let p = temp_path_for(Path::new("/x/report.json"), "7");
        let name = p.file_name().unwrap().to_str().unwrap();
        let pid = std::process::id();
        assert_eq!(temp_owner(name), Some(TempOwner::Process { host: host_tag().to_string(), pid }));
        assert_eq!(temp_owner(".a.b.c.12.3.tmp"), Some(TempOwner::Legacy { pid: 12 }));
        assert_eq!(
            temp_owner(".metrics.csv.node-7~99.link.tmp"),
            Some(TempOwner::Process { host: "node-7".into(), pid: 99 })
        );
        for other in ["a.1.2.tmp", ".a.x.2.tmp", "..1.2.tmp", ".a.1.2", ".a.~5.1.tmp", "notes.tmp"] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_files_of_dead_local_writers_or_old_foreign_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let me = std::process::id();
        let host = host_tag();
        let names = [
            format!(".a.jpg.{host}~4194303.0.tmp"), // this host, dead pid: removed
            format!(".b.jpg.{host}~{me}.0.tmp"),    // this process: kept
            ".c.jpg.othernode~1.0.tmp".to_string(), // another host, young: kept
            ".d.jpg.othernode~1.1.tmp".to_string(), // another host, two days old: removed
            ".e.jpg.4194303.0.tmp".to_string(),     // earlier version, young: kept
            "f.tmp".to_string(),                    // not ours: kept
        ];
        for n in &names {
            fs::write(d.join(n), b"x").unwrap();
        }
        let two_days = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
        fs::File::options().write(true).open(d.join(&names[3])).unwrap().set_modified(two_days).unwrap();
        let mut removed: Vec<String> =
            remove_stale_temp_files(d).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        removed.sort();
        assert_eq!(removed, [names[0].clone(), names[3].clone()]);
    }
}
