//! Errors: the one error type, [`TrainError`], is `maskforge_train_core`'s
//! (this crate re-exports it); libtorch's own errors become its `Torch`
//! variant through [`torch`].

pub use maskforge_train_core::error::{Result, TrainError};

/// For `map_err`: a failed libtorch call as a [`TrainError`].
pub fn torch(e: tch::TchError) -> TrainError {
    TrainError::Torch(e.to_string())
}
