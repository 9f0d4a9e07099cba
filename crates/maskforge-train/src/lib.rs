//! Fine-tuning and evaluating face-mask classifiers with tch (libtorch):
//! the library behind `maskforge train`, `eval` and `predict`.
//!
//! * [`manifest`]: reads what `maskforge split` writes;
//! * [`data`] and [`augment`]: the threaded input pipeline and the seeds'
//!   augmentations;
//! * [`model`]: ResNet50/ResNet18/MobileNetV2 backbones in torchvision's
//!   names with a replaced head; [`checkpoint`]: safetensors in and out;
//! * [`optim`]: SGD/Adam/AdamW with saveable state, schedules, loss scaling;
//! * [`train`]: the loop; [`resume`]: what `--resume` reads back and
//!   completes; [`eval`]: losses and evaluation; [`report`]: the
//!   classification report; [`plot`]: `curves.png`; [`explain`]: occlusion
//!   maps; [`font`]: the built-in bitmap font used for labels.

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod explain;
pub mod font;
pub mod manifest;
pub mod model;
pub mod optim;
pub mod plot;
pub mod report;
pub mod resume;
pub mod rng;
pub mod train;

pub use checkpoint::ModelMeta;
pub use error::TrainError;
pub use eval::{eval_manifest, EvalOptions};
pub use model::{Arch, Classifier};
pub use train::{train, Event, LossKind, NormKind, Phase, Predictor, TrainConfig, TrainSummary};

/// The libtorch version this crate was built against (from the torch wheel).
pub const LIBTORCH_VERSION: &str = env!("MASKFORGE_LIBTORCH_VERSION");
