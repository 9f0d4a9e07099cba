use std::path::PathBuf;

/// Why training, evaluation or prediction could not proceed. Single bad
/// images are not errors: they are skipped and reported; these are the
/// problems that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("weights {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error("{what}: no usable images ({skipped} rows skipped; see the messages above)")]
    NoImages { what: String, skipped: usize },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }

    pub(crate) fn weights(path: impl Into<PathBuf>, message: impl Into<String>) -> TrainError {
        TrainError::Weights { path: path.into(), message: message.into() }
    }

    pub(crate) fn manifest(path: impl Into<PathBuf>, message: impl Into<String>) -> TrainError {
        TrainError::Manifest { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
