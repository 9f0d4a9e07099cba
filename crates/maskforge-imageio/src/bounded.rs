//! Reading files named by the user, bounded: only regular files (a FIFO would
//! hang, `/dev/zero` never ends), never more than a stated size, and text
//! lines no longer than a stated length, each refused with a one-line reason.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Why a bounded read refused a file.
#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file, as displayed.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A FIFO, device, socket or folder instead of a regular file.
    #[error("{path}: not a regular file ({kind}): give a file")]
    NotRegular {
        /// The file, as displayed.
        path: String,
        /// What it is instead, in words (`a FIFO`, `a device`...).
        kind: &'static str,
    },
    /// The file is larger than the caller's limit.
    #[error("{path}: file is {size} bytes, over the limit of {max} bytes for {what}")]
    TooLarge {
        /// The file, as displayed.
        path: String,
        /// Its size (or the bytes read before the limit was passed).
        size: u64,
        /// The limit, bytes.
        max: u64,
        /// What the file was read as (`a manifest`, `MTCNN weights`...).
        what: &'static str,
    },
    /// A text line is longer than the caller's limit.
    #[error("{path}:{line}: line longer than {max} bytes: not a {what}")]
    LongLine {
        /// The file, as displayed.
        path: String,
        /// The line, 1-based.
        line: usize,
        /// The limit, bytes.
        max: usize,
        /// What the file was read as.
        what: &'static str,
    },
}

impl BoundedError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> BoundedError + '_ {
        move |source| BoundedError::Io { path: path.display().to_string(), source }
    }
}

/// What kind of non-regular file `meta` describes, for the message.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed) of
/// at most `max` bytes; `what` names the file's role in the message. The
/// type is checked before opening, so a FIFO is never opened (which would
/// block until a writer appears).
pub fn open_regular(path: &Path, max: u64, what: &'static str) -> Result<File, BoundedError> {
    let meta = std::fs::metadata(path).map_err(BoundedError::io(path))?;
    if !meta.is_file() {
        return Err(BoundedError::NotRegular { path: path.display().to_string(), kind: kind_of(&meta) });
    }
    if meta.len() > max {
        return Err(BoundedError::TooLarge { path: path.display().to_string(), size: meta.len(), max, what });
    }
    File::open(path).map_err(BoundedError::io(path))
}

/// Reads a whole regular file of at most `max` bytes. The read itself is
/// capped too, so a file that grows while it is read cannot exceed `max`.
pub fn read_regular(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, BoundedError> {
    let file = open_regular(path, max, what)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(BoundedError::io(path))?;
    if bytes.len() as u64 > max {
        let size = bytes.len() as u64;
        return Err(BoundedError::TooLarge { path: path.display().to_string(), size, max, what });
    }
    Ok(bytes)
}

/// As [`read_regular`], for a line-based file: each line (without its line
/// break) at most `max_line` bytes, else refused naming its first overlong
/// line, so a binary or runaway file never reaches a parser.
pub fn read_regular_lines(path: &Path, max: u64, max_line: usize, what: &'static str) -> Result<Vec<u8>, BoundedError> {
    let bytes = read_regular(path, max, what)?;
    let line_length = |line: &[u8]| line.strip_suffix(b"\r").unwrap_or(line).len();
    if let Some(i) = bytes.split(|&b| b == b'\n').position(|line| line_length(line) > max_line) {
        return Err(BoundedError::LongLine { path: path.display().to_string(), line: i + 1, max: max_line, what });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only_and_within_their_limits() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one\ntwo\r\n").unwrap();
        assert_eq!(read_regular(&f, 100, "list").unwrap(), b"one\ntwo\r\n");
        assert_eq!(read_regular_lines(&f, 100, 3, "list").unwrap(), b"one\ntwo\r\n");
        let e = read_regular_lines(&f, 100, 2, "image list").unwrap_err().to_string();
        assert!(e.ends_with("a.txt:1: line longer than 2 bytes: not a image list"), "{e}");
        let e = read_regular(&f, 4, "landmarks file").unwrap_err().to_string();
        assert!(e.contains("file is 9 bytes, over the limit of 4 bytes for landmarks file"), "{e}");
        let e = read_regular(dir.path(), 4, "list").unwrap_err().to_string();
        assert!(e.contains("not a regular file (a folder)"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, "list").unwrap_err().to_string();
        assert_eq!(e, "/dev/zero: not a regular file (a device): give a file");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening a FIFO for reading with no writer blocks forever: this returns.
        let e = read_regular_lines(&fifo, 1 << 20, 100, "list").unwrap_err().to_string();
        assert!(e.ends_with("not a regular file (a FIFO): give a file"), "{e}");
    }
}
