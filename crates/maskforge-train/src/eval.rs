//! Loss functions and evaluation passes, shared by training (val each
//! epoch), `maskforge eval` and the final report, so that all three compute
//! the same numbers the same way.

use crate::checkpoint;
use crate::data::{Item, Loader};
use crate::device::{configure, device_name, parse_device};
use crate::error::{Result, TrainError};
use crate::manifest::{read_manifest_for, resolve_root};
use crate::model::Classifier;
use crate::report::EvalReport;
use crate::train::{items, Event, LossKind, Phase};
use maskforge_imageio::{Failure, LoadLimits};
use maskforge_metrics::ConfusionMatrix;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The loss of a run, with optional per-class weights.
///
/// Weighted losses are normalised as PyTorch's weighted `CrossEntropyLoss`
/// does: `Σ wᵢ·lᵢ / Σ wᵢ` with `wᵢ` the weight of sample i's class. The same
/// rule is used for BCE (per-sample weights by class), so that both losses
/// mean the same with `--class-weights`.
pub struct Criterion {
    pub kind: LossKind,
    weights: Option<Tensor>,
}

impl Criterion {
    pub fn new(kind: LossKind, class_weights: Option<&[f32]>, device: Device) -> Self {
        Criterion { kind, weights: class_weights.map(|w| Tensor::from_slice(w).to_device(device)) }
    }

    /// Per-sample losses and weights, both `[B]` float32.
    pub fn per_sample(&self, logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        let logits = logits.to_kind(Kind::Float);
        let losses = match self.kind {
            LossKind::Ce => logits.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::None, -100, 0.0),
            LossKind::Bce => {
                let target = labels.to_kind(Kind::Float);
                logits.squeeze_dim(1).binary_cross_entropy_with_logits::<Tensor>(&target, None, None, tch::Reduction::None)
            }
        };
        let weights = match &self.weights {
            Some(w) => w.index_select(0, labels),
            None => losses.ones_like(),
        };
        (losses, weights)
    }

    /// Predicted class index per sample.
    pub fn predict(&self, logits: &Tensor) -> Tensor {
        match self.kind {
            LossKind::Ce => logits.argmax(1, false),
            // sigmoid(x) >= 0.5  ⇔  x >= 0
            LossKind::Bce => logits.squeeze_dim(1).ge(0.0).to_kind(Kind::Int64),
        }
    }

    /// Class probabilities `[B, classes]`; for BCE `[1 − σ(x), σ(x)]`.
    pub fn probabilities(&self, logits: &Tensor) -> Tensor {
        let logits = logits.to_kind(Kind::Float);
        match self.kind {
            LossKind::Ce => logits.softmax(1, Kind::Float),
            LossKind::Bce => {
                let p = logits.sigmoid();
                Tensor::cat(&[1.0 - &p, p], 1)
            }
        }
    }
}

/// One evaluated image.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub index: usize,
    pub label: usize,
    pub predicted: usize,
    pub probabilities: Vec<f32>,
}

/// The result of an evaluation pass.
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    /// Mean loss over the images (weighted as the criterion says).
    pub loss: f64,
    pub confusion: ConfusionMatrix,
    pub images: usize,
    /// Images that could not be loaded: (dataset index, reason).
    pub failures: Vec<(usize, String)>,
    pub predictions: Vec<Prediction>,
}

