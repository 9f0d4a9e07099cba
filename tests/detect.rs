//! End-to-end tests of `maskforge detect` on the real sample photos
//! (PyPI face_recognition 1.3.0's test images, installed by `cargo xtask setup`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

mod common;
use common::{maskforge, samples};

#[derive(Debug, Clone)]
struct Row {
    face: usize,
    bbox: [f32; 4],
    pts: Vec<(f32, f32)>,
}

fn read_landmarks(out: &Path) -> HashMap<String, Vec<Row>> {
    let mut map: HashMap<String, Vec<Row>> = HashMap::new();
    let mut r = csv::Reader::from_path(out.join("landmarks.csv")).expect("landmarks.csv");
    assert_eq!(r.headers().unwrap().len(), 7 + 136);
    for rec in r.records() {
        let rec = rec.unwrap();
        let f = |i: usize| rec[i].parse::<f32>().unwrap();
        let pts = (0..68).map(|k| (f(7 + 2 * k), f(8 + 2 * k))).collect();
        map.entry(rec[0].to_string()).or_default().push(Row {
            face: rec[1].parse().unwrap(),
            bbox: [f(2), f(3), f(4), f(5)],
            pts,
        });
    }
    map
}

fn detect(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = maskforge().arg("detect").arg(input).arg("--out").arg(out).args(extra).output().unwrap();
    assert!(o.status.success(), "detect failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn centroid(pts: &[(f32, f32)]) -> (f32, f32) {
    let n = pts.len() as f32;
    (pts.iter().map(|p| p.0).sum::<f32>() / n, pts.iter().map(|p| p.1).sum::<f32>() / n)
}

#[test]
fn sample_photos_one_face_each_with_anatomical_landmarks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = detect(&samples(), tmp.path(), &["--overlay"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("7 images"), "{stdout}");
    let lm = read_landmarks(tmp.path());
    for name in [
        "biden.jpg",
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
        "obama_partial_face2.jpg",
        "32bit.png",
    ] {
        let rows = lm.get(name).unwrap_or_else(|| panic!("{name}: no face found"));
        assert_eq!(rows.len(), 1, "{name}: expected exactly one face, got {}", rows.len());
        let r = &rows[0];
        assert_eq!(r.face, 0);
        let p = &r.pts;
        let right_eye = centroid(&p[36..42]); // subject's right: image left
        let left_eye = centroid(&p[42..48]);
        let nose_tip = p[30];
        let mouth = centroid(&p[48..68]);
        let chin = p[8];
        assert!(right_eye.0 < left_eye.0, "{name}: eye order {right_eye:?} {left_eye:?}");
        assert!(right_eye.1.max(left_eye.1) < nose_tip.1, "{name}: eyes above nose tip");
        assert!(nose_tip.1 < mouth.1, "{name}: nose tip above mouth");
        assert!(mouth.1 < chin.1, "{name}: mouth above chin");
        let [l, t, rr, b] = r.bbox;
        let (w, h) = (rr - l, b - t);
        for (i, &(x, y)) in p.iter().enumerate() {
            assert!(
                x > l - 0.35 * w && x < rr + 0.35 * w && y > t - 0.35 * h && y < b + 0.35 * h,
                "{name}: landmark {i} ({x},{y}) far outside box {:?}",
                r.bbox
            );
        }
        assert!(tmp.path().join("overlays").join(name).with_extension("jpg").is_file());
    }
    // The face cut by the frame keeps its true coordinates.
    let partial = &lm["obama_partial_face.jpg"][0];
    assert!(partial.bbox[0] < 0.0 || partial.pts.iter().any(|p| p.0 < 0.0), "partial face: {:?}", partial.bbox);
}

#[test]
fn downscaled_detection_matches_full_size() {
    let full = tempfile::tempdir().unwrap();
    let small = tempfile::tempdir().unwrap();
    detect(&samples(), full.path(), &["--detect-max-side", "0"]);
    detect(&samples(), small.path(), &["--detect-max-side", "640"]);
    let a = read_landmarks(full.path());
    let b = read_landmarks(small.path());
    assert_eq!(a.len(), b.len());
    for (name, fa) in &a {
        let fb = &b[name];
        assert_eq!(fa.len(), fb.len(), "{name}");
        let (x, y) = (fa[0].bbox, fb[0].bbox);
        let inter = (x[2].min(y[2]) - x[0].max(y[0])).max(0.0) * (x[3].min(y[3]) - x[1].max(y[1])).max(0.0);
        let union = (x[2] - x[0]) * (x[3] - x[1]) + (y[2] - y[0]) * (y[3] - y[1]) - inter;
        assert!(inter / union > 0.6, "{name}: IoU {} full {:?} small {:?}", inter / union, x, y);
    }
}

/// JPEG with an EXIF APP1 segment holding only Orientation = `value`.
fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&value.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_rotated_copy_gives_the_upright_landmarks() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let upright = image::open(samples().join("obama.jpg")).unwrap().to_rgb8();
    // Stored turned 90° anticlockwise, tagged "rotate 90° clockwise to show" (6), as phones do.
    let stored = image::imageops::rotate270(&upright);
    let mut enc = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut enc, 95).encode_image(&stored).unwrap();
    std::fs::write(input.join("phone.jpg"), with_exif_orientation(&enc, 6)).unwrap();
    let mut enc = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut enc, 95).encode_image(&upright).unwrap();
    std::fs::write(input.join("upright.jpg"), &enc).unwrap();

    let out = tmp.path().join("out");
    detect(&input, &out, &[]);
    let lm = read_landmarks(&out);
    let a = &lm["upright.jpg"][0];
    let b = lm.get("phone.jpg").expect("no face in the EXIF-rotated photo: orientation not applied");
    let max_dev = a.pts.iter().zip(&b[0].pts).map(|(p, q)| (p.0 - q.0).hypot(p.1 - q.1)).fold(0.0f32, f32::max);
    assert!(max_dev < 6.0, "landmarks differ by up to {max_dev} px");
}

