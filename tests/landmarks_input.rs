//! End-to-end tests of `maskforge mask --landmarks FILE` on the real sample
//! photos: faces from `detect`'s landmarks.csv (the same outputs as a
//! detecting run), from FFHQ's metadata JSON and from a plain CSV; bad rows
//! reported in failures.csv, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{maskforge, samples};

fn copy_sample(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(samples().join(name), to).unwrap();
}

/// `in/obama.jpg`, `in/people/biden.jpg`, `in/obama2.jpg`.
fn input_tree(dir: &Path) -> PathBuf {
    let root = dir.join("in");
    copy_sample("obama.jpg", &root.join("obama.jpg"));
    copy_sample("biden.jpg", &root.join("people/biden.jpg"));
    copy_sample("obama2.jpg", &root.join("obama2.jpg"));
    root
}

fn maskforge_ok(args: &[&std::ffi::OsStr]) -> Output {
    let o = maskforge().args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(o.status.success(), "maskforge {args:?} failed:\nstdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    o
}

fn mask(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["mask".as_ref(), input.as_os_str(), "--out".as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    maskforge_ok(&args)
}

/// `maskforge detect INPUT`: the rows of its landmarks.csv (header first).
fn detect(input: &Path, out: &Path) -> Vec<Vec<String>> {
    maskforge_ok(&["detect".as_ref(), input.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(out.join("landmarks.csv")).unwrap();
    r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect()
}

/// The detect row of `path`.
fn row_of<'a>(rows: &'a [Vec<String>], path: &str) -> &'a [String] {
    rows.iter().find(|r| r[0] == path).unwrap_or_else(|| panic!("no detect row for {path}"))
}

/// The 68 points of a detect row, as numbers.
fn points(row: &[String]) -> Vec<[f32; 2]> {
    (0..68).map(|k| [row[7 + 2 * k].parse().unwrap(), row[8 + 2 * k].parse().unwrap()]).collect()
}

fn csv_line(fields: &[String]) -> String {
    fields.join(",") + "\n"
}

/// All files under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            m.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    m
}

fn read_failures(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("failures.csv")).expect("failures.csv");
    r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect()
}

