//! End-to-end tests of `maskforge mask --faces crop|auto` on face crops cut
//! from the real sample photos (as face-crop datasets are made: the
//! detector box plus a margin) and on crops that hold no face: a wall of
//! the photo's background, a patch of clothing, a blank and a noise image.

use image::{Rgb, RgbImage};
use maskforge_face::crop::crop_box;
use maskforge_face::BBox;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;
use common::{fails, mask_ok, sample_image as load, SAMPLE_FACES};

fn save(img: &RgbImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// `faces/NAME_SIZE_MARGIN.jpg`: each sample face at 120 and 250 px with
/// 10%, 25% and 40% margin, shifted a little as real crops are.
fn face_crops(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for (k, (file, l, t, r, b)) in SAMPLE_FACES.iter().enumerate() {
        let img = load(file);
        let shift = (r - l) * 0.03 * [1.0, -1.0, 0.5, -0.5][k];
        let bbox = BBox::new(l + shift, t - shift, r + shift, b - shift);
        for size in [120u32, 250] {
            for margin in [0.1f32, 0.25, 0.4] {
                let name = format!("faces/{}_{size}_{:.0}.jpg", file.trim_end_matches(".jpg"), margin * 100.0);
                save(&crop_box(&img, &bbox, 0.0, size, margin), &root.join(&name));
                names.push(name);
            }
        }
    }
    names
}

/// `none/*.png`: crops that hold no face.
fn no_face_crops(root: &Path) -> Vec<String> {
    let biden = load("biden.jpg");
    // The photo's background above the head, and the suit below the face.
    let wall = crop_box(&biden, &BBox::new(0.0, 0.0, 300.0, 300.0), 0.0, 160, 0.0);
    let suit = crop_box(&biden, &BBox::new(420.0, 1500.0, 820.0, 1900.0), 0.0, 200, 0.0);
    let blank = RgbImage::from_pixel(150, 150, Rgb([128, 128, 128]));
    let mut state = 7u64;
    let noise = RgbImage::from_fn(150, 150, |_, _| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v = (state >> 56) as u8;
        Rgb([v, v / 2 + 40, 255 - v])
    });
    let mut names = Vec::new();
    for (name, img) in [("wall", wall), ("suit", suit), ("blank", blank), ("noise", noise)] {
        let name = format!("none/{name}.png");
        save(&img, &root.join(&name));
        names.push(name);
    }
    names
}

fn mask(input: &Path, out: &Path, extra: &[&str]) {
    mask_ok(input, out, &[&["--variants", "correct", "--jobs", "2"], extra].concat());
}

fn failures(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("failures.csv")).unwrap();
    r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect()
}

/// `source` → `method` of every annotation row.
fn methods(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap_or_else(|| panic!("no {n} column"));
    let (s, m) = (col("source"), col("method"));
    r.records().map(|x| x.unwrap()).map(|x| (x[s].to_string(), x[m].to_string())).collect()
}

fn input(dir: &Path) -> (PathBuf, Vec<String>, Vec<String>) {
    let root = dir.join("in");
    let faces = face_crops(&root);
    let none = no_face_crops(&root);
    (root, faces, none)
}

#[test]
fn crop_mode_masks_every_face_crop_and_reports_every_crop_without_a_face() {
    let dir = tempfile::tempdir().unwrap();
    let (root, faces, none) = input(dir.path());
    let out = dir.path().join("out");
    mask(&root, &out, &["--faces", "crop"]);
    let methods = methods(&out);
    for name in &faces {
        assert_eq!(methods.get(name).map(String::as_str), Some("crop"), "{name} not masked: {:?}", failures(&out));
        assert!(out.join("correct").join(name).is_file(), "{name}");
    }
    let failures = failures(&out);
    for name in &none {
        let why = failures.get(name).unwrap_or_else(|| panic!("{name} was masked: {methods:?}"));
        assert!(why.starts_with("no face in the crop: "), "{name}: {why}");
        assert!(!out.join("correct").join(name).exists());
    }
    assert_eq!(failures.len(), none.len(), "{failures:?}");

    // The fitted landmarks land on the face: the eyes of the 250 px, 25%
    // margin crop of obama.jpg lie where they are in the photo's own frame.
    let row = annotation_row(&out, "faces/obama_250_25.jpg");
    let eye_y = (row["y36"] + row["y45"]) / 2.0;
    assert!((80.0..125.0).contains(&eye_y), "eyes at y {eye_y}");
    let eye_dx = row["x45"] - row["x36"];
    assert!((60.0..120.0).contains(&eye_dx), "eye corners {eye_dx} apart");
}

