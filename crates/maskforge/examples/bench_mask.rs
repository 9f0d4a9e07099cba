//! Throughput of the mask stage, split by step, timing the code that ships:
//! every image goes through `maskforge_pipeline::Pipeline::process`, as in
//! `maskforge mask`, with the dlib detector as its face source.
//!
//! ```text
//! cargo run --release -p maskforge --no-default-features --features dlib --example bench_mask -- \
//!     --samples data/samples --models models --work /tmp/bench_mask [--passes 3] [--threads N]
//! ```
//!
//! Three sets are built from the sample photos in WORK/sets: the photos at
//! their own size, 1024×1024 face-centred squares (FFHQ-like) and ~250 px
//! face crops (RMFD-like), all JPEG q95. For each set: images/s on one
//! thread with the share of time in decode, detection, landmarks, mask
//! drawing (placement, warp, blend) and writing (encode + write to
//! WORK/out); then images/s on all threads; then the JPEG decode+encode-only
//! rate (the floor the stage is measured against) and a baseline proxy: dlib
//! HOG detection on the full-size image with one upsampling, single-threaded,
//! which is how the Python MaskTheFace tool detects faces (its cost is a
//! lower bound of that tool's per-image time). Inputs are read once before
//! timing, so they come from the page cache: disk speed is hardly measured.

use image::RgbImage;
use maskforge_face::Face;
use maskforge_imageio::{encode_image, load_rgb_from_bytes, LoadLimits};
use maskforge_landmarks::{Detector, DetectorConfig};
use maskforge_pipeline::{
    build_synthesizer, FaceFilter, FaceSource, FoundFaces, MaskOptions, OutputFormat, Pipeline, StepTimes,
    SynthOptions, UnmaskedMode, VariantMode,
};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A named set of images on disk: `(file, name)`.
type Set = (&'static str, Vec<(PathBuf, String)>);

/// The binary's dlib face source (`cmd/mask.rs`), with a clock on each of its two steps.
#[derive(Clone)]
struct TimedDlibFaces {
    det: Detector,
    detect: Duration,
    landmarks: Duration,
}

impl FaceSource for TimedDlibFaces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        _path: &Path,
        _rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        let s = Instant::now();
        let boxes = self.det.detect_boxes(image).map_err(|e| e.to_string());
        self.detect += s.elapsed();
        let selected = filter.select(boxes?);
        let s = Instant::now();
        let faces = self.det.faces_in_boxes(image, selected.kept).map_err(|e| e.to_string())?;
        self.landmarks += s.elapsed();
        Ok(FoundFaces { faces, small: selected.small, found: selected.found })
    }
}

