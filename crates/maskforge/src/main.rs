//! `maskforge`: the thin command-line front end. Each subcommand lives in
//! `cmd/<name>.rs`, parses its flags with clap and calls the library crates;
//! errors are reported here, once, with anyhow.

mod cmd;
mod common;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "maskforge", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect faces and their 68 landmarks in a tree of photos.
    #[cfg(feature = "dlib")]
    Detect(cmd::detect::DetectArgs),
    /// Split an ImageFolder tree into grouped, stratified train/val[/test] manifests
    /// with class list and train mean/std; byte-identical on every re-run.
    Split(cmd::split::SplitArgs),
    /// Check that every file a split lists exists, decodes and matches its hash.
    Verify(cmd::split::VerifyArgs),
    /// Per-channel mean/std and class weights of the images a manifest lists.
    Stats(cmd::split::StatsArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(feature = "dlib")]
        Command::Detect(args) => cmd::detect::run(args),
        Command::Split(args) => cmd::split::run_split(args),
        Command::Verify(args) => cmd::split::run_verify(args),
        Command::Stats(args) => cmd::split::run_stats(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
