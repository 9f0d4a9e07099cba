//! Boxes for detector training: `mask --labels coco,yolo` turns the rows of
//! `annotations.csv` into a COCO file and YOLO text files, one box per face
//! with the class of its output.
//!
//! * **Classes**: class folder names, sorted. YOLO class `k` is the k-th,
//!   from 0; its COCO `category_id` is `k + 1` (COCO keeps 0 for
//!   "background"). The writers list the classes the run can make, not only
//!   those with outputs, so a class keeps its id across `--limit` runs and
//!   shards.
//! * **Faces**: a row with geometry gives its output one box, the face box
//!   clipped to the image, and its 68 landmarks (COCO keypoints). An
//!   unmasked original placed whole (`--unmasked copy|hardlink|symlink`
//!   without `--crop-size`) has one row without geometry; its faces are
//!   those of a masked output of the same source, whose coordinates are the
//!   original's (upright, whole image). An output whose boxes cannot be
//!   known is left out of both formats and named in [`LabelSet::left_out`].
//! * **COCO** ([`coco_bytes`], `OUT/labels.coco.json`): `images` (`id`,
//!   `file_name` relative to OUT with `/`, `width`, `height`), `annotations`
//!   (`id`, `image_id`, `category_id`, `bbox` `[x, y, w, h]` in pixels,
//!   `area` of the box, `iscrowd` 0, `keypoints` `[x, y, v] × 68` with v = 2
//!   inside the image and `0, 0, 0` outside, `num_keypoints`), `categories`
//!   (`id`, `name`, `supercategory` `face`, keypoint names `0`..`67` in dlib's
//!   iBUG 300-W order). Ids count from 1 in output path order, then face.
//! * **YOLO** ([`yolo_files`], [`yolo_yaml`]): beside each image a `.txt` of
//!   the same name (`correct/p/a.jpg` → `correct/p/a.txt`), one
//!   `class cx cy w h` line per face, normalised to 0..1: where Ultralytics
//!   and Darknet look for an image's labels when its path has no `images`
//!   folder. `OUT/labels.yolo.yaml` is an Ultralytics dataset file (the
//!   names, and the class folders as `train` and `val`).
//!
//! With `--shard I/N` the files are `labels.coco.shard-I-of-N.json` and
//! `labels.yolo.shard-I-of-N.yaml`; `merge` writes the merged ones.

use crate::{AnnotationRow, ContractError, FaceColumns, RelPath};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Base name of the COCO file (`labels.coco.json`).
pub const COCO_LABELS: &str = "labels.coco";
/// Base name of the YOLO dataset file (`labels.yolo.yaml`).
pub const YOLO_LABELS: &str = "labels.yolo";
/// Keypoints per face.
const LANDMARKS: usize = 68;

fn label_file_name(base: &str, ext: &str, shard: Option<(usize, usize)>) -> String {
    match shard {
        Some((i, n)) => format!("{base}.shard-{i}-of-{n}.{ext}"),
        None => format!("{base}.{ext}"),
    }
}

/// `labels.coco.json`, or `labels.coco.shard-I-of-N.json` for shard `(I, N)`.
pub fn coco_file_name(shard: Option<(usize, usize)>) -> String {
    label_file_name(COCO_LABELS, "json", shard)
}

/// `labels.yolo.yaml`, or `labels.yolo.shard-I-of-N.yaml` for shard `(I, N)`.
pub fn yolo_file_name(shard: Option<(usize, usize)>) -> String {
    label_file_name(YOLO_LABELS, "yaml", shard)
}

/// `None` for `BASE.EXT`, `Some(shard)` for `BASE.shard-I-of-N.EXT`; not a
/// label file of that base: `Err(())`.
fn label_file_shard(name: &str, base: &str, ext: &str) -> Result<Option<(usize, usize)>, ()> {
    let rest = name.strip_prefix(base).and_then(|r| r.strip_suffix(ext)).and_then(|r| r.strip_suffix('.'));
    match rest {
        Some("") => Ok(None),
        Some(r) => {
            let (i, n) = r.strip_prefix(".shard-").and_then(|r| r.split_once("-of-")).ok_or(())?;
            Ok(Some((i.parse().map_err(|_| ())?, n.parse().map_err(|_| ())?)))
        }
        None => Err(()),
    }
}

