//! `maskforge predict`: find faces in photos, classify each with a trained
//! checkpoint, write annotated photos and `predictions.csv`; with
//! `--labels`, also score detector and model on the user's labelled photos
//! (`scenes.txt`, `scenes.json`).

use crate::common;
use crate::detector::DetectorOpts;
use anyhow::Result;
use clap::{Args, ValueEnum};
use image::RgbImage;
use maskforge_contracts::{read_scene_labels, SceneLabels, SceneLabelsFormat};
use maskforge_landmarks::DetectorKind;
use maskforge_train::predict::{find_photos, predict_photos, PredictOptions};
use maskforge_train::scenes::{self, ClassMap};
use maskforge_train::{Ensemble, Tta};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A photo, or a folder of photos (searched recursively).
    pub input: PathBuf,
    /// A checkpoint written by `maskforge train` (e.g. runs/NAME/best.safetensors). Given more
    /// than once, the models classify together: each face's probabilities are the mean of
    /// theirs (each model at its own input size and normalisation; all must have the same
    /// classes).
    #[arg(long, value_name = "FILE", required = true)]
    pub model: Vec<PathBuf>,
    /// Output folder: annotated/ images, predictions.csv, explain/ heat-maps, failures.csv,
    /// predict_settings.json (the models, --tta, detector and crop this run used).
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
    /// Test-time augmentation: `flip` also classifies each face's mirror image and averages
    /// the two logits (twice the model's work); `none` classifies each face once.
    #[arg(long, default_value = "none", value_name = "none|flip")]
    pub tta: Tta,
    /// Face-detection threads, up to 1024 [default: all cores].
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub detector: DetectorOpts,
    #[command(flatten)]
    pub labels: LabelsOpts,
}

/// Scoring against the user's labelled photos.
#[derive(Args, Debug)]
pub struct LabelsOpts {
    /// Also score detector and model against these face boxes with class names: a Pascal VOC
    /// XML file or folder, a COCO JSON file, a folder of YOLO .txt files (class names from a
    /// *.yaml `names:`, classes.txt or obj.names), or a CSV `image,xmin,ymin,xmax,ymax,label`.
    /// Image paths are relative to INPUT. Writes OUT/scenes.txt and OUT/scenes.json: faces
    /// found, boxes matching no labelled face, and classification accuracy, by class and by
    /// size band.
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// Layout of --labels [default: by content].
    #[arg(long, value_enum, requires = "labels")]
    pub labels_format: Option<LabelsFormatArg>,
    /// Which model class each label name means, e.g. `mask=correct,no_mask=unmasked`; labels
    /// named like a model class need no entry.
    #[arg(long, value_name = "MAP", requires = "labels", value_parser = ClassMap::parse)]
    pub class_map: Option<ClassMap>,
    /// A detected face matches a labelled one when their boxes overlap at least this much
    /// (intersection over union; labelled boxes range from tight faces to whole heads).
    #[arg(long, default_value_t = 0.3, requires = "labels", value_parser = parse_iou)]
    pub min_iou: f32,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LabelsFormatArg {
    Voc,
    Coco,
    Yolo,
    Csv,
}

impl From<LabelsFormatArg> for SceneLabelsFormat {
    fn from(f: LabelsFormatArg) -> Self {
        match f {
            LabelsFormatArg::Voc => SceneLabelsFormat::Voc,
            LabelsFormatArg::Coco => SceneLabelsFormat::Coco,
            LabelsFormatArg::Yolo => SceneLabelsFormat::Yolo,
            LabelsFormatArg::Csv => SceneLabelsFormat::Csv,
        }
    }
}

fn parse_iou(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?}: must be a number above 0 and at most 1")),
    }
}

/// How the summary says the faces were classified, when not by one model once.
fn how_classified(models: usize, tta: Tta) -> String {
    let mut how = String::new();
    if models > 1 {
        how.push_str(&format!(" by {models} models (their mean probabilities)"));
    }
    if tta == Tta::Flip {
        how.push_str(" with their mirror images (--tta flip)");
    }
    how
}

/// The labels, read before any photo is predicted (a bad file fails fast).
fn read_labels(opts: &LabelsOpts, root: &Path) -> Result<Option<SceneLabels>> {
    let Some(path) = &opts.labels else { return Ok(None) };
    let labels = read_scene_labels(path, root, opts.labels_format.map(Into::into))?;
    for (what, why) in &labels.skipped {
        eprintln!("labels: skipped {what}: {why}");
    }
    Ok(Some(labels))
}

pub fn run(args: PredictArgs) -> Result<()> {
    let device = maskforge_train::device::parse_device(&args.device)?;
    let (root, photos, walk_failures) = find_photos(&args.input, &args.out)?;
    let mut models = Ensemble::load(&args.model, device)?;
    models.set_tta(args.tta);
    let s = models.members()[0].meta.img_size;
    let explain = args.explain.then(|| PredictOptions::explain_sizes(s, args.explain_patch, args.explain_stride));
    let detector_config = args.detector.config(DetectorKind::CenterFace);
    let opts = PredictOptions {
        root,
        photos,
        out: args.out.clone(),
        crop_size: args.crop_size,
        crop_margin: args.crop_margin,
        explain,
        limits: args.detector.limits(),
        decode_budget: maskforge_imageio::DecodeBudget::from_available_memory(),
        detector: format!("{}; {}", detector_config.detector_text(), detector_config.scale_text()),
    };
    opts.check(&models)?;
    let labels = read_labels(&args.labels, &opts.root)?;
    let class_map = args.labels.class_map.clone().unwrap_or_default();
    if let Some(labels) = &labels {
        // Fail before predicting when a label has no class.
        class_map.resolve(labels.images.values().flatten().map(|b| b.label.as_str()), models.classes())?;
    }
    let mut detector = DetectorOpts::build(&detector_config, device)?;
    let finder = move |img: &RgbImage| detector.detect(img).map_err(|e| e.to_string());
    let pool = common::thread_pool(args.jobs)?;
    common::share_cores_with_workers(pool.current_num_threads());
    let pb = common::progress_bar(opts.photos.len() as u64, "predict");
    let progress = |rel: &str, skipped: Option<&str>| {
        pb.inc(1);
        if let Some(reason) = skipped {
            pb.println(format!("skipped {rel}: {reason}"));
        }
    };
    let summary = predict_photos(&opts, &models, &finder, walk_failures, &pool, &progress)?;
    pb.finish_and_clear();
    println!(
        "{} photo(s), {} face(s) classified{}, {} photo(s) without a detected face and {} unreadable (both in failures.csv); wrote {}/predictions.csv and annotated/{}",
        summary.photos,
        summary.faces,
        how_classified(args.model.len(), args.tta),
        summary.without_face,
        summary.unreadable,
        args.out.display(),
        if args.explain { ", explain/" } else { "" }
    );
    if let (Some(labels), Some(file)) = (labels, &args.labels.labels) {
        let run = scenes::score(&labels, &summary.found, models.classes(), &class_map, args.labels.min_iou)?;
        print!("\n{}", scenes::write_report(&args.out, &run, file)?);
        println!("wrote {}/scenes.txt and scenes.json", args.out.display());
    }
    Ok(())
}
