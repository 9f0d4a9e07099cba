//! `cargo xtask realcheck`: does a classifier trained only on `maskforge
//! mask` outputs tell real masked faces from real bare ones?
//!
//! The crowds development set's 300 photos are split in two halves by a hash
//! of their file names. From the source half, the real unmasked faces (the
//! `no_mask` boxes of at least 64 px) are cut out and masked by `maskforge
//! mask`; their unmasked twins go through the same path, so the two classes
//! differ only by the drawn mask. A small ResNet18 is trained from scratch on
//! them (`split`, then `train`), and `maskforge predict --labels` scores it on
//! the other half: real photos with real masks, never seen in training. No
//! real masked face is ever used for training, and the set's scene-type cue
//! (masked faces from news crowds, bare ones from stock portraits: its README,
//! "Caveats") cannot be learnt, since both classes come from the same crops.
//!
//! The set is read where it lies; every work file goes to target/realcheck/.

use crate::faces::{
    column_finder, default_crowds, fresh_dir, locate_crowds, make_crops, masked_source_set, maskforge_bin, read_truth,
    run_timed, Truth,
};
use crate::{run_cmd, setup};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask realcheck [--crowds DIR] [--epochs N] [--draws K] [--jobs N] [--no-build]
                             [--mask-args ARGS] [--train-args ARGS] [--work DIR]

  --crowds DIR   the crowds set (photos/, boxes.csv) [default: $MASKFORGE_CROWDS, else
                 ../shared/data/crowds from the checkout]
  --epochs N     training epochs of the ResNet18 (from scratch, 112 px, CPU) [default: 8]
  --draws K      masked outputs per source face (`mask --draws`); above 1, `train
                 --class-weights auto` balances the classes [default: 3]
  --jobs N       worker threads for maskforge (mask, train's decoding, predict) [default: 2]
  --no-build     use target/release/maskforge as it is
  --mask-args ARGS   extra arguments for `maskforge mask` (one string, split at spaces),
                     e.g. \"--draws 3\"; added after the defaults (a flag given twice is refused)
  --train-args ARGS  the same for `maskforge train`, e.g. \"--grey 0.5 --epochs 12\"
  --work DIR     where the work files and report.json go [default: target/realcheck]";

/// Source faces: `no_mask` boxes with a shorter side of at least this,
/// grown by this share of their size per side (clamped to the photo).
const SOURCE_MIN_SIDE: u32 = 64;
const SOURCE_MARGIN: f64 = 0.2;
/// Side of the face crops `mask` writes, and the model's input size.
const CROP_SIZE: &str = "112";
/// predict's smallest face: the set's smallest box is 23 px.
const PREDICT_MIN_FACE: &str = "24";
/// The set's labels as the model's classes (`mask` writes `correct/` and `unmasked/`).
const CLASS_MAP: &str = "mask=correct,no_mask=unmasked";
/// Masked outputs per source face: with ~120 sources, one draw each left
/// real masked recall at 68-77% over two seeds, three at 86-89% (and the
/// unmasked side 94-99%): the variety of masks, not of faces, was short.
const DRAWS: u32 = 3;
const LABELS: [(&str, &str); 2] = [("mask", "correct"), ("no_mask", "unmasked")];

struct Opts {
    crowds: PathBuf,
    epochs: u32,
    draws: u32,
    jobs: usize,
    build: bool,
    mask_args: Vec<String>,
    train_args: Vec<String>,
    work: Option<PathBuf>,
}

fn split_args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn parse_args(root: &Path, args: &[&str]) -> Result<Opts> {
    let mut o = Opts {
        crowds: default_crowds(root),
        epochs: 8,
        draws: DRAWS,
        jobs: 2,
        build: true,
        mask_args: Vec::new(),
        train_args: Vec::new(),
        work: None,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut value = || it.next().copied().with_context(|| format!("{a} needs a value\n\n{USAGE}"));
        match a {
            "--crowds" => o.crowds = PathBuf::from(value()?),
            "--epochs" => o.epochs = value()?.parse().context("--epochs: a whole number")?,
            "--draws" => o.draws = value()?.parse().context("--draws: a whole number")?,
            "--jobs" | "-j" => o.jobs = value()?.parse().context("--jobs: a whole number")?,
            "--no-build" => o.build = false,
            "--mask-args" => o.mask_args = split_args(value()?),
            "--train-args" => o.train_args = split_args(value()?),
            "--work" => o.work = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if o.jobs == 0 || o.epochs == 0 || o.draws == 0 {
        bail!("--jobs, --epochs and --draws must be at least 1");
    }
    Ok(o)
}

/// The half a photo belongs to: sources when the first byte of the SHA-256
/// of its file name is even, evaluation when odd. Stable across runs,
/// machines and set versions (a photo never changes sides).
pub fn is_source(name: &str) -> bool {
    Sha256::digest(name.as_bytes())[0] % 2 == 0
}

fn shorter_side(t: &Truth) -> f64 {
    (t.b[2] - t.b[0]).min(t.b[3] - t.b[1])
}

/// Writes the boxes (`image,xmin,ymin,xmax,ymax,label`, as boxes.csv) of
/// `photos` that `keep` accepts; returns how many.
fn write_boxes<'a>(
    path: &Path,
    photos: impl IntoIterator<Item = (&'a String, &'a Vec<Truth>)>,
    keep: impl Fn(&Truth) -> bool,
) -> Result<usize> {
    let mut wr = csv::Writer::from_path(path).with_context(|| format!("write {}", path.display()))?;
    wr.write_record(["image", "xmin", "ymin", "xmax", "ymax", "label"])?;
    let mut n = 0;
    for (name, faces) in photos {
        for t in faces.iter().filter(|t| keep(t)) {
            let [x0, y0, x1, y1] = t.b.map(|v| v.to_string());
            wr.write_record([name.as_str(), &x0, &y0, &x1, &y1, &t.label])?;
            n += 1;
        }
    }
    wr.flush()?;
    Ok(n)
}

/// Photos and boxes by label of one half.
fn half_counts<'a>(photos: impl IntoIterator<Item = &'a Vec<Truth>>) -> (usize, BTreeMap<String, usize>) {
    let (mut n, mut by_label) = (0, BTreeMap::new());
    for faces in photos {
        n += 1;
        for t in faces {
            *by_label.entry(t.label.clone()).or_insert(0) += 1;
        }
    }
    (n, by_label)
}

fn labels_text(by_label: &BTreeMap<String, usize>) -> String {
    by_label.iter().map(|(l, n)| format!("{n} {l}")).collect::<Vec<_>>().join(", ")
}

/// Rows of a `split` manifest by class.
fn manifest_classes(file: &Path) -> Result<BTreeMap<String, usize>> {
    let mut rd = csv::Reader::from_path(file).with_context(|| format!("read {}", file.display()))?;
    let class = column_finder(rd.headers()?.clone(), file)("class")?;
    let mut by_class = BTreeMap::new();
    for rec in rd.records() {
        *by_class.entry(rec?[class].to_string()).or_insert(0) += 1;
    }
    Ok(by_class)
}

/// Fills `dir` with the evaluation photos: symbolic links to them, or copies
/// when `copy` is set or the file system refuses a link. Returns how they
/// were placed.
fn place_photos(dir: &Path, photos: &Path, names: &[&String], copy: bool) -> Result<&'static str> {
    fresh_dir(dir)?;
    std::fs::create_dir_all(dir)?;
    let mut mode = if copy { "copies" } else { "symlinks" };
    for name in names {
        let (from, to) = (photos.join(name), dir.join(name));
        if !from.is_file() {
            bail!("{} is missing (listed in boxes.csv)", from.display());
        }
        #[cfg(unix)]
        if mode == "symlinks" && std::os::unix::fs::symlink(&from, &to).is_ok() {
            continue;
        }
        mode = "copies";
        std::fs::copy(&from, &to).with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    }
    Ok(mode)
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// Times the steps, for the summary.
struct Clock(Vec<(&'static str, f64)>, Instant);

impl Clock {
    fn lap(&mut self, step: &'static str) {
        self.0.push((step, self.1.elapsed().as_secs_f64()));
        self.1 = Instant::now();
    }
}

pub fn realcheck(root: &Path, args: &[&str]) -> Result<()> {
    let o = parse_args(root, args)?;
    let (crowds, photos, boxes_csv) = locate_crowds(&o.crowds)?;
    setup::setup(root)?;
    let bin = maskforge_bin(root, o.build)?;
    let work = o.work.clone().unwrap_or_else(|| root.join("target/realcheck"));
    std::fs::create_dir_all(&work)?;
    let jobs = o.jobs.to_string();
    let mut clock = Clock(Vec::new(), Instant::now());

    // 1. Two disjoint halves, by photo.
    let truth = read_truth(&boxes_csv)?;
    let (src, eval): (BTreeMap<_, _>, BTreeMap<_, _>) = truth.iter().partition(|(name, _)| is_source(name));
    let (src_n, src_labels) = half_counts(src.values().copied());
    let (eval_n, eval_labels) = half_counts(eval.values().copied());
    println!("==> split by photo (SHA-256 of the file name: even → sources, odd → evaluation), {}", crowds.display());
    println!("    sources:    {src_n} photos, boxes: {}", labels_text(&src_labels));
    println!("    evaluation: {eval_n} photos, boxes: {}", labels_text(&eval_labels));
    clock.lap("split halves");

    // 2. Real unmasked faces of the source half.
    println!(
        "==> sources: `no_mask` boxes of the source half with a shorter side ≥ {SOURCE_MIN_SIDE} px, {:.0}% margin per side, JPEG q95",
        SOURCE_MARGIN * 100.0
    );
    let source_boxes = work.join("source_boxes.csv");
    write_boxes(&source_boxes, src.iter().map(|(k, v)| (*k, *v)), |t| t.label == "no_mask")?;
    let crops = work.join("crops");
    make_crops(root, &photos, &source_boxes, &crops, SOURCE_MIN_SIDE, SOURCE_MARGIN)?;
    let sources = work.join("sources");
    fresh_dir(&sources)?;
    let made = crops.join("no_mask");
    if !made.is_dir() {
        bail!("no source face crops were made (no `no_mask` box ≥ {SOURCE_MIN_SIDE} px in the source half)");
    }
    std::fs::rename(&made, &sources).with_context(|| format!("move {} to {}", made.display(), sources.display()))?;
    fresh_dir(&crops)?;
    let n_sources = std::fs::read_dir(&sources)?.count();
    let eligible = src.values().flat_map(|f| f.iter()).filter(|t| t.label == "no_mask").count();
    let small = src
        .values()
        .flat_map(|f| f.iter())
        .filter(|t| t.label == "no_mask" && shorter_side(t) < f64::from(SOURCE_MIN_SIDE))
        .count();
    println!(
        "    {n_sources} crops in {} ({small} of {eligible} `no_mask` boxes under {SOURCE_MIN_SIDE} px)",
        sources.display()
    );
    clock.lap("source crops");

    // 3. Masked and unmasked twins, 112 px face crops.
    let masked = work.join("masked");
    fresh_dir(&masked)?;
    let draws = o.draws.to_string();
    println!(
        "==> maskforge mask --faces auto --variants correct --unmasked encode --crop-size {CROP_SIZE} --draws {draws} --seed 1 -j {jobs}"
    );
    run_timed(
        Command::new(&bin)
            .arg("mask")
            .arg(&sources)
            .arg("-o")
            .arg(&masked)
            .args([
                "--faces",
                "auto",
                "--variants",
                "correct",
                "--unmasked",
                "encode",
                "--crop-size",
                CROP_SIZE,
                "--draws",
                &draws,
                "--seed",
                "1",
                "-j",
                &jobs,
            ])
            .args(&o.mask_args),
    )
    .map_err(|e| anyhow::anyhow!("maskforge mask failed: {e}"))?;
    let used = masked_source_set(&masked.join("annotations.csv"))?.len();
    println!("    {used} of {n_sources} source crops got a mask");
    clock.lap("mask");

    // 4. Train/val manifests, grouped by source crop.
    let manifests = work.join("manifests");
    fresh_dir(&manifests)?;
    println!("==> maskforge split (80/20, grouped by source)");
    run_timed(Command::new(&bin).arg("split").arg(&masked).arg("-o").arg(&manifests))
        .map_err(|e| anyhow::anyhow!("maskforge split failed: {e}"))?;
    let train_classes = manifest_classes(&manifests.join("train.csv"))?;
    let val_classes = manifest_classes(&manifests.join("val.csv"))?;
    println!("    train: {}; val: {}", labels_text(&train_classes), labels_text(&val_classes));
    clock.lap("split");

    // 5. ResNet18 from scratch (no --weights: nothing is downloaded).
    let run = work.join("run");
    fresh_dir(&run)?;
    // K masked outputs per unmasked twin: weight the classes back to even.
    let weights: &[&str] = if o.draws > 1 { &["--class-weights", "auto"] } else { &[] };
    println!(
        "==> maskforge train --arch resnet18 --img-size {CROP_SIZE} --epochs {} {} --device cpu (from scratch) -j {jobs}",
        o.epochs,
        weights.join(" ")
    );
    run_cmd(
        Command::new(&bin)
            .arg("train")
            .arg("--manifests")
            .arg(&manifests)
            .arg("--out")
            .arg(&run)
            .args([
                "--arch",
                "resnet18",
                "--img-size",
                CROP_SIZE,
                "--epochs",
                &o.epochs.to_string(),
                "--device",
                "cpu",
                "-j",
                &jobs,
            ])
            .args(weights)
            .args(&o.train_args),
    )?;
    let run_report = run.join("report.json");
    let val_accuracy = if run_report.is_file() { read_json(&run_report)?["accuracy"].as_f64() } else { None };
    clock.lap("train");

    // 6. predict on the evaluation half only.
    let eval_boxes = work.join("eval_boxes.csv");
    let n_eval_boxes = write_boxes(&eval_boxes, eval.iter().map(|(k, v)| (*k, *v)), |_| true)?;
    let eval_photos = work.join("eval_photos");
    let names: Vec<&String> = eval.keys().copied().collect();
    // predict has no --list: it reads a folder holding only the evaluation photos.
    let mut placed = place_photos(&eval_photos, &photos, &names, false)?;
    println!(
        "==> maskforge predict on the {eval_n} evaluation photos ({placed} in {}), {n_eval_boxes} labelled faces",
        eval_photos.display()
    );
    let predicted = work.join("predict");
    let predict = |out: &Path| {
        fresh_dir(out).map_err(|e| format!("{e:#}"))?;
        run_timed(
            Command::new(&bin)
                .arg("predict")
                .arg(&eval_photos)
                .arg("--model")
                .arg(run.join("best.safetensors"))
                .arg("--out")
                .arg(out)
                .arg("--labels")
                .arg(&eval_boxes)
                .args(["--class-map", CLASS_MAP, "--min-face", PREDICT_MIN_FACE, "--device", "cpu", "-j", &jobs])
                // The framing and resolution the training crops were cut with.
                .args(["--crop-size", CROP_SIZE]),
        )
    };
    if let Err(e) = predict(&predicted) {
        if placed != "symlinks" {
            bail!("maskforge predict failed: {e}");
        }
        println!("    predict failed on the symlinks: {e}");
        placed = place_photos(&eval_photos, &photos, &names, true)?;
        println!("    again, with copies of the photos");
        predict(&predicted).map_err(|e| anyhow::anyhow!("maskforge predict failed: {e}"))?;
    }
    clock.lap("predict");

    // 7. The numbers.
    let scenes = read_json(&predicted.join("scenes.json"))?;
    let score = &scenes["score"];
    let classes: Vec<&str> = score["classes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut by_label = serde_json::Map::new();
    for (label, class) in LABELS {
        let Some(i) = classes.iter().position(|c| *c == class) else {
            bail!("the model has no class `{class}` (classes: {})", classes.join(", "));
        };
        let c = &score["by_class"][i];
        let (found, correct) = (c["found"].as_u64().unwrap_or(0), c["correct"].as_u64().unwrap_or(0));
        by_label.insert(
            label.into(),
            json!({
                "class": class,
                "annotated": c["annotated"],
                "found": found,
                "correct": correct,
                "accuracy": (found > 0).then(|| correct as f64 / found as f64),
            }),
        );
    }
    let head = &score["headline"];
    let recall = scenes["recall_faces_32px_or_more"].as_f64();
    let balanced = scenes["balanced_accuracy"].as_f64();
    let acc = |l: &str| by_label[l]["accuracy"].as_f64();
    let seconds: serde_json::Map<String, Value> = clock.0.iter().map(|(s, t)| (s.to_string(), json!(t))).collect();
    let report = json!({
        "crowds": crowds.display().to_string(),
        "halves": {
            "rule": "SHA-256 of the photo's file name: first byte even -> sources, odd -> evaluation",
            "sources": {"photos": src_n, "boxes": src_labels},
            "evaluation": {"photos": eval_n, "boxes": eval_labels},
        },
        "sources": {
            "min_side": SOURCE_MIN_SIDE,
            "margin": SOURCE_MARGIN,
            "crops": n_sources,
            "masked": used,
            "draws": o.draws,
            "mask_args": o.mask_args,
        },
        "training": {
            "arch": "resnet18",
            "weights": "none (from scratch)",
            "img_size": 112,
            "epochs": o.epochs,
            "class_weights": if o.draws > 1 { "auto" } else { "none" },
            "train_images": train_classes.values().sum::<usize>(),
            "train_by_class": train_classes,
            "val_images": val_classes.values().sum::<usize>(),
            "val_accuracy": val_accuracy,
            "train_args": o.train_args,
        },
        "evaluation": {
            "photos": eval_n,
            "photos_placed_as": placed,
            "labelled_faces": n_eval_boxes,
            "recall_faces_32px_or_more": {"found": head["found"], "annotated": head["annotated"], "recall": recall},
            "accuracy_of_found": scenes["accuracy_of_found"],
            "accuracy_of_found_by_label": by_label,
            "balanced_accuracy": balanced,
            "unmatched_boxes": score["unmatched"],
            "detector_boxes": score["detections"],
        },
        "seconds": seconds,
    });
    let report_path = work.join("report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")?;

    println!();
    println!("realcheck: trained only on `maskforge mask` outputs of real bare faces, scored on other real photos");
    println!("  sources:       {used} of {n_sources} real `no_mask` face crops masked ({src_n} source photos)");
    println!(
        "  training:      {} images ({}), ResNet18 from scratch, {} epochs; val accuracy {}",
        train_classes.values().sum::<usize>(),
        labels_text(&train_classes),
        o.epochs,
        pct(val_accuracy)
    );
    println!(
        "  evaluation:    {eval_n} photos, {n_eval_boxes} labelled faces; faces ≥ 32 px found: {} ({}/{})",
        pct(recall),
        head["found"],
        head["annotated"]
    );
    for (label, _) in LABELS {
        let b = &by_label[label];
        println!("  {label:<14} accuracy of found faces {} ({}/{})", pct(acc(label)), b["correct"], b["found"]);
    }
    println!("  balanced accuracy: {}", pct(balanced));
    println!("  seconds: {}", clock.0.iter().map(|(s, t)| format!("{s} {t:.1}")).collect::<Vec<_>>().join(", "));
    println!("report: {}", report_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_follow_the_first_byte_of_the_name_hash() {
        // SHA-256 first bytes: a.jpg 0x50, -1x-1.jpg 0x04, b,1%.jpg 0xbe; x.jpg 0x8f, d.jpg 0x53.
        for n in ["a.jpg", "-1x-1.jpg", "b,1%.jpg"] {
            assert!(is_source(n), "{n}");
        }
        for n in ["x.jpg", "d.jpg"] {
            assert!(!is_source(n), "{n}");
        }
    }

    #[test]
    fn boxes_round_trip_through_csv_with_commas_in_names() {
        let dir = std::env::temp_dir().join(format!("xtask-realcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("boxes.csv");
        let mut photos = BTreeMap::new();
        photos.insert(
            "b,1%.jpg".to_string(),
            vec![
                Truth { b: [1.0, 2.0, 101.0, 90.0], label: "no_mask".into() },
                Truth { b: [5.0, 5.0, 20.0, 20.0], label: "mask".into() },
            ],
        );
        assert_eq!(write_boxes(&path, &photos, |t| t.label == "no_mask").unwrap(), 1);
        let back = read_truth(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back["b,1%.jpg"][0].b, [1.0, 2.0, 101.0, 90.0]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().nth(1), Some("\"b,1%.jpg\",1,2,101,90,no_mask"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
