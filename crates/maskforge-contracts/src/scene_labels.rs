//! Labelled real photos, for scoring a face detector and classifier: face
//! boxes with class names, read from the annotation formats people have
//! ([`read_scene_labels`]).
//!
//! * **Pascal VOC** (labelImg's XML; Kaggle's face-mask-detection set, whose
//!   names are `with_mask`, `without_mask`, `mask_weared_incorrect`): one
//!   `<annotation>` per photo, `<filename>` relative to the photos folder,
//!   one `<object>` per face with `<name>` and `<bndbox>` (`xmin`, `ymin`,
//!   `xmax`, `ymax` in pixels; floats accepted). labelImg's `<path>` is an
//!   absolute path on the labeller's machine: never read. When `filename`
//!   names no photo (renamed or converted photos), the photo named like the
//!   XML file (`a.xml` → `a.png`) is used.
//! * **COCO** JSON: `images` (`id`, `file_name`), `annotations` (`image_id`,
//!   `category_id`, `bbox` `[x, y, width, height]` in pixels), `categories`
//!   (`id`, `name`); what `mask --labels coco` writes reads back.
//! * **YOLO**: a folder of `.txt` files, one per photo, one
//!   `class cx cy w h` line per face, normalised to 0..1; class names from a
//!   names file (see [`YOLO_NAMES_FILES`]). The photo of `x/y.txt` is
//!   `PHOTOS/x/y.EXT`, or where Ultralytics keeps it, in an `images` folder
//!   beside the `labels` one. Its size, to turn the boxes into pixels, is
//!   read from its header, EXIF orientation applied (the frame detectors and
//!   `mask --labels yolo` work in). What `mask --labels yolo` writes reads
//!   back.
//! * **CSV**: `image,xmin,ymin,xmax,ymax,label` (pixels; `path` accepted for
//!   `image`; columns in any order, others ignored). A row with an image and
//!   no box lists a photo without faces.
//!
//! A path read from a label file is data: it must be a plain relative path
//! ([`RelPath`]), and only the photos folder is looked in, so `../x.jpg` or
//! `/etc/passwd` is skipped and never opened. Photos must exist. Bad entries
//! are not errors: each is one line of [`SceneLabels::skipped`] (`FILE:LINE`
//! where there are lines, `FILE:annotations[I]` in COCO, the file when all of
//! it is unusable) and the rest is read. A listed photo without faces keeps
//! an empty list: for scoring it is a photo where nothing should be found.

use crate::read::{read_bounded, MAX_LINE_BYTES, MAX_TABLE_BYTES};
use crate::{ContractError, RelPath};
use maskforge_face::BBox;
use maskforge_imageio::{is_image_path, upright_size, IMAGE_EXTENSIONS, NON_UTF8_REASON};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Largest file of one photo's labels (a VOC XML, a YOLO `.txt`) or of class
/// names: a crowd of ten thousand faces takes a few MB.
const MAX_LABEL_FILE_BYTES: u64 = 64 << 20;

/// Largest magnitude of a pixel coordinate: far beyond any photo, and an
/// `f32` still holds it to 1/16 px.
const MAX_COORDINATE: f64 = 1e6;

/// The files YOLO class names are read from, in the order looked for, in
/// the labels folder, then its parent (and that folder's parent when the
/// parent is a `labels` folder, as in `labels/train`); after these two, any
/// other `*.yaml` / `*.yml` with a `names:` key. A YAML file's `names` is a
/// list (`[a, b]` or `- a` lines) or a map (`0: a`); the others hold one
/// name a line (class `k` on line `k + 1`).
pub const YOLO_NAMES_FILES: [&str; 4] = ["labels.yolo.yaml", "data.yaml", "classes.txt", "obj.names"];

/// The layouts [`read_scene_labels`] reads (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SceneLabelsFormat {
    /// Pascal VOC: one `.xml` per photo.
    Voc,
    /// COCO: one JSON of images, annotations and categories.
    Coco,
    /// YOLO: one `.txt` per photo, `class cx cy w h` normalised to 0..1.
    Yolo,
    /// A CSV of `image,xmin,ymin,xmax,ymax,label` rows, one face a row.
    Csv,
}

impl SceneLabelsFormat {
    /// Every format, in the order `--labels-format` lists them.
    pub const ALL: [SceneLabelsFormat; 4] =
        [SceneLabelsFormat::Voc, SceneLabelsFormat::Coco, SceneLabelsFormat::Yolo, SceneLabelsFormat::Csv];

    /// Its `--labels-format` name: `voc`, `coco`, `yolo` or `csv`.
    pub fn name(self) -> &'static str {
        match self {
            SceneLabelsFormat::Voc => "voc",
            SceneLabelsFormat::Coco => "coco",
            SceneLabelsFormat::Yolo => "yolo",
            SceneLabelsFormat::Csv => "csv",
        }
    }

    /// The format of a folder by the label files in it: `.xml` → VOC,
    /// `.txt` → YOLO; both, or neither, is an error that asks for the format.
    fn of_folder(folder: &Path, files: &[String]) -> Result<SceneLabelsFormat, ContractError> {
        let count = |ext: &str| files.iter().filter(|f| has_extension(f, ext)).count();
        match (count("xml"), count("txt")) {
            (0, 0) => Err(ContractError::format(folder, "no .xml (Pascal VOC) or .txt (YOLO) label files in it")),
            (_, 0) => Ok(SceneLabelsFormat::Voc),
            (0, _) => Ok(SceneLabelsFormat::Yolo),
            (xml, txt) => Err(ContractError::format(
                folder,
                format!("both .xml ({xml}) and .txt ({txt}) files in it: say which format the labels are in"),
            )),
        }
    }

    /// The format of a file by its name: `.json` → COCO, `.xml` → VOC, `.csv` → CSV.
    fn of_file(path: &Path) -> Result<SceneLabelsFormat, ContractError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        match ext.as_str() {
            "json" => Ok(SceneLabelsFormat::Coco),
            "xml" => Ok(SceneLabelsFormat::Voc),
            "csv" => Ok(SceneLabelsFormat::Csv),
            "txt" => Err(ContractError::format(path, "a YOLO label file: give the folder of them")),
            _ => Err(ContractError::format(
                path,
                "cannot tell the label format from the name (.json COCO, .xml Pascal VOC, .csv boxes, \
                 or a folder of .xml or .txt files): say which format it is",
            )),
        }
    }
}

impl std::str::FromStr for SceneLabelsFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SceneLabelsFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let names: Vec<&str> = SceneLabelsFormat::ALL.iter().map(|f| f.name()).collect();
            format!("unknown label format {s:?}: one of {}", names.join(", "))
        })
    }
}

/// One labelled face.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneBox {
    /// In pixels of the photo as labelled; right > left, bottom > top.
    pub bbox: BBox,
    /// The class name as written in the label file.
    pub label: String,
}

/// What [`read_scene_labels`] read.
#[derive(Clone, Debug, Default)]
pub struct SceneLabels {
    /// Boxes per image, keyed by the image path relative to the photos root, with `/`.
    pub images: BTreeMap<String, Vec<SceneBox>>,
    /// What could not be used, one line each: ("FILE:LINE" or "FILE" or the image path, reason).
    pub skipped: Vec<(String, String)>,
}

impl SceneLabels {
    fn skip(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push((at.into(), reason.into()));
    }

    /// The boxes of `image`, which is listed (as a photo without faces until
    /// boxes come) from now on.
    fn boxes_of(&mut self, image: &RelPath) -> &mut Vec<SceneBox> {
        self.images.entry(image.as_str().to_string()).or_default()
    }
}

