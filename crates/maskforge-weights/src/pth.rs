//! Reading PyTorch checkpoints (`torch.save` of a state_dict) without Python.
//!
//! Two layouts are read:
//!
//! * the zip archive of PyTorch ≥ 1.6 (`ROOT/data.pkl` plus one raw
//!   little-endian file per storage, `ROOT/data/KEY`; `ROOT/byteorder` when
//!   present must say `little`);
//! * the legacy stream of PyTorch 0.4 to 1.5 (which checkpoints published
//!   before 2020 may use): five pickles (magic number, protocol 1001,
//!   system info, the object, the sorted storage keys) followed by each
//!   storage as an 8-byte element count and its raw bytes.
//!
//! In both the object is an `OrderedDict` of name → tensor, each tensor
//! pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, ...)` with the storage as a persistent id `('storage',
//! torch.FloatStorage, key, location, numel[, view])`. Tensors come out
//! contiguous (strided views are gathered), in the file's order; the
//! location (`cpu`, `cuda:0`) is ignored. Anything else (another
//! dtype, a storage view, a value that is not a tensor) is an error.

use crate::pickle::{self, Hooks, Value};
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

/// Largest `data.pkl` read (a ResNet50 state_dict's is about 30 KB).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// The element types a checkpoint may hold (the storage classes of torch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// `FloatStorage`.
    F32,
    /// `DoubleStorage`.
    F64,
    /// `HalfStorage`.
    F16,
    /// `BFloat16Storage`.
    BF16,
    /// `LongStorage`.
    I64,
    /// `IntStorage`.
    I32,
    /// `ShortStorage`.
    I16,
    /// `CharStorage`.
    I8,
    /// `ByteStorage`.
    U8,
    /// `BoolStorage` (one byte per value).
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// Whether it is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// torch's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }

    fn from_storage_class(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }
}

/// One tensor, contiguous, in row-major order, little-endian.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// Element type.
    pub dtype: DType,
    /// Size of each dimension, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// `numel() × dtype.size()` bytes.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Number of elements: the product of `shape` (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values of an f32 tensor (for tests and checks).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == DType::F32)
            .then(|| self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// A state_dict: names and tensors in the order of the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// `(name, tensor)` pairs, in file order.
    pub tensors: Vec<(String, RawTensor)>,
}

impl StateDict {
    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&RawTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Which layout a checkpoint has, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The zip archive of PyTorch ≥ 1.6.
    Zip,
    /// The pickle stream of PyTorch 0.4 to 1.5.
    Legacy,
}

/// A persistent id of a storage.
#[derive(Debug)]
struct StorageRef {
    dtype: DType,
    key: String,
    numel: usize,
}

/// `_rebuild_tensor_v2(...)` before its storage is read.
#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// The torch meaning of persistent ids and the few callables of a state_dict.
struct TorchHooks {
    /// Storage keys in the order first seen, with their type and size.
    storages: Vec<Rc<StorageRef>>,
    /// The legacy layout's persistent ids have a sixth element (a view).
    legacy: bool,
}

fn usize_of(v: &Value, what: &str) -> Result<usize, String> {
    v.as_int()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("{what} is a {}, not a non-negative int", v.describe()))
}

fn usizes_of(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    let t = v.as_tuple().ok_or_else(|| format!("{what} is a {}, not a tuple", v.describe()))?;
    t.iter().map(|x| usize_of(x, what)).collect()
}

