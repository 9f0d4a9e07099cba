//! Fine-tuning and evaluating face-mask classifiers with tch (libtorch):
//! the library behind `maskforge train`, `eval` and `predict`.
//!
//! This crate is the tch adapter; everything that needs no tensors (the
//! run configuration, manifests and the input pipeline, augmentations,
//! schedules, checkpoint metadata, reports, `curves.png`) is
//! `maskforge-train-core`, tested without libtorch and re-exported here
//! under the same module names.
//!
//! # Layers
//!
//! A module uses only modules listed before it (no cycles):
//!
//! 1. [`error`]: [`TrainError`] (the core's) and libtorch's errors into it;
//! 2. [`device`]: `--device` and the libtorch version;
//! 3. [`model`]: ResNet50/ResNet18/MobileNetV2 backbones in torchvision's
//!    names with a replaced head;
//! 4. [`data`]: the pipeline's batches as tensors;
//! 5. [`optim`]: SGD/Adam/AdamW with saveable state;
//! 6. [`checkpoint`]: safetensors in and out;
//! 7. [`criterion`]: the loss functions;
//! 8. [`eval`]: evaluation passes, `maskforge eval`;
//! 9. [`predictor`]: a checkpoint for inference; then [`explain`]:
//!    occlusion maps; then [`predict`]: photos in, annotated photos and
//!    `predictions.csv` out (faces from a [`predict::FaceFinder`]);
//! 10. [`resume`]: reading `last.safetensors` back;
//! 11. [`train`]: the training loop.

pub mod error;

pub mod device;

pub mod model;

pub mod data;

pub mod optim;

pub mod checkpoint;

pub mod criterion;

pub mod eval;

pub mod predictor;

pub mod explain;

pub mod predict;

pub mod resume;

pub mod train;

pub use maskforge_train_core::{
    augment, config, datasets, event, manifest, meta, plot, report, rng, run, scenes, state,
};

pub use device::LIBTORCH_VERSION;
pub use error::TrainError;
pub use eval::{eval_into, eval_manifest, EvalOptions};
pub use maskforge_train_core::{
    check_loader_flags, check_new_run, read_run_config, resumed_config, Arch, EpochRow, Event, LossKind, ModelMeta,
    NormKind, Phase, ResumeChanges, TrainConfig, TrainSummary, Tta,
};
pub use model::Classifier;
pub use predictor::{Ensemble, Predictor};
pub use train::train;
