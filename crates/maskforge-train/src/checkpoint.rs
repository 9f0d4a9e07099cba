//! Weights on disk: safetensors files in torchvision's names.
//!
//! * `--weights FILE` (pretrained, e.g. ImageNet from torchvision via
//!   `cargo xtask convert-weights`): every backbone tensor must be present
//!   with the right shape; torchvision's `num_batches_tracked` buffers are
//!   skipped (tch has no variable for them); a head of another shape (1000
//!   ImageNet classes) is left out, since the head is replaced anyway.
//! * Checkpoints (`best.safetensors`, `last.safetensors`): the model's
//!   tensors plus, under the `__metadata__` key `maskforge`, a JSON
//!   [`ModelMeta`] saying how to rebuild and feed the model, so `eval` and
//!   `predict` need nothing but the file. `last.safetensors` also holds the
//!   optimiser state as `optimizer.*` tensors and the training state under
//!   the metadata key `maskforge_train_state`.
//!
//! Any missing, extra or mis-shaped tensor is an error that names it.

use crate::error::{torch, Result, TrainError};
use crate::model::Classifier;
use maskforge_train_core::meta::{parse_model_meta, validate_meta};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub use maskforge_train_core::meta::{read_model_meta, ModelMeta, FORMAT, META_KEY, OPTIMIZER_PREFIX, TRAIN_STATE_KEY};

/// Tensors and string metadata read from a safetensors file (on the CPU).
#[derive(Debug)]
pub struct TensorFile {
    /// Every tensor of the file, by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// The file's `__metadata__` strings (model description, training state).
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// The model description, if the file is one of our checkpoints.
    pub fn model_meta(&self, path: &Path) -> Result<Option<ModelMeta>> {
        parse_model_meta(&self.metadata, path)
    }
}

/// Reads every tensor of a safetensors file; f16, bf16 and f64 tensors are
/// kept in their kind (the copy into the model converts).
pub fn read_safetensors(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    let bad = |e: safetensors::SafeTensorError| TrainError::weights(path, format!("not a safetensors file: {e:?}"));
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(bad)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            Dtype::U8 => Kind::Uint8,
            Dtype::I8 => Kind::Int8,
            Dtype::BOOL => Kind::Bool,
            other => return Err(TrainError::weights(path, format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind).map_err(torch)?;
        tensors.insert(name, t);
    }
    Ok(TensorFile { tensors, metadata })
}

/// A CPU copy of a tensor, ready to be written.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_owned(name: &str, t: &Tensor) -> Result<Owned> {
    let (kind, dtype, width) = match t.kind() {
        Kind::Int64 => (Kind::Int64, Dtype::I64, 8),
        Kind::Double => (Kind::Double, Dtype::F64, 8),
        // Everything else is stored as f32: checkpoints are trained in f32
        // (autocast keeps the master weights there).
        _ => (Kind::Float, Dtype::F32, 4),
    };
    let t = t.f_detach().and_then(|t| t.f_to_device(Device::Cpu)?.f_to_kind(kind)?.f_contiguous()).map_err(torch)?;
    let numel = t.numel();
    let mut data = vec![0u8; numel * width];
    t.f_copy_data_u8(&mut data, numel).map_err(|e| TrainError::Config(format!("cannot copy tensor {name}: {e}")))?;
    Ok(Owned { dtype, shape: t.size().iter().map(|&d| d as usize).collect(), data })
}

/// Writes tensors and metadata as one safetensors file, atomically (a
/// killed run leaves the previous checkpoint intact).
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let owned: Vec<(String, Owned)> =
        tensors.iter().map(|(n, t)| Ok((n.clone(), to_owned(n, t)?))).collect::<Result<_>>()?;
    let meta = if metadata.is_empty() { None } else { Some(metadata) };
    let bytes = safetensors::tensor::serialize(owned.iter().map(|(n, o)| (n.as_str(), o)), &meta)
        .map_err(|e| TrainError::weights(path, format!("cannot serialise: {e:?}")))?;
    maskforge_imageio::write_atomic(path, &bytes).map_err(TrainError::io(path))
}

