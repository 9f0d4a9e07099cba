//! End to end: `maskforge split`, `verify` and `stats` as a user runs them,
//! on ImageFolder trees generated here (no sample data, no dlib, no libtorch).

use image::{Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok, run, text};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small deterministic pseudo-random image.
fn image(seed: u32, w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed.wrapping_mul(97)).wrapping_mul(2246822519);
        Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
    })
}

fn encode(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut v), format).expect("encode");
    v
}

/// `(relative path, bytes)` of a tree with two classes of people folders and
/// three broken files: a zero-byte JPEG, a text file named .png and a JPEG
/// cut in half.
fn tree() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut seed = 0;
    for class in ["with_mask", "without_mask"] {
        for person in 0..10 {
            for i in 0..(1 + person % 3) {
                seed += 1;
                let (ext, fmt) =
                    if i == 1 { ("png", image::ImageFormat::Png) } else { ("jpg", image::ImageFormat::Jpeg) };
                files.push((
                    format!("{class}/person{person:02}/{i}.{ext}"),
                    encode(&image(seed, 12 + i, 9 + person), fmt),
                ));
            }
        }
    }
    let jpeg = encode(&image(999, 48, 48), image::ImageFormat::Jpeg);
    files.push(("with_mask/person00/zero.jpg".into(), Vec::new()));
    files.push(("without_mask/person01/readme.png".into(), b"not an image at all".to_vec()));
    files.push(("with_mask/person02/cut.jpg".into(), jpeg[..jpeg.len() / 2].to_vec()));
    files
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)], reverse: bool) {
    let order: Vec<&(String, Vec<u8>)> = if reverse { files.iter().rev().collect() } else { files.iter().collect() };
    for (rel, bytes) in order {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn manifest_paths(csv: &[u8]) -> Vec<(String, String)> {
    text(csv)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[3].to_string())
        })
        .collect()
}