/// Reads labelled photos.
///
/// `path`: a VOC XML file or a folder of them, a COCO JSON file, a folder of
/// YOLO .txt files, or a CSV. `photos`: the folder the photos' relative
/// paths start from. `format`: `None` = by content (a folder with .xml →
/// VOC, a folder with .txt → YOLO, `.json` → COCO, `.xml` file → VOC,
/// `.csv` → CSV).
///
/// Errors: `photos` is not a folder, `path` cannot be read, is not of its
/// format at all, or (YOLO) has no class names. Bad entries are skipped and
/// reported (see the module docs).
pub fn read_scene_labels(
    path: &Path,
    photos: &Path,
    format: Option<SceneLabelsFormat>,
) -> Result<SceneLabels, ContractError> {
    if !photos.is_dir() {
        return Err(ContractError::format(
            photos,
            "not a folder: give the folder the labelled photos' paths start from",
        ));
    }
    let meta = std::fs::metadata(path).map_err(ContractError::io(path))?;
    let mut labels = SceneLabels::default();
    let mut photos = Photos::new(photos);
    if meta.is_dir() {
        let files = list_folder(path, &mut labels)?;
        match format.map_or_else(|| SceneLabelsFormat::of_folder(path, &files), Ok)? {
            SceneLabelsFormat::Voc => read_voc_folder(path, &files, &mut photos, &mut labels),
            SceneLabelsFormat::Yolo => read_yolo(path, &files, &mut photos, &mut labels)?,
            f @ (SceneLabelsFormat::Coco | SceneLabelsFormat::Csv) => {
                let message = format!("a folder: {} labels are one file", f.name());
                return Err(ContractError::format(path, message));
            }
        }
    } else {
        let name = file_name(path);
        match format.map_or_else(|| SceneLabelsFormat::of_file(path), Ok)? {
            SceneLabelsFormat::Voc => {
                let bytes = read_bounded(path, MAX_LABEL_FILE_BYTES, None, "Pascal VOC file")?;
                parse_voc(&bytes, &name, &mut photos, &mut labels).map_err(|m| ContractError::format(path, m))?;
            }
            SceneLabelsFormat::Coco => {
                let bytes = read_bounded(path, MAX_TABLE_BYTES, None, "COCO file")?;
                parse_coco(&bytes, &name, &mut photos, &mut labels).map_err(|m| ContractError::format(path, m))?;
            }
            SceneLabelsFormat::Csv => {
                let bytes = read_bounded(path, MAX_TABLE_BYTES, Some(MAX_LINE_BYTES), "box CSV")?;
                parse_csv(&bytes, &name, &mut photos, &mut labels).map_err(|m| ContractError::format(path, m))?;
            }
            SceneLabelsFormat::Yolo => {
                return Err(ContractError::format(path, "YOLO labels are a folder of .txt files: give the folder"));
            }
        }
    }
    Ok(labels)
}

/// How skips name a file given by itself: its name.
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn has_extension(name: &str, ext: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// `(folder, stem)` of a `/`-separated path: `a/b/c.xml` → `("a/b", "c")`.
fn folder_and_stem(rel: &str) -> (&str, &str) {
    let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    let stem = match file.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => file,
    };
    (dir, stem)
}

/// An image path from a label file, checked: a plain relative path (a
/// leading `./` dropped) or why not.
fn checked_image_path(raw: &str) -> Result<RelPath, String> {
    let mut p = raw.trim();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.trim_start_matches('/');
    }
    if p.is_empty() {
        return Err("empty image path".into());
    }
    RelPath::new(p).map_err(|_| format!("image path {raw:?} is not a plain relative path inside the photos folder"))
}

/// A pixel coordinate: a finite number within ±[`MAX_COORDINATE`], or a reason naming it.
fn coordinate(v: f64, what: &str, text: &str) -> Result<f64, String> {
    if !v.is_finite() {
        Err(format!("{what}: {text:?} is not a finite number"))
    } else if v.abs() > MAX_COORDINATE {
        Err(format!("{what}: {text:?} is out of range (a coordinate lies within ±{MAX_COORDINATE:e} pixels)"))
    } else {
        Ok(v)
    }
}

/// As [`coordinate`], from text.
fn parse_coordinate(text: &str, what: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{what}: empty"));
    }
    let v = text.parse::<f64>().map_err(|_| format!("{what}: {text:?} is not a number"))?;
    coordinate(v, what, text)
}

/// `[left, top, right, bottom]` as a box with some area, or why not.
fn checked_box([l, t, r, b]: [f64; 4]) -> Result<BBox, String> {
    let bbox = BBox::new(l as f32, t as f32, r as f32, b as f32);
    let sides = format!("box {l},{t},{r},{b}");
    if bbox.left > bbox.right || bbox.top > bbox.bottom {
        Err(format!("{sides} is inverted: left must be under right and top under bottom"))
    } else if bbox.left == bbox.right || bbox.top == bbox.bottom {
        Err(format!("{sides} is empty"))
    } else {
        Ok(bbox)
    }
}

/// The files under a labels folder: `/`-separated paths relative to it, in
/// name order. Hidden names (`.x`, temporary files) are passed over and
/// symlinked folders not followed; label files whose names are not UTF-8
/// are skipped.
fn list_folder(folder: &Path, labels: &mut SceneLabels) -> Result<Vec<String>, ContractError> {
    let mut files = Vec::new();
    walk(folder, "", &mut files, labels)?;
    Ok(files)
}

fn walk(folder: &Path, rel: &str, files: &mut Vec<String>, labels: &mut SceneLabels) -> Result<(), ContractError> {
    let dir = if rel.is_empty() { folder.to_path_buf() } else { folder.join(rel) };
    let entries = std::fs::read_dir(&dir).map_err(ContractError::io(&dir))?;
    let mut entries: Vec<std::fs::DirEntry> = entries.collect::<Result<_, _>>().map_err(ContractError::io(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            let path = Path::new(&os_name);
            if ["xml", "txt"].iter().any(|ext| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))) {
                labels.skip(entry.path().display().to_string(), NON_UTF8_REASON);
            }
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let child = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let kind = entry.file_type().map_err(ContractError::io(entry.path()))?;
        if kind.is_dir() {
            walk(folder, &child, files, labels)?;
        } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
            files.push(child);
        }
    }
    Ok(())
}

/// The photos folder: the only place photos are looked for, and its
/// folders' photos by stem (each folder listed once, when first asked).
struct Photos {
    root: PathBuf,
    by_folder: HashMap<String, BTreeMap<String, Vec<String>>>,
}

impl Photos {
    fn new(root: &Path) -> Photos {
        Photos { root: root.to_path_buf(), by_folder: HashMap::new() }
    }

    fn has(&self, image: &RelPath) -> bool {
        image.under(&self.root).is_file()
    }

    /// The photos named `stem.EXT` (any image extension, any case) in the
    /// folder `dir` of the photos folder (`""`: the top), sorted.
    fn by_stem(&mut self, dir: &str, stem: &str) -> Vec<RelPath> {
        let folder = match dir {
            "" => self.root.clone(),
            _ => match RelPath::new(dir) {
                Ok(d) => d.under(&self.root),
                Err(_) => return Vec::new(),
            },
        };
        let index = self.by_folder.entry(dir.to_string()).or_insert_with(|| photos_by_stem(&folder));
        let names = index.get(stem).map(Vec::as_slice).unwrap_or_default();
        let join = |n: &String| if dir.is_empty() { n.clone() } else { format!("{dir}/{n}") };
        names.iter().filter_map(|n| RelPath::new(&join(n)).ok()).collect()
    }

    /// How a skip says where photos of `stem` were looked for.
    fn looked_for(&self, dir: &str, stem: &str) -> String {
        let dir = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        format!("{}/{dir}{stem}.{{{}}}", self.root.display(), IMAGE_EXTENSIONS.join(","))
    }
}