/// The shard of a COCO label file name: `Some(None)` for the merged file,
/// `Some(Some((I, N)))` for a shard's, `None` for any other name.
pub fn coco_file_shard(name: &str) -> Option<Option<(usize, usize)>> {
    label_file_shard(name, COCO_LABELS, "json").ok()
}

/// As [`coco_file_shard`], for the YOLO dataset file.
pub fn yolo_file_shard(name: &str) -> Option<Option<(usize, usize)>> {
    label_file_shard(name, YOLO_LABELS, "yaml").ok()
}

/// One face's box in one output.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceBox {
    /// The face index of the row the box comes from.
    pub face: usize,
    /// Index into [`LabelSet::classes`] (the YOLO class).
    pub class_id: usize,
    /// `[left, top, right, bottom]` in pixels, clipped to the image; right > left, bottom > top.
    pub bbox: [f64; 4],
    /// The 68 landmarks as written (not clipped); `None` when a row lacks them.
    pub landmarks: Option<Vec<(f64, f64)>>,
}

/// An output image and its faces.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledImage {
    /// Relative to OUT, with `/`.
    pub output: String,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// At least one, by face index.
    pub faces: Vec<FaceBox>,
}

/// What the label files say: the classes and every labelled image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSet {
    /// Sorted class names: YOLO class `k` = `classes[k]`, COCO category `k + 1`.
    pub classes: Vec<String>,
    /// By output path.
    pub images: Vec<LabelledImage>,
    /// `OUTPUT: reason` for each output (or face) left out.
    pub left_out: Vec<String>,
}

/// A coordinate as written in `annotations.csv` (0.01 px), as an `f64` that prints the same.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl LabelSet {
    /// The labels of `rows`: `classes` are the classes the run can make (the
    /// rows' own are added); `size_of` gives the upright width and height of
    /// an output image (relative to OUT), or why not; it is asked once per
    /// output. Outputs without a size, a path that could leave OUT, or face
    /// boxes are left out, and so are faces whose box lies outside their
    /// image; each is named in `left_out`.
    pub fn new(
        rows: &[AnnotationRow],
        classes: impl IntoIterator<Item = String>,
        mut size_of: impl FnMut(&str) -> Result<(u32, u32), String>,
    ) -> LabelSet {
        let mut names: BTreeSet<String> = classes.into_iter().collect();
        names.extend(rows.iter().map(|r| r.class.clone()));
        let classes: Vec<String> = names.into_iter().collect();
        let class_id = |c: &str| classes.binary_search_by(|x| x.as_str().cmp(c)).unwrap_or(0);

        let mut by_output: BTreeMap<&str, Vec<&AnnotationRow>> = BTreeMap::new();
        for r in rows {
            by_output.entry(&r.output).or_default().push(r);
        }
        // Per source, the first masked output (in path order) with every face's geometry:
        // where an unmasked original copied whole takes its faces from.
        let mut masked_of_source: HashMap<&str, &str> = HashMap::new();
        for (output, rs) in &by_output {
            if rs.iter().all(|r| !r.is_unmasked() && r.face.is_some() && r.geometry.is_some()) {
                for r in rs {
                    masked_of_source.entry(&r.source).or_insert(output);
                }
            }
        }

        let sizes: HashMap<&str, Result<(u32, u32), String>> = by_output
            .keys()
            .filter(|o| RelPath::new(o).is_ok())
            .map(|&o| (o, size_of(o).and_then(|(w, h)| if w > 0 && h > 0 { Ok((w, h)) } else { Err("empty".into()) })))
            .collect();
        let mut set = LabelSet { classes: Vec::new(), images: Vec::new(), left_out: Vec::new() };
        for (output, rs) in &by_output {
            let (width, height) = match sizes.get(output) {
                None => {
                    set.left_out.push(format!("{output}: not a path inside the output folder"));
                    continue;
                }
                Some(Err(e)) => {
                    set.left_out.push(format!("{output}: image size unknown ({e})"));
                    continue;
                }
                Some(Ok(size)) => *size,
            };
            // (face index, class, geometry)
            let mut faces: Vec<(usize, &str, &FaceColumns)> =
                rs.iter().filter_map(|r| Some((r.face.unwrap_or(0), r.class.as_str(), r.geometry.as_ref()?))).collect();
            if faces.is_empty() {
                let class = rs[0].class.as_str();
                let sibling = masked_of_source.get(rs[0].source.as_str()).copied();
                match sibling.map(|s| (s, sizes.get(s).and_then(|r| r.as_ref().ok()))) {
                    Some((s, Some(&size))) if size == (width, height) => {
                        faces =
                            by_output[s].iter().filter_map(|r| Some((r.face?, class, r.geometry.as_ref()?))).collect();
                    }
                    Some((s, Some(_))) => {
                        set.left_out.push(format!("{output}: not the size of {s}, whose face boxes it would take"));
                        continue;
                    }
                    Some((s, None)) => {
                        set.left_out
                            .push(format!("{output}: no face boxes (the size of {s}, which has them, is unknown)"));
                        continue;
                    }
                    None => {
                        let source = &rs[0].source;
                        set.left_out.push(format!("{output}: no face boxes (no masked output of {source})"));
                        continue;
                    }
                }
            }
            faces.sort_by_key(|f| f.0);
            faces.dedup_by_key(|f| f.0);
            let (w, h) = (f64::from(width), f64::from(height));
            let mut boxes = Vec::with_capacity(faces.len());
            for (face, class, g) in faces {
                let Some([l, t, r, b]) = g.bbox() else {
                    set.left_out.push(format!("{output}: face {face}: box is not a number"));
                    continue;
                };
                let clip = |v: f32, max: f64| round2(f64::from(v)).clamp(0.0, max);
                let bbox = [clip(l, w), clip(t, h), clip(r, w), clip(b, h)];
                if !(bbox[2] > bbox[0] && bbox[3] > bbox[1]) {
                    set.left_out.push(format!("{output}: face {face}: box lies outside the image"));
                    continue;
                }
                let landmarks = (0..LANDMARKS)
                    .map(|i| g.landmark(i).map(|(x, y)| (round2(f64::from(x)), round2(f64::from(y)))))
                    .collect();
                boxes.push(FaceBox { face, class_id: class_id(class), bbox, landmarks });
            }
            if !boxes.is_empty() {
                set.images.push(LabelledImage { output: output.to_string(), width, height, faces: boxes });
            }
        }
        set.classes = classes;
        set
    }
}

