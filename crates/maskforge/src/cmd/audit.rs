//! `maskforge audit`: does anything but the label tell a dataset's classes
//! apart? (see `maskforge_audit`).

use crate::common;
use anyhow::{Context, Result};
use clap::Args;
use maskforge_imageio::LoadLimits;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// An ImageFolder tree (one folder per class; a `maskforge mask` folder's annotations.csv
    /// gives the mask regions left out of the pixel cues) or a manifest CSV (with --root).
    pub dataset: PathBuf,
    /// The folder a manifest's paths are relative to (required with a manifest).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write the audit as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Largest width × height decoded; larger images are skipped.
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
    /// Worker threads (0: all cores).
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
}

/// Exit status of an audit that found a shortcut.
const LEAKY_STATUS: i32 = 2;

pub fn run(args: AuditArgs) -> Result<()> {
    let (items, mut failures) = maskforge_audit::items(&args.dataset, args.root.as_deref())?;
    let limits = LoadLimits { max_pixels: args.max_pixels };
    let pool = common::thread_pool(args.jobs)?;
    let mut audit = pool.install(|| maskforge_audit::audit(items, limits));
    failures.append(&mut audit.failures);
    for f in failures.iter().take(20) {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    audit.failures = failures;
    print!("{}", audit.to_text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&audit)? + "\n";
        maskforge_imageio::write_atomic(path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if audit.is_leaky() {
        std::process::exit(LEAKY_STATUS);
    }
    Ok(())
}
