//! A run's progress as `last.safetensors` records it: the per-epoch rows of
//! `metrics.csv` and the training state that `--resume` continues from.

use crate::optim::LossScaler;
use maskforge_imageio::Failure;
use serde::{Deserialize, Serialize};

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// The epoch, 1-based.
    pub epoch: usize,
    /// Learning rate of the epoch's last optimisation step.
    pub lr: f64,
    /// Mean training loss over the epoch's images.
    pub train_loss: f64,
    /// Training accuracy over the epoch (augmented images, in [0, 1]).
    pub train_acc: f64,
    /// Validation loss after the epoch.
    pub val_loss: f64,
    /// Validation accuracy after the epoch, in [0, 1].
    pub val_acc: f64,
    /// Training images seen (failures excluded).
    pub train_images: usize,
    /// Validation images evaluated (failures excluded).
    pub val_images: usize,
    /// Wall time of the whole epoch, training and validation, seconds.
    pub seconds: f64,
    /// Training throughput: images over the training pass's seconds.
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
    /// Lowest validation loss so far (infinite before the first epoch).
    pub best_val_loss: f64,
    /// The 1-based epoch that reached it (0 before the first epoch).
    pub best_epoch: usize,
    /// Epochs since the last improvement.
    pub bad_epochs: usize,
    /// Optimisation steps taken (Adam's bias correction continues from it).
    pub optimizer_steps: u64,
    /// The loss scaler of mixed precision, as the last step left it.
    pub scaler: LossScaler,
    /// Whether the patience ran out before the last epoch.
    pub stopped_early: bool,
    /// Every finished epoch's row, in order: `metrics.csv`.
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