impl Hooks for TorchHooks {
    fn persistent_load(&mut self, pid: Value) -> Result<Value, String> {
        let t = pid.as_tuple().ok_or_else(|| format!("persistent id is a {}, not a tuple", pid.describe()))?;
        match t.first() {
            Some(k) if k.as_str() == Some("storage") => {}
            Some(k) => return Err(format!("persistent id of kind {} is not supported (only 'storage')", k.describe())),
            None => return Err("empty persistent id".into()),
        }
        let want = if self.legacy { 6 } else { 5 };
        if t.len() != want {
            return Err(format!("storage persistent id has {} fields, expected {want}", t.len()));
        }
        let dtype = match &t[1] {
            Value::Global(m, n) if &**m == "torch" => DType::from_storage_class(n)
                .ok_or_else(|| format!("storage type torch.{n} is not supported (float, int and bool storages are)"))?,
            other => return Err(format!("storage type is a {}, not a torch storage class", other.describe())),
        };
        let key = t[2].as_str().ok_or_else(|| format!("storage key is a {}, not a str", t[2].describe()))?;
        let numel = usize_of(&t[4], "storage size")?;
        if self.legacy && !matches!(t[5], Value::None) {
            return Err("storage views (legacy checkpoints of torch < 1.0) are not supported".into());
        }
        let storage = match self.storages.iter().find(|s| s.key == key) {
            Some(s) if s.dtype != dtype || s.numel != numel => {
                return Err(format!("storage {key} is used as two different types or sizes"));
            }
            Some(s) => s.clone(),
            None => {
                let s = Rc::new(StorageRef { dtype, key: key.to_string(), numel });
                self.storages.push(s.clone());
                s
            }
        };
        Ok(Value::Custom(storage))
    }

    fn reduce(&mut self, module: &str, name: &str, args: &Value) -> Result<Option<Value>, String> {
        let args_t = args.as_tuple();
        match (module, name) {
            ("collections", "OrderedDict") => match args_t {
                Some([]) => Ok(Some(Value::Dict(Rc::new(Vec::new()), 1))),
                _ => Err(format!("collections.OrderedDict called with {}", args.describe())),
            },
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                let a = args_t.ok_or_else(|| format!("{name} called with {}", args.describe()))?;
                if a.len() < 4 {
                    return Err(format!("{name} called with {} argument(s)", a.len()));
                }
                let storage = match &a[0] {
                    Value::Custom(c) => {
                        c.clone().downcast::<StorageRef>().map_err(|_| format!("{name}: no storage"))?
                    }
                    other => return Err(format!("{name}: the storage is a {}", other.describe())),
                };
                let offset = usize_of(&a[1], "storage offset")?;
                let size = usizes_of(&a[2], "tensor size")?;
                let stride = usizes_of(&a[3], "tensor stride")?;
                if size.len() != stride.len() {
                    return Err(format!("tensor has {} sizes but {} strides", size.len(), stride.len()));
                }
                Ok(Some(Value::Custom(Rc::new(TensorRef { storage, offset, size, stride }))))
            }
            // An nn.Parameter: its data tensor.
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => match args_t {
                Some([data, ..]) if tensor_ref(data).is_some() => Ok(Some(data.clone())),
                _ => Err(format!("{name} without a tensor")),
            },
            _ => Ok(None),
        }
    }
}

fn tensor_ref(v: &Value) -> Option<Rc<TensorRef>> {
    match v {
        Value::Custom(c) => c.clone().downcast::<TensorRef>().ok(),
        _ => None,
    }
}

/// The layout of a checkpoint, or why it is not one we read.
pub fn layout(bytes: &[u8]) -> Result<Layout, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(Layout::Zip);
    }
    if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        return Err("a tar-based checkpoint of PyTorch before 0.4; load and re-save it with torch.save".into());
    }
    if bytes.first() == Some(&0x80) {
        return Ok(Layout::Legacy);
    }
    Err("not a PyTorch checkpoint (neither a zip archive nor a pickle stream)".into())
}

/// Reads a checkpoint held in memory.
pub fn read_pth(bytes: &[u8]) -> Result<StateDict, String> {
    match layout(bytes)? {
        Layout::Zip => read_zip(bytes),
        Layout::Legacy => read_legacy(bytes),
    }
}

fn zip_err(e: zip::result::ZipError) -> String {
    format!("bad zip archive: {e}")
}

