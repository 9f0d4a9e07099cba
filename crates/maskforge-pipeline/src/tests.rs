//! Whole-pipeline tests with a fake face source: synthetic photos whose one
//! face has a known mean 68-point shape. No detector, no models.

use crate::*;
use image::{Rgb, RgbImage};
use maskforge_contracts::mask_files::SOURCES;
use maskforge_face::crop::{crop_face, CropTransform};
use maskforge_face::{BBox, Face, Landmarks68, Point};
use maskforge_imageio::{DecodeBudget, LoadLimits};
use maskforge_mask::MaskVariant;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A frontal face about 200 px wide centred at (250, 260) (mean iBUG shape, roughly).
fn frontal_face() -> Face {
    #[rustfmt::skip]
    let pts: [(f32, f32); 68] = [
        (-0.97, -0.32), (-0.95, -0.08), (-0.91, 0.15), (-0.85, 0.38), (-0.74, 0.58), (-0.57, 0.75), (-0.37, 0.88), (-0.19, 0.96),
        (0.0, 0.99), (0.19, 0.96), (0.37, 0.88), (0.57, 0.75), (0.74, 0.58), (0.85, 0.38), (0.91, 0.15), (0.95, -0.08), (0.97, -0.32),
        (-0.78, -0.55), (-0.65, -0.64), (-0.49, -0.66), (-0.33, -0.64), (-0.18, -0.59),
        (0.18, -0.59), (0.33, -0.64), (0.49, -0.66), (0.65, -0.64), (0.78, -0.55),
        (0.0, -0.44), (0.0, -0.30), (0.0, -0.16), (0.0, -0.02),
        (-0.17, 0.09), (-0.09, 0.12), (0.0, 0.14), (0.09, 0.12), (0.17, 0.09),
        (-0.60, -0.42), (-0.50, -0.48), (-0.38, -0.48), (-0.28, -0.41), (-0.39, -0.38), (-0.51, -0.37),
        (0.28, -0.41), (0.38, -0.48), (0.50, -0.48), (0.60, -0.42), (0.51, -0.37), (0.39, -0.38),
        (-0.32, 0.42), (-0.20, 0.35), (-0.08, 0.31), (0.0, 0.33), (0.08, 0.31), (0.20, 0.35), (0.32, 0.42),
        (0.21, 0.52), (0.10, 0.56), (0.0, 0.57), (-0.10, 0.56), (-0.21, 0.52),
        (-0.27, 0.42), (-0.08, 0.39), (0.0, 0.40), (0.08, 0.39), (0.27, 0.42), (0.08, 0.45), (0.0, 0.46), (-0.08, 0.45),
    ];
    let landmarks = Landmarks68(pts.map(|(x, y)| Point::new(250.0 + 100.0 * x, 260.0 + 100.0 * y)));
    Face { bbox: BBox::new(150.0, 180.0, 350.0, 370.0), score: 1.25, landmarks }
}

/// The face above on photos whose name does not start with `blank`.
#[derive(Clone)]
struct FakeFaces;

impl FaceSource for FakeFaces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        _path: &Path,
        rel: &str,
        _filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        if image.width() < 500 {
            return Err(format!("{rel}: too small for the fake source"));
        }
        let found = !rel.rsplit('/').next().unwrap_or(rel).starts_with("blank");
        let faces = if found { vec![frontal_face()] } else { Vec::new() };
        Ok(FoundFaces { faces, small: 0, found: usize::from(found), method: maskforge_face::FaceMethod::Hog })
    }
}

fn photo(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = RgbImage::from_fn(500, 520, |x, y| Rgb([shade.wrapping_add((x / 7) as u8), 150 + (y / 10) as u8, 120]));
    img.save(path).unwrap();
}

/// `in/a.png`, `in/p/b.png`, `in/p/blank.png` (no face), `in/tiny.png` (a source error).
fn input_tree(dir: &Path) -> PathBuf {
    let root = dir.join("in");
    photo(&root.join("a.png"), 10);
    photo(&root.join("p/b.png"), 90);
    photo(&root.join("p/blank.png"), 40);
    RgbImage::new(20, 20).save(root.join("tiny.png")).unwrap();
    root
}

