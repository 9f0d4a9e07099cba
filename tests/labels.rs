//! `maskforge mask --labels coco,yolo` end to end on the sample photos: the
//! COCO file loads in pycocotools (the project venv's, installed by
//! `cargo xtask setup`) and scores AP 1 against itself, and both formats box
//! exactly the faces of `annotations.csv`, with their classes, including the
//! faces of the unmasked originals copied whole.

use maskforge_contracts::AnnotationRow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{maskforge, samples, text};

/// pycocotools: load the file, check what the COCO API sees (ids, counts,
/// image sizes as PIL shows them, areas), evaluate the boxes against
/// themselves, and write `{file_name: [[category, x, y, w, h], ...]}`.
const CHECK_COCO: &str = r#"
import json, sys
from PIL import Image, ImageOps
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

out, faces, result = sys.argv[1], int(sys.argv[2]), sys.argv[3]
coco = COCO(out + "/labels.coco.json")
assert len(coco.getAnnIds()) == faces, (len(coco.getAnnIds()), faces)
assert len(coco.getImgIds()) == len(coco.dataset["images"])
boxes = {}
for img in coco.loadImgs(coco.getImgIds()):
    with Image.open(out + "/" + img["file_name"]) as im:
        size = ImageOps.exif_transpose(im).size
    assert size == (img["width"], img["height"]), (img, size)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    assert anns, img
    for a in anns:
        x, y, w, h = a["bbox"]
        assert a["iscrowd"] == 0 and abs(a["area"] - w * h) < 0.01, a
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= size[0] and y + h <= size[1], (a, size)
        assert len(a["keypoints"]) == 3 * 68, a
    boxes[img["file_name"]] = [[coco.loadCats(a["category_id"])[0]["name"]] + a["bbox"] for a in anns]
dets = coco.loadRes([dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
                     for a in coco.dataset["annotations"]])
ev = COCOeval(coco, dets, "bbox")
ev.evaluate(); ev.accumulate(); ev.summarize()
assert abs(ev.stats[0] - 1.0) < 1e-9, ev.stats
json.dump(boxes, open(result, "w"))
"#;

fn venv_python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let ok = Command::new(&py).args(["-c", "import pycocotools, PIL"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "{} with pycocotools missing: run `cargo xtask setup`", py.display());
    py
}

/// `(class, [left, top, right, bottom])` per face.
type Boxes = Vec<(String, [f64; 4])>;
/// What the pycocotools check writes: `[category, x, y, w, h]` per face, by file name.
type CocoBoxes = BTreeMap<String, Vec<(String, f64, f64, f64, f64)>>;

/// What the label files must say, from annotations.csv alone: each output's
/// faces (an unmasked original copied whole has those of its source's
/// masked outputs), boxes clipped to the image.
fn expected(out: &Path, rows: &[AnnotationRow]) -> BTreeMap<String, Boxes> {
    let mut faces_of_source: BTreeMap<&str, BTreeMap<usize, [f64; 4]>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.is_unmasked()) {
        let b = r.geometry.as_ref().expect("masked rows have geometry").bbox().unwrap().map(f64::from);
        faces_of_source.entry(&r.source).or_default().insert(r.face.unwrap(), b);
    }
    let mut want: BTreeMap<String, Boxes> = BTreeMap::new();
    for r in rows {
        let (w, h) = image::image_dimensions(out.join(&r.output)).unwrap();
        let clip = |[l, t, r, b]: [f64; 4]| {
            let (w, h) = (f64::from(w), f64::from(h));
            [l.clamp(0.0, w), t.clamp(0.0, h), r.clamp(0.0, w), b.clamp(0.0, h)]
        };
        let entry = want.entry(r.output.clone()).or_default();
        match &r.geometry {
            Some(g) => entry.push((r.class.clone(), clip(g.bbox().unwrap().map(f64::from)))),
            None => entry.extend(faces_of_source[r.source.as_str()].values().map(|&b| (r.class.clone(), clip(b)))),
        }
    }
    want
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn coco_and_yolo_labels_box_every_face_of_annotations_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["--variants", "correct,chin", "--class-map", "chin=incorrect", "--unmasked", "copy"];
    let o = maskforge()
        .arg("mask")
        .arg(samples())
        .arg("--out")
        .arg(&out)
        .args(args)
        .args(["--labels", "coco,yolo"])
        .output()
        .unwrap();
    assert!(o.status.success(), "mask failed:\n{}\n{}", text(&o.stdout), text(&o.stderr));
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    let rows = maskforge_contracts::read_annotations(&out.join("annotations.csv")).unwrap();
    let want = expected(&out, &rows);
    assert!(want.keys().any(|o| o.starts_with("unmasked/")), "{want:?}");
    let faces: usize = want.values().map(Vec::len).sum();
    assert!(faces >= 3 * 5, "three outputs per photo with a face: {want:?}");

    // COCO, through pycocotools.
    let result = dir.path().join("coco.json");
    let o = Command::new(venv_python())
        .args(["-c", CHECK_COCO])
        .arg(&out)
        .arg(faces.to_string())
        .arg(&result)
        .output()
        .unwrap();
    assert!(o.status.success(), "pycocotools check failed:\n{}\n{}", text(&o.stdout), text(&o.stderr));
    let coco: CocoBoxes = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(coco.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (output, boxes) in &want {
        let got = &coco[output];
        assert_eq!(got.len(), boxes.len(), "{output}");
        for ((class, [l, t, r, b]), (gc, x, y, w, h)) in boxes.iter().zip(got) {
            assert_eq!(class, gc, "{output}");
            assert!(close(&[*x, *y, x + w, y + h], &[*l, *t, *r, *b], 0.011), "{output}: {got:?} vs {boxes:?}");
        }
    }

    // YOLO: the names file, then a .txt beside each image.
    let yaml = std::fs::read_to_string(out.join("labels.yolo.yaml")).unwrap();
    let names: Vec<String> = yaml
        .split_once("names:\n")
        .expect("names in labels.yolo.yaml")
        .1
        .lines()
        .enumerate()
        .map(|(k, l)| {
            let (id, name) = l.trim().split_once(": ").unwrap();
            assert_eq!(id, k.to_string(), "{yaml}");
            name.trim_matches('"').to_string()
        })
        .collect();
    let classes: BTreeSet<&str> = rows.iter().map(|r| r.class.as_str()).collect();
    assert_eq!(names, classes.into_iter().collect::<Vec<_>>(), "sorted class folders");
    for (output, boxes) in &want {
        let (w, h) = image::image_dimensions(out.join(output)).unwrap();
        let (w, h) = (f64::from(w), f64::from(h));
        let label = out.join(Path::new(output).with_extension("txt"));
        let text = std::fs::read_to_string(&label).unwrap_or_else(|e| panic!("{}: {e}", label.display()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), boxes.len(), "{output}");
        for (line, (class, [l, t, r, b])) in lines.iter().zip(boxes) {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert_eq!(names[fields[0].parse::<usize>().unwrap()], *class, "{output}: {line}");
            let v: Vec<f64> = fields[1..].iter().map(|f| f.parse().unwrap()).collect();
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{line}");
            let expect = [(l + r) / 2.0 / w, (t + b) / 2.0 / h, (r - l) / w, (b - t) / h];
            assert!(close(&v, &expect, 2e-5), "{output}: {line} vs {expect:?}");
        }
    }
}
