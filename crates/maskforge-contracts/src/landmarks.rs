//! Face files: the `landmarks.csv` that `maskforge detect` writes (one
//! writer, [`landmarks_header`] and [`landmarks_record`]) and every file
//! `maskforge mask --landmarks` reads faces from ([`read_face_file`]):
//!
//! * [`FaceFileFormat::Detect`]: the `landmarks.csv` of detect,
//!   `path,face,left,top,right,bottom,score,x0,y0,...,x67,y67` (exactly
//!   this header). Boxes and points are written with Rust's shortest
//!   round-trip formatting of the `f32` values, so they read back exactly
//!   (dlib's points are whole pixels, its boxes scaled floats); the score
//!   with 4 decimals, as `annotations.csv` writes it.
//! * [`FaceFileFormat::Csv`]: 68 points per face from other tools:
//!   columns `path` and `x0,y0,...,x67,y67`, optionally `face`,
//!   `left,top,right,bottom` (all four) and `score`, in any order; other
//!   columns are ignored. One face per row; several rows of one path are
//!   several faces.
//! * [`FaceFileFormat::Ffhq`]: FFHQ's metadata (`ffhq-dataset-v2.json`), an
//!   object keyed by image index whose values hold `image` (the aligned
//!   1024² photo) and `in_the_wild` (the original photo), each with
//!   `file_path` and `face_landmarks` (68 `[x, y]` pairs, dlib order);
//!   `in_the_wild` also has `face_rect` (`[left, top, right, bottom]`).
//!   `image` faces match `images1024x1024/00000/00000.png` and, for a root
//!   that is the `images1024x1024` folder itself, `00000/00000.png`;
//!   `in_the_wild` faces match their `file_path` as written
//!   (`in-the-wild-images/...`). Thumbnails are not read.
//!
//! Faces without a box get [`box_from_landmarks`]; faces without a score
//! get 0. Bad rows are not errors: each is one [`Failure`] naming
//! `FILE:LINE` (`FILE:entry KEY` in JSON), and the rest is read.

use crate::read::{MAX_LINE_BYTES, MAX_TABLE_BYTES};
use crate::ContractError;
use maskforge_face::{BBox, Face, Landmarks68};
use maskforge_imageio::Failure;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file `maskforge detect` writes.
pub const LANDMARKS_CSV: &str = "landmarks.csv";

/// The columns before the points in `landmarks.csv`.
const DETECT_COLUMNS: [&str; 7] = ["path", "face", "left", "top", "right", "bottom", "score"];

/// The folder of FFHQ's aligned photos, stripped when the root is that folder.
const FFHQ_ALIGNED_FOLDER: &str = "images1024x1024/";

/// `path,face,left,top,right,bottom,score,x0,y0,...,x67,y67`.
pub fn landmarks_header() -> Vec<String> {
    let mut h: Vec<String> = DETECT_COLUMNS.iter().map(|s| s.to_string()).collect();
    for i in 0..Landmarks68::LEN {
        h.push(format!("x{i}"));
        h.push(format!("y{i}"));
    }
    h
}

/// One `landmarks.csv` row: face `index` of image `rel`. Coordinates in
/// shortest round-trip form (they read back to the same `f32`).
pub fn landmarks_record(rel: &str, index: usize, face: &Face) -> Vec<String> {
    let b = &face.bbox;
    let mut r = vec![
        rel.to_string(),
        index.to_string(),
        b.left.to_string(),
        b.top.to_string(),
        b.right.to_string(),
        b.bottom.to_string(),
        format!("{:.4}", face.score),
    ];
    for p in face.landmarks.points() {
        r.push(p.x.to_string());
        r.push(p.y.to_string());
    }
    r
}

/// The layouts [`read_face_file`] reads (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaceFileFormat {
    /// `maskforge detect`'s `landmarks.csv` (exactly its header).
    Detect,
    /// FFHQ's `ffhq-dataset-v2.json` metadata.
    Ffhq,
    /// A plain CSV of 68 points per row from other tools.
    Csv,
}