fn options(out: &Path, crop_size: u32) -> MaskOptions {
    MaskOptions {
        out: out.to_path_buf(),
        seg_dir: None,
        variants: parse_variants("correct,chin").unwrap(),
        mode: VariantMode::Each,
        draws: 1,
        framings: 1,
        class_map: parse_class_map(Some("chin=incorrect")).unwrap(),
        unmasked: UnmaskedMode::Encode,
        crop_size,
        crop_margin: 0.2,
        format: OutputFormat::Same,
        quality: 95,
        seed: 3,
        faces: FaceFilter { min_face: 40, largest_only: false },
        limits: LoadLimits::default(),
        decode_budget: DecodeBudget::new(1 << 30),
        write: true,
        labels: Vec::new(),
        bare_faces: None,
    }
}

fn synth_options() -> SynthOptions {
    SynthOptions { colour: "palette".into(), texture: "default".into(), lighting: 1.0, ..Default::default() }
}

fn detector() -> DetectorSettings {
    DetectorSettings { detector: "fake".into(), detect_max_side: 0, scale: None, upsample: 0, faces: None }
}

/// A whole run of `opts` over `root` on `threads` threads.
fn run(root: &Path, opts: MaskOptions, threads: usize) -> Finished {
    run_shard(root, opts, threads, None)
}

/// [`run`] of one shard.
fn run_shard(root: &Path, opts: MaskOptions, threads: usize, shard: Option<(usize, usize)>) -> Finished {
    let synth_opts = synth_options();
    let pipeline = Pipeline::new(opts, build_synthesizer(&synth_opts).unwrap(), HashSet::new()).unwrap();
    let settings = Settings::new(&pipeline, &synth_opts, &detector());
    let inputs = Inputs::walk(root, &[], shard, None, OutputFormat::Same);
    let mut run = MaskRun::open(&pipeline, &settings, shard, inputs).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    run.process(&pool, &FakeFaces, &|| {}).unwrap();
    run.finish().unwrap()
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (maskforge_imageio::relative_string(dir, e.path()), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_run_writes_outputs_rows_and_failures_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let out = dir.path().join("out");
    let done = run(&root, options(&out, 0), 2);
    let s = &done.summary;
    assert_eq!((s.images, s.processed, s.skipped, s.faces_masked, s.failures), (4, 4, 0, 2, 2));
    let per_class: Vec<(&str, usize)> = s.outputs_per_class.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(per_class, [("correct", 2), ("incorrect", 2), ("unmasked", 2)]);
    let outputs: Vec<&str> = done.rows.iter().map(|r| r.output.as_str()).collect();
    for o in ["correct/a.png", "incorrect/p/b.png", "unmasked/a.png"] {
        assert!(outputs.contains(&o) && out.join(o).is_file(), "{o} missing: {outputs:?}");
    }
    let reasons: Vec<(String, String)> = done.failures.iter().map(|f| (f.path.clone(), f.reason.clone())).collect();
    assert_eq!(reasons[0], ("p/blank.png".into(), "no face found".into()));
    assert!(reasons[1].0 == "tiny.png" && reasons[1].1.contains("fake source"), "{reasons:?}");
    // The masked pixels changed, the original was copied byte for byte.
    assert_ne!(std::fs::read(out.join("correct/a.png")).unwrap(), std::fs::read(root.join("a.png")).unwrap());
    assert_eq!(std::fs::read(out.join("unmasked/a.png")).unwrap(), std::fs::read(root.join("a.png")).unwrap());
    assert!(out.join(format!("{SOURCES}.csv")).is_file() && !out.join(".mask-journal.jsonl").exists());

    // The same again: only the failed photos are tried again (a finished run's
    // CSVs keep no record of them), not a byte changed; threads change nothing either.
    let before = tree(&out);
    let again = run(&root, options(&out, 0), 1);
    assert_eq!((again.summary.processed, again.summary.skipped), (2, 2));
    assert_eq!(tree(&out), before);
    let other = dir.path().join("other");
    run(&root, options(&other, 0), 1);
    assert_eq!(tree(&other), before);
}

#[test]
fn annotations_of_a_run_read_and_write_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    for (name, crop) in [("whole", 0), ("crops", 96)] {
        let out = dir.path().join(name);
        let done = run(&root, options(&out, crop), 2);
        let path = out.join("annotations.csv");
        let bytes = std::fs::read(&path).unwrap();
        let rows = maskforge_contracts::read_annotations(&path).unwrap();
        assert_eq!(rows.len(), 6, "{name}: correct, chin and unmasked of two photos");
        assert!(done.rows.len() == rows.len() && done.rows.iter().all(|r| rows.contains(r)), "{name}");
        assert_eq!(maskforge_contracts::annotations_bytes(&rows).unwrap(), bytes, "{name}");
        let masked = rows.iter().find(|r| r.variant == "correct").unwrap();
        let [l, _, r, _] = masked.geometry.as_ref().unwrap().bbox().unwrap();
        assert!(r > l, "{name}");
        assert!(masked.mask_polygon.split(';').count() > 20, "{name}");
        let original = rows.iter().find(|r| r.is_unmasked()).unwrap();
        assert_eq!(original.geometry.is_some(), crop > 0, "{name}: crops of originals have landmarks");
    }
}

