//! A state_dict as a safetensors file in torchvision's names, and the
//! provenance it records.

use crate::model::Arch;
use crate::pth::{read_pth, DType, RawTensor, StateDict};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Where a converted file came from, kept in its safetensors `__metadata__`
/// (keys `arch`, `source`, `sha256`), so a cache entry can be checked
/// without reading its tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The backbone's name ([`Arch::name`]).
    pub arch: String,
    /// The URL or file the checkpoint was read from.
    pub source: String,
    /// SHA-256 of the checkpoint (.pth) file, 64 lowercase hex digits.
    pub sha256: String,
}

impl Provenance {
    fn to_metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("arch".to_string(), self.arch.clone()),
            ("source".to_string(), self.source.clone()),
            ("sha256".to_string(), self.sha256.clone()),
            ("converted_by".to_string(), format!("maskforge-weights {}", env!("CARGO_PKG_VERSION"))),
        ])
    }
}

fn st_dtype(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

struct Out<'a>(&'a RawTensor);

impl View for Out<'_> {
    fn dtype(&self) -> Dtype {
        st_dtype(self.0.dtype)
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0.data)
    }
    fn data_len(&self) -> usize {
        self.0.data.len()
    }
}

/// torchvision's names: a leading `module.` (left by DataParallel) removed.
pub fn normalise_names(sd: StateDict) -> Result<StateDict, String> {
    let mut out = StateDict::default();
    for (name, t) in sd.tensors {
        let name = name.strip_prefix("module.").map(str::to_string).unwrap_or(name);
        if out.get(&name).is_some() {
            return Err(format!("tensor {name} appears twice (with and without `module.`)"));
        }
        out.tensors.push((name, t));
    }
    Ok(out)
}

/// The safetensors bytes of `sd` (every tensor, `num_batches_tracked`
/// included, so the file also loads back into torchvision), with the
/// provenance as metadata.
pub fn to_safetensors(sd: &StateDict, prov: &Provenance) -> Result<Vec<u8>, String> {
    let views = sd.tensors.iter().map(|(n, t)| (n.as_str(), Out(t)));
    safetensors::tensor::serialize(views, &Some(prov.to_metadata())).map_err(|e| format!("cannot serialise: {e:?}"))
}

/// A .pth checkpoint (bytes) to safetensors bytes for `model`: read, names
/// normalised, checked against torchvision's model, serialised. Returns the
/// bytes and the number of tensors.
pub fn convert_pth(bytes: &[u8], model: Arch, prov: &Provenance) -> Result<(Vec<u8>, usize), String> {
    let sd = normalise_names(read_pth(bytes)?)?;
    model.check(&sd)?;
    Ok((to_safetensors(&sd, prov)?, sd.tensors.len()))
}

/// The provenance recorded in a safetensors file, read from its header
/// alone; `Ok(None)` for a file without one (e.g. converted elsewhere).
pub fn read_provenance(path: &Path) -> std::io::Result<Option<Provenance>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n);
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a safetensors file: {m}"));
    if n > 100 << 20 {
        return Err(bad("header too large"));
    }
    let mut header = Vec::new();
    f.take(n).read_to_end(&mut header)?;
    if header.len() as u64 != n {
        return Err(bad("truncated header"));
    }
    let json: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(&e.to_string()))?;
    let meta = &json["__metadata__"];
    let get = |k: &str| meta[k].as_str().map(str::to_string);
    Ok(match (get("arch"), get("source"), get("sha256")) {
        (Some(arch), Some(source), Some(sha256)) => Some(Provenance { arch, source, sha256 }),
        _ => None,
    })
}
