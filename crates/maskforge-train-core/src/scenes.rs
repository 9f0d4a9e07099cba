//! `maskforge predict --labels`: a model and its face detector scored on
//! the user's own labelled photos. The labels' class names are mapped onto
//! the model's ([`ClassMap`]), the predicted faces are matched to the
//! labelled boxes ([`maskforge_metrics::scenes`]), and the report is written
//! as `scenes.txt` and `scenes.json`.

use crate::error::{Result, TrainError};
use maskforge_contracts::{SceneBox, SceneLabels};
use maskforge_imageio::write_atomic;
use maskforge_metrics::scenes::{ClassedBox, SceneScore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `--class-map LABEL=CLASS,...`: which model class each label name of the
/// annotation file means. Names the map leaves out must be model classes
/// already (compared without case).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassMap(BTreeMap<String, String>);

impl ClassMap {
    /// Parses `a=b,c=d` (spaces around names ignored; empty: no entries).
    pub fn parse(s: &str) -> std::result::Result<ClassMap, String> {
        let mut map = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (label, class) =
                pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected LABEL=CLASS (e.g. mask=correct)"))?;
            let (label, class) = (label.trim(), class.trim());
            if label.is_empty() || class.is_empty() {
                return Err(format!("{pair:?}: expected LABEL=CLASS with both names"));
            }
            if map.insert(label.to_string(), class.to_string()).is_some() {
                return Err(format!("label {label:?} is mapped twice"));
            }
        }
        Ok(ClassMap(map))
    }

    /// The model class index of every label name in `labels`, or one error
    /// naming each label that maps to no class of `classes`.
    pub fn resolve<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
        classes: &[String],
    ) -> Result<BTreeMap<String, usize>> {
        let find = |name: &str| classes.iter().position(|c| c.eq_ignore_ascii_case(name));
        let used: BTreeSet<&str> = labels.into_iter().collect();
        if let Some(label) = self.0.keys().find(|l| !used.contains(l.as_str())) {
            // A mapping for a label the file never uses is most likely a typo.
            return Err(TrainError::Config(format!(
                "--class-map names label {label:?}, which the labels never use (they use {used:?})"
            )));
        }
        let mut out = BTreeMap::new();
        let mut unknown = Vec::new();
        for label in used {
            let target = self.0.get(label).map(String::as_str).unwrap_or(label);
            match find(target) {
                Some(i) => {
                    out.insert(label.to_string(), i);
                }
                None if self.0.contains_key(label) => unknown.push(format!("{label}={target} (no class {target:?})")),
                None => unknown.push(label.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(TrainError::Config(format!(
                "labels {} are not classes of the model ({}): map them with --class-map LABEL=CLASS,...",
                unknown.join(", "),
                classes.join(", ")
            )));
        }
        Ok(out)
    }
}

/// What the scoring used and left out.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneRun {
    /// The score over the faces of the photos both read and labelled.
    pub score: SceneScore,
    /// Labelled photos that predict did not read (missing, unreadable):
    /// their faces are not in the score.
    pub not_read: Vec<String>,
    /// Photos predict read that the labels do not list (not scored).
    pub unlabelled: usize,
}

/// Scores `found` (predict's photos with their classified boxes) against
/// `labels`. Only labelled photos are scored.
pub fn score(
    labels: &SceneLabels,
    found: &[(String, Vec<ClassedBox>)],
    classes: &[String],
    map: &ClassMap,
    min_iou: f32,
) -> Result<SceneRun> {
    let names = labels.images.values().flatten().map(|b| b.label.as_str());
    let index = map.resolve(names, classes)?;
    let found: BTreeMap<&str, &Vec<ClassedBox>> = found.iter().map(|(p, b)| (p.as_str(), b)).collect();
    let mut score = SceneScore::new(classes.to_vec(), min_iou);
    let mut not_read = Vec::new();
    for (photo, boxes) in &labels.images {
        let Some(dets) = found.get(photo.as_str()) else {
            not_read.push(photo.clone());
            continue;
        };
        let truth: Vec<ClassedBox> = boxes.iter().map(|b: &SceneBox| classed(b, &index)).collect();
        score.add_photo(&truth, dets).map_err(|e| TrainError::Config(format!("{photo}: {e}")))?;
    }
    let unlabelled = found.keys().filter(|p| !labels.images.contains_key(**p)).count();
    Ok(SceneRun { score, not_read, unlabelled })
}

fn classed(b: &SceneBox, index: &BTreeMap<String, usize>) -> ClassedBox {
    // `resolve` gave every label an index.
    ClassedBox { bbox: [b.bbox.left, b.bbox.top, b.bbox.right, b.bbox.bottom], class: index[&b.label] }
}