#[test]
fn preview_only_writes_nothing_and_keeps_thumbnails() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let out = dir.path().join("never");
    let synth = build_synthesizer(&synth_options()).unwrap();
    let pipeline = Pipeline::new(MaskOptions { write: false, ..options(&out, 0) }, synth, HashSet::new()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let images = Inputs::walk(&root, &[], None, None, OutputFormat::Same).images;
    let (items, failures) = pipeline.preview_only(&pool, images, 3, &FakeFaces).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(failures.len(), 2);
    assert!(items.iter().all(|i| i.thumbnail.width() <= 160 && !i.label.is_empty()));
    assert!(!out.exists());
}

#[test]
fn step_times_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let pipeline =
        Pipeline::new(options(&out, 0), build_synthesizer(&synth_options()).unwrap(), HashSet::new()).unwrap();
    let o = pipeline.process(&mut FakeFaces, &root.join("a.png"), "a.png").unwrap();
    assert_eq!(o.record.outputs, ["correct/a.png", "incorrect/a.png", "unmasked/a.png"]);
    assert_eq!(o.record.rows.iter().map(|r| r.variant.as_str()).collect::<Vec<_>>(), ["correct", "chin", "none"]);
    let t = o.times;
    assert!([t.decode, t.masks, t.write].iter().all(|d| !d.is_zero()), "{t:?}");
    assert_eq!(t.total(), t.decode + t.faces + t.masks + t.write);
    assert_eq!(o.record.rows[0].face, Some(0));
    assert_eq!(pipeline.options().variants[1].0, MaskVariant::Chin);
}

#[test]
fn crop_map_inverts_and_matches_crop_face() {
    let mut pts = [Point::new(50.0, 50.0); 68];
    pts[36..42].fill(Point::new(40.0, 40.0));
    pts[42..48].fill(Point::new(60.0, 50.0));
    let face = Face { bbox: BBox::new(30.0, 30.0, 70.0, 80.0), score: 1.0, landmarks: Landmarks68(pts) };
    let map = CropTransform::for_face(&face, 64, 0.2);
    let p = Point::new(47.0, 61.0);
    let back = map.to_source(map.to_crop(p));
    assert!((back.x - p.x).abs() < 1e-3 && (back.y - p.y).abs() < 1e-3);
    // A bright pixel lands where the map says in the real crop.
    let mut img = RgbImage::new(100, 100);
    img.put_pixel(47, 61, Rgb([255, 255, 255]));
    let crop = crop_face(&img, &face, 64, 0.2);
    let q = map.to_crop(Point::new(47.5, 61.5));
    let (x, y) = (q.x.floor() as u32, q.y.floor() as u32);
    let best = (x.saturating_sub(1)..=x + 1)
        .flat_map(|xx| (y.saturating_sub(1)..=y + 1).map(move |yy| (xx, yy)))
        .map(|(xx, yy)| crop.get_pixel(xx, yy)[0])
        .max()
        .unwrap_or(0);
    assert!(best > 60, "bright pixel not near the mapped point ({x},{y})");
}

