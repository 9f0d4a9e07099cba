//! End-to-end tests of `--detector mtcnn` and `--detector centerface`
//! (through libtorch, dlib's 68 points in the box their eyes place) on the
//! real sample photos: the same faces and framing as dlib's HOG where both
//! see a face, small faces found down to `--min-face` by every detector,
//! masked faces for `mask`, and one clear line for missing or broken weights.

use image::{imageops, Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{draw_synthetic_mask, fails, models, ok, sample_image, samples};

/// `landmarks.csv` of a detect run: per photo, each face's box and 68 points.
type Faces = BTreeMap<String, Vec<([f32; 4], Vec<(f32, f32)>)>>;

fn detect(input: &Path, out: &Path, extra: &[&str]) -> Faces {
    let mut args = vec!["detect", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend(extra);
    ok(&args);
    let mut faces = Faces::new();
    let mut r = csv::Reader::from_path(out.join("landmarks.csv")).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        let f = |i: usize| rec[i].parse::<f32>().unwrap();
        let pts = (0..68).map(|k| (f(7 + 2 * k), f(8 + 2 * k))).collect();
        faces.entry(rec[0].to_string()).or_default().push(([f(2), f(3), f(4), f(5)], pts));
    }
    faces
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    iw * ih / (area(a) + area(b) - iw * ih)
}

fn eye_centre(pts: &[(f32, f32)], range: std::ops::Range<usize>) -> (f32, f32) {
    let n = range.len() as f32;
    let (x, y) = pts[range].iter().fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
    (x / n, y / n)
}

#[test]
fn mtcnn_frames_the_sample_faces_as_hog_does() {
    frames_the_sample_faces_as_hog_does("mtcnn");
}

#[test]
fn centerface_frames_the_sample_faces_as_hog_does() {
    frames_the_sample_faces_as_hog_does("centerface");
}

fn frames_the_sample_faces_as_hog_does(detector: &str) {
    let dir = tempfile::tempdir().unwrap();
    let hog = detect(&samples(), &dir.path().join("hog"), &[]);
    let mtcnn = detect(&samples(), &dir.path().join(detector), &["--detector", detector]);
    assert!(hog.len() >= 6, "{hog:?}");
    let mut compared = 0;
    for (photo, faces) in &hog {
        let theirs = mtcnn.get(photo).unwrap_or_else(|| panic!("{detector} found no face in {photo}"));
        for (hog_box, hog_pts) in faces {
            let (m_box, m_pts) =
                theirs.iter().max_by(|a, b| iou(&a.0, hog_box).total_cmp(&iou(&b.0, hog_box))).unwrap();
            // A face cut by the frame: MTCNN and CenterFace size the whole
            // face (up to 1.7x HOG's box here), HOG the visible part; both
            // hold its centre.
            if photo.starts_with("obama_partial_face") {
                let (cx, cy) = ((hog_box[0] + hog_box[2]) / 2.0, (hog_box[1] + hog_box[3]) / 2.0);
                assert!(m_box[0] < cx && cx < m_box[2] && m_box[1] < cy && cy < m_box[3], "{photo}: {m_box:?}");
                continue;
            }
            // The same box convention, so mask's and predict's crops frame the face alike...
            assert!(iou(m_box, hog_box) > 0.7, "{photo}: {detector} {m_box:?}, hog {hog_box:?}");
            // ...and dlib's points in it land where they land in HOG's box.
            let scale = (hog_box[2] - hog_box[0]) / 2.4;
            for eye in [36..42, 42..48] {
                let (a, b) = (eye_centre(hog_pts, eye.clone()), eye_centre(m_pts, eye));
                let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
                assert!(d < 0.1 * scale, "{photo}: {detector}: eye {d} px off ({scale} px eye distance)");
            }
            compared += 1;
        }
    }
    assert!(compared >= 4, "{compared}");
}

/// obama.jpg shrunk by `face` / 390 and pasted twice into a 480×360 grey
/// photo. Its face's HOG box is 259 px wide, so the pasted faces measure
/// `face` × 0.66 px (24 px for 36).
fn small_faces_photo(face: u32) -> RgbImage {
    let src = sample_image("obama.jpg");
    let s = face as f32 / 390.0;
    let small = imageops::resize(
        &src,
        (src.width() as f32 * s) as u32,
        (src.height() as f32 * s) as u32,
        imageops::FilterType::Triangle,
    );
    let mut canvas = RgbImage::from_pixel(480, 360, Rgb([120, 120, 120]));
    imageops::overlay(&mut canvas, &small, 40, 60);
    imageops::overlay(&mut canvas, &small, 300, 180);
    canvas
}

#[test]
fn min_face_keeps_its_promise_with_every_detector() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    small_faces_photo(36).save(input.join("small.png")).unwrap();
    let sides = |faces: &Faces| -> Vec<f32> {
        faces.get("small.png").map(|f| f.iter().map(|(b, _)| b[2] - b[0]).collect()).unwrap_or_default()
    };
    // HOG's 80 px window at full size (its default --min-face) cannot see 24 px faces...
    let hog = detect(&input, &dir.path().join("hog"), &[]);
    assert!(hog.is_empty(), "{hog:?}");
    // ...and --min-face 30 upsamples the photo 80/30 times, so it does.
    // (HOG and MTCNN find these 24 px faces from --min-face 30 too;
    // CenterFace, whose copy is scaled so that --min-face px become 16,
    // keeps its promise at their size.)
    for (detector, min_face) in [("hog", "30"), ("mtcnn", "30"), ("centerface", "24")] {
        let out = dir.path().join(format!("{detector}{min_face}"));
        let found = sides(&detect(&input, &out, &["--detector", detector, "--min-face", min_face]));
        assert_eq!(found.len(), 2, "{detector}: {found:?}");
        assert!(found.iter().all(|s| (18.0..36.0).contains(s)), "{detector}: {found:?}");
    }
    // A larger --min-face skips them: MTCNN's pyramid starts above their
    // size, CenterFace's copy is too small to show them.
    for detector in ["mtcnn", "centerface"] {
        let big =
            detect(&input, &dir.path().join(format!("big_{detector}")), &["--detector", detector, "--min-face", "120"]);
        assert!(big.is_empty(), "{detector}: {big:?}");
    }
}

