//! The images of a dataset with their class, group and mask polygons: an
//! ImageFolder tree (class = top folder; a `maskforge mask` folder's
//! `annotations.csv` gives groups and polygons) or a manifest under a root.

use crate::AuditError;
use maskforge_contracts::{read_annotations, read_manifest, AnnotationRow, ReadOptions};
use maskforge_imageio::{relative_string, walk_images, Failure};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One image to audit.
#[derive(Clone, Debug)]
pub struct Item {
    /// The image file to read.
    pub path: PathBuf,
    /// Relative to the dataset root, with `/`.
    pub rel: String,
    /// The class label: the top folder, or the manifest's label.
    pub class: String,
    /// Images of one group share a cross-validation fold (a source photo
    /// and everything made from it).
    pub group: String,
    /// Mask polygons of the photo (in the image's pixels) whose region is
    /// left out of the pixel cues, in every class alike.
    pub blank: Vec<Polygon>,
}

/// The images of `dataset`: an ImageFolder tree ([`items_from_tree`]), or a
/// manifest whose paths are relative to `root` ([`items_from_manifest`]).
pub fn items(dataset: &Path, root: Option<&Path>) -> Result<(Vec<Item>, Vec<Failure>), AuditError> {
    if !dataset.exists() {
        return Err(AuditError::Input(format!("{}: no such folder or manifest", dataset.display())));
    }
    if dataset.is_dir() {
        return items_from_tree(dataset);
    }
    let root = root.ok_or_else(|| {
        AuditError::Input(format!(
            "{}: a manifest needs --root, the folder its paths are relative to",
            dataset.display()
        ))
    })?;
    items_from_manifest(dataset, root)
}

/// The images under `root` in class folders (images at the top are not in
/// a class and are left out, as ImageFolder leaves them), with the walk's
/// failures.
pub fn items_from_tree(root: &Path) -> Result<(Vec<Item>, Vec<Failure>), AuditError> {
    if !root.is_dir() {
        return Err(AuditError::Input(format!("{}: not a folder", root.display())));
    }
    let rows = annotation_rows(root)?;
    let walk = walk_images(root, &[]);
    let items = walk
        .images
        .into_iter()
        .filter_map(|path| {
            let rel = relative_string(root, &path);
            let class = rel.split_once('/')?.0.to_string();
            Some(rows.item(path, rel, class))
        })
        .collect();
    Ok((items, walk.failures))
}

/// The images a manifest lists under `root` (its skipped rows are failures).
pub fn items_from_manifest(manifest: &Path, root: &Path) -> Result<(Vec<Item>, Vec<Failure>), AuditError> {
    let m = read_manifest(manifest, ReadOptions { classes: None })?;
    let rows = annotation_rows(root)?;
    let items = m
        .entries
        .into_iter()
        .map(|e| {
            let class = if e.class.is_empty() { e.class_index.to_string() } else { e.class.clone() };
            rows.item(e.path.under(root), e.path.as_str().to_string(), class)
        })
        .collect();
    Ok((items, m.skipped))
}

/// A mask polygon, in an output's pixels.
type Polygon = Vec<(f32, f32)>;

/// What `annotations.csv` says of each output: its source and the mask
/// polygons of its photo.
#[derive(Default)]
struct Rows {
    by_output: HashMap<String, Vec<AnnotationRow>>,
    /// `(source, face)` → polygons of every output of that face (all
    /// variants and draws: a crop and its twin share the crop's pixels).
    polygons: HashMap<(String, Option<usize>), Vec<Polygon>>,
}

fn annotation_rows(root: &Path) -> Result<Rows, AuditError> {
    let file = root.join("annotations.csv");
    let mut rows = Rows::default();
    if !file.is_file() {
        return Ok(rows);
    }
    for row in read_annotations(&file)? {
        let points = row.mask_polygon_points();
        if points.len() >= 3 {
            rows.polygons.entry((row.source.clone(), row.face)).or_default().push(points);
        }
        rows.by_output.entry(row.output.clone()).or_default().push(row);
    }
    Ok(rows)
}

impl Rows {
    fn item(&self, path: PathBuf, rel: String, class: String) -> Item {
        let Some(rows) = self.by_output.get(&rel) else {
            return Item { path, group: rel.clone(), rel, class, blank: Vec::new() };
        };
        let source = rows[0].source.clone();
        // A whole-image twin (no face) is blanked where any of its faces' masks are.
        let faces: Vec<Option<usize>> = if rows.iter().all(|r| r.face.is_none()) {
            self.polygons.keys().filter(|(s, _)| *s == source).map(|(_, f)| *f).collect()
        } else {
            rows.iter().map(|r| r.face).collect()
        };
        let mut blank = Vec::new();
        for face in faces {
            blank.extend(self.polygons.get(&(source.clone(), face)).into_iter().flatten().cloned());
        }
        Item { path, rel, class, group: source, blank }
    }
}
