//! The CSV files: `train.csv`/`val.csv`/`test.csv` and `classes.csv`.
//!
//! Their layout lives in `maskforge-contracts`, the one writer and reader of
//! both; these are the same functions with this crate's error type.
//! Manifest columns: `path,class_index,class,group,bytes` and, with
//! `--hash`, `sha256`. Paths are relative to the dataset root with `/`.

use crate::SplitError;
use maskforge_contracts::{ContractError, ReadOptions};
use std::path::Path;

pub use maskforge_contracts::{ClassInfo, ManifestRow, MANIFEST_HEADER};

impl From<ContractError> for SplitError {
    fn from(e: ContractError) -> SplitError {
        match e {
            ContractError::Io { path, source } => SplitError::Io { path, source },
            ContractError::Format { path, message } => SplitError::Manifest { path, message },
            other => SplitError::Set(other.to_string()),
        }
    }
}

/// Writes a manifest atomically, rows sorted by path; returns the SHA-256
/// (hex) of the file.
pub fn write_manifest(path: &Path, rows: &[ManifestRow], with_hash: bool) -> Result<String, SplitError> {
    Ok(maskforge_contracts::write_manifest(path, rows, with_hash)?)
}

/// Reads a manifest strictly: a row the reader would skip (a path outside
/// the root, an unparsable field) is an error naming its line.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, SplitError> {
    let m = maskforge_contracts::read_manifest(path, ReadOptions::default())?;
    if let Some(f) = m.skipped.first() {
        return Err(SplitError::Manifest { path: path.to_path_buf(), message: format!("{}: {}", f.path, f.reason) });
    }
    Ok(m.entries.iter().map(|e| e.to_row()).collect())
}

/// Writes `classes.csv` (`index,name,count`) atomically; returns its SHA-256.
pub fn write_classes(path: &Path, classes: &[ClassInfo]) -> Result<String, SplitError> {
    Ok(maskforge_contracts::write_classes(path, classes)?)
}

/// Reads `classes.csv`; indices must be 0, 1, 2, ...
pub fn read_classes(path: &Path) -> Result<Vec<ClassInfo>, SplitError> {
    Ok(maskforge_contracts::read_classes(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted_with_and_without_hash() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            ManifestRow {
                path: "b/x,1.jpg".into(),
                class_index: 1,
                class: "b".into(),
                group: "g \"q\"".into(),
                bytes: 10,
                sha256: Some("ab".into()),
            },
            ManifestRow {
                path: "a/y.jpg".into(),
                class_index: 0,
                class: "a".into(),
                group: "a/y.jpg".into(),
                bytes: 3,
                sha256: Some("cd".into()),
            },
        ];
        let p = dir.path().join("m.csv");
        write_manifest(&p, &rows, true).unwrap();
        let back = read_manifest(&p).unwrap();
        assert_eq!(back, vec![rows[1].clone(), rows[0].clone()]);
        write_manifest(&p, &rows, false).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "path,class_index,class,group,bytes\na/y.jpg,0,a,a/y.jpg,3\n\"b/x,1.jpg\",1,b,\"g \"\"q\"\"\",10\n"
        );
        assert!(read_manifest(&p).unwrap().iter().all(|r| r.sha256.is_none()));

        let classes = vec![
            ClassInfo { index: 0, name: "a".into(), count: 1 },
            ClassInfo { index: 1, name: "b".into(), count: 1 },
        ];
        let c = dir.path().join("classes.csv");
        write_classes(&c, &classes).unwrap();
        assert_eq!(read_classes(&c).unwrap(), classes);
        std::fs::write(&c, "index,name,count\n1,b,0\n").unwrap();
        assert!(read_classes(&c).is_err());

        std::fs::write(&p, "path,class_index,class,group,bytes\n../x.jpg,0,a,g,3\n").unwrap();
        let err = read_manifest(&p).unwrap_err().to_string();
        assert!(err.ends_with("m.csv:2: path \"../x.jpg\" is not relative to the dataset root"), "{err}");
    }
}