/// Evaluates `model` (inference mode, no gradients) on `items` in order.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Classifier,
    criterion: &Criterion,
    loader: &Loader,
    items: Arc<Vec<Item>>,
    batch_size: usize,
    amp: bool,
    n_classes: usize,
    on_event: &mut dyn FnMut(Event),
) -> Result<EvalOutcome> {
    let device = model.device();
    let order: Vec<usize> = (0..items.len()).collect();
    let mut confusion = ConfusionMatrix::new(n_classes);
    let mut loss_sum = 0.0f64;
    let mut weight_sum = 0.0f64;
    let mut failures = Vec::new();
    let mut predictions = Vec::with_capacity(items.len());
    let mut done = 0usize;
    for batch in loader.batches(Arc::clone(&items), order, batch_size, crate::data::Transform::Eval) {
        done += batch.len() + batch.failures.len();
        failures.extend(batch.failures.iter().cloned());
        if batch.is_empty() {
            on_event(Event::Progress { images: done });
            continue;
        }
        let (batch_loss, batch_weight, preds, probs) = tch::no_grad(|| {
            let xs = batch.tensor().to_device(device);
            let ys = batch.label_tensor().to_device(device);
            let logits = tch::autocast(amp, || model.forward_t(&xs, false));
            let (l, w) = criterion.per_sample(&logits, &ys);
            let loss = (&l * &w).to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            let weight = w.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            let preds = criterion.predict(&logits).to_device(Device::Cpu);
            let probs = criterion.probabilities(&logits).to_device(Device::Cpu);
            (loss, weight, preds, probs)
        });
        loss_sum += batch_loss;
        weight_sum += batch_weight;
        let preds: Vec<i64> = Vec::<i64>::try_from(&preds).map_err(TrainError::Torch)?;
        let probs: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(&probs).map_err(TrainError::Torch)?;
        for (k, &index) in batch.indices.iter().enumerate() {
            let label = batch.labels[k] as usize;
            let predicted = preds[k] as usize;
            confusion
                .add(label, predicted)
                .map_err(|e| TrainError::Config(format!("{}: {e}", items[index].rel)))?;
            predictions.push(Prediction { index, label, predicted, probabilities: probs[k].clone() });
        }
        on_event(Event::Progress { images: done });
    }
    let images = predictions.len();
    let loss = if weight_sum > 0.0 { loss_sum / weight_sum } else { f64::NAN };
    Ok(EvalOutcome { loss, confusion, images, failures, predictions })
}

/// `maskforge eval` options.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub model: PathBuf,
    pub manifest: PathBuf,
    /// Dataset root; `None`: `split.json` beside the manifest.
    pub root: Option<PathBuf>,
    pub batch_size: usize,
    pub workers: usize,
    pub device: String,
    pub max_pixels: u64,
}

/// Evaluates a checkpoint on any manifest.
pub fn eval_manifest(opts: &EvalOptions, on_event: &mut dyn FnMut(Event)) -> Result<(EvalReport, Vec<(Item, Prediction)>)> {
    crate::train::check_loader_flags(opts.batch_size, opts.workers, opts.max_pixels)?;
    let device = parse_device(&opts.device)?;
    configure(device);
    let amp = device.is_cuda();
    let (model, meta, _) = checkpoint::load_checkpoint(&opts.model, device)?;
    let dir = opts.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let root = resolve_root(dir, opts.root.as_deref())?;
    check_class_names(&opts.manifest, &meta.classes, dir)?;
    // Rows whose `class` names another class than the model has at their
    // index refuse the manifest: the label spaces do not match.
    let manifest = read_manifest_for(&opts.manifest, &meta.classes, "the model's classes")?;
    for f in &manifest.skipped {
        on_event(Event::Skipped { path: &f.path, reason: &f.reason });
    }
    let all = Arc::new(items(&manifest, &root));
    if all.is_empty() {
        return Err(TrainError::NoImages { what: opts.manifest.display().to_string(), skipped: manifest.skipped.len() });
    }
    let norm = crate::augment::Normalize { mean: meta.mean, std: meta.std };
    let loader = Loader::new(opts.workers, meta.img_size, norm, LoadLimits { max_pixels: opts.max_pixels }, 4)
        .map_err(TrainError::io(&opts.model))?;
    let criterion = Criterion::new(meta.loss, meta.class_weights.as_deref(), device);
    on_event(Event::PhaseStart { phase: Phase::Val, epoch: meta.epoch, epochs: meta.epoch, images: all.len() });
    let out = evaluate(&model, &criterion, &loader, Arc::clone(&all), opts.batch_size, amp, meta.classes.len(), on_event)?;
    on_event(Event::PhaseEnd);
    for (i, reason) in &out.failures {
        on_event(Event::Skipped { path: &all[*i].rel, reason });
    }
    if out.images == 0 {
        return Err(TrainError::NoImages { what: opts.manifest.display().to_string(), skipped: out.failures.len() });
    }
    let mut skipped: Vec<Failure> = manifest.skipped.clone();
    skipped.extend(out.failures.iter().map(|(i, r)| Failure::new(all[*i].rel.clone(), r.clone())));
    let split = opts.manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let report =
        EvalReport::new(&opts.model, &opts.manifest, &split, Some(meta.epoch), &meta.classes, &out, skipped, &device_name(device));
    let preds = out.predictions.into_iter().map(|p| (all[p.index].clone(), p)).collect();
    Ok((report, preds))
}