#[derive(Serialize)]
struct CocoImage<'a> {
    id: usize,
    file_name: &'a str,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct CocoAnnotation {
    id: usize,
    image_id: usize,
    category_id: usize,
    bbox: [f64; 4],
    area: f64,
    iscrowd: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    keypoints: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_keypoints: Option<usize>,
}

#[derive(Serialize)]
struct CocoCategory<'a> {
    id: usize,
    name: &'a str,
    supercategory: &'static str,
    keypoints: &'a [String],
    skeleton: [[u8; 2]; 0],
}

#[derive(Serialize)]
struct Coco<'a> {
    info: Value,
    licenses: [Value; 0],
    images: Vec<CocoImage<'a>>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory<'a>>,
}

/// COCO keypoints of 68 landmarks: `[x, y, 2]` inside the image, `[0, 0, 0]`
/// outside; and how many are inside.
fn keypoints(points: &[(f64, f64)], w: f64, h: f64) -> (Vec<Value>, usize) {
    let mut kp = Vec::with_capacity(points.len() * 3);
    let mut visible = 0;
    for &(x, y) in points {
        if (0.0..w).contains(&x) && (0.0..h).contains(&y) {
            kp.extend([json!(x), json!(y), json!(2)]);
            visible += 1;
        } else {
            kp.extend([json!(0), json!(0), json!(0)]);
        }
    }
    (kp, visible)
}

