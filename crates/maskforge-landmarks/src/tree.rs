//! `maskforge detect` as a library: faces and 68 landmarks for every photo of
//! a tree, written to `landmarks.csv` (the contract's one writer), with
//! `failures.csv` and optional overlays.
//!
//! Large runs and resume: each finished photo is appended at once to
//! `OUT/.detect-journal.jsonl` ([`DETECT_JOURNAL`]), its `landmarks.csv`
//! rows as they will be written; a torn last line from `kill -9` is
//! skipped. The journal's first line records the detector settings
//! ([`DetectSettings`]). A re-run into the same folder skips every photo
//! journalled under the same settings whose file did not change (decode
//! failures are tried again), and refuses to mix in results of other
//! settings. At the end `landmarks.csv` and `failures.csv` are written
//! atomically, sorted by path, from the journal, so they are byte for byte
//! those of an uninterrupted run; the journal stays (compacted), so a later
//! run only detects new or changed photos.

use crate::{Detector, DetectorConfig, LandmarkError, LANDMARK_MODEL};
use image::{Rgb, RgbImage};
use maskforge_contracts::mask_files::SourceStamp;
use maskforge_contracts::read_image_list;
use maskforge_contracts::{landmarks_header, landmarks_record, LANDMARKS_CSV};
use maskforge_face::Face;
use maskforge_imageio::{
    check_disjoint, load_rgb_budgeted, relative_string, remove_stale_temp_files, save_rgb_atomic, walk_images,
    write_atomic, write_failures_csv, AtomicFile, DecodeBudget, Failure, GuardError, LineJournal, LoadLimits, Output,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of overlays (`--overlay`) in the output folder.
pub const OVERLAYS: &str = "overlays";
/// The journal of finished photos in the output folder.
pub const DETECT_JOURNAL: &str = ".detect-journal.jsonl";
/// What the journal's first line calls it.
const JOURNAL_KIND: &str = "maskforge detect";
/// Layout of the journal's lines; another layout is not read.
const JOURNAL_VERSION: u32 = 1;

/// Why a detect run stopped. Bad photos are not errors: they are failures.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The detector could not be built or run, or an output not written.
    #[error(transparent)]
    Landmarks(#[from] LandmarkError),
    /// The journal could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output folder's journal is not one this version can resume from.
    #[error("{} is not a journal of `maskforge detect` {JOURNAL_VERSION} (damaged, or from another version): delete it to start over, or use a new --out folder", path.display())]
    NotAJournal {
        /// The journal file.
        path: PathBuf,
    },
    /// The journal was written with other detector settings; mixing their
    /// results would make `landmarks.csv` depend on the run's history.
    #[error("{} holds results of other detector settings:\n{diff}\nre-run with those settings to resume, use a new --out folder, or delete {} to start over", path.display(), path.display())]
    DifferentSettings {
        /// The journal file.
        path: PathBuf,
        /// The settings that differ, one per line (journal's, then this run's).
        diff: String,
    },
}

/// A failed write, as the adapter reports it (`cannot write PATH: ...`).
fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> DetectError + '_ {
    move |source| LandmarkError::io(path)(source).into()
}

/// Everything that decides a photo's `landmarks.csv` rows; the journal
/// keeps the results of one set of settings only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectSettings {
    /// `maskforge detect` and the crate version that wrote the journal.
    pub tool: String,
    /// `hog`, `cnn` or `mtcnn`.
    pub detector: String,
    /// Longest side of the detection image (0: full size or `detect_scale`).
    pub detect_max_side: u32,
    /// How the detection image is sized, in words ([`DetectorConfig::scale_text`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detect_scale: String,
    /// Doublings of the detection image ([`DetectorConfig::upsample`]).
    pub upsample: u32,
    /// Offset of HOG's decision threshold ([`DetectorConfig::hog_threshold`]).
    pub hog_threshold: f64,
    /// The model files used, by name, with their sizes in bytes (a
    /// different model of the same name has another size, as a rule).
    pub models: BTreeMap<String, u64>,
}

