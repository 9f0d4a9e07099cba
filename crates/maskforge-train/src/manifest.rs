//! Reading what `maskforge split` writes: `classes.csv`, `train.csv` /
//! `val.csv` / `test.csv`, `stats.json` and `split.json`.
//!
//! The readers are tolerant: columns are found by name, unknown columns and
//! JSON fields are ignored, and a manifest row that cannot be used (bad
//! class index, empty path) is skipped with a one-line message rather than
//! failing the run. Missing or unreadable files are errors.

use crate::error::{Result, TrainError};
use maskforge_imageio::Failure;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One usable manifest row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// As written in the manifest: relative to the dataset root, `/`-separated.
    pub path: String,
    pub class_index: usize,
}

/// A manifest with its usable rows and the rows it had to skip.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub file: PathBuf,
    pub samples: Vec<Sample>,
    /// Rows that could not be used, keyed `file:line`.
    pub skipped: Vec<Failure>,
    /// SHA-256 of the file's bytes, recorded in `config.json`.
    pub sha256: String,
}

/// `classes.csv` (`index,name,count`): the class names by index.
pub fn read_classes(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(|e| TrainError::manifest(path, e.to_string()))?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim()));
    let index_col = col(&["index", "class_index"]).unwrap_or(0);
    let name_col = col(&["name", "class"]).unwrap_or(1);
    let mut named: Vec<(usize, String)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| TrainError::manifest(path, e.to_string()))?;
        let line = i + 2;
        let index: usize = record
            .get(index_col)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| TrainError::manifest(path, format!("line {line}: class index is not a number")))?;
        let name = record.get(name_col).unwrap_or("").trim().to_string();
        if name.is_empty() {
            return Err(TrainError::manifest(path, format!("line {line}: empty class name")));
        }
        named.push((index, name));
    }
    named.sort();
    for (i, (index, _)) in named.iter().enumerate() {
        if *index != i {
            return Err(TrainError::manifest(path, format!("class indices must be 0..{}, found {index}", named.len())));
        }
    }
    if named.len() < 2 {
        return Err(TrainError::manifest(path, format!("{} class(es): a classifier needs at least 2", named.len())));
    }
    Ok(named.into_iter().map(|(_, n)| n).collect())
}

/// Reads a manifest (`path,class_index,class,...`). Rows whose class index
/// is missing, unparsable or out of range for `classes` are skipped; when
/// the index column is absent the `class` name is looked up instead.
pub fn read_manifest(path: &Path, classes: &[String]) -> Result<Manifest> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(|e| TrainError::manifest(path, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let path_col = col("path").ok_or_else(|| TrainError::manifest(path, "not a manifest: no \"path\" column"))?;
    let index_col = col("class_index").or_else(|| col("label"));
    let class_col = col("class");
    if index_col.is_none() && class_col.is_none() {
        return Err(TrainError::manifest(path, "not a manifest: neither a \"class_index\" nor a \"class\" column"));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let key = format!("{name}:{line}");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                skipped.push(Failure::new(key, format!("unreadable row: {e}")));
                continue;
            }
        };
        let rel = record.get(path_col).unwrap_or("").trim();
        if rel.is_empty() {
            skipped.push(Failure::new(key, "empty path"));
            continue;
        }
        let by_index = index_col.and_then(|c| record.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let class_index = match by_index {
            Some(s) => match s.parse::<usize>() {
                Ok(i) if i < classes.len() => i,
                Ok(i) => {
                    skipped.push(Failure::new(rel, format!("class index {i} out of range ({} classes)", classes.len())));
                    continue;
                }
                Err(_) => {
                    skipped.push(Failure::new(rel, format!("class index {s:?} is not a number")));
                    continue;
                }
            },
            None => {
                let class = class_col.and_then(|c| record.get(c)).unwrap_or("").trim();
                match classes.iter().position(|c| c == class) {
                    Some(i) => i,
                    None => {
                        skipped.push(Failure::new(rel, format!("unknown class {class:?}")));
                        continue;
                    }
                }
            }
        };
        samples.push(Sample { path: rel.to_string(), class_index });
    }
    Ok(Manifest { file: path.to_path_buf(), samples, skipped, sha256 })
}

/// The parts of `stats.json` training uses; other fields are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Stats {
    /// Per-channel R, G, B mean in [0, 1].
    pub mean: Option<[f64; 3]>,
    /// Per-channel standard deviation in [0, 1].
    pub std: Option<[f64; 3]>,
    /// Inverse-frequency weight per class; `null` for a class without images.
    #[serde(default)]
    pub class_weights: Option<Vec<Option<f64>>>,
}