impl FaceFileFormat {
    /// Its `--landmarks-format` name: `detect`, `ffhq` or `csv`.
    pub fn name(self) -> &'static str {
        match self {
            FaceFileFormat::Detect => "detect",
            FaceFileFormat::Ffhq => "ffhq",
            FaceFileFormat::Csv => "csv",
        }
    }

    /// By content: a file starting with `{` (after white space) or named
    /// `*.json` is FFHQ's; a CSV whose header is `landmarks.csv`'s is
    /// detect's; any other file is a plain CSV.
    pub fn sniff(path: &Path, bytes: &[u8]) -> FaceFileFormat {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let json_name = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if first == Some(&b'{') || json_name {
            return FaceFileFormat::Ffhq;
        }
        let header_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let header = String::from_utf8_lossy(header_line);
        let columns: Vec<&str> = header.trim_end_matches('\r').split(',').map(str::trim).collect();
        if columns == landmarks_header() {
            FaceFileFormat::Detect
        } else {
            FaceFileFormat::Csv
        }
    }
}

/// One face of a face file.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceEntry {
    /// Where it was read: `FILE:LINE` (`FILE:entry KEY` for FFHQ's JSON).
    /// Faces of one FFHQ entry share it.
    pub location: String,
    /// The image paths it matches (relative, `/`-separated); FFHQ's aligned
    /// photos match two.
    pub paths: Vec<String>,
    /// Box, 68 points and score as read (box from the points, score 0, where the file has none).
    pub face: Face,
}

/// What [`read_face_file`] read.
#[derive(Clone, Debug)]
pub struct FaceFile {
    /// The layout it was read as.
    pub format: FaceFileFormat,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Every face read, in file order.
    pub faces: Vec<FaceEntry>,
    /// Rows that could not be read, one line each (`FILE:LINE`, reason).
    pub problems: Vec<Failure>,
}

/// Reads a face file; `format` `None` sniffs it ([`FaceFileFormat::sniff`]).
/// Errors: the file cannot be read, is not CSV/JSON at all, or lacks the
/// columns of its format. `name` is how failures name the file.
pub fn read_face_file(path: &Path, name: &str, format: Option<FaceFileFormat>) -> Result<FaceFile, ContractError> {
    // JSON may be one long line; CSV rows are short, so a long one means a runaway file.
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || format.is_some_and(|f| matches!(f, FaceFileFormat::Ffhq));
    let max_line = (!is_json).then_some(MAX_LINE_BYTES);
    let bytes = crate::read::read_bounded(path, MAX_TABLE_BYTES, max_line, "landmarks file")?;
    let format = format.unwrap_or_else(|| FaceFileFormat::sniff(path, &bytes));
    let (mut faces, mut problems) = match format {
        FaceFileFormat::Ffhq => parse_ffhq(&bytes, name).map_err(|m| ContractError::format(path, m))?,
        FaceFileFormat::Detect | FaceFileFormat::Csv => parse_face_csv(&bytes, name, format == FaceFileFormat::Detect)
            .map_err(|m| ContractError::format(path, m))?,
    };
    problems.extend(drop_duplicates(&mut faces));
    Ok(FaceFile { format, sha256: crate::sha256_hex(&bytes), faces, problems })
}

/// Removes faces that repeat an earlier one exactly (same images, box and
/// points: a file concatenated twice, say), which would otherwise be masked
/// twice; each is reported as a problem naming both places.
fn drop_duplicates(faces: &mut Vec<FaceEntry>) -> Vec<Failure> {
    use std::hash::{Hash, Hasher};
    let mut first: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut problems = Vec::new();
    faces.retain(|e| {
        // Debug text of f32s round-trips exactly, so equal text is equal faces.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", (&e.paths, &e.face)).hash(&mut h);
        match first.entry(h.finish()) {
            std::collections::hash_map::Entry::Occupied(o) => {
                problems.push(Failure::new(e.location.clone(), format!("duplicate of {}: skipped", o.get())));
                false
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e.location.clone());
                true
            }
        }
    });
    problems
}