impl DetectSettings {
    /// The settings of a detector built from `config`.
    pub fn of(config: &DetectorConfig) -> DetectSettings {
        let mut names = vec![LANDMARK_MODEL];
        names.extend(config.kind.model_files());
        let size = |name: &str| std::fs::metadata(config.models_dir.join(name)).map_or(0, |m| m.len());
        DetectSettings {
            tool: concat!("maskforge detect ", env!("CARGO_PKG_VERSION")).to_string(),
            detector: config.detector_text(),
            detect_max_side: config.detect_max_side.unwrap_or(0),
            detect_scale: config.scale_text(),
            upsample: config.upsample,
            hog_threshold: config.hog_threshold,
            models: names.into_iter().map(|n| (n.to_string(), size(n))).collect(),
        }
    }
}

/// The journal's first line.
#[derive(Serialize, Deserialize)]
struct Header {
    journal: String,
    version: u32,
    settings: serde_json::Value,
}

/// What happened to one photo: one journal line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// Relative to the input root, with `/`.
    path: String,
    /// The file as it was when detected; a changed file is detected again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stamp: Option<SourceStamp>,
    #[serde(default)]
    faces: usize,
    /// Its `landmarks.csv` rows as written (CSV text, one line per face), so
    /// the final file is made of exactly the bytes detection produced.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    rows: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    /// Decode/read failures are tried again by a re-run; others are final.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    retry: bool,
}

/// What to detect and where to write.
#[derive(Clone, Debug)]
pub struct DetectTree {
    /// The input folder; `landmarks.csv` paths are relative to it.
    pub root: PathBuf,
    /// The photos under `root` (a walk's, or a `--list`'s).
    pub images: Vec<PathBuf>,
    /// Output folder: `landmarks.csv`, `failures.csv`, the journal, overlays.
    pub out: PathBuf,
    /// Also write each photo with its boxes and points to `out/overlays/`.
    pub overlay: bool,
    /// Size bounds of the photos decoded.
    pub limits: LoadLimits,
    /// Bytes the workers may hold in decodes at once.
    pub decode_budget: DecodeBudget,
}

/// The photos `detect` reads, with the problems of finding them: a walk of
/// `root` (never into `out`), or the images `list` names (one path a line,
/// or a manifest; missing or unlisted-type files are failures).
pub fn find_photos(
    root: &Path,
    list: Option<&Path>,
    out: &Path,
) -> Result<(Vec<PathBuf>, Vec<Failure>), maskforge_contracts::ContractError> {
    let Some(file) = list else {
        let walk = walk_images(root, &[out]);
        return Ok((walk.images, walk.failures));
    };
    let list = read_image_list(file)?;
    let (images, mut failures) = list.resolve(root);
    failures.extend(list.skipped);
    Ok((images.into_iter().map(|(path, _)| path).collect(), failures))
}

/// Refuses `detect`'s outputs (`out`, and `out/overlays` with `overlay`)
/// inside its inputs (`root`, the `list` file), and the reverse.
pub fn check_paths(root: &Path, list: Option<&Path>, out: &Path, overlay: bool) -> Result<(), GuardError> {
    let overlay_dir = out.join(OVERLAYS);
    let mut outputs = vec![Output::new(out, "output folder")];
    if overlay {
        outputs.push(Output::new(&overlay_dir, "overlay folder"));
    }
    let inputs: Vec<&Path> = [Some(root), list].into_iter().flatten().collect();
    check_disjoint(&inputs, &outputs)
}

/// Counts for the summary line; `failures` lists every skipped file.
#[derive(Clone, Debug, Default)]
pub struct DetectSummary {
    /// Photos read and searched (this run or an earlier one).
    pub images: usize,
    /// Faces found in them (rows of `landmarks.csv`).
    pub faces: usize,
    /// Photos searched in which no face was found.
    pub without_face: usize,
    /// Files skipped (unreadable, undecodable, too large), as in `failures.csv`.
    pub failures: Vec<Failure>,
    /// Photos detected by this run.
    pub processed: usize,
    /// Photos an earlier run had finished.
    pub already_done: usize,
    /// Where `landmarks.csv` was written.
    pub landmarks_csv: PathBuf,
}

/// A run in progress: the journal read and open, the photos left to do known.
pub struct DetectRun<'t> {
    tree: &'t DetectTree,
    journal_path: PathBuf,
    header: String,
    /// Journalled photos (of any run into this folder), by path.
    entries: HashMap<String, Entry>,
    /// Indices into `tree.images` still to do.
    todo: Vec<usize>,
    journal: LineJournal,
    fresh: Vec<Entry>,
}

