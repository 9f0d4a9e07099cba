//! `maskforge predict` as a library: find the faces in photos, cut each with
//! the mask stage's crop, classify it, and write annotated photos,
//! `predictions.csv`, optional occlusion maps, `failures.csv` and
//! `predict_settings.json`.
//!
//! Faces come in through [`FaceFinder`], so this crate needs no dlib: the
//! binary passes its detector. Every photo ends up in exactly one of
//! `predictions.csv` (one row per face) and `failures.csv` (unreadable, or
//! no face found).

use crate::error::{Result, TrainError};
use crate::explain::{occlusion_map, render_heatmap};
use crate::predictor::Ensemble;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut};
use imageproc::rect::Rect;
use maskforge_face::crop::crop_face;
use maskforge_face::Face;
use maskforge_imageio::{
    check_disjoint, load_rgb_budgeted, relative_string, save_rgb_atomic, walk_images, write_failures_csv, AtomicFile,
    DecodeBudget, Failure, LoadLimits, Output,
};
use maskforge_metrics::scenes::ClassedBox;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The failures.csv reason of a photo in which no face was found.
pub const NO_FACE_REASON: &str = "no face detected";

/// Photos classified per batch: detection runs in parallel over a chunk,
/// then the model classifies all its crops at once on this thread.
const CHUNK: usize = 16;

/// Finds the faces of one decoded photo; cloned once per worker thread.
pub trait FaceFinder: Clone + Send + Sync {
    /// The faces of `img`, or why detection failed (the failures.csv reason).
    fn find(&mut self, img: &RgbImage) -> std::result::Result<Vec<Face>, String>;
}

impl<F> FaceFinder for F
where
    F: FnMut(&RgbImage) -> std::result::Result<Vec<Face>, String> + Clone + Send + Sync,
{
    fn find(&mut self, img: &RgbImage) -> std::result::Result<Vec<Face>, String> {
        self(img)
    }
}

/// What to do; sizes were checked by [`PredictOptions::check`].
#[derive(Clone, Debug)]
pub struct PredictOptions {
    /// Where relative paths in the CSVs start.
    pub root: PathBuf,
    /// The photos to classify, in output order (from [`find_photos`]).
    pub photos: Vec<PathBuf>,
    /// Output folder: predictions.csv, failures.csv, predict_settings.json, annotated/ and explain/.
    pub out: PathBuf,
    /// Side of the square face crop cut from the photo, in pixels (8 to
    /// 4096); it is then resized to the model's input size.
    pub crop_size: u32,
    /// Margin around the detector box, as a fraction of its size per side
    /// (0 to 2), as the mask stage's crops.
    pub crop_margin: f32,
    /// `Some((patch, stride))`: write occlusion maps with these sizes.
    pub explain: Option<(u32, u32)>,
    /// Size bounds of the photos decoded.
    pub limits: LoadLimits,
    /// Bytes the detection workers may hold in decodes at once.
    pub decode_budget: DecodeBudget,
    /// The face detector and its settings, in words (`predict_settings.json`).
    pub detector: String,
}

/// The photos `predict` reads from `input`, a photo or a folder (walked,
/// never into `out`, which must lie outside it): the root their CSV paths
/// start from, the photos, and the files the walk could not take.
pub fn find_photos(input: &Path, out: &Path) -> Result<(PathBuf, Vec<PathBuf>, Vec<Failure>)> {
    check_disjoint(&[input], &[Output::new(out, "output folder")])?;
    if input.is_dir() {
        let walk = walk_images(input, &[out]);
        Ok((input.to_path_buf(), walk.images, walk.failures))
    } else if input.is_file() {
        Ok((input.parent().map(Path::to_path_buf).unwrap_or_default(), vec![input.to_path_buf()], Vec::new()))
    } else {
        Err(TrainError::Config(format!("{}: no such photo or folder", input.display())))
    }
}

impl PredictOptions {
    /// `(patch, stride)` of the occlusion maps of a model of input size
    /// `img_size`: `patch`, else a seventh of the input; `stride`, else half
    /// the patch.
    pub fn explain_sizes(img_size: u32, patch: Option<u32>, stride: Option<u32>) -> (u32, u32) {
        let patch = patch.unwrap_or((img_size / 7).max(1));
        (patch, stride.unwrap_or((patch / 2).max(1)))
    }

