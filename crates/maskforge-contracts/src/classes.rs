//! `classes.csv` (`index,name,count`): the label space of a manifest set,
//! class names by index (torchvision's ImageFolder order).
//!
//! Unlike a manifest row, a bad line here cannot be skipped: it would shift
//! or drop a label. Any problem is an error naming the file and line.

use crate::set::sha256_hex;
use crate::ContractError;
use maskforge_imageio::write_atomic;
use std::collections::BTreeSet;
use std::path::Path;

/// One line of `classes.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// The label (the model's output index); a file's indices are exactly `0..n`.
    pub index: usize,
    /// The class name, non-empty and unique in the file.
    pub name: String,
    /// Usable images of the class (all splits).
    pub count: u64,
}

/// The bytes of `classes.csv`, in the order given.
pub fn classes_bytes(classes: &[ClassInfo]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["index", "name", "count"])?;
    for c in classes {
        w.write_record([c.index.to_string(), c.name.clone(), c.count.to_string()])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes `classes.csv` atomically; returns the SHA-256 (hex) of its bytes.
pub fn write_classes(path: &Path, classes: &[ClassInfo]) -> Result<String, ContractError> {
    let bytes = classes_bytes(classes).map_err(|e| ContractError::format(path, e.to_string()))?;
    write_atomic(path, &bytes).map_err(ContractError::io(path))?;
    Ok(sha256_hex(&bytes))
}

/// Reads `classes.csv` from disk (without looking at `split.json`; see
/// [`crate::read_checked`]).
pub fn read_classes(path: &Path) -> Result<Vec<ClassInfo>, ContractError> {
    let bytes = std::fs::read(path).map_err(ContractError::io(path))?;
    parse_classes(path, &bytes)
}

/// Parses `classes.csv`. Columns by name (`index` or `class_index`, `name` or
/// `class`, optional `count`), else by position; rows in any order, sorted by
/// index here. The indices must be exactly 0..n and the names non-empty and
/// distinct.
pub fn parse_classes(path: &Path, bytes: &[u8]) -> Result<Vec<ClassInfo>, ContractError> {
    let bad = |message: String| ContractError::format(path, message);
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let names: Vec<&str> =
        headers.iter().enumerate().map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}') } else { h }).collect();
    let col = |wanted: &[&str]| names.iter().position(|h| wanted.contains(&h.trim()));
    let index_col = col(&["index", "class_index"]).unwrap_or(0);
    let name_col = col(&["name", "class"]).unwrap_or(1);
    let count_col = col(&["count"]);
    let mut classes: Vec<ClassInfo> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let index: usize = record.get(index_col).and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
            bad(format!("line {line}: class index {:?} is not a number", record.get(index_col).unwrap_or("")))
        })?;
        let name = record.get(name_col).unwrap_or("").trim().to_string();
        if name.is_empty() {
            return Err(bad(format!("line {line}: empty class name")));
        }
        let count = count_col.and_then(|c| record.get(c)).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        classes.push(ClassInfo { index, name, count });
    }
    classes.sort_by_key(|c| c.index);
    for (i, c) in classes.iter().enumerate() {
        if c.index != i {
            return Err(bad(format!(
                "class indices must be 0..{} without gaps or repeats, found {}",
                classes.len(),
                c.index
            )));
        }
    }
    let mut seen = BTreeSet::new();
    for c in &classes {
        if !seen.insert(c.name.as_str()) {
            return Err(bad(format!("class {:?} is listed twice", c.name)));
        }
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("classes.csv");
        let classes = vec![
            ClassInfo { index: 0, name: "a".into(), count: 1 },
            ClassInfo { index: 1, name: "b, c".into(), count: 2 },
        ];
        write_classes(&p, &classes).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "index,name,count\n0,a,1\n1,\"b, c\",2\n");
        assert_eq!(read_classes(&p).unwrap(), classes);
        let parse = |t: &str| parse_classes(Path::new("classes.csv"), t.as_bytes());
        assert_eq!(parse("name,index\nb,1\na,0\n").unwrap()[1], ClassInfo { index: 1, name: "b".into(), count: 0 });
        for (text, expect) in [
            ("index,name,count\n1,b,0\n", "found 1"),
            ("index,name,count\n0,a,0\n0,b,0\n", "found 0"),
            ("index,name,count\n0,a,0\n2,b,0\n", "found 2"),
            ("index,name,count\nx,a,0\n", "line 2: class index \"x\" is not a number"),
            ("index,name,count\n0,,0\n", "line 2: empty class name"),
            ("index,name,count\n0,a,0\n1,a,0\n", "listed twice"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