impl DetectTree {
    /// Makes the output folder ready (removing temporary files of dead
    /// runs), reads the journal of earlier runs, refusing one of other
    /// settings, and opens it for appending.
    pub fn open(&self, settings: &DetectSettings) -> Result<DetectRun<'_>, DetectError> {
        std::fs::create_dir_all(&self.out).map_err(write_error(&self.out))?;
        remove_stale_temp_files(&self.out);
        let path = self.out.join(DETECT_JOURNAL);
        let header = Header {
            journal: JOURNAL_KIND.into(),
            version: JOURNAL_VERSION,
            // Plain strings and numbers: cannot fail.
            settings: serde_json::to_value(settings).unwrap_or_default(),
        };
        let header_line = serde_json::to_string(&header).unwrap_or_default();
        let lines =
            LineJournal::read_lines(&path).map_err(|source| DetectError::Read { path: path.clone(), source })?;
        let entries = match lines.split_first() {
            Some((first, rest)) => {
                check_header(&path, first, &header)?;
                // Later lines win: a photo done again (changed, retried) is journalled again.
                rest.iter().filter_map(|l| serde_json::from_str::<Entry>(l).ok()).map(|e| (e.path.clone(), e)).collect()
            }
            None => {
                // The header is written whole (temp + rename), so a journal
                // without one complete line is no journal of ours.
                if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                    return Err(DetectError::NotAJournal { path });
                }
                write_atomic(&path, format!("{header_line}\n").as_bytes()).map_err(write_error(&path))?;
                HashMap::new()
            }
        };
        let todo = (0..self.images.len())
            .filter(|&k| {
                let rel = relative_string(&self.root, &self.images[k]);
                entries.get(&rel).is_none_or(|e| !self.is_done(e, &self.images[k]))
            })
            .collect();
        let journal = LineJournal::open(&path).map_err(write_error(&path))?;
        Ok(DetectRun { tree: self, journal_path: path, header: header_line, entries, todo, journal, fresh: Vec::new() })
    }

    /// Whether a journalled photo needs no new detection: not a failure to
    /// retry, the file unchanged, and its overlay there when asked for.
    fn is_done(&self, e: &Entry, path: &Path) -> bool {
        let overlay_ok =
            || !self.overlay || e.failure.is_some() || self.overlay_path(&e.path).is_ok_and(|p| p.is_file());
        !e.retry && e.stamp.is_some() && e.stamp == SourceStamp::of(path) && overlay_ok()
    }

    /// Checked like every output path: never through a symlinked folder
    /// that leads out of `OUT/overlays`.
    fn overlay_path(&self, rel: &str) -> Result<PathBuf, maskforge_imageio::ConfineError> {
        maskforge_imageio::confined(&self.out.join(OVERLAYS), &Path::new(rel).with_extension("jpg"))
    }

    fn one_photo(&self, det: &mut Detector, path: &Path) -> Entry {
        let rel = relative_string(&self.root, path);
        let entry = Entry { path: rel.clone(), stamp: SourceStamp::of(path), ..Default::default() };
        let img = match load_rgb_budgeted(path, self.limits, &self.decode_budget) {
            Ok(img) => img,
            Err(e) => return Entry { failure: Some(e.reason()), retry: true, ..entry },
        };
        let faces = match det.detect(&img) {
            Ok(faces) => faces,
            Err(e) => return Entry { failure: Some(e.to_string()), ..entry },
        };
        if self.overlay {
            // An overlay is a picture for people: the CSV still counts.
            match self.overlay_path(&rel) {
                Ok(dst) => {
                    if let Err(e) = save_rgb_atomic(&draw_overlay(img, &faces), &dst, 90) {
                        eprintln!("warning: {}: cannot write overlay: {e}", dst.display());
                    }
                }
                Err(e) => eprintln!("warning: no overlay: {e}"),
            }
        }
        match landmarks_rows(&rel, &faces) {
            Ok(rows) => Entry { faces: faces.len(), rows, ..entry },
            Err(e) => Entry { failure: Some(e.to_string()), ..entry },
        }
    }
}

