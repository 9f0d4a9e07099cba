//! Manifests: `train.csv`, `val.csv`, `test.csv` and any CSV a user hands
//! to `train`, `eval`, `verify` or `stats`.
//!
//! The layout `maskforge split` writes is `path,class_index,class,group,bytes`
//! and, with `--hash`, `sha256`. Paths are relative to the dataset root with
//! `/`. [`write_manifest`] is the one writer, [`read_manifest`] the one reader.
//!
//! The reader is tolerant about everything that cannot hurt (columns found
//! by name, unknown columns ignored, `label` for `class_index`, the class
//! looked up by name when there is no index) and strict about what can: a
//! row whose path is not a plain relative path, or that cannot be parsed, is
//! never returned. Every data row of the file is either an [`Entry`] or a
//! [`Failure`] in [`Manifest::skipped`], keyed `file:line`, with a one-line
//! reason. A missing or unreadable file is an error naming it.

use crate::read::{MAX_LINE_BYTES, MAX_LIST_BYTES};
use crate::relpath::RelPath;
use crate::set::sha256_hex;
use crate::ContractError;
use maskforge_imageio::{write_atomic, Failure};
use std::path::{Path, PathBuf};

/// The columns `maskforge split` writes, in order; `sha256` follows with `--hash`.
pub const MANIFEST_HEADER: [&str; 5] = ["path", "class_index", "class", "group", "bytes"];
/// The optional content-hash column.
pub const SHA256_COLUMN: &str = "sha256";

/// One image, as `maskforge split` writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestRow {
    /// Relative to the dataset root, with `/`.
    pub path: String,
    /// The label, an index into `classes.csv`.
    pub class_index: usize,
    /// The class name of `class_index`.
    pub class: String,
    /// The leakage group (a source photo and everything made from it); a
    /// group never spans two splits.
    pub group: String,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file (hex), with `--hash` only.
    pub sha256: Option<String>,
}

/// The bytes of a manifest: header, then the rows sorted by path, so the
/// file never depends on the order the rows were produced in.
pub fn manifest_bytes(rows: &[ManifestRow], with_hash: bool) -> Result<Vec<u8>, csv::Error> {
    let mut sorted: Vec<&ManifestRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = MANIFEST_HEADER.to_vec();
    if with_hash {
        header.push(SHA256_COLUMN);
    }
    w.write_record(&header)?;
    for r in sorted {
        let (index, bytes) = (r.class_index.to_string(), r.bytes.to_string());
        let mut record = vec![r.path.as_str(), &index, &r.class, &r.group, &bytes];
        if with_hash {
            record.push(r.sha256.as_deref().unwrap_or(""));
        }
        w.write_record(&record)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes a manifest atomically; returns the SHA-256 (hex) of its bytes.
pub fn write_manifest(path: &Path, rows: &[ManifestRow], with_hash: bool) -> Result<String, ContractError> {
    let bytes = manifest_bytes(rows, with_hash).map_err(|e| ContractError::format(path, e.to_string()))?;
    write_atomic(path, &bytes).map_err(ContractError::io(path))?;
    Ok(sha256_hex(&bytes))
}

/// How to read a manifest.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions<'a> {
    /// The class names by index. With them, an index out of range is a
    /// skipped row and a row without an index is looked up by its `class`
    /// name; without them any index is taken and a row without one is skipped.
    pub classes: Option<&'a [String]>,
}

/// One usable row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Line of the file the row starts on (the header is line 1).
    pub line: u64,
    /// Checked: open it with [`RelPath::under`].
    pub path: RelPath,
    /// The label: the `class_index` (or `label`) column, or the class
    /// looked up by name.
    pub class_index: usize,
    /// The `class` column as written; empty without one.
    pub class: String,
    /// The `group` column; empty without one.
    pub group: String,
    /// The `bytes` column; `None` without one or when it is not a number.
    pub bytes: Option<u64>,
    /// The `sha256` column; `None` without one or when empty.
    pub sha256: Option<String>,
}

impl Entry {
    /// The row in the layout `maskforge split` writes (size 0 when unknown).
    pub fn to_row(&self) -> ManifestRow {
        ManifestRow {
            path: self.path.as_str().to_string(),
            class_index: self.class_index,
            class: self.class.clone(),
            group: self.group.clone(),
            bytes: self.bytes.unwrap_or(0),
            sha256: self.sha256.clone(),
        }
    }
}

