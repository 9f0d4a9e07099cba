//! The one error type of the crate; every message is one line that names
//! the URL or file concerned and, where there is one, the way out.

use crate::model::Arch;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A checkpoint that cannot be read, or is not the model's state_dict.
    #[error("{origin}: {msg}; nothing was cached")]
    Checkpoint { origin: String, msg: String },
    /// A file or folder that cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server could not be reached, answered with an error, or the
    /// transfer stopped.
    #[error("cannot download {url}: {msg}")]
    Download { url: String, msg: String },
    /// A download over the size cap (`FetchRequest::max_bytes`,
    /// `--max-bytes`): announced by the server, or a body that goes on.
    #[error("cannot download {url}: {what} the limit of {max} bytes for a checkpoint (--max-bytes N raises it); {consequence}")]
    TooLarge { url: String, what: String, max: u64, consequence: &'static str },
    /// The download folder has less free space than the download needs.
    #[error("not enough free space in {} to download {url}: {needed} bytes needed, {available} available", dir.display())]
    NoSpace { dir: PathBuf, url: String, needed: u64, available: u64 },
    /// A file named by the user (`--file`) that is not a regular file, or
    /// is over the size cap.
    #[error(transparent)]
    File(#[from] maskforge_imageio::BoundedError),
    /// The file is not the published one.
    #[error("SHA-256 of {origin} is {actual}, expected one starting with {expected} ({from}): {consequence}")]
    HashMismatch { origin: String, actual: String, expected: String, from: &'static str, consequence: &'static str },
    /// Bad flags or settings (no expected hash, no cache folder, ...).
    #[error("{0}")]
    Usage(String),
    /// `train --weights imagenet` before `maskforge weights fetch`.
    #[error("no ImageNet weights for {model} in {}: run `maskforge weights fetch {model}` first (or give --weights FILE.safetensors)", dir.display())]
    NotCached { model: Arch, dir: PathBuf },
}

impl WeightsError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WeightsError {
        let path = path.into();
        move |source| WeightsError::Io { action, path, source }
    }
}

pub type Result<T, E = WeightsError> = std::result::Result<T, E>;
