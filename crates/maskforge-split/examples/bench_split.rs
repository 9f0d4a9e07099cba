//! `cargo xtask bench split`:
//!
//! 1. files/s for listing + grouping + splitting (+ writing the manifests) of a
//!    synthetic 100k-file ImageFolder tree, with decoding switched off
//!    (`ScanOptions::decode = false`): the files are tiny stand-ins, so this
//!    measures the bookkeeping alone;
//! 2. images/s for the statistics (read + decode + pixel sums) and for the
//!    whole `split` (which decodes every image once) on the sample photos
//!    resized to 1024×1024, next to the pure JPEG decode rate of the same
//!    files, which bounds both; 1 thread and all threads.
//!
//! Usage: bench_split --samples DIR --work DIR [--models DIR (ignored)]
//!        [--files N] [--images N] [--rounds N]

use maskforge_imageio::{load_rgb, walk_images, LoadLimits};
use maskforge_split::{
    manifest_stats, open_manifests, plan_split, write_split, GroupBy, Method, ScanOptions, SplitOptions,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap_or_else(|e| fail(&format!("thread pool: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_split: {msg}");
    std::process::exit(1)
}

/// Best of `rounds` timings of `f`, in seconds.
fn best_of(rounds: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// `files` tiny files in 4 classes × people folders of 10; made once, reused.
fn synthetic_tree(dir: &Path, files: usize) -> PathBuf {
    let root = dir.join(format!("tree_{files}"));
    let done = dir.join(format!(".tree_{files}.done"));
    if done.is_file() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let classes = ["correct", "incorrect_chin", "incorrect_nose", "unmasked"];
    (0..files).into_par_iter().for_each(|i| {
        let class = classes[i % classes.len()];
        let person = i / (10 * classes.len());
        let path = root.join(class).join(format!("person{person:05}")).join(format!("{i:06}.jpg"));
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        std::fs::write(&path, b"x").unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    });
    std::fs::write(&done, b"").unwrap_or_else(|e| fail(&e.to_string()));
    root
}

/// The sample photos, centre-cropped and resized to 1024×1024, as JPEG q90,
/// repeated up to `count` files in two classes. Synthetic photos-like
/// images when there are no samples.
fn photo_tree(samples: &Path, dir: &Path, count: usize) -> (PathBuf, String) {
    let root = dir.join(format!("photos1024_{count}"));
    let done = dir.join(format!(".photos1024_{count}.done"));
    let sources: Vec<image::RgbImage> =
        walk_images(samples, &[]).images.iter().filter_map(|p| load_rgb(p, LoadLimits::default()).ok()).collect();
    let origin = if sources.is_empty() {
        format!("synthetic (no photos in {})", samples.display())
    } else {
        format!("{} sample photos from {}", sources.len(), samples.display())
    };
    if done.is_file() {
        return (root, origin);
    }
    let _ = std::fs::remove_dir_all(&root);
    let squares: Vec<image::RgbImage> = if sources.is_empty() {
        (0..8u32)
            .map(|k| {
                image::RgbImage::from_fn(1024, 1024, |x, y| {
                    let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ k.wrapping_mul(31)) % 23;
                    image::Rgb([((x / 4 + k * 20) % 256) as u8, ((y / 4) % 256) as u8, (((x + y) / 8 + n) % 256) as u8])
                })
            })
            .collect()
    } else {
        sources
            .iter()
            .map(|im| {
                let side = im.width().min(im.height());
                let sq = image::imageops::crop_imm(im, (im.width() - side) / 2, (im.height() - side) / 2, side, side)
                    .to_image();
                image::imageops::resize(&sq, 1024, 1024, image::imageops::FilterType::Triangle)
            })
            .collect()
    };
    let encoded: Vec<Vec<u8>> = squares
        .par_iter()
        .map(|im| maskforge_imageio::encode_image(im, Path::new("x.jpg"), 90).unwrap_or_else(|e| fail(&e.to_string())))
        .collect();
    for i in 0..count {
        let class = if i % 2 == 0 { "masked" } else { "unmasked" };
        let path = root.join(class).join(format!("p{:03}", i / 4)).join(format!("{i:04}.jpg"));
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        std::fs::write(&path, &encoded[i % encoded.len()]).unwrap_or_else(|e| fail(&e.to_string()));
    }
    std::fs::write(&done, b"").unwrap_or_else(|e| fail(&e.to_string()));
    (root, origin)
}

fn main() {
    let samples = PathBuf::from(arg("--samples").unwrap_or_else(|| "data/samples".into()));
    let work = PathBuf::from(arg("--work").unwrap_or_else(|| "target/bench/split".into()));
    let files: usize = arg("--files").and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let images: usize = arg("--images").and_then(|v| v.parse().ok()).unwrap_or(96);
    let rounds: usize = arg("--rounds").and_then(|v| v.parse().ok()).unwrap_or(3);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(&format!("{}: {e}", work.display())));
    let all = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let thread_counts: Vec<usize> = if all > 1 { vec![1, all] } else { vec![1] };
    println!("split benchmark: {all} threads available, best of {rounds} rounds (warm file cache)");

    // 1. Listing + grouping + splitting, no decoding.
    let tree = synthetic_tree(&work, files);
    let out = work.join("manifests_tree");
    println!();
    println!("listing + grouping + splitting {files} files (decoding OFF: ScanOptions::decode = false; the files are 1-byte stand-ins)");
    println!("{:<44} {:>8} {:>12} {:>10}", "what", "threads", "files/s", "seconds");
    for (what, group_by, method) in [
        ("group-by parent, exact", GroupBy::Parent, Method::Exact),
        ("group-by parent, stable", GroupBy::Parent, Method::Stable),
        ("group-by regex person folder, exact", GroupBy::Regex(r"^[^/]+/([^/]+)/".into()), Method::Exact),
        ("group-by none (every file a group), exact", GroupBy::None, Method::Exact),
    ] {
        let options = SplitOptions {
            group_by,
            method,
            scan: ScanOptions { decode: false, ..ScanOptions::default() },
            ..SplitOptions::default()
        };
        for &threads in &thread_counts {
            let p = pool(threads);
            let mut listed = 0;
            let secs = best_of(rounds, || {
                let plan = p.install(|| plan_split(&tree, &options, &())).unwrap_or_else(|e| fail(&e.to_string()));
                listed = plan.accepted();
            });
            println!("{what:<44} {threads:>8} {:>12.0} {secs:>10.3}", listed as f64 / secs);
        }
    }
    let options = SplitOptions {
        group_by: GroupBy::Parent,
        scan: ScanOptions { decode: false, ..ScanOptions::default() },
        ..SplitOptions::default()
    };
    let p = pool(all);
    let secs = best_of(rounds, || {
        let plan = p.install(|| plan_split(&tree, &options, &())).unwrap_or_else(|e| fail(&e.to_string()));
        write_split(&plan, &out, None).unwrap_or_else(|e| fail(&e.to_string()));
    });
    println!("{:<44} {all:>8} {:>12.0} {secs:>10.3}", "  same + writing the manifests", files as f64 / secs);

    // 2. Statistics and the full split on 1024x1024 JPEGs, against pure decode.
    let (photos, origin) = photo_tree(&samples, &work, images);
    let list = walk_images(&photos, &[]).images;
    let mb: f64 = list.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len() as f64).sum::<f64>() / 1e6;
    println!();
    println!("{} JPEGs of 1024x1024 (q90, {:.1} MB; {origin}), images/s", list.len(), mb);
    let out = work.join("manifests_photos");
    let full = SplitOptions { group_by: GroupBy::Parent, ..SplitOptions::default() };
    // Manifests for the stats runs (and a warm cache).
    let plan = pool(all).install(|| plan_split(&photos, &full, &())).unwrap_or_else(|e| fail(&e.to_string()));
    write_split(&plan, &out, None).unwrap_or_else(|e| fail(&e.to_string()));
    let train_set = open_manifests(&out.join("train.csv"), None).unwrap_or_else(|e| fail(&e.to_string()));
    let train_n = train_set.manifests[0].1.len();
    println!("{:<60} {:>8} {:>10}", "what", "threads", "images/s");
    let mut results: Vec<(String, usize, f64)> = Vec::new();
    for &threads in &thread_counts {
        let p = pool(threads);
        let secs = best_of(rounds, || {
            p.install(|| {
                list.par_iter().for_each(|f| {
                    let _ = load_rgb(f, LoadLimits::default()).unwrap_or_else(|e| fail(&e.to_string()));
                })
            })
        });
        results.push(("pure JPEG decode, read + decode + EXIF (the bound)".into(), threads, list.len() as f64 / secs));
        let mut mean = [0.0; 3];
        let secs = best_of(rounds, || {
            let (stats, _) = p.install(|| manifest_stats(&train_set, 0, None, LoadLimits::default(), &()));
            mean = stats.mean;
        });
        results.push((format!("`maskforge stats train.csv` ({train_n} images)"), threads, train_n as f64 / secs));
        let secs = best_of(rounds, || {
            let (stats, _) = p.install(|| manifest_stats(&train_set, 0, Some(224), LoadLimits::default(), &()));
            mean = stats.mean;
        });
        results.push(("  same with --stats-size 224".into(), threads, train_n as f64 / secs));
        let secs = best_of(rounds, || {
            let plan = p.install(|| plan_split(&photos, &full, &())).unwrap_or_else(|e| fail(&e.to_string()));
            mean = plan.train_stats().map(|s| s.mean).unwrap_or_default();
        });
        results.push(("full `maskforge split` (decodes all, train stats)".into(), threads, list.len() as f64 / secs));
        std::hint::black_box(mean);
    }
    results.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let order = ["pure", "`maskforge stats", "  same", "full"];
    for key in order {
        for (what, threads, rate) in results.iter().filter(|r| r.0.starts_with(key)) {
            println!("{what:<60} {threads:>8} {rate:>10.1}");
        }
    }
}