/// The box a face without one gets: where dlib's HOG detector puts the box
/// of a face with these landmarks (the convention the landmark model was
/// trained on); one definition, shared with `mask --faces crop`.
pub use maskforge_face::fit::box_from_landmarks;

/// Column indices of a face CSV.
struct CsvColumns {
    path: usize,
    face: Option<usize>,
    bbox: Option<[usize; 4]>,
    score: Option<usize>,
    points: Vec<usize>,
    width: usize,
}

impl CsvColumns {
    fn find(header: &csv::StringRecord, detect: bool) -> Result<CsvColumns, String> {
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        if detect && names != landmarks_header() {
            return Err("not a landmarks.csv of `maskforge detect`: its header must be \
                        path,face,left,top,right,bottom,score,x0,y0,...,x67,y67"
                .into());
        }
        let col = |n: &str| names.iter().position(|h| *h == n);
        let path = col("path").ok_or("no `path` column")?;
        let mut points = Vec::with_capacity(2 * Landmarks68::LEN);
        for i in 0..Landmarks68::LEN {
            for axis in ["x", "y"] {
                points.push(col(&format!("{axis}{i}")).ok_or_else(|| format!("no `{axis}{i}` column (68 points)"))?);
            }
        }
        let sides: Vec<Option<usize>> = ["left", "top", "right", "bottom"].iter().map(|n| col(n)).collect();
        let bbox = match sides.as_slice() {
            [Some(l), Some(t), Some(r), Some(b)] => Some([*l, *t, *r, *b]),
            [None, None, None, None] => None,
            _ => return Err("a box needs all four columns left,top,right,bottom".into()),
        };
        Ok(CsvColumns { path, face: col("face"), bbox, score: col("score"), points, width: names.len() })
    }

    /// One row's face and paths, or why the row is unusable.
    fn face(&self, row: &csv::StringRecord) -> Result<(String, Face), String> {
        if row.len() != self.width {
            let extra = row.len() as i64 - self.width as i64;
            let points = Landmarks68::LEN as i64 + extra / 2;
            // The hint only where a short row reads as a face with fewer points.
            let hint = if extra % 2 == 0 && extra < 0 && points > 1 {
                format!(" ({points} points instead of 68?)")
            } else {
                String::new()
            };
            return Err(format!("{} fields, the header has {}{hint}", row.len(), self.width));
        }
        let path = row[self.path].trim();
        if path.is_empty() {
            return Err("empty path".into());
        }
        if let Some(i) = self.face {
            row[i].trim().parse::<usize>().map_err(|_| format!("face: {:?} is not a face number", &row[i]))?;
        }
        let number = |i: usize, what: &str| finite(&row[i], what);
        let values: Vec<f32> = (0..2 * Landmarks68::LEN)
            .map(|k| number(self.points[k], &format!("{}{}", ["x", "y"][k % 2], k / 2)))
            .collect::<Result<_, _>>()?;
        let landmarks = Landmarks68::from_flat(&values).map_err(|e| e.to_string())?;
        let bbox = match self.bbox {
            Some([l, t, r, b]) => {
                checked_box([number(l, "left")?, number(t, "top")?, number(r, "right")?, number(b, "bottom")?])?
            }
            None => box_from_landmarks(&landmarks),
        };
        let score = self.score.map(|i| number(i, "score")).transpose()?.unwrap_or(0.0);
        Ok((path.to_string(), Face { bbox, score, landmarks }))
    }
}

/// Largest magnitude of a coordinate or score read from a face file: far
/// beyond any image, yet small enough that box arithmetic stays exact.
const MAX_COORDINATE: f64 = 1e6;