fn read_entry(zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let declared = f.size();
    if declared > limit {
        return Err(format!("{name}: {declared} bytes, more than the {limit} expected"));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(declared as usize).map_err(|_| format!("{name}: out of memory for {declared} bytes"))?;
    f.take(limit).read_to_end(&mut out).map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

fn read_zip(bytes: &[u8]) -> Result<StateDict, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();

    let roots: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .collect();
    let root = match roots.as_slice() {
        [r] => r.to_string(),
        [] => return Err("zip archive without ROOT/data.pkl: not a torch.save checkpoint".into()),
        _ => return Err("zip archive with several ROOT/data.pkl".into()),
    };
    let byteorder = format!("{root}/byteorder");
    if names.contains(&byteorder) {
        let b = read_entry(&mut zip, &byteorder, 16)?;
        if b != b"little" {
            return Err(format!(
                "byte order {:?}: only little-endian checkpoints are read",
                String::from_utf8_lossy(&b)
            ));
        }
    }
    let pkl = read_entry(&mut zip, &format!("{root}/data.pkl"), MAX_PICKLE_BYTES)?;
    let mut hooks = TorchHooks { storages: Vec::new(), legacy: false };
    let (obj, _) = pickle::load(&pkl, 0, &mut hooks).map_err(|e| format!("data.pkl: {e}"))?;
    let entries = state_dict_entries(&obj)?;
    let mut data: HashMap<String, Vec<u8>> = HashMap::new();
    for s in &hooks.storages {
        let name = format!("{root}/data/{}", s.key);
        let want = storage_bytes(s)?;
        let b = read_entry(&mut zip, &name, want as u64).map_err(|e| format!("storage {}: {e}", s.key))?;
        if b.len() != want {
            return Err(format!(
                "storage {}: {} bytes, expected {want} ({} x {})",
                s.key,
                b.len(),
                s.numel,
                s.dtype.name()
            ));
        }
        data.insert(s.key.clone(), b);
    }
    materialise(entries, &data)
}

fn storage_bytes(s: &StorageRef) -> Result<usize, String> {
    s.numel.checked_mul(s.dtype.size()).ok_or_else(|| format!("storage {}: size overflows", s.key))
}

/// `0x1950a86a20f9469cfc6c`, the legacy format's magic number, as `LONG1` bytes.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

fn read_legacy(bytes: &[u8]) -> Result<StateDict, String> {
    let mut hooks = TorchHooks { storages: Vec::new(), legacy: true };
    let (magic, pos) = pickle::load(bytes, 0, &mut hooks)?;
    if !matches!(&magic, Value::BigInt(b) if **b == LEGACY_MAGIC) {
        return Err("a pickle that is not a torch.save checkpoint (no magic number)".into());
    }
    let (proto, pos) = pickle::load(bytes, pos, &mut hooks)?;
    if proto.as_int() != Some(1001) {
        return Err(format!("legacy checkpoint protocol {}, only 1001 is read", proto.describe()));
    }
    let (sys_info, pos) = pickle::load(bytes, pos, &mut hooks)?;
    if let Value::Dict(d, _) = &sys_info {
        if d.iter().any(|(k, v)| k.as_str() == Some("little_endian") && matches!(v, Value::Bool(false))) {
            return Err("a big-endian checkpoint: only little-endian checkpoints are read".into());
        }
    }
    let (obj, pos) = pickle::load(bytes, pos, &mut hooks)?;
    let entries = state_dict_entries(&obj)?;
    let (keys, mut pos) = pickle::load(bytes, pos, &mut hooks)?;
    let Value::List(keys, _) = keys else {
        return Err(format!("storage key list is a {}", keys.describe()));
    };
    let mut data: HashMap<String, Vec<u8>> = HashMap::new();
    for k in keys.iter() {
        let key = k.as_str().ok_or_else(|| format!("storage key is a {}", k.describe()))?;
        let s = hooks
            .storages
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| format!("storage {key} is listed but used by no tensor"))?;
        let head = bytes.get(pos..pos + 8).ok_or_else(|| format!("storage {key}: file truncated"))?;
        let numel = u64::from_le_bytes(head.try_into().map_err(|_| "storage header".to_string())?);
        if numel != s.numel as u64 {
            return Err(format!("storage {key}: {numel} elements in the file, {} in the pickle", s.numel));
        }
        let n = storage_bytes(s)?;
        let start = pos + 8;
        let body = start
            .checked_add(n)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| format!("storage {key}: file truncated ({n} bytes expected)"))?;
        data.insert(key.to_string(), body.to_vec());
        pos = start + n;
    }
    materialise(entries, &data)
}