#[test]
fn file_faces_match_by_path_and_report_what_matches_nothing() {
    use maskforge_contracts::{FaceEntry, FaceFile, FaceFileFormat};
    let entry = |line: usize, path: &str, face: Face| FaceEntry {
        location: format!("f.csv:{line}"),
        paths: vec![path.to_string()],
        face,
    };
    let small = Face { bbox: BBox::new(10.0, 10.0, 30.0, 30.0), ..frontal_face() };
    let far = Face { bbox: BBox::new(5000.0, 10.0, 5100.0, 110.0), ..frontal_face() };
    let file = FaceFile {
        format: FaceFileFormat::Csv,
        sha256: String::new(),
        faces: vec![
            entry(2, "a.png", small),
            entry(3, "a.png", frontal_face()),
            entry(4, "gone.png", small),
            entry(5, "b.png", far),
        ],
        problems: vec![maskforge_imageio::Failure::new("f.csv:6", "y5: \"abc\" is not a number")],
    };
    let images: HashSet<String> = ["a.png", "b.png", "c.png"].map(String::from).into();
    let (mut faces, failures) = FileFaces::new(&file, "f.csv", &images);
    let got: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.path, f.reason)).collect();
    assert_eq!(got, ["f.csv:6: y5: \"abc\" is not a number", "f.csv:4: no image gone.png in the input folder"]);
    let img = RgbImage::new(500, 520);
    let filter = FaceFilter { min_face: 40, largest_only: false };
    let found = faces.find_faces(&img, Path::new("a.png"), "a.png", filter).unwrap();
    assert_eq!((found.faces, found.small, found.found), (vec![frontal_face()], 1, 2));
    let err = faces.find_faces(&img, Path::new("c.png"), "c.png", filter).unwrap_err();
    assert_eq!(err, "no face for this image in f.csv");
    let err = faces.find_faces(&img, Path::new("b.png"), "b.png", filter).unwrap_err();
    assert!(err.starts_with("face 0 in f.csv: box 5000,10,5100,110 lies outside"), "{err}");
}

/// The label files in `dir`: `labels.*` and every `.txt`.
fn label_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir).into_iter().filter(|(p, _)| p.starts_with("labels.") || p.ends_with(".txt")).collect()
}

#[test]
fn labels_box_every_face_and_follow_resumes_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let out = dir.path().join("out");
    let opts = MaskOptions { labels: vec![LabelFormat::Coco, LabelFormat::Yolo], ..options(&out, 0) };
    let done = run(&root, opts.clone(), 2);
    assert!(done.warnings.is_empty(), "{:?}", done.warnings);
    let coco: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.coco.json")).unwrap()).unwrap();
    let mut outputs: Vec<&str> = done.rows.iter().map(|r| r.output.as_str()).collect();
    outputs.sort();
    outputs.dedup();
    let names: Vec<&str> =
        coco["images"].as_array().unwrap().iter().map(|i| i["file_name"].as_str().unwrap()).collect();
    assert_eq!(names, outputs, "every output, unmasked originals too");
    let cats: Vec<&str> = coco["categories"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(cats, ["correct", "incorrect", "unmasked"]);
    let anns = coco["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 6, "one face in each of 6 outputs");
    let face = frontal_face().bbox;
    for a in anns {
        let image = &coco["images"][a["image_id"].as_u64().unwrap() as usize - 1];
        assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(500), Some(520)));
        let want = [face.left, face.top, face.right - face.left, face.bottom - face.top].map(f64::from);
        assert_eq!(a["bbox"], serde_json::json!(want), "{a}");
        let class = image["file_name"].as_str().unwrap().split('/').next().unwrap();
        assert_eq!(cats[a["category_id"].as_u64().unwrap() as usize - 1], class);
    }
    let (cx, cy) = (f64::from(face.left + face.right) / 2.0 / 500.0, f64::from(face.top + face.bottom) / 2.0 / 520.0);
    let (w, h) = (f64::from(face.right - face.left) / 500.0, f64::from(face.bottom - face.top) / 520.0);
    for (k, class) in cats.iter().enumerate() {
        let text = std::fs::read_to_string(out.join(class).join("a.txt")).unwrap();
        assert_eq!(text, format!("{k} {cx:.6} {cy:.6} {w:.6} {h:.6}\n"));
    }
    let yaml = std::fs::read_to_string(out.join("labels.yolo.yaml")).unwrap();
    assert!(yaml.contains("names:\n  0: \"correct\"\n  1: \"incorrect\"\n  2: \"unmasked\"\n"), "{yaml}");
    let single = label_files(&out);
    assert_eq!(single.len(), 2 + 6);

    // A re-run without --labels keeps the files there up to date: not a byte changes.
    let before = tree(&out);
    run(&root, options(&out, 0), 1);
    assert_eq!(tree(&out), before);

    // Shards in one folder, merged: the single run's label files, and the shards' removed.
    let shared = dir.path().join("shared");
    for i in 1..=2 {
        run_shard(&root, MaskOptions { out: shared.clone(), ..opts.clone() }, 1, Some((i, 2)));
    }
    assert!(shared.join("labels.coco.shard-1-of-2.json").is_file());
    let report = merge(&shared, &[], true).unwrap();
    assert_eq!(report.labels, [LabelFormat::Coco, LabelFormat::Yolo]);
    assert_eq!(label_files(&shared), single);
    // Shards in their own folders (only COCO asked of one), merged into a new folder, twice.
    let (s1, s2, merged) = (dir.path().join("s1"), dir.path().join("s2"), dir.path().join("merged"));
    run_shard(&root, MaskOptions { out: s1.clone(), ..opts.clone() }, 1, Some((1, 2)));
    let coco_only = MaskOptions { out: s2.clone(), labels: vec![LabelFormat::Coco], ..opts.clone() };
    run_shard(&root, coco_only, 1, Some((2, 2)));
    for _ in 0..2 {
        let report = merge(&merged, &[s1.clone(), s2.clone()], true).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(label_files(&merged), single);
    }
    // Without label files anywhere, merge writes none.
    let plain = dir.path().join("plain");
    run(&root, options(&plain, 0), 1);
    merge(&plain, &[], true).unwrap();
    assert!(label_files(&plain).is_empty());
}

