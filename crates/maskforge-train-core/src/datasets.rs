//! A run's inputs, read and checked before anything is written: the
//! manifests, the dataset root, the normalisation and the class weights.

use crate::augment::Normalize;
use crate::config::{LossKind, NormKind, TrainConfig};
use crate::error::{Result, TrainError};
use crate::event::Event;
use crate::manifest::{read_classes, read_manifest, read_stats, resolve_root, Manifest, Stats};
use maskforge_imageio::Output;
use std::path::PathBuf;

/// The datasets of a run, loaded from the manifests.
pub struct Datasets {
    /// Class names by index (`classes.csv`).
    pub classes: Vec<String>,
    /// The dataset root the manifests' paths are relative to.
    pub root: PathBuf,
    /// `train.csv`'s usable rows.
    pub train: Manifest,
    /// `val.csv`'s usable rows.
    pub val: Manifest,
    /// `stats.json`, or empty when the folder has none.
    pub stats: Stats,
}

/// Reads `classes.csv`, `train.csv`, `val.csv` and (when present)
/// `stats.json` of `cfg.manifests`, and the dataset root.
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

/// Everything a run reads, checked: the datasets (none empty, the run folder
/// outside them), and the normalisation and loss weights they give.
pub struct RunInputs {
    /// The manifests and the root.
    pub data: Datasets,
    /// The input normalisation of the configuration.
    pub norm: Normalize,
    /// Where the normalisation came from, for the log.
    pub norm_note: String,
    /// Loss weight per class index (0 for a class without training images);
    /// `None` without `--class-weights`.
    pub class_weights: Option<Vec<f32>>,
}

impl RunInputs {
    /// Loads and checks the inputs of `cfg`; the manifest rows it skips are
    /// reported through `on_event`.
    pub fn load(cfg: &TrainConfig, on_event: &mut dyn FnMut(Event)) -> Result<RunInputs> {
        let data = load_datasets(cfg)?;
        // The run folder must not lie in what the run reads (nor hold it).
        maskforge_imageio::check_disjoint(&[&cfg.manifests, &data.root], &[Output::new(&cfg.out, "run folder")])?;
        let n_classes = data.classes.len();
        if cfg.loss == LossKind::Bce && n_classes != 2 {
            return Err(TrainError::Config(format!(
                "--loss bce needs exactly 2 classes, the manifests have {n_classes}"
            )));
        }
        for m in [&data.train, &data.val] {
            for f in &m.skipped {
                on_event(Event::Skipped { path: &f.path, reason: &f.reason });
            }
        }
        for m in [&data.train, &data.val] {
            if m.samples.is_empty() {
                return Err(TrainError::NoImages { what: m.file.display().to_string(), skipped: m.skipped.len() });
            }
        }
        let (norm, norm_note) = normalization(cfg, &data.stats)?;
        let class_weights = class_weight_vector(cfg, &data.stats, n_classes)?;
        Ok(RunInputs { data, norm, norm_note, class_weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifests folder with 2 classes; `val` rows as given.
    fn manifests(val: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        std::fs::write(m.join("classes.csv"), "index,name,count\n0,masked,1\n1,unmasked,1\n").unwrap();
        std::fs::write(
            m.join("train.csv"),
            "path,class_index,class\na.png,0,masked\nb.png,1,unmasked\n../c.png,0,masked\n",
        )
        .unwrap();
        std::fs::write(m.join("val.csv"), format!("path,class_index,class\n{val}")).unwrap();
        std::fs::write(m.join("split.json"), r#"{"dataset_root":"/data/faces"}"#).unwrap();
        dir
    }

    fn load(cfg: &TrainConfig) -> (Result<RunInputs>, Vec<String>) {
        let mut skipped = Vec::new();
        let r = RunInputs::load(cfg, &mut |e| {
            if let Event::Skipped { path, .. } = e {
                skipped.push(path.to_string())
            }
        });
        (r, skipped)
    }

    #[test]
    fn inputs_are_checked_before_anything_is_written() {
        let dir = manifests("c.png,1,unmasked\n");
        let out = tempfile::tempdir().unwrap();
        let mut cfg = TrainConfig::new(dir.path(), out.path().join("run"));
        // --norm split needs stats.json.
        let (r, skipped) = load(&cfg);
        assert!(r.err().unwrap().to_string().contains("--norm split needs mean and std"));
        assert_eq!(skipped, ["train.csv:4"], "rows outside the root are reported");

        cfg.norm = NormKind::Imagenet;
        let inputs = load(&cfg).0.unwrap();
        assert_eq!((inputs.data.train.samples.len(), inputs.norm), (2, Normalize::IMAGENET));
        assert_eq!(inputs.data.root, PathBuf::from("/data/faces"));
        assert_eq!(inputs.class_weights, None);

        cfg.class_weights = true;
        assert!(load(&cfg).0.err().unwrap().to_string().contains("stats.json has no class_weights"));
        cfg.class_weights = false;

        // The run folder may not lie in what the run reads.
        cfg.out = dir.path().join("run");
        assert!(matches!(load(&cfg).0, Err(TrainError::Guard(_))));

        let empty = manifests("");
        let cfg = TrainConfig { norm: NormKind::Imagenet, ..TrainConfig::new(empty.path(), out.path().join("run")) };
        let err = load(&cfg).0.err().unwrap().to_string();
        assert!(err.contains("val.csv: no usable images (0 rows skipped"), "{err}");
    }
}
