//! End to end on the CPU: a training run killed after its final checkpoint
//! is finished by `--resume` exactly as an uninterrupted run ends; a run
//! killed before its first checkpoint, a diverging run and out-of-range
//! numbers each stop with one clear line.
//!
//! The dataset: face crops of the sample photos (boxes from `maskforge
//! detect data/samples`), each also with a synthetic mask drawn over the
//! lower face, plus one corrupt training image that every report must list.

use image::{Rgb, RgbImage};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{draw_synthetic_mask, samples, SAMPLE_FACES as FACES};

const CROP: u32 = 48;
/// Crops per face and class; the first `VAL_FROM` train, the rest validate.
const VARIANTS: u32 = 6;
const VAL_FROM: u32 = 4;

/// A small, fast run: two epochs of ResNet18 on 32-pixel inputs.
const RUN: [&str; 16] = [
    "--arch",
    "resnet18",
    "--img-size",
    "32",
    "--batch-size",
    "8",
    "--epochs",
    "2",
    "--patience",
    "0",
    "--device",
    "cpu",
    "--workers",
    "2",
    "--seed",
    "5",
];

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_maskforge")
}

struct Dataset {
    dir: tempfile::TempDir,
    manifests: PathBuf,
}

impl Dataset {
    fn run_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("runs").join(name)
    }
}

/// A masked copy of a face crop.
fn masked(face: &RgbImage, shade: u8) -> RgbImage {
    let mut img = face.clone();
    draw_synthetic_mask(&mut img, Rgb([shade, 200, 230]));
    img
}

fn build_dataset() -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let manifests = dir.path().join("manifests");
    for d in [root.join("masked"), root.join("unmasked"), manifests.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    let header = "path,class_index,class,group,bytes\n";
    let (mut train, mut val) = (header.to_string(), header.to_string());
    for (file, l, t, r, b) in FACES {
        let img = maskforge_imageio::load_rgb(&samples().join(file), Default::default()).unwrap();
        let stem = file.trim_end_matches(".jpg");
        for v in 0..VARIANTS {
            // Shifted, differently sized crops around the detected face.
            let side = (r - l).max(b - t) * (1.3 + 0.06 * v as f32);
            let x = ((l + r - side) / 2.0 + 4.0 * v as f32).max(0.0) as u32;
            let y = ((t + b - side) / 2.0).max(0.0) as u32;
            let s = (side as u32).min(img.width() - x).min(img.height() - y);
            let face = image::imageops::crop_imm(&img, x, y, s, s).to_image();
            let face = image::imageops::resize(&face, CROP, CROP, image::imageops::FilterType::Triangle);
            for (index, class, im) in [(0, "masked", masked(&face, 40 * v as u8)), (1, "unmasked", face)] {
                let rel = format!("{class}/{stem}_{v}.png");
                im.save(root.join(&rel)).unwrap();
                let line = format!("{rel},{index},{class},{stem},0\n");
                let manifest = if v < VAL_FROM { &mut train } else { &mut val };
                manifest.push_str(&line);
            }
        }
    }
    std::fs::write(root.join("masked/corrupt.png"), b"\x89PNG\r\n\x1a\n not really").unwrap();
    train.push_str("masked/corrupt.png,0,masked,corrupt,0\n");
    std::fs::write(manifests.join("train.csv"), train).unwrap();
    std::fs::write(manifests.join("val.csv"), val).unwrap();
    std::fs::write(manifests.join("classes.csv"), "index,name,count\n0,masked,24\n1,unmasked,24\n").unwrap();
    let split = serde_json::json!({ "dataset_root": root });
    std::fs::write(manifests.join("split.json"), split.to_string()).unwrap();
    Dataset { dir, manifests }
}

/// `train --manifests M --out RUN` with the small run's flags and `extra`.
fn train_command(ds: &Dataset, run: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args([
        "train",
        "--manifests",
        ds.manifests.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--norm",
        "imagenet",
    ]);
    c.args(RUN).args(extra);
    c
}

fn succeed(c: &mut Command) -> String {
    let out = c.output().expect("maskforge runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{c:?} failed:\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// The single `error:` line of a failed run (and that it failed).
fn failure_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    errors[0].to_string()
}

/// The epoch count in `last.safetensors`' training state, read from the
/// file's header alone (it is polled); `None` while there is no such file.
fn last_epoch(run: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(run.join("last.safetensors")).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).unwrap();
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    file.read_exact(&mut header).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    let state = header["__metadata__"]["maskforge_train_state"].as_str().unwrap();
    serde_json::from_str::<serde_json::Value>(state).unwrap()["epoch"].as_u64()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// metrics.csv without the timing columns (seconds, images/s).
fn metrics_without_timings(run: &Path) -> Vec<String> {
    read(&run.join("metrics.csv")).lines().map(|l| l.split(',').take(8).collect::<Vec<_>>().join(",")).collect()
}

fn report_without_model_path(run: &Path) -> serde_json::Value {
    let mut report: serde_json::Value = serde_json::from_str(&read(&run.join("report.json"))).unwrap();
    report.as_object_mut().unwrap().remove("model");
    report
}

fn temp_files(run: &Path) -> Vec<String> {
    let names = std::fs::read_dir(run).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|n| n.ends_with(".tmp")).collect()
}