/// When the manifest's folder has a `classes.csv`, its names must be the
/// model's, index for index: otherwise the numbers would silently compare
/// different classes.
fn check_class_names(manifest: &Path, model_classes: &[String], dir: &Path) -> Result<()> {
    let path = dir.join("classes.csv");
    if !path.is_file() {
        return Ok(());
    }
    let classes = crate::manifest::read_classes(&path)?;
    if classes != model_classes {
        return Err(TrainError::manifest(
            manifest,
            format!(
                "classes.csv beside it lists [{}], the model was trained on [{}]",
                classes.join(", "),
                model_classes.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Writes `predictions.csv`: path, true class, predicted class, confidence
/// and the probability of every class.
pub fn write_predictions_csv(path: &Path, classes: &[String], preds: &[(Item, Prediction)]) -> Result<()> {
    let err = |e: csv::Error| TrainError::Config(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path".to_string(), "class".into(), "predicted".into(), "confidence".into(), "correct".into()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header).map_err(err)?;
    for (item, p) in preds {
        let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
        let confidence = p.probabilities.get(p.predicted).copied().unwrap_or(f32::NAN);
        let mut row = vec![
            item.rel.clone(),
            name(p.label),
            name(p.predicted),
            format!("{confidence:.6}"),
            (p.label == p.predicted).to_string(),
        ];
        row.extend(p.probabilities.iter().map(|v| format!("{v:.6}")));
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| TrainError::Config(e.to_string()))?;
    maskforge_imageio::write_atomic(path, &bytes).map_err(TrainError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_losses_follow_pytorch() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let labels = Tensor::from_slice(&[0i64, 0]);
        let c = Criterion::new(LossKind::Ce, Some(&[3.0, 1.0]), Device::Cpu);
        let (l, w) = c.per_sample(&logits, &labels);
        // CE of [2,0] for class 0: ln(1 + e^-2); of [0,1]: ln(1 + e).
        let l0 = (1.0f64 + (-2.0f64).exp()).ln();
        let l1 = (1.0f64 + 1.0f64.exp()).ln();
        assert!((l.double_value(&[0]) - l0).abs() < 1e-6 && (l.double_value(&[1]) - l1).abs() < 1e-6);
        assert_eq!(w.double_value(&[0]), 3.0);
        let pred: Vec<i64> = Vec::try_from(&c.predict(&logits)).unwrap();
        assert_eq!(pred, [0, 1]);

        let b = Criterion::new(LossKind::Bce, None, Device::Cpu);
        let logit = Tensor::from_slice(&[0.0f32, 2.0]).view([2, 1]);
        let (l, _) = b.per_sample(&logit, &Tensor::from_slice(&[1i64, 0]));
        assert!((l.double_value(&[0]) - 2f64.ln()).abs() < 1e-6);
        assert!((l.double_value(&[1]) - (1.0 + 2f64.exp()).ln()).abs() < 1e-5);
        let p: Vec<Vec<f32>> = Vec::try_from(&b.probabilities(&logit)).unwrap();
        assert!((p[0][1] - 0.5).abs() < 1e-6 && (p[1][0] + p[1][1] - 1.0).abs() < 1e-6);
        let pred: Vec<i64> = Vec::try_from(&b.predict(&logit)).unwrap();
        assert_eq!(pred, [1, 1]);
    }
}