#[test]
fn split_verify_and_stats_on_a_generated_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("faces");
    let files = tree();
    write_tree(&root, &files, false);
    let out1 = tmp.path().join("m1");
    let (stdout, stderr) = ok(&["split", s(&root), "--out", s(&out1), "--group-by", "parent", "--hash", "--jobs", "1"]);
    assert!(stdout.contains("seed 20240601 (default"), "{stdout}");
    assert!(stdout.contains("group-by parent: 20 groups"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("with_mask") && l.contains('%')), "per-class table:\n{stdout}");
    assert!(stdout.contains("train.csv statistics ("), "{stdout}");
    assert!(stderr.contains("skipped 3 file(s)"), "{stderr}");
    assert!(stderr.contains("with_mask/person00/zero.jpg: empty file"), "{stderr}");

    let o1 = outputs(&out1);
    let names: Vec<&str> = o1.keys().map(String::as_str).collect();
    assert_eq!(names, ["classes.csv", "failures.csv", "split.json", "stats.json", "train.csv", "val.csv"]);
    assert_eq!(text(&o1["classes.csv"]), "index,name,count\n0,with_mask,19\n1,without_mask,19\n");
    let failures = text(&o1["failures.csv"]);
    assert_eq!(failures.lines().count(), 4, "{failures}");
    assert!(failures.contains("with_mask/person02/cut.jpg,truncated JPEG"), "{failures}");
    assert!(failures.contains("without_mask/person01/readme.png,not a recognised image format"), "{failures}");

    // Every good image in exactly one manifest, no bad one, no group on both sides.
    let train = manifest_paths(&o1["train.csv"]);
    let val = manifest_paths(&o1["val.csv"]);
    assert_eq!(train.len() + val.len(), 38);
    assert!(text(&o1["train.csv"]).starts_with("path,class_index,class,group,bytes,sha256\n"));
    for (p, _) in train.iter().chain(&val) {
        assert!(!p.contains("zero") && !p.contains("cut") && !p.contains("readme"), "{p}");
    }
    for (_, g) in &val {
        assert!(train.iter().all(|(_, tg)| tg != g), "group {g} on both sides");
    }
    let split_json: serde_json::Value = serde_json::from_slice(&o1["split.json"]).unwrap();
    assert_eq!(split_json["dataset_root"], s(&std::fs::canonicalize(&root).unwrap()));
    assert_eq!(split_json["seed"], 20240601);
    assert_eq!(split_json["arguments"]["group_by"], "parent");

    // Same bytes with 2 threads, and for a copy elsewhere written in reverse order.
    let out2 = tmp.path().join("m2");
    ok(&["split", s(&root), "--out", s(&out2), "--group-by", "parent", "--hash", "--jobs", "2"]);
    assert_eq!(o1, outputs(&out2));
    let copy = tmp.path().join("mnt/other/faces_copy");
    write_tree(&copy, &files, true);
    let out3 = tmp.path().join("m3");
    ok(&["split", s(&copy), "--out", s(&out3), "--group-by", "parent", "--hash"]);
    let o3 = outputs(&out3);
    for name in ["train.csv", "val.csv", "classes.csv", "failures.csv", "stats.json"] {
        assert_eq!(o1[name], o3[name], "{name} differs for the copy");
    }

    // stats of the train manifest = the split's stats.json.
    let (stats_out, _) = ok(&["stats", s(&out1.join("train.csv")), "--jobs", "2"]);
    assert_eq!(stats_out, text(&o1["stats.json"]));
    let stats: serde_json::Value = serde_json::from_str(&stats_out).unwrap();
    assert_eq!(stats["images"].as_u64().unwrap() as usize, train.len());
    for c in 0..3 {
        let (m, sd) = (stats["mean"][c].as_f64().unwrap(), stats["std"][c].as_f64().unwrap());
        assert!(m > 0.2 && m < 0.8 && sd > 0.1 && sd < 0.5, "channel {c}: mean {m} std {sd}");
    }
    assert_eq!(stats["class_weights"].as_array().unwrap().len(), 2);

    // verify: clean, then each damage named.
    let (v, _) = ok(&["verify", s(&out1)]);
    assert!(v.contains("all OK"), "{v}");
    let (victim, _) = &train[0];
    let (gone, _) = &val[0];
    std::fs::write(root.join(victim), b"overwritten").unwrap();
    std::fs::remove_file(root.join(gone)).unwrap();
    let out = run(&["verify", s(&out1)]);
    let report = text(&out.stdout);
    assert!(!out.status.success());
    assert!(report.contains(&format!("train.csv: {victim}: size changed")), "{report}");
    assert!(report.contains(&format!("train.csv: {victim}: sha256 mismatch")), "{report}");
    assert!(report.contains(&format!("train.csv: {victim}: does not decode")), "{report}");
    assert!(report.contains(&format!("val.csv: {gone}: missing")), "{report}");
    assert!(text(&out.stderr).contains("4 problem(s) found"), "{}", text(&out.stderr));
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("faces");
    write_tree(&root, &tree(), false);
    let out = tmp.path().join("never");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--val".into(), "0.7".into(), "--test".into(), "0.4".into()], "leaves nothing for train"),
        (vec!["--val".into(), "1.5".into()], "must be a fraction"),
        (vec!["--group-by".into(), "source".into()], "annotations.csv"),
        (vec!["--group-by".into(), "regex:^nope/(.*)".into()], "matches no part of"),
        (vec!["--group-by".into(), "folder".into()], "invalid --group-by"),
        (vec!["--materialize".into(), root.join("x").to_string_lossy().into_owned()], "overlaps the dataset root"),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["split".to_string(), s(&root).into(), "--out".into(), s(&out).into()];
        args.extend(extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&argv);
        assert!(err.contains(expect), "{argv:?}: {err}");
        assert!(!out.exists(), "{argv:?} wrote {}", out.display());
    }
    let err = fails(&["split", s(&root), "--out", s(&root.join("manifests"))]);
    assert!(err.contains("inside the dataset root"), "{err}");

    let flat = tmp.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(flat.join("a.png"), encode(&image(1, 4, 4), image::ImageFormat::Png)).unwrap();
    assert!(fails(&["split", s(&flat), "--out", s(&out)]).contains("no class folders"));

    std::fs::create_dir_all(root.join("zz_broken")).unwrap();
    std::fs::write(root.join("zz_broken/x.jpg"), b"").unwrap();
    let err = fails(&["split", s(&root), "--out", s(&out)]);
    assert!(err.contains("empty class folder(s): \"zz_broken\" (all 1 image files unusable)"), "{err}");
    assert!(!out.exists());
}

