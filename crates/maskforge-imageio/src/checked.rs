//! Files that read back whole or not at all, for caches: a caller's magic
//! (the layout and its version), the body, then a CRC-32 of both. A write
//! goes through [`write_atomic`](crate::write_atomic) after removing the
//! temporary files of writers killed mid-file in the same folder (a cache
//! file can be tens of megabytes); a read that finds another magic, a
//! short file or a wrong checksum finds nothing.

use crate::atomic::{remove_stale_temp_files, AtomicFile};
use std::io::{self, Write};
use std::path::Path;

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

/// A file read by [`read_checked`].
pub struct CheckedFile {
    bytes: Vec<u8>,
    body: std::ops::Range<usize>,
}

impl CheckedFile {
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
