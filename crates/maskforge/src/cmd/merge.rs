//! `maskforge merge`: join the outputs of `maskforge mask --shard I/N` runs
//! (see `maskforge_pipeline::merge`).

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Destination output folder (it may already hold some shards' outputs).
    pub out: PathBuf,
    /// Other shard output folders whose files are brought into OUT first
    /// (hard-linked where possible, else copied).
    #[arg(long = "from", value_name = "DIR")]
    pub from: Vec<PathBuf>,
    /// Fail instead of warning when some shards of an N-way split are missing.
    #[arg(long)]
    pub require_all_shards: bool,
}

pub fn run(args: MergeArgs) -> Result<()> {
    let report = maskforge_pipeline::merge(&args.out, &args.from, args.require_all_shards)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "merge: {} annotation rows from {} source images ({} CSV files), {} failures, {} files brought in -> {}",
        report.annotation_rows,
        report.sources,
        report.csv_files,
        report.failures,
        report.brought,
        report.annotations.display()
    );
    Ok(())
}
