//! `stats.json`: the per-channel mean/std and class weights of a manifest's
//! images. `maskforge split` (and `stats`) write [`Stats`]; training reads
//! the parts it needs with [`read_training_stats`], tolerantly, so a
//! hand-made file holding only `mean` and `std` works too.

use crate::set::read_checked;
use crate::ContractError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `stats.json` as `maskforge split` writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The manifest the statistics describe (`train.csv` for a split).
    pub manifest: String,
    /// Images that decoded (listed images that did not are in `skipped`).
    pub images: u64,
    /// Listed images that could not be read or decoded.
    pub skipped: u64,
    /// Pixels summed over (per channel), after the `stats_size` resize.
    pub pixels: u64,
    /// Each image was resized to this square size first; `null`: as decoded.
    pub stats_size: Option<u32>,
    /// Per channel R, G, B, in [0, 1].
    pub mean: [f64; 3],
    /// Per channel R, G, B standard deviation, in the units of `mean`.
    pub std: [f64; 3],
    /// Class names, by class index.
    pub class_names: Vec<String>,
    /// Images per class (by class index) among the decoded images.
    pub class_counts: Vec<u64>,
    /// `images / (classes × count)`, 1.0 for balanced data (the
    /// "balanced" weights of scikit-learn); `null` for a class with no image.
    pub class_weights: Vec<Option<f64>>,
}

impl Stats {
    /// Pretty JSON with a final newline: the bytes of `stats.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The parts of `stats.json` training uses; other fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TrainingStats {
    /// Per-channel R, G, B mean in [0, 1].
    pub mean: Option<[f64; 3]>,
    /// Per-channel standard deviation in [0, 1].
    pub std: Option<[f64; 3]>,
    /// Inverse-frequency weight per class; `null` for a class without images.
    #[serde(default)]
    pub class_weights: Option<Vec<Option<f64>>>,
}

/// Reads `stats.json` for training; refused when `split.json` beside it
/// records other bytes (a mixed manifest set) or a std channel is not > 0.
pub fn read_training_stats(path: &Path) -> Result<TrainingStats, ContractError> {
    let bytes = read_checked(path)?;
    let stats: TrainingStats =
        serde_json::from_slice(&bytes).map_err(|e| ContractError::format(path, e.to_string()))?;
    if let Some(std) = stats.std {
        if std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return Err(ContractError::format(path, format!("std {std:?} has a channel <= 0: cannot normalise")));
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_split_writes_training_reads() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Stats {
            manifest: "train.csv".into(),
            images: 3,
            skipped: 1,
            pixels: 30,
            stats_size: None,
            mean: [0.5, 0.4, 0.3],
            std: [0.2, 0.2, 0.25],
            class_names: vec!["a".into(), "b".into()],
            class_counts: vec![3, 0],
            class_weights: vec![Some(0.5), None],
        };
        let path = dir.path().join("stats.json");
        std::fs::write(&path, stats.to_json()).unwrap();
        let read = read_training_stats(&path).unwrap();
        assert_eq!(read.mean, Some(stats.mean));
        assert_eq!(read.class_weights, Some(stats.class_weights.clone()));
        assert_eq!(serde_json::from_str::<Stats>(&stats.to_json()).unwrap(), stats);

        std::fs::write(&path, r#"{"mean":[0.5,0.5,0.5],"std":[0.1,0.0,0.1]}"#).unwrap();
        let err = read_training_stats(&path).unwrap_err().to_string();
        assert!(err.contains("stats.json") && err.contains("<= 0"), "{err}");
    }
}
