//! A manifest set: the files `maskforge split --out DIR` writes together
//! (`train.csv`, `val.csv`, `test.csv`, `classes.csv`, `stats.json`,
//! `failures.csv`) and `split.json`, which records the SHA-256 of each.
//!
//! The files are renamed into place one by one, so a split killed half way
//! would leave, say, a new `train.csv` beside an old `val.csv`. To make that
//! visible, split first rewrites `split.json` as `"complete": false`, then
//! writes the files, and last writes `split.json` with `"complete": true`
//! and `"files": {name: sha256}`. A reader of a file of the set
//! ([`read_checked`]) compares the bytes it read with that record and refuses
//! a mixed or incomplete set; a re-run of split repairs it.
//!
//! `split.json` files written before the fingerprint existed, and folders of
//! hand-made manifests without one, are read as before (nothing to check).

use crate::ContractError;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SPLIT_JSON: &str = "split.json";
pub const CLASSES_CSV: &str = "classes.csv";
pub const STATS_JSON: &str = "stats.json";
pub const FAILURES_CSV: &str = "failures.csv";
/// The file names a split may write besides `split.json`: a file of one of
/// these names beside a fingerprinted `split.json` must be listed in it.
pub const SET_FILES: [&str; 6] = ["train.csv", "val.csv", "test.csv", CLASSES_CSV, STATS_JSON, FAILURES_CSV];

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What a folder's `split.json` says about the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetRecord {
    /// No `split.json`: hand-made manifests, nothing to check.
    Absent,
    /// A `split.json` without a fingerprint (older split, or hand-made).
    Unfingerprinted,
    /// `"complete": false`: a split was writing the set and did not finish.
    Incomplete,
    /// File name → SHA-256 (hex) of every file of the set.
    Files(BTreeMap<String, String>),
}

impl SetRecord {
    /// Reads `DIR/split.json` (only its `complete` and `files` fields).
    pub fn read(dir: &Path) -> Result<SetRecord, ContractError> {
        let path = dir.join(SPLIT_JSON);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SetRecord::Absent),
            Err(e) => return Err(ContractError::Io { path, source: e }),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ContractError::format(&path, format!("not valid JSON: {e}")))?;
        if value.get("complete").and_then(|v| v.as_bool()) == Some(false) {
            return Ok(SetRecord::Incomplete);
        }
        let Some(files) = value.get("files") else {
            return Ok(SetRecord::Unfingerprinted);
        };
        let bad = || ContractError::format(&path, "\"files\" must map file names to SHA-256 hex strings");
        let mut map = BTreeMap::new();
        for (name, hash) in files.as_object().ok_or_else(bad)? {
            map.insert(name.clone(), hash.as_str().ok_or_else(bad)?.to_string());
        }
        Ok(SetRecord::Files(map))
    }

    /// Whether `DIR/name`, whose bytes hash to `sha256`, belongs to the set.
    pub fn check(&self, dir: &Path, name: &str, sha256: &str) -> Result<(), ContractError> {
        match self {
            SetRecord::Absent | SetRecord::Unfingerprinted => Ok(()),
            SetRecord::Incomplete => Err(ContractError::Incomplete { dir: dir.to_path_buf() }),
            SetRecord::Files(files) => match files.get(name) {
                Some(h) if h == sha256 => Ok(()),
                Some(_) => Err(ContractError::Mixed { dir: dir.to_path_buf(), file: name.to_string() }),
                // A user's own manifest kept in the folder is not the set's business.
                None if !SET_FILES.contains(&name) => Ok(()),
                None => Err(ContractError::NotInSet { dir: dir.to_path_buf(), file: name.to_string() }),
            },
        }
    }

    /// Every problem of the set in `dir` (for `maskforge verify`): each
    /// recorded file missing or changed, each set file not recorded.
    pub fn problems(&self, dir: &Path) -> Vec<ContractError> {
        let files = match self {
            SetRecord::Absent | SetRecord::Unfingerprinted => return Vec::new(),
            SetRecord::Incomplete => return vec![ContractError::Incomplete { dir: dir.to_path_buf() }],
            SetRecord::Files(files) => files,
        };
        let mut problems = Vec::new();
        for name in files.keys() {
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => problems.extend(self.check(dir, name, &sha256_hex(&bytes)).err()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    problems.push(ContractError::Missing { dir: dir.to_path_buf(), file: name.clone() })
                }
                Err(e) => problems.push(ContractError::Io { path: dir.join(name), source: e }),
            }
        }
        for name in SET_FILES {
            if !files.contains_key(name) && dir.join(name).is_file() {
                problems.push(ContractError::NotInSet { dir: dir.to_path_buf(), file: name.to_string() });
            }
        }
        problems
    }
}

/// Reads a file of a manifest set, refusing it when the `split.json` beside
/// it records other bytes for it (a mixed set), says the set is incomplete,
/// or does not list a set file. Without a fingerprinted `split.json` the
/// bytes are returned as read.
pub fn read_checked(path: &Path) -> Result<Vec<u8>, ContractError> {
    let bytes = std::fs::read(path).map_err(ContractError::io(path))?;
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name != SPLIT_JSON {
        SetRecord::read(&dir)?.check(&dir, &name, &sha256_hex(&bytes))?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_incomplete_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("train.csv"), "path,class_index\na.jpg,0\n").unwrap();
        std::fs::write(d.join("val.csv"), "path,class_index\nb.jpg,0\n").unwrap();
        std::fs::write(d.join("mine.csv"), "path,class_index\nc.jpg,0\n").unwrap();
        // No split.json, or one without a fingerprint: read as is.
        assert!(read_checked(&d.join("train.csv")).is_ok());
        std::fs::write(d.join(SPLIT_JSON), r#"{"dataset_root":"/x"}"#).unwrap();
        assert_eq!(SetRecord::read(d).unwrap(), SetRecord::Unfingerprinted);
        assert!(read_checked(&d.join("train.csv")).is_ok());

        let hash = |name: &str| sha256_hex(&std::fs::read(d.join(name)).unwrap());
        let record = format!(
            r#"{{"complete":true,"files":{{"train.csv":"{}","val.csv":"{}"}}}}"#,
            hash("train.csv"),
            "0".repeat(64)
        );
        std::fs::write(d.join(SPLIT_JSON), record).unwrap();
        assert!(read_checked(&d.join("train.csv")).is_ok());
        let err = read_checked(&d.join("val.csv")).unwrap_err().to_string();
        assert!(err.starts_with("val.csv does not match split.json in "), "{err}");
        assert!(err.ends_with("the manifest set is mixed (a killed split?); run split again"), "{err}");
        assert!(read_checked(&d.join("mine.csv")).is_ok(), "a user's own manifest is not checked");
        std::fs::write(d.join("test.csv"), "path,class_index\n").unwrap();
        assert!(matches!(read_checked(&d.join("test.csv")), Err(ContractError::NotInSet { .. })));
        let problems: Vec<String> = SetRecord::read(d).unwrap().problems(d).iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("val.csv does not match") && problems[1].starts_with("test.csv is not part"));

        std::fs::write(d.join(SPLIT_JSON), r#"{"complete":false,"files":{}}"#).unwrap();
        assert!(matches!(read_checked(&d.join("train.csv")), Err(ContractError::Incomplete { .. })));
        std::fs::write(d.join(SPLIT_JSON), "{").unwrap();
        assert!(read_checked(&d.join("train.csv")).unwrap_err().to_string().contains("not valid JSON"));
    }
}
