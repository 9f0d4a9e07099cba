//! `maskforge split`, `maskforge verify` and `maskforge stats`: reproducible
//! grouped train/val/test manifests of an ImageFolder tree, their check, and
//! the normalisation statistics. No dlib or libtorch needed.

use crate::common;
use crate::progress::CountBar;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use maskforge_imageio::{write_atomic, Failure, LoadLimits};
use maskforge_split::report::stats_summary;
use maskforge_split::{
    manifest_stats, open_manifests, verify, Allow, GroupBy, MaterializeMode, Method, Ratios, ScanOptions, Split,
    SplitOptions, SplitRequest, VerifyOptions, DEFAULT_SEED,
};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    /// Seeded shuffle of the groups, each placed where its classes are furthest
    /// below target: per-class shares within one group of the ratios.
    Exact,
    /// Split decided by a hash of seed and group key: adding images later never
    /// moves an existing one; shares only approximately the ratios.
    Stable,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Absolute symbolic links to the dataset files.
    Symlink,
    /// Hard links (same file system only).
    Hardlink,
    /// Full copies.
    Copy,
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// ImageFolder tree: ROOT/<class>/**/<image>; classes are the sorted folder names.
    pub root: PathBuf,
    /// Output folder for train.csv, val.csv, [test.csv], classes.csv, split.json,
    /// stats.json and failures.csv. Must not be inside ROOT.
    #[arg(long, short, default_value = "manifests")]
    pub out: PathBuf,
    /// Fraction of each class for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val: f64,
    /// Fraction of each class for a test split (0: no test split).
    #[arg(long, default_value_t = 0.0)]
    pub test: f64,
    /// Seed of the assignment [default: 20240601].
    #[arg(long)]
    pub seed: Option<u64>,
    /// How groups are assigned to splits.
    #[arg(long, value_enum, default_value = "exact")]
    pub method: MethodArg,
    /// What keeps images together: source (annotations.csv of `maskforge mask`:
    /// a photo and its masked versions), parent (the image's folder), regex:PATTERN
    /// (first capture group of the pattern in the relative path, e.g.
    /// 'regex:^[^/]+/([^/]+)/' for the person folder across classes), none, or auto
    /// (source when ROOT/annotations.csv exists, else none).
    #[arg(long, default_value = "auto", value_parser = parse_group_by)]
    pub group_by: GroupBy,
    /// Add each file's SHA-256 to the manifests (verify then checks content).
    #[arg(long)]
    pub hash: bool,
    /// Resize every image to N×N before the statistics (as a training
    /// Resize((N, N)) would), N at most 4096; default: statistics at the decoded size.
    #[arg(long, value_name = "N", value_parser = parse_stats_size)]
    pub stats_size: Option<u32>,
    /// Also write DIR/train/<class>/..., DIR/val/<class>/... for tools that want folders.
    #[arg(long, value_name = "DIR")]
    pub materialize: Option<PathBuf>,
    /// How --materialize places files.
    #[arg(long, value_enum, default_value = "symlink", requires = "materialize")]
    pub mode: ModeArg,
    /// Skip images with more pixels than this (checked from the header, before
    /// decoding); at most 1000000000.
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
    /// Worker threads (default: all cores), at most 1024. The output does not depend on it.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
    /// Write the split even when ROOT has a single class folder (a classifier
    /// needs two; by default this is an error).
    #[arg(long)]
    pub allow_single_class: bool,
    /// Write the split even when val (or test) gets no image at all, e.g. because
    /// a --group-by regex without a capture group makes whole class folders
    /// the groups (by default this is an error).
    #[arg(long)]
    pub allow_empty_split: bool,
}

/// The largest `--stats-size`: every image is resized to N×N (3·N² bytes per
/// worker thread), so an unbounded N is an unbounded allocation.
pub const MAX_STATS_SIZE: u32 = 4096;

fn parse_stats_size(s: &str) -> Result<u32, String> {
    common::parse_bounded(s, "--stats-size", 1, MAX_STATS_SIZE as u64, " (images are resized to N×N)").map(|n| n as u32)
}

fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    s.parse().map_err(|e: maskforge_split::SplitError| e.to_string())
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A manifest folder written by `maskforge split` (all its manifests), or one manifest CSV.
    pub manifests: PathBuf,
    /// Dataset root [default: the one recorded in split.json].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Only check existence, size and hashes; do not decode.
    #[arg(long)]
    pub no_decode: bool,
    /// Images with more pixels than this count as not decodable (at most 1000000000).
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
    /// Worker threads (default: all cores), at most 1024.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// A manifest CSV, or a manifest folder (its train.csv is used).
    pub manifest: PathBuf,
    /// Dataset root [default: the one recorded in split.json beside the manifest].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Resize every image to N×N before the statistics (N at most 4096).
    #[arg(long, value_name = "N", value_parser = parse_stats_size)]
    pub stats_size: Option<u32>,
    /// Also write the JSON to this file (atomically).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Skip images with more pixels than this (at most 1000000000).
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
    /// Worker threads (default: all cores), at most 1024. The result does not depend on it.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
}

/// Skipped files: each on stderr up to this many, all in failures.csv.
const MAX_PRINTED_SKIPS: usize = 20;

