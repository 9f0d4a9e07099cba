//! The training loop: manifests in, `runs/NAME/` out.
//!
//! Per epoch: a shuffled, augmented pass over `train.csv`, a pass over
//! `val.csv`, a row in `metrics.csv`, `curves.png` redrawn, the best
//! checkpoint by val loss kept (seed 000's early-stopping rule, stopping
//! after `patience` epochs without improvement) and `last.safetensors`
//! written with the optimiser and training state for `--resume`. At the
//! end the best checkpoint is evaluated on val into `report.json` /
//! `report.txt`.
//!
//! [`train`] reads as its steps: check the inputs ([`RunInputs::load`]),
//! start or restore the run ([`Run::start`]), train each epoch
//! ([`Run::epoch`]: [`Run::train_pass`], [`Run::val_pass`], [`Run::commit`])
//! and evaluate the best checkpoint ([`Run::finish`]).

use crate::checkpoint::{self, LoadMode, ModelMeta, FORMAT, TRAIN_STATE_KEY};
use crate::criterion::Criterion;
use crate::data::{shuffled, BatchTensors, Item, Loader, Transform};
use crate::device::{configure, device_name, parse_device, LIBTORCH_VERSION};
use crate::error::{Result, TrainError};
use crate::eval::{evaluate, EvalOutcome};
use crate::model::Classifier;
use crate::optim::{LossScaler, OptimConfig, Optimizer, Schedule};
use crate::resume::{self, LastCheckpoint};
use maskforge_imageio::{Failure, LoadLimits};
use maskforge_train_core::data::items;
use maskforge_train_core::datasets::RunInputs;
use maskforge_train_core::run::{
    fingerprint, write_curves, write_metrics_csv, write_run_config, Environment, RunConfigFile,
};
use maskforge_train_core::{EpochRow, EvalReport, Event, LossKind, Phase, TrainConfig, TrainState, TrainSummary, Tta};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Trains (or, with `resume`, continues) the run described by `cfg`.
///
/// An epoch is committed by writing `last.safetensors`; what follows it
/// (`best.safetensors`, `metrics.csv`, `curves.png` and, after the last
/// epoch, the report) is derived from that file alone, so `--resume` redoes
/// whatever a killed run left undone.
pub fn train(cfg: &TrainConfig, resume: bool, on_event: &mut dyn FnMut(Event)) -> Result<TrainSummary> {
    cfg.validate()?;
    if resume && !cfg.out.join("last.safetensors").is_file() {
        return Err(TrainError::NothingToResume { run: cfg.out.clone() });
    }
    let inputs = RunInputs::load(cfg, on_event)?;
    let device = parse_device(&cfg.device)?;
    configure(device);
    std::fs::create_dir_all(&cfg.out).map_err(TrainError::io(&cfg.out))?;
    resume::remove_stale_temp_files(&cfg.out, on_event);

    let (mut run, finished) = Run::start(cfg, inputs, device, resume, on_event)?;
    let epochs = if finished { 0..0 } else { run.state.epoch..cfg.epochs };
    for epoch in epochs {
        run.epoch(epoch, on_event)?;
        if run.state.stopped_early {
            let s = &run.state;
            on_event(Event::Info(format!(
                "early stop: val loss has not improved for {} epochs (best {:.4} at epoch {})",
                s.bad_epochs, s.best_val_loss, s.best_epoch
            )));
            break;
        }
    }
    run.finish()
}

/// A run in progress: what its epochs share.
struct Run<'a> {
    cfg: &'a TrainConfig,
    inputs: RunInputs,
    device: Device,
    /// Mixed precision (CUDA with `--amp`).
    amp: bool,
    /// Logits of the head: the class count, or 1 for `--loss bce`.
    num_outputs: i64,
    model: Classifier,
    opt: Optimizer,
    schedule: Schedule,
    /// The loss of every report (validation, the final test).
    criterion: Criterion,
    /// The loss the optimiser minimises: `criterion` against smoothed
    /// targets with `--label-smoothing`.
    train_criterion: Criterion,
    loader: Loader,
    train_items: Arc<Vec<Item>>,
    val_items: Arc<Vec<Item>>,
    state: TrainState,
    // Each bad image is reported once per run (resumes included), not once
    // per epoch.
    reported_train: HashSet<String>,
    reported_val: BTreeSet<usize>,
    warned_tiny_batch: bool,
}

