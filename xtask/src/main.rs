//! `cargo xtask <chore>`: every project chore in one place (rust-analyzer's
//! pattern). Set-up is idempotent and installs only what is missing; every
//! cargo call made from here gets the libtorch build environment, so a user
//! never exports anything by hand.
//!
//!   cargo xtask setup                 apt packages, .venv with torch, models, sample photos
//!   cargo xtask demo                  set-up, then the whole pipeline on the sample photos
//!   cargo xtask test                  set-up, then every test of the workspace
//!   cargo xtask build [ARGS]          set-up, then a release build of the binary
//!   cargo xtask bench <stage>         detect | mask | split | train | all
//!   cargo xtask convert-weights IN OUT   torchvision .pth state_dict -> .safetensors

mod setup;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup::setup(&root).map(|_| ()),
        Some("demo") => demo(&root),
        Some("test") => test(&root, &rest),
        Some("build") => {
            setup::setup(&root)?;
            run_cmd(cargo(&root).args(["build", "--release", "-p", "maskforge"]).args(&rest))
        }
        Some("bench") => bench(&root, &rest),
        Some("convert-weights") => convert_weights(&root, &rest),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", HELP);
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  setup                      install what is missing: Debian packages for dlib, a .venv with
                             torch 2.11.0, the dlib models (models/), the sample photos (data/samples/)
  demo                       setup, build, then run every pipeline stage on the sample photos
  test [ARGS...]             setup, then `cargo test --workspace` (ARGS are passed to cargo test)
  build [ARGS...]            setup, then `cargo build --release -p maskforge ARGS` with the libtorch
                             environment (e.g. `--no-default-features --features tch`: no dlib)
  bench <stage>              setup, then print images/s for a stage: detect | mask | split | train | all
  convert-weights IN OUT     torchvision state_dict (.pth) -> safetensors, for `maskforge train --weights`";

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// A `cargo` command with the environment torch-sys needs: it finds libtorch
/// through the project's venv (`LIBTORCH_USE_PYTORCH` runs `python` when
/// `VIRTUAL_ENV` is set, so the venv's bin goes first on PATH).
pub fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    apply_torch_env(&mut cmd, root);
    cmd
}

pub fn apply_torch_env(cmd: &mut Command, root: &Path) {
    let venv = root.join(".venv");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    cmd.env("VIRTUAL_ENV", &venv)
        .env("PATH", std::env::join_paths(paths).unwrap_or(path))
        .env("LIBTORCH_USE_PYTORCH", "1")
        .env("MASKFORGE_MODELS", root.join("models"))
        .env("MASKFORGE_SAMPLES", root.join("data/samples"));
}

pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

fn build_release(root: &Path) -> Result<PathBuf> {
    println!("==> building maskforge (release)");
    run_cmd(cargo(root).args(["build", "--release", "-p", "maskforge"]))?;
    Ok(root.join("target/release/maskforge"))
}

fn test(root: &Path, extra: &[&str]) -> Result<()> {
    setup::setup(root)?;
    println!("==> cargo test --workspace");
    run_cmd(cargo(root).args(["test", "--workspace"]).args(extra))
}

