//! End to end: what the manifest readers of `train`, `eval`, `verify` and
//! `split` refuse, as a user meets it.
//!
//! * rows whose path would leave the dataset root (`../outside/x.jpg` next
//!   to a real image outside the root, an absolute path to that image,
//!   `../../../etc/passwd`) are skipped and reported, never trained or
//!   evaluated on;
//! * a manifest set mixed by a killed split (train.csv of another seed) is
//!   refused with a message naming the file, and a re-run of split repairs it;
//! * sizes from the command line are bounded (`--stats-size 100000` once
//!   tried to allocate 30 GB);
//! * a split that cannot train a classifier (one class, an empty val) is an
//!   error unless explicitly allowed;
//! * `eval` refuses a manifest whose class names disagree with the model's.
//!
//! The images are tiny generated PNGs; training is one epoch of ResNet18 at
//! 32×32 on the CPU.

use image::{Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{ok, run, text};

/// Runs a command that must fail; returns its `error:` line (there must be exactly one).
fn fails(args: &[&str]) -> String {
    let stderr = common::fails(args);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    errors[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small image: a class colour with deterministic noise.
fn image(class: usize, seed: u32) -> RgbImage {
    let base = [[200u8, 60, 60], [60, 60, 200]][class % 2];
    RgbImage::from_fn(24, 24, |x, y| {
        let v =
            (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed.wrapping_mul(97)).wrapping_mul(2246822519) >> 24;
        Rgb(base.map(|b| b.saturating_add((v % 40) as u8)))
    })
}

const CLASSES: [&str; 2] = ["masked", "unmasked"];

/// ROOT/<class>/<i>.png for each class; returns the relative paths by class.
fn write_tree(root: &Path, per_class: usize) -> Vec<Vec<String>> {
    CLASSES
        .iter()
        .enumerate()
        .map(|(c, class)| {
            std::fs::create_dir_all(root.join(class)).unwrap();
            (0..per_class)
                .map(|i| {
                    let rel = format!("{class}/{i:02}.png");
                    image(c, (c * 1000 + i) as u32).save(root.join(&rel)).unwrap();
                    rel
                })
                .collect()
        })
        .collect()
}

/// Every file in a folder (recursively), relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

#[test]
fn split_refuses_unbounded_sizes_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    write_tree(&root, 4);
    let out = tmp.path().join("m");
    // An earlier, complete set in the output folder must survive untouched.
    ok(&["split", s(&root), "--out", s(&out), "--val", "0.5", "--group-by", "none"]);
    let before = snapshot(&out);
    for (args, expect) in [
        (vec!["split", s(&root), "--out", s(&out), "--stats-size", "100000"], "--stats-size"),
        (vec!["split", s(&root), "--out", s(&out), "--stats-size", "4097"], "1..=4096"),
        (vec!["split", s(&root), "--out", s(&out), "--max-pixels", "1000000000000"], "--max-pixels"),
        (vec!["split", s(&root), "--out", s(&out), "--jobs", "100000000"], "--jobs"),
        (vec!["stats", s(&out), "--stats-size", "100000"], "--stats-size"),
        (vec!["verify", s(&out), "--max-pixels", "18446744073709551615"], "--max-pixels"),
    ] {
        let err = fails(&args);
        assert!(err.contains(expect) && err.contains("out of range"), "{args:?}: {err}");
        assert_eq!(snapshot(&out), before, "{args:?} changed the output folder (or left a temporary file)");
    }
    // The largest allowed size works.
    let (stats, _) = ok(&["stats", s(&out), "--stats-size", "4096", "--jobs", "1"]);
    assert!(stats.contains("\"stats_size\": 4096"), "{stats}");
}

#[test]
fn splits_that_cannot_train_a_classifier_are_errors_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    std::fs::create_dir_all(one.join("masked")).unwrap();
    for i in 0..6 {
        image(0, i).save(one.join(format!("masked/{i}.png"))).unwrap();
    }
    let out = tmp.path().join("m");
    let err = fails(&["split", s(&one), "--out", s(&out)]);
    assert!(err.contains("only one class folder (\"masked\")") && err.contains("--allow-single-class"), "{err}");
    assert!(!out.exists(), "a refused split wrote {}", out.display());
    let (_, stderr) = ok(&["split", s(&one), "--out", s(&out), "--allow-single-class", "--group-by", "none"]);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(out.join("split.json").is_file());

    // A group regex without a capture group: the whole match (the class
    // folder) is every image's group, so val gets nothing.
    let root = tmp.path().join("data");
    write_tree(&root, 6);
    let out = tmp.path().join("m2");
    let err = fails(&["split", s(&root), "--out", s(&out), "--group-by", "regex:^[^/]+"]);
    assert!(err.contains("val.csv would be empty"), "{err}");
    assert!(err.contains("no capture group") && err.contains("--allow-empty-split"), "{err}");
    assert!(!out.exists(), "a refused split wrote {}", out.display());
    ok(&["split", s(&root), "--out", s(&out), "--group-by", "regex:^[^/]+", "--allow-empty-split"]);
    assert_eq!(text(&std::fs::read(out.join("val.csv")).unwrap()), "path,class_index,class,group,bytes\n");
    // With a capture group per image the same tree splits fine.
    let out = tmp.path().join("m3");
    ok(&["split", s(&root), "--out", s(&out), "--group-by", "regex:^[^/]+/([^.]+)"]);
}

#[test]
fn verify_and_stats_report_rows_outside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let rels = write_tree(&root, 2);
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    image(0, 99).save(outside.join("x.png")).unwrap();
    let bytes = |p: &Path| std::fs::metadata(p).unwrap().len();
    let mut csv = String::from("path,class_index,class,group,bytes\n");
    for r in &rels[0] {
        csv.push_str(&format!("{r},0,masked,{r},{}\n", bytes(&root.join(r))));
    }
    csv.push_str(&format!("../outside/x.png,0,masked,x,{}\n", bytes(&outside.join("x.png"))));
    csv.push_str(&format!("{},0,masked,y,{}\n", s(&outside.join("x.png")), bytes(&outside.join("x.png"))));
    let m = tmp.path().join("any.csv");
    std::fs::write(&m, csv).unwrap();
    let out = run(&["verify", s(&m), "--root", s(&root)]);
    let report = text(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("any.csv: line 4: path \"../outside/x.png\" is not relative to the dataset root"),
        "{report}"
    );
    assert!(report.contains("any.csv: line 5: path \"/"), "{report}");
    let (stats, stderr) = ok(&["stats", s(&m), "--root", s(&root)]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!((v["images"].as_u64(), v["skipped"].as_u64()), (Some(2), Some(2)), "{stats}\n{stderr}");
    assert!(
        stderr.contains("skipped any.csv:4: path \"../outside/x.png\" is not relative to the dataset root"),
        "{stderr}"
    );
}

#[cfg(feature = "tch")]
mod with_training {
    use super::*;
    use std::process::Output;

    fn json(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// One fast epoch: ResNet18 at 32×32 on the CPU.
    fn train(manifests: &Path, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "train",
            "--manifests",
            s(manifests),
            "--out",
            s(out),
            "--arch",
            "resnet18",
            "--img-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--workers",
            "1",
            "--norm",
            "imagenet",
        ];
        args.extend(extra);
        run(&args)
    }

    fn eval(model: &Path, manifest: &Path, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "eval",
            "--model",
            s(model),
            "--manifest",
            s(manifest),
            "--out",
            s(out),
            "--device",
            "cpu",
            "--workers",
            "1",
        ];
        args.extend(extra);
        run(&args)
    }

    fn succeeded(out: Output) -> (String, String) {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
        (stdout, stderr)
    }

    fn error_line(out: Output) -> String {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "should fail\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        errors[0].to_string()
    }

    #[test]
    fn train_and_eval_never_use_rows_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let rels = write_tree(&root, 6);
        // A real image outside the root, reachable by `..` and by absolute path.
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        image(1, 7).save(outside.join("x.jpg")).unwrap();
        let abs = std::fs::canonicalize(outside.join("x.jpg")).unwrap();
        assert!(root.join("../outside/x.jpg").is_file());

        let manifests = tmp.path().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let escapes = |class_index: usize| {
            let class = CLASSES[class_index];
            format!(
                "../outside/x.jpg,{class_index},{class},o1,1\n{},{class_index},{class},o2,1\n../../../etc/passwd,{class_index},{class},o3,1\n",
                s(&abs)
            )
        };
        let (mut train_csv, mut val_csv) = (String::from("path,class_index,class,group,bytes\n"), String::new());
        val_csv.push_str(&train_csv);
        for (c, files) in rels.iter().enumerate() {
            for (i, r) in files.iter().enumerate() {
                let line = format!("{r},{c},{},{r},1\n", CLASSES[c]);
                if i < 4 {
                    train_csv.push_str(&line);
                } else {
                    val_csv.push_str(&line);
                }
            }
        }
        train_csv.push_str(&escapes(1));
        val_csv.push_str(&escapes(0));
        std::fs::write(manifests.join("train.csv"), &train_csv).unwrap();
        std::fs::write(manifests.join("val.csv"), &val_csv).unwrap();
        std::fs::write(manifests.join("classes.csv"), "index,name,count\n0,masked,6\n1,unmasked,6\n").unwrap();
        std::fs::write(manifests.join("split.json"), format!("{{\"dataset_root\":{:?}}}", s(&root))).unwrap();

        let run_dir = tmp.path().join("runs/r");
        let (_, stderr) = succeeded(train(&manifests, &run_dir, &[]));
        for (file, first) in [("train.csv", 10), ("val.csv", 6)] {
            for (k, path) in ["../outside/x.jpg", s(&abs), "../../../etc/passwd"].iter().enumerate() {
                let expect = format!("skipped {file}:{}: path {path:?} is not relative to the dataset root", first + k);
                assert!(stderr.contains(&expect), "{expect:?} not in\n{stderr}");
            }
        }
        // 8 training images, not 9 (or 11): the outside image was never used.
        let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
        let row: Vec<&str> = metrics.lines().nth(1).unwrap().split(',').collect();
        assert_eq!((row[6], row[7]), ("8", "4"), "train_images, val_images\n{metrics}");
        let report = json(&run_dir.join("report.json"));
        assert_eq!(report["skipped"], 6, "{report}");
        assert_eq!(report["images"], 4, "{report}");
        let config = json(&run_dir.join("config.json"));
        assert_eq!(config["manifests"][0]["rows"], 8, "{config}");
        assert_eq!(config["manifests"][0]["skipped_rows"], 3, "{config}");

        // eval on the same val.csv: 4 images, the 3 escapes skipped.
        let eval_dir = tmp.path().join("eval");
        let model = run_dir.join("best.safetensors");
        let (_, stderr) = succeeded(eval(&model, &manifests.join("val.csv"), &eval_dir, &[]));
        assert!(
            stderr.contains("skipped val.csv:6: path \"../outside/x.jpg\" is not relative to the dataset root"),
            "{stderr}"
        );
        let report = json(&eval_dir.join("report.json"));
        assert_eq!((report["images"].as_u64(), report["skipped"].as_u64()), (Some(4), Some(3)), "{report}");
        let preds = std::fs::read_to_string(eval_dir.join("predictions.csv")).unwrap();
        assert_eq!(preds.lines().count(), 5, "{preds}");
        assert!(!preds.contains("outside") && !preds.contains("passwd"), "{preds}");
    }

    #[test]
    fn a_mixed_manifest_set_is_refused_and_a_new_split_repairs_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        write_tree(&root, 10);
        let (m1, m2) = (tmp.path().join("m1"), tmp.path().join("m2"));
        for (dir, seed) in [(&m1, "1"), (&m2, "2")] {
            ok(&["split", s(&root), "--out", s(dir), "--seed", seed, "--group-by", "none", "--val", "0.3"]);
        }
        let record = json(&m1.join("split.json"));
        assert_eq!(record["complete"], true);
        let fingerprint = |name: &str| record["files"][name].as_str().unwrap().to_string();
        assert_eq!(fingerprint("train.csv").len(), 64, "{record}");
        for name in ["val.csv", "classes.csv", "stats.json", "failures.csv"] {
            assert_eq!(fingerprint(name).len(), 64, "{name}: {record}");
        }
        let (t1, t2) = (std::fs::read(m1.join("train.csv")).unwrap(), std::fs::read(m2.join("train.csv")).unwrap());
        assert_ne!(t1, t2, "seeds 1 and 2 should split differently");

        // A model from the intact set, for eval below.
        let run2 = tmp.path().join("runs/r2");
        succeeded(train(&m2, &run2, &[]));

        // The kill: train.csv of seed 2 renamed into place, the rest of seed 1.
        std::fs::copy(m2.join("train.csv"), m1.join("train.csv")).unwrap();
        let expect = "train.csv does not match split.json";
        let run1 = tmp.path().join("runs/r1");
        let err = error_line(train(&m1, &run1, &[]));
        assert!(
            err.contains(expect) && err.contains("the manifest set is mixed (a killed split?); run split again"),
            "{err}"
        );
        assert!(!run1.join("best.safetensors").exists());
        let err = error_line(eval(&run2.join("best.safetensors"), &m1.join("train.csv"), &tmp.path().join("e"), &[]));
        assert!(err.contains(expect), "{err}");
        let out = run(&["verify", s(&m1), "--no-decode"]);
        assert!(!out.status.success());
        assert!(text(&out.stdout).contains(&format!("split.json: {expect}")), "{}", text(&out.stdout));

        // split.json marked incomplete (killed after its first write): refused too.
        let original = std::fs::read_to_string(m1.join("split.json")).unwrap();
        std::fs::write(m1.join("split.json"), original.replace("\"complete\": true", "\"complete\": false")).unwrap();
        let err = error_line(train(&m1, &run1, &[]));
        assert!(err.contains("is incomplete") && err.contains("run split again"), "{err}");

        // A re-run repairs the set.
        ok(&["split", s(&root), "--out", s(&m1), "--seed", "1", "--group-by", "none", "--val", "0.3"]);
        assert_eq!(std::fs::read(m1.join("train.csv")).unwrap(), t1);
        let (v, _) = ok(&["verify", s(&m1)]);
        assert!(v.contains("all OK"), "{v}");
        succeeded(eval(&run2.join("best.safetensors"), &m1.join("val.csv"), &tmp.path().join("e"), &[]));
    }

    #[test]
    fn eval_refuses_class_names_that_disagree_with_the_model() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        write_tree(&root, 6);
        let m = tmp.path().join("m");
        ok(&["split", s(&root), "--out", s(&m), "--group-by", "none", "--val", "0.34"]);
        let run_dir = tmp.path().join("runs/r");
        succeeded(train(&m, &run_dir, &[]));
        let model = run_dir.join("best.safetensors");

        // A manifest elsewhere (no classes.csv beside it) whose labels are
        // the other way round: index 0 is "unmasked" there, "masked" in the model.
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let swapped = "path,class_index,class\nmasked/00.png,1,masked\nunmasked/00.png,0,unmasked\n";
        std::fs::write(other.join("swapped.csv"), swapped).unwrap();
        let err = error_line(eval(&model, &other.join("swapped.csv"), &tmp.path().join("e1"), &["--root", s(&root)]));
        assert!(
            err.contains(
                "swapped.csv: line 2: class \"masked\" has class_index 1, which is \"unmasked\" in the model's classes"
            ),
            "{err}"
        );
        assert!(err.contains("label spaces do not match"), "{err}");
        assert!(!tmp.path().join("e1/report.json").exists());

        // The same rows with the model's labels evaluate.
        let right = "path,class_index,class\nmasked/00.png,0,masked\nunmasked/00.png,1,unmasked\n";
        std::fs::write(other.join("right.csv"), right).unwrap();
        succeeded(eval(&model, &other.join("right.csv"), &tmp.path().join("e2"), &["--root", s(&root)]));
        // And a manifest with class names only is looked up by name.
        std::fs::write(other.join("names.csv"), "path,class\nunmasked/01.png,unmasked\nmasked/01.png,masked\n")
            .unwrap();
        succeeded(eval(&model, &other.join("names.csv"), &tmp.path().join("e3"), &["--root", s(&root)]));
    }
}