/// The statistics of one epoch's training pass.
struct TrainPass {
    loss: f64,
    accuracy: f64,
    /// Images trained on.
    images: usize,
    /// Learning rate of the last step.
    lr: f64,
    seconds: f64,
}

impl<'a> Run<'a> {
    /// Builds the model and optimiser, from `last.safetensors` when
    /// `resume` (completing the outputs of its last epoch) and writes
    /// `config.json`. Also returns whether the run has no epoch left.
    fn start(
        cfg: &'a TrainConfig,
        inputs: RunInputs,
        device: Device,
        resume: bool,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<(Run<'a>, bool)> {
        let amp = cfg.amp && device.is_cuda();
        let num_outputs = if cfg.loss == LossKind::Bce { 1 } else { inputs.data.classes.len() as i64 };
        let (model, resumed) = build_model(cfg, device, num_outputs, resume, on_event)?;
        describe_model(cfg, &model, &inputs, device, amp, on_event);
        let mut opt = Optimizer::new(optim_config(cfg), model.trainable());
        let (state, finished) = match resumed {
            Some(last) => restore(cfg, &model, &mut opt, last, on_event)?,
            None => (TrainState::fresh(), false),
        };
        let limits = LoadLimits { max_pixels: cfg.max_pixels };
        let loader = Loader::new(cfg.workers, cfg.img_size, inputs.norm, limits, cfg.prefetch)
            .map_err(TrainError::io(&cfg.out))?;
        if !finished {
            let resumed_at = if resume { vec![state.epoch] } else { Vec::new() };
            let data = &inputs.data;
            let run_config = RunConfigFile {
                config: cfg.clone(),
                dataset_root: data.root.clone(),
                classes: data.classes.clone(),
                manifests: vec![fingerprint(&data.train), fingerprint(&data.val)],
                normalization: inputs.norm,
                class_weights: inputs.class_weights.clone(),
                environment: environment(device, amp, loader.threads()),
                resumed_at,
            };
            write_run_config(&cfg.out.join("config.json"), run_config, resume, on_event)?;
        }
        let criterion = Criterion::new(cfg.loss, inputs.class_weights.as_deref(), device);
        let train_criterion =
            Criterion::smoothed(cfg.loss, inputs.class_weights.as_deref(), cfg.label_smoothing, device);
        let train_items = Arc::new(items(&inputs.data.train, &inputs.data.root));
        let val_items = Arc::new(items(&inputs.data.val, &inputs.data.root));
        let run = Run {
            cfg,
            device,
            amp,
            num_outputs,
            opt,
            schedule: schedule(cfg),
            criterion,
            train_criterion,
            loader,
            train_items,
            val_items,
            reported_train: state.skipped_train.iter().map(|f| f.path.clone()).collect(),
            reported_val: BTreeSet::new(),
            warned_tiny_batch: false,
            state,
            model,
            inputs,
        };
        Ok((run, finished))
    }

    /// Trains epoch `epoch` (0-based), validates and commits it.
    fn epoch(&mut self, epoch: usize, on_event: &mut dyn FnMut(Event)) -> Result<()> {
        let started = Instant::now();
        let pass = self.train_pass(epoch, on_event)?;
        let val = self.val_pass(epoch, on_event)?;
        let row = self.commit(epoch, started, &pass, &val)?;
        on_event(Event::EpochEnd(&row));
        Ok(())
    }

    /// One shuffled, augmented pass over the training images.
    fn train_pass(&mut self, epoch: usize, on_event: &mut dyn FnMut(Event)) -> Result<TrainPass> {
        let cfg = self.cfg;
        let started = Instant::now();
        // Dropout draws and shuffles depend on (seed, epoch) only, so a
        // resumed run continues exactly as the uninterrupted one would.
        tch::manual_seed(cfg.seed.wrapping_add(epoch as u64) as i64);
        let order = shuffled(self.train_items.len(), cfg.seed, epoch as u64);
        let transform = if cfg.augment.is_none() {
            Transform::Eval
        } else {
            Transform::Train { augment: cfg.augment.clone(), seed: cfg.seed, epoch: epoch as u64 }
        };
        let steps_per_epoch = self.train_items.len().div_ceil(cfg.batch_size);
        on_event(Event::PhaseStart {
            phase: Phase::Train,
            epoch: epoch + 1,
            epochs: cfg.epochs,
            images: self.train_items.len(),
        });
        let mut loss_sum = Tensor::zeros([], (Kind::Double, self.device));
        let mut weight_sum = Tensor::zeros([], (Kind::Double, self.device));
        let mut correct = Tensor::zeros([], (Kind::Int64, self.device));
        let mut divergence = DivergenceWatch::new(self.device);
        let mut seen = 0usize;
        let mut lr = self.schedule.lr(epoch, 0, steps_per_epoch);
        for (step, batch) in
            self.loader.batches(Arc::clone(&self.train_items), order, cfg.batch_size, transform).enumerate()
        {
            self.report_train_failures(&batch.failures, on_event);
            // Batch norm cannot train on a single image (one value per
            // channel at the last stage); such a remainder batch is skipped.
            if batch.len() < 2 && !self.model.is_frozen() {
                if !batch.is_empty() && !self.warned_tiny_batch {
                    self.warned_tiny_batch = true;
                    on_event(Event::Info("a batch of 1 image was skipped (batch norm needs 2 or more)".into()));
                }
                continue;
            }
            lr = self.schedule.lr(epoch, step, steps_per_epoch);
            let xs = batch.tensor().to_device(self.device);
            let ys = batch.label_tensor().to_device(self.device);
            let criterion = &self.train_criterion;
            let out = train_step(&self.model, criterion, &mut self.opt, &mut self.state.scaler, &xs, &ys, lr, self.amp);
            divergence.observe(step, &out.weighted);
            tch::no_grad(|| {
                loss_sum += out.weighted.to_kind(Kind::Double);
                weight_sum += out.weight_sum.to_kind(Kind::Double);
                correct += self.criterion.predict(&out.logits).eq_tensor(&ys).sum(Kind::Int64);
            });
            seen += batch.len();
            on_event(Event::Progress { images: seen + batch.failures.len() });
        }
        on_event(Event::PhaseEnd);
        if let Some((step, value)) = divergence.first_non_finite() {
            return Err(TrainError::Diverged {
                what: "loss",
                epoch: epoch + 1,
                step: Some(step + 1),
                value,
                lr: cfg.lr,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        let wsum = weight_sum.double_value(&[]);
        let loss = if wsum > 0.0 { loss_sum.double_value(&[]) / wsum } else { f64::NAN };
        let accuracy = if seen > 0 { correct.int64_value(&[]) as f64 / seen as f64 } else { f64::NAN };
        Ok(TrainPass { loss, accuracy, images: seen, lr, seconds })
    }

    /// Reports the training images a batch could not read, once per run;
    /// they are kept in the state for the final report.
    fn report_train_failures(&mut self, failures: &[(usize, String)], on_event: &mut dyn FnMut(Event)) {
        for (i, reason) in failures {
            let rel = &self.train_items[*i].rel;
            if self.reported_train.insert(rel.clone()) {
                on_event(Event::Skipped { path: rel, reason });
                self.state.skipped_train.push(Failure::new(rel.clone(), reason.clone()));
            }
        }
    }

    /// The pass over the validation images after epoch `epoch` (0-based).
    fn val_pass(&mut self, epoch: usize, on_event: &mut dyn FnMut(Event)) -> Result<EvalOutcome> {
        let (cfg, n_classes) = (self.cfg, self.inputs.data.classes.len());
        on_event(Event::PhaseStart {
            phase: Phase::Val,
            epoch: epoch + 1,
            epochs: cfg.epochs,
            images: self.val_items.len(),
        });
        let items = Arc::clone(&self.val_items);
        let val = evaluate(
            &self.model,
            &self.criterion,
            &self.loader,
            items,
            cfg.batch_size,
            self.amp,
            Tta::None,
            n_classes,
            &mut |e| on_event(e),
        )?;
        on_event(Event::PhaseEnd);
        for (i, reason) in &val.failures {
            if self.reported_val.insert(*i) {
                on_event(Event::Skipped { path: &self.val_items[*i].rel, reason });
            }
        }
        if val.images == 0 {
            let what = self.inputs.data.val.file.display().to_string();
            return Err(TrainError::NoImages { what, skipped: val.failures.len() });
        }
        if !val.loss.is_finite() {
            return Err(TrainError::Diverged {
                what: "val loss",
                epoch: epoch + 1,
                step: None,
                value: val.loss,
                lr: cfg.lr,
            });
        }
        Ok(val)
    }

    /// Updates the training state with the epoch's numbers and commits the
    /// epoch: `last.safetensors`, then what follows from it.
    fn commit(&mut self, epoch: usize, started: Instant, pass: &TrainPass, val: &EvalOutcome) -> Result<EpochRow> {
        let state = &mut self.state;
        let improved = val.loss < state.best_val_loss;
        if improved {
            state.best_val_loss = val.loss;
            state.best_epoch = epoch + 1;
            state.bad_epochs = 0;
        } else {
            state.bad_epochs += 1;
        }
        let row = EpochRow {
            epoch: epoch + 1,
            lr: pass.lr,
            train_loss: pass.loss,
            train_acc: pass.accuracy,
            val_loss: val.loss,
            val_acc: val.confusion.accuracy(),
            train_images: pass.images,
            val_images: val.images,
            seconds: started.elapsed().as_secs_f64(),
            train_images_per_s: pass.images as f64 / pass.seconds.max(1e-9),
            best: improved,
        };
        state.history.push(row.clone());
        state.epoch = epoch + 1;
        state.optimizer_steps = self.opt.steps;
        let stop = self.cfg.patience > 0 && state.bad_epochs >= self.cfg.patience;
        state.stopped_early = stop && epoch + 1 < self.cfg.epochs;

        let meta = self.meta_for(epoch + 1, val);
        save_last(&self.cfg.out.join("last.safetensors"), &self.model, &meta, &self.opt, &self.state)?;
        write_after_commit(&self.cfg.out, &self.model, &meta, &self.state, improved)?;
        Ok(row)
    }

    /// The model description saved with the weights of epoch `epoch`.
    fn meta_for(&self, epoch: usize, val: &EvalOutcome) -> ModelMeta {
        let (cfg, inputs) = (self.cfg, &self.inputs);
        ModelMeta {
            format: FORMAT.into(),
            arch: cfg.arch,
            classes: inputs.data.classes.clone(),
            loss: cfg.loss,
            num_outputs: self.num_outputs,
            img_size: cfg.img_size,
            mean: inputs.norm.mean,
            std: inputs.norm.std,
            dropout: cfg.dropout,
            class_weights: inputs.class_weights.clone(),
            epoch,
            val_loss: Some(val.loss),
            val_accuracy: Some(val.confusion.accuracy()),
        }
    }

    /// Evaluates the best checkpoint on val, from the file, the same way
    /// `maskforge eval` does it, and writes the report.
    fn finish(self) -> Result<TrainSummary> {
        let (cfg, data) = (self.cfg, &self.inputs.data);
        let best_path = cfg.out.join("best.safetensors");
        let (best, best_meta, _) = checkpoint::load_checkpoint(&best_path, self.device)?;
        let val_items = &self.val_items;
        let n_classes = data.classes.len();
        let val = evaluate(
            &best,
            &self.criterion,
            &self.loader,
            Arc::clone(val_items),
            cfg.batch_size,
            self.amp,
            Tta::None,
            n_classes,
            &mut |_| {},
        )?;
        let mut skipped: Vec<Failure> = data.train.skipped.iter().chain(&data.val.skipped).cloned().collect();
        skipped.extend(self.state.skipped_train.iter().cloned());
        skipped.extend(val.failures.iter().map(|(i, r)| Failure::new(val_items[*i].rel.clone(), r.clone())));
        let device = device_name(self.device);
        let report = EvalReport::new(
            &best_path,
            &data.val.file,
            "val",
            Some(best_meta.epoch),
            &data.classes,
            &val,
            skipped,
            &device,
        );
        report.write(&cfg.out)?;
        let state = &self.state;
        Ok(TrainSummary {
            out: cfg.out.clone(),
            epochs_run: state.epoch,
            best_epoch: state.best_epoch,
            stopped_early: state.stopped_early,
            report,
        })
    }
}

/// A seeded model on `device`, with a resumed run's weights (returned with
/// the rest of its `last.safetensors`), else `--weights`, else from scratch.
fn build_model(
    cfg: &TrainConfig,
    device: Device,
    num_outputs: i64,
    resume: bool,
    on_event: &mut dyn FnMut(Event),
) -> Result<(Classifier, Option<LastCheckpoint>)> {
    // Seeded initialisation: the same --seed gives the same starting weights.
    tch::manual_seed(cfg.seed as i64);
    let mut model = Classifier::new(cfg.arch, num_outputs, cfg.dropout, device);
    let resumed =
        if resume { Some(resume::read_last_checkpoint(&model, &cfg.out.join("last.safetensors"))?) } else { None };
    if resumed.is_none() {
        load_initial_weights(cfg, &model, num_outputs, on_event)?;
    }
    if cfg.freeze_backbone {
        model.freeze_backbone();
    }
    Ok((model, resumed))
}

/// Says what is trained on what, with which input.
fn describe_model(
    cfg: &TrainConfig,
    model: &Classifier,
    inputs: &RunInputs,
    device: Device,
    amp: bool,
    on_event: &mut dyn FnMut(Event),
) {
    let (params_all, params_trainable) = model.parameter_count();
    let classes = &inputs.data.classes;
    on_event(Event::Info(format!(
        "{} on {}{}: {} parameters, {} trainable; {} classes ({}); input {}px normalised with {}",
        cfg.arch,
        device_name(device),
        if amp { " (mixed precision)" } else { "" },
        params_all,
        params_trainable,
        classes.len(),
        classes.join(", "),
        cfg.img_size,
        inputs.norm_note
    )));
}

fn optim_config(cfg: &TrainConfig) -> OptimConfig {
    OptimConfig {
        kind: cfg.optimizer,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    }
}

fn schedule(cfg: &TrainConfig) -> Schedule {
    Schedule {
        kind: cfg.schedule,
        base_lr: cfg.lr,
        warmup_epochs: cfg.warmup_epochs,
        epochs: cfg.epochs,
        step_size: cfg.step_size,
        gamma: cfg.gamma,
        min_lr: cfg.min_lr,
    }
}

/// Restores the optimiser and training state of a resumed run, says what
/// is left to do, and completes the outputs of its last epoch (a killed
/// run may not have written them). Also returns whether no epoch is left.
fn restore(
    cfg: &TrainConfig,
    model: &Classifier,
    opt: &mut Optimizer,
    last: LastCheckpoint,
    on_event: &mut dyn FnMut(Event),
) -> Result<(TrainState, bool)> {
    opt.load_state(&last.file.tensors, last.state.optimizer_steps)?;
    let finished = resume::announce(cfg, &last.state, on_event);
    let best_behind = resume::best_is_behind(&cfg.out.join("best.safetensors"), &last.state);
    write_after_commit(&cfg.out, model, &last.meta, &last.state, best_behind)?;
    let mut state = last.state;
    if !finished {
        state.stopped_early = false;
    }
    Ok((state, finished))
}

/// Starting weights of a new run: `--weights`, else a seeded random
/// initialisation (already in `model`).
fn load_initial_weights(
    cfg: &TrainConfig,
    model: &Classifier,
    num_outputs: i64,
    on_event: &mut dyn FnMut(Event),
) -> Result<()> {
    let Some(w) = &cfg.weights else {
        on_event(Event::Info(format!("no --weights: training {} from scratch (random initialisation)", cfg.arch)));
        return Ok(());
    };
    let file = checkpoint::read_safetensors(w)?;
    let s = checkpoint::load_into(model, &file, w, LoadMode::Pretrained)?;
    let mut note = format!("loaded {} tensors from {}", s.loaded, w.display());
    if s.skipped_buffers > 0 {
        note.push_str(&format!(" ({} num_batches_tracked buffers skipped)", s.skipped_buffers));
    }
    if !s.head_not_loaded.is_empty() {
        note.push_str(&format!(
            "; head replaced for {num_outputs} output(s), not loaded: {}",
            s.head_not_loaded.join(", ")
        ));
    }
    on_event(Event::Info(note));
    Ok(())
}

fn environment(device: Device, amp: bool, loader_threads: usize) -> Environment {
    Environment {
        maskforge_train_version: env!("CARGO_PKG_VERSION").into(),
        libtorch_version: LIBTORCH_VERSION.into(),
        device: device_name(device),
        cuda_devices: tch::Cuda::device_count(),
        cudnn_version: tch::Cuda::cudnn_is_available().then(tch::utils::version_cudnn),
        amp,
        torch_threads: tch::get_num_threads(),
        loader_threads,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Writes `last.safetensors`: weights, optimiser state and training state.
/// It commits the epoch: everything else the epoch writes follows from it.
fn save_last(path: &Path, model: &Classifier, meta: &ModelMeta, opt: &Optimizer, state: &TrainState) -> Result<()> {
    let state_json = serde_json::to_string(state).map_err(|e| TrainError::Config(e.to_string()))?;
    let metadata = HashMap::from([(TRAIN_STATE_KEY.to_string(), state_json)]);
    checkpoint::save_checkpoint(path, model, meta, opt.state_tensors(), metadata)
}

/// What an epoch writes after `last.safetensors`, from the weights and state
/// that file holds (`meta` is its model description): the best checkpoint
/// when `write_best`, `metrics.csv` and `curves.png`. Run again by
/// `--resume`, it completes an epoch whose process was killed.
fn write_after_commit(
    out: &Path,
    model: &Classifier,
    meta: &ModelMeta,
    state: &TrainState,
    write_best: bool,
) -> Result<()> {
    if write_best {
        checkpoint::save_checkpoint(&out.join("best.safetensors"), model, meta, Vec::new(), HashMap::new())?;
    }
    write_metrics_csv(&out.join("metrics.csv"), &state.history)?;
    write_curves(&out.join("curves.png"), &state.history)
}

/// The first training step whose loss was not finite. Tracked on the
/// model's device, so that watching costs no synchronisation per step; it
/// is read once, at the end of the epoch.
struct DivergenceWatch {
    /// -1 while every loss has been finite.
    step: Tensor,
    loss: Tensor,
}

impl DivergenceWatch {
    fn new(device: Device) -> Self {
        DivergenceWatch {
            step: Tensor::full([], -1i64, (Kind::Int64, device)),
            loss: Tensor::zeros([], (Kind::Double, device)),
        }
    }

    fn observe(&mut self, step: usize, loss: &Tensor) {
        tch::no_grad(|| {
            let first = loss.isfinite().logical_not().logical_and(&self.step.lt(0));
            let step = Tensor::scalar_tensor(step as i64, (Kind::Int64, self.step.device()));
            self.step = step.where_self(&first, &self.step);
            self.loss = loss.to_kind(Kind::Double).where_self(&first, &self.loss);
        })
    }

    /// (0-based step, its loss) of the first non-finite loss.
    fn first_non_finite(&self) -> Option<(usize, f64)> {
        let step = self.step.int64_value(&[]);
        (step >= 0).then(|| (step as usize, self.loss.double_value(&[])))
    }
}

/// What one optimisation step leaves for the statistics.
pub struct StepOutput {
    /// Σ wᵢ·lossᵢ over the batch (graph detached).
    pub weighted: Tensor,
    /// Σ wᵢ.
    pub weight_sum: Tensor,
    /// The batch's logits `[B, num_outputs]` (float32), for accuracy.
    pub logits: Tensor,
}

/// One training step on a batch already on the model's device: forward
/// (under autocast when `amp`), loss, backward, optimiser update; with
/// `amp` the loss is scaled and a step whose gradients overflowed is
/// skipped, as PyTorch's `GradScaler` does.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: &Classifier,
    criterion: &Criterion,
    opt: &mut Optimizer,
    scaler: &mut LossScaler,
    xs: &Tensor,
    ys: &Tensor,
    lr: f64,
    amp: bool,
) -> StepOutput {
    let logits = tch::autocast(amp, || model.forward_t(xs, true));
    let (per_sample, weights) = criterion.per_sample(&logits, ys);
    let weighted = (&per_sample * &weights).sum(Kind::Float);
    let weight_sum = weights.sum(Kind::Float);
    let loss = &weighted / &weight_sum;
    opt.zero_grad();
    if amp {
        (&loss * scaler.scale).backward();
        let finite = opt.unscale_grads(1.0 / scaler.scale);
        if finite {
            opt.step(lr);
        }
        scaler.update(finite);
    } else {
        loss.backward();
        opt.step(lr);
    }
    StepOutput { weighted: weighted.detach(), weight_sum: weight_sum.detach(), logits: logits.detach() }
}
