//! Throughput of the mask stage, split by step.
//!
//! ```text
//! cargo run --release -p maskforge --no-default-features --features dlib --example bench_mask -- \
//!     --samples data/samples --models models --work /tmp/bench_mask [--passes 3] [--threads N]
//! ```
//!
//! Three sets are built from the sample photos in WORK: the photos at their
//! own size, 1024×1024 face-centred squares (FFHQ-like) and ~250 px face crops
//! (RMFD-like), all JPEG q95. For each set: images/s on one thread with the
//! share of time in decode, detection, landmarks, warp+blend and encode; then
//! images/s on all threads; then the JPEG decode+encode-only rate (the floor
//! the stage is measured against) and a baseline proxy: dlib HOG detection on
//! the full-size image with one upsampling, single-threaded, which is how the
//! Python MaskTheFace tool detects faces (its cost is a lower bound of that
//! tool's per-image time). Files are read into memory first: disk speed is
//! not measured.

use image::RgbImage;
use maskforge_face::Face;
use maskforge_imageio::{encode_image, load_rgb_from_bytes, LoadLimits};
use maskforge_landmarks::{to_matrix, Detector, DetectorConfig};
use maskforge_mask::{MaskVariant, SplitMix64, Synthesizer, TemplateSet};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Named sets of `(file name, encoded bytes)`.
type Sets<'a> = Vec<(&'a str, Vec<(String, Vec<u8>)>)>;

#[derive(Default, Clone, Copy)]
struct Times {
    decode: Duration,
    detect: Duration,
    landmarks: Duration,
    warp: Duration,
    encode: Duration,
    faces: usize,
}

impl Times {
    fn total(&self) -> Duration {
        self.decode + self.detect + self.landmarks + self.warp + self.encode
    }
    fn add(&mut self, o: &Times) {
        self.decode += o.decode;
        self.detect += o.detect;
        self.landmarks += o.landmarks;
        self.warp += o.warp;
        self.encode += o.encode;
        self.faces += o.faces;
    }
}

fn one_image(det: &mut Detector, synth: &Synthesizer, name: &str, bytes: &[u8]) -> Times {
    let mut t = Times::default();
    let s = Instant::now();
    let Ok(img) = load_rgb_from_bytes(Path::new(name), bytes, LoadLimits::default()) else { return t };
    t.decode = s.elapsed();
    let s = Instant::now();
    let boxes = det.detect_boxes(&img).unwrap_or_default();
    t.detect = s.elapsed();
    let s = Instant::now();
    let full = to_matrix(&img);
    let faces: Vec<Face> =
        boxes.iter().filter_map(|(b, sc)| Some(Face { bbox: *b, score: *sc, landmarks: det.landmarks(&full, b).ok()? })).collect();
    t.landmarks = s.elapsed();
    t.faces = faces.len();
    let s = Instant::now();
    let mut out = img.clone();
    for (i, f) in faces.iter().enumerate() {
        let mut rng = SplitMix64::for_face(0, name, i);
        if let Ok(style) = synth.choose_style(&mut rng) {
            let _ = synth.apply(&mut out, &f.landmarks, MaskVariant::Correct, &style, &mut rng.fork("correct"), None);
        }
    }
    t.warp = s.elapsed();
    let s = Instant::now();
    let enc = encode_image(&out, Path::new("x.jpg"), 95).unwrap_or_default();
    std::hint::black_box(enc);
    t.encode = s.elapsed();
    t
}

