//! `maskforge train`, `maskforge eval` and (with dlib) `maskforge predict`.

use crate::common;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use maskforge_train::optim::{OptimizerKind, ScheduleKind};
use maskforge_train::{check_loader_flags, read_run_config, Arch, EpochRow, Event, LossKind, NormKind, Phase, TrainConfig};
use std::path::PathBuf;

#[derive(Args, Debug)]
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
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["manifests", "out"])]
    pub resume: Option<PathBuf>,
    /// Dataset root the manifest paths are relative to [default: from split.json].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Backbone: resnet50, resnet18 or mobilenet_v2 [default: resnet50].
    #[arg(long, alias = "backbone")]
    pub arch: Option<Arch>,
    /// Pretrained weights (.safetensors in torchvision's state_dict names; make one with
    /// `cargo xtask convert-weights IN.pth OUT.safetensors`). Without it: from scratch.
    #[arg(long, value_name = "FILE")]
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
    /// Weight the loss by the class weights in stats.json (for skewed data).
    #[arg(long)]
    pub class_weights: bool,
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
    /// Colour jitter strength for brightness, contrast and saturation, in [0, 1] [default: 0.1].
    #[arg(long)]
    pub jitter: Option<f64>,
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
    #[arg(long, short = 'j', alias = "jobs")]
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
    #[arg(long)]
    pub max_pixels: Option<u64>,
}

impl TrainArgs {
    /// The run configuration: defaults, then the flags; with `--resume`,
    /// the saved configuration with the few flags that may change.
    fn config(&self) -> Result<(TrainConfig, bool)> {
        if let Some(run) = &self.resume {
            let fixed: Vec<(&str, bool)> = vec![
                ("--root", self.root.is_some()),
                ("--arch", self.arch.is_some()),
                ("--weights", self.weights.is_some()),
                ("--freeze-backbone", self.freeze_backbone),
                ("--dropout", self.dropout.is_some()),
                ("--loss", self.loss.is_some()),
                ("--class-weights", self.class_weights),
                ("--optimizer", self.optimizer.is_some()),
                ("--lr", self.lr.is_some()),
                ("--momentum", self.momentum.is_some()),
                ("--weight-decay", self.weight_decay.is_some()),
                ("--schedule", self.schedule.is_some()),
                ("--warmup-epochs", self.warmup_epochs.is_some()),
                ("--step-size", self.step_size.is_some()),
                ("--gamma", self.gamma.is_some()),
                ("--min-lr", self.min_lr.is_some()),
                ("--batch-size", self.batch_size.is_some()),
                ("--img-size", self.img_size.is_some()),
                ("--hflip", self.hflip.is_some()),
                ("--vflip", self.vflip.is_some()),
                ("--rotate", self.rotate.is_some()),
                ("--crop-scale", self.crop_scale.is_some()),
                ("--jitter", self.jitter.is_some()),
                ("--no-augment", self.no_augment),
                ("--norm", self.norm.is_some()),
                ("--seed", self.seed.is_some()),
                ("--max-pixels", self.max_pixels.is_some()),
                ("--manifests", self.manifests.is_some()),
                ("--out", self.out.is_some()),
            ];
            let given: Vec<&str> = fixed.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
            if !given.is_empty() {
                bail!(
                    "with --resume the run's saved config.json is used; {} cannot change (only --epochs, --patience, --device, --workers, --prefetch, --no-amp)",
                    given.join(", ")
                );
            }
            let mut cfg = read_run_config(run).with_context(|| format!("cannot resume {}", run.display()))?;
            // The saved `out` may be relative to where the run started; the
            // folder given now is the one to continue in.
            cfg.out = run.clone();
            if let Some(v) = self.epochs {
                cfg.epochs = v;
            }
            if let Some(v) = self.patience {
                cfg.patience = v;
            }
            if let Some(v) = &self.device {
                cfg.device = v.clone();
            }
            if let Some(v) = self.workers {
                cfg.workers = v;
            }
            if let Some(v) = self.prefetch {
                cfg.prefetch = v;
            }
            if self.no_amp {
                cfg.amp = false;
            }
            // Also checked by the library; here the message names the run,
            // since most of the numbers come from its config.json.
            cfg.validate().with_context(|| format!("cannot resume {}", run.display()))?;
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
        c.weights = self.weights.clone();
        c.freeze_backbone = self.freeze_backbone;
        c.loss = self.loss.unwrap_or(c.loss);
        c.class_weights = self.class_weights;
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
        c.norm = self.norm.unwrap_or(c.norm);
        c.seed = self.seed.unwrap_or(c.seed);
        c.workers = self.workers.unwrap_or(0);
        c.prefetch = self.prefetch.unwrap_or(c.prefetch);
        c.device = self.device.clone().unwrap_or(c.device);
        c.amp = !self.no_amp;
        c.max_pixels = self.max_pixels.unwrap_or(c.max_pixels);
        if self.out.as_ref().is_some_and(|o| o.join("last.safetensors").exists()) {
            bail!(
                "{} already holds a run (last.safetensors); continue it with --resume {0}, or choose another --out",
                c.out.display()
            );
        }
        Ok((c, false))
    }
}

/// Draws progress bars and prints epoch lines for training events.
struct Console {
    bar: Option<ProgressBar>,
}

impl Console {
    fn new() -> Self {
        Console { bar: None }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Info(m) => self.println(&m),
            Event::Skipped { path, reason } => self.println(&format!("skipped {path}: {reason}")),
            Event::PhaseStart { phase, epoch, epochs, images } => {
                let what = match phase {
                    Phase::Train => format!("epoch {epoch}/{epochs} train"),
                    Phase::Val => format!("epoch {epoch}/{epochs} val  "),
                };
                self.bar = Some(common::progress_bar(images as u64, &what));
            }
            Event::Progress { images } => {
                if let Some(b) = &self.bar {
                    b.set_position(images as u64);
                }
            }
            Event::PhaseEnd => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
            }
            Event::EpochEnd(r) => self.println(&epoch_line(r)),
        }
    }

    fn println(&self, m: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(m),
            _ => eprintln!("{m}"),
        }
    }
}

