//! `train --resume`, tensor-free: what is left to do, whether the best
//! checkpoint lags behind, and clearing what a killed process left behind.
//! Reading `last.safetensors` back is `maskforge-train`'s `resume`.

use crate::config::TrainConfig;
use crate::error::Result;
use crate::event::Event;
use crate::meta::read_model_meta;
use crate::run::read_run_config;
use crate::state::TrainState;
use std::path::Path;

/// The settings `train --resume` may change; every other one is the run's
/// own, from its `config.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResumeChanges {
    /// `--epochs`: a new total (more to go on, or fewer to stop sooner).
    pub epochs: Option<usize>,
    /// `--patience`.
    pub patience: Option<usize>,
    /// `--device`.
    pub device: Option<String>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--prefetch`.
    pub prefetch: Option<usize>,
    /// Mixed precision off (a resume never turns it on).
    pub no_amp: bool,
}

/// The configuration the run in `run_dir` was started with, `changes`
/// made and every number checked again (`config.json` may have been
/// edited by hand). Its `out` is `run_dir`: the saved one may be relative
/// to where the run started.
pub fn resumed_config(run_dir: &Path, changes: &ResumeChanges) -> Result<TrainConfig> {
    let mut cfg = read_run_config(run_dir)?;
    cfg.out = run_dir.to_path_buf();
    let ResumeChanges { epochs, patience, device, workers, prefetch, no_amp } = changes.clone();
    cfg.epochs = epochs.unwrap_or(cfg.epochs);
    cfg.patience = patience.unwrap_or(cfg.patience);
    cfg.device = device.unwrap_or(cfg.device);
    cfg.workers = workers.unwrap_or(cfg.workers);
    cfg.prefetch = prefetch.unwrap_or(cfg.prefetch);
    cfg.amp &= !no_amp;
    cfg.validate()?;
    Ok(cfg)
}

/// Says what the resumed run will do; true when it has no epoch left to
/// train (all of `--epochs` done, or stopped early with that patience) and
/// only its outputs are to be completed.
pub fn announce(cfg: &TrainConfig, state: &TrainState, on_event: &mut dyn FnMut(Event)) -> bool {
    let run = cfg.out.display();
    let message = if state.epoch >= cfg.epochs {
        format!(
            "{run} already has {} epoch(s) of --epochs {}: completing its outputs; pass a larger --epochs to train further",
            state.epoch, cfg.epochs
        )
    } else if state.stopped_early && cfg.patience != 0 && state.bad_epochs >= cfg.patience {
        format!(
            "{run} stopped early at epoch {} ({} epochs without a better val loss): completing its outputs; pass a larger --patience (or 0) to continue",
            state.epoch, state.bad_epochs
        )
    } else {
        on_event(Event::Info(format!("resuming {run} after epoch {}", state.epoch)));
        return false;
    };
    on_event(Event::Info(message));
    true
}

/// True when the last epoch was the best but `best.safetensors` does not
/// hold it (missing, unreadable or older): the process was killed between
/// writing `last.safetensors` and `best.safetensors`.
pub fn best_is_behind(best_path: &Path, state: &TrainState) -> bool {
    if state.epoch == 0 || state.best_epoch != state.epoch {
        return false;
    }
    let best_epoch = read_model_meta(best_path).ok().flatten().map(|m| m.epoch);
    best_epoch != Some(state.epoch)
}

/// Removes the temporary files that killed runs left in the run folder
/// (the shared rule of `maskforge_imageio::remove_stale_temp_files`: this
/// host's dead writers, other hosts' files once a day old) and says so.
pub fn remove_stale_temp_files(dir: &Path, on_event: &mut dyn FnMut(Event)) {
    for path in maskforge_imageio::remove_stale_temp_files(dir) {
        on_event(Event::Info(format!("removed {}, left by a killed run", path.display())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temporary name this process would use, with a pid above Linux's
    /// largest (2^22): a writer that is surely dead.
    fn dead_writer_temp(target: &Path) -> std::path::PathBuf {
        let live = maskforge_imageio::temp_path_for(target, "0");
        live.to_string_lossy().replace(&format!("~{}.", std::process::id()), "~4194304.").into()
    }

    #[test]
    fn resumed_config_changes_only_what_resume_may() {
        use crate::run::{Environment, RunConfigFile};
        let dir = tempfile::tempdir().unwrap();
        let mut saved = TrainConfig::new("manifests", "runs/relative");
        saved.workers = 3;
        let environment = Environment {
            maskforge_train_version: String::new(),
            libtorch_version: String::new(),
            device: "cpu".into(),
            cuda_devices: 0,
            cudnn_version: None,
            amp: false,
            torch_threads: 1,
            loader_threads: 1,
            started_unix: 0,
        };
        let file = RunConfigFile {
            config: saved.clone(),
            dataset_root: "data".into(),
            classes: vec!["a".into(), "b".into()],
            manifests: Vec::new(),
            normalization: crate::augment::Normalize { mean: [0.5; 3], std: [0.25; 3] },
            class_weights: None,
            environment,
            resumed_at: Vec::new(),
        };
        std::fs::write(dir.path().join("config.json"), serde_json::to_string(&file).unwrap()).unwrap();
        let same = resumed_config(dir.path(), &ResumeChanges::default()).unwrap();
        assert_eq!(same, TrainConfig { out: dir.path().to_path_buf(), ..saved.clone() });
        let changes = ResumeChanges {
            epochs: Some(30),
            patience: Some(0),
            device: Some("cpu".into()),
            workers: Some(1),
            prefetch: Some(2),
            no_amp: true,
        };
        let changed = resumed_config(dir.path(), &changes).unwrap();
        let want = TrainConfig {
            out: dir.path().to_path_buf(),
            epochs: 30,
            patience: 0,
            device: "cpu".into(),
            workers: 1,
            prefetch: 2,
            amp: false,
            ..saved
        };
        assert_eq!(changed, want);
        let bad = ResumeChanges { prefetch: Some(0), ..ResumeChanges::default() };
        assert!(resumed_config(dir.path(), &bad).unwrap_err().to_string().contains("--prefetch"));
    }

    #[test]
    fn removes_temp_files_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_writer_temp(&dir.path().join("metrics.csv"));
        let mine = maskforge_imageio::temp_path_for(&dir.path().join("report.json"), "3");
        let other = dir.path().join("notes.tmp");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let mut notes = Vec::new();
        remove_stale_temp_files(dir.path(), &mut |e| {
            if let Event::Info(m) = e {
                notes.push(m)
            }
        });
        assert!(!dead.exists() && mine.exists() && other.exists());
        assert_eq!(notes.len(), 1, "{notes:?}");
    }
}