fn face_square(img: &RgbImage, det: &mut Detector, grow: f32, size: u32) -> Option<RgbImage> {
    let faces = det.detect(img).ok()?;
    let f = faces.first()?;
    let c = f.bbox.center();
    let side = f.bbox.width().max(f.bbox.height()) * grow;
    let face = Face { bbox: maskforge_face::BBox::new(c.x - side / 2.0, c.y - side / 2.0, c.x + side / 2.0, c.y + side / 2.0), ..*f };
    Some(maskforge_face::crop::crop_face(img, &face, size, 0.0))
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
    std::fs::create_dir_all(&work)?;
    let cfg = DetectorConfig::new(&models);
    let mut det = Detector::new(&cfg)?;
    let synth = Synthesizer::new(TemplateSet::builtin()?)?;
    for t in synth.templates.templates() {
        t.rendered()?;
    }

    // Build the three sets.
    let mut originals = Vec::new();
    for e in std::fs::read_dir(&samples)? {
        let p = e?.path();
        if maskforge_imageio::is_image_path(&p) {
            originals.push(p);
        }
    }
    originals.sort();
    let mut sets: Sets = vec![("photos", vec![]), ("1024x1024", vec![]), ("250px crops", vec![])];
    for p in &originals {
        let bytes = std::fs::read(p)?;
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Ok(img) = load_rgb_from_bytes(p, &bytes, LoadLimits::default()) else { continue };
        sets[0].1.push((name.clone(), bytes));
        for (k, grow, size) in [(1usize, 2.0f32, 1024u32), (2, 1.5, 250)] {
            if let Some(sq) = face_square(&img, &mut det, grow, size) {
                let b = encode_image(&sq, Path::new("x.jpg"), 95)?;
                std::fs::write(work.join(format!("{}_{}.jpg", size, name.trim_end_matches(".jpg").trim_end_matches(".png"))), &b)?;
                sets[k].1.push((format!("{size}_{name}"), b));
            }
        }
    }
    let n_threads = if threads > 0 { threads } else { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n_threads).build()?;
    println!("bench_mask: {} sample photos, {passes} passes, {n_threads} threads for the parallel run", originals.len());
    println!("{:<12} {:>7} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>9} {:>10}", "set", "faces", "img/s 1t", format!("img/s {n_threads}t"), "dec%", "det%", "lmk%", "warp%", "enc%", "dec+enc/s", "baseline/s");
    for (name, set) in &sets {
        if set.is_empty() {
            continue;
        }
        // Warm-up (template rasters, caches), then one thread.
        one_image(&mut det, &synth, &set[0].0, &set[0].1);
        let mut t = Times::default();
        let start = Instant::now();
        for _ in 0..passes {
            for (n, b) in set {
                t.add(&one_image(&mut det, &synth, n, b));
            }
        }
        let single = (passes * set.len()) as f64 / start.elapsed().as_secs_f64();
        // All threads.
        let jobs: Vec<&(String, Vec<u8>)> = (0..passes.max(n_threads)).flat_map(|_| set.iter()).collect();
        let start = Instant::now();
        pool.install(|| {
            jobs.par_iter().for_each_init(|| det.clone(), |d, (n, b)| {
                std::hint::black_box(one_image(d, &synth, n, b));
            })
        });
        let multi = jobs.len() as f64 / start.elapsed().as_secs_f64();
        // Decode + encode only.
        let start = Instant::now();
        for _ in 0..passes {
            for (n, b) in set {
                if let Ok(img) = load_rgb_from_bytes(Path::new(n), b, LoadLimits::default()) {
                    std::hint::black_box(encode_image(&img, Path::new("x.jpg"), 95).unwrap_or_default());
                }
            }
        }
        let codec = (passes * set.len()) as f64 / start.elapsed().as_secs_f64();
        // Baseline proxy: HOG on the full image, upsampled once, one thread.
        let mut base_cfg = DetectorConfig::new(&models);
        base_cfg.detect_max_side = None;
        base_cfg.upsample = 1;
        let mut base = Detector::new(&base_cfg)?;
        let start = Instant::now();
        for (n, b) in set.iter().take(4) {
            if let Ok(img) = load_rgb_from_bytes(Path::new(n), b, LoadLimits::default()) {
                let _ = std::hint::black_box(base.detect_boxes(&img));
            }
        }
        let baseline = set.len().min(4) as f64 / start.elapsed().as_secs_f64();
        let tot = t.total().as_secs_f64().max(1e-12);
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / tot;
        println!(
            "{:<12} {:>7} {:>9.1} {:>9.1} | {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>9.1} {:>10.2}",
            name,
            t.faces / passes,
            single,
            multi,
            pct(t.decode),
            pct(t.detect),
            pct(t.landmarks),
            pct(t.warp),
            pct(t.encode),
            codec,
            baseline
        );
    }
    Ok(())
}
