//! `maskforge train`, `maskforge eval` and (with dlib) `maskforge predict`.

use crate::common;
use crate::progress::Console;
use anyhow::{bail, Context, Result};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Args};
use maskforge_train::optim::{OptimizerKind, ScheduleKind};
use maskforge_train::{check_new_run, resumed_config, Arch, LossKind, NormKind, ResumeChanges, TrainConfig, Tta};
use std::path::PathBuf;

/// The flags `train --resume` takes (clap ids); clap refuses every other
/// flag of [`TrainArgs`] beside `--resume`, a new one included.
const RESUME_FLAGS: [&str; 7] = ["resume", "epochs", "patience", "device", "workers", "prefetch", "no_amp"];

/// Makes `arg` conflict with `--resume` unless [`RESUME_FLAGS`] lists it.
fn refused_on_resume(arg: Arg) -> Arg {
    if RESUME_FLAGS.contains(&arg.get_id().as_str()) {
        arg
    } else {
        arg.conflicts_with("resume")
    }
}

/// A parse error, with a tip on what `--resume` may change when a flag
/// conflicts with it.
pub fn with_resume_tip(mut err: clap::Error) -> clap::Error {
    let is_resume = |kind| matches!(err.get(kind), Some(ContextValue::String(a)) if a.starts_with("--resume "));
    if err.kind() == ErrorKind::ArgumentConflict
        && (is_resume(ContextKind::InvalidArg) || is_resume(ContextKind::PriorArg))
    {
        let flags: Vec<String> = RESUME_FLAGS[1..].iter().map(|id| format!("--{}", id.replace('_', "-"))).collect();
        let tip = format!("with --resume the run's saved config.json is used; only {} may change", flags.join(", "));
        err.insert(ContextKind::Suggested, ContextValue::StyledStrs(vec![tip.into()]));
    }
    err
}

