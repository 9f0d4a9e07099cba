//! Where faces come from. The pipeline itself finds no faces: a
//! [`FaceSource`] (dlib's, in `maskforge_landmarks::mask_faces`, or
//! [`FileFaces`] read from a landmarks file) returns them for each decoded
//! image.

use crate::options::FaceFilter;
use image::RgbImage;
use maskforge_contracts::FaceFile;
use maskforge_face::{Face, FaceMethod};
use maskforge_imageio::Failure;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The faces of one image to mask, and what was left out.
#[derive(Clone, Debug)]
pub struct FoundFaces {
    /// Largest first (see [`FaceFilter::select`]), with their 68 landmarks in
    /// the image's pixel coordinates.
    pub faces: Vec<Face>,
    /// Faces skipped as smaller than [`FaceFilter::min_face`].
    pub small: usize,
    /// All faces found, kept or not.
    pub found: usize,
    /// How they were found (`annotations.csv`'s `method`).
    pub method: FaceMethod,
}

/// Finds the faces of a decoded image. An error is a one-line reason: the
/// image is reported as a failure and the run goes on. A run clones one
/// source per worker thread.
pub trait FaceSource {
    /// The faces of `image` (decoded from `path`, `rel` relative to the
    /// input root) that pass `filter`.
    fn find_faces(
        &mut self,
        image: &RgbImage,
        path: &Path,
        rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String>;
}

impl<F> FaceSource for F
where
    F: FnMut(&RgbImage, &Path, &str, FaceFilter) -> Result<FoundFaces, String>,
{
    fn find_faces(
        &mut self,
        image: &RgbImage,
        path: &Path,
        rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        self(image, path, rel, filter)
    }
}

/// Faces read from a file (`mask --landmarks`), looked up by the image's
/// path relative to the input root; landmarks and boxes are used as given.
/// An image without a face in the file is a failure and is not masked.
#[derive(Clone, Debug)]
pub struct FileFaces {
    by_path: Arc<HashMap<String, Vec<Face>>>,
    /// The file as failures name it.
    name: String,
}

impl FileFaces {
    /// Indexes the faces of `file` (named `name` in failures) under the
    /// paths of `images` (all images of the run, before sharding). Also
    /// returns the file's bad rows and one failure per row (or FFHQ entry)
    /// that matches no image.
    pub fn new(file: &FaceFile, name: &str, images: &HashSet<String>) -> (FileFaces, Vec<Failure>) {
        let mut by_path: HashMap<String, Vec<Face>> = HashMap::new();
        let mut matched: HashSet<&str> = HashSet::new();
        for entry in &file.faces {
            for path in entry.paths.iter().filter(|p| images.contains(*p)) {
                by_path.entry(path.clone()).or_default().push(entry.face);
                matched.insert(&entry.location);
            }
        }
        let mut failures = file.problems.clone();
        let mut reported: HashSet<&str> = HashSet::new();
        for entry in file.faces.iter().filter(|e| !matched.contains(e.location.as_str())) {
            if reported.insert(&entry.location) {
                let paths = entry.paths.join(" or ");
                failures.push(Failure::new(entry.location.clone(), format!("no image {paths} in the input folder")));
            }
        }
        (FileFaces { by_path: Arc::new(by_path), name: name.to_string() }, failures)
    }
}

/// Why a face's numbers cannot be in this image's pixels: a point or the
/// box farther than one image size outside it, or landmarks collapsed.
fn implausible(face: &Face, width: u32, height: u32) -> Option<String> {
    let (w, h) = (width as f32, height as f32);
    let inside = |x: f32, y: f32| (-w..=2.0 * w).contains(&x) && (-h..=2.0 * h).contains(&y);
    let b = face.bbox;
    if !inside(b.left, b.top) || !inside(b.right, b.bottom) {
        return Some(format!(
            "box {},{},{},{} lies outside the {width}x{height} image",
            b.left, b.top, b.right, b.bottom
        ));
    }
    if let Some(p) = face.landmarks.points().iter().find(|p| !inside(p.x, p.y)) {
        return Some(format!("landmark {},{} lies outside the {width}x{height} image", p.x, p.y));
    }
    let bounds = face.landmarks.bounds();
    (bounds.width() < 1.0 || bounds.height() < 1.0).then(|| "landmarks collapse to a line or a point".to_string())
}

impl FaceSource for FileFaces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        _path: &Path,
        rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        let faces = self.by_path.get(rel).ok_or_else(|| format!("no face for this image in {}", self.name))?;
        for (i, face) in faces.iter().enumerate() {
            if let Some(why) = implausible(face, image.width(), image.height()) {
                return Err(format!("face {i} in {}: {why}", self.name));
            }
        }
        let selected = filter.select_by(faces.clone(), |f| f.bbox);
        Ok(FoundFaces {
            faces: selected.kept,
            small: selected.small,
            found: selected.found,
            method: FaceMethod::Landmarks,
        })
    }
}