fn epoch_line(r: &EpochRow) -> String {
    format!(
        "epoch {:>3}  lr {:.2e}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  {:.1} img/s  {:.1}s{}",
        r.epoch,
        r.lr,
        r.train_loss,
        r.train_acc,
        r.val_loss,
        r.val_acc,
        r.train_images_per_s,
        r.seconds,
        if r.best { "  * best" } else { "" }
    )
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    let (cfg, resume) = args.config()?;
    let mut console = Console::new();
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
    /// A checkpoint written by `maskforge train` (best.safetensors or last.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Manifest to evaluate (path,class_index,... as `maskforge split` writes), e.g. manifests/test.csv.
    #[arg(long, value_name = "CSV")]
    pub manifest: PathBuf,
    /// Dataset root [default: from split.json beside the manifest].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Folder for report.txt, report.json and predictions.csv [default: MODEL_DIR/eval-MANIFEST].
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Images per batch, 1 to 65536.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Image decoding threads, up to 1024 [default: all cores].
    #[arg(long, short = 'j', alias = "jobs")]
    pub workers: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Skip images with more pixels than this, at most 1000000000.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_pixels: u64,
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    // Before the model is loaded or anything is written.
    check_loader_flags(args.batch_size, args.workers.unwrap_or(0), args.max_pixels)?;
    let opts = maskforge_train::EvalOptions {
        model: args.model.clone(),
        manifest: args.manifest.clone(),
        root: args.root.clone(),
        batch_size: args.batch_size,
        workers: args.workers.unwrap_or(0),
        device: args.device.clone(),
        max_pixels: args.max_pixels,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
        args.model.parent().unwrap_or(std::path::Path::new(".")).join(format!("eval-{stem}"))
    });
    let manifest_dir = args.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let root = maskforge_train::manifest::resolve_root(manifest_dir, args.root.as_deref())?;
    maskforge_imageio::check_disjoint(&[&args.manifest, &root], &[maskforge_imageio::Output::new(&out, "output folder")])?;
    let mut console = Console::new();
    let (report, preds) = maskforge_train::eval_manifest(&opts, &mut |e| console.handle(e))?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    report.write(&out)?;
    maskforge_train::eval::write_predictions_csv(&out.join("predictions.csv"), &report.classification.classes.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), &preds)?;
    println!("{}", report.to_text());
    println!("wrote {}/report.txt, report.json, predictions.csv", out.display());
    Ok(())
}