/// The journal's first line must be ours, with the same settings.
fn check_header(path: &Path, line: &str, ours: &Header) -> Result<(), DetectError> {
    let not_ours = || DetectError::NotAJournal { path: path.to_path_buf() };
    let theirs: Header = serde_json::from_str(line).map_err(|_| not_ours())?;
    if theirs.journal != ours.journal || theirs.version != ours.version {
        return Err(not_ours());
    }
    if theirs.settings == ours.settings {
        return Ok(());
    }
    let empty = serde_json::Map::new();
    let (a, b) = (theirs.settings.as_object().unwrap_or(&empty), ours.settings.as_object().unwrap_or(&empty));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let shown = |v: Option<&serde_json::Value>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let diff = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("  {k}: {} (journal) -> {} (now)", shown(a.get(k)), shown(b.get(k))))
        .collect::<Vec<_>>()
        .join("\n");
    Err(DetectError::DifferentSettings { path: path.to_path_buf(), diff })
}

/// The CSV text of `record`s, as the contract's writer writes them.
fn csv_text<I: IntoIterator<Item = Vec<String>>>(records: I) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.write_record(&r)?;
    }
    let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field came from a String: the text is UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `landmarks.csv` rows of one photo's faces.
fn landmarks_rows(rel: &str, faces: &[Face]) -> Result<String, csv::Error> {
    csv_text(faces.iter().enumerate().map(|(i, face)| landmarks_record(rel, i, face)))
}

