//! Evaluation passes, shared by training (val each epoch), `maskforge eval`
//! and the final report, so that all three compute the same numbers the
//! same way. The results and `predictions.csv` are tensor-free
//! (`maskforge_train_core::eval`, re-exported here).

use crate::criterion::Criterion;
use crate::data::{items, BatchTensors, Item, Loader, Transform};
use crate::device::{device_name, parse_device};
use crate::error::{torch, Result, TrainError};
use crate::model::Classifier;
use crate::predictor::{Ensemble, Predictor};
use maskforge_imageio::{check_disjoint, Failure, LoadLimits, Output};
use maskforge_metrics::ConfusionMatrix;
use maskforge_train_core::config::check_loader_flags;
use maskforge_train_core::eval::{check_class_names, combine};
use maskforge_train_core::manifest::{read_manifest_for, resolve_root};
use maskforge_train_core::{EvalReport, Event, Phase, Tta};
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind};

pub use maskforge_train_core::eval::{write_predictions_csv, EvalOptions, EvalOutcome, Prediction};

/// Evaluates `model` (inference mode, no gradients, `tta`) on `items` in order.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Classifier,
    criterion: &Criterion,
    loader: &Loader,
    items: Arc<Vec<Item>>,
    batch_size: usize,
    amp: bool,
    tta: Tta,
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
    for batch in loader.batches(Arc::clone(&items), order, batch_size, Transform::Eval) {
        done += batch.len() + batch.failures.len();
        failures.extend(batch.failures.iter().cloned());
        if batch.is_empty() {
            on_event(Event::Progress { images: done });
            continue;
        }
        let (batch_loss, batch_weight, preds, probs) = tch::no_grad(|| {
            let xs = batch.tensor().to_device(device);
            let ys = batch.label_tensor().to_device(device);
            let logits = tch::autocast(amp, || model.infer(&xs, tta));
            let (l, w) = criterion.per_sample(&logits, &ys);
            let loss = (&l * &w).to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            let weight = w.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            let preds = criterion.predict(&logits).to_device(Device::Cpu);
            let probs = criterion.probabilities(&logits).to_device(Device::Cpu);
            (loss, weight, preds, probs)
        });
        loss_sum += batch_loss;
        weight_sum += batch_weight;
        let preds: Vec<i64> = Vec::<i64>::try_from(&preds).map_err(torch)?;
        let probs: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(&probs).map_err(torch)?;
        for (k, &index) in batch.indices.iter().enumerate() {
            let label = batch.labels[k] as usize;
            let predicted = preds[k] as usize;
            confusion.add(label, predicted).map_err(|e| TrainError::Config(format!("{}: {e}", items[index].rel)))?;
            predictions.push(Prediction { index, label, predicted, probabilities: probs[k].clone() });
        }
        on_event(Event::Progress { images: done });
    }
    let images = predictions.len();
    let loss = if weight_sum > 0.0 { loss_sum / weight_sum } else { f64::NAN };
    Ok(EvalOutcome { loss, confusion, images, failures, predictions })
}

/// `maskforge eval`: evaluates a checkpoint (or an ensemble) on a manifest
/// ([`eval_manifest`]) and writes `report.txt`, `report.json` and
/// `predictions.csv` into `out`, which must not lie in the manifest or the
/// dataset root (checked, with the loader settings, before the model is
/// loaded). Returns the report.
pub fn eval_into(opts: &EvalOptions, out: &Path, on_event: &mut dyn FnMut(Event)) -> Result<EvalReport> {
    check_loader_flags(opts.batch_size, opts.workers, opts.max_pixels)?;
    let root = resolve_root(opts.manifest_dir(), opts.root.as_deref())?;
    check_disjoint(&[&opts.manifest, &root], &[Output::new(out, "output folder")])?;
    let (report, preds) = eval_manifest(opts, on_event)?;
    std::fs::create_dir_all(out).map_err(|e| TrainError::Config(format!("cannot create {}: {e}", out.display())))?;
    report.write(out)?;
    let classes: Vec<String> = report.classification.classes.iter().map(|c| c.name.clone()).collect();
    write_predictions_csv(&out.join("predictions.csv"), &classes, &preds)?;
    Ok(report)
}