#[cfg(feature = "dlib")]
pub use predict::{run_predict, PredictArgs};

#[cfg(feature = "dlib")]
mod predict {
    use crate::cmd::detect::DetectorOpts;
    use crate::common;
    use anyhow::{Context, Result};
    use clap::Args;
    use image::{Rgb, RgbImage};
    use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut};
    use imageproc::rect::Rect;
    use maskforge_face::crop::crop_face;
    use maskforge_face::Face;
    use maskforge_imageio::{
        check_disjoint, load_rgb, relative_string, save_rgb_atomic, walk_images, write_failures_csv, AtomicFile, Failure, Output,
    };

    /// The failures.csv reason of a photo in which no face was found.
    pub const NO_FACE_REASON: &str = "no face detected";
    use maskforge_landmarks::Detector;
    use maskforge_train::Predictor;
    use rayon::prelude::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    #[derive(Args, Debug)]
    pub struct PredictArgs {
        /// A photo, or a folder of photos (searched recursively).
        pub input: PathBuf,
        /// A checkpoint written by `maskforge train` (e.g. runs/NAME/best.safetensors).
        #[arg(long, value_name = "FILE")]
        pub model: PathBuf,
        /// Output folder: annotated/ images, predictions.csv, explain/ heat-maps, failures.csv.
        #[arg(long, short, value_name = "DIR")]
        pub out: PathBuf,
        /// Side of the face crop cut from the photo (as the mask stage's --crop-size);
        /// it is then resized to the model's input size.
        #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(8..=4096))]
        pub crop_size: u32,
        /// Margin around the detector box, as a fraction of its size per side (as the mask stage's), 0 to 2.
        #[arg(long, default_value_t = 0.2)]
        pub crop_margin: f32,
        /// Also write an occlusion-sensitivity heat-map per face to OUT/explain/.
        #[arg(long)]
        pub explain: bool,
        /// Occluding patch side in model-input pixels [default: input size / 7].
        #[arg(long)]
        pub explain_patch: Option<u32>,
        /// Patch step in pixels [default: patch / 2].
        #[arg(long)]
        pub explain_stride: Option<u32>,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        pub device: String,
        /// Face-detection threads [default: all cores].
        #[arg(long, short)]
        pub jobs: Option<usize>,
        #[command(flatten)]
        pub detector: DetectorOpts,
    }

    /// A photo with its faces and their crops, or why it could not be read.
    type Detected = (PathBuf, Result<(RgbImage, Vec<Face>, Vec<RgbImage>), String>);

    /// One face found and classified.
    struct FaceResult {
        face: Face,
        class: usize,
        confidence: f32,
    }

    fn class_color(name: &str, index: usize) -> Rgb<u8> {
        let n = name.to_ascii_lowercase();
        if n.contains("incorrect") || n.contains("improper") {
            Rgb([255, 150, 0])
        } else if n.contains("without") || n.contains("unmask") || n.contains("no_mask") || n.contains("nomask") || n.starts_with("no ") {
            Rgb([230, 30, 30])
        } else if n.contains("mask") {
            Rgb([20, 200, 60])
        } else {
            const PALETTE: [Rgb<u8>; 6] =
                [Rgb([31, 119, 180]), Rgb([255, 127, 14]), Rgb([44, 160, 44]), Rgb([214, 39, 40]), Rgb([148, 103, 189]), Rgb([140, 86, 75])];
            PALETTE[index % PALETTE.len()]
        }
    }

    fn annotate(img: &mut RgbImage, faces: &[FaceResult], classes: &[String]) {
        let scale = (img.width().max(img.height()) / 500).clamp(1, 6);
        let thickness = scale as i32 + 1;
        for f in faces {
            let (class, conf) = (f.class, f.confidence);
            let name = classes.get(class).map(String::as_str).unwrap_or("?");
            let color = class_color(name, class);
            let b = f.face.bbox;
            for t in 0..thickness {
                let (x, y) = (b.left as i32 - t, b.top as i32 - t);
                let (w, h) = ((b.width() as i32 + 2 * t).max(1) as u32, (b.height() as i32 + 2 * t).max(1) as u32);
                draw_hollow_rect_mut(img, Rect::at(x, y).of_size(w, h), color);
            }
            let label = format!("{name} {conf:.2}");
            let size = 12.0 * scale as f32;
            let (text_w, text_h) = maskforge_draw::text_size(&label, size);
            let (tw, th) = (text_w + 2 * scale, text_h + 2 * scale);
            let ty = if b.top as i32 - (th as i32) - thickness >= 0 { b.top as i32 - th as i32 - thickness } else { b.bottom as i32 + thickness };
            let tx = (b.left as i32 - thickness).max(0);
            draw_filled_rect_mut(img, Rect::at(tx, ty).of_size(tw, th), color);
            maskforge_draw::draw_text(img, tx + scale as i32, ty + scale as i32, size, Rgb([255, 255, 255]), &label);
        }
    }

    /// The most probable class and its probability; an error (never a silent
    /// class 0) when the model gave no usable probabilities.
    fn best(probs: &[f32], n_classes: usize) -> Result<(usize, f32)> {
        if probs.len() != n_classes || probs.iter().any(|p| !p.is_finite()) {
            anyhow::bail!("the model gave {} probabilities for {n_classes} classes: {probs:?}", probs.len());
        }
        Ok(probs.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, p)| if p > a.1 { (i, p) } else { a }))
    }

    /// Refuses unusable numbers before anything is loaded or written.
    fn check_predict_numbers(args: &PredictArgs, img_size: u32) -> Result<()> {
        if !(args.crop_margin.is_finite() && (0.0..=2.0).contains(&args.crop_margin)) {
            anyhow::bail!("--crop-margin {}: must be a number from 0 to 2", args.crop_margin);
        }
        for (flag, v) in [("--explain-patch", args.explain_patch), ("--explain-stride", args.explain_stride)] {
            if let Some(v) = v.filter(|&v| v == 0 || v > img_size) {
                anyhow::bail!("{flag} {v}: must be from 1 to the model's input size {img_size}");
            }
        }
        Ok(())
    }

    pub fn run_predict(args: PredictArgs) -> Result<()> {
        let device = maskforge_train::device::parse_device(&args.device)?;
        check_disjoint(&[&args.input], &[Output::new(&args.out, "output folder")])?;
        let predictor = Predictor::load(&args.model, device)?;
        check_predict_numbers(&args, predictor.meta.img_size)?;
        let classes = predictor.meta.classes.clone();
        let detector = Detector::new(&args.detector.config())?;
        let limits = args.detector.limits();
        let pool = common::thread_pool(args.jobs)?;

        let (root, photos, mut failures): (PathBuf, Vec<PathBuf>, Vec<Failure>) = if args.input.is_dir() {
            let walk = walk_images(&args.input);
            (args.input.clone(), walk.images, walk.failures)
        } else if args.input.is_file() {
            let parent = args.input.parent().map(Path::to_path_buf).unwrap_or_default();
            (parent, vec![args.input.clone()], Vec::new())
        } else {
            anyhow::bail!("{}: no such photo or folder", args.input.display());
        };
        std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
        let csv_path = args.out.join("predictions.csv");
        let mut csv_file = AtomicFile::create(&csv_path).with_context(|| format!("cannot create {}", csv_path.display()))?;
        let mut header = "path,face,left,top,right,bottom,detector_score,class,confidence".to_string();
        for c in &classes {
            header.push_str(&format!(",{}", csv_field(&format!("p_{c}"))));
        }
        writeln!(csv_file, "{header}")?;

        let pb = common::progress_bar(photos.len() as u64, "predict");
        let (mut n_faces, mut no_face) = (0usize, 0usize);
        // Detection in parallel per chunk of photos, then one classification
        // batch per chunk on this thread (the model stays on one thread).
        for chunk in photos.chunks(16) {
            let detected: Vec<Detected> = pool.install(|| {
                chunk
                    .par_iter()
                    .map_init(
                        || detector.clone(),
                        |det, path| {
                            let r = load_rgb(path, limits).map_err(|e| e.reason()).and_then(|img| {
                                let faces = det.detect(&img).map_err(|e| e.to_string())?;
                                let crops = faces.iter().map(|f| crop_face(&img, f, args.crop_size, args.crop_margin)).collect();
                                Ok((img, faces, crops))
                            });
                            (path.clone(), r)
                        },
                    )
                    .collect()
            });
            let all_crops: Vec<RgbImage> =
                detected.iter().filter_map(|(_, r)| r.as_ref().ok()).flat_map(|(_, _, c)| c.iter().cloned()).collect();
            let probs = predictor.classify(&all_crops);
            if probs.len() != all_crops.len() {
                anyhow::bail!("{}: the model classified {} of {} face crops", args.model.display(), probs.len(), all_crops.len());
            }
            let mut probs = probs.into_iter();
            let mut crop_iter = all_crops.iter();
            for (path, r) in detected {
                pb.inc(1);
                let rel = relative_string(&root, &path);
                let (mut img, faces, _) = match r {
                    Ok(v) => v,
                    Err(reason) => {
                        pb.println(format!("skipped {rel}: {reason}"));
                        failures.push(Failure::new(rel, reason));
                        continue;
                    }
                };
                let mut results = Vec::new();
                for (i, face) in faces.iter().enumerate() {
                    let p = probs.next().unwrap_or_default();
                    let crop = crop_iter.next();
                    let (class, conf) = best(&p, classes.len()).with_context(|| format!("{rel}: face {i}"))?;
                    let b = face.bbox;
                    let mut row = format!(
                        "{},{i},{:.1},{:.1},{:.1},{:.1},{:.3},{},{conf:.6}",
                        csv_field(&rel),
                        b.left,
                        b.top,
                        b.right,
                        b.bottom,
                        face.score,
                        csv_field(classes.get(class).map(String::as_str).unwrap_or("?"))
                    );
                    for v in &p {
                        row.push_str(&format!(",{v:.6}"));
                    }
                    writeln!(csv_file, "{row}")?;
                    if args.explain {
                        if let Some(crop) = crop {
                            let s = predictor.meta.img_size;
                            let patch = args.explain_patch.unwrap_or((s / 7).max(1));
                            let stride = args.explain_stride.unwrap_or((patch / 2).max(1));
                            let heat = maskforge_train::explain::occlusion_map(&predictor, crop, class, patch, stride);
                            let display = crop.width().max(s);
                            let side = maskforge_train::explain::render_heatmap(crop, &heat, s, display);
                            let name = format!("{}_face{i}.png", strip_ext(&rel));
                            let p = args.out.join("explain").join(name);
                            save_rgb_atomic(&side, &p, 95).with_context(|| format!("cannot write {}", p.display()))?;
                        }
                    }
                    results.push(FaceResult { face: *face, class, confidence: conf });
                }
                n_faces += results.len();
                if results.is_empty() {
                    // Listed, so every photo is in predictions.csv or failures.csv.
                    no_face += 1;
                    failures.push(Failure::new(rel.clone(), NO_FACE_REASON));
                }
                annotate(&mut img, &results, &classes);
                let ext = Path::new(&rel).extension().and_then(|e| e.to_str()).unwrap_or("jpg").to_ascii_lowercase();
                let ext = if matches!(ext.as_str(), "png" | "jpg" | "jpeg") { ext } else { "jpg".into() };
                let out_path = args.out.join("annotated").join(format!("{}.{ext}", strip_ext(&rel)));
                save_rgb_atomic(&img, &out_path, 92).with_context(|| format!("cannot write {}", out_path.display()))?;
            }
        }
        pb.finish_and_clear();
        csv_file.commit().with_context(|| format!("cannot write {}", csv_path.display()))?;
        // Always written, so a failures.csv of an earlier run never lingers.
        let failures_path = args.out.join("failures.csv");
        write_failures_csv(&failures_path, &failures).with_context(|| format!("cannot write {}", failures_path.display()))?;
        println!(
            "{} photo(s), {n_faces} face(s) classified, {no_face} photo(s) without a detected face and {} unreadable (both in failures.csv); wrote {}/predictions.csv and annotated/{}",
            photos.len(),
            failures.len() - no_face,
            args.out.display(),
            if args.explain { ", explain/" } else { "" }
        );
        Ok(())
    }

    fn strip_ext(rel: &str) -> String {
        let p = Path::new(rel);
        match (p.parent(), p.file_stem()) {
            (Some(parent), Some(stem)) if !parent.as_os_str().is_empty() => {
                format!("{}/{}", parent.to_string_lossy(), stem.to_string_lossy())
            }
            (_, Some(stem)) => stem.to_string_lossy().into_owned(),
            _ => rel.to_string(),
        }
    }

    fn csv_field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
}
