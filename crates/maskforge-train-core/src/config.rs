//! What a run depends on: `TrainConfig` (saved as `config.json`, reused by
//! `--resume`), its enums, and the range checks of every number in it.

use crate::arch::Arch;
use crate::augment::AugmentConfig;
use crate::error::{Result, TrainError};
use crate::optim::{OptimizerKind, ScheduleKind};
use maskforge_imageio::LoadLimits;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The loss of a run (`--loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy over N logits.
    Ce,
    /// Binary cross-entropy with logits over one logit (2 classes; seed
    /// 000's `BCEWithLogitsLoss`, `fc = Linear(2048, 1)`); the logit is the
    /// score of class index 1.
    Bce,
}

impl FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ce" | "cross-entropy" | "cross_entropy" => Ok(LossKind::Ce),
            "bce" => Ok(LossKind::Bce),
            _ => Err(format!("unknown loss {s:?}: expected ce or bce")),
        }
    }
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossKind::Ce => "ce",
            LossKind::Bce => "bce",
        })
    }
}

/// Which statistics normalise the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// The split's `stats.json` mean/std (the default).
    Split,
    /// ImageNet's, what torchvision's pretrained weights were trained with.
    Imagenet,
    /// Plain [0, 1] pixels (seed 000).
    None,
}

impl FromStr for NormKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "split" => Ok(NormKind::Split),
            "imagenet" => Ok(NormKind::Imagenet),
            "none" => Ok(NormKind::None),
            _ => Err(format!("unknown normalisation {s:?}: expected split, imagenet or none")),
        }
    }
}

/// Everything a run depends on; saved as `config.json` and reused by
/// `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The manifest folder `maskforge split` wrote (classes.csv, train.csv,
    /// val.csv, stats.json, split.json).
    pub manifests: PathBuf,
    /// Dataset root; `None`: from `split.json`.
    pub root: Option<PathBuf>,
    /// The run folder: checkpoints, metrics, curves, reports.
    pub out: PathBuf,
    /// The backbone.
    pub arch: Arch,
    /// Pretrained weights, a safetensors file in torchvision's names
    /// (`imagenet` resolved to the cached file); `None`: from scratch.
    pub weights: Option<PathBuf>,
    /// Train the head only; the backbone is a fixed feature extractor.
    pub freeze_backbone: bool,
    /// Dropout probability before the head, in [0, 1).
    pub dropout: f64,
    /// Cross-entropy over N logits, or BCE over one.
    pub loss: LossKind,
    /// Label smoothing of the training loss, in [0, 1): the target puts
    /// 1 − ε on the true class and spreads ε evenly over all classes
    /// (PyTorch's `label_smoothing`; BCE's target becomes y·(1 − ε) + ε/2).
    /// Validation and `eval` losses are never smoothed. Configs written
    /// before it existed read it as 0.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Weight the loss by inverse class frequency (stats.json's `class_weights`).
    pub class_weights: bool,
    /// SGD, Adam or AdamW.
    pub optimizer: OptimizerKind,
    /// Peak learning rate, above 0.
    pub lr: f64,
    /// SGD momentum, in [0, 1).
    pub momentum: f64,
    /// Weight decay, >= 0 (decoupled for AdamW).
    pub weight_decay: f64,
    /// Learning-rate schedule after the warm-up.
    pub schedule: ScheduleKind,
    /// Linear warm-up length in epochs (fractions allowed), >= 0.
    pub warmup_epochs: f64,
    /// Step schedule: epochs between decays, at least 1.
    pub step_size: usize,
    /// Step schedule: decay factor, in (0, 1].
    pub gamma: f64,
    /// Cosine schedule: final learning rate, from 0 to `lr`.
    pub min_lr: f64,
    /// Epochs to train, at least 1.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Side of the square model input, pixels.
    pub img_size: u32,
    /// Epochs without a better val loss before stopping; 0 never stops.
    pub patience: usize,
    /// The training augmentations.
    pub augment: AugmentConfig,
    /// Which statistics normalise the input.
    pub norm: NormKind,
    /// Seed of shuffling, augmentation, dropout and initialisation.
    pub seed: u64,
    /// Decoding threads; 0: all cores.
    pub workers: usize,
    /// Batches prepared ahead of the model.
    pub prefetch: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Mixed precision (autocast) on CUDA.
    pub amp: bool,
    /// Images with more pixels are skipped (and reported).
    pub max_pixels: u64,
}

impl TrainConfig {
    /// Seed 000's recipe with the defaults, for `manifests` → `out`.
    pub fn new(manifests: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        let optimizer = OptimizerKind::Sgd;
        TrainConfig {
            manifests: manifests.into(),
            root: None,
            out: out.into(),
            arch: Arch::Resnet50,
            weights: None,
            freeze_backbone: false,
            dropout: 0.0,
            loss: LossKind::Ce,
            label_smoothing: 0.0,
            class_weights: false,
            optimizer,
            lr: optimizer.default_lr(),
            momentum: 0.9,
            weight_decay: optimizer.default_weight_decay(),
            schedule: ScheduleKind::Cosine,
            warmup_epochs: 1.0,
            step_size: 10,
            gamma: 0.1,
            min_lr: 0.0,
            epochs: 20,
            batch_size: 32,
            img_size: 224,
            patience: 5,
            augment: AugmentConfig::default(),
            norm: NormKind::Split,
            seed: 42,
            workers: 0,
            prefetch: 4,
            device: "auto".into(),
            amp: true,
            max_pixels: LoadLimits::default().max_pixels,
        }
    }

    /// Checks every numeric setting, so that a bad flag (or a hand-edited
    /// `config.json` under `--resume`) stops the run before anything is
    /// written, with the flag and its range named.
    pub fn validate(&self) -> Result<()> {
        let (lr, min_lr) = (self.lr, self.min_lr);
        let unit_open = |v: f64| (0.0..1.0).contains(&v);
        let non_negative = |v: f64| v >= 0.0 && v.is_finite();
        let checks: [(&'static str, String, bool, &'static str); 12] = [
            ("--epochs", self.epochs.to_string(), self.epochs >= 1, "at least 1"),
            ("--img-size", self.img_size.to_string(), (16..=1024).contains(&self.img_size), "from 16 to 1024"),
            ("--dropout", self.dropout.to_string(), unit_open(self.dropout), "in [0, 1)"),
            ("--label-smoothing", self.label_smoothing.to_string(), unit_open(self.label_smoothing), "in [0, 1)"),
            ("--lr", lr.to_string(), lr > 0.0 && lr.is_finite(), "a finite number above 0"),
            ("--min-lr", min_lr.to_string(), non_negative(min_lr) && min_lr <= lr, "from 0 to --lr"),
            ("--momentum", self.momentum.to_string(), unit_open(self.momentum), "in [0, 1)"),
            ("--weight-decay", self.weight_decay.to_string(), non_negative(self.weight_decay), "a finite number >= 0"),
            (
                "--warmup-epochs",
                self.warmup_epochs.to_string(),
                non_negative(self.warmup_epochs),
                "a finite number >= 0",
            ),
            ("--step-size", self.step_size.to_string(), self.step_size >= 1, "at least 1"),
            ("--gamma", self.gamma.to_string(), self.gamma > 0.0 && self.gamma <= 1.0, "in (0, 1]"),
            ("--prefetch", self.prefetch.to_string(), (1..=MAX_PREFETCH).contains(&self.prefetch), "from 1 to 64"),
        ];
        for (flag, value, ok, allowed) in checks {
            if !ok {
                return Err(TrainError::OutOfRange { flag, allowed, value });
            }
        }
        check_loader_flags(self.batch_size, self.workers, self.max_pixels)?;
        self.augment.validate().map_err(TrainError::Config)
    }
}

/// Largest `--batch-size`: beyond it one batch alone outgrows any memory.
pub const MAX_BATCH_SIZE: usize = 65536;
/// Largest `--workers` (decoding threads; 0 means all cores): every stage's bound.
pub const MAX_WORKERS: usize = maskforge_imageio::MAX_JOBS;
/// Largest `--prefetch` (batches queued ahead of the model, each in memory).
pub const MAX_PREFETCH: usize = 64;
/// Largest `--max-pixels`: one decoded image of that size is already 3 GB.
pub const MAX_PIXELS: u64 = maskforge_imageio::MAX_PIXELS_LIMIT;

/// The input-pipeline settings `train` and `eval` share.
pub fn check_loader_flags(batch_size: usize, workers: usize, max_pixels: u64) -> Result<()> {
    let out_of_range = |flag, allowed, value: String| Err(TrainError::OutOfRange { flag, allowed, value });
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        return out_of_range("--batch-size", "from 1 to 65536", batch_size.to_string());
    }
    if workers > MAX_WORKERS {
        return out_of_range("--workers", "from 0 (all cores) to 1024", workers.to_string());
    }
    if !(1..=MAX_PIXELS).contains(&max_pixels) {
        return out_of_range("--max-pixels", "from 1 to 1000000000", max_pixels.to_string());
    }
    Ok(())
}
