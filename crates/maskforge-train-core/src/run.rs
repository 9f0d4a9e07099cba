//! The files of a run folder that need no tensors: `config.json`,
//! `metrics.csv` and `curves.png`, and what a finished run returns.

use crate::augment::Normalize;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::event::Event;
use crate::manifest::Manifest;
use crate::plot::render_curves;
use crate::report::EvalReport;
use crate::state::EpochRow;
use maskforge_imageio::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| TrainError::Config(e.to_string()))?;
    s.push('\n');
    write_atomic(path, s.as_bytes()).map_err(TrainError::io(path))
}

/// Writes `metrics.csv`, one row per epoch of `rows`, atomically.
pub fn write_metrics_csv(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| TrainError::Config(format!("metrics.csv: {e}"));
    w.write_record([
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "train_images",
        "val_images",
        "seconds",
        "train_images_per_s",
        "best",
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

/// Draws `curves.png` (loss and accuracy per epoch) from `rows`, atomically.
pub fn write_curves(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let col = |f: fn(&EpochRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let epochs: Vec<usize> = rows.iter().map(|r| r.epoch).collect();
    let img = render_curves(
        &epochs,
        &col(|r| r.train_loss),
        &col(|r| r.val_loss),
        &col(|r| r.train_acc),
        &col(|r| r.val_acc),
    )
    .map_err(|source| TrainError::Plot { path: path.to_path_buf(), source })?;
    maskforge_imageio::save_rgb_atomic(&img, path, 95).map_err(TrainError::io(path))
}

/// `config.json`: the arguments, manifest fingerprints and environment.
#[derive(Serialize, Deserialize)]
pub struct RunConfigFile {
    /// The run's configuration (what `--resume` reads back).
    pub config: TrainConfig,
    /// The dataset root the manifests were read under.
    pub dataset_root: PathBuf,
    /// Class names by index.
    pub classes: Vec<String>,
    /// The train and val manifests as read.
    pub manifests: Vec<ManifestFingerprint>,
    /// The input normalisation used.
    pub normalization: Normalize,
    /// The loss's class weights, with `--class-weights`.
    pub class_weights: Option<Vec<f32>>,
    /// What the run ran on.
    pub environment: Environment,
    /// Epochs at which the run was resumed.
    #[serde(default)]
    pub resumed_at: Vec<usize>,
}

/// A manifest as a run read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFingerprint {
    /// The manifest file.
    pub file: PathBuf,
    /// SHA-256 of its bytes (a resume warns when it changed).
    pub sha256: String,
    /// Usable rows.
    pub rows: usize,
    /// Rows skipped.
    pub skipped_rows: usize,
}

/// What the run ran on and with (filled in by the tch adapter).
#[derive(Serialize, Deserialize)]
pub struct Environment {
    /// Version of `maskforge-train`.
    pub maskforge_train_version: String,
    /// Version of the libtorch linked.
    pub libtorch_version: String,
    /// The device trained on (`cpu`, `cuda:0`...).
    pub device: String,
    /// CUDA devices visible.
    pub cuda_devices: i64,
    /// cuDNN's version, when available.
    pub cudnn_version: Option<i64>,
    /// Whether mixed precision was on.
    pub amp: bool,
    /// libtorch's intra-op threads.
    pub torch_threads: i32,
    /// Image decoding threads.
    pub loader_threads: usize,
    /// When this (part of the) run started, seconds since the Unix epoch.
    pub started_unix: u64,
}

/// Refuses to start a new run in `out` when it already holds one
/// (`last.safetensors`): that run is continued with `--resume`.
pub fn check_new_run(out: &Path) -> Result<()> {
    if out.join("last.safetensors").exists() {
        return Err(TrainError::Config(format!(
            "{} already holds a run (last.safetensors); continue it with --resume {0}, or choose another --out",
            out.display()
        )));
    }
    Ok(())
}

/// Reads the configuration a run was started with (for `--resume`).
pub fn read_run_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
    let file: RunConfigFile = serde_json::from_str(&text).map_err(|e| TrainError::manifest(&path, e.to_string()))?;
    Ok(file.config)
}

/// What `config.json` records of a manifest.
pub fn fingerprint(m: &Manifest) -> ManifestFingerprint {
    ManifestFingerprint {
        file: m.file.clone(),
        sha256: m.sha256.clone(),
        rows: m.samples.len(),
        skipped_rows: m.skipped.len(),
    }
}

/// Writes `config.json`; a resumed run keeps the epochs of earlier resumes
/// and warns when a manifest changed since the run started.
pub fn write_run_config(
    path: &Path,
    mut file: RunConfigFile,
    resume: bool,
    on_event: &mut dyn FnMut(Event),
) -> Result<()> {
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

/// What a finished run produced.
#[derive(Debug)]
pub struct TrainSummary {
    /// The run folder.
    pub out: PathBuf,
    /// Epochs finished (over all resumes).
    pub epochs_run: usize,
    /// The 1-based epoch of `best.safetensors`.
    pub best_epoch: usize,
    /// Whether the patience ran out before the last epoch.
    pub stopped_early: bool,
    /// The best checkpoint's evaluation on the validation set.
    pub report: EvalReport,
}
