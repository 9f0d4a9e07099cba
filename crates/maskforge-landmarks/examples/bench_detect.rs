//! `cargo xtask bench detect`: images/s of face detection + 68 landmarks on
//! the sample photos, at their own size and resized to 1024×1024 (FFHQ's
//! size), HOG at full size vs on a copy downscaled to 640 px, with 1 thread
//! and all threads. Decoding is done up front and not timed.
//!
//! Usage: bench_detect --samples DIR --models DIR [--rounds N]

use maskforge_landmarks::{Detector, DetectorConfig};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let samples = PathBuf::from(arg("--samples").unwrap_or_else(|| "data/samples".into()));
    let models = PathBuf::from(arg("--models").unwrap_or_else(|| "models".into()));
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(3);

    let walk = maskforge_imageio::walk_images(&samples, &[]);
    let originals: Vec<image::RgbImage> =
        walk.images.iter().filter_map(|p| maskforge_imageio::load_rgb(p, Default::default()).ok()).collect();
    if originals.is_empty() {
        eprintln!("no sample photos in {}: run `cargo xtask setup`", samples.display());
        std::process::exit(1);
    }
    // FFHQ-like framing: a square of 2.2x the face box around the face, at 1024x1024.
    let mut finder = Detector::new(&DetectorConfig::new(&models)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let ffhq: Vec<image::RgbImage> = originals
        .iter()
        .filter_map(|im| {
            let face = finder.detect(im).ok()?.into_iter().next()?;
            let c = face.bbox.center();
            let side = (face.bbox.width().max(face.bbox.height()) * 2.2).min(im.width().min(im.height()) as f32) as u32;
            let x = (c.x - side as f32 / 2.0).clamp(0.0, (im.width() - side) as f32) as u32;
            let y = (c.y - side as f32 / 2.0).clamp(0.0, (im.height() - side) as f32) as u32;
            let sq = image::imageops::crop_imm(im, x, y, side, side).to_image();
            Some(image::imageops::resize(&sq, 1024, 1024, image::imageops::FilterType::Triangle))
        })
        .collect();
    let mean_mp = originals.iter().map(|i| (i.width() * i.height()) as f64).sum::<f64>() / originals.len() as f64 / 1e6;
    let all = rayon::current_num_threads();
    println!(
        "detect benchmark: {} sample photos (mean {:.2} MP), {} rounds, {} threads available",
        originals.len(),
        mean_mp,
        rounds,
        all
    );
    println!("{:<22} {:<12} {:>8} {:>12} {:>8}", "images", "detection", "threads", "images/s", "faces");
    for (set_name, set) in [("samples (own size)", &originals), ("1024x1024 (FFHQ)", &ffhq)] {
        for (mode, max_side) in [("full size", None), ("downscaled 640", Some(640))] {
            let mut cfg = DetectorConfig::new(&models);
            cfg.detect_max_side = max_side;
            let det = match Detector::new(&cfg) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            for threads in [1, all] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
                let work: Vec<&image::RgbImage> = (0..rounds).flat_map(|_| set.iter()).collect();
                let t = Instant::now();
                let faces: usize = pool.install(|| {
                    work.par_iter().map_init(|| det.clone(), |d, img| d.detect(img).map_or(0, |f| f.len())).sum()
                });
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "{:<22} {:<12} {:>8} {:>12.2} {:>8}",
                    set_name,
                    mode,
                    threads,
                    work.len() as f64 / secs,
                    faces / rounds
                );
            }
        }
    }
}
