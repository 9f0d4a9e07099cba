//! `OUT/mask_settings.json`: everything that decides the outputs, so a
//! re-run with different settings cannot silently mix two datasets.

use crate::options::{OutputFormat, SynthOptions, UnmaskedMode, VariantMode};
use crate::{Pipeline, PipelineError};
use maskforge_contracts::mask_files::MASK_SETTINGS_JSON;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How faces are found, as recorded in the settings (the pipeline does not
/// find faces itself; see [`crate::FaceSource`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorSettings {
    /// Detector name, e.g. `hog` or `cnn`.
    pub detector: String,
    /// Longest side of the detection image (0: full size or `scale`).
    pub detect_max_side: u32,
    /// How the detection image is sized, in words, when that is not just
    /// `detect_max_side` (e.g. the automatic scale from `--min-face`).
    pub scale: Option<String>,
    /// Doublings of the detection image before detecting.
    pub upsample: u32,
    /// Faces read from a file instead (`mask --landmarks`): e.g.
    /// `landmarks.csv (detect, sha256 …)`. Not written when `None`, so the
    /// settings of detecting runs are as before.
    pub faces: Option<String>,
}

/// The contents of `mask_settings.json`, in the order written.
#[derive(Serialize, Debug)]
pub struct Settings {
    tool: &'static str,
    variants: Vec<(String, f32)>,
    mode: VariantMode,
    /// Left out at 1, so folders made before `--draws` existed still resume.
    #[serde(skip_serializing_if = "is_one")]
    draws: u32,
    /// Left out at 1, so folders made before `--framings` existed still resume.
    #[serde(skip_serializing_if = "is_one")]
    framings: u32,
    classes: BTreeMap<String, String>,
    unmasked: UnmaskedMode,
    templates: Vec<(String, String)>,
    /// Each template's share of the draw (descriptor or `--template name=weight`).
    template_weights: Vec<f32>,
    colour: String,
    texture: String,
    texture_weight: Option<f32>,
    lighting: f32,
    shadow: f32,
    relief: f32,
    photo_match: f32,
    crop_size: u32,
    crop_margin: f32,
    seed: u64,
    min_face: u32,
    largest_only: bool,
    /// `skip`, or the class of whole images with a bare face.
    bare_faces: String,
    format: OutputFormat,
    quality: u8,
    detector: String,
    detect_max_side: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    detect_scale: Option<String>,
    upsample: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    faces: Option<String>,
    segmentation: bool,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Settings {
    /// The settings of a pipeline built from `synth` options, with faces found as `detector` says.
    pub fn new(pipeline: &Pipeline, synth: &SynthOptions, detector: &DetectorSettings) -> Settings {
        let opts = pipeline.options();
        let templates = pipeline.synthesizer().templates.templates();
        Settings {
            tool: concat!("maskforge mask ", env!("CARGO_PKG_VERSION")),
            variants: opts.variants.iter().map(|(v, w)| (v.as_str().to_string(), *w)).collect(),
            mode: opts.mode,
            draws: opts.draws,
            framings: opts.framings,
            classes: pipeline.naming().classes(),
            unmasked: opts.unmasked,
            templates: templates.iter().map(|t| (t.name().to_string(), format!("{:016x}", t.fingerprint))).collect(),
            template_weights: pipeline.synthesizer().templates.weights().to_vec(),
            colour: synth.colour.clone(),
            texture: synth.texture.clone(),
            texture_weight: synth.texture_weight,
            lighting: pipeline.synthesizer().blend.lighting,
            shadow: pipeline.synthesizer().blend.shadow,
            relief: pipeline.synthesizer().blend.relief,
            photo_match: pipeline.synthesizer().blend.photo_match,
            crop_size: opts.crop_size,
            crop_margin: opts.crop_margin,
            seed: opts.seed,
            min_face: opts.faces.min_face,
            largest_only: opts.faces.largest_only,
            bare_faces: opts.bare_faces.clone().unwrap_or_else(|| "skip".into()),
            format: opts.format,
            quality: opts.quality,
            detector: detector.detector.clone(),
            detect_max_side: detector.detect_max_side,
            detect_scale: detector.scale.clone(),
            upsample: detector.upsample,
            faces: detector.faces.clone(),
            segmentation: opts.seg_dir.is_some(),
        }
    }

    /// The file's text: pretty JSON and a newline.
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and maps: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Makes `out` ready for a run with these settings: a new or empty folder,
/// or one an earlier run made with the same settings. Writes the settings
/// file and removes temporary files that dead runs left in `out` and `seg_dir`.
pub(crate) fn prepare_output_folder(
    out: &Path,
    seg_dir: Option<&Path>,
    settings_json: &str,
) -> Result<(), PipelineError> {
    let settings_path = out.join(MASK_SETTINGS_JSON);
    if out.exists() {
        match std::fs::read_to_string(&settings_path) {
            Ok(old) if old != settings_json => {
                let diff = settings_diff(&old, settings_json);
                return Err(PipelineError::DifferentSettings { dir: out.to_path_buf(), diff });
            }
            Ok(_) => {}
            Err(_) => {
                let non_empty = std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false);
                if non_empty {
                    return Err(PipelineError::NotAMaskFolder(out.to_path_buf()));
                }
            }
        }
    }
    std::fs::create_dir_all(out).map_err(PipelineError::io(out))?;
    let io = PipelineError::io(&settings_path);
    maskforge_imageio::write_atomic(&settings_path, settings_json.as_bytes()).map_err(io)?;
    maskforge_imageio::remove_stale_temp_files(out);
    if let Some(seg) = seg_dir {
        maskforge_imageio::remove_stale_temp_files(seg);
    }
    Ok(())
}

/// The fields that differ, one `  key: old -> new` line each.
fn settings_diff(old: &str, new: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    match (parse(old), parse(new)) {
        (Some(serde_json::Value::Object(a)), Some(serde_json::Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let shown = |v: Option<&serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| format!("  {k}: {} -> {}", shown(a.get(k)), shown(b.get(k))))
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => "  (unreadable mask_settings.json)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_the_changed_fields() {
        let d = settings_diff(r#"{"seed":1,"mode":"Each"}"#, r#"{"seed":5,"mode":"Each","x":true}"#);
        assert_eq!(d, "  seed: 1 -> 5\n  x: - -> true");
        assert_eq!(settings_diff("{", "{}"), "  (unreadable mask_settings.json)");
    }

    #[test]
    fn a_foreign_folder_is_refused_and_ours_reused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        prepare_output_folder(&out, None, "{\"seed\":1}\n").unwrap();
        prepare_output_folder(&out, None, "{\"seed\":1}\n").unwrap();
        let err = prepare_output_folder(&out, None, "{\"seed\":2}\n").unwrap_err().to_string();
        assert!(err.contains("seed: 1 -> 2"), "{err}");
        std::fs::write(dir.path().join("photo.jpg"), b"x").unwrap();
        let err = prepare_output_folder(dir.path(), None, "{}\n").unwrap_err();
        assert!(matches!(err, PipelineError::NotAMaskFolder(_)), "{err}");
    }
}