/// A manifest: its usable rows and the rows it had to skip.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file read.
    pub file: PathBuf,
    /// The file name, as skipped rows are keyed (`train.csv:7`).
    pub name: String,
    /// The usable rows, in file order.
    pub entries: Vec<Entry>,
    /// Rows that cannot be used, keyed `file:line`, with a one-line reason.
    pub skipped: Vec<Failure>,
    /// SHA-256 (hex) of the bytes read.
    pub sha256: String,
    /// Whether the file has a `sha256` column.
    pub has_hash_column: bool,
}

impl Manifest {
    /// Data rows in the file: `entries.len() + skipped.len()`.
    pub fn rows(&self) -> usize {
        self.entries.len() + self.skipped.len()
    }
}

/// Reads a manifest from disk (see the module documentation). This does not
/// look at `split.json`; read the bytes with [`crate::read_checked`] and
/// call [`parse_manifest`] to refuse a file of a mixed manifest set.
pub fn read_manifest(path: &Path, options: ReadOptions) -> Result<Manifest, ContractError> {
    let bytes = crate::read::read_bounded(path, MAX_LIST_BYTES, Some(MAX_LINE_BYTES), "manifest")?;
    parse_manifest(path, &bytes, options)
}

/// Column positions of a manifest header.
struct Columns {
    width: usize,
    path: usize,
    index: Option<usize>,
    class: Option<usize>,
    group: Option<usize>,
    bytes: Option<usize>,
    sha256: Option<usize>,
}

impl Columns {
    fn find(path: &Path, header: &csv::ByteRecord) -> Result<Columns, ContractError> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = String::from_utf8_lossy(h);
                // A byte-order mark (spreadsheet exports) is not part of the name.
                let h = if i == 0 { h.trim_start_matches('\u{feff}') } else { &h };
                h.trim().to_string()
            })
            .collect();
        let col = |name: &str| names.iter().position(|h| h == name);
        let columns = Columns {
            width: names.len(),
            path: col("path").ok_or_else(|| ContractError::format(path, "not a manifest: no \"path\" column"))?,
            index: col("class_index").or_else(|| col("label")),
            class: col("class"),
            group: col("group"),
            bytes: col("bytes"),
            sha256: col(SHA256_COLUMN),
        };
        if columns.index.is_none() && columns.class.is_none() {
            return Err(ContractError::format(
                path,
                "not a manifest: neither a \"class_index\" (or \"label\") nor a \"class\" column",
            ));
        }
        Ok(columns)
    }
}

/// Parses the bytes of a manifest read from `path` (named in messages).
pub fn parse_manifest(path: &Path, bytes: &[u8], options: ReadOptions) -> Result<Manifest, ContractError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.byte_headers().map_err(|e| ContractError::format(path, e.to_string()))?.clone();
    let columns = Columns::find(path, &header)?;
    let mut manifest = Manifest {
        file: path.to_path_buf(),
        name: name.clone(),
        entries: Vec::new(),
        skipped: Vec::new(),
        sha256: sha256_hex(bytes),
        has_hash_column: columns.sha256.is_some(),
    };
    let mut record = csv::ByteRecord::new();
    let mut last_line = 1;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(last_line + 1);
                last_line = line;
                match parse_row(&record, line, &columns, options) {
                    Ok(entry) => manifest.entries.push(entry),
                    Err(reason) => manifest.skipped.push(Failure::new(format!("{name}:{line}"), reason)),
                }
            }
            // Only I/O fails here (rows are read as bytes, of any width), and
            // the input is in memory: nothing after it can be trusted.
            Err(e) => return Err(ContractError::format(path, format!("after line {last_line}: {e}"))),
        }
    }
    Ok(manifest)
}