/// A finite number within ±[`MAX_COORDINATE`], or a reason naming the column.
fn finite(text: &str, what: &str) -> Result<f32, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if !v.is_finite() => Err(format!("{what}: {text:?} is not a finite number")),
        Ok(v) if v.abs() > MAX_COORDINATE => {
            Err(format!("{what}: {text:?} is out of range (a coordinate lies within ±{MAX_COORDINATE:e} pixels)"))
        }
        Ok(v) => Ok(v as f32),
        Err(_) => Err(format!("{what}: {text:?} is not a number")),
    }
}

fn checked_box([l, t, r, b]: [f32; 4]) -> Result<BBox, String> {
    if l < r && t < b {
        Ok(BBox::new(l, t, r, b))
    } else {
        Err(format!("box {l},{t},{r},{b}: left must be under right and top under bottom"))
    }
}

type Parsed = (Vec<FaceEntry>, Vec<Failure>);

/// A detect or plain face CSV; `detect` insists on `landmarks.csv`'s header.
fn parse_face_csv(bytes: &[u8], name: &str, detect: bool) -> Result<Parsed, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("cannot read the header: {e}"))?.clone();
    let columns = CsvColumns::find(&header, detect)?;
    let (mut faces, mut problems) = (Vec::new(), Vec::new());
    for row in reader.records() {
        let (line, read) = match row {
            Ok(row) => (row.position().map_or(0, |p| p.line()), columns.face(&row)),
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(format!("unreadable row: {e}"))),
        };
        let location = format!("{name}:{line}");
        match read {
            Ok((path, face)) => faces.push(FaceEntry { location, paths: vec![path], face }),
            Err(reason) => problems.push(Failure::new(location, reason)),
        }
    }
    Ok((faces, problems))
}

/// One photo of an FFHQ entry; the values stay JSON until checked.
#[derive(Deserialize)]
struct FfhqPhoto {
    file_path: Option<serde_json::Value>,
    face_landmarks: Option<serde_json::Value>,
    face_rect: Option<serde_json::Value>,
}

/// An FFHQ entry: only the photos read; anything else is ignored.
#[derive(Deserialize)]
struct FfhqEntry {
    image: Option<FfhqPhoto>,
    in_the_wild: Option<FfhqPhoto>,
}

/// An entry, or whatever else stands there (reported, not fatal).
#[derive(Deserialize)]
#[serde(untagged)]
enum FfhqValue {
    Entry(FfhqEntry),
    Other(serde::de::IgnoredAny),
}

fn parse_ffhq(bytes: &[u8], name: &str) -> Result<Parsed, String> {
    let entries: BTreeMap<String, FfhqValue> =
        serde_json::from_slice(bytes).map_err(|e| format!("not FFHQ metadata JSON (an object of entries): {e}"))?;
    let mut sorted: Vec<(String, FfhqValue)> = entries.into_iter().collect();
    sorted.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    let (mut faces, mut problems) = (Vec::new(), Vec::new());
    for (key, value) in sorted {
        let location = format!("{name}:entry {key}");
        let FfhqValue::Entry(entry) = value else {
            problems.push(Failure::new(location, "not an object with `image` or `in_the_wild`"));
            continue;
        };
        let photos = [("image", entry.image), ("in_the_wild", entry.in_the_wild)];
        let present: Vec<(&str, FfhqPhoto)> = photos.into_iter().filter_map(|(n, p)| Some((n, p?))).collect();
        if present.is_empty() {
            problems.push(Failure::new(location.clone(), "no `image` or `in_the_wild`"));
        }
        for (part, photo) in present {
            match ffhq_face(&photo, part == "image") {
                Ok((paths, face)) => faces.push(FaceEntry { location: location.clone(), paths, face }),
                Err(reason) => problems.push(Failure::new(location.clone(), format!("{part}: {reason}"))),
            }
        }
    }
    Ok((faces, problems))
}

