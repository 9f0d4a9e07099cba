//! Files that read back whole or not at all, for caches: a caller's magic
//! (the layout and its version), the body, then a CRC-32 of both. A write
//! goes through [`write_atomic`](crate::write_atomic) after removing the
//! temporary files of writers killed mid-file in the same folder (a cache
//! file can be tens of megabytes); a read that finds another magic, a
//! short file or a wrong checksum finds nothing.

use crate::atomic::{remove_stale_temp_files, AtomicFile};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Bytes of the checksum at the end.
const SUM_LEN: usize = 4;

/// Writes `magic`, `body` and their checksum to `path`, atomically.
pub fn write_checked(path: &Path, magic: &[u8], body: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        remove_stale_temp_files(dir);
    }
    let mut sum = crc32fast::Hasher::new();
    sum.update(magic);
    sum.update(body);
    let mut f = AtomicFile::create(path)?;
    f.write_all(magic)?;
    f.write_all(body)?;
    f.write_all(&sum.finalize().to_le_bytes())?;
    f.commit()
}

/// The body of a file written by [`write_checked`] with the same `magic`,
/// if the file is whole.
pub fn read_checked(path: &Path, magic: &[u8]) -> Option<CheckedFile> {
    let bytes = std::fs::read(path).ok()?;
    let end = bytes.len().checked_sub(SUM_LEN).filter(|&end| end >= magic.len())?;
    let ok = bytes.starts_with(magic) && crc32fast::hash(&bytes[..end]).to_le_bytes()[..] == bytes[end..];
    ok.then_some(CheckedFile { bytes, body: magic.len()..end })
}

/// How long a cache file of another build is kept after it was written:
/// another build (another clone, another commit) running at the same time
/// keeps its files, so two builds in use side by side do not take turns
/// removing each other's.
pub const SUPERSEDED_AFTER: Duration = Duration::from_secs(60 * 60);

/// Removes the files in `kept`'s folder that `same_family` (given a file name)
/// says are other versions of the same cache file, other keys of another
/// build or input, once they were last written more than
/// [`SUPERSEDED_AFTER`] ago; `kept` itself stays. A cache calls it after it
/// wrote `kept`, so a folder holds the newest build's files and those written
/// in the last hour, not one copy per build ever run. Best effort; returns
/// what it removed.
///
/// Safe with other processes: hidden names (writers' temporary files, see
/// [`crate::temp_path_for`]) are never touched; a file appears only whole,
/// by rename; a reader that already opened a removed file reads it to the
/// end, and one that misses it builds the file again and writes it back.
pub fn remove_superseded(kept: &Path, same_family: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    remove_superseded_at(kept, same_family, SystemTime::now(), SUPERSEDED_AFTER)
}

fn remove_superseded_at(
    kept: &Path,
    same_family: impl Fn(&str) -> bool,
    now: SystemTime,
    age: Duration,
) -> Vec<PathBuf> {
    let (Some(dir), Some(own)) = (kept.parent(), kept.file_name()) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        if name == own || text.starts_with('.') || !same_family(text) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let written = meta.modified().unwrap_or(now);
        let old = now.duration_since(written).is_ok_and(|since| since > age);
        if meta.is_file() && old && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// A file read by [`read_checked`].
pub struct CheckedFile {
    bytes: Vec<u8>,
    body: std::ops::Range<usize>,
}

impl CheckedFile {
    /// The bytes between the magic and the checksum, as written.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_back_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/x.bin");
        write_checked(&path, b"MAGIC01", b"the body").unwrap();
        assert_eq!(read_checked(&path, b"MAGIC01").unwrap().body(), b"the body");
        assert!(read_checked(&path, b"MAGIC02").is_none(), "another layout");
        let bytes = std::fs::read(&path).unwrap();
        for damaged in [
            bytes[..bytes.len() - 1].to_vec(),
            [&bytes[..9], &[bytes[9] ^ 1][..], &bytes[10..]].concat(),
            bytes[..3].to_vec(),
            Vec::new(),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            assert!(read_checked(&path, b"MAGIC01").is_none(), "{damaged:?}");
        }
        assert!(read_checked(&dir.path().join("none"), b"MAGIC01").is_none());
    }

    #[test]
    fn superseded_files_of_the_family_go_once_older_than_the_grace_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, hours_ago: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            let when = SystemTime::now() - Duration::from_secs(hours_ago * 3600);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
            path
        };
        let kept = at("m-new.bin", 5); // the file just read or written, however old
        let old = at("m-old.bin", 2);
        let fresh = at("m-other.bin", 0); // another build's, written within the hour
        let other_family = at("t-old.bin", 2);
        let temp = at(".m-old.bin.host~1.0.tmp", 2); // a writer's temporary file
        std::fs::create_dir(dir.path().join("m-dir.bin")).unwrap();
        let family = |name: &str| name.starts_with("m-") && name.ends_with(".bin");
        let removed = remove_superseded(&kept, family);
        assert_eq!(removed, vec![old.clone()]);
        for path in [&kept, &fresh, &other_family, &temp] {
            assert!(path.exists(), "{} was removed", path.display());
        }
        assert!(dir.path().join("m-dir.bin").is_dir());
        // With no grace, every other file of the family goes; a missing folder is no error.
        let later = SystemTime::now() + Duration::from_secs(1);
        assert_eq!(remove_superseded_at(&kept, family, later, Duration::ZERO), vec![fresh]);
        assert!(kept.exists());
        assert!(remove_superseded(&dir.path().join("none/m-new.bin"), family).is_empty());
    }

    #[test]
    fn a_write_removes_what_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        // The temporary file of a process that no longer exists on this host.
        let ours = crate::temp_path_for(&target, "1");
        let name =
            ours.file_name().unwrap().to_string_lossy().replace(&format!("~{}.", std::process::id()), "~999999999.");
        let orphan = dir.path().join(name);
        std::fs::write(&orphan, b"half a file").unwrap();
        write_checked(&target, b"M", b"body").unwrap();
        assert!(!orphan.exists(), "the killed writer's file is still there");
        assert_eq!(read_checked(&target, b"M").unwrap().body(), b"body");
    }
}