/// `(source, left, top, right, bottom)` of the annotation rows.
fn annotated_faces(out: &Path) -> Vec<(String, [f32; 4])> {
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (s, l, t, rr, b) = (col("source"), col("box_left"), col("box_top"), col("box_right"), col("box_bottom"));
    let num = |rec: &csv::StringRecord, i: usize| rec[i].parse::<f32>().unwrap();
    let mut faces: Vec<(String, [f32; 4])> = r
        .records()
        .map(|x| x.unwrap())
        .map(|x| (x[s].to_string(), [num(&x, l), num(&x, t), num(&x, rr), num(&x, b)]))
        .collect();
    faces.dedup_by(|a, b| a.0 == b.0);
    faces
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

#[test]
fn detect_then_mask_from_landmarks_gives_the_bytes_of_a_detecting_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    for name in ["obama.jpg", "obama_partial_face.jpg", "32bit.png"] {
        copy_sample(name, &input.join(name));
    }
    copy_sample("biden.jpg", &input.join("people/biden.jpg"));
    copy_sample("obama3.jpg", &input.join("people/obama3.jpg"));
    detect(&input, &tmp.path().join("det"));
    let landmarks = tmp.path().join("det/landmarks.csv");
    // detect and mask share the detector flags and their defaults (HOG, the scale from --min-face).
    let settings = ["--seed", "9", "--variants", "correct,chin", "--unmasked", "copy"];
    let seg = tmp.path().join("seg-a");
    let detected = tmp.path().join("detected");
    mask(&input, &detected, &[&settings[..], &["--seg-dir", seg.to_str().unwrap()][..]].concat());
    let seg = tmp.path().join("seg-b");
    let from_file = tmp.path().join("from-file");
    let extra = ["--landmarks", landmarks.to_str().unwrap(), "--seg-dir", seg.to_str().unwrap()];
    mask(&input, &from_file, &[&settings[..], &extra[..]].concat());

    let (mut a, mut b) = (tree(&detected), tree(&from_file));
    let settings_b = String::from_utf8(b.remove("mask_settings.json").unwrap()).unwrap();
    a.remove("mask_settings.json");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        // annotations.csv says how the faces were found; all else is equal.
        let b = match name.as_str() {
            "annotations.csv" => {
                let text = String::from_utf8(b[name].clone()).unwrap();
                assert!(text.contains(",landmarks,") && !text.contains(",hog,"), "{text}");
                text.replace(",landmarks,", ",hog,").into_bytes()
            }
            _ => b[name].clone(),
        };
        assert!(bytes == &b, "{name} differs between the detecting run and the --landmarks run");
    }
    assert!(a.keys().any(|k| k == "correct/people/biden.jpg"), "{:?}", a.keys());
    assert_eq!(tree(&tmp.path().join("seg-a")), tree(&tmp.path().join("seg-b")));
    assert!(settings_b.contains("\"faces\": \"landmarks landmarks.csv (detect, sha256 "), "{settings_b}");

    // Another landmarks file is another setting: the folder is refused.
    let other = tmp.path().join("landmarks.csv");
    let text = std::fs::read_to_string(&landmarks).unwrap();
    std::fs::write(&other, text.lines().take(2).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let o = maskforge()
        .arg("mask")
        .arg(&input)
        .arg("--out")
        .arg(&from_file)
        .args(settings)
        .args(["--landmarks", other.to_str().unwrap(), "--seg-dir", seg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("faces:"), "{stderr}");
}

#[test]
fn bad_rows_and_unmatched_images_are_failures_and_the_rest_is_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let rows = detect(&input, &tmp.path().join("det"));
    let obama = row_of(&rows, "obama.jpg");
    let with_path = |p: &str| [&[p.to_string()], &obama[1..]].concat();
    let mut short = with_path("obama3.jpg");
    short.truncate(short.len() - 2);
    let mut nan = with_path("obama3.jpg");
    nan[20] = "NaN".into();
    let mut text = with_path("obama3.jpg");
    text[31] = "twelve".into();
    let mut inf = with_path("obama3.jpg");
    inf[3] = "inf".into();
    // No row for obama2.jpg; a row for an image that is not there.
    let file = [rows[0].clone(), obama.to_vec(), row_of(&rows, "people/biden.jpg").to_vec(), with_path("ghost.jpg")]
        .iter()
        .chain([&short, &nan, &text, &inf])
        .map(|r| csv_line(r))
        .collect::<String>();
    let lm = tmp.path().join("faces.csv");
    std::fs::write(&lm, file).unwrap();
    let out = tmp.path().join("out");
    let o = mask(&input, &out, &["--variants", "correct", "--landmarks", lm.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 faces masked"), "{stdout}");
    let f = read_failures(&out);
    let name = lm.display().to_string();
    let expected = ["obama2.jpg".to_string(), format!("{name}:4"), format!("{name}:5"), format!("{name}:6")]
        .into_iter()
        .chain([format!("{name}:7"), format!("{name}:8")]);
    let mut expected: Vec<String> = expected.collect();
    expected.sort();
    assert_eq!(f.keys().cloned().collect::<Vec<_>>(), expected, "{f:?}");
    assert!(f["obama2.jpg"].contains("no face for this image"), "{f:?}");
    assert!(f[&format!("{name}:4")].contains("no image ghost.jpg"), "{f:?}");
    assert!(f[&format!("{name}:5")].contains("67 points instead of 68"), "{f:?}");
    assert!(f[&format!("{name}:6")].contains("not a finite number"), "{f:?}");
    assert!(f[&format!("{name}:7")].contains("\"twelve\" is not a number"), "{f:?}");
    assert!(f[&format!("{name}:8")].contains("top: \"inf\" is not a finite number"), "{f:?}");
    let sources: Vec<String> = annotated_faces(&out).into_iter().map(|(s, _)| s).collect();
    assert_eq!(sources, ["obama.jpg", "people/biden.jpg"]);
    assert!(out.join("correct/obama.jpg").is_file() && !out.join("correct/obama2.jpg").exists());

    // A file that is no face file at all stops the run before anything is written.
    std::fs::write(&lm, "name,size\na.jpg,3\n").unwrap();
    let o = maskforge()
        .arg("mask")
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .arg("--landmarks")
        .arg(&lm)
        .output();
    let o = o.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("no `path` column"), "{stderr}");
    assert!(!tmp.path().join("o2").exists());
}

/// An FFHQ-style tree: `ffhq/images1024x1024/00000/0000{0,1}.jpg`.
fn ffhq_tree(dir: &Path) -> PathBuf {
    let root = dir.join("ffhq");
    copy_sample("obama.jpg", &root.join("images1024x1024/00000/00000.jpg"));
    copy_sample("biden.jpg", &root.join("images1024x1024/00000/00001.jpg"));
    root
}

#[test]
fn ffhq_metadata_faces_match_by_path_from_the_root_or_the_aligned_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = ffhq_tree(tmp.path());
    let rows = detect(&root, &tmp.path().join("det"));
    let entry = |n: &str, path: &str| {
        serde_json::json!({
            "category": "training",
            "metadata": {"license": "x"},
            "image": {"file_path": format!("images1024x1024/00000/{n}.jpg"), "pixel_size": [1024, 1024],
                      "face_landmarks": points(row_of(&rows, path))},
            "thumbnail": {"file_path": format!("thumbnails128x128/00000/{n}.png")},
            "in_the_wild": {"file_path": format!("in-the-wild-images/00000/{n}.png"),
                            "face_rect": [1, 2, 3, 4], "face_landmarks": points(row_of(&rows, path))},
        })
    };
    let json = serde_json::json!({
        "0": entry("00000", "images1024x1024/00000/00000.jpg"),
        "1": entry("00001", "images1024x1024/00000/00001.jpg"),
    });
    let meta = tmp.path().join("ffhq-dataset-v2.json");
    std::fs::write(&meta, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    for (input, prefix) in [(root.clone(), "images1024x1024/"), (root.join("images1024x1024"), "")] {
        let out = tmp.path().join(format!("out-{}", prefix.len()));
        mask(&input, &out, &["--variants", "correct", "--landmarks", meta.to_str().unwrap()]);
        assert!(read_failures(&out).is_empty(), "{:?}", read_failures(&out));
        let faces = annotated_faces(&out);
        let sources: Vec<&str> = faces.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sources, [format!("{prefix}00000/00000.jpg"), format!("{prefix}00000/00001.jpg")]);
        for (source, bbox) in &faces {
            let det = row_of(&rows, &format!("images1024x1024/{}", source.trim_start_matches(prefix)));
            let det_box: Vec<f32> = det[2..6].iter().map(|v| v.parse().unwrap()).collect();
            // The box made from the landmarks sits like dlib's.
            let overlap = iou(*bbox, [det_box[0], det_box[1], det_box[2], det_box[3]]);
            assert!(overlap > 0.7, "{source}: box {bbox:?} vs dlib's {det_box:?}: IoU {overlap}");
            assert!(out.join("correct").join(source).is_file());
        }
        let settings = std::fs::read_to_string(out.join("mask_settings.json")).unwrap();
        assert!(settings.contains("landmarks ffhq-dataset-v2.json (ffhq, sha256"), "{settings}");
    }
}