pub fn read_stats(path: &Path) -> Result<Stats> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let stats: Stats = serde_json::from_str(&text).map_err(|e| TrainError::manifest(path, e.to_string()))?;
    if let Some(std) = stats.std {
        if std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return Err(TrainError::manifest(path, format!("std {std:?} has a channel <= 0: cannot normalise")));
        }
    }
    Ok(stats)
}

/// The dataset root recorded in `split.json` (key `dataset_root`, or
/// `root`). A relative path is taken relative to the manifests folder.
pub fn root_from_split_json(manifests: &Path) -> Result<Option<PathBuf>> {
    let path = manifests.join("split.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| TrainError::manifest(&path, e.to_string()))?;
    let root = ["dataset_root", "root", "data_root"].iter().find_map(|k| value.get(*k).and_then(|v| v.as_str()));
    Ok(root.map(|r| {
        let r = PathBuf::from(r);
        if r.is_absolute() {
            r
        } else {
            manifests.join(r)
        }
    }))
}

/// `--root` if given, else `split.json`'s root, else an error saying so.
pub fn resolve_root(manifests: &Path, flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(root) = flag {
        return Ok(root.to_path_buf());
    }
    root_from_split_json(manifests)?.ok_or_else(|| {
        TrainError::Config(format!(
            "no dataset root: {} has no split.json with a dataset_root; pass --root DIR",
            manifests.display()
        ))
    })
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_skip_bad_rows_and_classes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("classes.csv"), "index,name,count\n1,unmasked,3\n0,masked,2\n").unwrap();
        let classes = read_classes(&d.join("classes.csv")).unwrap();
        assert_eq!(classes, ["masked", "unmasked"]);
        std::fs::write(
            d.join("train.csv"),
            "path,class_index,class,group,bytes,extra\n\
             masked/a.jpg,0,masked,a,10,x\n\
             unmasked/b.jpg,1,unmasked,b,10,x\n\
             bad/c.jpg,7,nope,c,10,x\n\
             bad/d.jpg,one,nope,d,10,x\n\
             ,0,masked,e,10,x\n",
        )
        .unwrap();
        let m = read_manifest(&d.join("train.csv"), &classes).unwrap();
        assert_eq!(m.samples.len(), 2);
        assert_eq!(m.samples[1], Sample { path: "unmasked/b.jpg".into(), class_index: 1 });
        assert_eq!(m.skipped.len(), 3, "{:?}", m.skipped);
        assert!(m.skipped[0].reason.contains("out of range"));
        assert_eq!(m.sha256.len(), 64);

        // Class names only.
        std::fs::write(d.join("names.csv"), "path,class\nx.jpg,unmasked\ny.jpg,other\n").unwrap();
        let m = read_manifest(&d.join("names.csv"), &classes).unwrap();
        assert_eq!(m.samples, [Sample { path: "x.jpg".into(), class_index: 1 }]);

        std::fs::write(d.join("one.csv"), "index,name,count\n0,a,1\n").unwrap();
        assert!(read_classes(&d.join("one.csv")).unwrap_err().to_string().contains("at least 2"));
        std::fs::write(d.join("gap.csv"), "index,name,count\n0,a,1\n2,b,1\n").unwrap();
        assert!(read_classes(&d.join("gap.csv")).is_err());
        assert!(matches!(read_manifest(&d.join("missing.csv"), &classes), Err(TrainError::Io { .. })));
    }

    #[test]
    fn stats_and_split_json_are_read_tolerantly() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("stats.json"),
            r#"{"manifest":"train.csv","images":5,"mean":[0.5,0.4,0.3],"std":[0.2,0.2,0.25],
                "class_names":["a","b"],"class_weights":[1.25,null],"new_field":{"x":1}}"#,
        )
        .unwrap();
        let s = read_stats(&d.join("stats.json")).unwrap();
        assert_eq!(s.mean, Some([0.5, 0.4, 0.3]));
        assert_eq!(s.class_weights, Some(vec![Some(1.25), None]));
        std::fs::write(d.join("split.json"), r#"{"dataset_root":"/data/x","seed":1}"#).unwrap();
        assert_eq!(resolve_root(d, None).unwrap(), PathBuf::from("/data/x"));
        assert_eq!(resolve_root(d, Some(Path::new("/y"))).unwrap(), PathBuf::from("/y"));
        std::fs::write(d.join("split.json"), r#"{"root":"rel"}"#).unwrap();
        assert_eq!(resolve_root(d, None).unwrap(), d.join("rel"));
        std::fs::remove_file(d.join("split.json")).unwrap();
        assert!(resolve_root(d, None).unwrap_err().to_string().contains("--root"));
    }
}
