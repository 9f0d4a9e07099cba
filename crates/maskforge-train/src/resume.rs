//! `train --resume`: reading `last.safetensors` back. What is left to do
//! and the clean-up are tensor-free (`maskforge_train_core::resume`,
//! re-exported here).

use crate::checkpoint::{self, LoadMode, ModelMeta, TensorFile, META_KEY, TRAIN_STATE_KEY};
use crate::error::{Result, TrainError};
use crate::model::Classifier;
use maskforge_train_core::TrainState;
use std::path::Path;

pub use maskforge_train_core::resume::{announce, best_is_behind, remove_stale_temp_files};

/// What `last.safetensors` holds besides the weights (loaded into the model).
pub struct LastCheckpoint {
    /// Where training stopped: epochs done, best so far, history.
    pub state: TrainState,
    /// The model description of the last epoch, which `best.safetensors`
    /// shares when that epoch was the best.
    pub meta: ModelMeta,
    /// The tensors, for the optimiser state.
    pub file: TensorFile,
}

/// Reads a run's `last.safetensors` and loads its weights into `model`.
pub fn read_last_checkpoint(model: &Classifier, path: &Path) -> Result<LastCheckpoint> {
    let file = checkpoint::read_safetensors(path)?;
    let not_last =
        |what: &str| TrainError::weights(path, format!("no {what} metadata: not a last.safetensors of a run"));
    let state_json = file.metadata.get(TRAIN_STATE_KEY).ok_or_else(|| not_last(TRAIN_STATE_KEY))?;
    let state: TrainState = serde_json::from_str(state_json)
        .map_err(|e| TrainError::weights(path, format!("bad {TRAIN_STATE_KEY}: {e}")))?;
    let meta = file.model_meta(path)?.ok_or_else(|| not_last(META_KEY))?;
    checkpoint::load_into(model, &file, path, LoadMode::Exact)?;
    Ok(LastCheckpoint { state, meta, file })
}