/// Evaluates a checkpoint, or several as an ensemble (each at its own input
/// size and normalisation, the mean of their probabilities: see
/// [`combine`]), on any manifest.
pub fn eval_manifest(
    opts: &EvalOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<(EvalReport, Vec<(Item, Prediction)>)> {
    check_loader_flags(opts.batch_size, opts.workers, opts.max_pixels)?;
    let device = parse_device(&opts.device)?;
    let ensemble = Ensemble::load(&opts.models, device)?;
    let first = &ensemble.members()[0];
    let classes = ensemble.classes().to_vec();
    let dir = opts.manifest_dir();
    let root = resolve_root(dir, opts.root.as_deref())?;
    check_class_names(&opts.manifest, &classes, dir)?;
    // Rows whose `class` names another class than the model has at their
    // index refuse the manifest: the label spaces do not match.
    let manifest = read_manifest_for(&opts.manifest, &classes, "the model's classes")?;
    for f in &manifest.skipped {
        on_event(Event::Skipped { path: &f.path, reason: &f.reason });
    }
    let all = Arc::new(items(&manifest, &root));
    if all.is_empty() {
        return Err(TrainError::NoImages {
            what: opts.manifest.display().to_string(),
            skipped: manifest.skipped.len(),
        });
    }
    let mut outcomes = Vec::with_capacity(ensemble.members().len());
    for member in ensemble.members() {
        outcomes.push(evaluate_member(member, opts, Arc::clone(&all), on_event)?);
    }
    let out = combine(outcomes, first.meta.class_weights.as_deref(), classes.len())?;
    for (i, reason) in &out.failures {
        on_event(Event::Skipped { path: &all[*i].rel, reason });
    }
    if out.images == 0 {
        return Err(TrainError::NoImages { what: opts.manifest.display().to_string(), skipped: out.failures.len() });
    }
    let mut skipped: Vec<Failure> = manifest.skipped.clone();
    skipped.extend(out.failures.iter().map(|(i, r)| Failure::new(all[*i].rel.clone(), r.clone())));
    let split = opts.manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let single = ensemble.single().map(|p| p.meta.epoch);
    let mut report =
        EvalReport::new(&first.path, &opts.manifest, &split, single, &classes, &out, skipped, &device_name(device));
    report.tta = opts.tta;
    if single.is_none() {
        report.ensemble = ensemble.members().iter().map(|m| m.path.display().to_string()).collect();
    }
    let preds = out.predictions.into_iter().map(|p| (all[p.index].clone(), p)).collect();
    Ok((report, preds))
}

/// One model's pass over `all`, at its own input size and normalisation,
/// with its own criterion (for the loss).
fn evaluate_member(
    member: &Predictor,
    opts: &EvalOptions,
    all: Arc<Vec<Item>>,
    on_event: &mut dyn FnMut(Event),
) -> Result<EvalOutcome> {
    let meta = &member.meta;
    let loader =
        Loader::new(opts.workers, meta.img_size, member.normalize(), LoadLimits { max_pixels: opts.max_pixels }, 4)
            .map_err(TrainError::io(&member.path))?;
    let criterion = Criterion::new(meta.loss, meta.class_weights.as_deref(), member.model.device());
    on_event(Event::PhaseStart { phase: Phase::Val, epoch: meta.epoch, epochs: meta.epoch, images: all.len() });
    let n = meta.classes.len();
    let out = evaluate(&member.model, &criterion, &loader, all, opts.batch_size, member.amp, opts.tta, n, on_event);
    on_event(Event::PhaseEnd);
    out
}
