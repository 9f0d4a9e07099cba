//! Shared by the end-to-end tests: where the sample photos and dlib models
//! are (installed by `cargo xtask setup`), and the binary under test.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod sample_faces;
pub use sample_faces::SAMPLE_FACES;

/// The real sample photos; fails with how to get them when missing.
pub fn samples() -> PathBuf {
    let dir = std::env::var_os("MASKFORGE_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples"));
    assert!(
        dir.join("obama.jpg").is_file() && dir.join("biden.jpg").is_file(),
        "sample photos missing in {}: run `cargo xtask setup` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// The dlib models folder; fails with how to get it when missing.
pub fn models() -> PathBuf {
    let dir = std::env::var_os("MASKFORGE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        dir.join("shape_predictor_68_face_landmarks.dat").is_file(),
        "dlib models missing: run `cargo xtask setup`"
    );
    dir
}

/// `maskforge` with the models folder set.
pub fn maskforge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_maskforge"));
    c.env("MASKFORGE_MODELS", models());
    c
}

/// Runs `maskforge ARGS` (no models needed).
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maskforge")).args(args).output().expect("run maskforge")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns (stdout, stderr).
pub fn ok(args: &[&str]) -> (String, String) {
    let out = run(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "maskforge {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

/// Runs a command that must fail; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "maskforge {args:?} should fail\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stderr
}

/// Draws a surgical-mask-like polygon over the nose, mouth and chin of a
/// square face crop: the synthetic "masked" class of the training tests.
pub fn draw_synthetic_mask(img: &mut image::RgbImage, color: image::Rgb<u8>) {
    use imageproc::point::Point;
    let s = img.width() as f32;
    let p = |x: f32, y: f32| Point::new((x * s) as i32, (y * s) as i32);
    let poly = [
        p(0.22, 0.55),
        p(0.5, 0.5),
        p(0.78, 0.55),
        p(0.8, 0.75),
        p(0.65, 0.9),
        p(0.5, 0.93),
        p(0.35, 0.9),
        p(0.2, 0.75),
    ];
    imageproc::drawing::draw_polygon_mut(img, &poly, color);
}

/// A sample photo, decoded (EXIF orientation applied).
pub fn sample_image(name: &str) -> image::RgbImage {
    maskforge_imageio::load_rgb(&samples().join(name), Default::default()).expect("sample photo")
}

/// `maskforge mask INPUT --out OUT ARGS...` with the models set, which must
/// succeed; returns (stdout, stderr).
pub fn mask_ok(input: &Path, out: &Path, args: &[&str]) -> (String, String) {
    let o = maskforge().arg("mask").arg(input).arg("--out").arg(out).args(args).output().expect("run maskforge");
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "maskforge mask {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

/// A finished command's stderr as text.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// `o`, which must have succeeded (else both streams are shown).
pub fn succeeded(o: Output) -> Output {
    assert!(o.status.success(), "failed:\nstdout: {}\nstderr: {}", text(&o.stdout), stderr(&o));
    o
}

/// `o` failed with a one-line error that contains `needle`.
pub fn refused(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected a refusal, got success:\n{err}");
    assert!(err.contains(needle), "error does not say {needle:?}:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line:\n{err}");
}

/// Every file under `dir` (symlinks not followed) with its bytes, by path relative to `dir`.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}
