//! A trained model for inference, rebuilt from a checkpoint alone: class
//! probabilities for face crops (`maskforge predict`) or for prepared
//! batches (occlusion maps).

use crate::checkpoint;
use crate::criterion::Criterion;
use crate::device::configure;
use crate::error::Result;
use crate::model::Classifier;
use maskforge_train_core::augment::{eval_transform, Normalize};
use maskforge_train_core::{ModelMeta, Tta};
use std::path::Path;
use tch::{Device, Tensor};

/// A model for inference, rebuilt from a checkpoint.
pub struct Predictor {
    /// The classifier, with the checkpoint's weights.
    pub model: Classifier,
    /// The checkpoint's description: classes, input size, normalisation.
    pub meta: ModelMeta,
    /// Whether inference runs under autocast (mixed precision); on for CUDA.
    pub amp: bool,
    /// Test-time augmentation (`--tta`; none when loaded).
    pub tta: Tta,
}

impl Predictor {
    /// Rebuilds the model of the checkpoint at `path` on `device`.
    pub fn load(path: &Path, device: Device) -> Result<Predictor> {
        configure(device);
        let (model, meta, _) = checkpoint::load_checkpoint(path, device)?;
        Ok(Predictor { model, meta, amp: device.is_cuda(), tta: Tta::None })
    }

    /// The input normalisation the model was trained with.
    pub fn normalize(&self) -> Normalize {
        Normalize { mean: self.meta.mean, std: self.meta.std }
    }

    /// Class probabilities for each image (evaluation transform).
    pub fn classify(&self, images: &[image::RgbImage]) -> Vec<Vec<f32>> {
        if images.is_empty() {
            return Vec::new();
        }
        let s = self.meta.img_size;
        let plane = 3 * (s as usize) * (s as usize);
        let norm = self.normalize();
        let mut buf = vec![0f32; images.len() * plane];
        for (img, out) in images.iter().zip(buf.chunks_mut(plane)) {
            eval_transform(img, s, &norm, out);
        }
        let xs = Tensor::from_slice(&buf).view([images.len() as i64, 3, s as i64, s as i64]);
        self.probabilities(&xs)
    }

    /// Class probabilities for a normalised batch `[B, 3, S, S]`.
    pub fn probabilities(&self, xs: &Tensor) -> Vec<Vec<f32>> {
        let criterion = Criterion::new(self.meta.loss, None, self.model.device());
        let probs = tch::no_grad(|| {
            let xs = xs.to_device(self.model.device());
            let logits = tch::autocast(self.amp, || self.model.infer(&xs, self.tta));
            criterion.probabilities(&logits).to_device(Device::Cpu)
        });
        Vec::<Vec<f32>>::try_from(&probs).unwrap_or_default()
    }
}
