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
//!
//! [`SplitJson`] is the one reader of `split.json`: `train`, `eval`,
//! `verify`, `stats` and [`read_checked`] all read it, and the dataset root
//! it names, through it, so no command takes a file another refuses or
//! finds its images somewhere else.

use crate::read::{read_bounded, MAX_LIST_BYTES};
use crate::relpath::RelPath;
use crate::ContractError;
pub use maskforge_imageio::sha256_hex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record of a manifest set: its files' fingerprints and its dataset root.
pub const SPLIT_JSON: &str = "split.json";
/// The label space of a set ([`crate::read_classes`]).
pub const CLASSES_CSV: &str = "classes.csv";
/// Channel statistics and class weights of a set's training manifest ([`crate::Stats`]).
pub const STATS_JSON: &str = "stats.json";
/// The images a split could not use, with reasons.
pub const FAILURES_CSV: &str = "failures.csv";
/// The file names a split may write besides `split.json`: a file of one of
/// these names beside a fingerprinted `split.json` must be listed in it.
pub const SET_FILES: [&str; 6] = ["train.csv", "val.csv", "test.csv", CLASSES_CSV, STATS_JSON, FAILURES_CSV];

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
    /// Reads the set's record in `DIR/split.json` ([`SplitJson::read`]).
    pub fn read(dir: &Path) -> Result<SetRecord, ContractError> {
        Ok(SplitJson::read(dir)?.map_or(SetRecord::Absent, |s| s.set))
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

/// `split.json`, as every reader of it sees it. `maskforge split` writes
/// more (its arguments, counts, tool version: for people); a field read here
/// is optional, so that a hand-made `{"dataset_root": "/data/faces"}` works,
/// but must have the type split writes when it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitJson {
    /// `dataset_root`, resolved: split writes it absolute; a relative one is
    /// taken relative to the folder of `split.json`.
    pub dataset_root: Option<PathBuf>,
    /// `classes`: the class names by index.
    pub classes: Option<Vec<String>>,
    /// `manifests[].file`: the manifests of the set, in split order,
    /// relative to the folder of `split.json`.
    pub manifests: Option<Vec<RelPath>>,
    /// `input.fingerprint`: `sha256:` over the sorted `path\tbytes` lines of
    /// the images the manifests list.
    pub input_fingerprint: Option<String>,
    /// `complete` and `files`: the fingerprint of the set's files (never
    /// [`SetRecord::Absent`]).
    pub set: SetRecord,
}

/// Keys of the dataset root that no `maskforge split` ever wrote; a file
/// that has one but no `dataset_root` is refused, naming the key to use.
const OTHER_ROOT_KEYS: [&str; 2] = ["root", "data_root"];

impl SplitJson {
    /// Reads `DIR/split.json`; `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<SplitJson>, ContractError> {
        let path = dir.join(SPLIT_JSON);
        let bytes = match read_bounded(&path, MAX_LIST_BYTES, None, "split.json") {
            Ok(b) => b,
            Err(ContractError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ContractError::format(&path, format!("not valid JSON: {e}")))?;
        SplitJson::from_value(dir, &value).map(Some).map_err(|message| ContractError::format(&path, message))
    }

    /// The fields of `value`, the `split.json` of folder `dir`.
    fn from_value(dir: &Path, value: &Value) -> Result<SplitJson, String> {
        let field = |key: &str| value.get(key).filter(|v| !v.is_null());
        if !value.is_object() {
            return Err("not a JSON object".into());
        }
        let dataset_root = match field("dataset_root") {
            Some(v) => Some(dir.join(v.as_str().ok_or("\"dataset_root\" must be a path (a string)")?)),
            None => match OTHER_ROOT_KEYS.iter().find(|k| field(k).is_some()) {
                Some(key) => {
                    return Err(format!(
                        "the dataset root is read from \"dataset_root\" (what maskforge split writes), not {key:?}: rename the key"
                    ))
                }
                None => None,
            },
        };
        let strings = |v: &Value, what: &str| -> Result<Vec<String>, String> {
            let bad = || format!("{what} must be a list of strings");
            v.as_array().ok_or_else(bad)?.iter().map(|s| s.as_str().map(str::to_string).ok_or_else(bad)).collect()
        };
        let classes = field("classes").map(|v| strings(v, "\"classes\"")).transpose()?;
        let manifests = match field("manifests") {
            Some(v) => {
                let bad = || "\"manifests\" must be a list of {\"file\": NAME, ...}".to_string();
                let files = v.as_array().ok_or_else(bad)?.iter().map(|m| m.get("file").and_then(Value::as_str));
                let files: Vec<&str> = files.collect::<Option<_>>().ok_or_else(bad)?;
                let checked = files.iter().map(|f| RelPath::new(f).map_err(|e| format!("\"manifests\": {e}")));
                Some(checked.collect::<Result<Vec<_>, _>>()?)
            }
            None => None,
        };
        let input_fingerprint = match field("input").and_then(|i| i.get("fingerprint")).filter(|v| !v.is_null()) {
            Some(v) => Some(v.as_str().ok_or("\"input\".\"fingerprint\" must be a string")?.to_string()),
            None => None,
        };
        let set = match field("complete").map(Value::as_bool) {
            Some(None) => return Err("\"complete\" must be true or false".into()),
            Some(Some(false)) => SetRecord::Incomplete,
            Some(Some(true)) | None => match value.get("files") {
                None => SetRecord::Unfingerprinted,
                Some(files) => {
                    let bad = || "\"files\" must map file names to SHA-256 hex strings".to_string();
                    let mut map = BTreeMap::new();
                    for (name, hash) in files.as_object().ok_or_else(bad)? {
                        map.insert(name.clone(), hash.as_str().ok_or_else(bad)?.to_string());
                    }
                    SetRecord::Files(map)
                }
            },
        };
        Ok(SplitJson { dataset_root, classes, manifests, input_fingerprint, set })
    }
}

