//! The face-detector flags that detect, mask and predict share
//! ([`DetectorOpts`]), and the detector they name: dlib's own, or MTCNN or
//! CenterFace through libtorch in a build with it.

use crate::common;
use anyhow::Result;
use clap::Args;
use maskforge_imageio::LoadLimits;
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use std::path::PathBuf;

/// Where a detector runs (MTCNN and CenterFace: dlib's run on the CPU).
#[cfg(feature = "tch")]
pub use tch::Device;
/// Where a detector runs: the CPU in a build without libtorch.
#[cfg(not(feature = "tch"))]
#[derive(Clone, Copy, Debug)]
pub enum Device {
    Cpu,
}

/// Options that pick and tune the face detector; shared by detect, mask and predict.
#[derive(Args, Clone, Debug)]
pub struct DetectorOpts {
    /// Face detector [default: hog; predict and mask --faces auto: centerface]. With centerface
    /// and mtcnn, dlib's 68 points are predicted in the box the detected eyes place, and mask
    /// draws only on faces whose points pass a check.
    #[arg(long, value_enum)]
    pub detector: Option<DetectorKind>,
    /// Detect on a copy whose longest side is at most this many pixels (0 = full size)
    /// [default: the smallest copy on which a face of --min-face px still fills the
    /// detector's window (HOG 80 px, CNN 40 px, CenterFace 16 px), never above full size; mtcnn:
    /// full size, its image pyramid starts at --min-face]. Landmarks are always predicted on the
    /// full image.
    #[arg(long, value_name = "PX")]
    pub detect_max_side: Option<u32>,
    /// The smallest face wanted (shorter side of its box, pixels) [default: hog 80, cnn 40,
    /// mtcnn and centerface 24]: sets the detection scale, so faces of this size fill the
    /// detector's window (HOG 80 px, CNN 40 px, CenterFace 16 px): raise it for large photos of
    /// large faces (--min-face 160 detects at half size with hog); below the window the photo is
    /// upsampled (at most 4x a side, and to 16 MP for hog, 4 MP for cnn and centerface);
    /// mtcnn starts its image pyramid there. mask also leaves smaller faces bare (there the
    /// default is 40, mtcnn and centerface 24).
    #[arg(long)]
    pub min_face: Option<u32>,
    /// mtcnn and centerface only: the face probability a box needs (above 0 and below 1)
    /// [default: mtcnn 0.7 (O-Net's threshold), centerface 0.5]. Higher drops more false boxes
    /// and some real faces (on real crowd photos mtcnn's 0.9 drops about a third of the boxes
    /// matching no labelled face and 5% of the masked faces found).
    #[arg(long, value_name = "P", value_parser = parse_min_score)]
    pub min_score: Option<f32>,
    /// Upsample the detection image this many times (finds faces under ~80 px; 4x cost each).
    #[arg(long, default_value_t = 0)]
    pub upsample: u32,
    /// Folder with the dlib models [default: $MASKFORGE_MODELS, else the project's models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Skip images with more pixels than this (checked from the header, before decoding);
    /// at most 1000000000.
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
}

/// `--min-score`: a probability strictly between 0 and 1.
fn parse_min_score(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("{s:?}: must be a number above 0 and below 1")),
    }
}

impl DetectorOpts {
    /// The detector asked for, else the command's `default`, as the flags tune it.
    pub fn config(&self, default: DetectorKind) -> DetectorConfig {
        let mut cfg = DetectorConfig::new(common::models_dir(self.models.clone()));
        cfg.kind = self.detector.unwrap_or(default);
        cfg.detect_max_side = self.detect_max_side;
        cfg.min_face = self.min_face.unwrap_or(cfg.kind.default_min_face());
        cfg.min_score = self.min_score;
        cfg.upsample = self.upsample;
        cfg.model_cache = common::cache_dir().map(|dir| dir.join("models"));
        cfg
    }

    /// The detector `config` names with its models loaded: dlib's own, or
    /// MTCNN or CenterFace (through libtorch, on `device`) with dlib's
    /// landmark model.
    pub fn build(config: &DetectorConfig, #[allow(unused_variables)] device: Device) -> Result<Detector> {
        if config.min_score.is_some() && !config.kind.needs_libtorch() {
            anyhow::bail!("--min-score applies to --detector mtcnn and centerface only");
        }
        #[cfg(feature = "tch")]
        if config.kind == DetectorKind::CenterFace {
            use maskforge_centerface::{CenterFace, DEFAULT_THRESHOLD};
            let threshold = config.min_score.unwrap_or(DEFAULT_THRESHOLD);
            let centerface = CenterFace::load(&config.models_dir, device, threshold)?;
            return Ok(Detector::with_box_detector(config, std::sync::Arc::new(centerface))?);
        }
        #[cfg(feature = "tch")]
        if config.kind == DetectorKind::Mtcnn {
            use maskforge_mtcnn::{Mtcnn, MtcnnParams};
            let mut params = MtcnnParams::default();
            if let Some(s) = config.min_score {
                params.thresholds[2] = s;
            }
            let mtcnn = Mtcnn::load(&config.models_dir, device, params)?;
            return Ok(Detector::with_box_detector(config, std::sync::Arc::new(mtcnn))?);
        }
        Ok(Detector::new(config)?)
    }

    pub fn limits(&self) -> LoadLimits {
        LoadLimits { max_pixels: self.max_pixels }
    }
}