fn parse_row(record: &csv::ByteRecord, line: u64, c: &Columns, options: ReadOptions) -> Result<Entry, String> {
    if record.len() != c.width {
        return Err(format!("row has {} fields, the header has {}", record.len(), c.width));
    }
    let text = |col: usize, what: &str| -> Result<&str, String> {
        std::str::from_utf8(record.get(col).unwrap_or(b"")).map_err(|_| format!("{what} is not valid UTF-8"))
    };
    let optional = |col: Option<usize>, what: &str| -> Result<&str, String> {
        match col {
            Some(col) => text(col, what),
            None => Ok(""),
        }
    };
    let path = RelPath::new(text(c.path, "path")?).map_err(|e| e.to_string())?;
    let class = optional(c.class, "class")?;
    let index = optional(c.index, "class index")?.trim();
    let class_index = if !index.is_empty() {
        let i: usize = index.parse().map_err(|_| format!("class index {index:?} is not a number"))?;
        match options.classes {
            Some(classes) if i >= classes.len() => {
                return Err(format!("class index {i} out of range ({} classes)", classes.len()))
            }
            _ => i,
        }
    } else {
        let name = class.trim();
        match options.classes {
            Some(classes) => classes.iter().position(|c| c == name).ok_or_else(|| format!("unknown class {name:?}"))?,
            None => return Err(format!("no class index (class {name:?} cannot be looked up without classes.csv)")),
        }
    };
    let bytes = optional(c.bytes, "bytes")?.trim().parse().ok();
    let sha256 = Some(optional(c.sha256, "sha256")?.trim()).filter(|h| !h.is_empty()).map(str::to_string);
    Ok(Entry {
        line,
        path,
        class_index,
        class: class.to_string(),
        group: optional(c.group, "group")?.to_string(),
        bytes,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, classes: Option<&[String]>) -> Manifest {
        parse_manifest(Path::new("/m/train.csv"), text.as_bytes(), ReadOptions { classes }).unwrap()
    }

    #[test]
    fn round_trip_is_byte_identical_and_sorted() {
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
        let bytes = manifest_bytes(&rows, false).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "path,class_index,class,group,bytes\na/y.jpg,0,a,a/y.jpg,3\n\"b/x,1.jpg\",1,b,\"g \"\"q\"\"\",10\n"
        );
        let back =
            parse_manifest(Path::new("m.csv"), &manifest_bytes(&rows, true).unwrap(), ReadOptions::default()).unwrap();
        let rows_back: Vec<ManifestRow> = back.entries.iter().map(Entry::to_row).collect();
        assert_eq!(rows_back, vec![rows[1].clone(), rows[0].clone()]);
        assert!(back.has_hash_column && back.skipped.is_empty());
        assert_eq!(back.entries[1].line, 3);
    }

    #[test]
    fn bad_rows_are_skipped_with_file_line_keys() {
        let classes: Vec<String> = vec!["masked".into(), "unmasked".into()];
        let m = parse(
            "path,class_index,class,group,bytes,extra\n\
             masked/a.jpg,0,masked,a,10,x\n\
             ../outside/x.jpg,0,masked,b,10,x\n\
             /etc/passwd,1,unmasked,c,10,x\n\
             unmasked/b.jpg,7,nope,c,10,x\n\
             unmasked/c.jpg,one,nope,d,10,x\n\
             ,0,masked,e,10,x\n\
             short.jpg,0\n\
             unmasked/d.jpg,1,unmasked,f,not-a-number,x\n",
            Some(&classes),
        );
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[1].bytes, None);
        let skipped: Vec<(&str, &str)> = m.skipped.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect();
        assert_eq!(
            skipped,
            [
                ("train.csv:3", "path \"../outside/x.jpg\" is not relative to the dataset root"),
                ("train.csv:4", "path \"/etc/passwd\" is not relative to the dataset root"),
                ("train.csv:5", "class index 7 out of range (2 classes)"),
                ("train.csv:6", "class index \"one\" is not a number"),
                ("train.csv:7", "empty path"),
                ("train.csv:8", "row has 2 fields, the header has 6"),
            ]
        );
        // Names only, and `label` for the index.
        let m = parse("path,class\nx.jpg,unmasked\ny.jpg,other\n", Some(&classes));
        assert_eq!((m.entries.len(), m.entries[0].class_index), (1, 1));
        assert_eq!(m.skipped[0].reason, "unknown class \"other\"");
        let m = parse("\u{feff}path ,label\nx.jpg, 1\n", None);
        assert_eq!(m.entries[0].class_index, 1);
        // Non-UTF-8 bytes.
        let m =
            parse_manifest(Path::new("t.csv"), b"path,class_index\nok.jpg,0\nbad\xff.jpg,0\n", ReadOptions::default())
                .unwrap();
        assert_eq!((m.entries.len(), m.skipped[0].reason.as_str()), (1, "path is not valid UTF-8"));
    }

    #[test]
    fn files_that_are_not_manifests_are_errors() {
        let err = |text: &str| {
            parse_manifest(Path::new("x.csv"), text.as_bytes(), ReadOptions::default()).unwrap_err().to_string()
        };
        assert!(err("file,label\n").contains("no \"path\" column"));
        assert!(err("path,group\n").contains("neither"));
        let missing = read_manifest(Path::new("/nonexistent/m.csv"), ReadOptions::default()).unwrap_err();
        assert!(matches!(missing, ContractError::Io { .. }) && missing.to_string().contains("/nonexistent/m.csv"));
    }
}