/// The pipeline as `maskforge mask --variants correct --format jpg` runs it.
fn pipeline(out: &Path) -> Result<Pipeline, Box<dyn std::error::Error>> {
    let synth =
        SynthOptions { colour: "palette".into(), texture: "default".into(), lighting: 1.0, ..Default::default() };
    let opts = MaskOptions {
        out: out.to_path_buf(),
        seg_dir: None,
        variants: maskforge_pipeline::parse_variants("correct")?,
        mode: VariantMode::Each,
        class_map: Default::default(),
        unmasked: UnmaskedMode::None,
        crop_size: 0,
        crop_margin: 0.2,
        format: OutputFormat::Jpg,
        quality: 95,
        seed: 0,
        faces: FaceFilter { min_face: 40, largest_only: false },
        limits: LoadLimits::default(),
        write: true,
        labels: Vec::new(),
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

/// Writes the three sets under `WORK/sets`.
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
    let mut sets: Vec<Set> = vec![("photos", vec![]), ("1024x1024", vec![]), ("250px crops", vec![])];
    let dirs: Vec<PathBuf> = ["photos", "1024", "250"].iter().map(|d| work.join("sets").join(d)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    for p in &originals {
        let bytes = std::fs::read(p)?;
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Ok(img) = load_rgb_from_bytes(p, &bytes, LoadLimits::default()) else { continue };
        std::fs::write(dirs[0].join(&name), &bytes)?;
        sets[0].1.push((dirs[0].join(&name), name.clone()));
        for (k, grow, size) in [(1usize, 2.0f32, 1024u32), (2, 1.5, 250)] {
            if let Some(sq) = face_square(&img, det, grow, size) {
                let file = format!("{size}_{}.jpg", name.trim_end_matches(".jpg").trim_end_matches(".png"));
                std::fs::write(dirs[k].join(&file), encode_image(&sq, Path::new("x.jpg"), 95)?)?;
                sets[k].1.push((dirs[k].join(&file), file));
            }
        }
    }
    Ok((originals.len(), sets))
}

/// One thread, `passes` times over the set: images/s, step times, faces per pass.
fn single_thread(
    p: &Pipeline,
    source: &mut TimedDlibFaces,
    set: &[(PathBuf, String)],
    passes: usize,
) -> Result<(f64, StepTimes, usize), Box<dyn std::error::Error>> {
    let mut times = StepTimes::default();
    let mut faces = 0;
    let start = Instant::now();
    for _ in 0..passes {
        for (path, rel) in set {
            let o = p.process(source, path, rel)?;
            times.add(&o.times);
            faces += o.record.faces;
        }
    }
    Ok(((passes * set.len()) as f64 / start.elapsed().as_secs_f64(), times, faces / passes.max(1)))
}

/// Decode + encode only, one thread: the floor of any per-image stage.
fn codec_rate(set: &[(PathBuf, String)], passes: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let bytes: Vec<(&Path, Vec<u8>)> =
        set.iter().map(|(p, _)| Ok((p.as_path(), std::fs::read(p)?))).collect::<std::io::Result<_>>()?;
    let start = Instant::now();
    for _ in 0..passes {
        for (p, b) in &bytes {
            if let Ok(img) = load_rgb_from_bytes(p, b, LoadLimits::default()) {
                std::hint::black_box(encode_image(&img, Path::new("x.jpg"), 95).unwrap_or_default());
            }
        }
    }
    Ok((passes * bytes.len()) as f64 / start.elapsed().as_secs_f64())
}

/// MaskTheFace's detection proxy: HOG on the full image, upsampled once, one thread.
fn baseline_rate(models: &Path, set: &[(PathBuf, String)]) -> Result<f64, Box<dyn std::error::Error>> {
    let mut cfg = DetectorConfig::new(models);
    cfg.detect_max_side = None;
    cfg.upsample = 1;
    let mut base = Detector::new(&cfg)?;
    let images: Vec<RgbImage> =
        set.iter().take(4).filter_map(|(p, _)| maskforge_imageio::load_rgb(p, LoadLimits::default()).ok()).collect();
    let start = Instant::now();
    for img in &images {
        let _ = std::hint::black_box(base.detect_boxes(img));
    }
    Ok(images.len() as f64 / start.elapsed().as_secs_f64())
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
    let det = Detector::new(&DetectorConfig::new(&models))?;
    let (n_originals, sets) = build_sets(&samples, &work, &mut det.clone())?;
    let n_threads =
        if threads > 0 { threads } else { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n_threads).build()?;
    println!("bench_mask: {n_originals} sample photos, {passes} passes, {n_threads} threads for the parallel run");
    println!(
        "{:<12} {:>7} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>9} {:>10}",
        "set",
        "faces",
        "img/s 1t",
        format!("img/s {n_threads}t"),
        "dec%",
        "det%",
        "lmk%",
        "mask%",
        "wrt%",
        "dec+enc/s",
        "baseline/s"
    );
    for (k, (name, set)) in sets.iter().enumerate() {
        if set.is_empty() {
            continue;
        }
        let p = pipeline(&work.join("out").join(k.to_string()))?;
        // Warm-up (template rasters, page cache), then one thread.
        let mut source = TimedDlibFaces { det: det.clone(), detect: Duration::ZERO, landmarks: Duration::ZERO };
        single_thread(&p, &mut source, set, 1)?;
        let mut source = TimedDlibFaces { detect: Duration::ZERO, landmarks: Duration::ZERO, ..source };
        let (single, t, faces) = single_thread(&p, &mut source, set, passes)?;
        // All threads: one source per worker, as in `maskforge mask`.
        let jobs: Vec<&(PathBuf, String)> = (0..passes.max(n_threads)).flat_map(|_| set.iter()).collect();
        let start = Instant::now();
        pool.install(|| {
            jobs.par_iter()
                .map_init(|| source.clone(), |s, (path, rel)| p.process(s, path, rel).map(|_| ()))
                .collect::<Result<Vec<_>, _>>()
        })?;
        let multi = jobs.len() as f64 / start.elapsed().as_secs_f64();
        let tot = t.total().as_secs_f64().max(1e-12);
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / tot;
        // The source's own clocks split the pipeline's face time into its two steps.
        let (det_pct, lmk_pct) = (pct(source.detect), pct(source.landmarks));
        println!(
            "{:<12} {:>7} {:>9.1} {:>9.1} | {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>9.1} {:>10.2}",
            name,
            faces,
            single,
            multi,
            pct(t.decode),
            det_pct,
            lmk_pct,
            pct(t.masks),
            pct(t.write),
            codec_rate(set, passes)?,
            baseline_rate(&models, set)?
        );
    }
    Ok(())
}