/// The image files in `folder` by stem; an unreadable folder has none.
fn photos_by_stem(folder: &Path) -> BTreeMap<String, Vec<String>> {
    let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(folder) else { return index };
    for entry in entries.flatten() {
        let path = entry.path();
        let (Some(name), Some(stem)) = (entry.file_name().to_str().map(String::from), path.file_stem()) else {
            continue;
        };
        if is_image_path(&path) && path.is_file() {
            index.entry(stem.to_string_lossy().into_owned()).or_default().push(name);
        }
    }
    index.values_mut().for_each(|names| names.sort());
    index
}

/// The one photo among `found`, or why not (`looked`: where it was looked for).
fn one_photo(mut found: Vec<RelPath>, looked: impl FnOnce() -> String) -> Result<RelPath, String> {
    found.dedup();
    match found.len() {
        0 => Err(format!("no photo for it (looked for {})", looked())),
        1 => Ok(found.remove(0)),
        _ => {
            let names: Vec<&str> = found.iter().map(RelPath::as_str).collect();
            Err(format!("more than one photo it could be ({}): rename all but one", names.join(", ")))
        }
    }
}

// ---- Pascal VOC ----

/// Each `.xml` under `folder`; a file that cannot be used is one skip naming it.
fn read_voc_folder(folder: &Path, files: &[String], photos: &mut Photos, labels: &mut SceneLabels) {
    for rel in files.iter().filter(|f| has_extension(f, "xml")) {
        let read = read_bounded(&folder.join(rel), MAX_LABEL_FILE_BYTES, None, "Pascal VOC file");
        let parsed = read.map_err(|e| e.to_string()).and_then(|bytes| parse_voc(&bytes, rel, photos, labels));
        if let Err(reason) = parsed {
            labels.skip(rel.as_str(), reason);
        }
    }
}

/// One VOC file; `name` is how skips name it, relative to the labels
/// folder (its folder and stem find a photo its `filename` does not name).
fn parse_voc(bytes: &[u8], name: &str, photos: &mut Photos, labels: &mut SceneLabels) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text")?;
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        let tag = root.tag_name().name();
        return Err(format!("not a Pascal VOC file: its root element is <{tag}>, not <annotation>"));
    }
    let image = voc_photo(child_text(root, "filename"), name, photos)?;
    let line_starts: Vec<usize> =
        std::iter::once(0).chain(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1)).collect();
    let mut boxes = Vec::new();
    for object in root.children().filter(|n| n.has_tag_name("object")) {
        match voc_object(object) {
            Ok(b) => boxes.push(b),
            Err(reason) => {
                let line = line_starts.partition_point(|&s| s <= object.range().start);
                labels.skip(format!("{name}:{line}"), reason);
            }
        }
    }
    labels.boxes_of(&image).extend(boxes);
    Ok(())
}

/// The trimmed, non-empty text of `node`'s first `<tag>` child.
fn child_text<'a>(node: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    node.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text()).map(str::trim).filter(|t| !t.is_empty())
}

fn voc_object(object: roxmltree::Node<'_, '_>) -> Result<SceneBox, String> {
    let label = child_text(object, "name").ok_or("object without a <name>")?;
    let bndbox = object.children().find(|n| n.has_tag_name("bndbox")).ok_or_else(|| format!("{label}: no <bndbox>"))?;
    let side = |tag: &str| {
        let text = child_text(bndbox, tag).ok_or_else(|| format!("{label}: no <{tag}>"))?;
        parse_coordinate(text, tag).map_err(|e| format!("{label}: {e}"))
    };
    let bbox = checked_box([side("xmin")?, side("ymin")?, side("xmax")?, side("ymax")?]);
    Ok(SceneBox { bbox: bbox.map_err(|e| format!("{label}: {e}"))?, label: label.to_string() })
}

/// The photo of VOC file `name`: its `filename` under the photos folder (or
/// under the XML's own folder there), else the photo named like the XML.
fn voc_photo(filename: Option<&str>, name: &str, photos: &mut Photos) -> Result<RelPath, String> {
    let (dir, stem) = folder_and_stem(name);
    if let Some(filename) = filename {
        let image = checked_image_path(filename).map_err(|e| format!("<filename>: {e}"))?;
        let beside = (!dir.is_empty()).then(|| RelPath::new(&format!("{dir}/{image}")).ok()).flatten();
        if let Some(found) = [Some(image), beside].into_iter().flatten().find(|p| photos.has(p)) {
            return Ok(found);
        }
    }
    let mut found = photos.by_stem(dir, stem);
    if found.is_empty() && !dir.is_empty() {
        found = photos.by_stem("", stem);
    }
    let root = photos.root.display().to_string();
    one_photo(found, || match filename {
        Some(f) => format!("{root}/{f}, then {}", photos.looked_for(dir, stem)),
        None => photos.looked_for(dir, stem),
    })
}

// ---- COCO ----

/// A COCO id (a number, or a string some tools write), as a map key.
fn coco_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_coco(bytes: &[u8], name: &str, photos: &mut Photos, labels: &mut SceneLabels) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let list = |key: &str| v.get(key).map(|l| l.as_array().ok_or_else(|| format!("`{key}` is not a list")));
    let images = list("images").ok_or("no `images` list: not a COCO file")??;
    let categories = list("categories").ok_or("no `categories` list: not a COCO file")??;
    let annotations = list("annotations").transpose()?.map(Vec::as_slice).unwrap_or_default();
    let categories = coco_categories(categories, name, labels);
    let images = coco_images(images, name, photos, labels);
    for (i, a) in annotations.iter().enumerate() {
        match coco_annotation(a, &images, &categories) {
            Ok(Some((image, b))) => labels.boxes_of(image).push(b),
            Ok(None) => {}
            Err(reason) => labels.skip(format!("{name}:annotations[{i}]"), reason),
        }
    }
    Ok(())
}

/// Category names by id.
fn coco_categories(categories: &[Value], name: &str, labels: &mut SceneLabels) -> HashMap<String, String> {
    let mut by_id = HashMap::new();
    for (i, c) in categories.iter().enumerate() {
        let at = || format!("{name}:categories[{i}]");
        let label = c.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
        match (c.get("id").and_then(coco_id), label) {
            (Some(id), Some(label)) if !by_id.contains_key(&id) => {
                by_id.insert(id, label.to_string());
            }
            (Some(id), Some(_)) => labels.skip(at(), format!("id {id} is used by an earlier category")),
            _ => labels.skip(at(), "a category needs an `id` and a `name`"),
        }
    }
    by_id
}

/// Photos by image id; `None` for an image that was skipped (its boxes
/// are dropped with it, the skip says so).
fn coco_images(
    images: &[Value],
    name: &str,
    photos: &mut Photos,
    labels: &mut SceneLabels,
) -> HashMap<String, Option<RelPath>> {
    let mut by_id = HashMap::new();
    for (i, img) in images.iter().enumerate() {
        let at = || format!("{name}:images[{i}]");
        let Some(id) = img.get("id").and_then(coco_id) else {
            labels.skip(at(), "an image without an `id`");
            continue;
        };
        if by_id.contains_key(&id) {
            labels.skip(at(), format!("id {id} is used by an earlier image"));
            continue;
        }
        let photo = img
            .get("file_name")
            .and_then(Value::as_str)
            .ok_or_else(|| "no `file_name`".to_string())
            .and_then(checked_image_path)
            .and_then(|p| {
                if photos.has(&p) {
                    Ok(p)
                } else {
                    Err(format!("{p}: no such photo in {}", photos.root.display()))
                }
            });
        match photo {
            Ok(p) => {
                labels.boxes_of(&p);
                by_id.insert(id, Some(p));
            }
            Err(reason) => {
                labels.skip(at(), format!("{reason} (its boxes are not read)"));
                by_id.insert(id, None);
            }
        }
    }
    by_id
}