#[test]
fn three_way_split_materialized_with_imagefolder_class_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("faces");
    let mut files = tree();
    // Upper case sorts first, as in Python's sorted().
    files.push(("Odd/a.png".into(), encode(&image(5, 6, 6), image::ImageFormat::Png)));
    files.push(("Odd/b.png".into(), encode(&image(6, 6, 6), image::ImageFormat::Png)));
    write_tree(&root, &files, false);
    let out = tmp.path().join("m");
    let folders = tmp.path().join("folders");
    let (stdout, stderr) = ok(&[
        "split",
        s(&root),
        "--out",
        s(&out),
        "--val",
        "0.2",
        "--test",
        "0.2",
        "--method",
        "stable",
        "--seed",
        "7",
        "--materialize",
        s(&folders),
        "--mode",
        "copy",
    ]);
    assert!(stdout.contains("seed 7, method stable"), "{stdout}");
    assert!(stdout.contains("materialized 40 files"), "{stdout}\n{stderr}");
    let classes = ["Odd", "with_mask", "without_mask"];
    for split in ["train", "val", "test"] {
        let mut found: Vec<String> = std::fs::read_dir(folders.join(split))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, classes, "{split}: ImageFolder would index these 0, 1, 2");
        let listed = manifest_paths(&std::fs::read(out.join(format!("{split}.csv"))).unwrap());
        for (p, _) in &listed {
            assert!(folders.join(split).join(p).is_file(), "{split}/{p}");
        }
    }
    assert!(text(&std::fs::read(out.join("classes.csv")).unwrap())
        .starts_with("index,name,count\n0,Odd,2\n1,with_mask,19\n"));

    // A later two-way split into the same folder leaves no stale test.csv,
    // and replaces the materialized tree it made before.
    ok(&["split", s(&root), "--out", s(&out), "--materialize", s(&folders)]);
    assert!(!out.join("test.csv").exists());
    assert!(!folders.join("test").exists());
    assert!(std::fs::symlink_metadata(folders.join("train/Odd")).unwrap().is_dir());
    let (v, _) = ok(&["verify", s(&out), "--no-decode"]);
    assert!(v.contains("all OK"), "{v}");
}

#[test]
fn stats_of_any_manifest_with_resize_and_explicit_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("flatcolour");
    // Two classes of constant colours: the statistics are known exactly.
    let colours = [("a", [255u8, 0, 0]), ("b", [0u8, 0, 255])];
    let mut manifest = String::from("path,class_index,class,group,bytes\n");
    for (ci, (class, rgb)) in colours.iter().enumerate() {
        for i in 0..3 {
            let rel = format!("{class}/{i}.png");
            let bytes = encode(&RgbImage::from_pixel(10 + i, 10, Rgb(*rgb)), image::ImageFormat::Png);
            manifest.push_str(&format!("{rel},{ci},{class},{rel},{}\n", bytes.len()));
            std::fs::create_dir_all(root.join(class)).unwrap();
            std::fs::write(root.join(&rel), bytes).unwrap();
        }
    }
    let m = tmp.path().join("any.csv");
    std::fs::write(&m, &manifest).unwrap();
    // Without split.json beside it the root must be given.
    assert!(fails(&["stats", s(&m)]).contains("--root"));
    let json_file: PathBuf = tmp.path().join("out/stats.json");
    let (stdout, _) = ok(&["stats", s(&m), "--root", s(&root), "--stats-size", "4", "--out", s(&json_file)]);
    assert_eq!(stdout, std::fs::read_to_string(&json_file).unwrap());
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["manifest"], "any.csv");
    assert_eq!(v["pixels"], 6 * 16);
    assert_eq!(v["mean"], serde_json::json!([0.5, 0.0, 0.5]));
    assert_eq!(v["std"], serde_json::json!([0.5, 0.0, 0.5]));
    assert_eq!(v["class_counts"], serde_json::json!([3, 3]));
    assert_eq!(v["class_weights"], serde_json::json!([1.0, 1.0]));
}