/// The bytes of `labels.coco.json` (compact JSON and a newline); see the module docs.
pub fn coco_bytes(set: &LabelSet) -> Result<Vec<u8>, serde_json::Error> {
    let names: Vec<String> = (0..LANDMARKS).map(|i| i.to_string()).collect();
    let mut images = Vec::with_capacity(set.images.len());
    let mut annotations = Vec::new();
    for (k, img) in set.images.iter().enumerate() {
        let image_id = k + 1;
        images.push(CocoImage { id: image_id, file_name: &img.output, width: img.width, height: img.height });
        for f in &img.faces {
            let [l, t, r, b] = f.bbox;
            let (bw, bh) = (round2(r - l), round2(b - t));
            let kp = f.landmarks.as_ref().map(|p| keypoints(p, f64::from(img.width), f64::from(img.height)));
            annotations.push(CocoAnnotation {
                id: annotations.len() + 1,
                image_id,
                category_id: f.class_id + 1,
                bbox: [l, t, bw, bh],
                area: (bw * bh * 10_000.0).round() / 10_000.0,
                iscrowd: 0,
                num_keypoints: kp.as_ref().map(|k| k.1),
                keypoints: kp.map(|k| k.0),
            });
        }
    }
    let categories = set
        .classes
        .iter()
        .enumerate()
        .map(|(k, name)| CocoCategory { id: k + 1, name, supercategory: "face", keypoints: &names, skeleton: [] })
        .collect();
    let info = json!({
        "description": "maskforge mask --labels coco: one box per face, category = class folder",
        "version": env!("CARGO_PKG_VERSION"),
    });
    let coco = Coco { info, licenses: [], images, annotations, categories };
    let mut bytes = serde_json::to_vec(&coco)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Where YOLO tools look for the labels of `output`: the same path with
/// `.txt` for its extension (`correct/p/a.jpg` → `correct/p/a.txt`).
pub fn yolo_label_path(output: &str) -> String {
    let (dir, file) = match output.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, output),
    };
    let stem = match file.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => file,
    };
    match dir {
        Some(d) => format!("{d}/{stem}.txt"),
        None => format!("{stem}.txt"),
    }
}

/// The text of one image's YOLO file: `class cx cy w h` per face, 6 decimals.
pub fn yolo_text(img: &LabelledImage) -> String {
    let (w, h) = (f64::from(img.width), f64::from(img.height));
    let mut text = String::new();
    for f in &img.faces {
        let [l, t, r, b] = f.bbox;
        let (cx, cy, bw, bh) = ((l + r) / 2.0 / w, (t + b) / 2.0 / h, (r - l) / w, (b - t) / h);
        text.push_str(&format!("{} {cx:.6} {cy:.6} {bw:.6} {bh:.6}\n", f.class_id));
    }
    text
}

/// The YOLO files of a label set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct YoloFiles {
    /// `(label path relative to OUT, text)`, by path.
    pub files: Vec<(String, String)>,
    /// Label paths two or more images share (`a.jpg` and `a.png` in one
    /// folder): not written, as either image would get the other's boxes.
    pub shared: Vec<(String, Vec<String>)>,
}

/// Every image's `.txt` ([`yolo_label_path`], [`yolo_text`]).
pub fn yolo_files(set: &LabelSet) -> YoloFiles {
    let mut by_path: BTreeMap<String, Vec<&LabelledImage>> = BTreeMap::new();
    for img in &set.images {
        by_path.entry(yolo_label_path(&img.output)).or_default().push(img);
    }
    let mut out = YoloFiles::default();
    for (path, imgs) in by_path {
        match imgs.as_slice() {
            [img] => out.files.push((path, yolo_text(img))),
            _ => out.shared.push((path, imgs.iter().map(|i| i.output.clone()).collect())),
        }
    }
    out
}

/// A YAML double-quoted string (JSON's escapes are YAML's).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// The text of `labels.yolo.yaml`: an Ultralytics dataset file whose
/// `train` and `val` are the class folders with labelled images (paths
/// relative to the file's folder) and whose `names` are the classes.
pub fn yolo_yaml(set: &LabelSet) -> String {
    let folders: BTreeSet<&str> =
        set.images.iter().map(|i| i.output.split_once('/').map_or(i.output.as_str(), |(d, _)| d)).collect();
    let list = |key: &str| {
        let mut s = format!("{key}:\n");
        for f in &folders {
            s.push_str(&format!("  - {}\n", yaml_str(f)));
        }
        s
    };
    let mut y = String::from(
        "# Written by `maskforge mask --labels yolo`: an Ultralytics YOLO dataset file.\n\
         # Each image's boxes are in the .txt beside it: `class cx cy w h` per face, normalised to 0..1.\n\
         # train and val both list every class folder: point val (and train) at your own split\n\
         # (e.g. text files listing image paths) before reading anything into validation scores.\n",
    );
    y.push_str(&list("train"));
    y.push_str(&list("val"));
    y.push_str(&format!("nc: {}\nnames:\n", set.classes.len()));
    for (k, c) in set.classes.iter().enumerate() {
        y.push_str(&format!("  {k}: {}\n", yaml_str(c)));
    }
    y
}

/// Writes `bytes` to `path` atomically unless the file already holds them.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), ContractError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(ContractError::io(parent))?;
    }
    maskforge_imageio::write_atomic(path, bytes).map_err(ContractError::io(path))
}

