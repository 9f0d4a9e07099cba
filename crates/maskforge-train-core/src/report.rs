//! `report.json` and `report.txt`: per-class precision, recall, F1 and
//! support, macro and weighted averages and the confusion matrix, in the
//! layout of seed 001's report, headed by the loss and what was evaluated.

use crate::error::{Result, TrainError};
use crate::eval::EvalOutcome;
use maskforge_imageio::{write_atomic, Failure};
use maskforge_metrics::ClassificationReport;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Decimals in `report.txt` (sklearn's default is 2; 4 shows the
/// differences small validation sets make).
pub const DIGITS: usize = 4;

/// `report.{txt,json}` of `maskforge eval` (and of a run's final test).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The checkpoint evaluated, as given.
    pub model: String,
    /// The manifest evaluated, as given.
    pub manifest: String,
    /// `val`, `test`, ... (the manifest's name).
    pub split: String,
    /// Epoch of the checkpoint evaluated.
    pub epoch: Option<usize>,
    /// The device it ran on (`cpu`, `cuda:0`...).
    pub device: String,
    /// Images evaluated.
    pub images: usize,
    /// Rows and images left out (the length of `skipped_files`).
    pub skipped: usize,
    /// Mean loss over the images evaluated.
    pub loss: f64,
    /// Fraction of the images evaluated classified right.
    pub accuracy: f64,
    /// Per-class precision, recall, F1, averages and the confusion matrix.
    pub classification: ClassificationReport,
    /// Rows and images left out, with reasons.
    pub skipped_files: Vec<Failure>,
}

impl EvalReport {
    /// The report of `outcome`, the pass of the checkpoint `model` (its
    /// `epoch`) over `manifest` on `device`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &Path,
        manifest: &Path,
        split: &str,
        epoch: Option<usize>,
        classes: &[String],
        outcome: &EvalOutcome,
        skipped: Vec<Failure>,
        device: &str,
    ) -> Self {
        let classification = ClassificationReport::new(&outcome.confusion, classes);
        EvalReport {
            model: model.display().to_string(),
            manifest: manifest.display().to_string(),
            split: split.to_string(),
            epoch,
            device: device.to_string(),
            images: outcome.images,
            skipped: skipped.len(),
            loss: outcome.loss,
            accuracy: classification.accuracy,
            classification,
            skipped_files: skipped,
        }
    }

    /// `report.txt`: the header lines, the classification report in
    /// scikit-learn's layout, the confusion matrix and the skipped files.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ =
            writeln!(s, "model:    {}{}", self.model, self.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default());
        let _ = writeln!(s, "manifest: {} ({})", self.manifest, self.split);
        let _ = writeln!(s, "images:   {} evaluated, {} skipped", self.images, self.skipped);
        let _ = writeln!(s, "loss:     {:.4}", self.loss);
        let _ = writeln!(s, "accuracy: {:.4}", self.accuracy);
        s.push('\n');
        s.push_str(&self.classification.to_text(DIGITS));
        s.push('\n');
        s.push_str("confusion matrix (rows: true class, columns: predicted)\n");
        s.push_str(&self.classification.confusion_text());
        if !self.skipped_files.is_empty() {
            let _ = writeln!(s, "\nskipped ({}):", self.skipped_files.len());
            for f in &self.skipped_files {
                let _ = writeln!(s, "  {}: {}", f.path, f.reason);
            }
        }
        s
    }

    /// Writes `report.json` and `report.txt` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json_path = dir.join("report.json");
        let mut json = serde_json::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))?;
        json.push('\n');
        write_atomic(&json_path, json.as_bytes()).map_err(TrainError::io(&json_path))?;
        let txt_path = dir.join("report.txt");
        write_atomic(&txt_path, self.to_text().as_bytes()).map_err(TrainError::io(&txt_path))
    }
}
