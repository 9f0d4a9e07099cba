//! Reading what `maskforge split` writes: `classes.csv`, `train.csv` /
//! `val.csv` / `test.csv`, `stats.json` and `split.json`.
//!
//! Manifests and `classes.csv` are read by `maskforge-contracts`, the one
//! reader shared with `split`/`verify`/`stats`. It is tolerant (columns by
//! name, unknown columns ignored; a row that cannot be used, such as a bad
//! class index or a path that would leave the dataset root, is skipped with
//! a one-line message keyed `file:line` rather than failing the run).
//! Missing or unreadable files are errors, and so is a file of a manifest
//! set that `split.json` beside it does not vouch for (a killed split).

use crate::error::{Result, TrainError};
use maskforge_contracts::{parse_classes, parse_manifest, read_checked, ContractError, ReadOptions};
use maskforge_imageio::Failure;
use std::path::{Path, PathBuf};

pub use maskforge_contracts::RelPath;

/// One usable manifest row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// As written in the manifest: relative to the dataset root,
    /// `/`-separated, checked to stay under it; open it with `path.under(root)`.
    pub path: RelPath,
    /// The label, an index into `classes.csv`.
    pub class_index: usize,
}

/// A manifest with its usable rows and the rows it had to skip.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file read.
    pub file: PathBuf,
    /// The usable rows, in file order.
    pub samples: Vec<Sample>,
    /// Rows that could not be used, keyed `file:line`.
    pub skipped: Vec<Failure>,
    /// SHA-256 of the file's bytes, recorded in `config.json`.
    pub sha256: String,
}

impl From<ContractError> for TrainError {
    fn from(e: ContractError) -> TrainError {
        match e {
            ContractError::Io { path, source } => TrainError::Io { path, source },
            ContractError::Format { path, message } => TrainError::Manifest { path, message },
            // A mixed or incomplete manifest set: the message names the file.
            other => TrainError::Config(other.to_string()),
        }
    }
}

/// `classes.csv` (`index,name,count`): the class names by index. Refused
/// when `split.json` beside it records other bytes (a mixed manifest set).
pub fn read_classes(path: &Path) -> Result<Vec<String>> {
    let bytes = read_checked(path)?;
    let classes = parse_classes(path, &bytes)?;
    if classes.len() < 2 {
        return Err(TrainError::manifest(path, format!("{} class(es): a classifier needs at least 2", classes.len())));
    }
    Ok(classes.into_iter().map(|c| c.name).collect())
}

/// Reads a manifest (`path,class_index,class,...`) against the class names
/// of `classes.csv`. See [`read_manifest_for`].
pub fn read_manifest(path: &Path, classes: &[String]) -> Result<Manifest> {
    read_manifest_for(path, classes, "classes.csv")
}

/// Reads a manifest against `classes`, which come from `classes_from` (for
/// messages). Rows whose class index is missing, unparsable or out of range,
/// or whose path is not relative to the dataset root, are skipped; when the
/// index column is absent the `class` name is looked up instead. A row whose
/// `class` column names another class than `classes` has at its index makes
/// the whole manifest an error: the label spaces do not match, and every
/// number computed from it would compare different classes. So does a file
/// that `split.json` beside it does not vouch for (a mixed manifest set).
pub fn read_manifest_for(path: &Path, classes: &[String], classes_from: &str) -> Result<Manifest> {
    let bytes = read_checked(path)?;
    let m = parse_manifest(path, &bytes, ReadOptions { classes: Some(classes) })?;
    let disagree: Vec<&maskforge_contracts::Entry> =
        m.entries.iter().filter(|e| !e.class.trim().is_empty() && e.class.trim() != classes[e.class_index]).collect();
    if let Some(first) = disagree.first() {
        return Err(TrainError::manifest(
            path,
            format!(
                "line {}: class {:?} has class_index {}, which is {:?} in {classes_from} ({} row(s) disagree): the label spaces do not match",
                first.line,
                first.class.trim(),
                first.class_index,
                classes[first.class_index],
                disagree.len()
            ),
        ));
    }
    let samples = m.entries.into_iter().map(|e| Sample { path: e.path, class_index: e.class_index }).collect();
    Ok(Manifest { file: path.to_path_buf(), samples, skipped: m.skipped, sha256: m.sha256 })
}

/// `stats.json`'s parts training uses (the layout lives in `maskforge-contracts`).
pub use maskforge_contracts::TrainingStats as Stats;

/// Reads `stats.json`; refused when `split.json` beside it records other
/// bytes (a mixed manifest set) or a std channel is not > 0.
pub fn read_stats(path: &Path) -> Result<Stats> {
    Ok(maskforge_contracts::read_training_stats(path)?)
}

