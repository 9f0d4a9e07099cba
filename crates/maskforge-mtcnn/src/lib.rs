//! MTCNN face detection (Zhang et al. 2016) through libtorch: a thin tch
//! adapter over facenet-pytorch's published weights, no Python at run time.
//!
//! * Three cascaded networks ([`nets`]): P-Net scans an image pyramid, R-Net
//!   and O-Net re-score and refine the candidates, O-Net also gives five
//!   points (eyes, nose, mouth corners).
//! * The box arithmetic between them is tensor-free ([`stages`]) and follows
//!   facenet-pytorch's `detect_face`, so the weights see the inputs they
//!   were calibrated on.
//! * Measured on real crowd photos (`cargo xtask bench faces`) it finds
//!   masked and small faces that dlib's HOG and MMOD detectors miss; dlib's
//!   68 points are then predicted in the box its eyes place
//!   ([`maskforge_face::fit::box_from_eyes`]), through [`BoxDetector`].

pub mod nets;
pub mod stages;

use image::RgbImage;
use maskforge_face::detector::{BoxDetector, DetectedBox};
use maskforge_face::{BBox, Point};
use nets::{Net, NETS};
use stages::{
    crop_window, level_candidates, level_size, nms, nms_indices, pyramid_scales, regress, square, Candidate, Overlap,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Kind, TchError, Tensor};

/// The largest weight file read (the biggest, O-Net's, is 1.6 MB).
const MAX_WEIGHT_BYTES: u64 = 64 << 20;
/// Pyramid levels at most (a 4000 px photo with 12 px faces needs about 16).
const MAX_LEVELS: usize = 24;
/// Crops per R-Net / O-Net batch: bounds memory on photos with thousands
/// of candidates.
const BATCH: usize = 512;

/// Why the MTCNN networks could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum MtcnnError {
    /// One of the three weight files is not in the models folder.
    #[error("model file {} not found: run `cargo xtask setup`, or point --models / MASKFORGE_MODELS at a folder holding it", path.display())]
    ModelMissing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A weight file exists but could not be read or does not fit its network.
    #[error("model file {}: {message}", path.display())]
    ModelLoad {
        /// The weight file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// libtorch failed while running a network.
    #[error("libtorch failed in MTCNN: {0}")]
    Torch(#[from] TchError),
}

/// MTCNN's tuning knobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MtcnnParams {
    /// Face-probability thresholds of P-Net, R-Net and O-Net
    /// (facenet-pytorch's defaults: 0.6, 0.7, 0.7).
    pub thresholds: [f32; 3],
    /// The largest pyramid level, in pixels: a huge photo with a small
    /// `min_face` starts its pyramid lower (its smallest faces are missed)
    /// instead of allocating gigabytes.
    pub max_level_pixels: u64,
}

impl Default for MtcnnParams {
    fn default() -> Self {
        MtcnnParams { thresholds: [0.6, 0.7, 0.7], max_level_pixels: 40_000_000 }
    }
}

/// A face MTCNN found, in full-image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MtcnnFace {
    /// The face box after O-Net's regression (MTCNN's framing: its side is
    /// about [`DLIB_PER_MTCNN_SIDE`] times smaller than dlib's).
    pub bbox: BBox,
    /// O-Net's face probability, in `[0, 1]`.
    pub score: f32,
    /// Eyes, nose, mouth corners; the subject's right eye (image left) first.
    pub points: [Point; 5],
}

/// The three networks, loaded once and shared by every worker thread.
#[derive(Clone)]
pub struct Mtcnn {
    nets: Arc<[Net; 3]>,
    device: Device,
    params: MtcnnParams,
}

/// dlib's box side over MTCNN's (geometric mean of width and height) for
/// the same face: 1.008 (sd 0.12) on 74 faces of real crowd photos that
/// both found. `--min-face` speaks in dlib's sizes.
pub const DLIB_PER_MTCNN_SIDE: f32 = 1.008;

