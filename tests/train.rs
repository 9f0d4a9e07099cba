//! End to end on the CPU: `maskforge train`, `--resume` and `eval` on a tiny
//! masked/unmasked dataset made from the sample photos.
//!
//! The dataset: face crops of four sample photos (boxes found once with
//! `maskforge detect`, written below so this test needs no dlib), jittered
//! in position and scale; the "masked" copy of each crop has a synthetic
//! mask drawn over the lower face. Manifests are written directly in the
//! format `maskforge split` writes (plus a missing file and a corrupt image,
//! which must be skipped and counted, not abort the run).

use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{draw_synthetic_mask, samples, SAMPLE_FACES as FACES};

const CROP: u32 = 64;
const VARIANTS: usize = 12;
const VAL_FROM: usize = 10;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_maskforge")
}

/// Small deterministic generator for the jitter (no test dependency).
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

fn crop(img: &RgbImage, cx: f32, cy: f32, side: f32) -> RgbImage {
    let x0 = (cx - side / 2.0).max(0.0) as u32;
    let y0 = (cy - side / 2.0).max(0.0) as u32;
    let s = (side as u32).min(img.width() - x0).min(img.height() - y0);
    let sub = image::imageops::crop_imm(img, x0, y0, s, s).to_image();
    image::imageops::resize(&sub, CROP, CROP, image::imageops::FilterType::Triangle)
}

/// A synthetic mask in one of four colours.
fn draw_mask(img: &mut RgbImage, rng: &mut Lcg) {
    const COLORS: [Rgb<u8>; 4] = [Rgb([140, 190, 230]), Rgb([240, 240, 240]), Rgb([25, 25, 30]), Rgb([230, 160, 190])];
    let c = COLORS[(rng.unit() * 4.0) as usize % 4];
    draw_synthetic_mask(img, c);
}

struct Dataset {
    _dir: tempfile::TempDir,
    root: PathBuf,
    manifests: PathBuf,
    runs: PathBuf,
}