/// The (name, tensor) entries of the unpickled object: a state_dict, or a
/// dict holding one under `state_dict` / `model` (as training scripts save).
fn state_dict_entries(obj: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, String> {
    let Value::Dict(d, _) = obj else {
        return Err(format!("the checkpoint holds a {}, not a state_dict", obj.describe()));
    };
    for key in ["state_dict", "model", "model_state_dict"] {
        if let Some((_, inner @ Value::Dict(..))) = d.iter().find(|(k, _)| k.as_str() == Some(key)) {
            return state_dict_entries(inner);
        }
    }
    d.iter()
        .map(|(k, v)| {
            let name = k.as_str().ok_or_else(|| format!("a state_dict key is a {}", k.describe()))?;
            let t = tensor_ref(v).ok_or_else(|| format!("entry {name:?} is a {}, not a tensor", v.describe()))?;
            Ok((name.to_string(), t))
        })
        .collect()
}

/// Each tensor as a contiguous copy of its part of its storage.
fn materialise(entries: Vec<(String, Rc<TensorRef>)>, data: &HashMap<String, Vec<u8>>) -> Result<StateDict, String> {
    // Bound on what strided views (stride 0) may expand to.
    let stored: usize = data.values().map(Vec::len).sum();
    let mut budget = stored.saturating_mul(4).saturating_add(1 << 20);
    let mut out = StateDict::default();
    for (name, t) in entries {
        if out.get(&name).is_some() {
            return Err(format!("tensor {name} appears twice"));
        }
        let s = &t.storage;
        let bytes = data.get(&s.key).ok_or_else(|| format!("tensor {name}: storage {} missing", s.key))?;
        let raw = gather(&t, bytes, &mut budget).map_err(|e| format!("tensor {name}: {e}"))?;
        out.tensors.push((name, raw));
    }
    Ok(out)
}

fn gather(t: &TensorRef, bytes: &[u8], budget: &mut usize) -> Result<RawTensor, String> {
    let el = t.storage.dtype.size();
    let numel = t.size.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("size overflows")?;
    let mk = |data| RawTensor { dtype: t.storage.dtype, shape: t.size.clone(), data };
    if numel == 0 {
        return Ok(mk(Vec::new()));
    }
    // The last element's index in the storage must be inside it.
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
        .ok_or("strides overflow")?;
    if last >= t.storage.numel {
        return Err(format!(
            "size {:?}, stride {:?} and offset {} reach element {last} of a storage of {}",
            t.size, t.stride, t.offset, t.storage.numel
        ));
    }
    let n_bytes = numel.checked_mul(el).ok_or("size overflows")?;
    *budget = budget.checked_sub(n_bytes).ok_or("expands to more data than the file holds (stride-0 views)")?;
    let mut data = Vec::new();
    data.try_reserve_exact(n_bytes).map_err(|_| format!("out of memory for {n_bytes} bytes"))?;
    // Row-major strides: one copy.
    let mut expect = 1usize;
    let mut contiguous = true;
    for (&d, &s) in t.size.iter().zip(&t.stride).rev() {
        if d != 1 && s != expect {
            contiguous = false;
            break;
        }
        expect = expect.saturating_mul(d);
    }
    if contiguous {
        data.extend_from_slice(&bytes[t.offset * el..(t.offset + numel) * el]);
        return Ok(mk(data));
    }
    // Otherwise an odometer over the indices, innermost fastest.
    let dims = t.size.len();
    let mut idx = vec![0usize; dims];
    let mut at = t.offset;
    for _ in 0..numel {
        data.extend_from_slice(&bytes[at * el..(at + 1) * el]);
        for k in (0..dims).rev() {
            idx[k] += 1;
            // Wrapping: past the last index `at` is not used, and the
            // bounds check above covers every index that is.
            at = at.wrapping_add(t.stride[k]);
            if idx[k] < t.size[k] {
                break;
            }
            at = at.wrapping_sub(t.stride[k].wrapping_mul(t.size[k]));
            idx[k] = 0;
        }
    }
    Ok(mk(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{f32_bytes, f32_checkpoint, legacy_checkpoint, state_dict_pickle, zip_checkpoint, Entry};

    fn vals(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 * 0.5 - 3.0).collect()
    }

    #[test]
    fn zip_and_legacy_read_the_same_tensors() {
        let tensors = vec![
            ("conv1.weight".to_string(), vec![2, 3, 1, 1], vals(6)),
            ("bn1.running_var".to_string(), vec![2], vec![1.5, 2.5]),
            ("fc.weight".to_string(), vec![300, 2], vals(600)),
        ];
        for legacy in [false, true] {
            let bytes = f32_checkpoint(&tensors, legacy);
            assert_eq!(layout(&bytes).unwrap(), if legacy { Layout::Legacy } else { Layout::Zip });
            let sd = read_pth(&bytes).unwrap();
            let names: Vec<&str> = sd.tensors.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["conv1.weight", "bn1.running_var", "fc.weight"], "file order kept");
            for (n, s, v) in &tensors {
                let t = sd.get(n).unwrap();
                assert_eq!((&t.shape, t.dtype), (s, DType::F32));
                assert_eq!(t.to_f32().unwrap(), *v, "{n} legacy={legacy}");
            }
        }
    }

    /// A transposed view, an offset into a shared storage, an int64 scalar
    /// (num_batches_tracked) and an empty tensor.
    #[test]
    fn strided_shared_and_int_tensors() {
        let base = vals(12); // storage "0": 12 floats, viewed as 3x4
        let mut t = Entry::f32("t", "0", &[4, 3]);
        t.numel = 12;
        t.stride = vec![1, 4]; // the transpose of a row-major 3x4
        let mut tail = Entry::f32("tail", "0", &[2, 2]);
        tail.numel = 12;
        tail.offset = 8;
        let mut steps = Entry::f32("bn.num_batches_tracked", "1", &[]);
        steps.class = "LongStorage".into();
        steps.numel = 1;
        let mut empty = Entry::f32("empty", "2", &[0, 5]);
        empty.numel = 0;
        let mut bcast = Entry::f32("bcast", "0", &[2, 3]);
        bcast.numel = 12;
        bcast.stride = vec![0, 1]; // stride 0: a row repeated
        let entries = [t, tail, steps, empty, bcast];
        let pkl = state_dict_pickle(&entries, false);
        let st = vec![("0".into(), f32_bytes(&base)), ("1".into(), 7i64.to_le_bytes().to_vec()), ("2".into(), vec![])];
        let sd = read_pth(&zip_checkpoint("my-model", &pkl, &st, None)).unwrap();
        let t = sd.get("t").unwrap();
        let b = &base;
        let want: Vec<f32> = (0..4).flat_map(|c| (0..3).map(move |r| b[r * 4 + c])).collect();
        assert_eq!(t.to_f32().unwrap(), want);
        assert_eq!(sd.get("tail").unwrap().to_f32().unwrap(), base[8..12]);
        let s = sd.get("bn.num_batches_tracked").unwrap();
        assert_eq!((s.dtype, s.shape.len(), s.data.as_slice()), (DType::I64, 0, &7i64.to_le_bytes()[..]));
        assert_eq!(sd.get("empty").unwrap().shape, [0, 5]);
        assert_eq!(sd.get("bcast").unwrap().to_f32().unwrap(), [base[0], base[1], base[2], base[0], base[1], base[2]]);

        // The same in the legacy layout.
        let pkl = state_dict_pickle(&entries, true);
        let st: Vec<(String, usize, Vec<u8>)> = vec![
            ("0".into(), 12, f32_bytes(&base)),
            ("1".into(), 1, 7i64.to_le_bytes().to_vec()),
            ("2".into(), 0, vec![]),
        ];
        let legacy = read_pth(&legacy_checkpoint(&pkl, &st)).unwrap();
        assert_eq!(legacy, sd);
    }

    #[test]
    fn nested_state_dict_and_parameters() {
        // {"state_dict": OrderedDict(...), "epoch": 3}, one value an nn.Parameter.
        use crate::writer::Pickle;
        let e = Entry::f32("w", "0", &[2]);
        let mut p = Pickle::new();
        p.op(b"}(").str("epoch").int(3).str("state_dict").ordered_dict().op(b"(").str("w");
        p.global("torch._utils", "_rebuild_parameter");
        p.op(b"(");
        p.tensor(&e, false);
        p.op(&[0x88]).ordered_dict().op(b"tR").op(b"u").op(b"u");
        let pkl = p.stop();
        let sd = read_pth(&zip_checkpoint("a", &pkl, &[("0".into(), f32_bytes(&[1.0, 2.0]))], None)).unwrap();
        assert_eq!(sd.get("w").unwrap().to_f32().unwrap(), [1.0, 2.0]);
    }

    #[test]
    fn bad_checkpoints_are_errors() {
        let ok_entries = [Entry::f32("w", "0", &[2, 2])];
        let pkl = state_dict_pickle(&ok_entries, false);
        let good = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let zip =
            |pkl: &[u8], st: &[(String, Vec<u8>)], order: Option<&str>| read_pth(&zip_checkpoint("r", pkl, st, order));
        let err = |r: Result<StateDict, String>| r.unwrap_err();

        assert!(zip(&pkl, &[("0".into(), good.clone())], Some("little")).is_ok());
        let e = err(zip(&pkl, &[("0".into(), good[..12].to_vec())], None));
        assert!(e.contains("storage 0: 12 bytes, expected 16"), "{e}");
        let e = err(zip(&pkl, &[], None));
        assert!(e.contains("storage 0") && e.contains("r/data/0"), "{e}");
        let e = err(zip(&pkl, &[("0".into(), good.clone())], Some("big")));
        assert!(e.contains("only little-endian"), "{e}");

        let mut oob = ok_entries[0].clone();
        oob.offset = 1;
        let e = err(zip(&state_dict_pickle(&[oob], false), &[("0".into(), good.clone())], None));
        assert!(e.contains("tensor w:") && e.contains("reach element 4 of a storage of 4"), "{e}");
        let mut huge = ok_entries[0].clone();
        huge.size = vec![1 << 20, 1 << 20];
        huge.stride = vec![0, 0];
        let e = err(zip(&state_dict_pickle(&[huge], false), &[("0".into(), good.clone())], None));
        assert!(e.contains("tensor w:"), "{e}");
        let mut complex = ok_entries[0].clone();
        complex.class = "ComplexFloatStorage".into();
        let e = err(zip(&state_dict_pickle(&[complex], false), &[("0".into(), good.clone())], None));
        assert!(e.contains("torch.ComplexFloatStorage is not supported"), "{e}");

        // Not a tensor; a list instead of a dict; an unsupported opcode.
        use crate::writer::Pickle;
        let e = err(zip(&Pickle::new().ordered_dict().op(b"X\x01\x00\x00\x00aK\x01s").stop(), &[], None));
        assert!(e.contains("entry \"a\" is a int 1, not a tensor"), "{e}");
        let e = err(zip(&Pickle::new().op(b"]").stop(), &[], None));
        assert!(e.contains("holds a list of 0, not a state_dict"), "{e}");
        let e = err(zip(&Pickle::new().op(b"F1.0\n").stop(), &[], None));
        assert!(e.contains("data.pkl: pickle opcode 0x46"), "{e}");

        // Not checkpoints at all, and damaged ones.
        assert!(err(read_pth(b"hello")).contains("not a PyTorch checkpoint"));
        assert!(err(read_pth(b"")).contains("not a PyTorch checkpoint"));
        let mut tar = vec![0u8; 600];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(err(read_pth(&tar)).contains("tar-based"));
        let full = zip_checkpoint("r", &pkl, &[("0".into(), good.clone())], None);
        for cut in [10, full.len() / 2, full.len() - 10] {
            assert!(read_pth(&full[..cut]).is_err(), "zip cut at {cut}");
        }
        let legacy = legacy_checkpoint(&state_dict_pickle(&ok_entries, true), &[("0".into(), 4, good.clone())]);
        for cut in (0..legacy.len()).step_by(7) {
            assert!(read_pth(&legacy[..cut]).is_err(), "legacy cut at {cut}");
        }
        let e = err(read_pth(&legacy_checkpoint(&state_dict_pickle(&ok_entries, true), &[("0".into(), 3, good)])));
        assert!(e.contains("storage 0: 3 elements in the file, 4 in the pickle"), "{e}");
        let e = err(read_pth(&crate::writer::Pickle::new().int(5).stop()));
        assert!(e.contains("no magic number"), "{e}");
    }
}
