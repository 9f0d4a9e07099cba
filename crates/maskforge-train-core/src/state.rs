//! A run's progress as `last.safetensors` records it: the per-epoch rows of
//! `metrics.csv` and the training state that `--resume` continues from.

use crate::optim::LossScaler;
use maskforge_imageio::Failure;
use serde::{Deserialize, Serialize};

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub train_images: usize,
    pub val_images: usize,
    pub seconds: f64,
    pub train_images_per_s: f64,
    /// This epoch's weights became `best.safetensors`.
    pub best: bool,
}

impl EpochRow {
    /// The line `maskforge train` prints after the epoch.
    pub fn line(&self) -> String {
        format!(
            "epoch {:>3}  lr {:.2e}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  {:.1} img/s  {:.1}s{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_acc,
            self.val_loss,
            self.val_acc,
            self.train_images_per_s,
            self.seconds,
            if self.best { "  * best" } else { "" }
        )
    }
}

/// What `last.safetensors` remembers besides weights and optimiser state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Completed epochs.
    pub epoch: usize,
    pub best_val_loss: f64,
    pub best_epoch: usize,
    /// Epochs since the last improvement.
    pub bad_epochs: usize,
    pub optimizer_steps: u64,
    pub scaler: LossScaler,
    pub stopped_early: bool,
    pub history: Vec<EpochRow>,
    /// Training images that could not be read, for the final report: kept
    /// here so that a run finished by `--resume` reports them too.
    #[serde(default)]
    pub skipped_train: Vec<Failure>,
}

impl TrainState {
    /// The state before the first epoch.
    pub fn fresh() -> Self {
        TrainState {
            epoch: 0,
            best_val_loss: f64::INFINITY,
            best_epoch: 0,
            bad_epochs: 0,
            optimizer_steps: 0,
            scaler: LossScaler::default(),
            stopped_early: false,
            history: Vec::new(),
            skipped_train: Vec::new(),
        }
    }
}