/// The face of one FFHQ photo and the paths it matches.
fn ffhq_face(photo: &FfhqPhoto, aligned: bool) -> Result<(Vec<String>, Face), String> {
    let path = photo.file_path.as_ref().and_then(|v| v.as_str()).ok_or("no `file_path` text")?.trim();
    if path.is_empty() {
        return Err("empty `file_path`".into());
    }
    let points = photo.face_landmarks.as_ref().and_then(|v| v.as_array()).ok_or("no `face_landmarks` list")?;
    if points.len() != Landmarks68::LEN {
        return Err(format!("face_landmarks: {} points, expected 68", points.len()));
    }
    let mut values = Vec::with_capacity(2 * Landmarks68::LEN);
    for (i, p) in points.iter().enumerate() {
        let pair = p.as_array().filter(|a| a.len() == 2);
        let pair = pair.ok_or_else(|| format!("face_landmarks[{i}]: not an [x, y] pair"))?;
        for v in pair {
            values.push(
                json_number(v)
                    .ok_or_else(|| format!("face_landmarks[{i}]: {v} is not a number within ±{MAX_COORDINATE:e}"))?,
            );
        }
    }
    let landmarks = Landmarks68::from_flat(&values).map_err(|e| e.to_string())?;
    let bbox = match photo.face_rect.as_ref() {
        Some(rect) => {
            let sides: Option<Vec<f32>> =
                rect.as_array().filter(|a| a.len() == 4).and_then(|a| a.iter().map(json_number).collect());
            let sides = sides.ok_or_else(|| format!("face_rect: {rect} is not [left, top, right, bottom]"))?;
            checked_box([sides[0], sides[1], sides[2], sides[3]])?
        }
        None => box_from_landmarks(&landmarks),
    };
    let mut paths = vec![path.to_string()];
    if let Some(inner) = path.strip_prefix(FFHQ_ALIGNED_FOLDER).filter(|_| aligned) {
        paths.push(inner.to_string());
    }
    Ok((paths, Face { bbox, score: 0.0, landmarks }))
}

