//! Throughput of the mask stage, split by step, timing the code that ships:
//! every image goes through `maskforge_pipeline::Pipeline::process`, as in
//! `maskforge mask`, with the face source `mask` would use for each setting.
//!
//! ```text
//! cargo run --release -p maskforge --no-default-features --features dlib --example bench_mask -- \
//!     --samples data/samples --models models --work /tmp/bench_mask [--passes 3] [--threads N]
//! ```
//!
//! Sets built from the sample photos in WORK/sets, JPEG q95 in and out: the
//! photos at their own size, 1024×1024 face-centred squares (FFHQ-like),
//! ~250 px and ~120 px face crops (RMFD-like: the face box plus 25% margin);
//! and the same 1024² squares as PNG, masked PNG in → PNG out (`--format
//! same`, FFHQ's own format). Each row is one way of finding faces on one
//! set:
//!
//! * `hog auto`: the default, detection on the copy `--min-face` asks for
//!   (40 px: full size); `hog 640`: the old fixed 640 px copy;
//!   `hog min200`: `--min-face 200` (FFHQ's faces are larger), a 0.4 copy;
//! * `landmarks`: faces read from a landmarks file (`--landmarks`), no dlib;
//! * `crop`: `--faces crop`, the crop fit without a detector;
//! * `cnn`: the CNN detector, with OpenBLAS threads shared out among the
//!   workers as `mask` does, and `cnn blas=all`, every worker's matrix
//!   products on all cores (what `mask` did before).
//!
//! Columns: faces masked per pass, images/s on one thread and on all, the
//! share of one-thread time in decode, detection, landmarks (or the crop
//! fit), mask drawing and writing, and the decode+encode rate of the set's format (the
//! floor). The `vs MTF` column divides the all-threads rate by what the
//! real MaskTheFace managed on the same kind of photos and machine (2
//! cores, one process): 1.9 images/s on face-centred 1024² photos and 23.6
//! on ~120 px crops (where it finds a face in 51% of them).

