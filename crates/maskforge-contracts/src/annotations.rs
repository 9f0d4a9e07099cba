//! `annotations.csv`: what `maskforge mask` made, one row per output and
//! face, read by `maskforge merge` (which joins shards' files) and by
//! `maskforge split --group-by source` (which keeps a photo and its masked
//! versions in one split).
//!
//! Columns, in order: `source,output,face,variant,class,template,colour,seed,
//! box_left,box_top,box_right,box_bottom,score,method,x0,y0,...,x67,y67,mask_polygon`.
//! Coordinates are in the output image's pixels; an unmasked original copied
//! whole has only the first eight columns filled (`variant` = `none`).
//! `method` says how the face was found: `hog`, `cnn` (detectors),
//! `landmarks` (`mask --landmarks`) or `crop` (`mask --faces crop`); `score`
//! is the detector's, 1 for a landmarks file, and the crop fit's anchoring
//! score for a crop. Files of the previous version (no `method` column) are
//! still read, with the method empty.
//!
//! [`write_annotations`] is the one writer (rows sorted by output, then face
//! index; duplicates dropped), [`read_annotations`] the one reader (it
//! checks the header). Numbers are kept as the text written (`{:.2}`, score
//! `{:.4}`, polygon `{:.1} {:.1}` joined by `;`), so a row read and written
//! again is the same bytes. [`read_output_sources`] reads just the two
//! columns a split needs, by name, from this file or a hand-made one.

use crate::read::{MAX_LINE_BYTES, MAX_TABLE_BYTES};
use crate::{ContractError, RelPath};
use maskforge_imageio::AtomicFile;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The `variant` of an unmasked original.
pub const UNMASKED_VARIANT: &str = "none";
/// Columns before the face geometry.
const LEAD_COLUMNS: [&str; 8] = ["source", "output", "face", "variant", "class", "template", "colour", "seed"];
const BOX_COLUMNS: [&str; 6] = ["box_left", "box_top", "box_right", "box_bottom", "score", "method"];
/// Where `method` is among the columns.
const METHOD_COLUMN: usize = LEAD_COLUMNS.len() + BOX_COLUMNS.len() - 1;
/// Landmark coordinates per row (68 points, x and y).
const LANDMARK_VALUES: usize = 136;
/// Every column: 8 + 6 + 136 + 1.
pub const ANNOTATION_COLUMNS: usize = LEAD_COLUMNS.len() + BOX_COLUMNS.len() + LANDMARK_VALUES + 1;

/// The header of `annotations.csv`.
pub fn annotations_header() -> Vec<String> {
    let mut h: Vec<String> = LEAD_COLUMNS.iter().chain(&BOX_COLUMNS).map(|s| s.to_string()).collect();
    for i in 0..LANDMARK_VALUES / 2 {
        h.push(format!("x{i}"));
        h.push(format!("y{i}"));
    }
    h.push("mask_polygon".into());
    h
}

/// The text of a coordinate in every column but `score` and `mask_polygon`.
fn fmt2(v: f32) -> String {
    format!("{v:.2}")
}

/// A face's box, detector score and 68 landmarks in output coordinates, as
/// their CSV text: formatted once, so reading and writing keeps the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaceColumns {
    /// `box_left, box_top, box_right, box_bottom, score, method`.
    box_and_score: [String; 6],
    /// `x0, y0, ..., x67, y67`.
    landmarks: Vec<String>,
}

impl FaceColumns {
    /// Formats a box (`[left, top, right, bottom]`), a score and 68 points;
    /// the method is empty until [`FaceColumns::with_method`].
    pub fn new(bbox: [f32; 4], score: f32, landmarks: &[(f32, f32); 68]) -> FaceColumns {
        let [l, t, r, b] = bbox;
        FaceColumns {
            box_and_score: [fmt2(l), fmt2(t), fmt2(r), fmt2(b), format!("{score:.4}"), String::new()],
            landmarks: landmarks.iter().flat_map(|&(x, y)| [fmt2(x), fmt2(y)]).collect(),
        }
    }