#[test]
fn min_score_drops_weak_mtcnn_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(samples().join("obama.jpg"), input.join("obama.jpg")).unwrap();
    // At the default 0.7 MTCNN also takes a patch of blurred background for a face (0.90)...
    let default = detect(&input, &dir.path().join("default"), &["--detector", "mtcnn"]);
    assert_eq!(default["obama.jpg"].len(), 2, "{default:?}");
    // ...which --min-score 0.95 drops, keeping the face (0.9998).
    let strict = detect(&input, &dir.path().join("strict"), &["--detector", "mtcnn", "--min-score", "0.95"]);
    assert_eq!(strict["obama.jpg"].len(), 1, "{strict:?}");
    assert_eq!(strict["obama.jpg"][0].0, default["obama.jpg"][0].0);
    let journal = std::fs::read_to_string(dir.path().join("strict/.detect-journal.jsonl")).unwrap();
    assert!(journal.lines().next().unwrap().contains("mtcnn (min score 0.95)"), "{journal}");
    let (i, o) = (input.to_str().unwrap(), dir.path().join("hog"));
    let err = fails(&["detect", i, "--out", o.to_str().unwrap(), "--min-score", "0.9"]);
    assert!(err.contains("--min-score applies to --detector mtcnn and centerface only"), "{err}");
    let err = fails(&["detect", i, "--out", o.to_str().unwrap(), "--detector", "mtcnn", "--min-score", "1"]);
    assert!(err.contains("must be a number above 0 and below 1"), "{err}");
}

#[test]
fn min_score_sets_centerfaces_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(samples().join("obama.jpg"), input.join("obama.jpg")).unwrap();
    // The face scores 0.94: kept at the default 0.5 and at 0.9, not at 0.99.
    let default = detect(&input, &dir.path().join("default"), &["--detector", "centerface"]);
    assert_eq!(default["obama.jpg"].len(), 1, "{default:?}");
    let kept = detect(&input, &dir.path().join("kept"), &["--detector", "centerface", "--min-score", "0.9"]);
    assert_eq!(kept["obama.jpg"], default["obama.jpg"]);
    let strict = detect(&input, &dir.path().join("strict"), &["--detector", "centerface", "--min-score", "0.99"]);
    assert!(strict.is_empty(), "{strict:?}");
    let journal = std::fs::read_to_string(dir.path().join("strict/.detect-journal.jsonl")).unwrap();
    assert!(journal.lines().next().unwrap().contains("centerface (min score 0.99)"), "{journal}");
}

