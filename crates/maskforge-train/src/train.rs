//! The training loop: manifests in, `runs/NAME/` out.
//!
//! Per epoch: a shuffled, augmented pass over `train.csv`, a pass over
//! `val.csv`, a row in `metrics.csv`, `curves.png` redrawn, the best
//! checkpoint by val loss kept (seed 000's early-stopping rule, stopping
//! after `patience` epochs without improvement) and `last.safetensors`
//! written with the optimiser and training state for `--resume`. At the
//! end the best checkpoint is evaluated on val into `report.json` /
//! `report.txt`.

use maskforge_imageio::Output;
use crate::augment::{AugmentConfig, Normalize};
use crate::checkpoint::{self, LoadMode, ModelMeta, FORMAT, TRAIN_STATE_KEY};
use crate::data::{shuffled, Item, Loader, Transform};
use crate::device::{configure, device_name, parse_device};
use crate::error::{Result, TrainError};
use crate::eval::{evaluate, Criterion, EvalOutcome};
use crate::manifest::{read_classes, read_manifest, read_stats, resolve_root, Manifest, Stats};
use crate::model::{Arch, Classifier};
use crate::optim::{LossScaler, OptimConfig, Optimizer, OptimizerKind, Schedule, ScheduleKind};
use crate::report::EvalReport;
use crate::resume;
use maskforge_imageio::{write_atomic, Failure, LoadLimits};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

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
    pub manifests: PathBuf,
    /// Dataset root; `None`: from `split.json`.
    pub root: Option<PathBuf>,
    pub out: PathBuf,
    pub arch: Arch,
    pub weights: Option<PathBuf>,
    pub freeze_backbone: bool,
    pub dropout: f64,
    pub loss: LossKind,
    pub class_weights: bool,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: ScheduleKind,
    pub warmup_epochs: f64,
    pub step_size: usize,
    pub gamma: f64,
    pub min_lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub img_size: u32,
    /// Epochs without a better val loss before stopping; 0 never stops.
    pub patience: usize,
    pub augment: AugmentConfig,
    pub norm: NormKind,
    pub seed: u64,
    /// Decoding threads; 0: all cores.
    pub workers: usize,
    /// Batches prepared ahead of the model.
    pub prefetch: usize,
    pub device: String,
    /// Mixed precision (autocast) on CUDA.
    pub amp: bool,
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
        let checks: [(&'static str, String, bool, &'static str); 11] = [
            ("--epochs", self.epochs.to_string(), self.epochs >= 1, "at least 1"),
            ("--img-size", self.img_size.to_string(), (16..=1024).contains(&self.img_size), "from 16 to 1024"),
            ("--dropout", self.dropout.to_string(), unit_open(self.dropout), "in [0, 1)"),
            ("--lr", lr.to_string(), lr > 0.0 && lr.is_finite(), "a finite number above 0"),
            ("--min-lr", min_lr.to_string(), non_negative(min_lr) && min_lr <= lr, "from 0 to --lr"),
            ("--momentum", self.momentum.to_string(), unit_open(self.momentum), "in [0, 1)"),
            ("--weight-decay", self.weight_decay.to_string(), non_negative(self.weight_decay), "a finite number >= 0"),
            ("--warmup-epochs", self.warmup_epochs.to_string(), non_negative(self.warmup_epochs), "a finite number >= 0"),
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
/// Largest `--workers` (decoding threads; 0 means all cores).
pub const MAX_WORKERS: usize = 1024;
/// Largest `--prefetch` (batches queued ahead of the model, each in memory).
pub const MAX_PREFETCH: usize = 64;
/// Largest `--max-pixels`: one decoded image of that size is already 3 GB.
pub const MAX_PIXELS: u64 = 1_000_000_000;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Train,
    Val,
}

/// Progress reported to the caller (the CLI draws bars from these).
#[derive(Debug)]
pub enum Event<'a> {
    Info(String),
    /// An image or manifest row left out, with a one-line reason.
    Skipped { path: &'a str, reason: &'a str },
    PhaseStart { phase: Phase, epoch: usize, epochs: usize, images: usize },
    /// Images processed so far in the phase.
    Progress { images: usize },
    PhaseEnd,
    EpochEnd(&'a EpochRow),
}

/// What a finished run produced.
#[derive(Debug)]
pub struct TrainSummary {
    pub out: PathBuf,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub report: EvalReport,
}

