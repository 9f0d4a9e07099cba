use std::path::PathBuf;

/// Why a manifest set cannot be read or used. Bad *rows* are not errors:
/// they are skipped and reported (see [`crate::Manifest::skipped`]).
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file that is not a regular file, or too large, or with a runaway line.
    #[error(transparent)]
    Bounded(#[from] maskforge_imageio::BoundedError),
    /// A path that is not a plain path inside its folder.
    #[error(transparent)]
    Confined(#[from] maskforge_imageio::ConfineError),
    /// The file is not what it should be (no `path` column, bad classes.csv...).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with the line, where there is one).
        message: String,
    },
    /// A file of a manifest set is not the one `split.json` records.
    #[error("{file} does not match split.json in {dir}: the manifest set is mixed (a killed split?); run split again")]
    Mixed {
        /// The folder of the set.
        dir: PathBuf,
        /// The file's name in it.
        file: String,
    },
    /// `split.json` records a file that is not there.
    #[error("{file} is listed in split.json in {dir} but missing: the manifest set is incomplete (a killed split?); run split again")]
    Missing {
        /// The folder of the set.
        dir: PathBuf,
        /// The missing file's name.
        file: String,
    },
    /// A file beside `split.json` that it does not list.
    #[error("{file} is not part of the manifest set recorded in split.json in {dir} (left from an earlier split, or copied in?); run split again or move it elsewhere")]
    NotInSet {
        /// The folder of the set.
        dir: PathBuf,
        /// The unlisted file's name.
        file: String,
    },
    /// `split.json` says a split was still writing the set.
    #[error("the manifest set in {dir} is incomplete: split.json says a split was still writing it (a killed split?); run split again")]
    Incomplete {
        /// The folder of the set.
        dir: PathBuf,
    },
}

impl ContractError {
    /// For `map_err`: an I/O error on `path` as [`ContractError::Io`].
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ContractError {
        let path = path.into();
        move |source| ContractError::Io { path, source }
    }

    /// A [`ContractError::Format`] about `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> ContractError {
        ContractError::Format { path: path.into(), message: message.into() }
    }
}
