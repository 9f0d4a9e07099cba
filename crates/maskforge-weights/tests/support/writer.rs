//! Checkpoints built byte by byte, as `torch.save` lays them out (zip of
//! PyTorch >= 1.6, or the legacy stream), for tests that must not need
//! Python. Shared by the unit tests (`src/lib.rs` includes it) and the
//! crate's integration tests.
#![allow(dead_code)]

use std::io::Write;

/// One tensor entry of a state_dict pickle.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    /// torch storage class, e.g. "FloatStorage".
    pub class: String,
    pub key: String,
    /// Storage size in elements.
    pub numel: usize,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

impl Entry {
    /// A contiguous f32 tensor with its own storage `key`.
    pub fn f32(name: &str, key: &str, size: &[usize]) -> Entry {
        let numel = size.iter().product();
        let mut stride = vec![1; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * size[i + 1];
        }
        Entry {
            name: name.into(),
            class: "FloatStorage".into(),
            key: key.into(),
            numel,
            offset: 0,
            size: size.to_vec(),
            stride,
        }
    }
}

/// A pickle byte writer with torch.save's habits (memo puts and gets).
#[derive(Default)]
pub struct Pickle {
    pub out: Vec<u8>,
    memo: u32,
    rebuild_memo: Option<u32>,
}

impl Pickle {
    pub fn new() -> Pickle {
        Pickle { out: vec![0x80, 2], ..Default::default() }
    }
    pub fn op(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }
    pub fn put(&mut self) -> u32 {
        let k = self.memo;
        self.memo += 1;
        if k < 256 {
            self.op(&[b'q', k as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&k.to_le_bytes());
        }
        k
    }
    pub fn get(&mut self, k: u32) -> &mut Self {
        if k < 256 {
            self.op(&[b'h', k as u8])
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&k.to_le_bytes());
            self
        }
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self
    }
    pub fn int(&mut self, v: usize) -> &mut Self {
        if v < 256 {
            self.op(&[b'K', v as u8])
        } else if v < 65536 {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
            self
        } else {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
            self
        }
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.out.push(b'c');
        self.out.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn tuple(&mut self, v: &[usize]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    pub fn ordered_dict(&mut self) -> &mut Self {
        self.global("collections", "OrderedDict").op(b")R")
    }
    pub fn stop(&mut self) -> Vec<u8> {
        self.out.push(b'.');
        std::mem::take(&mut self.out)
    }

    /// `_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())`.
    pub fn tensor(&mut self, e: &Entry, legacy: bool) -> &mut Self {
        match self.rebuild_memo {
            Some(k) => {
                self.get(k);
            }
            None => {
                self.global("torch._utils", "_rebuild_tensor_v2");
                self.rebuild_memo = Some(self.put());
            }
        }
        self.op(b"((").str("storage").global("torch", &e.class).str(&e.key).str("cpu").int(e.numel);
        if legacy {
            self.op(b"N");
        }
        self.op(b"tQ").int(e.offset).tuple(&e.size).tuple(&e.stride).op(&[0x89]).ordered_dict().op(b"tR");
        self.put();
        self
    }
}

/// The state_dict pickle: an OrderedDict of the entries with a `_metadata` state.
pub fn state_dict_pickle(entries: &[Entry], legacy: bool) -> Vec<u8> {
    let mut p = Pickle::new();
    p.ordered_dict();
    p.put();
    p.op(b"(");
    for e in entries {
        p.str(&e.name);
        p.tensor(e, legacy);
    }
    p.op(b"u");
    // BUILD with the state torch adds (`_metadata`), which is ignored.
    p.op(b"}").str("_metadata").ordered_dict().str("").op(b"}").str("version").int(1).op(b"ss").op(b"sb");
    p.stop()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A zip checkpoint: `ROOT/data.pkl`, `ROOT/byteorder`, `ROOT/data/KEY`.
pub fn zip_checkpoint(root: &str, pkl: &[u8], storages: &[(String, Vec<u8>)], byteorder: Option<&str>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(format!("{root}/data.pkl"), opts).unwrap();
    w.write_all(pkl).unwrap();
    if let Some(b) = byteorder {
        w.start_file(format!("{root}/byteorder"), opts).unwrap();
        w.write_all(b.as_bytes()).unwrap();
    }
    for (key, data) in storages {
        w.start_file(format!("{root}/data/{key}"), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.start_file(format!("{root}/version"), opts).unwrap();
    w.write_all(b"3\n").unwrap();
    w.finish().unwrap().into_inner()
}

/// The legacy stream: magic, 1001, sys_info, the object, the keys, then
/// each storage as u64 element count + bytes. `storages` are (key, numel, bytes).
pub fn legacy_checkpoint(obj_pickle: &[u8], storages: &[(String, usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(Pickle::new().op(&[0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]).stop());
    out.extend(Pickle::new().int(1001).stop());
    let mut p = Pickle::new();
    p.op(b"}(").str("protocol_version").int(1001).str("little_endian").op(&[0x88]);
    p.str("type_sizes").op(b"}(").str("short").int(2).str("int").int(4).str("long").int(4).op(b"uu");
    out.extend(p.stop());
    out.extend_from_slice(obj_pickle);
    let mut p = Pickle::new();
    p.op(b"](");
    for (k, _, _) in storages {
        p.str(k);
    }
    p.op(b"e");
    out.extend(p.stop());
    for (_, numel, data) in storages {
        out.extend_from_slice(&(*numel as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// A checkpoint of contiguous f32 tensors, one storage each (keys "0", "1", ...).
pub fn f32_checkpoint(tensors: &[(String, Vec<usize>, Vec<f32>)], legacy: bool) -> Vec<u8> {
    let entries: Vec<Entry> =
        tensors.iter().enumerate().map(|(i, (n, s, _))| Entry::f32(n, &i.to_string(), s)).collect();
    let pkl = state_dict_pickle(&entries, legacy);
    if legacy {
        let st: Vec<(String, usize, Vec<u8>)> =
            tensors.iter().enumerate().map(|(i, (_, _, v))| (i.to_string(), v.len(), f32_bytes(v))).collect();
        legacy_checkpoint(&pkl, &st)
    } else {
        let st: Vec<(String, Vec<u8>)> =
            tensors.iter().enumerate().map(|(i, (_, _, v))| (i.to_string(), f32_bytes(v))).collect();
        zip_checkpoint("archive", &pkl, &st, Some("little"))
    }
}
