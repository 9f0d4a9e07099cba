//! What happened to each source image, and how a run finds it again.
//!
//! After an image's outputs are in place, one JSON line describing them (a
//! [`Record`]) is appended to a journal (`OUT/.mask-journal*.jsonl`); a torn
//! last line from a `kill -9` is ignored. A finished run leaves the same
//! information in its CSVs (`annotations`, `failures`, `.mask-sources`), from
//! which a re-run rebuilds the records.

use crate::PipelineError;
use maskforge_contracts::mask_files::{self, csv_name, SourceStamp, ANNOTATIONS, FAILURES, SOURCES};
use maskforge_contracts::{AnnotationRow, RelPath};
use maskforge_imageio::LineJournal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What happened to one source image; one journal line.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The source, relative to the input root.
    pub source: String,
    /// Output files, relative to OUT (and to the segmentation folder, as .png).
    pub outputs: Vec<String>,
    /// Its `annotations.csv` rows, one per output (and face).
    pub rows: Vec<AnnotationRow>,
    /// `(source, reason)`: the image, or one variant of it, was skipped.
    pub failures: Vec<(String, String)>,
    /// Decode/read errors are retried on a re-run; everything else is final.
    #[serde(default)]
    pub retry: bool,
    /// Faces masked.
    #[serde(default)]
    pub faces: usize,
    /// Faces skipped as too small.
    #[serde(default)]
    pub small_faces: usize,
    /// Whole-image outputs with a detected face left bare: skipped, or
    /// filed under `--bare-faces CLASS`.
    #[serde(default)]
    pub bare_outputs: usize,
    /// The source file as it was when processed; a changed file is redone.
    #[serde(default)]
    pub stamp: Option<SourceStamp>,
}

impl Record {
    /// Checks every path of the record with the one path validator: a
    /// journal line is data, and its outputs are removed on a re-run.
    pub(crate) fn check_paths(&self) -> Result<(), String> {
        RelPath::new(&self.source).map_err(|e| format!("source: {e}"))?;
        for o in &self.outputs {
            RelPath::new(o).map_err(|e| format!("output: {e}"))?;
        }
        self.rows.iter().try_for_each(AnnotationRow::check_paths)
    }

    /// A record of `rel` that failed for `reason`.
    pub(crate) fn failed(mut self, reason: String) -> Record {
        self.failures.push((self.source.clone(), reason));
        self
    }
}

/// The files of a run's state in OUT: the CSVs (a shard's own names with
/// `--shard`) and the journal.
#[derive(Clone, Debug)]
pub struct RunFiles {
    /// `annotations.csv` (or the shard's).
    pub annotations: PathBuf,
    /// `failures.csv` (or the shard's).
    pub failures: PathBuf,
    /// `.mask-sources.csv` (or the shard's): the finished sources' stamps.
    pub stamps: PathBuf,
    /// The journal of finished images, `.mask-journal.jsonl` (or the shard's).
    pub journal: PathBuf,
}

impl RunFiles {
    /// The files of a run into `out`, as shard `(I, N)` when given.
    pub fn new(out: &Path, shard: Option<(usize, usize)>) -> RunFiles {
        RunFiles {
            annotations: out.join(csv_name(ANNOTATIONS, shard)),
            failures: out.join(csv_name(FAILURES, shard)),
            stamps: out.join(csv_name(SOURCES, shard)),
            journal: out.join(match shard {
                Some((i, n)) => format!(".mask-journal.shard-{i}-of-{n}.jsonl"),
                None => ".mask-journal.jsonl".to_string(),
            }),
        }
    }
}

/// Append-only journal of finished images, one JSON [`Record`] a line
/// (the torn-line handling is [`LineJournal`]'s).
pub(crate) struct Journal(LineJournal);

impl Journal {
    pub(crate) fn open(path: &Path) -> Result<Journal, PipelineError> {
        Ok(Journal(LineJournal::open(path).map_err(PipelineError::io(path))?))
    }

    pub(crate) fn append(&self, rec: &Record) -> Result<(), PipelineError> {
        let path = self.0.path();
        let line = serde_json::to_string(rec).map_err(|source| PipelineError::Json { path: path.into(), source })?;
        self.0.append(&line).map_err(PipelineError::io(path))
    }

