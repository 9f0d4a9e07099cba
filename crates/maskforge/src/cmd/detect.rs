//! `maskforge detect`: faces and 68 landmarks for every photo in a tree (or
//! in a `--list`), resumable after a kill (see `maskforge_landmarks::tree`).

use crate::common;
use crate::detector::{DetectorOpts, Device};
use anyhow::Result;
use clap::Args;
use maskforge_landmarks::tree::{self, DetectSettings, DetectTree};
use maskforge_landmarks::DetectorKind;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Folder of photos (searched recursively: jpg, jpeg, png, bmp, webp).
    pub input: PathBuf,
    /// Output folder for landmarks.csv, failures.csv and overlays. A re-run into it resumes:
    /// photos finished before (same detector settings, file unchanged) are not detected again.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Also write each photo with boxes and landmarks drawn, to OUT/overlays/.
    #[arg(long)]
    pub overlay: bool,
    /// Worker threads (default: all cores), at most 1024.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
    /// Process the images named in this file instead of walking INPUT: one path relative to
    /// INPUT a line (blank lines and `#` comments ignored), or a manifest CSV as `split` writes
    /// it. Listed files that are missing or not images go to failures.csv.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorOpts,
}

pub fn run(args: DetectArgs) -> Result<()> {
    let root = &args.input;
    if !root.is_dir() {
        anyhow::bail!("{}: not a folder", root.display());
    }
    tree::check_paths(root, args.list.as_deref(), &args.out, args.overlay)?;
    common::check_cache_folder(&[root, &args.out])?;
    let config = args.detector.config(DetectorKind::Hog);
    let detector = DetectorOpts::build(&config, Device::Cpu)?;
    let (images, find_failures) = tree::find_photos(root, args.list.as_deref(), &args.out)?;
    let tree = DetectTree {
        root: root.clone(),
        images,
        out: args.out.clone(),
        overlay: args.overlay,
        limits: args.detector.limits(),
        decode_budget: maskforge_imageio::DecodeBudget::from_available_memory(),
    };
    let mut run = tree.open(&DetectSettings::of(&config))?;
    let pool = common::thread_pool(args.jobs)?;
    common::share_cores_with_workers(pool.current_num_threads());
    let pb = common::progress_bar(run.todo() as u64, "detect");
    let start = Instant::now();
    pool.install(|| run.process(&detector, &|| pb.inc(1)))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let summary = run.finish(find_failures)?;
    for f in &summary.failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    println!(
        "detect: {} images, {} faces, {} images without a face, {} failures ({} detected now, {} already done), \
         {:.1} images/s -> {}",
        summary.images,
        summary.faces,
        summary.without_face,
        summary.failures.len(),
        summary.processed,
        summary.already_done,
        summary.processed as f64 / secs.max(1e-9),
        summary.landmarks_csv.display()
    );
    Ok(())
}