/// How strictly a file must match the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// Our own checkpoints: every model tensor present with its shape;
    /// `optimizer.*` tensors are ignored.
    Exact,
    /// Pretrained backbone weights: as `Exact` for the backbone; the head
    /// is loaded when its shape fits and left freshly initialised otherwise.
    Pretrained,
}

/// What a load did, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Tensors copied from the file into the model.
    pub loaded: usize,
    /// torchvision `num_batches_tracked` buffers skipped.
    pub skipped_buffers: usize,
    /// Head tensors of the file not used (`name: file shape`).
    pub head_not_loaded: Vec<String>,
}

fn shape_str(s: &[i64]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// Copies the file's tensors into the model after checking names and
/// shapes; nothing is copied unless everything checks out.
pub fn load_into(model: &Classifier, file: &TensorFile, path: &Path, mode: LoadMode) -> Result<LoadSummary> {
    let vars = model.named_tensors();
    let mut summary = LoadSummary::default();
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    let mut plan: Vec<(Tensor, &Tensor)> = Vec::new();
    for (name, var) in &vars {
        let is_head = model.arch.is_head(name);
        match file.tensors.get(name) {
            None if mode == LoadMode::Pretrained && is_head => {}
            None => missing.push(name.clone()),
            Some(src) if src.size() != var.size() => {
                if mode == LoadMode::Pretrained && is_head {
                    summary.head_not_loaded.push(format!("{name}: {}", shape_str(&src.size())));
                } else {
                    misshaped.push(format!(
                        "{name} is {} in the file, {} in the {} model",
                        shape_str(&src.size()),
                        shape_str(&var.size()),
                        model.arch
                    ));
                }
            }
            Some(src) => plan.push((var.shallow_clone(), src)),
        }
    }
    let mut extra = Vec::new();
    for name in file.tensors.keys() {
        if name.ends_with("num_batches_tracked") {
            summary.skipped_buffers += 1;
        } else if mode == LoadMode::Exact && name.starts_with(OPTIMIZER_PREFIX) {
        } else if !vars.iter().any(|(n, _)| n == name) {
            extra.push(name.clone());
        }
    }
    if !missing.is_empty() || !extra.is_empty() || !misshaped.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("{} tensor(s) missing from the file: {}", missing.len(), list(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("{} unexpected tensor(s) for a {} model: {}", extra.len(), model.arch, list(&extra)));
        }
        if !misshaped.is_empty() {
            parts.push(format!("{} mis-shaped tensor(s): {}", misshaped.len(), misshaped.join("; ")));
        }
        return Err(TrainError::weights(path, parts.join("; ")));
    }
    summary.loaded = plan.len();
    tch::no_grad(|| -> Result<(), tch::TchError> {
        for (mut dst, src) in plan {
            let src = src.f_to_device(dst.device())?.f_to_kind(dst.kind())?;
            dst.f_copy_(&src)?;
        }
        Ok(())
    })
    .map_err(torch)?;
    Ok(summary)
}

/// Writes the model's tensors (plus `extra` tensors, e.g. optimiser state)
/// with the model description and any further metadata.
pub fn save_checkpoint(
    path: &Path,
    model: &Classifier,
    meta: &ModelMeta,
    extra: Vec<(String, Tensor)>,
    more_metadata: HashMap<String, String>,
) -> Result<()> {
    let mut tensors = model.named_tensors();
    tensors.extend(extra);
    let mut metadata = more_metadata;
    let json = serde_json::to_string(meta).map_err(|e| TrainError::Config(e.to_string()))?;
    metadata.insert(META_KEY.into(), json);
    write_safetensors(path, &tensors, metadata)
}

