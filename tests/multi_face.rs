//! Labels that do not lie on photos with several people: a photo made of
//! two sample faces and a third, small one. A whole-image output in which a
//! detected face stays bare is not filed under a masked class (skipped, or
//! filed under `--bare-faces CLASS`); crops are per face and unaffected.

use image::RgbImage;
use std::path::{Path, PathBuf};

mod common;
use common::{fails, mask_ok, sample_image as load};

/// `in/group.jpg`: biden and obama at full size, obama2 at a third (a ~100 px face).
fn group_photo(dir: &Path) -> PathBuf {
    let (a, b) = (load("biden.jpg"), load("obama.jpg"));
    let c = load("obama2.jpg");
    let c = image::imageops::resize(&c, c.width() / 3, c.height() / 3, image::imageops::FilterType::Triangle);
    let mut group =
        RgbImage::from_pixel(a.width() + b.width() + c.width(), a.height().max(b.height()), image::Rgb([90, 90, 90]));
    image::imageops::replace(&mut group, &a, 0, 0);
    image::imageops::replace(&mut group, &b, a.width() as i64, 0);
    image::imageops::replace(&mut group, &c, (a.width() + b.width()) as i64, 300);
    let root = dir.join("in");
    std::fs::create_dir_all(&root).unwrap();
    group.save(root.join("group.jpg")).unwrap();
    root
}

fn mask(input: &Path, out: &Path, extra: &[&str]) -> String {
    // Full-size detection, so the small face is seen (and known to be bare).
    let fixed = ["--variants", "correct", "--min-face", "150", "--detect-max-side", "0"];
    mask_ok(input, out, &[&fixed[..], extra].concat()).0
}

/// `(output, class, face)` of every annotation row.
fn rows(out: &Path) -> Vec<(String, String, String)> {
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    r.records().map(|x| x.unwrap()).map(|x| (x[1].to_string(), x[4].to_string(), x[2].to_string())).collect()
}

#[test]
fn a_whole_image_with_a_bare_face_is_skipped_or_filed_apart_and_crops_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = group_photo(dir.path());

    let out = dir.path().join("skip");
    let stdout = mask(&root, &out, &[]);
    assert!(stdout.contains("1 faces under --min-face skipped"), "{stdout}");
    assert!(stdout.contains("1 whole-image outputs with a bare detected face: skipped"), "{stdout}");
    assert!(!out.join("correct/group.jpg").exists(), "a masked image with a bare face was written");
    assert!(rows(&out).is_empty(), "{:?}", rows(&out));
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert!(failures.contains("group.jpg,\"correct: not written: 1 detected face(s) would stay bare"), "{failures}");

    let out = dir.path().join("apart");
    mask(&root, &out, &["--bare-faces", "mixed"]);
    assert!(out.join("mixed/group.jpg").is_file());
    assert!(!out.join("correct").exists());
    let rows = rows(&out);
    assert_eq!(rows.len(), 2, "one row per masked face: {rows:?}");
    assert!(rows.iter().all(|(o, c, _)| o == "mixed/group.jpg" && c == "mixed"), "{rows:?}");

    // Crops hold one face each: both large faces are masked and kept.
    let out = dir.path().join("crops");
    mask(&root, &out, &["--crop-size", "112"]);
    assert!(out.join("correct/group.jpg").is_file() && out.join("correct/group__face1.jpg").is_file());
    assert!(!out.join("correct/group__face2.jpg").exists());
}

#[test]
fn bare_faces_class_must_not_be_a_masked_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let stderr = fails(&["mask", d, "--out", &format!("{d}/out"), "--variants", "correct", "--bare-faces", "correct"]);
    assert!(stderr.contains("--bare-faces correct: already the class"), "{stderr}");
}