    /// Refuses unusable settings for `models` before a photo is read or
    /// anything written: the crop's numbers, and occlusion maps (one model
    /// only) whose patch and stride must fit its input size.
    pub fn check(&self, models: &Ensemble) -> Result<()> {
        if !(8..=4096).contains(&self.crop_size) {
            return Err(TrainError::Config(format!("--crop-size {}: must be from 8 to 4096", self.crop_size)));
        }
        if !(self.crop_margin.is_finite() && (0.0..=2.0).contains(&self.crop_margin)) {
            return Err(TrainError::Config(format!(
                "--crop-margin {}: must be a number from 0 to 2",
                self.crop_margin
            )));
        }
        if let Some((patch, stride)) = self.explain {
            let Some(model) = models.single() else {
                return Err(TrainError::Config(EXPLAIN_ONE_MODEL.into()));
            };
            let img_size = model.meta.img_size;
            for (flag, v) in [("--explain-patch", patch), ("--explain-stride", stride)] {
                if v == 0 || v > img_size {
                    return Err(TrainError::Config(format!(
                        "{flag} {v}: must be from 1 to the model's input size {img_size}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Counts for the summary line, and what was found in each photo.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictSummary {
    /// Photos given, readable or not.
    pub photos: usize,
    /// Faces found and classified (rows of predictions.csv).
    pub faces: usize,
    /// Photos read in which no face was found.
    pub without_face: usize,
    /// Photos (or walk entries) that could not be read or decoded.
    pub unreadable: usize,
    /// Every photo read (relative path, with `/`) with its faces' boxes and
    /// predicted classes, in the order of `predictions.csv`; for scoring
    /// against labels ([`maskforge_metrics::scenes`]).
    pub found: Vec<(String, Vec<ClassedBox>)>,
}

/// A photo with its faces and their crops, or why it could not be used.
type Detected = (PathBuf, std::result::Result<(RgbImage, Vec<Face>, Vec<RgbImage>), String>);

/// Why `--explain` refuses an ensemble ([`PredictOptions::check`]).
const EXPLAIN_ONE_MODEL: &str =
    "--explain takes one --model: an occlusion map shows what one model looks at, not an ensemble";

/// Runs prediction over `opts.photos`, finding faces on `pool`'s threads;
/// `walk_failures` (files the caller
/// could not list) go to failures.csv with the rest and count as unreadable.
/// `progress` is called once per photo, with the reason when it is skipped.
/// `opts` is checked first ([`PredictOptions::check`]).
pub fn predict_photos<F: FaceFinder>(
    opts: &PredictOptions,
    models: &Ensemble,
    finder: &F,
    walk_failures: Vec<Failure>,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(&str, Option<&str>) + Sync),
) -> Result<PredictSummary> {
    opts.check(models)?;
    std::fs::create_dir_all(&opts.out).map_err(TrainError::io(&opts.out))?;
    write_settings(opts, models)?;
    let mut csv = PredictionsCsv::create(&opts.out.join("predictions.csv"), models.classes())?;
    let mut summary =
        PredictSummary { photos: opts.photos.len(), unreadable: walk_failures.len(), ..Default::default() };
    let mut failures = walk_failures;
    for chunk in opts.photos.chunks(CHUNK) {
        // Detection on the pool; the model stays on this thread.
        let detected = pool.install(|| detect_chunk(opts, finder, chunk));
        let crops: Vec<RgbImage> =
            detected.iter().filter_map(|(_, r)| r.as_ref().ok()).flat_map(|(_, _, c)| c.iter().cloned()).collect();
        let probs = models.classify(&crops);
        if probs.len() != crops.len() {
            return Err(TrainError::Config(format!(
                "the model classified {} of {} face crops",
                probs.len(),
                crops.len()
            )));
        }
        let mut classified = crops.iter().zip(probs);
        for (path, r) in detected {
            let rel = relative_string(&opts.root, &path);
            progress(&rel, r.as_ref().err().map(String::as_str));
            match r {
                Err(reason) => {
                    summary.unreadable += 1;
                    failures.push(Failure::new(rel, reason));
                }
                Ok((img, faces, _)) => {
                    let results = write_photo(opts, models, &mut csv, &rel, img, &faces, &mut classified)?;
                    let n = results.len();
                    let boxes = results.iter().map(|r| {
                        let b = r.face.bbox.whole_face();
                        ClassedBox { bbox: [b.left, b.top, b.right, b.bottom], class: r.class }
                    });
                    summary.found.push((rel.clone(), boxes.collect()));
                    summary.faces += n;
                    if n == 0 {
                        summary.without_face += 1;
                        failures.push(Failure::new(rel, NO_FACE_REASON));
                    }
                }
            }
        }
    }
    csv.commit()?;
    // Always written, so a failures.csv of an earlier run never lingers.
    let failures_path = opts.out.join("failures.csv");
    write_failures_csv(&failures_path, &failures).map_err(TrainError::io(&failures_path))?;
    Ok(summary)
}

/// `OUT/predict_settings.json`, written before the first photo: the models
/// (checkpoint and description each), test-time augmentation, device, the
/// detector and the crop, so the outputs say how they were made.
fn write_settings(opts: &PredictOptions, models: &Ensemble) -> Result<()> {
    let mut record = models.record();
    record["maskforge_version"] = env!("CARGO_PKG_VERSION").into();
    record["detector"] = opts.detector.clone().into();
    record["crop_size"] = opts.crop_size.into();
    record["crop_margin"] = opts.crop_margin.into();
    record["explain"] =
        opts.explain.map(|(patch, stride)| serde_json::json!({"patch": patch, "stride": stride})).into();
    let path = opts.out.join(SETTINGS_FILE);
    let mut text = serde_json::to_string_pretty(&record).map_err(|e| TrainError::Config(e.to_string()))?;
    text.push('\n');
    maskforge_imageio::write_atomic(&path, text.as_bytes()).map_err(TrainError::io(&path))
}

/// The file in `OUT` that records how a `predict` run was made.
pub const SETTINGS_FILE: &str = "predict_settings.json";

/// Decodes, finds faces and cuts crops for a chunk of photos, in parallel.
fn detect_chunk<F: FaceFinder>(opts: &PredictOptions, finder: &F, chunk: &[PathBuf]) -> Vec<Detected> {
    chunk
        .par_iter()
        .map_init(
            || finder.clone(),
            |finder, path| {
                let loaded = load_rgb_budgeted(path, opts.limits, &opts.decode_budget);
                let r = loaded.map_err(|e| e.reason()).and_then(|img| {
                    let faces = finder.find(&img)?;
                    let crops = faces.iter().map(|f| crop_face(&img, f, opts.crop_size, opts.crop_margin)).collect();
                    Ok((img, faces, crops))
                });
                (path.clone(), r)
            },
        )
        .collect()
}

/// One face found and classified.
struct FaceResult {
    face: Face,
    class: usize,
    confidence: f32,
}

/// Writes the CSV rows, occlusion maps and the annotated copy of one photo;
/// returns its faces with their classes.
fn write_photo<'a>(
    opts: &PredictOptions,
    models: &Ensemble,
    csv: &mut PredictionsCsv,
    rel: &str,
    mut img: RgbImage,
    faces: &[Face],
    classified: &mut impl Iterator<Item = (&'a RgbImage, Vec<f32>)>,
) -> Result<Vec<FaceResult>> {
    let classes = models.classes();
    let mut results = Vec::with_capacity(faces.len());
    for (i, face) in faces.iter().enumerate() {
        let Some((crop, probs)) = classified.next() else {
            return Err(TrainError::Config(format!("{rel}: face {i}: the model gave no probabilities")));
        };
        let (class, confidence) =
            best(&probs, classes.len()).map_err(|m| TrainError::Config(format!("{rel}: face {i}: {m}")))?;
        csv.row(rel, i, face, &classes[class], confidence, &probs)?;
        if let (Some((patch, stride)), Some(predictor)) = (opts.explain, models.single()) {
            let s = predictor.meta.img_size;
            let heat = occlusion_map(predictor, crop, class, patch, stride);
            let side = render_heatmap(crop, &heat, s, crop.width().max(s));
            let path = output_path(&opts.out, "explain", &format!("{}_face{i}.png", strip_ext(rel)))?;
            save_rgb_atomic(&side, &path, 95).map_err(TrainError::io(&path))?;
        }
        results.push(FaceResult { face: *face, class, confidence });
    }
    annotate(&mut img, &results, classes);
    let ext = Path::new(rel).extension().and_then(|e| e.to_str()).unwrap_or("jpg").to_ascii_lowercase();
    let ext = if matches!(ext.as_str(), "png" | "jpg" | "jpeg") { ext } else { "jpg".into() };
    let path = output_path(&opts.out, "annotated", &format!("{}.{ext}", strip_ext(rel)))?;
    save_rgb_atomic(&img, &path, 92).map_err(TrainError::io(&path))?;
    Ok(results)
}

/// `OUT/FOLDER/REL`, checked like every output path: never written through
/// a symlinked folder that leads out of `OUT/FOLDER`.
fn output_path(out: &Path, folder: &str, rel: &str) -> Result<PathBuf> {
    let root = out.join(folder);
    maskforge_imageio::confined(&root, Path::new(rel)).map_err(|e| TrainError::Config(e.to_string()))
}

/// The most probable class and its probability; an error (never a silent
/// class 0) when the model gave no usable probabilities.
fn best(probs: &[f32], n_classes: usize) -> std::result::Result<(usize, f32), String> {
    if probs.len() != n_classes || probs.iter().any(|p| !p.is_finite()) {
        return Err(format!("the model gave {} probabilities for {n_classes} classes: {probs:?}", probs.len()));
    }
    Ok(probs.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, p)| if p > a.1 { (i, p) } else { a }))
}

/// `predictions.csv`: `path,face,left,top,right,bottom,detector_score,class,confidence,p_<class>...`;
/// the box is the whole face ([`maskforge_face::BBox::whole_face`]), not
/// dlib's tight one that detect's landmarks.csv holds.
struct PredictionsCsv {
    path: PathBuf,
    file: AtomicFile,
}

impl PredictionsCsv {
    fn create(path: &Path, classes: &[String]) -> Result<Self> {
        let mut file = AtomicFile::create(path).map_err(TrainError::io(path))?;
        let mut header = "path,face,left,top,right,bottom,detector_score,class,confidence".to_string();
        for c in classes {
            header.push_str(&format!(",{}", csv_field(&format!("p_{c}"))));
        }
        writeln!(file, "{header}").map_err(TrainError::io(path))?;
        Ok(PredictionsCsv { path: path.to_path_buf(), file })
    }

    fn row(&mut self, rel: &str, i: usize, face: &Face, class: &str, conf: f32, probs: &[f32]) -> Result<()> {
        let b = face.bbox.whole_face();
        let mut row = format!(
            "{},{i},{:.1},{:.1},{:.1},{:.1},{:.3},{},{conf:.6}",
            csv_field(rel),
            b.left,
            b.top,
            b.right,
            b.bottom,
            face.score,
            csv_field(class)
        );
        for v in probs {
            row.push_str(&format!(",{v:.6}"));
        }
        writeln!(self.file, "{row}").map_err(TrainError::io(&self.path))
    }

    fn commit(self) -> Result<()> {
        self.file.commit().map_err(TrainError::io(&self.path))
    }
}

fn class_color(name: &str, index: usize) -> Rgb<u8> {
    let n = name.to_ascii_lowercase();
    if n.contains("incorrect") || n.contains("improper") {
        Rgb([255, 150, 0])
    } else if n.contains("without")
        || n.contains("unmask")
        || n.contains("no_mask")
        || n.contains("nomask")
        || n.starts_with("no ")
    {
        Rgb([230, 30, 30])
    } else if n.contains("mask") {
        Rgb([20, 200, 60])
    } else {
        const PALETTE: [Rgb<u8>; 6] = [
            Rgb([31, 119, 180]),
            Rgb([255, 127, 14]),
            Rgb([44, 160, 44]),
            Rgb([214, 39, 40]),
            Rgb([148, 103, 189]),
            Rgb([140, 86, 75]),
        ];
        PALETTE[index % PALETTE.len()]
    }
}

/// Draws each face's box and a `class confidence` label above it.
fn annotate(img: &mut RgbImage, faces: &[FaceResult], classes: &[String]) {
    let scale = (img.width().max(img.height()) / 500).clamp(1, 6);
    let thickness = scale as i32 + 1;
    for f in faces {
        let name = classes.get(f.class).map(String::as_str).unwrap_or("?");
        let color = class_color(name, f.class);
        let b = f.face.bbox.whole_face();
        for t in 0..thickness {
            let (x, y) = (b.left as i32 - t, b.top as i32 - t);
            let (w, h) = ((b.width() as i32 + 2 * t).max(1) as u32, (b.height() as i32 + 2 * t).max(1) as u32);
            draw_hollow_rect_mut(img, Rect::at(x, y).of_size(w, h), color);
        }
        let label = format!("{name} {:.2}", f.confidence);
        let size = 12.0 * scale as f32;
        let (text_w, text_h) = maskforge_draw::text_size(&label, size);
        let (tw, th) = (text_w + 2 * scale, text_h + 2 * scale);
        let above = b.top as i32 - th as i32 - thickness;
        let ty = if above >= 0 { above } else { b.bottom as i32 + thickness };
        let tx = (b.left as i32 - thickness).max(0);
        draw_filled_rect_mut(img, Rect::at(tx, ty).of_size(tw, th), color);
        maskforge_draw::draw_text(img, tx + scale as i32, ty + scale as i32, size, Rgb([255, 255, 255]), &label);
    }
}

/// `dir/photo.jpg` → `dir/photo` (a dot in a folder name is not an extension).
fn strip_ext(rel: &str) -> String {
    let p = Path::new(rel);
    match (p.parent(), p.file_stem()) {
        (Some(parent), Some(stem)) if !parent.as_os_str().is_empty() => {
            format!("{}/{}", parent.to_string_lossy(), stem.to_string_lossy())
        }
        (_, Some(stem)) => stem.to_string_lossy().into_owned(),
        _ => rel.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictor::untrained;

    #[test]
    fn best_refuses_unusable_probabilities() {
        assert_eq!(best(&[0.2, 0.7, 0.1], 3), Ok((1, 0.7)));
        assert!(best(&[], 3).is_err());
        assert!(best(&[0.5, f32::NAN], 2).is_err());
        assert!(best(&[0.5, 0.5, 0.0], 2).is_err());
    }

    #[test]
    fn names_and_fields() {
        assert_eq!(strip_ext("a/b.c/photo.jpg"), "a/b.c/photo");
        assert_eq!(strip_ext("photo"), "photo");
        assert_eq!(strip_ext("dir.x/photo"), "dir.x/photo");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn options_are_checked() {
        let opts = PredictOptions {
            root: PathBuf::new(),
            photos: Vec::new(),
            out: PathBuf::new(),
            crop_size: 224,
            crop_margin: 0.2,
            explain: Some((32, 16)),
            limits: LoadLimits::default(),
            decode_budget: DecodeBudget::new(1 << 30),
            detector: "centerface".into(),
        };
        let one = Ensemble::new(vec![untrained(&["a", "b"], 1, 224)]).unwrap();
        assert!(opts.check(&one).is_ok());
        assert!(PredictOptions { crop_size: 100_000, ..opts.clone() }.check(&one).is_err());
        assert!(PredictOptions { crop_margin: f32::NAN, ..opts.clone() }.check(&one).is_err());
        assert!(PredictOptions { explain: Some((0, 1)), ..opts.clone() }.check(&one).is_err());
        assert!(PredictOptions { explain: Some((300, 1)), ..opts.clone() }.check(&one).is_err());
        // Occlusion maps are of one model: an ensemble refuses them.
        let two = Ensemble::new(vec![untrained(&["a", "b"], 1, 224), untrained(&["a", "b"], 2, 224)]).unwrap();
        let err = opts.check(&two).unwrap_err().to_string();
        assert!(err.contains("--explain takes one --model"), "{err}");
        assert!(PredictOptions { explain: None, ..opts }.check(&two).is_ok());
    }
}
