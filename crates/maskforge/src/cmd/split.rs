//! `maskforge split`, `maskforge verify` and `maskforge stats`: reproducible
//! grouped train/val/test manifests of an ImageFolder tree, their check, and
//! the normalisation statistics. No dlib or libtorch needed.

use crate::common;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use maskforge_imageio::{write_atomic, LoadLimits};
use maskforge_split::{
    check_materialize_dir, check_output_dir, manifest_stats, materialize, open_manifests, plan_split, verify,
    write_split, Allow, GroupBy, MaterializeMode, MaterializedRecord, Method, Progress, Ratios, ScanOptions, Split,
    SplitOptions, SplitPlan, Stats, VerifyOptions, DEFAULT_SEED,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// indicatif behind the library's progress trait.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self) {
        self.0.inc(1);
    }
}

/// Skipped files: each on stderr up to this many, all in failures.csv.
const MAX_PRINTED_SKIPS: usize = 20;

pub fn run_split(args: SplitArgs) -> Result<()> {
    // Everything that can be refused is refused before any file is written.
    let ratios = Ratios::new(args.val, args.test)?;
    check_output_dir(&args.root, &args.out)?;
    if let Some(dir) = &args.materialize {
        check_materialize_dir(&args.root, dir)?;
    }
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    let options = SplitOptions {
        ratios,
        seed,
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
    };
    let pool = common::thread_pool(args.jobs)?;
    let bar = Bar(common::progress_bar(0, "split"));
    let started = Instant::now();
    let plan = pool
        .install(|| plan_split(&args.root, &options, &bar))
        .with_context(|| format!("cannot split {}", args.root.display()))?;
    bar.0.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    // A split that cannot train a classifier is refused before anything is written.
    plan.check_usable(Allow { single_class: args.allow_single_class, empty_split: args.allow_empty_split })
        .with_context(|| format!("cannot split {}", args.root.display()))?;

    let materialized = match &args.materialize {
        Some(dir) => {
            let mode = match args.mode {
                ModeArg::Symlink => MaterializeMode::Symlink,
                ModeArg::Hardlink => MaterializeMode::Hardlink,
                ModeArg::Copy => MaterializeMode::Copy,
            };
            let placed = pool.install(|| materialize(&plan, dir, mode))?;
            println!("materialized {placed} files into {} ({mode})", dir.display());
            let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            Some(MaterializedRecord { dir: abs.to_string_lossy().into_owned(), mode: mode.to_string() })
        }
        None => None,
    };
    let written = write_split(&plan, &args.out, materialized)?;
    print_report(&plan, &args, elapsed);
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", names.join(", "));
    Ok(())
}

fn print_report(plan: &SplitPlan, args: &SplitArgs, elapsed: f64) {
    let o = &plan.options;
    let scanned = plan.accepted() + plan.failures.len();
    println!(
        "{} images in {} classes under {} ({scanned} files decoded in {elapsed:.1} s, {:.0} files/s)",
        plan.accepted(),
        plan.classes.len(),
        plan.root.display(),
        scanned as f64 / elapsed.max(1e-9),
    );
    let seed_note = if args.seed.is_none() { " (default; --seed N to change)" } else { "" };
    println!(
        "seed {}{seed_note}, method {}, group-by {}: {} groups",
        o.seed, o.method, o.group_by, plan.grouping.groups
    );
    if o.group_by == GroupBy::Source {
        let g = &plan.grouping;
        println!(
            "  annotations.csv: {} images grouped by source, {} originals joined their source's group, {} images without a row (each its own group)",
            g.annotated, g.originals_joined, g.unannotated
        );
    }
    if plan.outside_classes > 0 {
        println!("ignored {} image file(s) directly in ROOT (not in a class folder)", plan.outside_classes);
    }
    if !plan.failures.is_empty() {
        eprintln!(
            "skipped {} file(s), listed with reasons in {}:",
            plan.failures.len(),
            args.out.join(maskforge_split::plan::FAILURES_CSV).display()
        );
        for f in plan.failures.iter().take(MAX_PRINTED_SKIPS) {
            eprintln!("  {}: {}", f.path, f.reason);
        }
        if plan.failures.len() > MAX_PRINTED_SKIPS {
            eprintln!("  ... and {} more", plan.failures.len() - MAX_PRINTED_SKIPS);
        }
    }

    let splits = plan.splits();
    let counts = plan.counts();
    let width = plan.classes.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    let mut header = format!("{:<width$} {:>2}", "class", "#");
    for s in &splits {
        header.push_str(&format!(" {:>16}", s.name()));
    }
    header.push_str(&format!(" {:>8}", "total"));
    println!("{header}");
    let cell = |n: u64, total: u64| format!("{n} ({:.1}%)", 100.0 * n as f64 / total.max(1) as f64);
    let mut column_totals = [0u64; 3];
    for c in &plan.classes {
        let mut line = format!("{:<width$} {:>2}", c.name, c.index);
        for s in &splits {
            let n = counts[c.index][s.index()];
            column_totals[s.index()] += n;
            line.push_str(&format!(" {:>16}", cell(n, c.count)));
        }
        line.push_str(&format!(" {:>8}", c.count));
        println!("{line}");
    }
    let total = plan.accepted() as u64;
    let mut line = format!("{:<width$} {:>2}", "total", "");
    for s in &splits {
        line.push_str(&format!(" {:>16}", cell(column_totals[s.index()], total)));
    }
    line.push_str(&format!(" {total:>8}"));
    println!("{line}");
    for w in plan.warnings() {
        eprintln!("warning: {w}");
    }
    if let Some(stats) = plan.train_stats() {
        print_stats(&stats);
    }
}

fn fmt3(v: &[f64; 3]) -> String {
    format!("[{:.4}, {:.4}, {:.4}]", v[0], v[1], v[2])
}

fn print_stats(stats: &Stats) {
    let size = stats.stats_size.map(|s| format!(", resized to {s}x{s}")).unwrap_or_default();
    println!(
        "{} statistics ({} images, {} pixels{size}): mean {} std {}",
        stats.manifest,
        stats.images,
        stats.pixels,
        fmt3(&stats.mean),
        fmt3(&stats.std)
    );
    let weights: Vec<String> = stats
        .class_names
        .iter()
        .zip(stats.class_counts.iter().zip(&stats.class_weights))
        .map(|(name, (n, w))| match w {
            Some(w) => format!("{name} {n} (weight {w:.3})"),
            None => format!("{name} 0 (no weight)"),
        })
        .collect();
    println!("class counts: {}", weights.join(", "));
}

pub fn run_verify(args: VerifyArgs) -> Result<()> {
    let set = open_manifests(&args.manifests, args.root.as_deref())?;
    let options = VerifyOptions { decode: !args.no_decode, limits: LoadLimits { max_pixels: args.max_pixels } };
    let pool = common::thread_pool(args.jobs)?;
    let bar = Bar(common::progress_bar(0, "verify"));
    let report = pool.install(|| verify(&set, &options, &bar));
    bar.0.finish_and_clear();
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
    let bar = Bar(common::progress_bar(0, "stats"));
    let limits = LoadLimits { max_pixels: args.max_pixels };
    let (stats, failures) = pool.install(|| manifest_stats(&set, 0, args.stats_size, limits, &bar));
    bar.0.finish_and_clear();
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