pub fn run_split(args: SplitArgs) -> Result<()> {
    // Everything that can be refused is refused before any file is written.
    let ratios = Ratios::new(args.val, args.test)?;
    let mode = match args.mode {
        ModeArg::Symlink => MaterializeMode::Symlink,
        ModeArg::Hardlink => MaterializeMode::Hardlink,
        ModeArg::Copy => MaterializeMode::Copy,
    };
    let request = SplitRequest {
        root: args.root.clone(),
        out: args.out.clone(),
        options: SplitOptions {
            ratios,
            seed: args.seed.unwrap_or(DEFAULT_SEED),
            method: match args.method {
                MethodArg::Exact => Method::Exact,
                MethodArg::Stable => Method::Stable,
            },
            group_by: args.group_by.clone(),
            scan: ScanOptions {
                decode: true,
                hash: args.hash,
                stats_size: args.stats_size,
                limits: LoadLimits { max_pixels: args.max_pixels },
            },
        },
        allow: Allow { single_class: args.allow_single_class, empty_split: args.allow_empty_split },
        materialize: args.materialize.clone().map(|dir| (dir, mode)),
    };
    let pool = common::thread_pool(args.jobs)?;
    let bar = CountBar::new("split");
    let done = pool.install(|| maskforge_split::run_split(&request, &bar));
    bar.finish();
    let done = done?;
    if let (Some(placed), Some(dir)) = (done.materialized, &args.materialize) {
        println!("materialized {placed} files into {} ({mode})", dir.display());
    }
    let plan = &done.plan;
    println!("{}", plan.summary(done.plan_seconds, args.seed.is_none()));
    if !plan.failures.is_empty() {
        let failures_csv = args.out.join(maskforge_split::plan::FAILURES_CSV);
        eprintln!("skipped {} file(s), listed with reasons in {}:", plan.failures.len(), failures_csv.display());
        print_skipped(&plan.failures);
    }
    println!("{}", plan.table());
    for w in plan.warnings() {
        eprintln!("warning: {w}");
    }
    if let Some(stats) = plan.train_stats() {
        println!("{}", stats_summary(&stats));
    }
    let names: Vec<String> = done.written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", names.join(", "));
    Ok(())
}

/// The first [`MAX_PRINTED_SKIPS`] skipped files on stderr.
fn print_skipped(failures: &[Failure]) {
    for f in failures.iter().take(MAX_PRINTED_SKIPS) {
        eprintln!("  {}: {}", f.path, f.reason);
    }
    if failures.len() > MAX_PRINTED_SKIPS {
        eprintln!("  ... and {} more", failures.len() - MAX_PRINTED_SKIPS);
    }
}

pub fn run_verify(args: VerifyArgs) -> Result<()> {
    let set = open_manifests(&args.manifests, args.root.as_deref())?;
    let options = VerifyOptions { decode: !args.no_decode, limits: LoadLimits { max_pixels: args.max_pixels } };
    let pool = common::thread_pool(args.jobs)?;
    let bar = CountBar::new("verify");
    let report = pool.install(|| verify(&set, &options, &bar));
    bar.finish();
    for m in &report.mismatches {
        if m.path.is_empty() {
            println!("{}: {}", m.manifest, m.problem);
        } else {
            println!("{}: {}: {}", m.manifest, m.path, m.problem);
        }
    }
    let checks = if options.decode { "exists, size, decodes" } else { "exists, size" };
    for (name, rows, hashed) in &report.checked {
        let hash_note = if *hashed > 0 { format!(", {hashed} sha256") } else { String::new() };
        println!("{name}: {rows} files checked ({checks}{hash_note})");
    }
    println!("dataset root: {}", set.root.display());
    if !report.ok() {
        bail!("{} problem(s) found in {}", report.mismatches.len(), args.manifests.display());
    }
    println!("all OK");
    Ok(())
}

pub fn run_stats(args: StatsArgs) -> Result<()> {
    let manifest =
        if args.manifest.is_dir() { args.manifest.join(Split::Train.manifest_name()) } else { args.manifest.clone() };
    let set = open_manifests(&manifest, args.root.as_deref())?;
    if let Some(out) = &args.out {
        maskforge_imageio::check_disjoint(
            &[&manifest, &set.root],
            &[maskforge_imageio::Output::new(out, "--out file")],
        )?;
    }
    let pool = common::thread_pool(args.jobs)?;
    let bar = CountBar::new("stats");
    let limits = LoadLimits { max_pixels: args.max_pixels };
    let (stats, failures) = pool.install(|| manifest_stats(&set, 0, args.stats_size, limits, &bar));
    bar.finish();
    for f in failures.iter().take(MAX_PRINTED_SKIPS) {
        eprintln!("skipped {}: {}", f.path, f.reason);
    }
    if failures.len() > MAX_PRINTED_SKIPS {
        eprintln!("... and {} more skipped", failures.len() - MAX_PRINTED_SKIPS);
    }
    if stats.images == 0 {
        bail!("{}: no image could be read (dataset root {})", manifest.display(), set.root.display());
    }
    let json = stats.to_json();
    if let Some(out) = &args.out {
        write_stats_file(out, &json)?;
        eprintln!("wrote {}", out.display());
    }
    print!("{json}");
    Ok(())
}

fn write_stats_file(out: &Path, json: &str) -> Result<()> {
    write_atomic(out, json.as_bytes()).with_context(|| format!("cannot write {}", out.display()))
}