    /// The records of a journal; unreadable lines (a torn last one) and
    /// records naming a path outside its folder are skipped (their images
    /// are done again).
    pub(crate) fn read(path: &Path) -> HashMap<String, Record> {
        let lines = LineJournal::read_lines(path).unwrap_or_default();
        let records = lines.iter().filter_map(|line| serde_json::from_str::<Record>(line).ok());
        let records = records.filter(|rec| rec.check_paths().is_ok());
        records.map(|rec| (rec.source.clone(), rec)).collect()
    }
}

/// Records from a finished earlier run's CSVs (none when there is no
/// annotations file), with the stamps it recorded.
pub(crate) fn read_finished(files: &RunFiles) -> Result<HashMap<String, Record>, PipelineError> {
    let mut map: HashMap<String, Record> = HashMap::new();
    if !files.annotations.is_file() {
        return Ok(map);
    }
    let rows = maskforge_contracts::read_annotations(&files.annotations).map_err(PipelineError::Unresumable)?;
    for row in rows {
        let new = || Record { source: row.source.clone(), ..Default::default() };
        let rec = map.entry(row.source.clone()).or_insert_with(new);
        if !rec.outputs.contains(&row.output) {
            rec.outputs.push(row.output.clone());
        }
        rec.rows.push(row);
    }
    // Failures of partly done images (one variant could not be placed) stay with them.
    if let Ok(mut r) = csv::Reader::from_path(&files.failures) {
        for row in r.records().map_while(Result::ok) {
            if let (Some(p), Some(reason)) = (row.get(0), row.get(1)) {
                if let Some(rec) = map.get_mut(p) {
                    rec.failures.push((p.to_string(), reason.to_string()));
                }
            }
        }
    }
    if files.stamps.is_file() {
        for (source, stamp) in mask_files::read_sources(&files.stamps)? {
            if let Some(rec) = map.get_mut(&source) {
                rec.stamp.get_or_insert(stamp);
            }
        }
    }
    Ok(map)
}

/// Writes the stamps of the records that have one.
pub(crate) fn write_stamps(path: &Path, records: &HashMap<String, Record>) -> Result<(), PipelineError> {
    let stamps: Vec<(String, SourceStamp)> =
        records.iter().filter_map(|(source, r)| Some((source.clone(), r.stamp?))).collect();
    Ok(mask_files::write_sources(path, &stamps)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn journal_skips_a_torn_line_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mask-journal.jsonl");
        let rec = |s: &str| Record {
            source: s.into(),
            outputs: vec![format!("correct/{s}")],
            faces: 1,
            ..Default::default()
        };
        let j = Journal::open(&path).unwrap();
        j.append(&rec("a.jpg")).unwrap();
        drop(j);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"source\":\"b.jp").unwrap();
        Journal::open(&path).unwrap().append(&rec("c.jpg")).unwrap();
        let back = Journal::read(&path);
        assert_eq!(back.len(), 2);
        assert_eq!(back["c.jpg"], rec("c.jpg"));
    }

    #[test]
    fn journal_records_naming_paths_outside_their_folder_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mask-journal.jsonl");
        let j = Journal::open(&path).unwrap();
        for (source, output) in [("a.jpg", "correct/a.jpg"), ("b.jpg", "../in/b.jpg"), ("../c.jpg", "correct/c.jpg")] {
            j.append(&Record { source: source.into(), outputs: vec![output.into()], ..Default::default() }).unwrap();
        }
        let absolute = Record { source: "d.jpg".into(), outputs: vec!["/etc/passwd".into()], ..Default::default() };
        j.append(&absolute).unwrap();
        let back = Journal::read(&path);
        assert_eq!(back.keys().collect::<Vec<_>>(), ["a.jpg"]);
    }

    #[test]
    fn old_journal_lines_without_stamps_still_read() {
        let line = r#"{"source":"a.jpg","outputs":["correct/a.jpg"],"rows":[],"failures":[["a.jpg","x"]]}"#;
        let rec: Record = serde_json::from_str(line).unwrap();
        assert_eq!((rec.retry, rec.stamp, rec.failures.len()), (false, None, 1));
    }
}
