//! `maskforge`: the thin command-line front end. Each subcommand lives in
//! `cmd/<name>.rs`, parses its flags with clap and calls the library crates;
//! errors are reported here, once, with anyhow.

#[cfg(test)]
mod cli_docs;
mod cmd;
mod common;
#[cfg(feature = "dlib")]
mod detector;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "maskforge", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size difference between subcommands costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Detect faces and their 68 landmarks in a tree of photos.
    #[cfg(feature = "dlib")]
    Detect(cmd::detect::DetectArgs),
    /// Put masks on every face in a tree of photos (correct and wrongly worn variants):
    /// a labelled ImageFolder dataset with annotations.csv.
    ///
    /// Rendered mask styles and the packed landmark model are kept between runs in
    /// $MASKFORGE_CACHE (default: $XDG_CACHE_HOME/maskforge or ~/.cache/maskforge;
    /// MASKFORGE_CACHE=off keeps none). The cache never changes an output.
    #[cfg(feature = "dlib")]
    Mask(cmd::mask::MaskArgs),
    /// Join the outputs and CSVs of `maskforge mask --shard I/N` runs.
    Merge(cmd::merge::MergeArgs),
    /// Split an ImageFolder tree into grouped, stratified train/val[/test] manifests
    /// with class list and train mean/std; byte-identical on every re-run.
    Split(cmd::split::SplitArgs),
    /// Check that every file a split lists exists, decodes and matches its hash.
    Verify(cmd::split::VerifyArgs),
    /// Per-channel mean/std and class weights of the images a manifest lists.
    Stats(cmd::split::StatsArgs),
    /// Fine-tune a classifier (ResNet50/18, MobileNetV2) on split manifests.
    #[cfg(feature = "tch")]
    Train(cmd::train::TrainArgs),
    /// Evaluate a trained checkpoint on a manifest: report and predictions.
    #[cfg(feature = "tch")]
    Eval(cmd::train::EvalArgs),
    /// Detect, crop and classify faces in photos; annotated images and a CSV.
    #[cfg(all(feature = "tch", feature = "dlib"))]
    Predict(cmd::predict::PredictArgs),
    /// Shortcut audit of a dataset (ImageFolder tree or manifest): per class, everything that is
    /// not the label (format, JPEG quality, subsampling, EXIF/ICC, size, brightness, colour,
    /// sharpness, noise) and a probe classifier on those cues that must stay at chance. Exits
    /// with status 2 when a cue other than the label separates the classes.
    Audit(cmd::audit::AuditArgs),
    /// Pretrained ImageNet weights: `weights fetch ARCH` downloads torchvision's checkpoint,
    /// checks it and caches it as safetensors for `train --weights imagenet`.
    Weights(cmd::weights::WeightsArgs),
}

fn main() {
    quiet_on_closed_stdout();
    let cli = Cli::try_parse().unwrap_or_else(|err| {
        #[cfg(feature = "tch")]
        let err = cmd::train::with_resume_tip(err);
        err.exit()
    });
    let result = match cli.command {
        #[cfg(feature = "dlib")]
        Command::Detect(args) => cmd::detect::run(args),
        #[cfg(feature = "dlib")]
        Command::Mask(args) => cmd::mask::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Split(args) => cmd::split::run_split(args),
        Command::Verify(args) => cmd::split::run_verify(args),
        Command::Stats(args) => cmd::split::run_stats(args),
        #[cfg(feature = "tch")]
        Command::Train(args) => cmd::train::run_train(args),
        #[cfg(feature = "tch")]
        Command::Eval(args) => cmd::train::run_eval(args),
        #[cfg(all(feature = "tch", feature = "dlib"))]
        Command::Predict(args) => cmd::predict::run(args),
        Command::Weights(args) => cmd::weights::run(args),
        Command::Audit(args) => cmd::audit::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}

/// `maskforge ... | head` ends quietly with status 0 once the reader has
/// what it wanted (as ripgrep does), instead of dying of SIGPIPE (status
/// 141, which `set -o pipefail` scripts take for a failure) or panicking.
/// Rust ignores SIGPIPE, so a write to the closed pipe fails with
/// `BrokenPipe`, which `println!` turns into a panic: that panic, and only
/// it, ends the process quietly; every other panic is reported as usual.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The error and its causes on one line, each cause once: library errors
/// often print their source already ("x.csv: No such file (os error 2)"),
/// and anyhow's `{:#}` would repeat it.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