/// `--root` if given, else the `dataset_root` of `split.json` in the
/// manifests folder (relative: to that folder), read by the one reader
/// `verify` uses too ([`maskforge_contracts::dataset_root`]); else an error
/// saying so.
pub fn resolve_root(manifests: &Path, flag: Option<&Path>) -> Result<PathBuf> {
    maskforge_contracts::dataset_root(manifests, flag)?.ok_or_else(|| {
        TrainError::Config(format!(
            "no dataset root: {} has no split.json with a dataset_root; pass --root DIR",
            manifests.display()
        ))
    })
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
        assert_eq!(m.samples[1], Sample { path: RelPath::new("unmasked/b.jpg").unwrap(), class_index: 1 });
        assert_eq!(m.skipped.len(), 3, "{:?}", m.skipped);
        assert!(m.skipped[0].reason.contains("out of range"));
        assert_eq!(m.sha256.len(), 64);

        // Class names only.
        std::fs::write(d.join("names.csv"), "path,class\nx.jpg,unmasked\ny.jpg,other\n").unwrap();
        let m = read_manifest(&d.join("names.csv"), &classes).unwrap();
        assert_eq!(m.samples, [Sample { path: RelPath::new("x.jpg").unwrap(), class_index: 1 }]);

        std::fs::write(d.join("one.csv"), "index,name,count\n0,a,1\n").unwrap();
        assert!(read_classes(&d.join("one.csv")).unwrap_err().to_string().contains("at least 2"));
        std::fs::write(d.join("gap.csv"), "index,name,count\n0,a,1\n2,b,1\n").unwrap();
        assert!(read_classes(&d.join("gap.csv")).is_err());
        assert!(matches!(read_manifest(&d.join("missing.csv"), &classes), Err(TrainError::Io { .. })));

        // Paths that would leave the root are skipped, keyed file:line.
        std::fs::write(
            d.join("escape.csv"),
            "path,class_index,class
../outside/x.jpg,0,masked
/etc/passwd,1,unmasked
../../../etc/passwd,0,masked
masked/ok.jpg,0,masked
",
        )
        .unwrap();
        let m = read_manifest(&d.join("escape.csv"), &classes).unwrap();
        assert_eq!(m.samples.len(), 1);
        let keys: Vec<&str> = m.skipped.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(keys, ["escape.csv:2", "escape.csv:3", "escape.csv:4"]);
        assert!(m.skipped.iter().all(|f| f.reason.ends_with("is not relative to the dataset root")));
        assert_eq!(m.samples[0].path.under(Path::new("/data")), Path::new("/data/masked/ok.jpg"));

        // A class column that names another class than the index: refused.
        std::fs::write(
            d.join("swapped.csv"),
            "path,class_index,class
a.jpg,0,masked
b.jpg,0,unmasked
",
        )
        .unwrap();
        let err = read_manifest_for(&d.join("swapped.csv"), &classes, "the model's classes").unwrap_err().to_string();
        assert!(
            err.contains("line 3: class \"unmasked\" has class_index 0, which is \"masked\" in the model's classes"),
            "{err}"
        );
    }

    #[test]
    fn files_of_a_mixed_manifest_set_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let train = "path,class_index,class,group,bytes
masked/a.jpg,0,masked,a,1
";
        let classes_csv = "index,name,count
0,masked,1
1,unmasked,1
";
        std::fs::write(d.join("train.csv"), train).unwrap();
        std::fs::write(d.join("classes.csv"), classes_csv).unwrap();
        let hex = |s: &str| maskforge_contracts::sha256_hex(s.as_bytes());
        std::fs::write(
            d.join("split.json"),
            format!(
                r#"{{"dataset_root":"/x","complete":true,"files":{{"train.csv":"{}","classes.csv":"{}"}}}}"#,
                hex(train),
                hex(classes_csv)
            ),
        )
        .unwrap();
        let classes = read_classes(&d.join("classes.csv")).unwrap();
        assert_eq!(read_manifest(&d.join("train.csv"), &classes).unwrap().samples.len(), 1);
        std::fs::write(
            d.join("train.csv"),
            format!(
                "{train}masked/b.jpg,0,masked,b,1
"
            ),
        )
        .unwrap();
        let err = read_manifest(&d.join("train.csv"), &classes).unwrap_err().to_string();
        assert!(err.starts_with("train.csv does not match split.json in "), "{err}");
        assert!(err.ends_with("the manifest set is mixed (a killed split?); run split again"), "{err}");
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
        std::fs::write(d.join("split.json"), r#"{"dataset_root":"rel"}"#).unwrap();
        assert_eq!(resolve_root(d, None).unwrap(), d.join("rel"));
        // A key no split ever wrote is named, not silently ignored.
        std::fs::write(d.join("split.json"), r#"{"root":"rel"}"#).unwrap();
        let err = resolve_root(d, None).unwrap_err().to_string();
        assert!(err.contains("read from \"dataset_root\"") && err.contains("not \"root\""), "{err}");
        std::fs::remove_file(d.join("split.json")).unwrap();
        assert!(resolve_root(d, None).unwrap_err().to_string().contains("--root"));
    }
}