#[test]
fn a_plain_csv_of_68_points_in_any_column_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let rows = detect(&input, &tmp.path().join("det"));
    let header: Vec<String> = (0..68).rev().flat_map(|i| [format!("y{i}"), format!("x{i}")]).collect();
    let mut text = csv_line(&[&["face".to_string()][..], &header, &["path".to_string(), "note".to_string()]].concat());
    for path in ["obama.jpg", "people/biden.jpg", "obama2.jpg"] {
        let pts = points(row_of(&rows, path));
        let values: Vec<String> = (0..68).rev().flat_map(|i| [pts[i][1].to_string(), pts[i][0].to_string()]).collect();
        text += &csv_line(
            &[&["0".to_string()][..], &values, &[path.to_string(), "from another tool".to_string()]].concat(),
        );
    }
    let lm = tmp.path().join("points.txt");
    std::fs::write(&lm, &text).unwrap();
    let out = tmp.path().join("out");
    let args = ["--variants", "correct", "--landmarks", lm.to_str().unwrap(), "--landmarks-format", "csv"];
    mask(&input, &out, &args);
    assert!(read_failures(&out).is_empty(), "{:?}", read_failures(&out));
    let faces = annotated_faces(&out);
    let sources: Vec<&str> = faces.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sources, ["obama.jpg", "obama2.jpg", "people/biden.jpg"]);
    for (source, bbox) in &faces {
        let det_box: Vec<f32> = row_of(&rows, source)[2..6].iter().map(|v| v.parse().unwrap()).collect();
        let overlap = iou(*bbox, [det_box[0], det_box[1], det_box[2], det_box[3]]);
        assert!(overlap > 0.7, "{source}: box {bbox:?} vs dlib's {det_box:?}: IoU {overlap}");
    }
    let settings = std::fs::read_to_string(out.join("mask_settings.json")).unwrap();
    assert!(settings.contains("landmarks points.txt (csv, sha256"), "{settings}");
}
