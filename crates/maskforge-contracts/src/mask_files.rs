//! The other files `maskforge mask` writes beside its image tree, and the
//! names shards give them.
//!
//! A run with `--shard I/N` writes `NAME.shard-I-of-N.csv` for each CSV
//! (`annotations`, `failures`, `.mask-sources`); `maskforge merge` joins them
//! into `NAME.csv`. `.mask-sources*.csv` (`source,bytes,mtime_ns`) records
//! each finished source file's size and modification time, so a re-run can
//! tell a replaced input from a finished one; it is hidden because it is
//! what a re-run needs, not part of the dataset.

use crate::ContractError;
use maskforge_imageio::AtomicFile;
use std::io::Write;
use std::path::Path;

/// Base names of the CSVs a mask run writes (see [`csv_name`]).
pub const ANNOTATIONS: &str = "annotations";
/// Base name of the CSV of inputs that produced no output, with reasons.
pub const FAILURES: &str = "failures";
/// Base name of the hidden CSV of finished sources (`source,bytes,mtime_ns`).
pub const SOURCES: &str = ".mask-sources";
/// Everything that decides a mask run's outputs; runs that differ in it do
/// not share a folder.
pub const MASK_SETTINGS_JSON: &str = "mask_settings.json";

/// `NAME.csv`, or `NAME.shard-I-of-N.csv` for shard `(I, N)`.
pub fn csv_name(base: &str, shard: Option<(usize, usize)>) -> String {
    match shard {
        Some((i, n)) => format!("{base}.shard-{i}-of-{n}.csv"),
        None => format!("{base}.csv"),
    }
}

/// The shard `(I, N)` of a file named `NAME.shard-I-of-N.csv`.
pub fn shard_of(file_name: &str, base: &str) -> Option<(usize, usize)> {
    let rest = file_name.strip_prefix(base)?.strip_prefix(".shard-")?.strip_suffix(".csv")?;
    let (i, n) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// Whether `dir` holds `NAME.shard-*-of-*.csv` files not yet merged.
pub fn has_shard_files(dir: &Path, base: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| shard_of(&e.file_name().to_string_lossy(), base).is_some()))
        .unwrap_or(false)
}

/// Size and modification time of a source file: cheap to read, and either
/// changes when a photo is replaced by another under the same name.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceStamp {
    /// File size in bytes.
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

impl SourceStamp {
    /// The stamp of the file at `path`; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<SourceStamp> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(SourceStamp { bytes: meta.len(), mtime_ns: u64::try_from(mtime.as_nanos()).ok()? })
    }
}

/// The bytes of `.mask-sources*.csv`: sorted by source, each source once.
pub fn sources_bytes(stamps: &[(String, SourceStamp)]) -> Result<Vec<u8>, csv::Error> {
    let mut rows: Vec<[String; 3]> =
        stamps.iter().map(|(s, st)| [s.clone(), st.bytes.to_string(), st.mtime_ns.to_string()]).collect();
    rows.sort();
    rows.dedup_by(|a, b| a[0] == b[0]);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["source", "bytes", "mtime_ns"])?;
    for r in rows {
        w.write_record(r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes `.mask-sources*.csv` atomically; see [`sources_bytes`].
pub fn write_sources(path: &Path, stamps: &[(String, SourceStamp)]) -> Result<(), ContractError> {
    let bytes = sources_bytes(stamps).map_err(|e| ContractError::format(path, e.to_string()))?;
    let mut file = AtomicFile::create(path).map_err(ContractError::io(path))?;
    file.write_all(&bytes).map_err(ContractError::io(path))?;
    file.commit().map_err(ContractError::io(path))
}

/// Reads `.mask-sources*.csv`. The stamps only decide what a re-run redoes,
/// so rows that do not parse are skipped (their sources are redone or taken
/// as current, as for folders of versions without stamps); a file that
/// cannot be read at all is an error.
pub fn read_sources(path: &Path) -> Result<Vec<(String, SourceStamp)>, ContractError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| ContractError::format(path, e.to_string()))?;
    let mut stamps = Vec::new();
    for row in r.records().map_while(Result::ok) {
        let (Some(source), Some(bytes), Some(mtime), None) = (row.get(0), row.get(1), row.get(2), row.get(3)) else {
            continue;
        };
        if let (Ok(bytes), Ok(mtime_ns)) = (bytes.parse(), mtime.parse()) {
            stamps.push((source.to_string(), SourceStamp { bytes, mtime_ns }));
        }
    }
    Ok(stamps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_round_trip() {
        assert_eq!(csv_name(ANNOTATIONS, Some((2, 8))), "annotations.shard-2-of-8.csv");
        assert_eq!(csv_name(SOURCES, None), ".mask-sources.csv");
        assert_eq!(shard_of("annotations.shard-2-of-8.csv", ANNOTATIONS), Some((2, 8)));
        assert_eq!(shard_of("annotations.csv", ANNOTATIONS), None);
        assert_eq!(shard_of("failures.shard-x-of-8.csv", FAILURES), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_shard_files(dir.path(), ANNOTATIONS));
        std::fs::write(dir.path().join("annotations.shard-1-of-2.csv"), "").unwrap();
        assert!(has_shard_files(dir.path(), ANNOTATIONS));
    }

    #[test]
    fn sources_sorted_once_each_and_read_back() {
        let st = |b: u64| SourceStamp { bytes: b, mtime_ns: 1_700_000_000_000_000_000 + b };
        let stamps = vec![("b.jpg".to_string(), st(2)), ("a.jpg".to_string(), st(1)), ("b.jpg".to_string(), st(3))];
        let bytes = sources_bytes(&stamps).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "source,bytes,mtime_ns\na.jpg,1,1700000000000000001\nb.jpg,2,1700000000000000002\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mask-sources.csv");
        write_sources(&path, &stamps).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::write(&path, [&bytes[..], b"c.jpg,x,1\n"].concat()).unwrap();
        assert_eq!(read_sources(&path).unwrap(), vec![("a.jpg".into(), st(1)), ("b.jpg".into(), st(2))]);
    }
}