#[test]
fn labels_of_crops_box_the_face_in_each_crop() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let out = dir.path().join("out");
    let done = run(&root, MaskOptions { labels: vec![LabelFormat::Coco], ..options(&out, 96) }, 1);
    assert!(done.warnings.is_empty(), "{:?}", done.warnings);
    let coco: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.coco.json")).unwrap()).unwrap();
    let anns = coco["annotations"].as_array().unwrap();
    assert_eq!((coco["images"].as_array().unwrap().len(), anns.len()), (6, 6));
    let mut rows = done.rows.clone();
    rows.sort_by(|a, b| a.output.cmp(&b.output));
    for (a, row) in anns.iter().zip(&rows) {
        assert_eq!(coco["images"][a["image_id"].as_u64().unwrap() as usize - 1]["width"], 96);
        let [l, t, r, b] = row.geometry.as_ref().unwrap().bbox().unwrap().map(|v| f64::from(v).clamp(0.0, 96.0));
        let want = [l, t, r - l, b - t].map(|v| (v * 100.0).round() / 100.0);
        assert_eq!(a["bbox"], serde_json::json!(want), "{}", row.output);
    }
    assert!(!out.join("labels.yolo.yaml").exists() && label_files(&out).len() == 1);
}

/// Six faces a third the size of [`frontal_face`], in two rows.
#[derive(Clone)]
struct SixFaces;

impl FaceSource for SixFaces {
    fn find_faces(&mut self, _: &RgbImage, _: &Path, _: &str, _: FaceFilter) -> Result<FoundFaces, String> {
        let base = frontal_face();
        let faces: Vec<Face> = (0..6)
            .map(|i| {
                let (dx, dy) = (120.0 + 160.0 * (i % 3) as f32, 110.0 + 200.0 * (i / 3) as f32);
                let at = |p: Point| Point::new(dx + 0.4 * (p.x - 250.0), dy + 0.4 * (p.y - 260.0));
                let b = base.bbox;
                let (tl, br) = (at(Point::new(b.left, b.top)), at(Point::new(b.right, b.bottom)));
                Face { bbox: BBox::new(tl.x, tl.y, br.x, br.y), score: 1.0, landmarks: base.landmarks.map(at) }
            })
            .collect();
        Ok(FoundFaces { found: faces.len(), faces, small: 0, method: maskforge_face::FaceMethod::Hog })
    }
}