impl Mtcnn {
    /// Loads and checks the three weight files from `models_dir`.
    pub fn load(models_dir: &Path, device: Device, params: MtcnnParams) -> Result<Mtcnn, MtcnnError> {
        let mut nets = Vec::with_capacity(3);
        for (file, spec) in NETS {
            let path = models_dir.join(file);
            if !path.is_file() {
                return Err(MtcnnError::ModelMissing { path });
            }
            let load_err = |message: String| MtcnnError::ModelLoad { path: path.clone(), message };
            let bytes = maskforge_imageio::read_regular(&path, MAX_WEIGHT_BYTES, "MTCNN weights")
                .map_err(|e| load_err(e.to_string()))?;
            nets.push(Net::from_checkpoint(&bytes, spec, device).map_err(load_err)?);
        }
        let nets: [Net; 3] = nets.try_into().unwrap_or_else(|_| unreachable!("three files, three nets"));
        Ok(Mtcnn { nets: Arc::new(nets), device, params })
    }

    /// The tuning knobs the detector was loaded with.
    pub fn params(&self) -> &MtcnnParams {
        &self.params
    }

    /// Every face of at least about `min_face` px (MTCNN's own box side),
    /// strongest first.
    pub fn detect_faces(&self, img: &RgbImage, min_face: f32) -> Result<Vec<MtcnnFace>, MtcnnError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        tch::no_grad(|| {
            let image = Tensor::f_from_slice(img.as_raw())?
                .f_reshape([1, h as i64, w as i64, 3])?
                .f_permute([0, 3, 1, 2])?
                .f_to_kind(Kind::Float)?
                .f_to_device(self.device)?;
            let boxes = self.proposals(&image, w, h, min_face)?;
            let boxes = self.refine(&image, w, h, boxes)?;
            self.output(&image, w, h, boxes)
        })
    }

    /// Stage 1: P-Net over the pyramid; squared, regressed proposals.
    fn proposals(&self, image: &Tensor, w: u32, h: u32, min_face: f32) -> Result<Vec<Candidate>, MtcnnError> {
        let mut all = Vec::new();
        let max_scale = (self.params.max_level_pixels as f32 / (w as f32 * h as f32)).sqrt();
        for scale in pyramid_scales(w.min(h), min_face, MAX_LEVELS).into_iter().filter(|&s| s <= max_scale) {
            let (lw, lh) = level_size(w, h, scale);
            let level = normalise(&image.f_adaptive_avg_pool2d([lh, lw])?)?;
            let (reg, prob) = self.nets[0].pnet(&level)?;
            let (map_h, map_w) = (prob.size()[1] as usize, prob.size()[2] as usize);
            let found =
                level_candidates(&to_vec(&prob)?, &to_vec(&reg)?, map_w, map_h, scale, self.params.thresholds[0]);
            all.extend(nms(found, 0.5, Overlap::Union));
        }
        Ok(nms(all, 0.7, Overlap::Union).iter().map(|c| square(&regress(c, false))).collect())
    }

    /// Stage 2: R-Net re-scores 24×24 crops; survivors regressed, squared.
    fn refine(&self, image: &Tensor, w: u32, h: u32, boxes: Vec<Candidate>) -> Result<Vec<Candidate>, MtcnnError> {
        let mut kept = Vec::new();
        for chunk in boxes.chunks(BATCH) {
            let Some((cands, crops)) = crops(image, chunk, w, h, 24)? else { continue };
            let (reg, prob) = self.nets[1].rnet(&crops)?;
            let (reg, prob) = (to_vec(&reg)?, to_vec(&prob)?);
            for (i, c) in cands.iter().enumerate() {
                if prob[i] > self.params.thresholds[1] {
                    kept.push(Candidate { score: prob[i], reg: offsets(&reg, i), ..*c });
                }
            }
        }
        Ok(nms(kept, 0.7, Overlap::Union).iter().map(|c| square(&regress(c, true))).collect())
    }

    /// Stage 3: O-Net scores 48×48 crops and places the five points.
    fn output(&self, image: &Tensor, w: u32, h: u32, boxes: Vec<Candidate>) -> Result<Vec<MtcnnFace>, MtcnnError> {
        let mut faces = Vec::new();
        for chunk in boxes.chunks(BATCH) {
            let Some((cands, crops)) = crops(image, chunk, w, h, 48)? else { continue };
            let (reg, pts, prob) = self.nets[2].onet(&crops)?;
            let (reg, pts, prob) = (to_vec(&reg)?, to_vec(&pts)?, to_vec(&prob)?);
            for (i, c) in cands.iter().enumerate() {
                if prob[i] <= self.params.thresholds[2] {
                    continue;
                }
                let (bw, bh) = (c.x2 - c.x1 + 1.0, c.y2 - c.y1 + 1.0);
                let p = &pts[i * 10..i * 10 + 10];
                let points = std::array::from_fn(|k| Point::new(bw * p[k] + c.x1 - 1.0, bh * p[5 + k] + c.y1 - 1.0));
                faces.push((Candidate { score: prob[i], reg: offsets(&reg, i), ..*c }, points));
            }
        }
        let regressed: Vec<Candidate> = faces.iter().map(|(c, _)| regress(c, true)).collect();
        let mut out: Vec<MtcnnFace> = nms_indices(&regressed, 0.7, Overlap::Min)
            .into_iter()
            .map(|i| {
                let c = &regressed[i];
                MtcnnFace { bbox: BBox::new(c.x1, c.y1, c.x2, c.y2), score: c.score, points: faces[i].1 }
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    }
}

impl BoxDetector for Mtcnn {
    fn detect(&self, img: &RgbImage, min_face: f32) -> Result<Vec<DetectedBox>, String> {
        let faces = self.detect_faces(img, min_face / DLIB_PER_MTCNN_SIDE).map_err(|e| e.to_string())?;
        let eyes = |f: &MtcnnFace| [f.points[0], f.points[1]];
        Ok(faces.iter().map(|f| DetectedBox::from_detector(f.bbox, f.score, eyes(f), DLIB_PER_MTCNN_SIDE)).collect())
    }
}

/// `(x - 127.5) / 128`, MTCNN's input scaling.
fn normalise(x: &Tensor) -> Result<Tensor, TchError> {
    x.f_sub_scalar(127.5)?.f_mul_scalar(0.0078125)
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, TchError> {
    let flat = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_flatten(0, -1)?;
    Vec::<f32>::try_from(&flat)
}

fn offsets(reg: &[f32], i: usize) -> [f32; 4] {
    [reg[4 * i], reg[4 * i + 1], reg[4 * i + 2], reg[4 * i + 3]]
}

/// The candidates that keep pixels in the image, and their crops resized
/// to `size`×`size` (area averaging) and normalised, as one batch.
fn crops(
    image: &Tensor,
    boxes: &[Candidate],
    w: u32,
    h: u32,
    size: i64,
) -> Result<Option<(Vec<Candidate>, Tensor)>, TchError> {
    let mut kept = Vec::new();
    let mut tensors = Vec::new();
    for c in boxes {
        if let Some((x0, y0, x1, y1)) = crop_window(c, w, h) {
            let crop = image.f_narrow(2, y0, y1 - y0)?.f_narrow(3, x0, x1 - x0)?;
            tensors.push(crop.f_adaptive_avg_pool2d([size, size])?);
            kept.push(*c);
        }
    }
    if tensors.is_empty() {
        return Ok(None);
    }
    Ok(Some((kept, normalise(&Tensor::f_cat(&tensors, 0)?)?)))
}

/// Gives libtorch's intra-op pool the cores that `workers` threads of our
/// own leave free (`cores / workers`, at least one): each worker runs its
/// own detection, and N workers × all cores of libtorch threads each slow
/// down instead of speeding up. Returns the thread count set.
pub fn share_cores_with_workers(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per_worker = (cores / workers.max(1)).max(1);
    tch::set_num_threads(per_worker as i32);
    per_worker
}