/// The numbers of one annotation row by column name.
fn annotation_row(out: &Path, source: &str) -> BTreeMap<String, f32> {
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let rec = r.records().map(|x| x.unwrap()).find(|x| &x[0] == source).unwrap();
    h.iter().zip(rec.iter()).filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?))).collect()
}

#[test]
fn auto_mode_detects_first_and_fits_crops_only_where_the_detector_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, faces, none) = input(dir.path());
    let out = dir.path().join("out");
    mask(&root, &out, &["--faces", "auto", "--detector", "hog"]);
    let methods = methods(&out);
    let hog = methods.values().filter(|m| *m == "hog").count();
    assert!(hog > 0, "{methods:?}");
    for name in &faces {
        let m = methods.get(name).unwrap_or_else(|| panic!("{name} not masked: {:?}", failures(&out)));
        assert!(m == "hog" || m == "crop", "{name}: {m}");
    }
    // The same images detect in a plain run; the crop fit adds the rest.
    let plain = dir.path().join("plain");
    mask(&root, &plain, &[]);
    let detected = self::methods(&plain);
    assert!(detected.values().all(|m| m == "hog"));
    for (name, m) in &methods {
        assert_eq!(m == "hog", detected.contains_key(name), "{name}");
    }
    let failures = failures(&out);
    assert!(none.iter().all(|n| failures.contains_key(n)), "{failures:?}");

    // Without --detector, auto detects with CenterFace: it finds nine in ten
    // of these crops (HOG's share on real crops is far lower: `cargo xtask
    // bench faces`), and the crop fit still takes the rest.
    let default = dir.path().join("default");
    mask(&root, &default, &["--faces", "auto"]);
    let by_default = self::methods(&default);
    for name in &faces {
        let m = by_default.get(name).unwrap_or_else(|| panic!("{name} not masked"));
        assert!(m == "centerface" || m == "crop", "{name}: {m}");
    }
    let found = by_default.values().filter(|m| *m == "centerface").count();
    assert!(found * 10 >= faces.len() * 9, "centerface {found} of {}: {by_default:?}", faces.len());
}

/// The images in which `maskforge detect` (default scale) found a face.
fn detected(root: &Path, out: &Path, detector: &str) -> BTreeSet<String> {
    let (r, o) = (root.to_str().unwrap(), out.to_str().unwrap());
    common::ok(&["detect", r, "--out", o, "--detector", detector]);
    let mut rd = csv::Reader::from_path(out.join("landmarks.csv")).unwrap();
    rd.records().map(|x| x.unwrap()[0].to_string()).collect()
}

#[test]
fn auto_mode_detects_small_face_crops_at_the_crop_scale() {
    // 48 px crops with the face filling the frame: at CenterFace's usual
    // 2/3 scale (`--min-face 24`) the face is too small for it; auto looks
    // at the crop scaled to 128 px first and finds it there.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    let mut names = Vec::new();
    for (file, l, t, r, b) in SAMPLE_FACES.iter().filter(|f| f.0 != "obama3.jpg") {
        for margin in [0.1f32, 0.3] {
            let name = format!("faces/{}_48_{:.0}.jpg", file.trim_end_matches(".jpg"), margin * 100.0);
            save(&crop_box(&load(file), &BBox::new(*l, *t, *r, *b), 0.0, 48, margin), &root.join(&name));
            names.push(name);
        }
    }
    let at_default_scale = detected(&root, &dir.path().join("detect"), "centerface");
    let out = dir.path().join("out");
    mask(&root, &out, &["--faces", "auto"]);
    let methods = methods(&out);
    let again: Vec<&String> = names
        .iter()
        .filter(|n| !at_default_scale.contains(*n) && methods.get(*n).map(String::as_str) == Some("centerface"))
        .collect();
    assert!(again.len() >= 2, "found only at the crop scale: {again:?}; detect found {at_default_scale:?}");
    // Every crop the detector found at its usual scale is still masked by it.
    for name in &at_default_scale {
        assert_eq!(methods.get(name).map(String::as_str), Some("centerface"), "{name}");
    }
}

#[test]
fn crop_mode_conflicts_with_a_landmarks_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let stderr = fails(&["mask", d, "--out", &format!("{d}/out"), "--faces", "crop", "--landmarks", "x.csv"]);
    assert!(stderr.contains("--landmarks"), "{stderr}");
}