#[test]
fn random_mode_draws_a_variant_per_face_crop_and_one_per_whole_image() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("group.png");
    RgbImage::from_fn(520, 420, |x, y| Rgb([150 + (x % 9) as u8, 110 + (y % 7) as u8, 95])).save(&src).unwrap();
    let random = |crop_size: u32| {
        let out = dir.path().join(format!("out{crop_size}"));
        std::fs::create_dir_all(&out).unwrap();
        let opts = MaskOptions {
            mode: VariantMode::Random,
            variants: parse_variants("correct,nose_exposed,chin").unwrap(),
            class_map: parse_class_map(None).unwrap(),
            unmasked: UnmaskedMode::None,
            faces: FaceFilter { min_face: 10, largest_only: false },
            ..options(&out, crop_size)
        };
        let pipeline = Pipeline::new(opts, build_synthesizer(&synth_options()).unwrap(), HashSet::new()).unwrap();
        let o = pipeline.process(&mut SixFaces, &src, "group.png").unwrap();
        assert!(o.record.failures.is_empty(), "{:?}", o.record.failures);
        o.record.rows.iter().map(|r| (r.variant.clone(), r.output.clone())).collect::<Vec<_>>()
    };
    let crops = random(64);
    assert_eq!(crops.len(), 6);
    let kinds: HashSet<&str> = crops.iter().map(|(v, _)| v.as_str()).collect();
    assert!(kinds.len() >= 2, "six crops, one variant: {crops:?}");
    for (v, output) in &crops {
        assert!(output.starts_with(&format!("{v}/")), "{output} filed outside its variant's class");
    }
    let whole = random(0);
    assert_eq!(whole.len(), 6);
    assert!(whole.iter().all(|(v, o)| *v == whole[0].0 && *o == whole[0].1), "{whole:?}");
    // The first face keeps the image's own draw in both layouts.
    assert_eq!(crops[0].0, whole[0].0);
}

#[test]
fn framings_crop_each_output_and_its_unmasked_twin_through_the_same_windows() {
    let dir = tempfile::tempdir().unwrap();
    let root = input_tree(dir.path());
    let (one, three) = (dir.path().join("one"), dir.path().join("three"));
    let plain = run(&root, options(&one, 96), 1);
    let done = run(&root, MaskOptions { framings: 3, ..options(&three, 96) }, 1);
    // Two photos with a face, three outputs each (correct, chin, unmasked), three framings each.
    assert_eq!((plain.rows.len(), done.rows.len()), (6, 18));
    let read = |dir: &Path, rel: &str| image::open(dir.join(rel)).unwrap().to_rgb8();
    // The standard framing is the crop a run without --framings makes, byte for byte.
    for row in &plain.rows {
        assert_eq!(std::fs::read(three.join(&row.output)).unwrap(), std::fs::read(one.join(&row.output)).unwrap());
    }
    for k in 1..3 {
        let masked = read(&three, &format!("correct/a__frame{k}.png"));
        let bare = read(&three, &format!("unmasked/a__frame{k}.png"));
        let standard = read(&three, "unmasked/a.png");
        assert_eq!(masked.dimensions(), (96, 96));
        assert_ne!(bare, standard, "framing {k} is a window of its own");
        // Pairs share the window: they differ only around the mask outline the row
        // gives in this crop's coordinates (grown by the shadow's reach).
        let row = done.rows.iter().find(|r| r.output == format!("correct/a__frame{k}.png")).unwrap();
        let pts: Vec<(f32, f32)> = row
            .mask_polygon
            .split(';')
            .map(|p| p.split_once(' ').map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).unwrap())
            .collect();
        let grow = 12.0;
        let (l, r) = pts.iter().fold((f32::MAX, f32::MIN), |(l, r), p| (l.min(p.0), r.max(p.0)));
        let (t, b) = pts.iter().fold((f32::MAX, f32::MIN), |(t, b), p| (t.min(p.1), b.max(p.1)));
        let outside = |x: u32, y: u32| {
            let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
            x < l - grow || x > r + grow || y < t - grow || y > b + grow
        };
        let (mut differ, mut stray) = (0, 0);
        for (x, y, m) in masked.enumerate_pixels() {
            if m.0.iter().zip(bare.get_pixel(x, y).0).any(|(p, q)| p.abs_diff(q) > 3) {
                differ += 1;
                stray += usize::from(outside(x, y));
            }
        }
        assert!(differ > 500, "framing {k}: the mask is in the crop ({differ} pixels differ)");
        assert_eq!(stray, 0, "framing {k}: the masked crop and its twin are framed apart");
    }
    // The rows place the face where the crop shows it: each framing's box differs.
    let boxes: HashSet<String> = done
        .rows
        .iter()
        .filter(|r| r.output.starts_with("unmasked/a"))
        .map(|r| format!("{:?}", r.geometry.as_ref().unwrap().bbox()))
        .collect();
    assert_eq!(boxes.len(), 3);
    let refused = MaskOptions { framings: 2, ..options(&dir.path().join("x"), 0) }.check();
    assert!(matches!(refused, Err(PipelineError::Option(m)) if m.contains("--crop-size")));
}