/// The dataset root of the manifests in `dir`: `flag` (`--root`) when given,
/// else the one `DIR/split.json` records ([`SplitJson::dataset_root`]);
/// `None` when neither names one.
pub fn dataset_root(dir: &Path, flag: Option<&Path>) -> Result<Option<PathBuf>, ContractError> {
    match flag {
        Some(root) => Ok(Some(root.to_path_buf())),
        None => Ok(SplitJson::read(dir)?.and_then(|s| s.dataset_root)),
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

    #[test]
    fn split_json_is_read_tolerantly_typed_and_its_root_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(SplitJson::read(d).unwrap(), None);
        assert_eq!(dataset_root(d, None).unwrap(), None);
        assert_eq!(dataset_root(d, Some(Path::new("flag"))).unwrap(), Some(PathBuf::from("flag")));

        let read = |json: &str| {
            std::fs::write(d.join(SPLIT_JSON), json).unwrap();
            SplitJson::read(d).map(Option::unwrap).map_err(|e| e.to_string())
        };
        // The root alone (hand-made), absolute or relative to the folder.
        let minimal = read(r#"{"dataset_root": "/data/faces"}"#).unwrap();
        let expect = SplitJson {
            dataset_root: Some(PathBuf::from("/data/faces")),
            classes: None,
            manifests: None,
            input_fingerprint: None,
            set: SetRecord::Unfingerprinted,
        };
        assert_eq!(minimal, expect);
        assert_eq!(read(r#"{"dataset_root": "../faces"}"#).unwrap().dataset_root, Some(d.join("../faces")));
        assert_eq!(dataset_root(d, None).unwrap(), Some(d.join("../faces")));
        assert_eq!(read("{}").unwrap().dataset_root, None);

        // Every field split writes (extra ones ignored).
        let full = read(
            r#"{"tool": "maskforge split", "dataset_root": "/r", "classes": ["a", "b"], "seed": 1,
                "manifests": [{"split": "train", "file": "train.csv", "images": 3}, {"file": "val.csv"}],
                "input": {"images": 4, "fingerprint": "sha256:00"}, "complete": true, "files": {"train.csv": "ab"}}"#,
        )
        .unwrap();
        assert_eq!(full.classes, Some(vec!["a".to_string(), "b".into()]));
        let files: Vec<&str> = full.manifests.iter().flatten().map(RelPath::as_str).collect();
        assert_eq!(files, ["train.csv", "val.csv"]);
        assert_eq!(full.input_fingerprint.as_deref(), Some("sha256:00"));
        assert_eq!(full.set, SetRecord::Files(BTreeMap::from([("train.csv".into(), "ab".into())])));
        assert_eq!(read(r#"{"complete": false, "files": {}}"#).unwrap().set, SetRecord::Incomplete);

        // What is there must be what split writes; the message names the file.
        for (json, expect) in [
            (r#"{"root": "/r"}"#, "is read from \"dataset_root\" (what maskforge split writes), not \"root\""),
            (r#"{"data_root": "/r"}"#, "not \"data_root\""),
            (r#"{"dataset_root": ["/r"]}"#, "\"dataset_root\" must be a path (a string)"),
            (r#"{"classes": "a,b"}"#, "\"classes\" must be a list of strings"),
            (r#"{"manifests": ["train.csv"]}"#, "\"manifests\" must be a list of"),
            (r#"{"manifests": [{"file": "/etc/passwd"}]}"#, "\"manifests\": "),
            (r#"{"input": {"fingerprint": 3}}"#, "\"fingerprint\" must be a string"),
            (r#"{"complete": 1}"#, "\"complete\" must be true or false"),
            (r#"{"files": ["x"]}"#, "\"files\" must map file names"),
            ("[]", "not a JSON object"),
        ] {
            let err = read(json).unwrap_err();
            assert!(err.contains(expect) && err.contains("split.json: "), "{json}: {err}");
        }
    }
}