    /// How the face was found (`hog`, `cnn`, `landmarks`, `crop`).
    pub fn with_method(mut self, method: &str) -> FaceColumns {
        self.box_and_score[5] = method.to_string();
        self
    }

    /// The `method` column (empty in files of the previous version).
    pub fn method(&self) -> &str {
        &self.box_and_score[5]
    }

    /// The box as written (`[left, top, right, bottom]`), rounded to 0.01.
    pub fn bbox(&self) -> Option<[f32; 4]> {
        let v = |i: usize| self.box_and_score[i].parse::<f32>().ok();
        Some([v(0)?, v(1)?, v(2)?, v(3)?])
    }

    /// Landmark `i` (0..68) as written, rounded to 0.01.
    pub fn landmark(&self, i: usize) -> Option<(f32, f32)> {
        let v = |k: usize| self.landmarks.get(k).and_then(|s| s.parse::<f32>().ok());
        Some((v(2 * i)?, v(2 * i + 1)?))
    }
}

/// The `mask_polygon` text of an outline: `x y;x y;...`, one decimal.
pub fn polygon_text(points: impl IntoIterator<Item = (f32, f32)>) -> String {
    points.into_iter().map(|(x, y)| format!("{x:.1} {y:.1}")).collect::<Vec<_>>().join(";")
}

/// One row of `annotations.csv`. In the mask journal it is the plain list
/// of its fields, as in the CSV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct AnnotationRow {
    /// The input photo, relative to the mask input root.
    pub source: String,
    /// The output file, relative to the mask output folder (`class/...`).
    pub output: String,
    /// Which face of the source; `None` for a whole unmasked original.
    pub face: Option<usize>,
    /// The wear variant, or [`UNMASKED_VARIANT`].
    pub variant: String,
    /// The output's class: its top folder under the output folder.
    pub class: String,
    /// Template name; empty for originals.
    pub template: String,
    /// Colour name; empty for originals.
    pub colour: String,
    /// The `--seed` of the run.
    pub seed: u64,
    /// `None` for a whole unmasked original.
    pub geometry: Option<FaceColumns>,
    /// See [`polygon_text`]; empty for originals.
    pub mask_polygon: String,
}

impl AnnotationRow {
    /// Whether this row is an unmasked original rather than a masked face.
    pub fn is_unmasked(&self) -> bool {
        self.variant == UNMASKED_VARIANT
    }

    /// The points of `mask_polygon` (the reader of [`polygon_text`]'s
    /// `x y;x y;...`); points that do not parse are left out.
    pub fn mask_polygon_points(&self) -> Vec<(f32, f32)> {
        self.mask_polygon
            .split(';')
            .filter_map(|p| {
                let (x, y) = p.trim().split_once(' ')?;
                Some((x.parse().ok()?, y.parse().ok()?))
            })
            .collect()
    }

    /// The fields in column order.
    pub fn to_fields(&self) -> Vec<String> {
        let mut r = Vec::with_capacity(ANNOTATION_COLUMNS);
        r.extend([
            self.source.clone(),
            self.output.clone(),
            self.face.map(|i| i.to_string()).unwrap_or_default(),
            self.variant.clone(),
            self.class.clone(),
            self.template.clone(),
            self.colour.clone(),
            self.seed.to_string(),
        ]);
        match &self.geometry {
            Some(g) => {
                r.extend(g.box_and_score.iter().cloned());
                r.extend(g.landmarks.iter().cloned());
            }
            None => r.extend(std::iter::repeat_n(String::new(), BOX_COLUMNS.len() + LANDMARK_VALUES)),
        }
        r.push(self.mask_polygon.clone());
        r
    }