fn demo(root: &Path) -> Result<()> {
    setup::setup(root)?;
    let bin = build_release(root)?;
    let samples = root.join("data/samples");
    let out = root.join("demo");
    std::fs::create_dir_all(&out)?;
    let mut results: Vec<(String, PathBuf)> = Vec::new();

    println!("==> maskforge detect (faces + 68 landmarks)");
    let detect_out = out.join("detect");
    run_cmd(Command::new(&bin).arg("detect").arg(&samples).arg("--out").arg(&detect_out).arg("--overlay"))?;
    results.push(("landmarks.csv, failures.csv, overlays/".into(), detect_out));

    println!("==> maskforge mask (correct, nose_exposed, chin, chin_exposed; 112 px face crops)");
    let masked = out.join("masked");
    let preview = out.join("preview.png");
    run_cmd(
        Command::new(&bin)
            .arg("mask")
            .arg(&samples)
            .arg("--out")
            .arg(&masked)
            .args(["--crop-size", "112", "--unmasked", "copy"])
            .args(["--class-map", "correct=mask_correct,nose_exposed=mask_incorrect,chin=mask_incorrect,chin_exposed=mask_incorrect"])
            .arg("--preview")
            .arg(&preview),
    )?;
    results.push(("masked dataset (ImageFolder), annotations.csv".into(), masked.clone()));
    results.push(("contact sheet of masked outputs".into(), preview));

    println!("==> maskforge split (grouped by source photo) + verify");
    let manifests = root.join("manifests/demo");
    run_cmd(Command::new(&bin).arg("split").arg(&masked).arg("--out").arg(&manifests).arg("--hash"))?;
    run_cmd(Command::new(&bin).arg("verify").arg(&manifests))?;
    results.push(("manifests, split.json, stats.json (mean/std)".into(), manifests.clone()));

    println!("==> maskforge train (resnet18, 64 px, 3 epochs: a smoke run on 7 photos, not a model)");
    let run_dir = out.join("runs/resnet18");
    // `train` refuses to overwrite a run (that is what --resume is for): start the demo run afresh.
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    run_cmd(
        Command::new(&bin)
            .arg("train")
            .arg("--manifests")
            .arg(&manifests)
            .arg("--out")
            .arg(&run_dir)
            .args(["--arch", "resnet18", "--img-size", "64", "--epochs", "3", "--batch-size", "8", "--patience", "0"]),
    )?;
    results.push(("checkpoints, metrics.csv, curves.png, report.txt".into(), run_dir.clone()));

    println!("==> maskforge predict (detect, crop, classify the sample photos)");
    let predicted = out.join("predict");
    run_cmd(
        Command::new(&bin)
            .arg("predict")
            .arg(&samples)
            .arg("--model")
            .arg(run_dir.join("best.safetensors"))
            .arg("--out")
            .arg(&predicted),
    )?;
    results.push(("annotated photos + predictions.csv".into(), predicted));

    println!();
    println!("demo results:");
    for (what, path) in &results {
        println!("  {:<48} {}", what, path.display());
    }
    println!("the binary: {} (runs without any environment variables)", bin.display());
    Ok(())
}

fn bench(root: &Path, args: &[&str]) -> Result<()> {
    let stages: Vec<&str> = match args.first() {
        Some(&"all") => vec!["detect", "mask", "split", "train"],
        Some(s) => vec![*s],
        None => bail!("usage: cargo xtask bench <detect|mask|split|train|all>"),
    };
    setup::setup(root)?;
    for stage in stages {
        let package = match stage {
            "detect" => "maskforge-landmarks",
            "mask" => "maskforge",
            "split" => "maskforge-split",
            "train" => "maskforge-train",
            other => bail!("unknown benchmark `{other}` (detect, mask, split, train, all)"),
        };
        let work = root.join("target/bench").join(stage);
        std::fs::create_dir_all(&work)?;
        println!("==> bench {stage}");
        run_cmd(
            cargo(root)
                .args(["run", "--release", "-p", package, "--example", &format!("bench_{stage}"), "--"])
                .arg("--samples")
                .arg(root.join("data/samples"))
                .arg("--models")
                .arg(root.join("models"))
                .arg("--work")
                .arg(&work)
                .args(&args[1..]),
        )?;
        if stage == "train" {
            println!("==> bench train: the same work in PyTorch + torchvision DataLoader, for comparison");
            run_cmd(Command::new(setup::venv_python(root)).arg(root.join("xtask/bench_train_pytorch.py")).arg("--work").arg(&work))?;
        }
    }
    Ok(())
}

fn convert_weights(root: &Path, args: &[&str]) -> Result<()> {
    let [input, output] = args else {
        bail!("usage: cargo xtask convert-weights IN.pth OUT.safetensors");
    };
    setup::setup_venv(root)?;
    let script = root.join("xtask/convert_weights.py");
    if !script.is_file() {
        bail!("{} is missing", script.display());
    }
    run_cmd(Command::new(setup::venv_python(root)).arg(script).arg(input).arg(output))
}
