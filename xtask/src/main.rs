//! `cargo xtask <chore>`: every project chore in one place (rust-analyzer's
//! pattern). Set-up is idempotent and installs only what is missing; every
//! cargo call made from here gets the libtorch build environment, so a user
//! never exports anything by hand.
//!
//!   cargo xtask setup                 apt packages, .venv with torch (shared per machine), models, sample photos
//!   cargo xtask demo                  set-up, then the whole pipeline on the sample photos
//!   cargo xtask test                  set-up, fmt + clippy checks, then every test of the workspace
//!   cargo xtask lint                  the layer, module-order and function-length checks, fmt + clippy
//!   cargo xtask build [ARGS]          set-up, then a release build of the binary
//!   cargo xtask bench <stage>         detect | mask | split | train | all
//!   cargo xtask bench faces           face detectors vs OpenCV's res10 SSD on real crowd photos
//!   cargo xtask realcheck             train on masked real bare faces only, score on other real photos
//!   cargo xtask gallery               the mask gallery of docs/mask.md, from the sample photos
//!   cargo xtask convert-weights IN OUT   torchvision .pth state_dict -> .safetensors

mod faces;
mod gallery;
mod realcheck;
mod setup;
mod tidy;
mod venv;

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
        Some("setup") => match rest.as_slice() {
            [] => setup::setup(&root),
            ["venv"] => setup::setup_venv(&root),
            _ => bail!("usage: cargo xtask setup [venv]"),
        },
        Some("demo") => demo(&root),
        Some("test") => test(&root, &rest),
        Some("lint") => setup::setup(&root).and_then(|()| lint(&root)),
        Some("build") => {
            setup::setup(&root)?;
            run_cmd(cargo(&root).args(["build", "--release", "-p", "maskforge"]).args(&rest))
        }
        Some("bench") => bench(&root, &rest),
        Some("realcheck") => realcheck::realcheck(&root, &rest),
        Some("gallery") => gallery::gallery(&root),
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
                             torch 2.11.0, the dlib models (models/), the sample photos (data/samples/);
                             .venv links to one venv per machine ($MASKFORGE_VENV, or
                             ~/.cache/maskforge/venvs/KEY), shared by every clone
  setup venv                 just the .venv step
  demo                       setup, build, then run every pipeline stage on the sample photos
  test [ARGS...]             setup, `cargo fmt --check`, `cargo clippy -D warnings`, then
                             `cargo test --workspace` (ARGS are passed to cargo test)
  lint                       just the checks: crate layers, module order and function length
                             (xtask/src/tidy.rs, against ARCHITECTURE.md), fmt and clippy
  build [ARGS...]            setup, then `cargo build --release -p maskforge ARGS` with the libtorch
                             environment (e.g. `--no-default-features --features tch`: no dlib)
  bench <stage>              setup, then print images/s for a stage: detect | mask | split | train | all
                             (`all` is those four; it does not include `faces`)
  bench faces [OPTIONS]      setup, build, then maskforge's face detectors (default hog,mtcnn) and
                             OpenCV's res10 SSD on the crowds set (../shared/data/crowds, --crowds
                             DIR or $MASKFORGE_CROWDS): recall, unmatched boxes, photos/s; then the
                             share of real face crops `mask` masks (--help: the options)
  realcheck [OPTIONS]        setup, build, then on the crowds set (as bench faces): mask the real bare
                             faces of half its photos (3 draws each), train a ResNet18 (from
                             scratch, CPU) on them alone, and score it with `predict --labels` on the
                             other half's real masked and bare faces; target/realcheck/report.json
                             (--help: --crowds DIR, --epochs N [8], --draws K [3], --jobs N [2],
                             --seeds LIST (one run per training seed, and their mean),
                             --source-margin M [0.2], --no-build, --mask-args ARGS,
                             --train-args ARGS, --work DIR)
  gallery                    setup, build, then draw docs/gallery/: one contact sheet per mask style
                             (every wear variant) and per variant (every style), from the sample
                             photos; rewrites docs/mask.md's gallery section to list them
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
    lint(root)?;
    println!("==> cargo test --workspace");
    let mut cmd = cargo(root);
    if std::env::var_os("CI").is_some() {
        // A CI run builds once: incremental caches would only take disk.
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    run_cmd(cmd.args(["test", "--workspace"]).args(extra))
}

/// The layer of each project crate (ARCHITECTURE.md, "Layers"): a crate may
/// depend only on crates of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("maskforge-face", 0),
    ("maskforge-rng", 0),
    ("maskforge-draw", 0),
    ("maskforge-imageio", 0),
    ("maskforge-metrics", 0),
    ("maskforge-contracts", 1),
    ("maskforge-mask", 1),
    ("maskforge-weights", 1),
    ("maskforge-pipeline", 2),
    ("maskforge-audit", 2),
    ("maskforge-split", 2),
    ("maskforge-train-core", 2),
    ("maskforge-mtcnn", 3),
    ("maskforge-centerface", 3),
    ("maskforge-landmarks", 3),
    ("maskforge-train", 3),
    ("maskforge", 4),
];

/// Native libraries and the crates allowed to link them.
const NATIVE: &[(&str, &[&str])] = &[
    ("dlib-face-recognition", &["maskforge-landmarks"]),
    ("tch", &["maskforge-train", "maskforge-mtcnn", "maskforge-centerface", "maskforge"]),
    ("torch-sys", &["maskforge-train", "maskforge-mtcnn", "maskforge-centerface", "maskforge"]),
];

/// Checks the normal (non-dev) dependencies of every workspace crate against
/// [`LAYERS`] and [`NATIVE`]; returns one line per violation.
fn layer_violations(root: &Path) -> Result<Vec<String>> {
    let out = cargo(root).args(["metadata", "--format-version", "1", "--no-deps"]).output()?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(check_layers(&serde_json::from_slice(&out.stdout)?))
}