fn build_dataset() -> Dataset {
    let samples = samples();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let manifests = dir.path().join("manifests");
    for c in ["masked", "unmasked"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    std::fs::create_dir_all(&manifests).unwrap();
    let mut rng = Lcg(7);
    let mut train = String::from("path,class_index,class,group,bytes\n");
    let mut val = train.clone();
    let (mut sum, mut sum_sq, mut n) = ([0f64; 3], [0f64; 3], 0f64);
    for (file, l, t, r, b) in FACES {
        let path = samples.join(file);
        let img = maskforge_imageio::load_rgb(&path, Default::default())
            .unwrap_or_else(|e| panic!("{e}: the sample photos come with the project set-up (cargo xtask setup)"));
        let stem = file.trim_end_matches(".jpg");
        for v in 0..VARIANTS {
            let (w, h) = (r - l, b - t);
            let cx = (l + r) / 2.0 + (rng.unit() - 0.5) * 0.16 * w;
            let cy = (t + b) / 2.0 + (rng.unit() - 0.5) * 0.16 * h;
            let side = w.max(h) * (1.3 + rng.unit() * 0.3);
            let face = crop(&img, cx, cy, side);
            let mut masked = face.clone();
            draw_mask(&mut masked, &mut rng);
            for (class_index, class, im) in [(0, "masked", &masked), (1, "unmasked", &face)] {
                let rel = format!("{class}/{stem}_{v:02}.png");
                im.save(root.join(&rel)).unwrap();
                let bytes = std::fs::metadata(root.join(&rel)).unwrap().len();
                let line = format!("{rel},{class_index},{class},{stem},{bytes}\n");
                if v >= VAL_FROM {
                    val.push_str(&line);
                } else {
                    train.push_str(&line);
                    for p in im.pixels() {
                        for c in 0..3 {
                            let x = p.0[c] as f64 / 255.0;
                            sum[c] += x;
                            sum_sq[c] += x * x;
                        }
                        n += 1.0;
                    }
                }
            }
        }
    }
    // Rows that must be skipped and counted: a missing file and a corrupt image.
    std::fs::write(root.join("masked/corrupt.png"), b"\x89PNG\r\n\x1a\n not really").unwrap();
    train.push_str("masked/missing.png,0,masked,x,10\nmasked/corrupt.png,0,masked,y,10\n");
    std::fs::write(manifests.join("train.csv"), train).unwrap();
    std::fs::write(manifests.join("val.csv"), val).unwrap();
    std::fs::write(manifests.join("classes.csv"), "index,name,count\n0,masked,48\n1,unmasked,48\n").unwrap();
    let mean: Vec<f64> = (0..3).map(|c| sum[c] / n).collect();
    let std: Vec<f64> = (0..3).map(|c| (sum_sq[c] / n - (sum[c] / n).powi(2)).sqrt()).collect();
    std::fs::write(
        manifests.join("stats.json"),
        format!(r#"{{"manifest":"train.csv","mean":{mean:?},"std":{std:?},"class_names":["masked","unmasked"],"class_counts":[40,40],"class_weights":[1.0,1.0]}}"#),
    )
    .unwrap();
    std::fs::write(manifests.join("split.json"), format!(r#"{{"dataset_root":{:?}}}"#, root.display().to_string()))
        .unwrap();
    let runs = dir.path().join("runs");
    Dataset { _dir: dir, root, manifests, runs }
}

fn maskforge(args: &[&str]) -> (String, String) {
    let out = Command::new(bin()).args(args).output().expect("maskforge runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "maskforge {args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn metrics(run: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_resume_and_eval() {
    let ds = build_dataset();
    let run = ds.runs.join("r18");
    let (m, r) = (ds.manifests.to_str().unwrap(), run.to_str().unwrap());
    let common = [
        "--arch",
        "resnet18",
        "--img-size",
        "48",
        "--batch-size",
        "16",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--warmup-epochs",
        "0",
        "--patience",
        "0",
        "--device",
        "cpu",
        "--workers",
        "2",
        "--seed",
        "3",
        // A constant rate, so that a 4-epoch run resumed to 6 can be compared
        // with an uninterrupted 6-epoch twin (a cosine schedule depends on --epochs).
        "--schedule",
        "constant",
    ];
    let mut args = vec!["train", "--manifests", m, "--out", r, "--epochs", "4"];
    args.extend(common);
    let (stdout, stderr) = maskforge(&args);
    assert!(stderr.contains("skipped masked/missing.png"), "{stderr}");
    assert!(stderr.contains("skipped masked/corrupt.png"), "{stderr}");
    assert!(stderr.contains("from scratch"), "{stderr}");
    assert!(stdout.contains("precision    recall  f1-score   support"), "{stdout}");
    for f in [
        "best.safetensors",
        "last.safetensors",
        "metrics.csv",
        "curves.png",
        "report.json",
        "report.txt",
        "config.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let rows = metrics(&run);
    assert_eq!(rows.len(), 4);
    let loss = |row: &Vec<String>| row[2].parse::<f64>().unwrap();
    assert!(loss(&rows[3]) < loss(&rows[0]) * 0.8, "training loss does not fall: {rows:?}");
    assert_eq!(rows[0][6], "80", "80 usable training images of 82 rows");
    let report = json(&run.join("report.json"));
    assert_eq!(report["skipped"], 2, "{report}");
    assert_eq!(report["images"], 16);
    let config = json(&run.join("config.json"));
    assert_eq!(config["config"]["arch"], "resnet18");
    assert_eq!(config["manifests"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(config["environment"]["libtorch_version"].as_str().unwrap().starts_with("2."), "{config}");
    let curves = image::open(run.join("curves.png")).unwrap();
    assert_eq!((curves.width(), curves.height()), (1000, 420));
    // The epoch-4 model, for an ensemble with the final one below.
    let epoch4 = ds.runs.join("epoch4.safetensors");
    std::fs::copy(run.join("last.safetensors"), &epoch4).unwrap();

    // Resume: two more epochs continue after epoch 4; history is kept.
    let (_, stderr) = maskforge(&["train", "--resume", r, "--epochs", "6"]);
    assert!(stderr.contains("resuming") && stderr.contains("after epoch 4"), "{stderr}");
    let resumed = metrics(&run);
    assert_eq!(resumed.len(), 6);
    assert_eq!(resumed[..4], rows[..], "earlier epochs unchanged");
    assert_eq!(json(&run.join("config.json"))["resumed_at"], serde_json::json!([4]));
    // ... exactly as an uninterrupted run (seeded, with the optimiser state restored).
    let twin = ds.runs.join("twin");
    let mut args = vec!["train", "--manifests", m, "--out", twin.to_str().unwrap(), "--epochs", "6"];
    args.extend(common);
    maskforge(&args);
    let twin_rows = metrics(&twin);
    for (a, b) in resumed.iter().zip(&twin_rows) {
        // Same epoch, lr, losses and accuracies; timings differ.
        assert_eq!(a[..8], b[..8], "resumed run differs from the uninterrupted one");
    }
    // Flags that would change the run are refused with --resume.
    let out = Command::new(bin()).args(["train", "--resume", r, "--lr", "0.1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lr"));
    // Nothing left to do once --epochs is reached.
    let out = Command::new(bin()).args(["train", "--resume", r, "--epochs", "6"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass a larger --epochs"));

    // eval on val reproduces the run's final report (the best checkpoint on val).
    let report = json(&run.join("report.json"));
    let (model, val) = (run.join("best.safetensors"), ds.manifests.join("val.csv"));
    let eval_val = |out: &Path, extra: &[&str]| {
        let args = ["eval", "--model", model.to_str().unwrap(), "--manifest", val.to_str().unwrap()];
        maskforge(&[&args[..], &["--out", out.to_str().unwrap(), "--device", "cpu"], extra].concat()).0
    };
    let eval_dir = ds.runs.join("eval-val");
    let stdout = eval_val(&eval_dir, &[]);
    assert!(stdout.contains("weighted avg"), "{stdout}");
    let eval = json(&eval_dir.join("report.json"));
    let (a, b) = (eval["loss"].as_f64().unwrap(), report["loss"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-6, "eval loss {a} vs run {b}");
    assert_eq!(eval["accuracy"], report["accuracy"]);
    assert_eq!(eval["classification"]["confusion_matrix"], report["classification"]["confusion_matrix"]);
    assert_eq!(eval["epoch"], report["epoch"]);
    // The best epoch's row in metrics.csv holds the same val loss.
    let best_epoch = report["epoch"].as_u64().unwrap().to_string();
    let best_row = resumed.iter().find(|row| row[0] == best_epoch).unwrap();
    assert!((best_row[4].parse::<f64>().unwrap() - b).abs() < 1e-5, "{best_row:?} vs {b}");
    let preds = std::fs::read_to_string(eval_dir.join("predictions.csv")).unwrap();
    assert_eq!(preds.lines().count(), 17);
    assert!(preds.starts_with("path,class,predicted,confidence,correct,p_masked,p_unmasked"));
    assert_eq!(eval["tta"], "none");

    // --tta flip: every image classified with its mirror image too, and said so.
    let flip_dir = ds.runs.join("eval-val-flip");
    let stdout = eval_val(&flip_dir, &["--tta", "flip"]);
    assert!(stdout.contains("tta:      flip"), "{stdout}");
    assert_eq!(json(&flip_dir.join("report.json"))["tta"], "flip");
    let flip_preds = std::fs::read_to_string(flip_dir.join("predictions.csv")).unwrap();
    assert_eq!(flip_preds.lines().count(), 17);
    let paths = |csv: &str| csv.lines().map(|l| l.split(',').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(paths(&flip_preds), paths(&preds));
    assert_ne!(flip_preds, preds, "the mirror images change the probabilities");

    // Two models as an ensemble: every image's probabilities are the mean of
    // the two models' own, and the report names both.
    let probabilities = |dir: &Path| -> Vec<(String, f64)> {
        let text = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
        let rows = text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
        rows.map(|r| (r[0].clone(), r[5].parse().unwrap())).collect()
    };
    let eval_models = |models: &[&Path], out: &Path| {
        let mut args = vec!["eval".to_string()];
        for m in models {
            args.extend(["--model".to_string(), m.to_str().unwrap().to_string()]);
        }
        args.extend(
            ["--manifest", val.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"].map(String::from),
        );
        maskforge(&args.iter().map(String::as_str).collect::<Vec<_>>()).0
    };
    let last = run.join("last.safetensors");
    let (dir4, dir6, both) = (ds.runs.join("eval-e4"), ds.runs.join("eval-e6"), ds.runs.join("eval-both"));
    eval_models(&[&epoch4], &dir4);
    eval_models(&[&last], &dir6);
    let stdout = eval_models(&[&epoch4, &last], &both);
    assert!(stdout.contains("models:") && stdout.contains("epoch4.safetensors, "), "{stdout}");
    let (p4, p6, mean) = (probabilities(&dir4), probabilities(&dir6), probabilities(&both));
    assert_eq!(mean.len(), 16);
    let mut apart = 0.0f64;
    for ((a, b), m) in p4.iter().zip(&p6).zip(&mean) {
        assert_eq!((&a.0, &b.0), (&m.0, &m.0));
        assert!((m.1 - (a.1 + b.1) / 2.0).abs() < 2e-6, "{m:?}: {a:?} and {b:?}");
        apart = apart.max((a.1 - b.1).abs());
    }
    assert!(apart > 1e-3, "the epoch-4 and epoch-6 models answer alike, so the mean shows nothing");
    let report = json(&both.join("report.json"));
    assert_eq!(report["ensemble"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["epoch"].is_null() && report["images"] == 16, "{report}");
    let _ = &ds.root;
}

/// Seed 004's frozen-backbone recipe with seed 000's BCE head and class
/// weights, on MobileNetV2: one short epoch, only the head trains.
#[test]
fn frozen_mobilenet_with_bce() {
    let ds = build_dataset();
    let run = ds.runs.join("mb");
    let (m, r) = (ds.manifests.to_str().unwrap(), run.to_str().unwrap());
    let (_, stderr) = maskforge(&[
        "train",
        "--manifests",
        m,
        "--out",
        r,
        "--arch",
        "mobilenet_v2",
        "--freeze-backbone",
        "--loss",
        "bce",
        "--class-weights",
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--norm",
        "imagenet",
        "--schedule",
        "step",
        "--vflip",
        "0.5",
        "--rotate",
        "135",
    ]);
    assert!(stderr.contains("1281 trainable"), "head only: 1280 weights + 1 bias\n{stderr}");
    let report = json(&run.join("report.json"));
    assert_eq!(report["classification"]["classes"].as_array().unwrap().len(), 2);
    assert_eq!(json(&run.join("config.json"))["class_weights"], serde_json::json!([1.0, 1.0]));

    // predict (needs dlib for the faces): one photo, one face, with a heat-map.
    #[cfg(feature = "dlib")]
    {
        let photo = samples().join("obama.jpg");
        let (best, last) = (run.join("best.safetensors"), run.join("last.safetensors"));
        let (best, last) = (best.to_str().unwrap(), last.to_str().unwrap());
        let predict_args = |out: &Path| -> Vec<String> {
            // This test is about one face: none of the blurred background's
            // patches (MTCNN takes one of 63 px for a face) can pass at 80 px.
            let args = ["predict", photo.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"];
            args.iter().chain(&["--min-face", "80"]).map(|a| a.to_string()).collect()
        };
        let predict = |out: &Path, extra: &[&str]| {
            let args = predict_args(out);
            let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
            all.extend(extra);
            maskforge(&all).0
        };
        let out = ds.runs.join("predict");
        let stdout = predict(&out, &["--model", best, "--explain"]);
        assert!(stdout.contains("1 face(s) classified"), "{stdout}");
        let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(
            lines[0].starts_with("path,face,left,top,right,bottom,detector_score,class,confidence,p_masked,p_unmasked")
        );
        let f: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(f[0], "obama.jpg");
        // The whole face around the tight box (1.3x its side, raised), about
        // where it lies around HOG's box of this face.
        let left: f32 = f[2].parse().unwrap();
        let (l, r) = (FACES[1].1, FACES[1].3);
        assert!((left - ((l + r) / 2.0 - 0.65 * (r - l))).abs() < 20.0, "{csv}");
        let annotated = image::open(out.join("annotated/obama.jpg")).unwrap();
        assert_eq!((annotated.width(), annotated.height()), (910, 1137));
        let heat = image::open(out.join("explain/obama_face0.png")).unwrap();
        assert_eq!(heat.width(), 2 * heat.height());
        // --tta flip: the same face, classified with its mirror image too.
        let flipped = ds.runs.join("predict-flip");
        let stdout = predict(&flipped, &["--model", best, "--tta", "flip"]);
        let csv = std::fs::read_to_string(flipped.join("predictions.csv")).unwrap();
        let g: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(g[..7], f[..7], "the same face box");
        // (This head-only model's p barely moves; the eval test above shows
        // the mirror images changing a trained model's probabilities.)
        assert!(stdout.contains("1 face(s) classified with their mirror images (--tta flip)"), "{stdout}");
        // Two models classify together; --explain refuses an ensemble.
        let two = ds.runs.join("predict-two");
        let two_models = ["--model", best, "--model", last];
        let stdout = predict(&two, &two_models);
        assert!(stdout.contains("1 face(s) classified by 2 models (their mean probabilities)"), "{stdout}");
        // Each run says how it was made.
        let settings = json(&two.join("predict_settings.json"));
        let paths: Vec<&str> =
            settings["models"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap()).collect();
        assert_eq!(paths, [best, last]);
        assert_eq!(settings["models"][0]["model"]["arch"], "mobilenet_v2");
        assert!(settings["detector"].as_str().unwrap().starts_with("centerface; auto"), "{settings}");
        assert_eq!((&settings["tta"], &settings["crop_size"]), (&"none".into(), &224.into()));
        assert_eq!(json(&flipped.join("predict_settings.json"))["tta"], "flip");
        let csv = std::fs::read_to_string(two.join("predictions.csv")).unwrap();
        assert_eq!(csv.lines().nth(1).unwrap().split(',').take(7).collect::<Vec<_>>(), f[..7]);
        let out = Command::new(bin()).args(predict_args(&two)).args(two_models).arg("--explain").output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--explain takes one --model"), "{stderr}");
        predict_scores_labelled_photos_in_every_format(&ds.runs, &run.join("best.safetensors"));
    }
}

/// `predict --labels`: the same two labelled photos (two real faces and a
/// labelled box where there is no face) in VOC, COCO, YOLO and CSV give the
/// same score, and a label that is no model class stops it before predicting.
#[cfg(feature = "dlib")]
fn predict_scores_labelled_photos_in_every_format(runs: &Path, model: &Path) {
    let photos = runs.join("labelled");
    std::fs::create_dir_all(&photos).unwrap();
    // (photo, size, boxes): the HOG boxes of the faces, and a 40 px box on the
    // plain background top-left of obama.jpg.
    type LabelledPhoto<'a> = (&'a str, (u32, u32), Vec<[f32; 4]>);
    let mut boxes: Vec<LabelledPhoto> = Vec::new();
    for (file, l, t, r, b) in [FACES[0], FACES[1]] {
        std::fs::copy(samples().join(file), photos.join(file)).unwrap();
        let (w, h) = image::image_dimensions(photos.join(file)).unwrap();
        boxes.push((file, (w, h), vec![[l, t, r, b]]));
    }
    boxes[1].2.push([10.0, 10.0, 50.0, 50.0]);
    let labels = runs.join("labels");
    std::fs::create_dir_all(labels.join("voc")).unwrap();
    std::fs::create_dir_all(labels.join("yolo")).unwrap();
    let mut csv = String::from("image,xmin,ymin,xmax,ymax,label\n");
    let mut coco_images = Vec::new();
    let mut coco_annotations = Vec::new();
    for (id, (file, (w, h), faces)) in boxes.iter().enumerate() {
        let mut objects = String::new();
        let mut yolo = String::new();
        for f in faces {
            csv.push_str(&format!("{file},{},{},{},{},no_mask\n", f[0], f[1], f[2], f[3]));
            objects.push_str(&format!(
                "<object><name>no_mask</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>",
                f[0], f[1], f[2], f[3]
            ));
            let (cx, cy) = ((f[0] + f[2]) / 2.0 / *w as f32, (f[1] + f[3]) / 2.0 / *h as f32);
            let (bw, bh) = ((f[2] - f[0]) / *w as f32, (f[3] - f[1]) / *h as f32);
            yolo.push_str(&format!("0 {cx} {cy} {bw} {bh}\n"));
            coco_annotations.push(serde_json::json!({
                "id": coco_annotations.len() + 1, "image_id": id + 1, "category_id": 7,
                "bbox": [f[0], f[1], f[2] - f[0], f[3] - f[1]],
            }));
        }
        let stem = file.trim_end_matches(".jpg");
        let xml = format!("<annotation><filename>{file}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>");
        std::fs::write(labels.join("voc").join(format!("{stem}.xml")), xml).unwrap();
        std::fs::write(labels.join("yolo").join(format!("{stem}.txt")), yolo).unwrap();
        coco_images.push(serde_json::json!({"id": id + 1, "file_name": file, "width": w, "height": h}));
    }
    std::fs::write(labels.join("yolo/classes.txt"), "no_mask\n").unwrap();
    std::fs::write(labels.join("boxes.csv"), csv).unwrap();
    let coco = serde_json::json!({"images": coco_images, "annotations": coco_annotations,
        "categories": [{"id": 7, "name": "no_mask"}]});
    std::fs::write(labels.join("coco.json"), coco.to_string()).unwrap();

    let (p, m) = (photos.to_str().unwrap(), model.to_str().unwrap());
    let mut scores = Vec::new();
    for source in ["boxes.csv", "voc", "coco.json", "yolo"] {
        let out = runs.join(format!("scenes_{}", source.replace('.', "_")));
        let l = labels.join(source);
        let args = [
            "predict",
            p,
            "--model",
            m,
            "--out",
            out.to_str().unwrap(),
            "--labels",
            l.to_str().unwrap(),
            "--device",
            "cpu",
            // MTCNN, not predict's default CenterFace: its one false box (a
            // patch of obama.jpg's blurred background) is what tests the
            // count of boxes matching no annotated face.
            "--detector",
            "mtcnn",
        ];
        let (stdout, _) = maskforge(&[&args[..], &["--class-map", "no_mask=unmasked"]].concat());
        assert!(stdout.contains("faces >= 32 px found: 66.7% (2/3)"), "{source}: {stdout}");
        let report = json(&out.join("scenes.json"));
        assert_eq!(report["score"]["headline"]["annotated"], 3, "{source}");
        assert_eq!(report["score"]["headline"]["found"], 2, "{source}");
        // MTCNN's one box off the faces: a patch of blurred background in obama.jpg.
        assert_eq!(report["score"]["detections"], 3, "{source}");
        assert_eq!(report["score"]["unmatched"], 1, "{source}");
        // Accuracy is what predictions.csv says of the two faces (each photo's
        // largest, face 0; the background patch is obama.jpg's face 1).
        let preds = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
        let is_right = |l: &&str| {
            let f: Vec<&str> = l.split(',').collect();
            f[1] == "0" && f[7] == "unmasked"
        };
        let right = preds.lines().skip(1).filter(is_right).count();
        assert_eq!(report["score"]["headline"]["correct"], right, "{source}: {preds}");
        scores.push(report["score"].clone());
    }
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:?}");
    // No --class-map: `no_mask` is no class of the model: one line, nothing predicted.
    let out = runs.join("scenes_unmapped");
    let l = labels.join("boxes.csv");
    let o = std::process::Command::new(bin())
        .args(["predict", p, "--model", m, "--out", out.to_str().unwrap(), "--labels", l.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("labels no_mask are not classes of the model (masked, unmasked)"),
        "{err}"
    );
    assert!(!out.join("predictions.csv").exists());
}