/// Loads one of our checkpoints into a new model on `device`, in eval mode
/// terms (no freezing; the caller decides).
pub fn load_checkpoint(path: &Path, device: Device) -> Result<(Classifier, ModelMeta, TensorFile)> {
    let file = read_safetensors(path)?;
    let meta = file.model_meta(path)?.ok_or_else(|| {
        TrainError::weights(
            path,
            format!(
                "no {META_KEY:?} metadata: not a maskforge checkpoint (pretrained backbones go to `train --weights`)"
            ),
        )
    })?;
    if meta.format != FORMAT {
        return Err(TrainError::weights(
            path,
            format!("checkpoint format {:?}, this build reads {FORMAT:?}", meta.format),
        ));
    }
    validate_meta(&meta).map_err(|m| TrainError::weights(path, format!("bad {META_KEY} metadata: {m}")))?;
    let model = Classifier::new(meta.arch, meta.num_outputs, meta.dropout, device);
    load_into(&model, &file, path, LoadMode::Exact)?;
    Ok((model, meta, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_train_core::{Arch, LossKind};

    #[test]
    fn round_trip_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = Classifier::new(Arch::Resnet18, 2, 0.0, Device::Cpu);
        let meta = ModelMeta {
            format: FORMAT.into(),
            arch: Arch::Resnet18,
            classes: vec!["a".into(), "b".into()],
            loss: LossKind::Ce,
            num_outputs: 2,
            img_size: 32,
            mean: [0.5; 3],
            std: [0.25; 3],
            dropout: 0.0,
            class_weights: None,
            epoch: 3,
            val_loss: Some(0.5),
            val_accuracy: None,
        };
        let p = dir.path().join("m.safetensors");
        let extra =
            vec![("optimizer.momentum_buffer.fc.bias".to_string(), Tensor::ones([2], (Kind::Float, Device::Cpu)))];
        save_checkpoint(&p, &m, &meta, extra, HashMap::new()).unwrap();
        let (m2, meta2, file) = load_checkpoint(&p, Device::Cpu).unwrap();
        assert_eq!(meta2, meta);
        assert_eq!(read_model_meta(&p).unwrap(), Some(meta.clone()));
        assert!(file.tensors.contains_key("optimizer.momentum_buffer.fc.bias"));
        let a = m.vs.variables()["layer2.0.bn1.running_var"].shallow_clone();
        let b = m2.vs.variables()["layer2.0.bn1.running_var"].shallow_clone();
        assert!(a.equal(&b));
        let a = &m.vs.variables()["fc.weight"];
        assert!(a.equal(&m2.vs.variables()["fc.weight"]));

        // Pretrained mode drops a head of another size; exact mode refuses it.
        let big = Classifier::new(Arch::Resnet18, 1000, 0.0, Device::Cpu);
        let pb = dir.path().join("imagenet.safetensors");
        write_safetensors(&pb, &big.named_tensors(), HashMap::new()).unwrap();
        let file = read_safetensors(&pb).unwrap();
        let s = load_into(&m, &file, &pb, LoadMode::Pretrained).unwrap();
        assert_eq!(s.head_not_loaded.len(), 2, "{s:?}");
        let e = load_into(&m, &file, &pb, LoadMode::Exact).unwrap_err().to_string();
        assert!(e.contains("fc.weight is [1000, 512] in the file, [2, 512]"), "{e}");
        // A damaged description is an error, not an abort.
        let bad = ModelMeta { num_outputs: 0, ..meta.clone() };
        let pbad = dir.path().join("bad.safetensors");
        save_checkpoint(&pbad, &m, &bad, Vec::new(), HashMap::new()).unwrap();
        assert!(load_checkpoint(&pbad, Device::Cpu).unwrap_err().to_string().contains("bad maskforge metadata"));
        // A plain weights file is not a checkpoint.
        assert!(load_checkpoint(&pb, Device::Cpu).unwrap_err().to_string().contains("not a maskforge checkpoint"));
    }
}
