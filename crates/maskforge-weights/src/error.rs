//! The one error type of the crate; every message is one line that names
//! the URL or file concerned and, where there is one, the way out.

use crate::model::Arch;
use std::path::PathBuf;

/// Why weights could not be fetched, converted, cached or found.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A checkpoint that cannot be read, or is not the model's state_dict.
    #[error("{origin}: {msg}; nothing was cached")]
    Checkpoint {
        /// The URL or file read.
        origin: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A file or folder that cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb (`read`, `create`, `rename`...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server could not be reached, answered with an error, or the
    /// transfer stopped.
    #[error("cannot download {url}: {msg}")]
    Download {
        /// The URL requested.
        url: String,
        /// The HTTP status or transport error, in words.
        msg: String,
    },
    /// A download over the size cap (`FetchRequest::max_bytes`,
    /// `--max-bytes`): announced by the server, or a body that goes on.
    #[error("cannot download {url}: {what} the limit of {max} bytes for a checkpoint (--max-bytes N raises it); {consequence}")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// How the cap was passed (announced size, or a body that went past it).
        what: String,
        /// The cap, bytes.
        max: u64,
        /// What was done about it (nothing written, partial file removed).
        consequence: &'static str,
    },
    /// The download folder has less free space than the download needs.
    #[error("not enough free space in {} to download {url}: {needed} bytes needed, {available} available", dir.display())]
    NoSpace {
        /// The download folder.
        dir: PathBuf,
        /// The URL requested.
        url: String,
        /// Bytes still to come.
        needed: u64,
        /// Bytes free in the folder's file system.
        available: u64,
    },
    /// A file named by the user (`--file`) that is not a regular file, or
    /// is over the size cap.
    #[error(transparent)]
    File(#[from] maskforge_imageio::BoundedError),
    /// The file is not the published one.
    #[error("SHA-256 of {origin} is {actual}, expected one starting with {expected} ({from}): {consequence}")]
    HashMismatch {
        /// The URL or file read.
        origin: String,
        /// Its SHA-256, lowercase hex.
        actual: String,
        /// The expected prefix.
        expected: String,
        /// Where the expected prefix came from (`--sha256`, the file name).
        from: &'static str,
        /// What was done about it (file removed, nothing cached).
        consequence: &'static str,
    },
    /// Bad flags or settings (no expected hash, no cache folder, ...).
    #[error("{0}")]
    Usage(String),
    /// `train --weights imagenet` before `maskforge weights fetch`.
    #[error("no ImageNet weights for {model} in {}: run `maskforge weights fetch {model}` first (or give --weights FILE.safetensors)", dir.display())]
    NotCached {
        /// The backbone asked for.
        model: Arch,
        /// The cache folder looked in.
        dir: PathBuf,
    },
}

impl WeightsError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WeightsError {
        let path = path.into();
        move |source| WeightsError::Io { action, path, source }
    }
}

/// The crate's result, [`WeightsError`] by default.
pub type Result<T, E = WeightsError> = std::result::Result<T, E>;