fn json_number(v: &serde_json::Value) -> Option<f32> {
    v.as_f64().filter(|x| x.abs() <= MAX_COORDINATE).map(|x| x as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points_csv(n: usize, value: &str) -> String {
        let pair = |i: usize| if i == 5 { value.to_string() } else { format!("{},{}", 10 + i, 20 + i) };
        (0..n).map(pair).collect::<Vec<_>>().join(",")
    }

    fn face() -> Face {
        let values: Vec<f32> = (0..136).map(|k| 100.0 + k as f32 * 0.5).collect();
        let landmarks = Landmarks68::from_flat(&values).unwrap();
        Face { bbox: BBox::new(90.123_46, 80.5, 190.0, 181.25), score: 1.23456, landmarks }
    }

    #[test]
    fn repeated_rows_are_read_once_and_reported() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(landmarks_header()).unwrap();
        for (path, index) in [("a/b.jpg", 0), ("a/c.jpg", 0), ("a/b.jpg", 0)] {
            w.write_record(landmarks_record(path, index, &face())).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lm.csv");
        std::fs::write(&file, w.into_inner().unwrap()).unwrap();
        let read = read_face_file(&file, "lm.csv", None).unwrap();
        let paths: Vec<&str> = read.faces.iter().map(|f| f.paths[0].as_str()).collect();
        assert_eq!(paths, ["a/b.jpg", "a/c.jpg"]);
        assert_eq!(read.problems, [Failure::new("lm.csv:4", "duplicate of lm.csv:2: skipped")]);
    }

    #[test]
    fn detect_rows_read_back_exactly() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(landmarks_header()).unwrap();
        w.write_record(landmarks_record("a/b.jpg", 0, &face())).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(FaceFileFormat::sniff(Path::new("x.csv"), &bytes), FaceFileFormat::Detect);
        let (faces, problems) = parse_face_csv(&bytes, "lm.csv", true).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(faces[0].paths, ["a/b.jpg"]);
        assert_eq!(faces[0].location, "lm.csv:2");
        assert_eq!(faces[0].face.bbox, face().bbox);
        assert_eq!(faces[0].face.landmarks, face().landmarks);
        assert_eq!(format!("{:.4}", faces[0].face.score), "1.2346");
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let header = (0..68).map(|i| format!("x{i},y{i}")).collect::<Vec<_>>().join(",");
        let text = format!(
            "path,{header}\nok.jpg,{}\nshort.jpg,{}\nnan.jpg,{}\ntext.jpg,{}\n,{}\nhuge.jpg,{}\nthree.jpg,1,2\n",
            points_csv(68, "1,2"),
            points_csv(67, "1,2"),
            points_csv(68, "NaN,2"),
            points_csv(68, "1,abc"),
            points_csv(68, "1,2"),
            points_csv(68, "1e308,2"),
        );
        assert_eq!(FaceFileFormat::sniff(Path::new("x.csv"), text.as_bytes()), FaceFileFormat::Csv);
        let (faces, problems) = parse_face_csv(text.as_bytes(), "f.csv", false).unwrap();
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].face.bbox, box_from_landmarks(&faces[0].face.landmarks));
        let got: Vec<(&str, &str)> = problems.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect();
        assert_eq!(got[0], ("f.csv:3", "135 fields, the header has 137 (67 points instead of 68?)"));
        assert_eq!(got[1], ("f.csv:4", "x5: \"NaN\" is not a finite number"));
        assert_eq!(got[2], ("f.csv:5", "y5: \"abc\" is not a number"));
        assert_eq!(got[3], ("f.csv:6", "empty path"));
        assert_eq!(got[4], ("f.csv:7", "x5: \"1e308\" is out of range (a coordinate lies within ±1e6 pixels)"));
        assert_eq!(got[5], ("f.csv:8", "3 fields, the header has 137"));
        assert!(parse_face_csv(b"file,x0\n", "f.csv", false).unwrap_err().contains("`path`"));
        assert!(parse_face_csv(text.as_bytes(), "f.csv", true).is_err());
    }

    #[test]
    fn ffhq_entries_match_with_and_without_the_aligned_folder() {
        let pts: Vec<[f32; 2]> = (0..68).map(|i| [300.0 + i as f32, 400.0 + i as f32]).collect();
        let json = serde_json::json!({
            "0": {"category": "training",
                  "image": {"file_path": "images1024x1024/00000/00000.png", "face_landmarks": pts},
                  "in_the_wild": {"file_path": "in-the-wild-images/00000/00000.png", "face_landmarks": pts,
                                  "face_rect": [1, 2, 300, 400]}},
            "1": {"image": {"file_path": "images1024x1024/00000/00001.png", "face_landmarks": &pts[..67]}},
            "2": 5,
        });
        let bytes = serde_json::to_vec(&json).unwrap();
        assert_eq!(FaceFileFormat::sniff(Path::new("meta"), &bytes), FaceFileFormat::Ffhq);
        let (faces, problems) = parse_ffhq(&bytes, "ffhq.json").unwrap();
        assert_eq!(faces.len(), 2);
        assert_eq!(faces[0].paths, ["images1024x1024/00000/00000.png", "00000/00000.png"]);
        assert_eq!(faces[1].paths, ["in-the-wild-images/00000/00000.png"]);
        assert_eq!(faces[1].face.bbox, BBox::new(1.0, 2.0, 300.0, 400.0));
        let got: Vec<String> = problems.iter().map(|f| format!("{}: {}", f.path, f.reason)).collect();
        let expected = [
            "ffhq.json:entry 1: image: face_landmarks: 67 points, expected 68",
            "ffhq.json:entry 2: not an object with `image` or `in_the_wild`",
        ];
        assert_eq!(got, expected);
        assert!(parse_ffhq(b"[1]", "x.json").is_err());
    }

    #[test]
    fn derived_boxes_sit_like_dlib_boxes() {
        let lm = face().landmarks;
        let b = box_from_landmarks(&lm);
        assert!((b.width() - b.height()).abs() < 1e-3, "square");
        // HOG's box holds the eyes, nose and mouth, not the whole jaw.
        assert!(lm.0[17..].iter().all(|p| b.contains(*p)), "{b:?}");
    }
}
