//! Where faces come from. The pipeline itself finds no faces: a
//! [`FaceSource`] (the binary's dlib detector, and later a landmarks file or
//! a crop mode) returns them for each decoded image.

use crate::options::FaceFilter;
use image::RgbImage;
use maskforge_face::Face;
use std::path::Path;

/// The faces of one image to mask, and what was left out.
#[derive(Clone, Debug, Default)]
pub struct FoundFaces {
    /// Largest first (see [`FaceFilter::select`]), with their 68 landmarks in
    /// the image's pixel coordinates.
    pub faces: Vec<Face>,
    /// Faces skipped as smaller than [`FaceFilter::min_face`].
    pub small: usize,
    /// All faces found, kept or not.
    pub found: usize,
}

/// Finds the faces of a decoded image. An error is a one-line reason: the
/// image is reported as a failure and the run goes on. A run clones one
/// source per worker thread.
pub trait FaceSource {
    /// The faces of `image` (decoded from `path`, `rel` relative to the
    /// input root) that pass `filter`.
    fn find_faces(&mut self, image: &RgbImage, path: &Path, rel: &str, filter: FaceFilter) -> Result<FoundFaces, String>;
}

impl<F> FaceSource for F
where
    F: FnMut(&RgbImage, &Path, &str, FaceFilter) -> Result<FoundFaces, String>,
{
    fn find_faces(&mut self, image: &RgbImage, path: &Path, rel: &str, filter: FaceFilter) -> Result<FoundFaces, String> {
        self(image, path, rel, filter)
    }
}