/// Writes the COCO file at `path` (atomically; see [`coco_bytes`]).
pub fn write_coco(path: &Path, set: &LabelSet) -> Result<(), ContractError> {
    let bytes = coco_bytes(set).map_err(|e| ContractError::format(path, e.to_string()))?;
    write_if_changed(path, &bytes)
}

/// Writes every image's `.txt` under `out` (those already right are left
/// alone; those of shared paths removed) and the dataset file at `yaml`.
/// Returns one line per shared path.
pub fn write_yolo(out: &Path, yaml: &Path, set: &LabelSet) -> Result<Vec<String>, ContractError> {
    let files = yolo_files(set);
    for (rel, text) in &files.files {
        // The paths were checked by LabelSet::new; a label path only changes the extension.
        let Ok(rel) = RelPath::new(rel) else { continue };
        let path = rel.confined(out)?;
        write_if_changed(&path, text.as_bytes())?;
    }
    let mut problems = Vec::new();
    for (rel, images) in &files.shared {
        if let Some(p) = RelPath::new(rel).ok().and_then(|p| p.confined(out).ok()) {
            let _ = std::fs::remove_file(p);
        }
        problems.push(format!("{rel}: no YOLO labels for {}: they would share this file", images.join(", ")));
    }
    write_if_changed(yaml, yolo_yaml(set).as_bytes())?;
    problems.extend(images_folder_warning(out, set));
    Ok(problems)
}

