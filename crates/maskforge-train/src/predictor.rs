//! A trained model for inference, rebuilt from a checkpoint alone: class
//! probabilities for face crops (`maskforge predict`) or for prepared
//! batches (occlusion maps); and an [`Ensemble`] of such models.

use crate::checkpoint;
use crate::criterion::Criterion;
use crate::device::configure;
use crate::error::{Result, TrainError};
use crate::model::Classifier;
use maskforge_train_core::augment::{eval_transform, Normalize};
use maskforge_train_core::{ModelMeta, Tta};
use std::path::{Path, PathBuf};
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
    /// The checkpoint it was loaded from.
    pub path: PathBuf,
}

impl Predictor {
    /// Rebuilds the model of the checkpoint at `path` on `device`.
    pub fn load(path: &Path, device: Device) -> Result<Predictor> {
        configure(device);
        let (model, meta, _) = checkpoint::load_checkpoint(path, device)?;
        Ok(Predictor { model, meta, amp: device.is_cuda(), tta: Tta::None, path: path.to_path_buf() })
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

/// One or more models that classify together (`predict --model A --model
/// B ...`): each face's class probabilities are the mean of the models',
/// each model seeing the crop at its own input size and normalisation. All
/// must have the same classes in the same order.
pub struct Ensemble {
    members: Vec<Predictor>,
}

impl Ensemble {
    /// Loads every checkpoint of `paths` (at least one) on `device`.
    pub fn load(paths: &[PathBuf], device: Device) -> Result<Ensemble> {
        let mut members: Vec<Predictor> = Vec::with_capacity(paths.len());
        for path in paths {
            let p = Predictor::load(path, device)?;
            if let Some(first) = members.first() {
                if p.meta.classes != first.meta.classes {
                    return Err(TrainError::Config(format!(
                        "{}: classes {:?} differ from {}'s {:?}: an ensemble's models must share their classes, in order",
                        path.display(),
                        p.meta.classes,
                        paths[0].display(),
                        first.meta.classes
                    )));
                }
            }
            members.push(p);
        }
        Ensemble::new(members)
    }

    /// The ensemble of `members` (at least one, with the same classes).
    pub fn new(members: Vec<Predictor>) -> Result<Ensemble> {
        if members.is_empty() {
            return Err(TrainError::Config("an ensemble needs at least one model".into()));
        }
        Ok(Ensemble { members })
    }

    /// The class names, by index (every member's).
    pub fn classes(&self) -> &[String] {
        &self.members[0].meta.classes
    }

    /// The only model, or `None` for an ensemble of several.
    pub fn single(&self) -> Option<&Predictor> {
        match self.members.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The members, in the order given.
    pub fn members(&self) -> &[Predictor] {
        &self.members
    }

    /// What `predict_settings.json` records of the models: each one's
    /// checkpoint and description, and the test-time augmentation.
    pub fn record(&self) -> serde_json::Value {
        let models: Vec<serde_json::Value> = self
            .members
            .iter()
            .map(|m| serde_json::json!({"path": m.path.display().to_string(), "model": m.meta}))
            .collect();
        let device = crate::device::device_name(self.members[0].model.device());
        serde_json::json!({"models": models, "tta": self.members[0].tta.as_str(), "device": device})
    }

    /// Sets every member's test-time augmentation.
    pub fn set_tta(&mut self, tta: Tta) {
        for m in &mut self.members {
            m.tta = tta;
        }
    }

    /// Class probabilities for each image: the mean of the members'.
    pub fn classify(&self, images: &[image::RgbImage]) -> Vec<Vec<f32>> {
        let mut sum = self.members[0].classify(images);
        for m in &self.members[1..] {
            let probs = m.classify(images);
            if probs.len() != sum.len() {
                return Vec::new();
            }
            for (acc, p) in sum.iter_mut().zip(probs) {
                for (a, b) in acc.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
        let n = self.members.len() as f32;
        for row in &mut sum {
            for v in row.iter_mut() {
                *v /= n;
            }
        }
        sum
    }
}

/// An untrained ResNet18 on the CPU as a predictor (seeded, so its answers
/// differ by seed), for tests.
#[cfg(test)]
pub(crate) fn untrained(classes: &[&str], seed: i64, img_size: u32) -> Predictor {
    use maskforge_train_core::{Arch, LossKind};
    tch::manual_seed(seed);
    let model = Classifier::new(Arch::Resnet18, classes.len() as i64, 0.0, Device::Cpu);
    let meta = ModelMeta {
        format: checkpoint::FORMAT.into(),
        arch: Arch::Resnet18,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        loss: LossKind::Ce,
        num_outputs: classes.len() as i64,
        img_size,
        mean: [0.5; 3],
        std: [0.25; 3],
        dropout: 0.0,
        class_weights: None,
        epoch: 1,
        val_loss: None,
        val_accuracy: None,
    };
    Predictor { model, meta, amp: false, tta: Tta::None, path: PathBuf::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::save_checkpoint;
    use image::{Rgb, RgbImage};
    use std::collections::HashMap;

    /// An untrained ResNet18 saved as a checkpoint.
    fn saved(dir: &Path, name: &str, classes: &[&str], seed: i64, img_size: u32) -> PathBuf {
        let p = untrained(classes, seed, img_size);
        let path = dir.join(format!("{name}.safetensors"));
        save_checkpoint(&path, &p.model, &p.meta, Vec::new(), HashMap::new()).unwrap();
        path
    }

    #[test]
    fn an_ensemble_averages_its_models_probabilities_and_refuses_other_classes() {
        let dir = tempfile::tempdir().unwrap();
        let classes = ["masked", "unmasked"];
        // Two input sizes: each model sees the crop at its own.
        let (a, b) = (saved(dir.path(), "a", &classes, 1, 32), saved(dir.path(), "b", &classes, 2, 48));
        let images: Vec<RgbImage> =
            (0..3u8).map(|k| RgbImage::from_fn(40, 40, |x, y| Rgb([x as u8 * 6, y as u8 * 6, 60 * k]))).collect();
        let one = |p: &PathBuf| Ensemble::load(std::slice::from_ref(p), Device::Cpu).unwrap();
        let (pa, pb) = (one(&a).classify(&images), one(&b).classify(&images));
        assert!(one(&a).single().is_some());
        let both = Ensemble::load(&[a.clone(), b], Device::Cpu).unwrap();
        assert!(both.single().is_none());
        assert_eq!(both.classes(), classes);
        let mean = both.classify(&images);
        assert_eq!(mean.len(), 3);
        let mut apart = 0.0f32;
        for ((m, x), y) in mean.iter().zip(&pa).zip(&pb) {
            for k in 0..2 {
                assert!((m[k] - (x[k] + y[k]) / 2.0).abs() < 1e-6, "{m:?} {x:?} {y:?}");
                apart = apart.max((x[k] - y[k]).abs());
            }
        }
        assert!(apart > 1e-4, "the two models answer alike, so the mean shows nothing");
        let mut both = both;
        both.set_tta(Tta::Flip);
        let record = both.record();
        assert_eq!(record["models"].as_array().unwrap().len(), 2);
        assert!(record["models"][1]["path"].as_str().unwrap().ends_with("b.safetensors"), "{record}");
        assert_eq!(record["models"][1]["model"]["img_size"], 48);
        assert_eq!((&record["tta"], &record["device"]), (&"flip".into(), &"cpu".into()));

        let other = saved(dir.path(), "c", &["correct", "unmasked"], 3, 32);
        let err = Ensemble::load(&[a, other], Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("c.safetensors") && err.contains("share their classes"), "{err}");
        assert!(Ensemble::new(Vec::new()).is_err());
    }
}
