//! The one error type of training, evaluation and prediction, shared by the
//! tensor-free core and the tch adapter (`maskforge-train`).

use std::path::PathBuf;

/// Why training, evaluation or prediction could not proceed. Single bad
/// images are not errors: they are skipped and reported; these are the
/// problems that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A manifest, `classes.csv`, `stats.json` or `split.json` that cannot
    /// be read or used.
    #[error("{path}: {message}")]
    Manifest {
        /// The file (or the manifest folder).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A weights file or checkpoint that cannot be read or does not fit the model.
    #[error("weights {path}: {message}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Settings that cannot work together, or inputs that do not fit them
    /// (the message names the flag or file).
    #[error("{0}")]
    Config(String),
    /// A numeric setting outside its range (`allowed` reads "in (0, 1]").
    #[error("{flag} must be {allowed}, got {value}")]
    OutOfRange {
        /// The flag, e.g. `--lr`.
        flag: &'static str,
        /// The range in words.
        allowed: &'static str,
        /// The value given, as text.
        value: String,
    },
    /// The loss stopped being a number (`what`: "loss" in training, "val
    /// loss"): the weights are ruined, so nothing of the epoch is saved.
    #[error("training diverged: {what} is {} at epoch {epoch}{}; lower --lr (was {})",
        describe_non_finite(*value), step.map(|s| format!(" step {s}")).unwrap_or_default(), short_number(*lr))]
    Diverged {
        /// `loss` or `val loss`.
        what: &'static str,
        /// The epoch it happened in.
        epoch: usize,
        /// The optimisation step within the epoch (training loss only).
        step: Option<usize>,
        /// The loss: NaN or infinite.
        value: f64,
        /// The learning rate at the time.
        lr: f64,
    },
    /// `--resume` of a run killed before its first epoch ended.
    #[error("{}: no epoch has finished yet (no last.safetensors), so there is nothing to resume; start the run again without --resume", run.display())]
    NothingToResume {
        /// The run folder.
        run: PathBuf,
    },
    /// A manifest (or a dataset) with no usable image left.
    #[error("{what}: no usable images ({skipped} rows skipped; see the messages above)")]
    NoImages {
        /// What was empty (the manifest's name).
        what: String,
        /// Its rows that were skipped.
        skipped: usize,
    },
    /// `curves.png` could not be drawn.
    #[error("{path}: {source}")]
    Plot {
        /// The image being written.
        path: PathBuf,
        /// The plotting error.
        source: crate::plot::PlotError,
    },
    /// A libtorch call failed; the message is libtorch's (this crate does
    /// not link libtorch, so `maskforge-train` converts its errors).
    #[error("torch: {0}")]
    Torch(String),
    /// The run folder and the inputs overlap.
    #[error(transparent)]
    Guard(#[from] maskforge_imageio::GuardError),
}

impl TrainError {
    /// For `map_err`: an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }

    /// A [`TrainError::Weights`] about `path`.
    pub fn weights(path: impl Into<PathBuf>, message: impl Into<String>) -> TrainError {
        TrainError::Weights { path: path.into(), message: message.into() }
    }

    /// A [`TrainError::Manifest`] about `path`.
    pub fn manifest(path: impl Into<PathBuf>, message: impl Into<String>) -> TrainError {
        TrainError::Manifest { path: path.into(), message: message.into() }
    }
}

fn describe_non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else {
        "infinite"
    }
}

/// `1e12` rather than `1000000000000`, `0.01` rather than `1e-2`.
pub(crate) fn short_number(v: f64) -> String {
    let plain = v.to_string();
    let scientific = format!("{v:e}");
    if plain.len() > scientific.len() + 2 {
        scientific
    } else {
        plain
    }
}

/// Training's result, [`TrainError`] by default.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergence_reads_as_one_line() {
        let e = TrainError::Diverged { what: "loss", epoch: 1, step: Some(3), value: f64::NAN, lr: 1e12 };
        assert_eq!(e.to_string(), "training diverged: loss is NaN at epoch 1 step 3; lower --lr (was 1e12)");
        let e = TrainError::Diverged { what: "val loss", epoch: 2, step: None, value: f64::INFINITY, lr: 0.5 };
        assert_eq!(e.to_string(), "training diverged: val loss is infinite at epoch 2; lower --lr (was 0.5)");
        assert_eq!([short_number(0.01), short_number(1e-5), short_number(0.002)], ["0.01", "1e-5", "0.002"]);
    }
}