/// One annotation's photo and box; `None` when its photo was skipped.
fn coco_annotation<'a>(
    a: &Value,
    images: &'a HashMap<String, Option<RelPath>>,
    categories: &HashMap<String, String>,
) -> Result<Option<(&'a RelPath, SceneBox)>, String> {
    let image_id = a.get("image_id").and_then(coco_id).ok_or("no `image_id`")?;
    let image = match images.get(&image_id) {
        None => return Err(format!("image_id {image_id}: no image has this id")),
        Some(None) => return Ok(None),
        Some(Some(image)) => image,
    };
    let category = a.get("category_id").and_then(coco_id).ok_or("no `category_id`")?;
    let label = categories.get(&category).ok_or_else(|| format!("category_id {category}: not in `categories`"))?;
    if a.get("iscrowd").and_then(Value::as_u64) == Some(1) {
        return Err("iscrowd 1: a crowd region, not one face".into());
    }
    let bbox = a.get("bbox").and_then(Value::as_array).filter(|b| b.len() == 4);
    let bbox = bbox.ok_or("`bbox` is not [x, y, width, height]")?;
    let mut xywh = [0.0; 4];
    for (k, what) in ["x", "y", "width", "height"].into_iter().enumerate() {
        let text = bbox[k].to_string();
        let v = bbox[k].as_f64().ok_or_else(|| format!("bbox {what}: {text} is not a number"))?;
        xywh[k] = coordinate(v, what, &text)?;
    }
    let [x, y, w, h] = xywh;
    Ok(Some((image, SceneBox { bbox: checked_box([x, y, x + w, y + h])?, label: label.clone() })))
}

// ---- YOLO ----

/// Class names by YOLO class number, and the file they came from.
#[derive(Debug)]
struct YoloNames {
    file: PathBuf,
    names: BTreeMap<u64, String>,
}

/// Each `.txt` under `folder` but the names files.
fn read_yolo(
    folder: &Path,
    files: &[String],
    photos: &mut Photos,
    labels: &mut SceneLabels,
) -> Result<(), ContractError> {
    let names = yolo_names(folder)?;
    for rel in files.iter().filter(|f| has_extension(f, "txt")) {
        let file = folder.join(rel);
        let is_names_file = file == names.file || rel.rsplit('/').next() == Some(YOLO_NAMES_FILES[2]);
        if !is_names_file {
            read_yolo_file(folder, rel, &names, photos, labels);
        }
    }
    Ok(())
}

/// One label file `rel` of `folder`: its photo, the photo's size, its lines.
fn read_yolo_file(folder: &Path, rel: &str, names: &YoloNames, photos: &mut Photos, labels: &mut SceneLabels) {
    let image = match yolo_photo(folder, rel, photos) {
        Ok(image) => image,
        Err(reason) => return labels.skip(rel, reason),
    };
    let size = match upright_size(&image.under(&photos.root)) {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        Ok(_) => return labels.skip(image.as_str(), "an empty image: YOLO boxes need its size"),
        Err(e) => return labels.skip(image.as_str(), format!("cannot read the image size: {e}")),
    };
    let read = read_bounded(&folder.join(rel), MAX_LABEL_FILE_BYTES, Some(MAX_LINE_BYTES), "YOLO label file");
    let text = match read.map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => return labels.skip(rel, "not UTF-8 text"),
        Err(e) => return labels.skip(rel, e.to_string()),
    };
    let mut boxes = Vec::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match yolo_line(line, size, names) {
            Ok(b) => boxes.push(b),
            Err(reason) => labels.skip(format!("{rel}:{}", i + 1), reason),
        }
    }
    labels.boxes_of(&image).extend(boxes);
}

/// `class cx cy w h`, normalised, as a box in pixels of a `size` photo.
fn yolo_line(line: &str, size: (u32, u32), names: &YoloNames) -> Result<SceneBox, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("{} fields: expected 5, `class cx cy w h`", fields.len()));
    }
    let class: u64 = fields[0].parse().map_err(|_| format!("class {:?} is not a class number", fields[0]))?;
    let label = names.names.get(&class).ok_or_else(|| format!("class {class}: not in {}", names.file.display()))?;
    let mut v = [0.0; 4];
    for (k, what) in ["cx", "cy", "w", "h"].into_iter().enumerate() {
        let text = fields[k + 1];
        v[k] = text.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| {
            format!("{what}: {text:?} is not a number within 0..1 (YOLO boxes are normalised to the image size)")
        })?;
    }
    let [cx, cy, bw, bh] = v;
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let bbox = checked_box([(cx - bw / 2.0) * w, (cy - bh / 2.0) * h, (cx + bw / 2.0) * w, (cy + bh / 2.0) * h])?;
    Ok(SceneBox { bbox, label: label.clone() })
}

/// The photo of label file `rel` of `folder`: `PHOTOS/<its folder>/<stem>.EXT`,
/// or where Ultralytics looks (the last `labels` folder of its path
/// replaced by `images`), when that lies under the photos folder.
fn yolo_photo(folder: &Path, rel: &str, photos: &mut Photos) -> Result<RelPath, String> {
    let (dir, stem) = folder_and_stem(rel);
    let mut found = photos.by_stem(dir, stem);
    let ultralytics = folder.join(rel).parent().and_then(|p| ultralytics_images_folder(p, &photos.root));
    if let Some(images) = &ultralytics {
        found.extend(photos.by_stem(images, stem));
        found.sort();
    }
    one_photo(found, || match &ultralytics {
        Some(images) if images != dir => {
            format!("{} and {}", photos.looked_for(dir, stem), photos.looked_for(images, stem))
        }
        _ => photos.looked_for(dir, stem),
    })
}

/// `labels_dir` with its last `labels` component made `images`, relative to
/// `photos` (`/`-separated, `""` for `photos` itself), if it lies under it.
fn ultralytics_images_folder(labels_dir: &Path, photos: &Path) -> Option<String> {
    let parts: Vec<&std::ffi::OsStr> = labels_dir.iter().collect();
    let k = parts.iter().rposition(|p| *p == "labels")?;
    let images: PathBuf = parts.iter().enumerate().map(|(i, p)| if i == k { "images".as_ref() } else { *p }).collect();
    relative_under(&images, photos)
}

/// `path` relative to `root` with `/`, compared as given, else both made
/// absolute (no symlinks resolved); `None` unless a plain relative path.
fn relative_under(path: &Path, root: &Path) -> Option<String> {
    let rest = match path.strip_prefix(root) {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => std::path::absolute(path).ok()?.strip_prefix(std::path::absolute(root).ok()?).ok()?.to_path_buf(),
    };
    let parts: Vec<&str> = rest.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
    let rel = parts.join("/");
    (rel.is_empty() || RelPath::new(&rel).is_ok()).then_some(rel)
}

/// The class names of the YOLO labels in `folder` (see [`YOLO_NAMES_FILES`]).
fn yolo_names(folder: &Path) -> Result<YoloNames, ContractError> {
    let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let mut dirs = vec![folder.clone()];
    if let Some(parent) = folder.parent() {
        dirs.push(parent.to_path_buf());
        if parent.file_name().is_some_and(|n| n == "labels") {
            dirs.extend(parent.parent().map(Path::to_path_buf));
        }
    }
    let mut looked = Vec::new();
    for dir in &dirs {
        if let Some(names) = names_in(dir, &mut looked)? {
            return Ok(names);
        }
    }
    let message = format!(
        "no class names for the YOLO labels: looked for {} (a `names:` list or map, or one name a line)",
        looked.join(", ")
    );
    Err(ContractError::format(folder, message))
}

