//! Everything that touches image files on disk, shared by all stages:
//!
//! * [`load_rgb`]: decode any supported file into upright 8-bit RGB — format
//!   sniffed from content, EXIF orientation applied, size limits checked
//!   before any large allocation, a typed error naming the file otherwise;
//! * [`walk_images`]: the sorted list of image files under a root;
//! * [`DecodeBudget`]: the bytes the decoding workers of one run may hold at
//!   once ([`load_rgb_budgeted`]);
//! * [`atomic`]: write-to-temp-and-rename, so a killed run never leaves a
//!   half-written image or CSV behind;
//! * [`bounded`]: reads of user-named files: regular files only, sizes and
//!   line lengths capped;
//! * [`checked`]: checksummed files that read back whole or not at all (caches);
//! * [`digest`]: SHA-256 in lower-case hex ([`sha256_hex`], [`hex`]);
//! * [`confine`]: the one validator of paths read from data (CSVs,
//!   journals): plain relative paths only, never through a symlinked
//!   folder that leaves the root;
//! * [`guard`]: the check that no stage writes inside what it reads;
//! * [`journal`]: append-only journals of finished work, torn last lines
//!   tolerated (resume after `kill -9`);
//! * [`Failure`] and [`write_failures_csv`]: the skip report every stage writes.

pub mod atomic;
pub mod bounded;
mod budget;
pub mod checked;
pub mod confine;
pub mod digest;
pub mod guard;
pub mod journal;
mod load;
mod walk;

pub use atomic::{remove_stale_temp_files, temp_path_for, write_atomic, AtomicFile};
pub use bounded::{open_regular, read_regular, read_regular_lines, BoundedError};
pub use budget::{DecodeBudget, Reservation, MAX_JOBS, MIN_DEFAULT_BUDGET};
pub use checked::{read_checked, write_checked, CheckedFile};
pub use confine::{check_relative, confined, ConfineError};
pub use digest::{hex, sha256_hex, sha256_read};
pub use guard::{check_cache_folder, check_disjoint, resolve_existing_prefix, GuardError, Output};
pub use journal::LineJournal;
pub use load::{
    encode_image, jpeg_truncation, load_rgb, load_rgb_budgeted, load_rgb_from_bytes, save_rgb_atomic, upright_size,
    LoadError, LoadLimits, DECODE_BYTES_PER_PIXEL, MAX_PIXELS_LIMIT,
};
pub use walk::{is_image_path, walk_images, WalkOutput, IMAGE_EXTENSIONS, NON_UTF8_REASON, NOT_PORTABLE_REASON};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One input that a stage skipped, with a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Path relative to the input root (or as given, for single files).
    pub path: String,
    /// Why it was skipped, one line.
    pub reason: String,
}

impl Failure {
    /// The failure of `path`, for `reason`.
    pub fn new(path: impl Into<String>, reason: impl ToString) -> Self {
        Failure { path: path.into(), reason: reason.to_string() }
    }
}

/// Writes `failures.csv` (`path,reason`), sorted by path, atomically.
pub fn write_failures_csv(path: &Path, failures: &[Failure]) -> std::io::Result<()> {
    let mut sorted: Vec<&Failure> = failures.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
    let mut file = AtomicFile::create(path)?;
    {
        let mut w = csv::Writer::from_writer(&mut file);
        w.write_record(["path", "reason"])?;
        for f in sorted {
            w.write_record([&f.path, &f.reason])?;
        }
        w.flush()?;
    }
    file.commit()
}

/// Path relative to `root` with `/` separators, as written in every CSV.
pub fn relative_string(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}
