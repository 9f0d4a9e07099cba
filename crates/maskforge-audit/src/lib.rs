//! `maskforge audit`: what besides the label tells the classes of a dataset
//! apart. A model learns whatever separates its classes; when the masked
//! images of a synthetic set were re-encoded and the unmasked ones were not,
//! the encoding is such a cue, and real masked photos (never re-encoded)
//! then look "unmasked" to the model.
//!
//! For every image: [`cues::file_cues`] (format, JPEG quality and
//! subsampling, EXIF/ICC, size) and [`cues::pixel_cues`] measured away from
//! the mask (for a `maskforge mask` folder: outside every mask polygon of the
//! photo, dilated, in both classes; for other datasets: the upper half, where
//! a face mask rarely is). Then [`probe`]: can nearest centroid on those cues
//! tell the classes apart, cross-validated, better than chance allows?
//!
//! Modules, in order (none uses one listed after it): `cues`, `probe`,
//! `items`, `report`, this file.

pub mod cues;
mod items;
pub mod probe;
mod report;

pub use items::{items, items_from_manifest, items_from_tree, Item};
pub use report::{Audit, ClassSummary, Verdict};

use cues::{FileCues, PixelCues};
use image::{GrayImage, RgbImage};
use maskforge_imageio::{Failure, LoadLimits};
use rayon::prelude::*;

/// Why an audit could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The manifest or `annotations.csv` could not be read or breaks its
    /// contract.
    #[error(transparent)]
    Contract(#[from] maskforge_contracts::ContractError),
    /// The dataset or root given is missing or unusable; the message says why.
    #[error("{0}")]
    Input(String),
}

/// Side of the copy pixel cues are measured on: detail at the scale a
/// classifier sees, and fast.
const MEASURE_SIDE: u32 = 256;

/// The cues of one image.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The image measured.
    pub item: Item,
    /// Cues of its bytes: encoding, metadata, size.
    pub file: FileCues,
    /// Cues of its pixels away from the mask.
    pub pixels: PixelCues,
}

/// Names of the probe's cues, in the order of [`Measured::features`].
pub const CUE_NAMES: [&str; 13] = [
    "jpeg",
    "png",
    "jpeg_quality",
    "subsampling",
    "exif",
    "icc",
    "width",
    "height",
    "brightness",
    "red_green",
    "blue_green",
    "sharpness",
    "noise",
];

impl Measured {
    /// The probe's cue vector (see [`CUE_NAMES`]).
    pub fn features(&self) -> Vec<f64> {
        let f = &self.file;
        let subsampling = match f.subsampling.as_deref() {
            None => 0.0,
            Some("grey") => 1.0,
            Some("4:4:4") => 2.0,
            Some("4:2:2") => 3.0,
            Some("4:2:0") => 4.0,
            Some(_) => 5.0,
        };
        let p = &self.pixels;
        vec![
            (f.format == "jpeg") as u8 as f64,
            (f.format == "png") as u8 as f64,
            f.jpeg_quality.unwrap_or(0.0) as f64,
            subsampling,
            f.exif as u8 as f64,
            f.icc as u8 as f64,
            f.width as f64,
            f.height as f64,
            p.brightness as f64,
            p.red_green as f64,
            p.blue_green as f64,
            p.sharpness as f64,
            p.noise as f64,
        ]
    }
}

/// Measures every item (in parallel) and probes the cues; items that cannot
/// be read or decoded are failures.
pub fn audit(items: Vec<Item>, limits: LoadLimits) -> Audit {
    let results: Vec<Result<Measured, Failure>> = items.into_par_iter().map(|item| measure(item, limits)).collect();
    let (mut measured, mut failures) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(m) => measured.push(m),
            Err(f) => failures.push(f),
        }
    }
    Audit::new(measured, failures)
}

fn measure(item: Item, limits: LoadLimits) -> Result<Measured, Failure> {
    let fail = |reason: String| Failure::new(item.rel.clone(), reason);
    let bytes = std::fs::read(&item.path).map_err(|e| fail(e.to_string()))?;
    let file = cues::file_cues(&bytes);
    let img = maskforge_imageio::load_rgb_from_bytes(&item.path, &bytes, limits).map_err(|e| fail(e.reason()))?;
    let (small, factor) = downscale(&img);
    let keep = keep_mask(&item, small.dimensions(), factor);
    let pixels = cues::pixel_cues(&small, &keep);
    Ok(Measured { item, file, pixels })
}

/// A copy at most [`MEASURE_SIDE`] on its longer side, and the factor applied.
fn downscale(img: &RgbImage) -> (RgbImage, f32) {
    let side = img.width().max(img.height());
    if side <= MEASURE_SIDE {
        return (img.clone(), 1.0);
    }
    let factor = MEASURE_SIDE as f32 / side as f32;
    let (w, h) = ((img.width() as f32 * factor).round().max(1.0), (img.height() as f32 * factor).round().max(1.0));
    (image::imageops::resize(img, w as u32, h as u32, image::imageops::FilterType::Triangle), factor)
}

/// Where pixel cues are measured: outside the item's mask polygons (each
/// grown by a sixth of its width and a JPEG block, for the contact shadow
/// and the blocks the mask touched), or the upper half without polygons.
fn keep_mask(item: &Item, (w, h): (u32, u32), factor: f32) -> GrayImage {
    if item.blank.is_empty() {
        return GrayImage::from_fn(w, h, |_, y| image::Luma([if y < h / 2 { 255 } else { 0 }]));
    }
    let mut keep = GrayImage::from_pixel(w, h, image::Luma([255]));
    for polygon in &item.blank {
        let xs = polygon.iter().map(|p| p.0 * factor);
        let ys = polygon.iter().map(|p| p.1 * factor);
        let (x0, x1) = xs.fold((f32::MAX, f32::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let (y0, y1) = ys.fold((f32::MAX, f32::MIN), |(a, b), y| (a.min(y), b.max(y)));
        let grow = (x1 - x0) / 6.0 + 8.0 * factor;
        // The polygon's box, grown: a mask polygon is nearly convex and the
        // box covers it whole; what it takes beyond is taken in both classes.
        let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
        for y in clamp(y0 - grow, h)..clamp(y1 + grow + 1.0, h) {
            for x in clamp(x0 - grow, w)..clamp(x1 + grow + 1.0, w) {
                keep.put_pixel(x, y, image::Luma([0]));
            }
        }
    }
    keep
}
