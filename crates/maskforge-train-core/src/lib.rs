//! The tensor-free half of `maskforge train`, `eval` and `predict`:
//! everything that needs no libtorch, so that it builds and is tested in
//! seconds without it. `maskforge-train` (the tch adapter: models,
//! checkpoints' tensors, the training loop, evaluation passes, inference)
//! is built on top and re-exports what its callers use.
//!
//! # Layers
//!
//! A module uses only modules listed before it (no cycles):
//!
//! 1. [`plot`]: `curves.png` with plotters (depends on nothing here);
//! 2. [`error`]: [`TrainError`], the one error type of training;
//! 3. [`rng`], [`arch`], [`optim`]: seeded randomness, the backbones by
//!    name, optimiser kinds with the learning-rate schedule and loss scaler;
//! 4. [`augment`]: the seeds' augmentations, the realism ones (grey-scale,
//!    blur, JPEG, down-and-up scaling, erasing) and normalisation on images;
//! 5. [`config`]: [`TrainConfig`] and the range checks of every number;
//! 6. [`manifest`]: reading what `maskforge split` writes;
//! 7. [`data`]: dataset items and the threaded input pipeline;
//! 8. [`meta`]: the model description stored in checkpoints;
//! 9. [`state`], then [`event`]: per-epoch rows and training state,
//!    progress events;
//! 10. [`eval`], then [`report`]: evaluation results, `predictions.csv`,
//!     the classification report; [`scenes`]: `predict --labels`' score on
//!     labelled photos;
//! 11. [`datasets`], [`run`], [`resume`]: a run's checked inputs, the run
//!     folder's tensor-free files, and what `--resume` has left to do.

pub mod plot;

pub mod error;

pub mod arch;
pub mod optim;
pub mod rng;

pub mod augment;

pub mod config;

pub mod manifest;

pub mod data;

pub mod meta;

pub mod state;

pub mod event;

pub mod eval;

pub mod report;
pub mod scenes;

pub mod datasets;
pub mod resume;
pub mod run;

pub use arch::Arch;
pub use config::{check_loader_flags, LossKind, NormKind, TrainConfig};
pub use error::{Result, TrainError};
pub use eval::{EvalOptions, EvalOutcome, Prediction, Tta};
pub use event::{Event, Phase};
pub use meta::ModelMeta;
pub use report::EvalReport;
pub use resume::{resumed_config, ResumeChanges};
pub use run::{check_new_run, read_run_config, TrainSummary};
pub use state::{EpochRow, TrainState};