#[derive(Args, Debug)]
#[command(mut_args(refused_on_resume))]
pub struct TrainArgs {
    /// Folder written by `maskforge split`: classes.csv, train.csv, val.csv, stats.json, split.json.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub manifests: Option<PathBuf>,
    /// Run folder for checkpoints, metrics, curves and reports (e.g. runs/NAME).
    #[arg(long, short, value_name = "DIR", required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last.safetensors, with its saved config.json;
    /// only --epochs, --patience, --device, --workers, --prefetch and --no-amp may be changed.
    /// A run with all its epochs done gets whatever its last epoch left unwritten
    /// (best checkpoint, metrics row, curves, report) and ends.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Dataset root the manifest paths are relative to [default: from split.json].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Backbone: resnet50, resnet18 or mobilenet_v2 [default: resnet50].
    #[arg(long, alias = "backbone")]
    pub arch: Option<Arch>,
    /// Pretrained weights: `imagenet` (torchvision's, cached by `maskforge weights fetch ARCH`) or a
    /// .safetensors file in torchvision's state_dict names. Without it: from scratch.
    #[arg(long, value_name = "imagenet|FILE")]
    pub weights: Option<PathBuf>,
    /// Train the classifier head only (the backbone is a fixed feature extractor).
    #[arg(long)]
    pub freeze_backbone: bool,
    /// Dropout before the head, in [0, 1) [default: 0, 0.2 for mobilenet_v2 as in torchvision].
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Loss: ce (cross-entropy, N logits) or bce (2 classes, one logit, BCEWithLogits) [default: ce].
    #[arg(long)]
    pub loss: Option<LossKind>,
    /// Label smoothing of the training loss, in [0, 1): the target keeps 1 - E on the true class
    /// and spreads E over all classes (the val loss and reports stay unsmoothed) [default: 0].
    #[arg(long, value_name = "E")]
    pub label_smoothing: Option<f64>,
    /// Class weights of the loss: `auto` (also `--class-weights` alone) weights each class by
    /// the inverse of its share of the train split, from stats.json (for skewed data, e.g. a
    /// 3-class set with few incorrectly worn masks); `none` [default] weights all alike.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "auto", value_name = "auto|none")]
    pub class_weights: Option<ClassWeightsArg>,
    /// Optimiser: sgd, adam or adamw [default: sgd].
    #[arg(long)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate, above 0 [default: 0.01 for sgd, 0.001 for adam/adamw].
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum, in [0, 1) [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay, >= 0 [default: 5e-4 for sgd, 0 for adam, 0.01 for adamw].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: cosine, step or constant [default: cosine].
    #[arg(long)]
    pub schedule: Option<ScheduleKind>,
    /// Linear warm-up length in epochs, >= 0 [default: 1].
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Step schedule: epochs between decays, at least 1 [default: 10].
    #[arg(long)]
    pub step_size: Option<usize>,
    /// Step schedule: decay factor, in (0, 1] [default: 0.1].
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Cosine schedule: final learning rate, from 0 to --lr [default: 0].
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Epochs, at least 1 [default: 20].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per batch, 1 to 65536 [default: 32].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Input size in pixels (square), 16 to 1024 [default: 224; seed 000 used 112].
    #[arg(long)]
    pub img_size: Option<u32>,
    /// Stop after this many epochs without a better val loss; 0 never stops [default: 5].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Horizontal flip probability, in [0, 1] [default: 0.5].
    #[arg(long)]
    pub hflip: Option<f64>,
    /// Vertical flip probability, in [0, 1] [default: 0; seed 000 used 0.5].
    #[arg(long)]
    pub vflip: Option<f64>,
    /// Random rotation range in degrees, ±, at most 180 [default: 10; seed 000 used 135].
    #[arg(long)]
    pub rotate: Option<f64>,
    /// Random resized crop: smallest kept area fraction, in (0, 1], 1 disables [default: 0.85].
    #[arg(long)]
    pub crop_scale: Option<f64>,
    /// Colour jitter strength for brightness, contrast and saturation, in [0, 1] [default: 0.7].
    #[arg(long)]
    pub jitter: Option<f64>,
    /// Hue jitter, in [0, 0.5]: the hue turned by up to this fraction of the colour circle, either
    /// way (torchvision's ColorJitter hue), so that masks of any colour are masks [default: 0].
    #[arg(long, value_name = "H")]
    pub hue: Option<f64>,
    /// Grey-scale probability, in [0, 1]: luma in all three channels [default: 0.1].
    #[arg(long, value_name = "P")]
    pub grey: Option<f64>,
    /// Gaussian blur probability, in [0, 1]; sigma 0.5-2 px at 224 px, scaled with --img-size [default: 0.3].
    #[arg(long, value_name = "P")]
    pub blur: Option<f64>,
    /// JPEG re-compression probability, in [0, 1]; quality drawn from 30-90 [default: 0.2].
    #[arg(long, value_name = "P")]
    pub jpeg: Option<f64>,
    /// Down-and-up scaling probability, in [0, 1]; factor drawn from 0.25-0.75 [default: 0.3].
    #[arg(long, value_name = "P")]
    pub downscale: Option<f64>,
    /// Random erasing probability, in [0, 1]: a rectangle of 2-20% of the image, aspect 0.3-3.3,
    /// filled with a random colour or noise (an occluder) [default: 0; it can hide what the label is about].
    #[arg(long, value_name = "P")]
    pub erase: Option<f64>,
    /// Framing probability, in [0, 1]: in place of the random resized crop, a square of 0.5-1.15
    /// times the image's shorter side, off-centre and mostly lower (the face fills the frame, cut
    /// through the forehead or eyes, as in real close-ups). For models that will see photos framed
    /// otherwise than by maskforge's own crops (`predict` cuts those) [default: 0].
    #[arg(long, value_name = "P")]
    pub framing: Option<f64>,
    /// No augmentation at all.
    #[arg(long)]
    pub no_augment: bool,
    /// Input normalisation: split (stats.json), imagenet or none [default: split].
    #[arg(long)]
    pub norm: Option<NormKind>,
    /// Seed for shuffling, augmentation, dropout and initialisation [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image decoding threads, up to 1024 [default: all cores].
    #[arg(long, short = 'j', alias = "jobs", value_parser = common::jobs_parser("--workers"))]
    pub workers: Option<usize>,
    /// Batches prepared ahead of the model, 1 to 64 [default: 4].
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// auto, cpu, cuda or cuda:N [default: auto].
    #[arg(long)]
    pub device: Option<String>,
    /// Disable mixed precision on CUDA.
    #[arg(long)]
    pub no_amp: bool,
    /// Skip images with more pixels than this, at most 1000000000 [default: 100000000].
    #[arg(long, value_parser = common::parse_max_pixels)]
    pub max_pixels: Option<u64>,
}

/// `--class-weights auto|none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassWeightsArg {
    /// Inverse class frequency of the train split (stats.json's weights).
    Auto,
    /// Every class weighs 1.
    None,
}
impl TrainArgs {
    /// The run configuration: defaults, then the flags; with `--resume`,
    /// the saved configuration with the few flags that may change
    /// ([`RESUME_FLAGS`]).
    fn config(&self) -> Result<(TrainConfig, bool)> {
        if let Some(run) = &self.resume {
            // Every other flag is refused by clap (`refused_on_resume`).
            let changes = ResumeChanges {
                epochs: self.epochs,
                patience: self.patience,
                device: self.device.clone(),
                workers: self.workers,
                prefetch: self.prefetch,
                no_amp: self.no_amp,
            };
            let cfg = resumed_config(run, &changes).with_context(|| format!("cannot resume {}", run.display()))?;
            return Ok((cfg, true));
        }
        let (Some(manifests), Some(out)) = (&self.manifests, &self.out) else {
            bail!("--manifests and --out are required (or --resume RUN_DIR)");
        };
        let mut c = TrainConfig::new(manifests, out);
        c.root = self.root.clone();
        if let Some(a) = self.arch {
            c.arch = a;
        }
        c.dropout = self.dropout.unwrap_or(c.arch.default_dropout());
        c.weights = self.weights.as_deref().map(|w| maskforge_weights::train_weights(w, c.arch)).transpose()?;
        c.freeze_backbone = self.freeze_backbone;
        c.loss = self.loss.unwrap_or(c.loss);
        c.label_smoothing = self.label_smoothing.unwrap_or(c.label_smoothing);
        c.class_weights = self.class_weights == Some(ClassWeightsArg::Auto);
        c.optimizer = self.optimizer.unwrap_or(c.optimizer);
        c.lr = self.lr.unwrap_or(c.optimizer.default_lr());
        c.weight_decay = self.weight_decay.unwrap_or(c.optimizer.default_weight_decay());
        c.momentum = self.momentum.unwrap_or(c.momentum);
        c.schedule = self.schedule.unwrap_or(c.schedule);
        c.warmup_epochs = self.warmup_epochs.unwrap_or(c.warmup_epochs);
        c.step_size = self.step_size.unwrap_or(c.step_size);
        c.gamma = self.gamma.unwrap_or(c.gamma);
        c.min_lr = self.min_lr.unwrap_or(c.min_lr);
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.batch_size = self.batch_size.unwrap_or(c.batch_size);
        c.img_size = self.img_size.unwrap_or(c.img_size);
        c.patience = self.patience.unwrap_or(c.patience);
        if self.no_augment {
            c.augment = maskforge_train::augment::AugmentConfig::none();
        }
        let a = &mut c.augment;
        a.hflip = self.hflip.unwrap_or(a.hflip);
        a.vflip = self.vflip.unwrap_or(a.vflip);
        a.rotate = self.rotate.unwrap_or(a.rotate);
        a.crop_scale = self.crop_scale.unwrap_or(a.crop_scale);
        a.jitter = self.jitter.unwrap_or(a.jitter);
        a.hue = self.hue.unwrap_or(a.hue);
        a.grey = self.grey.unwrap_or(a.grey);
        a.blur = self.blur.unwrap_or(a.blur);
        a.jpeg = self.jpeg.unwrap_or(a.jpeg);
        a.downscale = self.downscale.unwrap_or(a.downscale);
        a.erase = self.erase.unwrap_or(a.erase);
        a.framing = self.framing.unwrap_or(a.framing);
        c.norm = self.norm.unwrap_or(c.norm);
        c.seed = self.seed.unwrap_or(c.seed);
        c.workers = self.workers.unwrap_or(0);
        c.prefetch = self.prefetch.unwrap_or(c.prefetch);
        c.device = self.device.clone().unwrap_or(c.device);
        c.amp = !self.no_amp;
        c.max_pixels = self.max_pixels.unwrap_or(c.max_pixels);
        check_new_run(&c.out)?;
        Ok((c, false))
    }
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    let (cfg, resume) = args.config()?;
    let mut console = Console::default();
    let summary = maskforge_train::train(&cfg, resume, &mut |e| console.handle(e))?;
    println!("{}", summary.report.to_text());
    println!(
        "run {}: {} epoch(s){}, best epoch {}; best.safetensors, last.safetensors, metrics.csv, curves.png, report.txt/json, config.json",
        summary.out.display(),
        summary.epochs_run,
        if summary.stopped_early { " (stopped early)" } else { "" },
        summary.best_epoch
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by `maskforge train` (best.safetensors or last.safetensors). More than
    /// once: an ensemble, scored on the mean of the models' probabilities (each at its own input
    /// size and normalisation; the models must share their classes, in order).
    #[arg(long, value_name = "FILE", required = true)]
    pub model: Vec<PathBuf>,
    /// Manifest to evaluate (path,class_index,... as `maskforge split` writes), e.g. manifests/test.csv.
    #[arg(long, value_name = "CSV")]
    pub manifest: PathBuf,
    /// Dataset root [default: from split.json beside the manifest].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Folder for report.txt, report.json and predictions.csv [default: MODEL_DIR/eval-MANIFEST; an
    /// ensemble: eval-ensemble-MANIFEST in the deepest folder holding all its models].
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Images per batch, 1 to 65536.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Image decoding threads, up to 1024 [default: all cores].
    #[arg(long, short = 'j', alias = "jobs", value_parser = common::jobs_parser("--workers"))]
    pub workers: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Skip images with more pixels than this, at most 1000000000.
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
    /// Test-time augmentation: `flip` also classifies each image's mirror image and averages
    /// the two logits (twice the model's work); `none` classifies each image once.
    #[arg(long, default_value = "none", value_name = "none|flip")]
    pub tta: Tta,
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    let opts = maskforge_train::EvalOptions {
        models: args.model,
        manifest: args.manifest,
        root: args.root,
        batch_size: args.batch_size,
        workers: args.workers.unwrap_or(0),
        device: args.device,
        max_pixels: args.max_pixels,
        tta: args.tta,
    };
    let out = args.out.unwrap_or_else(|| opts.default_out());
    let mut console = Console::default();
    let report = maskforge_train::eval_into(&opts, &out, &mut |e| console.handle(e))?;
    println!("{}", report.to_text());
    println!("wrote {}/report.txt, report.json, predictions.csv", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Train {
        #[command(flatten)]
        args: TrainArgs,
    }

    #[test]
    fn every_flag_but_the_resume_ones_is_refused_on_resume() {
        let mut cmd = Train::command();
        cmd.build();
        let ids: Vec<&str> = cmd.get_arguments().map(|a| a.get_id().as_str()).collect();
        for arg in cmd.get_arguments().filter(|a| !["help", "resume"].contains(&a.get_id().as_str())) {
            let id = arg.get_id().as_str();
            let refused = cmd.get_arg_conflicts_with(arg).iter().any(|a| a.get_id() == "resume");
            assert_eq!(refused, !RESUME_FLAGS.contains(&id), "--{id}: refused on resume unless RESUME_FLAGS lists it");
        }
        // No stale name in the list, and `--resume`'s help names every flag it takes.
        let help = cmd.get_arguments().find(|a| a.get_id() == "resume").and_then(|a| a.get_help()).unwrap();
        for id in RESUME_FLAGS {
            assert!(ids.contains(&id), "{id}");
            assert!(id == "resume" || help.to_string().contains(&format!("--{}", id.replace('_', "-"))), "{id}");
        }
        let err = Train::try_parse_from(["train", "--resume", "r", "--epochs", "9", "--lr", "0.1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        let text = with_resume_tip(err).to_string();
        assert!(text.contains("--lr") && text.contains("only --epochs, --patience,"), "{text}");
        let allowed = ["--epochs", "9", "--patience", "0", "--device", "cpu", "-j", "2", "--prefetch", "2", "--no-amp"];
        assert!(Train::try_parse_from(["train", "--resume", "r"].into_iter().chain(allowed)).is_ok());
    }

    #[test]
    fn a_new_flag_is_refused_on_resume_unless_listed() {
        #[derive(Parser)]
        #[command(mut_args(refused_on_resume))]
        struct Grown {
            #[arg(long)]
            resume: Option<PathBuf>,
            #[arg(long)]
            epochs: Option<usize>,
            #[arg(long)]
            new_setting: Option<u32>,
        }
        let err = Grown::try_parse_from(["t", "--resume", "r", "--new-setting", "1"]).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        assert!(Grown::try_parse_from(["t", "--resume", "r", "--epochs", "1"]).is_ok());
    }
}