    /// A row from its fields in column order; the message says what is wrong.
    /// Rows of the previous version (no `method` field) are read with the
    /// method empty.
    pub fn from_fields(mut fields: Vec<String>) -> Result<AnnotationRow, String> {
        if fields.len() == ANNOTATION_COLUMNS - 1 {
            fields.insert(METHOD_COLUMN, String::new());
        }
        if fields.len() != ANNOTATION_COLUMNS {
            return Err(format!("{} fields, expected {ANNOTATION_COLUMNS}", fields.len()));
        }
        let mask_polygon = fields.pop().unwrap_or_default();
        let landmarks = fields.split_off(LEAD_COLUMNS.len() + BOX_COLUMNS.len());
        let box_and_score = fields.split_off(LEAD_COLUMNS.len());
        // The method may be empty (files of the previous version).
        let numbers = || box_and_score[..5].iter().chain(&landmarks);
        let geometry = if numbers().all(String::is_empty) && box_and_score[5].is_empty() {
            None
        } else if numbers().any(String::is_empty) {
            return Err("box, score and landmarks must be all filled or all empty".into());
        } else {
            let box_and_score: [String; 6] = box_and_score.try_into().map_err(|_| "bad box columns".to_string())?;
            Some(FaceColumns { box_and_score, landmarks })
        };
        let [source, output, face, variant, class, template, colour, seed]: [String; 8] =
            fields.try_into().map_err(|_| "bad leading columns".to_string())?;
        let face = match face.as_str() {
            "" => None,
            f => Some(f.parse().map_err(|_| format!("face {f:?} is not a number"))?),
        };
        let seed = seed.parse().map_err(|_| format!("seed {seed:?} is not a number"))?;
        let row =
            AnnotationRow { source, output, face, variant, class, template, colour, seed, geometry, mask_polygon };
        row.check_paths()?;
        Ok(row)
    }

    /// Checks `source` and `output` with the one path validator. Paths are
    /// data: a tampered row (`../in/b.jpg`, `/etc/x`) must never lead a
    /// re-run's clean-up or a merge outside the folders they belong to.
    pub fn check_paths(&self) -> Result<(), String> {
        for (column, path) in [("source", &self.source), ("output", &self.output)] {
            RelPath::new(path).map_err(|e| format!("{column}: {e}"))?;
        }
        Ok(())
    }
}

impl From<AnnotationRow> for Vec<String> {
    fn from(row: AnnotationRow) -> Vec<String> {
        row.to_fields()
    }
}

impl TryFrom<Vec<String>> for AnnotationRow {
    type Error = String;
    fn try_from(fields: Vec<String>) -> Result<AnnotationRow, String> {
        AnnotationRow::from_fields(fields)
    }
}

/// Output path, face index (-1 for a whole original), the row's text.
type SortKey<'a> = (&'a str, i64, String);