/// The names file of folder `dir`, in [`YOLO_NAMES_FILES`] order; adds the
/// places looked at to `looked`.
fn names_in(dir: &Path, looked: &mut Vec<String>) -> Result<Option<YoloNames>, ContractError> {
    let [yolo_yaml, data_yaml, classes_txt, obj_names] = YOLO_NAMES_FILES;
    let mut yamls = vec![dir.join(yolo_yaml), dir.join(data_yaml)];
    let listed: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|entries| entries.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    let mut others: Vec<PathBuf> = listed
        .into_iter()
        .filter(|p| ["yaml", "yml"].iter().any(|ext| p.extension().is_some_and(|e| e == *ext)) && !yamls.contains(p))
        .collect();
    others.sort();
    yamls.extend(others);
    looked.extend([yolo_yaml, data_yaml, "*.yaml"].iter().map(|n| dir.join(n).display().to_string()));
    for file in yamls.into_iter().filter(|p| p.is_file()) {
        let text = read_names_file(&file)?;
        if let Some(names) = yaml_names(&text) {
            let names = names.map_err(|m| ContractError::format(&file, m))?;
            return Ok(Some(YoloNames { file, names }));
        }
    }
    for file in [dir.join(classes_txt), dir.join(obj_names)] {
        looked.push(file.display().to_string());
        if file.is_file() {
            let names = line_names(&read_names_file(&file)?).map_err(|m| ContractError::format(&file, m))?;
            return Ok(Some(YoloNames { file, names }));
        }
    }
    Ok(None)
}

fn read_names_file(file: &Path) -> Result<String, ContractError> {
    let bytes = read_bounded(file, MAX_LABEL_FILE_BYTES, Some(MAX_LINE_BYTES), "YOLO class names file")?;
    let text = String::from_utf8(bytes).map_err(|_| ContractError::format(file, "not UTF-8 text"))?;
    Ok(text.trim_start_matches('\u{feff}').to_string())
}

/// One name a line (`classes.txt`, `obj.names`): class `k` on line `k + 1`;
/// a blank line is a class without a name.
fn line_names(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let names: BTreeMap<u64, String> =
        (0u64..).zip(text.lines()).map(|(k, l)| (k, l.trim().to_string())).filter(|(_, n)| !n.is_empty()).collect();
    if names.is_empty() {
        return Err("no class names in it".into());
    }
    Ok(names)
}

/// The top-level `names:` of a YOLO dataset YAML file: `None` without one.
/// Only what dataset files use is read: a flow list `[a, 'b c']` or map
/// `{0: a}`, a block list of `- a` lines or block map of `0: a` lines, with
/// plain, single- or double-quoted names and `#` comments.
fn yaml_names(text: &str) -> Option<Result<BTreeMap<u64, String>, String>> {
    let lines: Vec<&str> = text.lines().collect();
    let k = lines.iter().position(|l| l.starts_with("names:"))?;
    let rest = strip_comment(&lines[k]["names:".len()..]).trim();
    let names = if rest.starts_with('[') || rest.starts_with('{') {
        flow_names(rest, &lines[k + 1..])
    } else if rest.is_empty() {
        block_names(&lines[k + 1..])
    } else {
        Err(format!("names: {rest:?} is not a list or a map of class names"))
    };
    Some(names.and_then(|n| if n.is_empty() { Err("names: no class names".into()) } else { Ok(n) }))
}

/// `line` up to a `#` comment (a `#` outside quotes, at the start or after a space).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') if prev.is_whitespace() => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            _ => {}
        }
        prev = c;
    }
    line
}

/// The indices where `s` has `sep` outside quotes (a `\"` inside double quotes is no quote).
fn unquoted(s: &str, sep: char) -> Vec<usize> {
    let mut at = Vec::new();
    let (mut quote, mut escaped) = (None, false);
    for (i, c) in s.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == sep => at.push(i),
            None => {}
        }
    }
    at
}

/// `s` cut at each `sep` outside quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for i in unquoted(s, sep) {
        parts.push(&s[start..i]);
        start = i + sep.len_utf8();
    }
    parts.push(&s[start..]);
    parts
}

/// A YAML scalar: `"..."` (JSON's escapes are YAML's), `'...'` (`''` is a
/// quote) or plain.
fn yaml_scalar(s: &str) -> Result<String, String> {
    let s = s.trim();
    let name = if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        serde_json::from_str::<String>(s).map_err(|_| format!("names: {s} is not a valid quoted name"))?
    } else if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else {
        s.to_string()
    };
    if name.trim().is_empty() {
        return Err("names: an empty class name".into());
    }
    Ok(name)
}

/// `k: name` as (class number, name).
fn yaml_entry(item: &str) -> Result<(u64, String), String> {
    let (key, value) = match unquoted(item, ':').first() {
        Some(&i) => (&item[..i], &item[i + 1..]),
        None => return Err(format!("names: {:?} is not `number: name`", item.trim())),
    };
    let key = yaml_scalar(key)?;
    let class = key.parse().map_err(|_| format!("names: {key:?} is not a class number"))?;
    Ok((class, yaml_scalar(value)?))
}

/// `[a, b]` or `{0: a, 1: b}`, perhaps over several lines.
fn flow_names(first: &str, more: &[&str]) -> Result<BTreeMap<u64, String>, String> {
    let close = if first.starts_with('[') { ']' } else { '}' };
    let mut text = first.to_string();
    let mut more = more.iter();
    let end = loop {
        if let Some(&end) = unquoted(&text, close).first() {
            break end;
        }
        let line = more.next().ok_or_else(|| format!("names: no closing {close:?}"))?;
        text.push(' ');
        text.push_str(strip_comment(line));
    };
    if !text[end + 1..].trim().is_empty() {
        return Err(format!("names: text after the closing {close:?}"));
    }
    let mut items = split_unquoted(&text[1..end], ',');
    if items.last().is_some_and(|i| i.trim().is_empty()) {
        items.pop();
    }
    if close == ']' {
        (0u64..).zip(items).map(|(k, item)| Ok((k, yaml_scalar(item)?))).collect()
    } else {
        items.into_iter().map(yaml_entry).collect()
    }
}

/// The `- name` or `k: name` lines under `names:` (indented, or `- ` at the
/// left edge), up to the next top-level key.
fn block_names(lines: &[&str]) -> Result<BTreeMap<u64, String>, String> {
    let mut names = BTreeMap::new();
    let mut list = 0u64;
    for line in lines {
        let content = strip_comment(line);
        if content.trim().is_empty() {
            continue;
        }
        let item = content.trim();
        let indented = content.starts_with([' ', '\t']);
        if let Some(name) = item.strip_prefix('-').filter(|n| n.is_empty() || n.starts_with([' ', '\t'])) {
            names.insert(list, yaml_scalar(name)?);
            list += 1;
        } else if indented {
            let (class, name) = yaml_entry(item)?;
            names.insert(class, name);
        } else {
            break;
        }
    }
    if list > 0 && names.len() as u64 != list {
        return Err("names: both `- name` and `number: name` lines".into());
    }
    Ok(names)
}

// ---- CSV ----

/// Column indices of a box CSV.
struct CsvColumns {
    image: usize,
    sides: [usize; 4],
    label: usize,
    width: usize,
}

impl CsvColumns {
    fn find(header: &csv::StringRecord) -> Result<CsvColumns, String> {
        let names: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let col = |n: &str| names.iter().position(|h| h == n);
        let expected = "expected image,xmin,ymin,xmax,ymax,label";
        let image = col("image").or_else(|| col("path")).ok_or_else(|| format!("no `image` column: {expected}"))?;
        let mut sides = [0; 4];
        for (k, n) in ["xmin", "ymin", "xmax", "ymax"].into_iter().enumerate() {
            sides[k] = col(n).ok_or_else(|| format!("no `{n}` column: {expected}"))?;
        }
        let label = col("label").ok_or_else(|| format!("no `label` column: {expected}"))?;
        Ok(CsvColumns { image, sides, label, width: names.len() })
    }

