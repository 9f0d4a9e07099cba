//! `mask --labels coco,yolo`: a mask folder's label files for detector
//! training (their formats are `maskforge_contracts::labels`), written from
//! all its annotation rows at the end of every run and by `merge`.
//!
//! Which formats: those asked for, and those whose files are already in the
//! folder (so a later run into it, or a merge, never leaves them stale).
//! Classes: those the run's settings can make, so ids do not depend on
//! which images were done. Image sizes come from the outputs' headers, EXIF
//! orientation applied: a copied phone photo is labelled in the upright
//! coordinates its faces were found in.

use crate::naming::UNMASKED_KEY;
use crate::options::{LabelFormat, UnmaskedMode};
use crate::{Pipeline, PipelineError};
use maskforge_contracts::labels::{
    coco_file_name, coco_file_shard, write_coco, write_yolo, yolo_file_name, yolo_file_shard,
};
use maskforge_contracts::{AnnotationRow, LabelSet, RelPath};
use maskforge_imageio::upright_size;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The class folders a run of `pipeline` can make: its variants' and, with
/// `--unmasked`, the unmasked class.
pub(crate) fn run_classes(pipeline: &Pipeline) -> Vec<String> {
    let (opts, naming) = (pipeline.options(), pipeline.naming());
    let mut classes: BTreeSet<String> =
        opts.variants.iter().map(|(v, _)| naming.class_of(v.as_str()).to_string()).collect();
    if opts.unmasked != UnmaskedMode::None {
        classes.insert(naming.class_of(UNMASKED_KEY).to_string());
    }
    classes.into_iter().collect()
}

/// [`run_classes`] of the run that wrote a `mask_settings.json` (none when
/// it cannot be read: the rows' classes are used alone then).
pub(crate) fn settings_classes(json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(json) else { return Vec::new() };
    let map = v.get("classes").and_then(Value::as_object);
    let class = |key: &str| map.and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or(key).to_string();
    let mut classes: BTreeSet<String> = v
        .get("variants")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|pair| pair.get(0).and_then(Value::as_str).map(class))
        .collect();
    if v.get("unmasked").and_then(Value::as_str).is_some_and(|u| u != "None") {
        classes.insert(class(UNMASKED_KEY));
    }
    classes.into_iter().collect()
}

/// The label formats with a file in `dir` whose shard `wanted` accepts
/// (`None`: the merged file).
pub(crate) fn formats_in(dir: &Path, wanted: impl Fn(Option<(usize, usize)>) -> bool) -> BTreeSet<LabelFormat> {
    let mut formats = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if coco_file_shard(&name).is_some_and(&wanted) {
            formats.insert(LabelFormat::Coco);
        }
        if yolo_file_shard(&name).is_some_and(&wanted) {
            formats.insert(LabelFormat::Yolo);
        }
    }
    formats
}

/// Whether `name` (a file at the top of a mask folder) is a label file of any shard.
pub(crate) fn is_label_file(name: &str) -> bool {
    coco_file_shard(name).is_some() || yolo_file_shard(name).is_some()
}

/// Whether `name` is a shard's label file (`labels.*.shard-I-of-N.*`).
pub(crate) fn is_shard_label_file(name: &str) -> bool {
    matches!(coco_file_shard(name), Some(Some(_))) || matches!(yolo_file_shard(name), Some(Some(_)))
}

/// Writes the label files of `formats` for `rows` into `out` (a shard's
/// names with `shard`); returns a `labels: OUTPUT: reason` line for each
/// output or face left out.
pub(crate) fn write_labels(
    out: &Path,
    rows: &[AnnotationRow],
    classes: Vec<String>,
    formats: &BTreeSet<LabelFormat>,
    shard: Option<(usize, usize)>,
) -> Result<Vec<String>, PipelineError> {
    if formats.is_empty() {
        return Ok(Vec::new());
    }
    let size_of = |output: &str| {
        let rel = RelPath::new(output).map_err(|e| e.to_string())?;
        upright_size(&rel.under(out))
    };
    let set = LabelSet::new(rows, classes, size_of);
    let mut warnings: Vec<String> = set.left_out.iter().map(|l| format!("labels: {l}")).collect();
    if formats.contains(&LabelFormat::Coco) {
        write_coco(&out.join(coco_file_name(shard)), &set)?;
    }
    if formats.contains(&LabelFormat::Yolo) {
        let shared = write_yolo(out, &out.join(yolo_file_name(shard)), &set)?;
        warnings.extend(shared.into_iter().map(|l| format!("labels: {l}")));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn sizes_come_upright_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        RgbImage::from_pixel(30, 20, Rgb([1, 2, 3])).save(&path).unwrap();
        assert_eq!(upright_size(&path), Ok((30, 20)));
        // A JPEG whose EXIF says "rotate 90°": shown 20 wide, 30 high.
        let mut jpeg = Vec::new();
        RgbImage::from_pixel(30, 20, Rgb([1, 2, 3]))
            .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        #[rustfmt::skip]
        let exif: &[u8] = &[
            0xFF, 0xE1, 0x00, 0x22, b'E', b'x', b'i', b'f', 0, 0,
            b'M', b'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, // big-endian TIFF header, IFD at 8
            0x00, 0x01, // one entry
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, // Orientation = 6
            0x00, 0x00, 0x00, 0x00, // no next IFD
        ];
        let rotated = [&jpeg[..2], exif, &jpeg[2..]].concat();
        let path = dir.path().join("r.jpg");
        std::fs::write(&path, rotated).unwrap();
        assert_eq!(upright_size(&path), Ok((20, 30)));
        let loaded = maskforge_imageio::load_rgb(&path, Default::default()).unwrap();
        assert_eq!(loaded.dimensions(), (20, 30), "the mask stage reads it the same way");
        assert!(upright_size(&dir.path().join("missing.png")).is_err());
    }

    #[test]
    fn label_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert!(formats_in(dir.path(), |_| true).is_empty());
        std::fs::write(dir.path().join("labels.coco.shard-2-of-3.json"), "{}").unwrap();
        std::fs::write(dir.path().join("labels.yolo.yaml"), "").unwrap();
        assert_eq!(formats_in(dir.path(), |s| s.is_none()), BTreeSet::from([LabelFormat::Yolo]));
        assert_eq!(formats_in(dir.path(), |s| s == Some((2, 3))), BTreeSet::from([LabelFormat::Coco]));
        assert!(is_label_file("labels.coco.json") && !is_label_file("annotations.csv"));
        assert!(is_shard_label_file("labels.yolo.shard-1-of-2.yaml") && !is_shard_label_file("labels.yolo.yaml"));
        assert!(settings_classes("{").is_empty());
        let json = r#"{"variants":[["correct",1.0],["chin",1.0]],"classes":{"chin":"incorrect","correct":"correct",
            "unmasked":"plain"},"unmasked":"Copy"}"#;
        assert_eq!(settings_classes(json), ["correct", "incorrect", "plain"]);
    }
}