/// The violations in `cargo metadata` output.
fn check_layers(meta: &serde_json::Value) -> Vec<String> {
    let layer = |name: &str| LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let mut problems = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let name = pkg["name"].as_str().unwrap_or_default();
        if name == "xtask" {
            continue;
        }
        let Some(own) = layer(name) else {
            problems.push(format!("{name}: not in xtask's LAYERS table (add it there and to ARCHITECTURE.md)"));
            continue;
        };
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let (dep_name, kind) = (dep["name"].as_str().unwrap_or_default(), dep["kind"].as_str());
            if kind.is_some() {
                continue; // dev- and build-dependencies may reach anywhere
            }
            match layer(dep_name) {
                Some(l) if l >= own => problems.push(format!("{name} (layer {own}) depends on {dep_name} (layer {l})")),
                _ => {}
            }
            if let Some((_, allowed)) = NATIVE.iter().find(|(n, _)| *n == dep_name) {
                if !allowed.contains(&name) {
                    problems.push(format!("{name} links {dep_name}; only {allowed:?} may"));
                }
            }
        }
    }
    problems
}

/// The checks every commit must pass: the crate layers, the module order
/// within crates and the length of functions (`tidy`), formatted
/// (rustfmt.toml), and no clippy warning in any target, for the full build,
/// the training-only one and the masking-only one (each half's tests must
/// build without the other).
fn lint(root: &Path) -> Result<()> {
    println!("==> crate layers (ARCHITECTURE.md)");
    let problems = layer_violations(root)?;
    if !problems.is_empty() {
        bail!("crate layering broken:\n  {}", problems.join("\n  "));
    }
    println!("==> module order and function length (ARCHITECTURE.md, xtask/src/tidy.rs)");
    let (problems, notes) = tidy::tidy(root)?;
    for note in notes {
        println!("note: {note}");
    }
    if !problems.is_empty() {
        bail!("tidy check failed:\n  {}", problems.join("\n  "));
    }
    println!("==> cargo fmt --check");
    run_cmd(cargo(root).args(["fmt", "--all", "--", "--check"]))?;
    println!("==> cargo clippy --workspace --all-targets -- -D warnings");
    run_cmd(clippy(root).args(["--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    for half in ["tch", "dlib"] {
        println!("==> cargo clippy -p maskforge --no-default-features --features {half} --all-targets -- -D warnings");
        run_cmd(clippy(root).args([
            "-p",
            "maskforge",
            "--no-default-features",
            "--features",
            half,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    Ok(())
}

/// `cargo clippy` without incremental caches: they are dependency graphs and
/// query results of every checked target (about 0.46 GB after the three
/// runs of [`lint`] in a fresh clone) and would speed up only the next lint
/// of the same clone, by seconds; a `cargo clippy` run by hand keeps its own.
fn clippy(root: &Path) -> Command {
    let mut cmd = cargo(root);
    cmd.env("CARGO_INCREMENTAL", "0").arg("clippy");
    cmd
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
            .args([
                "--class-map",
                "correct=mask_correct,nose_exposed=mask_incorrect,chin=mask_incorrect,chin_exposed=mask_incorrect",
            ])
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
    run_cmd(Command::new(&bin).arg("train").arg("--manifests").arg(&manifests).arg("--out").arg(&run_dir).args([
        "--arch",
        "resnet18",
        "--img-size",
        "64",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--patience",
        "0",
    ]))?;
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
        // Not an example of a crate: real photos from outside the checkout, several detectors.
        Some(&"faces") => return faces::bench(root, &args[1..]),
        Some(&"all") => vec!["detect", "mask", "split", "train"],
        Some(s) => vec![*s],
        None => bail!("usage: cargo xtask bench <detect|mask|split|train|all|faces>"),
    };
    setup::setup(root)?;
    for stage in stages {
        let package = match stage {
            "detect" => "maskforge-landmarks",
            "mask" => "maskforge",
            "split" => "maskforge-split",
            "train" => "maskforge-train",
            other => bail!("unknown benchmark `{other}` (detect, mask, split, train, all, faces)"),
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
            run_cmd(
                Command::new(setup::venv_python(root))
                    .arg(root.join("xtask/bench_train_pytorch.py"))
                    .arg("--work")
                    .arg(&work),
            )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, deps: &[(&str, Option<&str>)]) -> serde_json::Value {
        let deps: Vec<_> = deps.iter().map(|(d, k)| serde_json::json!({"name": d, "kind": k})).collect();
        serde_json::json!({"name": name, "dependencies": deps})
    }

    #[test]
    fn layer_rules_catch_upward_sideways_and_native_dependencies() {
        let ok = serde_json::json!({"packages": [
            pkg("maskforge-split", &[("maskforge-contracts", None), ("regex", None), ("maskforge-pipeline", Some("dev"))]),
            pkg("maskforge-train", &[("maskforge-train-core", None), ("tch", None)]),
        ]});
        assert_eq!(check_layers(&ok), Vec::<String>::new());
        let bad = serde_json::json!({"packages": [
            pkg("maskforge-split", &[("maskforge-pipeline", None)]),
            pkg("maskforge-face", &[("maskforge-mask", None)]),
            pkg("maskforge-mask", &[("tch", None)]),
            pkg("maskforge-new", &[]),
        ]});
        let problems = check_layers(&bad);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("maskforge-split (layer 2) depends on maskforge-pipeline (layer 2)"));
        assert!(problems[2].contains("links tch"));
        assert!(problems[3].contains("not in xtask's LAYERS table"));
    }
}