#[test]
fn mask_auto_uses_centerface_and_masks_masked_and_bare_faces() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for name in ["obama.jpg", "biden.jpg"] {
        std::fs::copy(samples().join(name), input.join(name)).unwrap();
        let mut img = sample_image(name);
        draw_synthetic_mask(&mut img, Rgb([70, 110, 170]));
        img.save(input.join(format!("masked_{name}"))).unwrap();
    }
    let out = dir.path().join("out");
    ok(&["mask", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--faces", "auto", "--variants", "correct"]);
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let (src, method) = (h.iter().position(|c| c == "source").unwrap(), h.iter().position(|c| c == "method").unwrap());
    let methods: BTreeMap<String, String> =
        r.records().map(|x| x.unwrap()).map(|x| (x[src].to_string(), x[method].to_string())).collect();
    for name in ["obama.jpg", "biden.jpg", "masked_obama.jpg", "masked_biden.jpg"] {
        assert_eq!(methods.get(name).map(String::as_str), Some("centerface"), "{name}: {methods:?}");
    }
    let settings = std::fs::read_to_string(out.join("mask_settings.json")).unwrap();
    assert!(settings.contains("\"centerface\""), "{settings}");
}

/// A models folder under `dir` holding dlib's landmark model and nothing else.
fn landmark_model_only(dir: &Path) -> std::path::PathBuf {
    let models_dir = dir.join("models");
    std::fs::create_dir(&models_dir).unwrap();
    let file = "shape_predictor_68_face_landmarks.dat";
    std::fs::copy(models().join(file), models_dir.join(file)).unwrap();
    models_dir
}

#[test]
fn missing_or_broken_mtcnn_weights_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let models_dir = landmark_model_only(dir.path());
    let (photos, out) = (samples(), dir.path().join("out"));
    let (photos, out, m) = (photos.to_str().unwrap(), out.to_str().unwrap(), models_dir.to_str().unwrap());
    let run = |extra: &[&str]| {
        let _ = std::fs::remove_dir_all(out);
        let mut args = vec!["detect", photos, "--out", out, "--detector", "mtcnn", "--models", m];
        args.extend(extra);
        fails(&args)
    };
    let err = run(&[]);
    assert!(err.contains("mtcnn_pnet.pt") && err.contains("cargo xtask setup"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for f in ["mtcnn_pnet.pt", "mtcnn_rnet.pt"] {
        std::fs::copy(models().join(f), models_dir.join(f)).unwrap();
    }
    // O-Net's file holds R-Net's weights: named, with what is wrong.
    std::fs::copy(models().join("mtcnn_rnet.pt"), models_dir.join("mtcnn_onet.pt")).unwrap();
    let err = run(&[]);
    assert!(err.contains("mtcnn_onet.pt") && err.contains("[28, 3, 3, 3], MTCNN's is float32 [32, 3, 3, 3]"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::write(models_dir.join("mtcnn_onet.pt"), b"not a checkpoint").unwrap();
    let err = run(&[]);
    assert!(err.contains("mtcnn_onet.pt") && err.contains("not a PyTorch checkpoint"), "{err}");
}

#[test]
fn missing_or_broken_centerface_model_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let models_dir = landmark_model_only(dir.path());
    let (photos, out) = (samples(), dir.path().join("out"));
    let (photos, out, m) = (photos.to_str().unwrap(), out.to_str().unwrap(), models_dir.to_str().unwrap());
    let run = || {
        let _ = std::fs::remove_dir_all(out);
        fails(&["detect", photos, "--out", out, "--detector", "centerface", "--models", m])
    };
    let err = run();
    assert!(err.contains("centerface.pt") && err.contains("cargo xtask setup"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Not TorchScript at all, then a TorchScript archive cut short.
    std::fs::write(models_dir.join("centerface.pt"), b"not a model").unwrap();
    let err = run();
    assert!(err.contains("centerface.pt") && err.contains("not a TorchScript model"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let whole = std::fs::read(models().join("centerface.pt")).unwrap();
    std::fs::write(models_dir.join("centerface.pt"), &whole[..whole.len() / 2]).unwrap();
    let err = run();
    assert!(err.contains("centerface.pt") && err.contains("not a TorchScript model"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
