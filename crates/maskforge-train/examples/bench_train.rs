//! Training throughput benchmark (`cargo xtask bench train`):
//!
//! * the input pipeline alone (decode + augment + normalise at 224 px,
//!   images/s it delivers) with 1 thread and with all threads;
//! * ResNet50 training images/s at 112 and 224 px, the real training step
//!   (`train_step`: SGD momentum, autocast + loss scaling on CUDA) fed by
//!   the pipeline, after warm-up steps.
//!
//! ```text
//! cargo run --release -p maskforge-train --example bench_train -- \
//!     --samples data/samples --work target/bench/train [--device auto] [--batch N] [--steps N]
//! ```
//!
//! The images are 256 px JPEG face crops cut from the sample photos (or
//! synthetic ones when there are none), written to WORK/crops/ so that
//! `xtask/bench_train_pytorch.py --work WORK` measures the same files.
//! Results are printed and written to WORK/bench_train.json.

use image::{Rgb, RgbImage};
use maskforge_imageio::LoadLimits;
use maskforge_train::augment::{AugmentConfig, Normalize};
use maskforge_train::criterion::Criterion;
use maskforge_train::data::{BatchTensors, Item, Loader, Transform};
use maskforge_train::optim::{LossScaler, OptimConfig, Optimizer, OptimizerKind};
use maskforge_train::train::train_step;
use maskforge_train::{Arch, Classifier, LossKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind};

struct Args {
    samples: Option<PathBuf>,
    work: PathBuf,
    device: String,
    batch: Option<usize>,
    steps: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        samples: None,
        work: PathBuf::from("target/bench/train"),
        device: "auto".into(),
        batch: None,
        steps: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // Flags we do not use (e.g. --models) are accepted and ignored.
        let value = |it: &mut dyn Iterator<Item = String>| it.next().unwrap_or_default();
        match flag.as_str() {
            "--samples" => a.samples = Some(value(&mut it).into()),
            "--work" => a.work = value(&mut it).into(),
            "--device" => a.device = value(&mut it),
            "--batch" => a.batch = value(&mut it).parse().ok(),
            "--steps" => a.steps = value(&mut it).parse().ok(),
            other if other.starts_with("--") && !other.contains('=') => {
                let _ = value(&mut it);
            }
            _ => {}
        }
    }
    a
}

/// The sample photos' face boxes: the fixture the end-to-end tests use.
#[path = "../../../tests/common/sample_faces.rs"]
mod sample_faces;
use sample_faces::SAMPLE_FACES as FACES;
const PER_PHOTO: usize = 16;
const CROP: u32 = 256;

/// Writes the benchmark images and returns them as items.
fn make_crops(samples: Option<&Path>, dir: &Path) -> Vec<Item> {
    std::fs::create_dir_all(dir).expect("create crops folder");
    let mut items = Vec::new();
    for (k, (file, l, t, r, b)) in FACES.iter().enumerate() {
        let photo = samples.and_then(|s| maskforge_imageio::load_rgb(&s.join(file), LoadLimits::default()).ok());
        for v in 0..PER_PHOTO {
            let name = format!("{}_{v:02}.jpg", file.trim_end_matches(".jpg"));
            let path = dir.join(&name);
            if !path.is_file() {
                let img = match &photo {
                    Some(p) => {
                        let (w, h) = (r - l, b - t);
                        let side = w.max(h) * (1.3 + 0.02 * v as f32);
                        let cx = (l + r) / 2.0 + (v as f32 - 8.0) * 0.01 * w;
                        let x0 = (cx - side / 2.0).max(0.0) as u32;
                        let y0 = ((t + b) / 2.0 - side / 2.0).max(0.0) as u32;
                        let s = (side as u32).min(p.width() - x0).min(p.height() - y0);
                        let sub = image::imageops::crop_imm(p, x0, y0, s, s).to_image();
                        image::imageops::resize(&sub, CROP, CROP, image::imageops::FilterType::Triangle)
                    }
                    None => RgbImage::from_fn(CROP, CROP, |x, y| {
                        Rgb([(x + 13 * v as u32) as u8, (y * 2 + k as u32 * 50) as u8, ((x ^ y) & 0xff) as u8])
                    }),
                };
                maskforge_imageio::save_rgb_atomic(&img, &path, 90).expect("write crop");
            }
            items.push(Item { path, rel: name, label: v % 2 });
        }
    }
    items
}

/// The default augmentations without the realism ones (grey-scale, blur,
/// JPEG, down-and-up scaling, erasing): the recipe
/// `xtask/bench_train_pytorch.py` does the same work for.
fn bench_augment() -> AugmentConfig {
    AugmentConfig { grey: 0.0, blur: 0.0, jpeg: 0.0, downscale: 0.0, erase: 0.0, ..AugmentConfig::default() }
}