#[test]
fn bad_inputs_are_reported_and_the_rest_processed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    let obama = std::fs::read(samples().join("obama.jpg")).unwrap();
    std::fs::write(input.join("good.jpg"), &obama).unwrap();
    std::fs::write(input.join("zero.jpg"), b"").unwrap();
    std::fs::write(input.join("sub/notes.JPG"), b"this is a text file, not a photo").unwrap();
    std::fs::write(input.join("truncated.jpg"), &obama[..obama.len() / 3]).unwrap();
    // Readable oddities: grayscale, 16-bit PNG, CMYK JPEG must be processed, not skipped.
    let rgb = image::load_from_memory(&obama).unwrap();
    rgb.to_luma8().save(input.join("gray.png")).unwrap();
    rgb.to_rgb16().save(input.join("deep16.png")).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cmyk.jpg"), input.join("cmyk.jpg"))
        .unwrap();
    // A 20000×20000 PNG header: refused before any pixel is allocated.
    std::fs::write(input.join("huge.png"), png_header_only(20000, 20000)).unwrap();

    let out = tmp.path().join("out");
    let o = detect(&input, &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let mut fails = HashMap::new();
    let mut r = csv::Reader::from_path(out.join("failures.csv")).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        fails.insert(rec[0].to_string(), rec[1].to_string());
    }
    assert!(fails["zero.jpg"].contains("empty"), "{fails:?}");
    assert!(fails["sub/notes.JPG"].contains("not a recognised image"), "{fails:?}");
    assert!(fails["huge.png"].contains("20000x20000"), "{fails:?}");
    for reason in fails.values() {
        assert!(!reason.contains('\n'));
    }
    assert!(fails["truncated.jpg"].contains("truncated JPEG"), "{fails:?}");
    let lm = read_landmarks(&out);
    assert_eq!(lm["good.jpg"].len(), 1);
    assert_eq!(lm.get("gray.png").map(|v| v.len()), Some(1), "grayscale photo must be processed");
    assert_eq!(lm.get("deep16.png").map(|v| v.len()), Some(1), "16-bit photo must be processed");
    assert!(!fails.contains_key("cmyk.jpg"), "CMYK JPEG must decode: {fails:?}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("zero.jpg"), "skips are also printed: {stderr}");
    assert!(stdout.contains("failures"), "{stdout}");
}

/// A PNG signature plus an IHDR chunk for a `w`×`h` RGB image, and nothing else.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(&ihdr);
    v.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // One tiny IDAT (an empty zlib stream) and IEND: the header parses, the pixels never could.
    let mut idat = b"IDAT".to_vec();
    idat.extend_from_slice(&[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    v.extend_from_slice(&8u32.to_be_bytes());
    v.extend_from_slice(&idat);
    v.extend_from_slice(&crc32(&idat).to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(b"IEND");
    v.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn missing_model_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_maskforge"))
        .arg("detect")
        .arg(samples())
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--models")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("shape_predictor_68_face_landmarks.dat") && err.contains("cargo xtask setup"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