/// Writes `OUT/scenes.txt` (the table) and `OUT/scenes.json`, atomically;
/// returns the text.
pub fn write_report(out: &Path, run: &SceneRun, labels_file: &Path) -> Result<String> {
    let mut text = run.score.table();
    if !run.not_read.is_empty() {
        text.push_str(&format!(
            "\n{} labelled photo(s) were not read (see failures.csv), their faces are not counted: {}\n",
            run.not_read.len(),
            run.not_read.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if run.unlabelled > 0 {
        text.push_str(&format!("\n{} photo(s) without labels were predicted but not scored\n", run.unlabelled));
    }
    let json = serde_json::json!({
        "labels": labels_file.display().to_string(),
        "score": run.score,
        "recall_faces_32px_or_more": run.score.headline.recall(),
        "accuracy_of_found": run.score.headline.accuracy(),
        "balanced_accuracy": run.score.balanced_accuracy(),
        "not_read": run.not_read,
        "unlabelled_photos": run.unlabelled,
    });
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let path = out.join(name);
        write_atomic(&path, bytes).map_err(TrainError::io(&path))?;
        Ok(path)
    };
    write("scenes.txt", text.as_bytes())?;
    let pretty = serde_json::to_vec_pretty(&json).map_err(|e| TrainError::Config(e.to_string()))?;
    write("scenes.json", &pretty)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_face::BBox;

    fn classes() -> Vec<String> {
        vec!["correct".into(), "unmasked".into()]
    }

    #[test]
    fn class_maps_parse_and_resolve_or_name_every_unknown_label() {
        let map = ClassMap::parse(" mask=correct , no_mask=unmasked").unwrap();
        let got = map.resolve(["mask", "no_mask", "mask"], &classes()).unwrap();
        assert_eq!(got, BTreeMap::from([("mask".into(), 0), ("no_mask".into(), 1)]));
        // Names that are classes need no entry (case aside).
        assert_eq!(ClassMap::default().resolve(["Correct"], &classes()).unwrap()["Correct"], 0);
        let err = ClassMap::default().resolve(["with_mask", "without_mask"], &classes()).unwrap_err().to_string();
        assert!(
            err.contains("labels with_mask, without_mask are not classes of the model (correct, unmasked)"),
            "{err}"
        );
        let err = ClassMap::parse("mask=masked").unwrap().resolve(["mask"], &classes()).unwrap_err().to_string();
        assert!(err.contains("mask=masked (no class \"masked\")"), "{err}");
        let err = ClassMap::parse("mask=correct,nomask=unmasked").unwrap().resolve(["mask"], &classes());
        assert!(err.unwrap_err().to_string().contains("never use"));
        assert!(ClassMap::parse("mask").is_err());
        assert!(ClassMap::parse("a=b,a=c").is_err());
        assert!(ClassMap::parse("=b").is_err());
    }

    #[test]
    fn only_labelled_photos_are_scored() {
        let mut labels = SceneLabels::default();
        let face = |l: f32, label: &str| SceneBox { bbox: BBox::new(l, 0.0, l + 50.0, 50.0), label: label.into() };
        labels.images.insert("a.jpg".into(), vec![face(0.0, "mask"), face(100.0, "no_mask")]);
        labels.images.insert("gone.jpg".into(), vec![face(0.0, "mask")]);
        let found = vec![
            ("a.jpg".to_string(), vec![ClassedBox { bbox: [1.0, 0.0, 51.0, 50.0], class: 0 }]),
            ("extra.jpg".to_string(), vec![]),
        ];
        let map = ClassMap::parse("mask=correct,no_mask=unmasked").unwrap();
        let run = score(&labels, &found, &classes(), &map, 0.3).unwrap();
        assert_eq!(run.not_read, vec!["gone.jpg".to_string()]);
        assert_eq!(run.unlabelled, 1);
        assert_eq!(run.score.photos, 1);
        assert_eq!((run.score.headline.annotated, run.score.headline.found, run.score.headline.correct), (2, 1, 1));
        let dir = tempfile::tempdir().unwrap();
        let text = write_report(dir.path(), &run, Path::new("boxes.csv")).unwrap();
        assert!(text.contains("1 labelled photo(s) were not read"), "{text}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("scenes.json")).unwrap()).unwrap();
        assert_eq!(json["recall_faces_32px_or_more"], 0.5);
        assert_eq!(std::fs::read_to_string(dir.path().join("scenes.txt")).unwrap(), text);
    }
}
