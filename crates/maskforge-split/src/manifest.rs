//! The CSV files: `train.csv`/`val.csv`/`test.csv` and `classes.csv`.
//!
//! Manifest columns: `path,class_index,class,group,bytes` and, with
//! `--hash`, `sha256`. Paths are relative to the dataset root with `/`.

use crate::SplitError;
use maskforge_imageio::AtomicFile;
use std::path::Path;

pub const MANIFEST_HEADER: [&str; 5] = ["path", "class_index", "class", "group", "bytes"];

/// One image in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestRow {
    pub path: String,
    pub class_index: usize,
    pub class: String,
    pub group: String,
    pub bytes: u64,
    pub sha256: Option<String>,
}

/// One line of `classes.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    pub index: usize,
    pub name: String,
    /// Usable images of the class (all splits).
    pub count: u64,
}

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> SplitError + '_ {
    move |e| SplitError::Manifest { path: path.to_path_buf(), message: e.to_string() }
}

/// Writes a manifest atomically; rows are sorted by path here so the file
/// never depends on the order they were produced in.
pub fn write_manifest(path: &Path, rows: &[ManifestRow], with_hash: bool) -> Result<(), SplitError> {
    let mut sorted: Vec<&ManifestRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut file = AtomicFile::create(path).map_err(SplitError::io(path))?;
    {
        let mut w = csv::Writer::from_writer(&mut file);
        let mut header: Vec<&str> = MANIFEST_HEADER.to_vec();
        if with_hash {
            header.push("sha256");
        }
        w.write_record(&header).map_err(csv_err(path))?;
        for r in sorted {
            let (index, bytes) = (r.class_index.to_string(), r.bytes.to_string());
            let mut record = vec![r.path.as_str(), &index, &r.class, &r.group, &bytes];
            if with_hash {
                record.push(r.sha256.as_deref().unwrap_or(""));
            }
            w.write_record(&record).map_err(csv_err(path))?;
        }
        w.flush().map_err(SplitError::io(path))?;
    }
    file.commit().map_err(SplitError::io(path))
}

/// Reads a manifest; the `sha256` column is optional.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, SplitError> {
    let bad = |message: String| SplitError::Manifest { path: path.to_path_buf(), message };
    let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => SplitError::Io { path: path.to_path_buf(), source },
        other => bad(format!("{other:?}")),
    })?;
    let headers = reader.headers().map_err(csv_err(path))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut cols = [0usize; 5];
    for (slot, name) in cols.iter_mut().zip(MANIFEST_HEADER) {
        *slot = col(name).ok_or_else(|| bad(format!("not a manifest: no {name:?} column")))?;
    }
    let hash_col = col("sha256");
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(csv_err(path))?;
        let line = i + 2;
        let field = |c: usize| record.get(c).unwrap_or("");
        let class_index = field(cols[1])
            .parse()
            .map_err(|_| bad(format!("line {line}: class_index {:?} is not a number", field(cols[1]))))?;
        let bytes =
            field(cols[4]).parse().map_err(|_| bad(format!("line {line}: bytes {:?} is not a number", field(cols[4]))))?;
        rows.push(ManifestRow {
            path: field(cols[0]).to_string(),
            class_index,
            class: field(cols[2]).to_string(),
            group: field(cols[3]).to_string(),
            bytes,
            sha256: hash_col.map(|c| field(c).to_string()).filter(|h| !h.is_empty()),
        });
    }
    Ok(rows)
}

/// Writes `classes.csv` (`index,name,count`) atomically.
pub fn write_classes(path: &Path, classes: &[ClassInfo]) -> Result<(), SplitError> {
    let mut file = AtomicFile::create(path).map_err(SplitError::io(path))?;
    {
        let mut w = csv::Writer::from_writer(&mut file);
        w.write_record(["index", "name", "count"]).map_err(csv_err(path))?;
        for c in classes {
            w.write_record([c.index.to_string(), c.name.clone(), c.count.to_string()]).map_err(csv_err(path))?;
        }
        w.flush().map_err(SplitError::io(path))?;
    }
    file.commit().map_err(SplitError::io(path))
}

/// Reads `classes.csv`; indices must be 0, 1, 2, ... in order.
pub fn read_classes(path: &Path) -> Result<Vec<ClassInfo>, SplitError> {
    let bad = |message: String| SplitError::Manifest { path: path.to_path_buf(), message };
    let mut reader = csv::Reader::from_path(path).map_err(csv_err(path))?;
    let mut classes = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(csv_err(path))?;
        let index: usize = record.get(0).unwrap_or("").parse().map_err(|_| bad(format!("line {}: bad index", i + 2)))?;
        if index != i {
            return Err(bad(format!("line {}: index {index}, expected {i}", i + 2)));
        }
        classes.push(ClassInfo {
            index,
            name: record.get(1).unwrap_or("").to_string(),
            count: record.get(2).unwrap_or("0").parse().unwrap_or(0),
        });
    }
    Ok(classes)
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
            ManifestRow { path: "a/y.jpg".into(), class_index: 0, class: "a".into(), group: "a/y.jpg".into(), bytes: 3, sha256: Some("cd".into()) },
        ];
        let p = dir.path().join("m.csv");
        write_manifest(&p, &rows, true).unwrap();
        let back = read_manifest(&p).unwrap();
        assert_eq!(back, vec![rows[1].clone(), rows[0].clone()]);
        write_manifest(&p, &rows, false).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "path,class_index,class,group,bytes\na/y.jpg,0,a,a/y.jpg,3\n\"b/x,1.jpg\",1,b,\"g \"\"q\"\"\",10\n");
        assert!(read_manifest(&p).unwrap().iter().all(|r| r.sha256.is_none()));

        let classes = vec![ClassInfo { index: 0, name: "a".into(), count: 1 }, ClassInfo { index: 1, name: "b".into(), count: 1 }];
        let c = dir.path().join("classes.csv");
        write_classes(&c, &classes).unwrap();
        assert_eq!(read_classes(&c).unwrap(), classes);
        std::fs::write(&c, "index,name,count\n1,b,0\n").unwrap();
        assert!(read_classes(&c).is_err());
    }
}
