//! The description that makes a checkpoint self-contained: how to rebuild
//! and feed the model ([`ModelMeta`], stored as JSON under the safetensors
//! `__metadata__` key `maskforge`), the other metadata keys, and reading it
//! from a file's header alone. Tensors are `maskforge-train`'s business.

use crate::arch::Arch;
use crate::config::LossKind;
use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Metadata key of the model description.
pub const META_KEY: &str = "maskforge";
/// Metadata key of the training state in `last.safetensors`.
pub const TRAIN_STATE_KEY: &str = "maskforge_train_state";
/// Prefix of optimiser-state tensors in `last.safetensors`.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// [`ModelMeta::format`] of the checkpoints this version writes and reads.
pub const FORMAT: &str = "maskforge-classifier/1";

/// How to rebuild a trained model and prepare its input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Layout of the description, [`FORMAT`]; another is refused.
    pub format: String,
    /// The backbone.
    pub arch: Arch,
    /// Class names by index.
    pub classes: Vec<String>,
    /// The loss trained with (it decides how logits become probabilities).
    pub loss: LossKind,
    /// Logits the head produces: the class count, or 1 for `--loss bce`.
    pub num_outputs: i64,
    /// Side of the square model input, pixels.
    pub img_size: u32,
    /// Input normalisation mean per channel R, G, B (in [0, 1] pixel units).
    pub mean: [f32; 3],
    /// Input normalisation standard deviation per channel R, G, B.
    pub std: [f32; 3],
    /// Dropout probability before the head (training only).
    pub dropout: f64,
    /// Loss weights per class, when trained with `--class-weights`.
    #[serde(default)]
    pub class_weights: Option<Vec<f32>>,
    /// Epoch (1-based) whose weights these are.
    pub epoch: usize,
    /// Validation loss of that epoch, when known.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Validation accuracy of that epoch, in [0, 1], when known.
    #[serde(default)]
    pub val_accuracy: Option<f64>,
}

/// The model description in a safetensors metadata map, if there is one.
pub fn parse_model_meta(metadata: &HashMap<String, String>, path: &Path) -> Result<Option<ModelMeta>> {
    match metadata.get(META_KEY) {
        None => Ok(None),
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| TrainError::weights(path, format!("bad {META_KEY} metadata: {e}"))),
    }
}

/// Largest safetensors header read (the format's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The model description of a checkpoint, from its header alone (a
/// checkpoint's tensors are tens of megabytes).
pub fn read_model_meta(path: &Path) -> Result<Option<ModelMeta>> {
    let mut file = std::fs::File::open(path).map_err(TrainError::io(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(TrainError::io(path))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER_BYTES {
        return Err(TrainError::weights(path, format!("not a safetensors file: header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(TrainError::io(path))?;
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: HashMap<String, String>,
    }
    let header: Header = serde_json::from_slice(&header)
        .map_err(|e| TrainError::weights(path, format!("not a safetensors file: header: {e}")))?;
    parse_model_meta(&header.metadata, path)
}

/// Checks the description before a model is built from it (a damaged or
/// hand-edited file must give an error, not a libtorch abort).
pub fn validate_meta(m: &ModelMeta) -> Result<(), String> {
    let expected = match m.loss {
        LossKind::Bce => 1,
        LossKind::Ce => m.classes.len() as i64,
    };
    if m.classes.len() < 2 || m.num_outputs != expected {
        return Err(format!("{} classes with {} outputs for loss {}", m.classes.len(), m.num_outputs, m.loss));
    }
    if !(16..=1024).contains(&m.img_size) {
        return Err(format!("img_size {}", m.img_size));
    }
    if m.std.iter().any(|s| s.is_nan() || *s <= 0.0) || !(0.0..1.0).contains(&m.dropout) {
        return Err(format!("std {:?}, dropout {}", m.std, m.dropout));
    }
    if m.class_weights.as_ref().is_some_and(|w| w.len() != m.classes.len()) {
        return Err("class_weights do not match the classes".into());
    }
    Ok(())
}