/// Trains until `last.safetensors` holds the final epoch, then kills the
/// process at once (SIGKILL): the epoch is committed but what follows it
/// (best checkpoint, metrics row, curves, report) may not be written yet.
/// Returns whether the kill came in time; when it did not, the process had
/// finished and the caller must recreate the torn state.
fn train_and_kill_after_final_checkpoint(ds: &Dataset, run: &Path) -> bool {
    let mut child = train_command(ds, run, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    loop {
        if last_epoch(run) == Some(2) {
            child.kill().unwrap();
            child.wait().unwrap();
            return !run.join("report.json").exists();
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the run to be killed failed on its own");
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn resume_finishes_a_run_killed_after_its_final_checkpoint() {
    let ds = build_dataset();
    let twin = ds.run_dir("twin");
    succeed(&mut train_command(&ds, &twin, &[]));

    let run = ds.run_dir("killed");
    if !train_and_kill_after_final_checkpoint(&ds, &run) {
        // Missed the window (a loaded machine): make the state the earliest
        // kill leaves. Epoch 1's metrics.csv is the final one without its
        // last row (rows are rewritten from the saved history each epoch).
        eprintln!("the kill came after the run ended; recreating the torn state");
        let metrics = read(&run.join("metrics.csv"));
        let first_epoch: Vec<&str> = metrics.lines().take(2).collect();
        std::fs::write(run.join("metrics.csv"), first_epoch.join("\n") + "\n").unwrap();
        for f in ["report.json", "report.txt"] {
            std::fs::remove_file(run.join(f)).unwrap();
        }
    }
    assert_eq!(last_epoch(&run), Some(2), "the final epoch is committed");
    assert!(!run.join("report.json").exists(), "the run is torn: no report yet");
    // Temporary files of dead writers on this host ("4194304": above Linux's largest pid).
    let dead_temp = |target: &str, tag: &str| -> String {
        let live = maskforge_imageio::temp_path_for(&run.join(target), tag);
        let name = live.file_name().unwrap().to_string_lossy().into_owned();
        name.replace(&format!("~{}.", std::process::id()), "~4194304.")
    };
    let dead_metrics = dead_temp("metrics.csv", "0");
    for name in [dead_metrics.clone(), dead_temp("best.safetensors", "1")] {
        std::fs::write(run.join(name), b"half-written").unwrap();
    }

    let stderr = succeed(Command::new(bin()).args(["train", "--resume", run.to_str().unwrap()]));
    assert!(stderr.contains("already has 2 epoch(s) of --epochs 2: completing its outputs"), "{stderr}");
    assert!(stderr.contains(&format!("{dead_metrics}, left by a killed run")), "{stderr}");
    assert_eq!(temp_files(&run), Vec::<String>::new(), "stale temporary files removed");
    assert_eq!(metrics_without_timings(&run), metrics_without_timings(&twin));
    assert_eq!(metrics_without_timings(&run).len(), 3, "header and two epochs");
    assert_eq!(report_without_model_path(&run), report_without_model_path(&twin));
    let report = report_without_model_path(&run);
    assert_eq!(report["skipped_files"][0]["path"], "masked/corrupt.png", "{report}");
    let twin_text = read(&twin.join("report.txt")).replace(twin.to_str().unwrap(), run.to_str().unwrap());
    assert_eq!(read(&run.join("report.txt")), twin_text);
    for f in ["best.safetensors", "curves.png"] {
        let same = std::fs::read(run.join(f)).unwrap() == std::fs::read(twin.join(f)).unwrap();
        assert!(same, "{f} differs from the uninterrupted run's");
    }

    // Idempotent: resuming the finished run again changes nothing.
    let before: Vec<Vec<u8>> = ["metrics.csv", "report.json", "report.txt", "config.json"]
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    succeed(Command::new(bin()).args(["train", "--resume", run.to_str().unwrap()]));
    let after: Vec<Vec<u8>> = ["metrics.csv", "report.json", "report.txt", "config.json"]
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    assert!(before == after, "a second resume rewrote the outputs differently");

    // Killed in its first epoch: a config.json and no checkpoint.
    let early = ds.run_dir("killed-in-epoch-1");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::copy(twin.join("config.json"), early.join("config.json")).unwrap();
    let out = Command::new(bin()).args(["train", "--resume", early.to_str().unwrap()]).output().unwrap();
    let line = failure_line(&out);
    assert!(line.contains("nothing to resume") && line.contains("start the run again without --resume"), "{line}");
    assert!(line.contains(early.to_str().unwrap()), "{line}");
    assert_eq!(std::fs::read_dir(&early).unwrap().count(), 1, "nothing written");

    // A saved configuration is checked as the flags are.
    let mut config: serde_json::Value = serde_json::from_str(&read(&twin.join("config.json"))).unwrap();
    config["config"]["gamma"] = serde_json::json!(-1.0);
    std::fs::write(early.join("config.json"), config.to_string()).unwrap();
    let out = Command::new(bin()).args(["train", "--resume", early.to_str().unwrap()]).output().unwrap();
    let line = failure_line(&out);
    assert!(line.contains("cannot resume") && line.contains("--gamma must be in (0, 1], got -1"), "{line}");
}

#[test]
fn a_diverging_run_stops_with_one_line_and_no_checkpoint() {
    let ds = build_dataset();
    let run = ds.run_dir("diverged");
    let out = train_command(&ds, &run, &["--lr", "1e12", "--warmup-epochs", "0"]).output().unwrap();
    let line = failure_line(&out);
    assert!(line.contains("training diverged: loss is"), "{line}");
    assert!(line.contains("at epoch 1 step") && line.ends_with("lower --lr (was 1e12)"), "{line}");
    for f in ["best.safetensors", "last.safetensors", "report.json", "metrics.csv"] {
        assert!(!run.join(f).exists(), "{f} written from diverged weights");
    }
}

#[test]
fn out_of_range_numbers_are_refused_before_anything_is_written() {
    let ds = build_dataset();
    let bad: [(&str, &str); 36] = [
        ("--lr", "0"),
        ("--lr", "-0.1"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--min-lr", "-5"),
        ("--min-lr", "1"),
        ("--gamma", "-1"),
        ("--gamma", "1.5"),
        ("--momentum", "1"),
        ("--weight-decay", "-0.1"),
        ("--dropout", "1"),
        ("--label-smoothing", "1"),
        ("--label-smoothing", "-0.1"),
        ("--batch-size", "0"),
        ("--batch-size", "100000"),
        ("--epochs", "0"),
        ("--img-size", "8"),
        ("--img-size", "100000"),
        ("--warmup-epochs", "-1"),
        ("--step-size", "0"),
        ("--hflip", "1.5"),
        ("--vflip", "-0.5"),
        ("--rotate", "1000"),
        ("--crop-scale", "0"),
        ("--jitter", "2"),
        ("--hue", "0.6"),
        ("--grey", "1.5"),
        ("--blur", "-0.1"),
        ("--jpeg", "2"),
        ("--downscale", "nan"),
        ("--erase", "-1"),
        ("--workers", "100000"),
        ("--prefetch", "0"),
        ("--prefetch", "100000"),
        ("--max-pixels", "0"),
        ("--max-pixels", "5000000000"),
    ];
    for (i, (flag, value)) in bad.iter().enumerate() {
        let run = ds.run_dir(&format!("bad-{i}"));
        let arg = format!("{flag}={value}");
        let out = Command::new(bin())
            .args(["train", "--manifests", ds.manifests.to_str().unwrap(), "--out", run.to_str().unwrap()])
            .args(["--norm", "imagenet", "--device", "cpu", &arg])
            .output()
            .unwrap();
        let line = failure_line(&out);
        assert!(line.contains(&format!("{flag} must be")), "{arg}: {line}");
        assert!(!run.exists(), "{arg}: the run folder was created");
    }
    for (flag, value) in [("--batch-size", "0"), ("--workers", "100000"), ("--max-pixels", "0")] {
        let out_dir = ds.run_dir("eval-bad");
        let arg = format!("{flag}={value}");
        let out = Command::new(bin())
            .args([
                "eval",
                "--model",
                "no-such.safetensors",
                "--manifest",
                ds.manifests.join("val.csv").to_str().unwrap(),
            ])
            .args(["--out", out_dir.to_str().unwrap(), "--device", "cpu", &arg])
            .output()
            .unwrap();
        let line = failure_line(&out);
        assert!(line.contains(&format!("{flag} must be")), "eval {arg}: {line}");
        assert!(!out_dir.exists(), "eval {arg}: the output folder was created");
    }
}