    /// One row's photo and box (`None`: a photo listed without faces), or why not.
    fn row(&self, row: &csv::StringRecord) -> Result<(RelPath, Option<SceneBox>), String> {
        if row.len() != self.width {
            return Err(format!("{} fields, the header has {}", row.len(), self.width));
        }
        let image = checked_image_path(&row[self.image])?;
        let label = row[self.label].trim();
        if label.is_empty() && self.sides.iter().all(|&i| row[i].trim().is_empty()) {
            return Ok((image, None));
        }
        let mut sides = [0.0; 4];
        for (k, what) in ["xmin", "ymin", "xmax", "ymax"].into_iter().enumerate() {
            sides[k] = parse_coordinate(&row[self.sides[k]], what)?;
        }
        let bbox = checked_box(sides)?;
        if label.is_empty() {
            return Err("empty label".into());
        }
        Ok((image, Some(SceneBox { bbox, label: label.to_string() })))
    }
}

fn parse_csv(bytes: &[u8], name: &str, photos: &mut Photos, labels: &mut SceneLabels) -> Result<(), String> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("cannot read the header: {e}"))?.clone();
    let columns = CsvColumns::find(&header)?;
    let mut exists: HashMap<RelPath, bool> = HashMap::new();
    for row in reader.records() {
        let (line, read) = match row {
            Ok(row) => (row.position().map_or(0, |p| p.line()), columns.row(&row)),
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(format!("unreadable row: {e}"))),
        };
        let at = format!("{name}:{line}");
        let (image, bbox) = match read {
            Ok(r) => r,
            Err(reason) => {
                labels.skip(at, reason);
                continue;
            }
        };
        if !*exists.entry(image.clone()).or_insert_with(|| photos.has(&image)) {
            labels.skip(at, format!("{image}: no such photo in {}", photos.root.display()));
            continue;
        }
        let boxes = labels.boxes_of(&image);
        boxes.extend(bbox);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{coco_bytes, yolo_files, yolo_yaml, FaceBox, LabelSet, LabelledImage};

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// An image file with a real header (PNG content whatever the extension's name).
    fn photo(root: &Path, rel: &str, w: u32, h: u32) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = Vec::new();
        image::RgbImage::new(w, h).write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn scene(l: f32, t: f32, r: f32, b: f32, label: &str) -> SceneBox {
        SceneBox { bbox: BBox::new(l, t, r, b), label: label.into() }
    }

    fn skips(labels: &SceneLabels) -> Vec<(&str, &str)> {
        labels.skipped.iter().map(|(a, r)| (a.as_str(), r.as_str())).collect()
    }

    /// Asserts a skip at `at` whose reason contains `part`.
    fn assert_skip(labels: &SceneLabels, at: &str, part: &str) {
        assert!(
            labels.skipped.iter().any(|(a, r)| a == at && r.contains(part)),
            "no {at}: {part} in {:#?}",
            labels.skipped
        );
    }

    /// A labelImg file; `objects` are `(name, [xmin, ymin, xmax, ymax])` as text.
    fn voc(filename: &str, objects: &[(&str, [&str; 4])]) -> String {
        let mut x = format!(
            "<annotation>\n  <folder>images</folder>\n  <filename>{filename}</filename>\n  \
             <path>/home/labeller/Desktop/images/{filename}</path>\n  <size><width>400</width><height>300</height>\
             <depth>3</depth></size>\n"
        );
        for (name, [x0, y0, x1, y1]) in objects {
            x.push_str(&format!(
                "  <object>\n    <name>{name}</name>\n    <pose>Unspecified</pose>\n    <difficult>0</difficult>\n    \
                 <bndbox>\n      <xmin>{x0}</xmin>\n      <ymin>{y0}</ymin>\n      <xmax>{x1}</xmax>\n      \
                 <ymax>{y1}</ymax>\n    </bndbox>\n  </object>\n"
            ));
        }
        x.push_str("</annotation>\n");
        x
    }

    #[test]
    fn voc_objects_become_boxes_and_bad_ones_are_skipped_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let (ann, photos) = (dir.path().join("annotations"), dir.path().join("images"));
        for p in ["a.png", "b.jpeg", "sub/g.jpg", "twin.jpg", "twin.png"] {
            write(&photos.join(p), "");
        }
        // Objects start on lines 6, 17, 28, 39 (11 lines each, after 5 of header).
        let a = voc(
            "a.png",
            &[
                ("with_mask", ["10.5", "20", "50.5", "60"]),
                ("without_mask", ["50", "20", "10", "60"]),
                ("mask_weared_incorrect", ["1", "abc", "3", "4"]),
                ("with_mask", ["1", "2", "1", "4"]),
            ],
        );
        write(&ann.join("a.xml"), &a);
        write(&ann.join("b.xml"), &voc("renamed.png", &[]));
        write(&ann.join("c.xml"), &voc("../c.jpg", &[("with_mask", ["1", "2", "3", "4"])]));
        write(&ann.join("d.xml"), &voc("/etc/passwd", &[("with_mask", ["1", "2", "3", "4"])]));
        write(&ann.join("e.xml"), "<annotation><filename>a.png</filename>");
        write(&ann.join("f.xml"), &voc("nowhere.jpg", &[]));
        write(&ann.join("twin.xml"), &voc("gone.jpg", &[]));
        write(&ann.join("sub/g.xml"), &voc("g.jpg", &[("nomask", ["0", "0", "5", "5"])]));
        write(&ann.join("notes.md"), "not read");
        let labels = read_scene_labels(&ann, &photos, None).unwrap();
        let images: Vec<&str> = labels.images.keys().map(String::as_str).collect();
        assert_eq!(images, ["a.png", "b.jpeg", "sub/g.jpg"]);
        assert_eq!(labels.images["a.png"], [scene(10.5, 20.0, 50.5, 60.0, "with_mask")]);
        assert!(labels.images["b.jpeg"].is_empty(), "listed without faces");
        assert_eq!(labels.images["sub/g.jpg"], [scene(0.0, 0.0, 5.0, 5.0, "nomask")]);
        let got = skips(&labels);
        assert_eq!(got.len(), 8, "{got:#?}");
        assert_skip(&labels, "a.xml:17", "without_mask: box 50,20,10,60 is inverted");
        assert_skip(&labels, "a.xml:28", "mask_weared_incorrect: ymin: \"abc\" is not a number");
        assert_skip(&labels, "a.xml:39", "with_mask: box 1,2,1,4 is empty");
        assert_skip(&labels, "c.xml", "<filename>: image path \"../c.jpg\" is not a plain relative path");
        assert_skip(&labels, "d.xml", "\"/etc/passwd\" is not a plain relative path");
        assert_skip(&labels, "e.xml", "not XML");
        assert_skip(&labels, "f.xml", "no photo for it (looked for");
        assert_skip(&labels, "twin.xml", "more than one photo it could be (twin.jpg, twin.png)");

        // One file by itself: named by its file name.
        let one = read_scene_labels(&ann.join("a.xml"), &photos, None).unwrap();
        assert_eq!(one.images["a.png"], labels.images["a.png"]);
        assert_eq!(one.skipped[0].0, "a.xml:17");
        let e = read_scene_labels(&ann.join("c.xml"), &photos, None).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "c.xml: <filename>: image path \"../c.jpg\" is not a plain relative path inside the photos folder"
            ),
            "{e}"
        );
        let e = read_scene_labels(&ann.join("e.xml"), &photos, None).unwrap_err().to_string();
        assert!(e.contains("not XML"), "{e}");
    }

    /// What `mask --labels` would label: two classes, two images.
    fn mask_label_set() -> LabelSet {
        let face = |face, class_id, bbox| FaceBox { face, class_id, bbox, landmarks: None };
        LabelSet {
            classes: vec!["correct".into(), "unmasked".into()],
            images: vec![
                LabelledImage {
                    output: "correct/p/a.jpg".into(),
                    width: 200,
                    height: 100,
                    faces: vec![face(0, 0, [0.0, 20.5, 60.25, 100.0]), face(1, 0, [150.0, 10.0, 190.0, 60.0])],
                },
                LabelledImage {
                    output: "unmasked/b.png".into(),
                    width: 40,
                    height: 40,
                    faces: vec![face(0, 1, [10.0, 10.0, 30.0, 30.0])],
                },
            ],
            left_out: Vec::new(),
        }
    }

    fn expected_mask_boxes() -> BTreeMap<String, Vec<SceneBox>> {
        BTreeMap::from([
            (
                "correct/p/a.jpg".to_string(),
                vec![scene(0.0, 20.5, 60.25, 100.0, "correct"), scene(150.0, 10.0, 190.0, 60.0, "correct")],
            ),
            ("unmasked/b.png".to_string(), vec![scene(10.0, 10.0, 30.0, 30.0, "unmasked")]),
        ])
    }

    #[test]
    fn coco_written_by_mask_reads_back() {
        let out = tempfile::tempdir().unwrap();
        let set = mask_label_set();
        for img in &set.images {
            photo(out.path(), &img.output, img.width, img.height);
        }
        let file = out.path().join("labels.coco.json");
        std::fs::write(&file, coco_bytes(&set).unwrap()).unwrap();
        let labels = read_scene_labels(&file, out.path(), None).unwrap();
        assert!(labels.skipped.is_empty(), "{:?}", labels.skipped);
        assert_eq!(labels.images, expected_mask_boxes());
    }

    #[test]
    fn coco_skips_unknown_ids_bad_boxes_and_outside_paths() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a.jpg", "empty.jpg"] {
            write(&dir.path().join(p), "");
        }
        let json = serde_json::json!({
            "images": [
                {"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                {"id": 2, "file_name": "../x.jpg"},
                {"id": 3, "file_name": "/etc/passwd"},
                {"id": 4, "file_name": "missing.jpg"},
                {"id": 5, "file_name": "empty.jpg"},
                {"id": 1, "file_name": "empty.jpg"},
            ],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20.5, 30, 40]},
                {"id": 2, "image_id": 1, "category_id": 9, "bbox": [10, 20, 30, 40]},
                {"id": 3, "image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 40]},
                {"id": 4, "image_id": 1, "category_id": 2, "bbox": [10, 20, 0, 40]},
                {"id": 5, "image_id": 1, "category_id": 2, "bbox": [10, 20, 30, -1]},
                {"id": 6, "image_id": 2, "category_id": 1, "bbox": [10, 20, 30, 40]},
                {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30]},
                {"id": 8, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 1},
                {"id": 9, "image_id": 1, "category_id": 2, "bbox": [1, 2, 3, "4"]},
            ],
            "categories": [{"id": 1, "name": "with_mask"}, {"id": 2, "name": "without_mask"}, {"id": 3}],
        });
        let file = dir.path().join("faces.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let labels = read_scene_labels(&file, dir.path(), None).unwrap();
        let images: Vec<&str> = labels.images.keys().map(String::as_str).collect();
        assert_eq!(images, ["a.jpg", "empty.jpg"]);
        assert_eq!(labels.images["a.jpg"], [scene(10.0, 20.5, 40.0, 60.5, "with_mask")]);
        let got = skips(&labels);
        let expected = [
            ("faces.json:categories[2]", "a category needs an `id` and a `name`"),
            (
                "faces.json:images[1]",
                "image path \"../x.jpg\" is not a plain relative path inside the photos folder (its boxes are not read)",
            ),
            (
                "faces.json:images[2]",
                "image path \"/etc/passwd\" is not a plain relative path inside the photos folder (its boxes are not read)",
            ),
            ("faces.json:images[5]", "id 1 is used by an earlier image"),
            ("faces.json:annotations[1]", "category_id 9: not in `categories`"),
            ("faces.json:annotations[2]", "image_id 7: no image has this id"),
            ("faces.json:annotations[3]", "box 10,20,10,60 is empty"),
            ("faces.json:annotations[4]", "box 10,20,40,19 is inverted: left must be under right and top under bottom"),
            ("faces.json:annotations[6]", "`bbox` is not [x, y, width, height]"),
            ("faces.json:annotations[7]", "iscrowd 1: a crowd region, not one face"),
            ("faces.json:annotations[8]", "bbox height: \"4\" is not a number"),
        ];
        assert_eq!(got.iter().filter(|(a, _)| a.ends_with("images[3]")).count(), 1);
        assert_skip(&labels, "faces.json:images[3]", "missing.jpg: no such photo in");
        let got: Vec<(&str, &str)> = got.into_iter().filter(|(a, _)| !a.ends_with("images[3]")).collect();
        assert_eq!(got, expected);
        let e = read_scene_labels(&file, &dir.path().join("a.jpg"), None).unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
        std::fs::write(&file, r#"{"images": []}"#).unwrap();
        let e = read_scene_labels(&file, dir.path(), None).unwrap_err().to_string();
        assert!(e.ends_with("faces.json: no `categories` list: not a COCO file"), "{e}");
    }

    #[test]
    fn yolo_written_by_mask_reads_back() {
        let out = tempfile::tempdir().unwrap();
        let set = mask_label_set();
        for img in &set.images {
            photo(out.path(), &img.output, img.width, img.height);
        }
        for (rel, text) in yolo_files(&set).files {
            write(&out.path().join(rel), &text);
        }
        write(&out.path().join("labels.yolo.yaml"), &yolo_yaml(&set));
        let labels = read_scene_labels(out.path(), out.path(), None).unwrap();
        assert!(labels.skipped.is_empty(), "{:?}", labels.skipped);
        let expected = expected_mask_boxes();
        assert_eq!(labels.images.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
        for (image, boxes) in &expected {
            let got = &labels.images[image];
            assert_eq!(got.len(), boxes.len());
            for (g, e) in got.iter().zip(boxes) {
                assert_eq!(g.label, e.label);
                let (g, e) = (g.bbox, e.bbox);
                let near = [(g.left, e.left), (g.top, e.top), (g.right, e.right), (g.bottom, e.bottom)];
                assert!(near.iter().all(|(a, b)| (a - b).abs() < 1e-3), "{image}: {g:?} vs {e:?}");
            }
        }
    }

    #[test]
    fn yolo_class_names_come_from_any_names_file() {
        let cases: [(&str, &str); 9] = [
            ("labels/data.yaml", "path: ../x\nnames: ['with mask', \"no \\\"mask\\\"\", c]  # three\nnc: 3\n"),
            ("labels/data.yaml", "train: images\nnames:\n  - 'with mask'\n  - no \"mask\"  # x\n  - c\nval: images\n"),
            ("labels/data.yaml", "names:\n- 'with mask'\n- 'no \"mask\"'\n- c\n"),
            ("labels/custom.yml", "nc: 3\nnames:\n  2: c\n  0: with mask\n  1: 'no \"mask\"'\n"),
            ("labels/data.yaml", "names: {0: with mask,\n  1: 'no \"mask\"', 2: c}\n"),
            ("labels/classes.txt", "with mask\nno \"mask\"\nc\n"),
            ("labels/obj.names", "with mask\r\nno \"mask\"\r\nc\r\n"),
            ("data.yaml", "names: [with mask, 'no \"mask\"', c]\n"),
            ("labels/data.yaml", "names: [with mask, 'no \"mask\"', c,]\n"),
        ];
        for (file, text) in cases {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            photo(root, "photos/a.png", 100, 50);
            write(&root.join("labels/a.txt"), "1 0.5 0.5 0.2 0.4\n");
            write(&root.join(file), text);
            let labels = read_scene_labels(&root.join("labels"), &root.join("photos"), Some(SceneLabelsFormat::Yolo))
                .unwrap_or_else(|e| panic!("{file}: {text}: {e}"));
            assert!(labels.skipped.is_empty(), "{file}: {:?}", labels.skipped);
            assert_eq!(labels.images["a.png"], [scene(40.0, 15.0, 60.0, 35.0, "no \"mask\"")], "{file}: {text}");
        }
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("labels/a.txt"), "0 0.5 0.5 0.2 0.4\n");
        let e = read_scene_labels(&dir.path().join("labels"), dir.path(), None).unwrap_err().to_string();
        for looked in ["labels/labels.yolo.yaml", "labels/data.yaml", "labels/classes.txt", "/obj.names", "/data.yaml"]
        {
            assert!(e.contains(looked), "{looked}: {e}");
        }
        write(&dir.path().join("labels/data.yaml"), "names: nope\n");
        let e = read_scene_labels(&dir.path().join("labels"), dir.path(), None).unwrap_err().to_string();
        assert!(e.ends_with("data.yaml: names: \"nope\" is not a list or a map of class names"), "{e}");
    }

    #[test]
    fn yolo_finds_photos_in_the_ultralytics_layout_and_skips_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        photo(root, "images/train/a.png", 200, 100);
        photo(root, "images/train/b.jpg", 10, 10);
        write(&root.join("data.yaml"), "path: .\ntrain: images/train\nnames:\n  0: mask\n  1: nomask\n");
        let lines = "0 0.5 0.5 0.1 0.2\n\n0 0.5 0.5\n0 1.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n0 0.5 0.5 0 0.1\nx 0.5 0.5 0.1 0.1\n1 0.25 0.25 0.5 0.5 \n";
        write(&root.join("labels/train/a.txt"), lines);
        write(&root.join("labels/train/b.txt"), "");
        write(&root.join("labels/train/orphan.txt"), "0 0.5 0.5 0.1 0.1\n");
        let labels = read_scene_labels(&root.join("labels"), root, None).unwrap();
        let a = vec![scene(90.0, 40.0, 110.0, 60.0, "mask"), scene(0.0, 0.0, 100.0, 50.0, "nomask")];
        assert_eq!(labels.images.keys().collect::<Vec<_>>(), ["images/train/a.png", "images/train/b.jpg"]);
        assert_eq!(labels.images["images/train/a.png"], a);
        assert!(labels.images["images/train/b.jpg"].is_empty());
        let got = skips(&labels);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_skip(&labels, "train/a.txt:3", "3 fields: expected 5");
        assert_skip(&labels, "train/a.txt:4", "cx: \"1.5\" is not a number within 0..1");
        assert_skip(&labels, "train/a.txt:5", "class 5: not in ");
        assert_skip(&labels, "train/a.txt:6", "is empty");
        assert_skip(&labels, "train/a.txt:7", "class \"x\" is not a class number");
        assert_skip(&labels, "train/orphan.txt", "no photo for it (looked for");
        // The photos folder being the images folder: the same boxes, keyed from there.
        let labels = read_scene_labels(&root.join("labels"), &root.join("images"), None).unwrap();
        assert_eq!(labels.images["train/a.png"], a);
        // The data set's root as the labels folder.
        let labels = read_scene_labels(root, root, Some(SceneLabelsFormat::Yolo)).unwrap();
        assert_eq!(labels.images["images/train/a.png"], a);
    }

    #[test]
    fn csv_rows_with_quoted_labels_and_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a.jpg", "b.jpg", "sub/c.png"] {
            write(&dir.path().join("photos").join(p), "");
        }
        let text = "\u{feff}path,xmin,ymin,xmax,ymax,label,score\n\
                    a.jpg,1,2,30.5,40,mask,1\n\
                    ./sub/c.png,0,0,10,10,\"mask, surgical\",1\n\
                    b.jpg,,,,,,\n\
                    ../x.jpg,1,2,3,4,mask,1\n\
                    /etc/passwd,1,2,3,4,mask,1\n\
                    missing.jpg,1,2,3,4,mask,1\n\
                    a.jpg,NaN,2,3,4,mask,1\n\
                    a.jpg,5,2,3,4,mask,1\n\
                    a.jpg,1,2,3\n\
                    a.jpg,1,2,3,4,,1\n";
        let file = dir.path().join("boxes.csv");
        write(&file, text);
        let labels = read_scene_labels(&file, &dir.path().join("photos"), None).unwrap();
        assert_eq!(labels.images["a.jpg"], [scene(1.0, 2.0, 30.5, 40.0, "mask")]);
        assert_eq!(labels.images["sub/c.png"], [scene(0.0, 0.0, 10.0, 10.0, "mask, surgical")]);
        assert!(labels.images["b.jpg"].is_empty());
        assert_eq!(labels.images.len(), 3);
        let got = skips(&labels);
        assert_eq!(
            got[0],
            ("boxes.csv:5", "image path \"../x.jpg\" is not a plain relative path inside the photos folder")
        );
        assert_eq!(got[1].0, "boxes.csv:6");
        assert!(got[2].0 == "boxes.csv:7" && got[2].1.starts_with("missing.jpg: no such photo in"), "{got:?}");
        assert_eq!(got[3], ("boxes.csv:8", "xmin: \"NaN\" is not a finite number"));
        assert_eq!(got[4].0, "boxes.csv:9");
        assert!(got[4].1.ends_with("is inverted: left must be under right and top under bottom"), "{got:?}");
        assert_eq!(got[5], ("boxes.csv:10", "4 fields, the header has 7"));
        assert_eq!(got[6], ("boxes.csv:11", "empty label"));
        assert_eq!(got.len(), 7);
        write(&file, "file,x,y\n");
        let e = read_scene_labels(&file, dir.path(), None).unwrap_err().to_string();
        assert!(e.ends_with("no `image` column: expected image,xmin,ymin,xmax,ymax,label"), "{e}");
    }

    #[test]
    fn formats_are_told_by_name_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let of_folder = |files: &[&str]| {
            let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
            SceneLabelsFormat::of_folder(d, &files).map_err(|e| e.to_string())
        };
        assert_eq!(of_folder(&["a.xml", "b.XML", "x.jpg"]), Ok(SceneLabelsFormat::Voc));
        assert_eq!(of_folder(&["a.txt", "sub/b.txt", "x.yaml"]), Ok(SceneLabelsFormat::Yolo));
        assert!(of_folder(&["a.xml", "b.txt"]).unwrap_err().contains("both .xml (1) and .txt (1)"));
        assert!(of_folder(&["a.jpg"]).unwrap_err().contains("no .xml (Pascal VOC) or .txt (YOLO)"));
        let of_file = |f: &str| SceneLabelsFormat::of_file(Path::new(f)).map_err(|e| e.to_string());
        assert_eq!(of_file("a.json"), Ok(SceneLabelsFormat::Coco));
        assert_eq!(of_file("a.XML"), Ok(SceneLabelsFormat::Voc));
        assert_eq!(of_file("a.csv"), Ok(SceneLabelsFormat::Csv));
        assert!(of_file("a.txt").unwrap_err().contains("give the folder"));
        assert!(of_file("a.dat").unwrap_err().contains("say which format"));
        for f in SceneLabelsFormat::ALL {
            assert_eq!(f.name().parse::<SceneLabelsFormat>(), Ok(f));
        }
        assert_eq!(SceneLabelsFormat::ALL.map(SceneLabelsFormat::name), ["voc", "coco", "yolo", "csv"]);
        assert!("kitti".parse::<SceneLabelsFormat>().is_err());
        write(&d.join("boxes.csv"), "image,xmin,ymin,xmax,ymax,label\n");
        let e = read_scene_labels(d, d, Some(SceneLabelsFormat::Csv)).unwrap_err().to_string();
        assert!(e.contains("a folder: csv labels are one file"), "{e}");
        let e = read_scene_labels(&d.join("boxes.csv"), d, Some(SceneLabelsFormat::Yolo)).unwrap_err().to_string();
        assert!(e.contains("give the folder"), "{e}");
    }
}