/// Ultralytics finds an image's labels by replacing its last `images` path
/// folder with `labels`: for an output under a folder named `images` it looks
/// in `.../labels/` and never sees the `.txt` beside the image (OUT's own
/// path counts too). One line naming the first such output and the count.
fn images_folder_warning(out: &Path, set: &LabelSet) -> Option<String> {
    let out_under_images = out.iter().any(|part| part == "images");
    let under_images = |o: &str| out_under_images || o.split('/').rev().skip(1).any(|part| part == "images");
    let hits: Vec<&str> = set.images.iter().map(|i| i.output.as_str()).filter(|o| under_images(o)).collect();
    let first = hits.first()?;
    Some(format!(
        "{first}: Ultralytics reads the labels of images under a folder named `images` from a `labels` folder in \
         its place, not from the .txt beside them ({} such outputs): rename that input folder",
        hits.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UNMASKED_VARIANT;

    fn points(dx: f32) -> [(f32, f32); 68] {
        std::array::from_fn(|i| (dx + 10.0 + i as f32, 20.0 + (i % 7) as f32))
    }

    fn row(source: &str, output: &str, face: Option<usize>, class: &str, bbox: Option<[f32; 4]>) -> AnnotationRow {
        let unmasked = class == "unmasked";
        AnnotationRow {
            source: source.into(),
            output: output.into(),
            face,
            variant: if unmasked { UNMASKED_VARIANT.into() } else { "correct".into() },
            class: class.into(),
            template: String::new(),
            colour: String::new(),
            seed: 0,
            geometry: bbox.map(|b| FaceColumns::new(b, 0.9, &points(b[0]))),
            mask_polygon: String::new(),
        }
    }

    /// A size lookup of these outputs (others: "no such file").
    fn sizes(list: &[(&str, u32, u32)]) -> impl FnMut(&str) -> Result<(u32, u32), String> {
        let map: HashMap<String, (u32, u32)> = list.iter().map(|&(o, w, h)| (o.to_string(), (w, h))).collect();
        move |o| map.get(o).copied().ok_or_else(|| "no such file".to_string())
    }

    /// Two faces masked, the original copied whole, and one crop-mode-like
    /// unmasked output with its own box.
    fn rows() -> Vec<AnnotationRow> {
        vec![
            row("p/a.jpg", "unmasked/p/a.jpg", None, "unmasked", None),
            row("p/a.jpg", "correct/p/a.jpg", Some(1), "correct", Some([150.0, 10.0, 190.0, 60.0])),
            row("p/a.jpg", "correct/p/a.jpg", Some(0), "correct", Some([-5.0, 20.5, 60.25, 110.0])),
            row("b.png", "unmasked/b.png", Some(0), "unmasked", Some([10.0, 10.0, 30.0, 30.0])),
        ]
    }

    #[test]
    fn classes_sort_and_originals_take_the_masked_faces() {
        let s = sizes(&[("unmasked/p/a.jpg", 200, 100), ("correct/p/a.jpg", 200, 100), ("unmasked/b.png", 40, 40)]);
        let set = LabelSet::new(&rows(), ["chin".to_string(), "correct".to_string()], s);
        assert_eq!(set.classes, ["chin", "correct", "unmasked"]);
        assert!(set.left_out.is_empty(), "{:?}", set.left_out);
        let outputs: Vec<&str> = set.images.iter().map(|i| i.output.as_str()).collect();
        assert_eq!(outputs, ["correct/p/a.jpg", "unmasked/b.png", "unmasked/p/a.jpg"]);
        let masked = &set.images[0];
        assert_eq!(masked.faces.len(), 2);
        assert_eq!((masked.faces[0].face, masked.faces[0].class_id), (0, 1));
        // Clipped to the image: left -5 → 0, bottom 110 → 100.
        assert_eq!(masked.faces[0].bbox, [0.0, 20.5, 60.25, 100.0]);
        let original = &set.images[2];
        assert_eq!(original.faces.iter().map(|f| f.class_id).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(original.faces[1].bbox, masked.faces[1].bbox);
        assert_eq!(original.faces[1].landmarks, masked.faces[1].landmarks);
    }

    #[test]
    fn outputs_without_size_or_boxes_are_left_out_and_named() {
        // No size for the masked output, so the original cannot borrow; a box outside its image.
        let mut rs = rows();
        rs.push(row("c.jpg", "unmasked/c.jpg", None, "unmasked", None));
        rs.push(row("d.jpg", "correct/d.jpg", Some(0), "correct", Some([500.0, 0.0, 600.0, 50.0])));
        rs.push(row("e.jpg", "../e.jpg", Some(0), "correct", Some([0.0, 0.0, 5.0, 5.0])));
        let s = sizes(&[("unmasked/p/a.jpg", 200, 100), ("unmasked/c.jpg", 9, 9), ("correct/d.jpg", 100, 100)]);
        let set = LabelSet::new(&rs, [], s);
        assert_eq!(
            set.left_out,
            [
                "../e.jpg: not a path inside the output folder",
                "correct/d.jpg: face 0: box lies outside the image",
                "correct/p/a.jpg: image size unknown (no such file)",
                "unmasked/b.png: image size unknown (no such file)",
                "unmasked/c.jpg: no face boxes (no masked output of c.jpg)",
                "unmasked/p/a.jpg: no face boxes (the size of correct/p/a.jpg, which has them, is unknown)",
            ]
        );
        assert!(set.images.is_empty());
        let s = sizes(&[("unmasked/p/a.jpg", 100, 200), ("correct/p/a.jpg", 200, 100)]);
        let set = LabelSet::new(&rows()[..3], [], s);
        assert_eq!(set.left_out, ["unmasked/p/a.jpg: not the size of correct/p/a.jpg, whose face boxes it would take"]);
        assert_eq!(set.images.len(), 1);
    }

    #[test]
    fn coco_lists_images_boxes_and_categories() {
        let s = sizes(&[("unmasked/p/a.jpg", 200, 100), ("correct/p/a.jpg", 200, 100), ("unmasked/b.png", 40, 40)]);
        let set = LabelSet::new(&rows(), [], s);
        let bytes = coco_bytes(&set).unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["images"][0], json!({"id": 1, "file_name": "correct/p/a.jpg", "width": 200, "height": 100}));
        assert_eq!(v["images"].as_array().unwrap().len(), 3);
        let anns = v["annotations"].as_array().unwrap();
        assert_eq!(anns.len(), 5);
        let a = &anns[0];
        assert_eq!((a["id"].clone(), a["image_id"].clone(), a["category_id"].clone()), (json!(1), json!(1), json!(1)));
        assert_eq!(a["bbox"], json!([0.0, 20.5, 60.25, 79.5]));
        assert_eq!(a["area"], json!(4789.875));
        assert_eq!(a["iscrowd"], json!(0));
        let kp = a["keypoints"].as_array().unwrap();
        assert_eq!(kp.len(), 3 * 68);
        // Point 0 of face 0 is (-5 + 10, 20): inside.
        assert_eq!(&kp[..3], [json!(5.0), json!(20.0), json!(2)]);
        assert_eq!(anns[4]["image_id"], json!(3));
        assert_eq!(anns[4]["category_id"], json!(2));
        let cats: Vec<(u64, &str)> = v["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_u64().unwrap(), c["name"].as_str().unwrap()))
            .collect();
        assert_eq!(cats, [(1, "correct"), (2, "unmasked")]);
        assert_eq!(v["categories"][0]["keypoints"].as_array().unwrap().len(), 68);
        assert_eq!(coco_bytes(&set).unwrap(), bytes, "deterministic");
    }

    #[test]
    fn yolo_lines_are_normalised_and_shared_paths_reported() {
        let mut s = sizes(&[("correct/p/a.jpg", 200, 100), ("correct/p/a.png", 200, 100)]);
        let mut rs = vec![row("p/a.jpg", "correct/p/a.jpg", Some(0), "correct", Some([-5.0, 20.5, 60.25, 110.0]))];
        let set = LabelSet::new(&rs, ["unmasked".to_string()], &mut s);
        let files = yolo_files(&set);
        assert_eq!(files.files, [("correct/p/a.txt".to_string(), "0 0.150625 0.602500 0.301250 0.795000\n".into())]);
        rs.push(row("p/a.png", "correct/p/a.png", Some(0), "correct", Some([0.0, 0.0, 10.0, 10.0])));
        let files = yolo_files(&LabelSet::new(&rs, [], s));
        assert!(files.files.is_empty());
        assert_eq!(
            files.shared,
            [("correct/p/a.txt".into(), vec!["correct/p/a.jpg".into(), "correct/p/a.png".into()])]
        );
        assert_eq!(yolo_label_path("x"), "x.txt");
        assert_eq!(yolo_label_path("c/.hidden"), "c/.hidden.txt");
        assert_eq!(yolo_label_path("c/d.e/f.jpeg"), "c/d.e/f.txt");
        let yaml = yolo_yaml(&set);
        assert!(
            yaml.ends_with(
                "train:\n  - \"correct\"\nval:\n  - \"correct\"\nnc: 2\nnames:\n  0: \"correct\"\n  1: \"unmasked\"\n"
            ),
            "{yaml}"
        );
    }

    #[test]
    fn outputs_under_an_images_folder_are_reported_for_ultralytics() {
        let dir = tempfile::tempdir().unwrap();
        let s = sizes(&[("correct/images/a.jpg", 200, 100), ("correct/b.jpg", 200, 100)]);
        let rs = vec![
            row("images/a.jpg", "correct/images/a.jpg", Some(0), "correct", Some([0.0, 0.0, 10.0, 10.0])),
            row("b.jpg", "correct/b.jpg", Some(0), "correct", Some([0.0, 0.0, 10.0, 10.0])),
        ];
        let set = LabelSet::new(&rs, [], s);
        let warnings = write_yolo(dir.path(), &dir.path().join(yolo_file_name(None)), &set).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("correct/images/a.jpg: Ultralytics reads the labels"), "{warnings:?}");
        assert!(warnings[0].contains("(1 such outputs)"), "{warnings:?}");
    }

    #[test]
    fn files_are_written_and_names_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let s = sizes(&[("unmasked/p/a.jpg", 200, 100), ("correct/p/a.jpg", 200, 100), ("unmasked/b.png", 40, 40)]);
        let set = LabelSet::new(&rows(), [], s);
        let coco = dir.path().join(coco_file_name(None));
        write_coco(&coco, &set).unwrap();
        assert_eq!(std::fs::read(&coco).unwrap(), coco_bytes(&set).unwrap());
        let yaml = dir.path().join(yolo_file_name(Some((2, 3))));
        assert!(write_yolo(dir.path(), &yaml, &set).unwrap().is_empty());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("unmasked/b.txt")).unwrap(),
            "1 0.500000 0.500000 0.500000 0.500000\n"
        );
        assert!(dir.path().join("correct/p/a.txt").is_file() && yaml.is_file());
        assert_eq!(coco_file_shard("labels.coco.json"), Some(None));
        assert_eq!(coco_file_shard("labels.coco.shard-2-of-3.json"), Some(Some((2, 3))));
        assert_eq!(yolo_file_shard(&yolo_file_name(Some((2, 3)))), Some(Some((2, 3))));
        for other in ["labels.coco.yaml", "labels.cocojson", "labels.coco.x.json", "labels.yolo.shard-a-of-3.yaml"] {
            assert_eq!((coco_file_shard(other), yolo_file_shard(other)), (None, None), "{other}");
        }
    }
}