/// The datasets of a run, loaded from the manifests.
pub struct Datasets {
    pub classes: Vec<String>,
    pub root: PathBuf,
    pub train: Manifest,
    pub val: Manifest,
    pub stats: Stats,
}

pub fn load_datasets(cfg: &TrainConfig) -> Result<Datasets> {
    let m = &cfg.manifests;
    let classes = read_classes(&m.join("classes.csv"))?;
    let root = resolve_root(m, cfg.root.as_deref())?;
    let train = read_manifest(&m.join("train.csv"), &classes)?;
    let val = read_manifest(&m.join("val.csv"), &classes)?;
    let stats_path = m.join("stats.json");
    let stats = if stats_path.is_file() { read_stats(&stats_path)? } else { Stats::default() };
    Ok(Datasets { classes, root, train, val, stats })
}

pub fn items(manifest: &Manifest, root: &Path) -> Vec<Item> {
    manifest
        .samples
        .iter()
        // `under` is the only way from a checked manifest path to a file.
        .map(|s| Item { path: s.path.under(root), rel: s.path.to_string(), label: s.class_index })
        .collect()
}

/// Normalisation for the configuration, and a note on where it came from.
fn normalization(cfg: &TrainConfig, stats: &Stats) -> Result<(Normalize, String)> {
    Ok(match cfg.norm {
        NormKind::Imagenet => (Normalize::IMAGENET, "ImageNet mean/std".into()),
        NormKind::None => (Normalize::IDENTITY, "none ([0, 1] pixels)".into()),
        NormKind::Split => match (stats.mean, stats.std) {
            (Some(mean), Some(std)) => (
                Normalize { mean: mean.map(|v| v as f32), std: std.map(|v| v as f32) },
                "the split's stats.json mean/std".into(),
            ),
            _ => {
                return Err(TrainError::Config(format!(
                    "--norm split needs mean and std in {}; run `maskforge split` or pass --norm imagenet",
                    cfg.manifests.join("stats.json").display()
                )))
            }
        },
    })
}

fn class_weight_vector(cfg: &TrainConfig, stats: &Stats, n: usize) -> Result<Option<Vec<f32>>> {
    if !cfg.class_weights {
        return Ok(None);
    }
    let w = stats.class_weights.as_ref().ok_or_else(|| {
        TrainError::Config("--class-weights: stats.json has no class_weights; run `maskforge split` first".into())
    })?;
    if w.len() != n {
        return Err(TrainError::Config(format!("--class-weights: stats.json has {} weights for {n} classes", w.len())));
    }
    // A class without training images gets weight 0: it cannot contribute.
    Ok(Some(w.iter().map(|v| v.unwrap_or(0.0) as f32).collect()))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| TrainError::Config(e.to_string()))?;
    s.push('\n');
    write_atomic(path, s.as_bytes()).map_err(TrainError::io(path))
}

