//! The one way contracts read a file a user names: a regular file (a FIFO
//! would hang, `/dev/zero` never ends) under a size cap, and for line-based
//! formats with a cap on line length, so a runaway or binary file is refused
//! with one line before it costs gigabytes to parse.

use crate::ContractError;
use std::path::Path;

/// Largest `--list` file and manifest CSV.
pub const MAX_LIST_BYTES: u64 = 1 << 30;
/// Largest face file (`--landmarks`: detect's CSV, a plain CSV, FFHQ's JSON)
/// and `annotations.csv`.
pub const MAX_TABLE_BYTES: u64 = 4 << 30;
/// Longest line of a CSV or list: a path is at most 4 KiB on Linux, and a
/// row of 68 landmarks is about 2 KiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The bytes of `path` (a regular file of at most `max` bytes), each line at
/// most `max_line` bytes when given; `what` names the file in messages.
pub(crate) fn read_bounded(
    path: &Path,
    max: u64,
    max_line: Option<usize>,
    what: &'static str,
) -> Result<Vec<u8>, ContractError> {
    let read = match max_line {
        Some(max_line) => maskforge_imageio::read_regular_lines(path, max, max_line, what),
        None => maskforge_imageio::read_regular(path, max, what),
    };
    read.map_err(|e| match e {
        // A plain I/O error stays one, as every reader reports it.
        maskforge_imageio::BoundedError::Io { source, .. } => ContractError::io(path)(source),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runaway_lines_and_devices_are_refused_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("list.txt");
        std::fs::write(&f, format!("a.jpg\n{}\n", "x".repeat(100))).unwrap();
        assert!(read_bounded(&f, 1000, Some(100), "image list").is_ok());
        let e = read_bounded(&f, 1000, Some(99), "image list").unwrap_err().to_string();
        assert!(e.ends_with("list.txt:2: line longer than 99 bytes: not a image list"), "{e}");
        let e = read_bounded(Path::new("/dev/zero"), 1000, None, "image list").unwrap_err().to_string();
        assert_eq!(e, "/dev/zero: not a regular file (a device): give a file");
    }
}