fn pipeline_rate(items: &Arc<Vec<Item>>, threads: usize, rounds: usize) -> f64 {
    let loader = Loader::new(threads, 224, Normalize::IMAGENET, LoadLimits::default(), 4).expect("loader");
    let started = Instant::now();
    let mut n = 0;
    for round in 0..rounds {
        let t = Transform::Train { augment: bench_augment(), seed: 1, epoch: round as u64 };
        for b in loader.batches(Arc::clone(items), (0..items.len()).collect(), 32, t) {
            n += b.len();
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn train_rate(items: &Arc<Vec<Item>>, size: u32, batch: usize, warmup: usize, steps: usize, device: Device) -> f64 {
    let amp = device.is_cuda();
    let model = Classifier::new(Arch::Resnet50, 2, 0.0, device);
    let cfg = OptimConfig {
        kind: OptimizerKind::Sgd,
        momentum: 0.9,
        weight_decay: 5e-4,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let mut opt = Optimizer::new(cfg, model.trainable());
    let mut scaler = LossScaler::default();
    let criterion = Criterion::new(LossKind::Ce, None, device);
    let loader = Loader::new(0, size, Normalize::IMAGENET, LoadLimits::default(), 4).expect("loader");
    let total = warmup + steps;
    // Enough passes over the images for all steps, reshuffled each pass.
    let mut order = Vec::new();
    let mut pass = 0u64;
    while order.len() < total * batch {
        order.extend(maskforge_train::data::shuffled(items.len(), 7, pass));
        pass += 1;
    }
    let t = Transform::Train { augment: bench_augment(), seed: 1, epoch: 0 };
    let mut started = Instant::now();
    let mut images = 0;
    for (i, b) in loader.batches(Arc::clone(items), order, batch, t).take(total).enumerate() {
        if i == warmup {
            if device.is_cuda() {
                tch::Cuda::synchronize(device_index(device));
            }
            started = Instant::now();
            images = 0;
        }
        let xs = b.tensor().to_device(device);
        let ys = b.label_tensor().to_device(device);
        let out = train_step(&model, &criterion, &mut opt, &mut scaler, &xs, &ys, 0.01, amp);
        // Reading the loss waits for the step, as a training loop's
        // statistics eventually do.
        let _ = out.weighted.to_kind(Kind::Float).double_value(&[]);
        images += b.len();
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    images as f64 / started.elapsed().as_secs_f64()
}

fn device_index(d: Device) -> i64 {
    match d {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
}

fn main() {
    let args = parse_args();
    let device = match maskforge_train::device::parse_device(&args.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    maskforge_train::device::configure(device);
    let items = Arc::new(make_crops(args.samples.as_deref(), &args.work.join("crops")));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let gpu = device.is_cuda();
    println!(
        "bench train: {} images of {CROP}px JPEG in {}, device {}, {cores} cores, torch threads {}, libtorch {}",
        items.len(),
        args.work.join("crops").display(),
        maskforge_train::device::device_name(device),
        tch::get_num_threads(),
        maskforge_train::LIBTORCH_VERSION
    );

    let rounds = if gpu { 8 } else { 2 };
    let p1 = pipeline_rate(&items, 1, rounds);
    println!("input pipeline, 224 px, train transform, 1 thread:     {p1:8.1} images/s");
    let pn = pipeline_rate(&items, 0, rounds);
    println!("input pipeline, 224 px, train transform, {cores:2} threads:   {pn:8.1} images/s");

    // CPU: a few small steps (a ResNet50 step at 224 px takes tens of
    // seconds on two cores); GPU: full batches.
    let batch = args.batch.unwrap_or(if gpu { 64 } else { 8 });
    let mut results = Vec::new();
    for (size, cpu_steps) in [(112u32, 8usize), (224, 4)] {
        let steps = args.steps.unwrap_or(if gpu { 30 } else { cpu_steps });
        let warmup = if gpu { 5 } else { 2 };
        let rate = train_rate(&items, size, batch, warmup, steps, device);
        println!("resnet50 training, {size} px, batch {batch}, {steps} timed steps: {rate:8.1} images/s");
        results.push(serde_json::json!({"img_size": size, "batch": batch, "steps": steps, "images_per_s": rate}));
    }
    let json = serde_json::json!({
        "device": maskforge_train::device::device_name(device),
        "cores": cores,
        "libtorch": maskforge_train::LIBTORCH_VERSION,
        "amp": gpu,
        "pipeline_images_per_s": {"threads_1": p1, "threads_all": pn, "img_size": 224},
        "train_resnet50": results,
    });
    let path = args.work.join("bench_train.json");
    if let Err(e) = maskforge_imageio::write_atomic(&path, format!("{json:#}\n").as_bytes()) {
        eprintln!("cannot write {}: {e}", path.display());
    } else {
        println!("wrote {}", path.display());
    }
}