fn write_metrics_csv(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| TrainError::Config(format!("metrics.csv: {e}"));
    w.write_record([
        "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "train_images", "val_images", "seconds",
        "train_images_per_s", "best",
    ])
    .map_err(csv_err)?;
    for r in rows {
        w.write_record([
            r.epoch.to_string(),
            format!("{:.6e}", r.lr),
            format!("{:.6}", r.train_loss),
            format!("{:.6}", r.train_acc),
            format!("{:.6}", r.val_loss),
            format!("{:.6}", r.val_acc),
            r.train_images.to_string(),
            r.val_images.to_string(),
            format!("{:.2}", r.seconds),
            format!("{:.1}", r.train_images_per_s),
            r.best.to_string(),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| TrainError::Config(e.to_string()))?;
    write_atomic(path, &bytes).map_err(TrainError::io(path))
}

fn write_curves(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let col = |f: fn(&EpochRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let epochs: Vec<usize> = rows.iter().map(|r| r.epoch).collect();
    let img = crate::plot::render_curves(
        &epochs,
        &col(|r| r.train_loss),
        &col(|r| r.val_loss),
        &col(|r| r.train_acc),
        &col(|r| r.val_acc),
    );
    maskforge_imageio::save_rgb_atomic(&img, path, 95).map_err(TrainError::io(path))
}

/// `config.json`: the arguments, manifest fingerprints and environment.
#[derive(Serialize, Deserialize)]
pub struct RunConfigFile {
    pub config: TrainConfig,
    pub dataset_root: PathBuf,
    pub classes: Vec<String>,
    pub manifests: Vec<ManifestFingerprint>,
    pub normalization: Normalize,
    pub class_weights: Option<Vec<f32>>,
    pub environment: Environment,
    /// Epochs at which the run was resumed.
    #[serde(default)]
    pub resumed_at: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFingerprint {
    pub file: PathBuf,
    pub sha256: String,
    pub rows: usize,
    pub skipped_rows: usize,
}

#[derive(Serialize, Deserialize)]
pub struct Environment {
    pub maskforge_train_version: String,
    pub libtorch_version: String,
    pub device: String,
    pub cuda_devices: i64,
    pub cudnn_version: Option<i64>,
    pub amp: bool,
    pub torch_threads: i32,
    pub loader_threads: usize,
    pub started_unix: u64,
}

/// Reads the configuration a run was started with (for `--resume`).
pub fn read_run_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
    let file: RunConfigFile = serde_json::from_str(&text).map_err(|e| TrainError::manifest(&path, e.to_string()))?;
    Ok(file.config)
}

fn fingerprint(m: &Manifest) -> ManifestFingerprint {
    ManifestFingerprint { file: m.file.clone(), sha256: m.sha256.clone(), rows: m.samples.len(), skipped_rows: m.skipped.len() }
}

/// Trains (or, with `resume`, continues) the run described by `cfg`.
///
/// An epoch is committed by writing `last.safetensors`; what follows it
/// (`best.safetensors`, `metrics.csv`, `curves.png` and, after the last
/// epoch, the report) is derived from that file alone, so `--resume` redoes
/// whatever a killed run left undone.
pub fn train(cfg: &TrainConfig, resume: bool, on_event: &mut dyn FnMut(Event)) -> Result<TrainSummary> {
    cfg.validate()?;
    let last_path = cfg.out.join("last.safetensors");
    let best_path = cfg.out.join("best.safetensors");
    if resume && !last_path.is_file() {
        return Err(TrainError::NothingToResume { run: cfg.out.clone() });
    }
    let data = load_datasets(cfg)?;
    // The run folder must not lie in what the run reads (nor hold it).
    maskforge_imageio::check_disjoint(&[&cfg.manifests, &data.root], &[Output::new(&cfg.out, "run folder")])?;
    let n_classes = data.classes.len();
    if cfg.loss == LossKind::Bce && n_classes != 2 {
        return Err(TrainError::Config(format!("--loss bce needs exactly 2 classes, the manifests have {n_classes}")));
    }
    for m in [&data.train, &data.val] {
        for f in &m.skipped {
            on_event(Event::Skipped { path: &f.path, reason: &f.reason });
        }
    }
    if data.train.samples.is_empty() {
        return Err(TrainError::NoImages { what: data.train.file.display().to_string(), skipped: data.train.skipped.len() });
    }
    if data.val.samples.is_empty() {
        return Err(TrainError::NoImages { what: data.val.file.display().to_string(), skipped: data.val.skipped.len() });
    }
    let (norm, norm_note) = normalization(cfg, &data.stats)?;
    let class_weights = class_weight_vector(cfg, &data.stats, n_classes)?;

    let device = parse_device(&cfg.device)?;
    configure(device);
    let amp = cfg.amp && device.is_cuda();
    std::fs::create_dir_all(&cfg.out).map_err(TrainError::io(&cfg.out))?;
    resume::remove_stale_temp_files(&cfg.out, on_event);

    let num_outputs = if cfg.loss == LossKind::Bce { 1 } else { n_classes as i64 };
    // Seeded initialisation: the same --seed gives the same starting weights.
    tch::manual_seed(cfg.seed as i64);
    let mut model = Classifier::new(cfg.arch, num_outputs, cfg.dropout, device);

    // Weights: a resumed run's own, else --weights, else from scratch.
    let resumed = if resume { Some(resume::read_last_checkpoint(&model, &last_path)?) } else { None };
    if resumed.is_none() {
        load_initial_weights(cfg, &model, num_outputs, on_event)?;
    }
    if cfg.freeze_backbone {
        model.freeze_backbone();
    }
    let (params_all, params_trainable) = model.parameter_count();
    on_event(Event::Info(format!(
        "{} on {}{}: {} parameters, {} trainable; {} classes ({}); input {}px normalised with {}",
        cfg.arch,
        device_name(device),
        if amp { " (mixed precision)" } else { "" },
        params_all,
        params_trainable,
        n_classes,
        data.classes.join(", "),
        cfg.img_size,
        norm_note
    )));

    let optim_cfg = OptimConfig {
        kind: cfg.optimizer,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let mut opt = Optimizer::new(optim_cfg, model.trainable());
    let schedule = Schedule {
        kind: cfg.schedule,
        base_lr: cfg.lr,
        warmup_epochs: cfg.warmup_epochs,
        epochs: cfg.epochs,
        step_size: cfg.step_size,
        gamma: cfg.gamma,
        min_lr: cfg.min_lr,
    };
    let mut state = TrainState::fresh();
    let mut finished = false;
    if let Some(last) = resumed {
        opt.load_state(&last.file.tensors, last.state.optimizer_steps)?;
        finished = resume::announce(cfg, &last.state, on_event);
        let best_behind = resume::best_is_behind(&best_path, &last.state);
        write_after_commit(&cfg.out, &model, &last.meta, &last.state, best_behind)?;
        state = last.state;
        if !finished {
            state.stopped_early = false;
        }
    }

    let loader = Loader::new(cfg.workers, cfg.img_size, norm, LoadLimits { max_pixels: cfg.max_pixels }, cfg.prefetch)
        .map_err(TrainError::io(&cfg.out))?;
    if !finished {
        let resumed_at = if resume { vec![state.epoch] } else { Vec::new() };
        let run_config = RunConfigFile {
            config: cfg.clone(),
            dataset_root: data.root.clone(),
            classes: data.classes.clone(),
            manifests: vec![fingerprint(&data.train), fingerprint(&data.val)],
            normalization: norm,
            class_weights: class_weights.clone(),
            environment: environment(device, amp, loader.threads()),
            resumed_at,
        };
        write_run_config(&cfg.out.join("config.json"), run_config, resume, on_event)?;
    }

    let criterion = Criterion::new(cfg.loss, class_weights.as_deref(), device);
    let train_items = Arc::new(items(&data.train, &data.root));
    let val_items = Arc::new(items(&data.val, &data.root));
    let meta_for = |epoch: usize, val: &EvalOutcome| ModelMeta {
        format: FORMAT.into(),
        arch: cfg.arch,
        classes: data.classes.clone(),
        loss: cfg.loss,
        num_outputs,
        img_size: cfg.img_size,
        mean: norm.mean,
        std: norm.std,
        dropout: cfg.dropout,
        class_weights: class_weights.clone(),
        epoch,
        val_loss: Some(val.loss),
        val_accuracy: Some(val.confusion.accuracy()),
    };

    // Each bad image is reported once per run (resumes included), not once
    // per epoch.
    let mut reported_train: HashSet<String> = state.skipped_train.iter().map(|f| f.path.clone()).collect();
    let mut reported_val: BTreeSet<usize> = BTreeSet::new();
    let steps_per_epoch = train_items.len().div_ceil(cfg.batch_size);
    let mut warned_tiny_batch = false;

    let epochs = if finished { 0..0 } else { state.epoch..cfg.epochs };
    for epoch in epochs {
        let started = Instant::now();
        // Dropout draws and shuffles depend on (seed, epoch) only, so a
        // resumed run continues exactly as the uninterrupted one would.
        tch::manual_seed(cfg.seed.wrapping_add(epoch as u64) as i64);
        let order = shuffled(train_items.len(), cfg.seed, epoch as u64);
        let transform = if cfg.augment.is_none() {
            Transform::Eval
        } else {
            Transform::Train { augment: cfg.augment.clone(), seed: cfg.seed, epoch: epoch as u64 }
        };
        on_event(Event::PhaseStart { phase: Phase::Train, epoch: epoch + 1, epochs: cfg.epochs, images: train_items.len() });
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut weight_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut divergence = DivergenceWatch::new(device);
        let mut seen = 0usize;
        let mut lr = schedule.lr(epoch, 0, steps_per_epoch);
        for (step, batch) in loader.batches(Arc::clone(&train_items), order, cfg.batch_size, transform).enumerate() {
            for (i, reason) in &batch.failures {
                let rel = &train_items[*i].rel;
                if reported_train.insert(rel.clone()) {
                    on_event(Event::Skipped { path: rel, reason });
                    state.skipped_train.push(Failure::new(rel.clone(), reason.clone()));
                }
            }
            // Batch norm cannot train on a single image (one value per
            // channel at the last stage); such a remainder batch is skipped.
            if batch.len() < 2 && !model.is_frozen() {
                if !batch.is_empty() && !warned_tiny_batch {
                    warned_tiny_batch = true;
                    on_event(Event::Info("a batch of 1 image was skipped (batch norm needs 2 or more)".into()));
                }
                continue;
            }
            lr = schedule.lr(epoch, step, steps_per_epoch);
            let xs = batch.tensor().to_device(device);
            let ys = batch.label_tensor().to_device(device);
            let StepOutput { weighted, weight_sum: wsum, logits } =
                train_step(&model, &criterion, &mut opt, &mut state.scaler, &xs, &ys, lr, amp);
            divergence.observe(step, &weighted);
            tch::no_grad(|| {
                loss_sum += weighted.to_kind(Kind::Double);
                weight_sum += wsum.to_kind(Kind::Double);
                correct += criterion.predict(&logits).eq_tensor(&ys).sum(Kind::Int64);
            });
            seen += batch.len();
            on_event(Event::Progress { images: seen + batch.failures.len() });
        }
        on_event(Event::PhaseEnd);
        if let Some((step, value)) = divergence.first_non_finite() {
            return Err(TrainError::Diverged { what: "loss", epoch: epoch + 1, step: Some(step + 1), value, lr: cfg.lr });
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let wsum = weight_sum.double_value(&[]);
        let train_loss = if wsum > 0.0 { loss_sum.double_value(&[]) / wsum } else { f64::NAN };
        let train_acc = if seen > 0 { correct.int64_value(&[]) as f64 / seen as f64 } else { f64::NAN };

        on_event(Event::PhaseStart { phase: Phase::Val, epoch: epoch + 1, epochs: cfg.epochs, images: val_items.len() });
        let val = evaluate(&model, &criterion, &loader, Arc::clone(&val_items), cfg.batch_size, amp, n_classes, &mut |e| on_event(e))?;
        on_event(Event::PhaseEnd);
        for (i, reason) in &val.failures {
            if reported_val.insert(*i) {
                on_event(Event::Skipped { path: &val_items[*i].rel, reason });
            }
        }
        if val.images == 0 {
            return Err(TrainError::NoImages { what: data.val.file.display().to_string(), skipped: val.failures.len() });
        }
        if !val.loss.is_finite() {
            return Err(TrainError::Diverged { what: "val loss", epoch: epoch + 1, step: None, value: val.loss, lr: cfg.lr });
        }

        let improved = val.loss < state.best_val_loss;
        if improved {
            state.best_val_loss = val.loss;
            state.best_epoch = epoch + 1;
            state.bad_epochs = 0;
        } else {
            state.bad_epochs += 1;
        }
        let row = EpochRow {
            epoch: epoch + 1,
            lr,
            train_loss,
            train_acc,
            val_loss: val.loss,
            val_acc: val.confusion.accuracy(),
            train_images: seen,
            val_images: val.images,
            seconds: started.elapsed().as_secs_f64(),
            train_images_per_s: seen as f64 / train_seconds.max(1e-9),
            best: improved,
        };
        state.history.push(row.clone());
        state.epoch = epoch + 1;
        state.optimizer_steps = opt.steps;
        let stop = cfg.patience > 0 && state.bad_epochs >= cfg.patience;
        state.stopped_early = stop && epoch + 1 < cfg.epochs;

        let meta = meta_for(epoch + 1, &val);
        save_last(&last_path, &model, &meta, &opt, &state)?;
        write_after_commit(&cfg.out, &model, &meta, &state, improved)?;
        on_event(Event::EpochEnd(&row));
        if state.stopped_early {
            on_event(Event::Info(format!(
                "early stop: val loss has not improved for {} epochs (best {:.4} at epoch {})",
                state.bad_epochs, state.best_val_loss, state.best_epoch
            )));
            break;
        }
    }

    // The report is the best checkpoint on val, evaluated from the file, the
    // same way `maskforge eval` does it.
    let (best, best_meta, _) = checkpoint::load_checkpoint(&best_path, device)?;
    let val = evaluate(&best, &criterion, &loader, Arc::clone(&val_items), cfg.batch_size, amp, n_classes, &mut |_| {})?;
    let mut skipped: Vec<Failure> = data.train.skipped.iter().chain(&data.val.skipped).cloned().collect();
    skipped.extend(state.skipped_train.iter().cloned());
    skipped.extend(val.failures.iter().map(|(i, r)| Failure::new(val_items[*i].rel.clone(), r.clone())));
    let report = EvalReport::new(
        &best_path,
        &data.val.file,
        "val",
        Some(best_meta.epoch),
        &data.classes,
        &val,
        skipped,
        &device_name(device),
    );
    report.write(&cfg.out)?;
    Ok(TrainSummary {
        out: cfg.out.clone(),
        epochs_run: state.epoch,
        best_epoch: state.best_epoch,
        stopped_early: state.stopped_early,
        report,
    })
}

/// Starting weights of a new run: `--weights`, else a seeded random
/// initialisation (already in `model`).
fn load_initial_weights(cfg: &TrainConfig, model: &Classifier, num_outputs: i64, on_event: &mut dyn FnMut(Event)) -> Result<()> {
    let Some(w) = &cfg.weights else {
        on_event(Event::Info(format!("no --weights: training {} from scratch (random initialisation)", cfg.arch)));
        return Ok(());
    };
    let file = checkpoint::read_safetensors(w)?;
    let s = checkpoint::load_into(model, &file, w, LoadMode::Pretrained)?;
    let mut note = format!("loaded {} tensors from {}", s.loaded, w.display());
    if s.skipped_buffers > 0 {
        note.push_str(&format!(" ({} num_batches_tracked buffers skipped)", s.skipped_buffers));
    }
    if !s.head_not_loaded.is_empty() {
        note.push_str(&format!("; head replaced for {num_outputs} output(s), not loaded: {}", s.head_not_loaded.join(", ")));
    }
    on_event(Event::Info(note));
    Ok(())
}

fn environment(device: Device, amp: bool, loader_threads: usize) -> Environment {
    Environment {
        maskforge_train_version: env!("CARGO_PKG_VERSION").into(),
        libtorch_version: crate::LIBTORCH_VERSION.into(),
        device: device_name(device),
        cuda_devices: tch::Cuda::device_count(),
        cudnn_version: tch::Cuda::cudnn_is_available().then(tch::utils::version_cudnn),
        amp,
        torch_threads: tch::get_num_threads(),
        loader_threads,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Writes `config.json`; a resumed run keeps the epochs of earlier resumes
/// and warns when a manifest changed since the run started.
fn write_run_config(path: &Path, mut file: RunConfigFile, resume: bool, on_event: &mut dyn FnMut(Event)) -> Result<()> {
    let old = std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<RunConfigFile>(&t).ok());
    if let (true, Some(old)) = (resume, old) {
        file.resumed_at = old.resumed_at.into_iter().chain(file.resumed_at).collect();
        for f in &file.manifests {
            if old.manifests.iter().any(|o| o.file == f.file && o.sha256 != f.sha256) {
                on_event(Event::Info(format!("warning: {} changed since the run started", f.file.display())));
            }
        }
    }
    write_json(path, &file)
}

/// Writes `last.safetensors`: weights, optimiser state and training state.
/// It commits the epoch: everything else the epoch writes follows from it.
fn save_last(path: &Path, model: &Classifier, meta: &ModelMeta, opt: &Optimizer, state: &TrainState) -> Result<()> {
    let state_json = serde_json::to_string(state).map_err(|e| TrainError::Config(e.to_string()))?;
    let metadata = HashMap::from([(TRAIN_STATE_KEY.to_string(), state_json)]);
    checkpoint::save_checkpoint(path, model, meta, opt.state_tensors(), metadata)
}

/// What an epoch writes after `last.safetensors`, from the weights and state
/// that file holds (`meta` is its model description): the best checkpoint
/// when `write_best`, `metrics.csv` and `curves.png`. Run again by
/// `--resume`, it completes an epoch whose process was killed.
fn write_after_commit(out: &Path, model: &Classifier, meta: &ModelMeta, state: &TrainState, write_best: bool) -> Result<()> {
    if write_best {
        checkpoint::save_checkpoint(&out.join("best.safetensors"), model, meta, Vec::new(), HashMap::new())?;
    }
    write_metrics_csv(&out.join("metrics.csv"), &state.history)?;
    write_curves(&out.join("curves.png"), &state.history)
}

/// The first training step whose loss was not finite. Tracked on the
/// model's device, so that watching costs no synchronisation per step; it
/// is read once, at the end of the epoch.
struct DivergenceWatch {
    /// -1 while every loss has been finite.
    step: Tensor,
    loss: Tensor,
}

impl DivergenceWatch {
    fn new(device: Device) -> Self {
        DivergenceWatch { step: Tensor::full([], -1i64, (Kind::Int64, device)), loss: Tensor::zeros([], (Kind::Double, device)) }
    }

    fn observe(&mut self, step: usize, loss: &Tensor) {
        tch::no_grad(|| {
            let first = loss.isfinite().logical_not().logical_and(&self.step.lt(0));
            let step = Tensor::scalar_tensor(step as i64, (Kind::Int64, self.step.device()));
            self.step = step.where_self(&first, &self.step);
            self.loss = loss.to_kind(Kind::Double).where_self(&first, &self.loss);
        })
    }

    /// (0-based step, its loss) of the first non-finite loss.
    fn first_non_finite(&self) -> Option<(usize, f64)> {
        let step = self.step.int64_value(&[]);
        (step >= 0).then(|| (step as usize, self.loss.double_value(&[])))
    }
}

/// What one optimisation step leaves for the statistics.
pub struct StepOutput {
    /// Σ wᵢ·lossᵢ over the batch (graph detached).
    pub weighted: Tensor,
    /// Σ wᵢ.
    pub weight_sum: Tensor,
    pub logits: Tensor,
}

/// One training step on a batch already on the model's device: forward
/// (under autocast when `amp`), loss, backward, optimiser update; with
/// `amp` the loss is scaled and a step whose gradients overflowed is
/// skipped, as PyTorch's `GradScaler` does.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: &Classifier,
    criterion: &Criterion,
    opt: &mut Optimizer,
    scaler: &mut LossScaler,
    xs: &Tensor,
    ys: &Tensor,
    lr: f64,
    amp: bool,
) -> StepOutput {
    let logits = tch::autocast(amp, || model.forward_t(xs, true));
    let (per_sample, weights) = criterion.per_sample(&logits, ys);
    let weighted = (&per_sample * &weights).sum(Kind::Float);
    let weight_sum = weights.sum(Kind::Float);
    let loss = &weighted / &weight_sum;
    opt.zero_grad();
    if amp {
        (&loss * scaler.scale).backward();
        let finite = opt.unscale_grads(1.0 / scaler.scale);
        if finite {
            opt.step(lr);
        }
        scaler.update(finite);
    } else {
        loss.backward();
        opt.step(lr);
    }
    StepOutput { weighted: weighted.detach(), weight_sum: weight_sum.detach(), logits: logits.detach() }
}

/// A model for inference, rebuilt from a checkpoint.
pub struct Predictor {
    pub model: Classifier,
    pub meta: ModelMeta,
    pub amp: bool,
}

impl Predictor {
    pub fn load(path: &Path, device: Device) -> Result<Predictor> {
        configure(device);
        let (model, meta, _) = checkpoint::load_checkpoint(path, device)?;
        Ok(Predictor { model, meta, amp: device.is_cuda() })
    }

    pub fn normalize(&self) -> Normalize {
        Normalize { mean: self.meta.mean, std: self.meta.std }
    }

    /// Class probabilities for each image (evaluation transform).
    pub fn classify(&self, images: &[image::RgbImage]) -> Vec<Vec<f32>> {
        if images.is_empty() {
            return Vec::new();
        }
        let s = self.meta.img_size;
        let plane = 3 * (s as usize) * (s as usize);
        let norm = self.normalize();
        let mut buf = vec![0f32; images.len() * plane];
        for (img, out) in images.iter().zip(buf.chunks_mut(plane)) {
            crate::augment::eval_transform(img, s, &norm, out);
        }
        let xs = Tensor::from_slice(&buf).view([images.len() as i64, 3, s as i64, s as i64]);
        self.probabilities(&xs)
    }

    /// Class probabilities for a normalised batch `[B, 3, S, S]`.
    pub fn probabilities(&self, xs: &Tensor) -> Vec<Vec<f32>> {
        let criterion = Criterion::new(self.meta.loss, None, self.model.device());
        let probs = tch::no_grad(|| {
            let xs = xs.to_device(self.model.device());
            let logits = tch::autocast(self.amp, || self.model.forward_t(&xs, false));
            criterion.probabilities(&logits).to_device(Device::Cpu)
        });
        Vec::<Vec<f32>>::try_from(&probs).unwrap_or_default()
    }
}