/// The bytes of `annotations.csv`: header, then the rows sorted by output
/// path, then face index (a whole original first), then the row's text;
/// equal rows once. Shards joined by merge thus equal a single run's file.
pub fn annotations_bytes(rows: &[AnnotationRow]) -> Result<Vec<u8>, csv::Error> {
    let mut keyed: Vec<(SortKey, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let fields = r.to_fields();
            ((r.output.as_str(), r.face.map_or(-1, |f| f as i64), fields.join(",")), fields)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(annotations_header())?;
    for (_, fields) in keyed {
        w.write_record(fields)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes `annotations.csv` (or a shard's) atomically; see [`annotations_bytes`].
pub fn write_annotations(path: &Path, rows: &[AnnotationRow]) -> Result<(), ContractError> {
    let bytes = annotations_bytes(rows).map_err(|e| ContractError::format(path, e.to_string()))?;
    let mut file = AtomicFile::create(path).map_err(ContractError::io(path))?;
    file.write_all(&bytes).map_err(ContractError::io(path))?;
    file.commit().map_err(ContractError::io(path))
}

/// Reads an `annotations.csv` written by [`write_annotations`]: the header
/// must be exactly this version's and every row complete; anything else is
/// an error naming the file (and line).
pub fn read_annotations(path: &Path) -> Result<Vec<AnnotationRow>, ContractError> {
    let bytes = crate::read::read_bounded(path, MAX_TABLE_BYTES, Some(MAX_LINE_BYTES), "annotations file")?;
    parse_annotations(path, &bytes)
}

/// [`read_annotations`] of bytes already read (`path` names them in errors).
pub fn parse_annotations(path: &Path, bytes: &[u8]) -> Result<Vec<AnnotationRow>, ContractError> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = r.headers().map_err(|e| ContractError::format(path, e.to_string()))?;
    let mut previous = annotations_header();
    previous.remove(METHOD_COLUMN);
    let is = |h: &[String]| header.iter().eq(h.iter().map(String::as_str));
    if !is(&annotations_header()) && !is(&previous) {
        return Err(ContractError::format(
            path,
            "unexpected header: not an annotations file of this maskforge version",
        ));
    }
    let mut rows = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| ContractError::format(path, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row = AnnotationRow::from_fields(record.iter().map(str::to_string).collect())
            .map_err(|m| ContractError::format(path, format!("line {line}: {m}")))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Normalises a path read from a CSV to the `a/b.jpg` form.
fn normalise(p: &str) -> String {
    let p = p.trim().replace('\\', "/");
    p.strip_prefix("./").unwrap_or(&p).to_string()
}

/// `output` → `source` from the `source` and `output` columns (found by
/// name, other columns ignored, paths normalised to `a/b.jpg`): what
/// grouping by source needs, from `maskforge mask`'s file or one made by
/// another tool. Rows with an empty source or output are skipped; should
/// rows of one output name different sources, the smallest wins, so the
/// result does not depend on row order. Read with the caps of
/// [`read_annotations`] (a regular file, `MAX_TABLE_BYTES`, `MAX_LINE_BYTES`).
pub fn read_output_sources(path: &Path) -> Result<HashMap<String, String>, ContractError> {
    let bad = |message: String| ContractError::format(path, message);
    let bytes = crate::read::read_bounded(path, MAX_TABLE_BYTES, Some(MAX_LINE_BYTES), "annotations file")?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(|e| bad(format!("cannot read header: {e}")))?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            bad(format!("no {name:?} column (header: {})", headers.iter().collect::<Vec<_>>().join(",")))
        })
    };
    let (source_col, output_col) = (column("source")?, column("output")?);
    let mut source_of_output: HashMap<String, String> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
        let (Some(source), Some(output)) = (record.get(source_col), record.get(output_col)) else {
            return Err(bad(format!("row {}: missing source or output field", i + 2)));
        };
        let (source, output) = (normalise(source), normalise(output));
        if source.is_empty() || output.is_empty() {
            continue;
        }
        source_of_output
            .entry(output)
            .and_modify(|s| {
                if source < *s {
                    s.clone_from(&source)
                }
            })
            .or_insert(source);
    }
    Ok(source_of_output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(output: &str, face: usize) -> AnnotationRow {
        let points: [(f32, f32); 68] = std::array::from_fn(|i| (10.0 + i as f32 * 1.1, 20.0 - i as f32 / 3.0));
        AnnotationRow {
            source: "p/a,b.jpg".into(),
            output: output.into(),
            face: Some(face),
            variant: "correct".into(),
            class: "masked".into(),
            template: "surgical".into(),
            colour: "#3a5fcd".into(),
            seed: 7,
            geometry: Some(FaceColumns::new([1.0, 2.004, 103.5, -4.0], 0.987_66, &points).with_method("hog")),
            mask_polygon: polygon_text([(1.26, 2.0), (3.0, -4.56)]),
        }
    }

    fn original(output: &str) -> AnnotationRow {
        AnnotationRow {
            source: "p/a,b.jpg".into(),
            output: output.into(),
            face: None,
            variant: UNMASKED_VARIANT.into(),
            class: "unmasked".into(),
            template: String::new(),
            colour: String::new(),
            seed: 7,
            geometry: None,
            mask_polygon: String::new(),
        }
    }

    #[test]
    fn numbers_are_written_as_before() {
        let fields = masked("o.jpg", 0).to_fields();
        assert_eq!(fields.len(), ANNOTATION_COLUMNS);
        assert_eq!(annotations_header().len(), ANNOTATION_COLUMNS);
        assert_eq!(&fields[8..14], ["1.00", "2.00", "103.50", "-4.00", "0.9877", "hog"]);
        assert_eq!(&fields[14..16], ["10.00", "20.00"]);
        assert_eq!(fields[ANNOTATION_COLUMNS - 1], "1.3 2.0;3.0 -4.6");
        let orig = original("u.jpg").to_fields();
        assert_eq!(orig.iter().filter(|f| !f.is_empty()).count(), 5, "{orig:?}");
        assert_eq!(masked("o.jpg", 0).geometry.unwrap().landmark(1), Some((11.1, 19.67)));
    }

    #[test]
    fn rows_sort_by_output_then_numeric_face_and_round_trip() {
        let rows =
            vec![masked("b.jpg", 10), masked("b.jpg", 2), masked("a.jpg", 0), original("b.jpg"), masked("a.jpg", 0)];
        let bytes = annotations_bytes(&rows).unwrap();
        let back = parse_annotations(Path::new("annotations.csv"), &bytes).unwrap();
        let order: Vec<(&str, Option<usize>)> = back.iter().map(|r| (r.output.as_str(), r.face)).collect();
        assert_eq!(order, [("a.jpg", Some(0)), ("b.jpg", None), ("b.jpg", Some(2)), ("b.jpg", Some(10))]);
        assert_eq!(annotations_bytes(&back).unwrap(), bytes, "read + write changes bytes");
        // The journal form is the plain list of fields.
        let json = serde_json::to_string(&back[1]).unwrap();
        assert!(json.starts_with("[\"p/a,b.jpg\",\"b.jpg\",\"\",\"none\""), "{json}");
        assert_eq!(serde_json::from_str::<AnnotationRow>(&json).unwrap(), back[1]);
    }

    #[test]
    fn files_of_the_previous_version_read_with_an_empty_method() {
        let row = masked("a.jpg", 0);
        let mut old = annotations_header();
        old.remove(METHOD_COLUMN);
        let mut fields = row.to_fields();
        fields.remove(METHOD_COLUMN);
        let mut orig = original("u.jpg").to_fields();
        orig.remove(METHOD_COLUMN);
        let mut w = csv::Writer::from_writer(Vec::new());
        for record in [old, fields, orig] {
            w.write_record(record).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let back = parse_annotations(Path::new("annotations.csv"), &bytes).unwrap();
        assert_eq!(back.len(), 2);
        let g = back[0].geometry.as_ref().unwrap();
        assert_eq!((g.method(), g.bbox()), ("", row.geometry.as_ref().unwrap().bbox()));
        assert!(back[1].geometry.is_none());
    }

    #[test]
    fn a_wrong_header_or_row_is_an_error_naming_the_file() {
        let path = Path::new("/x/annotations.shard-1-of-2.csv");
        let err = parse_annotations(path, b"source,output\na,b\n").unwrap_err().to_string();
        assert!(err.starts_with("/x/annotations.shard-1-of-2.csv: unexpected header"), "{err}");
        assert_eq!(err.lines().count(), 1);
        let mut bytes = annotations_bytes(&[masked("a.jpg", 0)]).unwrap();
        bytes.extend_from_slice(b"s,o,x,correct\n");
        let err = parse_annotations(path, &bytes).unwrap_err().to_string();
        assert!(err.contains("annotations.shard-1-of-2.csv: line 3: 4 fields"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_annotations(&dir.path().join("annotations.csv")).unwrap_err().to_string();
        assert!(err.contains("annotations.csv"), "{err}");
    }

    #[test]
    fn output_sources_need_only_two_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("annotations.csv");
        std::fs::write(&path, "template,output,source\nt,./c/a.jpg,p\\a.jpg\nt,c/a.jpg,o/a.jpg\nt,,x\n").unwrap();
        let map = read_output_sources(&path).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map["c/a.jpg"], "o/a.jpg", "the smallest source wins");
        std::fs::write(&path, "src,out\na,b\n").unwrap();
        let err = read_output_sources(&path).unwrap_err().to_string();
        assert!(err.contains("no \"source\" column"), "{err}");
        // Read as the strict reader reads: a regular file only.
        let err = read_output_sources(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file (a folder)"), "{err}");
    }
}