use image::RgbImage;
use maskforge_contracts::{FaceEntry, FaceFile, FaceFileFormat};
use maskforge_face::Face;
use maskforge_imageio::{encode_image, load_rgb_from_bytes, DecodeBudget, LoadLimits};
use maskforge_landmarks::mask_faces::{DetectorFaces, FacesMode, MaskFaces};
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use maskforge_pipeline::{
    build_synthesizer, FaceFilter, FileFaces, MaskOptions, OutputFormat, Pipeline, StepTimes, SynthOptions,
    UnmaskedMode, VariantMode,
};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A named set of images on disk: `(file, name)`.
type Set = (&'static str, Vec<(PathBuf, String)>);

/// MaskTheFace's own rate on a set, where it was measured (images/s).
fn mtf_rate(set: &str) -> Option<f64> {
    match set {
        "1024x1024" | "1024 png" => Some(1.9),
        "120px crops" => Some(23.6),
        _ => None,
    }
}

/// `mask`'s face source on `det`, finding faces as `--faces mode` does.
fn dlib(det: Detector, mode: FacesMode) -> MaskFaces {
    MaskFaces::Detector(Box::new(DetectorFaces::new(det, mode)))
}

/// Time `source` has spent finding boxes (the rest of its time is landmarks or the crop fit).
fn detect_time(source: &MaskFaces) -> Duration {
    match source {
        MaskFaces::Detector(d) => d.detect_time(),
        MaskFaces::File(_) => Duration::ZERO,
    }
}

/// Sets whose images are PNG, masked into PNG (`--format same`).
fn is_png_set(set: &str) -> bool {
    set.ends_with("png")
}

/// The pipeline as `maskforge mask --variants correct --format jpg|same --min-face M` runs it.
fn pipeline(out: &Path, min_face: u32, format: OutputFormat) -> Result<Pipeline, Box<dyn std::error::Error>> {
    let synth =
        SynthOptions { colour: "palette".into(), texture: "default".into(), lighting: 1.0, ..Default::default() };
    let opts = MaskOptions {
        out: out.to_path_buf(),
        seg_dir: None,
        variants: maskforge_pipeline::parse_variants("correct")?,
        mode: VariantMode::Each,
        draws: 1,
        framings: 1,
        class_map: Default::default(),
        unmasked: UnmaskedMode::None,
        crop_size: 0,
        crop_margin: 0.2,
        format,
        quality: 95,
        seed: 0,
        faces: FaceFilter { min_face, largest_only: false },
        limits: LoadLimits::default(),
        decode_budget: DecodeBudget::from_available_memory(),
        write: true,
        labels: Vec::new(),
        bare_faces: None,
    };
    Ok(Pipeline::new(opts, build_synthesizer(&synth)?, HashSet::new())?)
}

fn face_square(img: &RgbImage, det: &mut Detector, grow: f32, size: u32) -> Option<RgbImage> {
    let faces = det.detect(img).ok()?;
    let f = faces.first()?;
    let c = f.bbox.center();
    let side = f.bbox.width().max(f.bbox.height()) * grow;
    let half = side / 2.0;
    let face = Face { bbox: maskforge_face::BBox::new(c.x - half, c.y - half, c.x + half, c.y + half), ..*f };
    Some(maskforge_face::crop::crop_face(img, &face, size, 0.0))
}

/// Writes the sets under `WORK/sets`.
fn build_sets(
    samples: &Path,
    work: &Path,
    det: &mut Detector,
) -> Result<(usize, Vec<Set>), Box<dyn std::error::Error>> {
    let mut originals = Vec::new();
    for e in std::fs::read_dir(samples)? {
        let p = e?.path();
        if maskforge_imageio::is_image_path(&p) {
            originals.push(p);
        }
    }
    originals.sort();
    let mut sets: Vec<Set> = vec![
        ("photos", vec![]),
        ("1024x1024", vec![]),
        ("1024 png", vec![]),
        ("250px crops", vec![]),
        ("120px crops", vec![]),
    ];
    let dirs: Vec<PathBuf> =
        ["photos", "1024", "1024png", "250", "120"].iter().map(|d| work.join("sets").join(d)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    for p in &originals {
        let bytes = std::fs::read(p)?;
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Ok(img) = load_rgb_from_bytes(p, &bytes, LoadLimits::default()) else { continue };
        std::fs::write(dirs[0].join(&name), &bytes)?;
        sets[0].1.push((dirs[0].join(&name), name.clone()));
        for (k, grow, size) in [(1usize, 2.0f32, 1024u32), (3, 1.5, 250), (4, 1.5, 120)] {
            if let Some(sq) = face_square(&img, det, grow, size) {
                let stem = format!("{size}_{}", name.trim_end_matches(".jpg").trim_end_matches(".png"));
                let mut write = |k: usize, ext: &str| -> Result<(), Box<dyn std::error::Error>> {
                    let file = format!("{stem}.{ext}");
                    std::fs::write(dirs[k].join(&file), encode_image(&sq, Path::new(&file), 95)?)?;
                    sets[k].1.push((dirs[k].join(&file), file));
                    Ok(())
                };
                write(k, "jpg")?;
                if size == 1024 {
                    write(2, "png")?;
                }
            }
        }
    }
    Ok((originals.len(), sets))
}

/// Shortest timed run: small sets are repeated until a run lasts this long,
/// so that the rates of 120 px crops are not timer noise.
const MIN_RUN: Duration = Duration::from_secs(2);

/// One thread, at least `passes` times over the set and at least
/// [`MIN_RUN`]: images/s, step times, faces per pass.
fn single_thread(
    p: &Pipeline,
    source: &mut MaskFaces,
    set: &[(PathBuf, String)],
    passes: usize,
) -> Result<(f64, StepTimes, usize), Box<dyn std::error::Error>> {
    let mut times = StepTimes::default();
    let mut faces = 0;
    let mut done = 0;
    let start = Instant::now();
    while done < passes || start.elapsed() < MIN_RUN {
        for (path, rel) in set {
            let o = p.process(source, path, rel)?;
            times.add(&o.times);
            faces += o.record.faces;
        }
        done += 1;
    }
    Ok(((done * set.len()) as f64 / start.elapsed().as_secs_f64(), times, faces / done))
}

/// Decode + encode only (into the set's own format), one thread: the floor
/// of any per-image stage.
fn codec_rate(set: &[(PathBuf, String)], passes: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let bytes: Vec<(&Path, Vec<u8>)> =
        set.iter().map(|(p, _)| Ok((p.as_path(), std::fs::read(p)?))).collect::<std::io::Result<_>>()?;
    let start = Instant::now();
    for _ in 0..passes {
        for (p, b) in &bytes {
            if let Ok(img) = load_rgb_from_bytes(p, b, LoadLimits::default()) {
                std::hint::black_box(encode_image(&img, p, 95).unwrap_or_default());
            }
        }
    }
    Ok((passes * bytes.len()) as f64 / start.elapsed().as_secs_f64())
}

/// The faces of a set as a landmarks file would give them (found by HOG at full size).
fn file_faces(det: &mut Detector, set: &[(PathBuf, String)]) -> Result<FileFaces, Box<dyn std::error::Error>> {
    let mut faces = Vec::new();
    for (path, rel) in set {
        let img = maskforge_imageio::load_rgb(path, LoadLimits::default())?;
        for (k, face) in det.detect(&img)?.into_iter().enumerate() {
            faces.push(FaceEntry { location: format!("bench:{rel}:{k}"), paths: vec![rel.clone()], face });
        }
    }
    let file = FaceFile { format: FaceFileFormat::Detect, sha256: String::new(), faces, problems: Vec::new() };
    let names: HashSet<String> = set.iter().map(|(_, rel)| rel.clone()).collect();
    Ok(FileFaces::new(&file, "bench", &names).0)
}

/// One row: a way of finding faces on a set.
struct Row {
    name: &'static str,
    faces: MaskFaces,
    min_face: u32,
    /// OpenBLAS threads per worker: shared out (as `mask` does) or all cores.
    blas_all_cores: bool,
}

fn rows(
    models: &Path,
    set: &str,
    det: &mut Detector,
    files: &[(PathBuf, String)],
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let hog = |max_side: Option<u32>, min_face: u32| -> Result<MaskFaces, Box<dyn std::error::Error>> {
        let mut cfg = DetectorConfig::new(models);
        cfg.detect_max_side = max_side;
        cfg.min_face = min_face;
        Ok(dlib(Detector::new(&cfg)?, FacesMode::Detect))
    };
    let row = |name, faces, min_face| Row { name, faces, min_face, blas_all_cores: false };
    // 80: the CLI's default --min-face for HOG (its window, at full size).
    let mut rows = vec![row("hog auto", hog(None, 80)?, 80)];
    match set {
        "photos" => rows.push(row("hog 640", hog(Some(640), 80)?, 80)),
        "1024x1024" => {
            rows.push(row("hog 640", hog(Some(640), 80)?, 80));
            rows.push(row("hog min200", hog(None, 200)?, 200));
            rows.push(row("landmarks", MaskFaces::File(file_faces(det, files)?), 40));
        }
        "1024 png" => {
            rows.push(row("hog min200", hog(None, 200)?, 200));
            rows.push(row("landmarks", MaskFaces::File(file_faces(det, files)?), 40));
        }
        _ => {
            rows.push(row("crop", dlib(Detector::new(&DetectorConfig::new(models))?, FacesMode::Crop), 40));
            let mut cfg = DetectorConfig::new(models);
            cfg.kind = DetectorKind::Cnn;
            rows.push(row("cnn", dlib(Detector::new(&cfg)?, FacesMode::Detect), 40));
            let cnn = dlib(Detector::new(&cfg)?, FacesMode::Detect);
            rows.push(Row { blas_all_cores: true, ..row("cnn blas=all", cnn, 40) });
        }
    }
    Ok(rows)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut samples = PathBuf::from("data/samples");
    let mut models = PathBuf::from("models");
    let mut work = std::env::temp_dir().join("bench_mask");
    let mut passes = 3usize;
    let mut threads = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--samples" => samples = val()?.into(),
            "--models" => models = val()?.into(),
            "--work" => work = val()?.into(),
            "--passes" => passes = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut det = Detector::new(&DetectorConfig::new(&models))?;
    let (n_originals, sets) = build_sets(&samples, &work, &mut det)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let n_threads = if threads > 0 { threads } else { cores };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n_threads).build()?;
    println!("bench_mask: {n_originals} sample photos, {passes} passes, {n_threads} threads for the parallel run");
    println!(
        "{:<12} {:<13} {:>5} {:>8} {:>8} | {:>5} {:>5} {:>5} {:>5} {:>5} | {:>9} {:>7}",
        "set",
        "faces by",
        "faces",
        "img/s 1t",
        format!("img/s {n_threads}t"),
        "dec%",
        "det%",
        "lmk%",
        "mask%",
        "wrt%",
        "dec+enc/s",
        "vs MTF"
    );
    for (k, (name, set)) in sets.iter().enumerate() {
        if set.is_empty() {
            continue;
        }
        let codec = codec_rate(set, passes)?;
        for (r, row) in rows(&models, name, &mut det, set)?.into_iter().enumerate() {
            let format = if is_png_set(name) { OutputFormat::Same } else { OutputFormat::Jpg };
            let p = pipeline(&work.join("out").join(format!("{k}-{r}")), row.min_face, format)?;
            // One thread: OpenBLAS may use every core, as a one-job run does.
            maskforge_landmarks::share_cores_with_workers(1);
            // Warm-up (template rasters, page cache), then one thread.
            let mut source = row.faces;
            single_thread(&p, &mut source, set, 1)?;
            let warm = detect_time(&source);
            let (single, t, faces) = single_thread(&p, &mut source, set, passes)?;
            let detect = detect_time(&source) - warm;
            // All threads: one source per worker, as in `maskforge mask`.
            maskforge_landmarks::share_cores_with_workers(if row.blas_all_cores { 1 } else { n_threads });
            // Enough passes for MIN_RUN at the rate all threads should reach.
            let expected = single * n_threads as f64 * MIN_RUN.as_secs_f64() / set.len() as f64;
            let rounds = passes.max(n_threads).max(expected.ceil() as usize);
            let jobs: Vec<&(PathBuf, String)> = (0..rounds).flat_map(|_| set.iter()).collect();
            let start = Instant::now();
            pool.install(|| {
                jobs.par_iter()
                    .map_init(|| source.clone(), |s, (path, rel)| p.process(s, path, rel).map(|_| ()))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            let multi = jobs.len() as f64 / start.elapsed().as_secs_f64();
            let tot = t.total().as_secs_f64().max(1e-12);
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / tot;
            let vs = mtf_rate(name).map(|m| format!("{:.1}x", multi / m)).unwrap_or_default();
            println!(
                "{:<12} {:<13} {:>5} {:>8.1} {:>8.1} | {:>5.1} {:>5.1} {:>5.1} {:>5.1} {:>5.1} | {:>9.1} {:>7}",
                name,
                row.name,
                faces,
                single,
                multi,
                pct(t.decode),
                pct(detect),
                pct(t.faces.saturating_sub(detect)),
                pct(t.masks),
                pct(t.write),
                codec,
                vs
            );
        }
    }
    Ok(())
}