impl DetectRun<'_> {
    /// Photos of this run (done earlier or not).
    pub fn images(&self) -> usize {
        self.tree.images.len()
    }

    /// Photos still to detect.
    pub fn todo(&self) -> usize {
        self.todo.len()
    }

    /// Detects every photo still to do on the current rayon pool (one
    /// detector clone per worker), journalling each as it finishes;
    /// `progress` is called once per photo.
    pub fn process(&mut self, detector: &Detector, progress: &(dyn Fn() + Sync)) -> Result<(), DetectError> {
        let (tree, journal, path) = (self.tree, &self.journal, &self.journal_path);
        let fresh = self
            .todo
            .par_iter()
            .map_init(
                || detector.clone(),
                |det, &k| -> Result<Entry, DetectError> {
                    let entry = tree.one_photo(det, &tree.images[k]);
                    // Plain strings and numbers: cannot fail.
                    let line = serde_json::to_string(&entry).unwrap_or_default();
                    journal.append(&line).map_err(write_error(path))?;
                    progress();
                    Ok(entry)
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        self.fresh.extend(fresh);
        Ok(())
    }

    /// Writes `landmarks.csv` and `failures.csv` (with `walk_failures`, the
    /// problems of finding the photos) atomically, sorted by path, from the
    /// journalled photos of this run, then compacts the journal.
    pub fn finish(self, walk_failures: Vec<Failure>) -> Result<DetectSummary, DetectError> {
        let DetectRun { tree, journal_path, header: header_line, mut entries, journal, fresh, .. } = self;
        drop(journal);
        let processed = fresh.len();
        let compact = !fresh.is_empty();
        entries.extend(fresh.into_iter().map(|e| (e.path.clone(), e)));
        let mut rels: Vec<String> = tree.images.iter().map(|p| relative_string(&tree.root, p)).collect();
        rels.sort();
        let path = tree.out.join(LANDMARKS_CSV);
        let mut summary = DetectSummary {
            processed,
            already_done: rels.len().saturating_sub(processed),
            failures: walk_failures,
            landmarks_csv: path.clone(),
            ..Default::default()
        };
        let header = csv_text([landmarks_header()]).map_err(|e| write_error(&path)(std::io::Error::other(e)))?;
        let mut file = AtomicFile::create(&path).map_err(write_error(&path))?;
        file.write_all(header.as_bytes()).map_err(write_error(&path))?;
        // Every photo of the run was journalled (earlier, or by `process`).
        for e in rels.iter().filter_map(|rel| entries.get(rel)) {
            match &e.failure {
                Some(reason) => summary.failures.push(Failure::new(e.path.clone(), reason)),
                None => {
                    summary.images += 1;
                    summary.faces += e.faces;
                    summary.without_face += usize::from(e.faces == 0);
                    file.write_all(e.rows.as_bytes()).map_err(write_error(&path))?;
                }
            }
        }
        file.commit().map_err(write_error(&path))?;
        summary.failures.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
        let failures_path = tree.out.join("failures.csv");
        write_failures_csv(&failures_path, &summary.failures).map_err(write_error(&failures_path))?;
        if compact {
            compact_journal(&journal_path, &header_line, &entries)?;
        }
        Ok(summary)
    }
}

/// Rewrites the journal as its header and one line per photo, sorted,
/// atomically: a kill meanwhile leaves the old journal.
fn compact_journal(path: &Path, header: &str, entries: &HashMap<String, Entry>) -> Result<(), DetectError> {
    let mut file = AtomicFile::create(path).map_err(write_error(path))?;
    writeln!(file, "{header}").map_err(write_error(path))?;
    let mut entries: Vec<&Entry> = entries.values().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for e in entries {
        let line = serde_json::to_string(e).unwrap_or_default();
        writeln!(file, "{line}").map_err(write_error(path))?;
    }
    file.commit().map_err(write_error(path))
}

/// Draws boxes and the 68 points; everything is clipped to the image.
pub fn draw_overlay(mut img: RgbImage, faces: &[Face]) -> RgbImage {
    let thick = ((img.width().max(img.height()) as f32) / 400.0).ceil().max(1.0) as i32;
    for face in faces {
        let b = face.bbox;
        let rect_color = Rgb([0, 255, 0]);
        for t in 0..thick {
            let r = imageproc::rect::Rect::at(b.left as i32 - t, b.top as i32 - t)
                .of_size((b.width() as u32 + 2 * t as u32).max(1), (b.height() as u32 + 2 * t as u32).max(1));
            imageproc::drawing::draw_hollow_rect_mut(&mut img, r, rect_color);
        }
        for (i, p) in face.landmarks.points().iter().enumerate() {
            let color = match i {
                0..=16 => Rgb([255, 255, 0]),
                27..=35 => Rgb([255, 0, 0]),
                48..=67 => Rgb([255, 0, 255]),
                _ => Rgb([0, 200, 255]),
            };
            imageproc::drawing::draw_filled_circle_mut(&mut img, (p.x as i32, p.y as i32), thick + 1, color);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_face::Landmarks68;

    fn settings(upsample: u32) -> DetectSettings {
        let mut config = DetectorConfig::new("/nonexistent/models");
        config.upsample = upsample;
        DetectSettings::of(&config)
    }

    #[test]
    fn the_journal_keeps_one_set_of_settings() {
        let dir = tempfile::tempdir().unwrap();
        let tree = DetectTree {
            root: dir.path().join("in"),
            images: Vec::new(),
            out: dir.path().join("out"),
            overlay: false,
            limits: LoadLimits::default(),
            decode_budget: DecodeBudget::new(1 << 30),
        };
        let run = tree.open(&settings(0)).unwrap();
        assert_eq!(run.todo(), 0);
        let summary = run.finish(vec![Failure::new("x.jpg", "unreadable")]).unwrap();
        assert_eq!(summary.failures.len(), 1);
        let csv = std::fs::read_to_string(tree.out.join(LANDMARKS_CSV)).unwrap();
        assert_eq!(csv.lines().count(), 1, "{csv}");
        assert!(csv.starts_with("path,face,left,top,right,bottom,score,x0,y0,"), "{csv}");
        let journal = tree.out.join(DETECT_JOURNAL);
        // A second open with the same settings resumes; others are refused.
        tree.open(&settings(0)).unwrap();
        let err = tree.open(&settings(2)).err().unwrap().to_string();
        assert!(err.contains("other detector settings") && err.contains("  upsample: 0 (journal) -> 2 (now)"), "{err}");
        assert_eq!(std::fs::read_to_string(&journal).unwrap().lines().count(), 1);
        // A file that is not a journal is never overwritten.
        std::fs::write(&journal, "not json\n").unwrap();
        assert!(matches!(tree.open(&settings(0)), Err(DetectError::NotAJournal { .. })));
        std::fs::write(&journal, "torn header").unwrap();
        assert!(matches!(tree.open(&settings(0)), Err(DetectError::NotAJournal { .. })));
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "torn header");
    }

    #[test]
    fn entries_read_back_and_rows_are_the_contract_writers() {
        let pts = Landmarks68([maskforge_face::Point::default(); 68]);
        let face = Face { bbox: maskforge_face::BBox::default(), score: 1.25, landmarks: pts };
        let rows = landmarks_rows("a,b.jpg", &[face, face]).unwrap();
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("\"a,b.jpg\",0,0,0,0,0,1.2500,0,0,") && lines[1].contains(",1,"), "{rows}");
        let entry = Entry { path: "a,b.jpg".into(), faces: 2, rows, ..Default::default() };
        let line = serde_json::to_string(&entry).unwrap();
        assert!(!line.contains('\n') && !line.contains("retry") && !line.contains("failure"), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), entry);
    }
}
