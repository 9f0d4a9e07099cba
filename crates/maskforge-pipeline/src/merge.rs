//! Joining the outputs of `maskforge mask --shard I/N` runs.
//!
//! Shards write disjoint image files and their own `NAME.shard-I-of-N.csv`.
//! [`merge`] optionally brings other shard folders' files into the
//! destination (hard links, or copies across file systems; never
//! overwriting a different file), then joins all annotation, failure and
//! source-stamp CSVs in the destination into `NAME.csv`, sorted exactly as a
//! single run would have written them. When any of the folders has label
//! files (`mask --labels`), the merged ones are written from the merged
//! rows (the shards' YOLO `.txt` files are not brought: they are rewritten)
//! and the shards' label files removed.

use crate::labels::{formats_in, is_label_file, is_shard_label_file, settings_classes, write_labels};
use crate::options::LabelFormat;
use crate::PipelineError;
use maskforge_contracts::mask_files::{self, csv_name, shard_of, ANNOTATIONS, FAILURES, MASK_SETTINGS_JSON, SOURCES};
use maskforge_contracts::AnnotationRow;
use maskforge_imageio::Failure;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// A CSV file and the shard `(I, N)` it belongs to (`None`: a merged file).
type ShardFile = (PathBuf, Option<(usize, usize)>);

/// What a merge did.
#[derive(Clone, Debug, Default)]
pub struct MergeReport {
    /// Rows of the merged `annotations.csv`.
    pub annotation_rows: usize,
    /// Distinct source images among those rows.
    pub sources: usize,
    /// Annotation CSV files joined.
    pub csv_files: usize,
    /// Rows of the merged `failures.csv` (duplicates dropped).
    pub failures: usize,
    /// Files brought in from other folders.
    pub brought: usize,
    /// The merged annotations file.
    pub annotations: PathBuf,
    /// Shards of an N-way split that are missing (when not required), and
    /// outputs left out of the label files (`labels: OUTPUT: reason`).
    pub warnings: Vec<String>,
    /// The label formats written.
    pub labels: Vec<LabelFormat>,
}

/// Brings `from`'s files into `out` and joins every CSV there. With
/// `require_all_shards`, a missing shard is an error rather than a warning.
pub fn merge(out: &Path, from: &[PathBuf], require_all_shards: bool) -> Result<MergeReport, PipelineError> {
    let inputs: Vec<&Path> = from.iter().map(PathBuf::as_path).collect();
    maskforge_imageio::check_disjoint(&inputs, &[maskforge_imageio::Output::new(out, "output folder")])?;
    check_folders(out, from)?;
    std::fs::create_dir_all(out).map_err(PipelineError::io(out))?;
    let mut formats = formats_in(out, |_| true);
    let mut brought = 0;
    for src in from {
        let theirs = formats_in(src, |_| true);
        brought += bring_folder(src, out, theirs.contains(&LabelFormat::Yolo))?;
        formats.extend(theirs);
    }
    let (mut report, rows) = join_annotations(out, require_all_shards)?;
    report.failures = join_failures(out)?;
    join_sources(out)?;
    if !formats.is_empty() {
        let settings = std::fs::read_to_string(out.join(MASK_SETTINGS_JSON)).unwrap_or_default();
        report.warnings.extend(write_labels(out, &rows, settings_classes(&settings), &formats, None)?);
        // The shards' own label files: their class ids may differ from the merged ones.
        for e in std::fs::read_dir(out).map_err(PipelineError::io(out))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_label_file(&name) && is_shard_label_file(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        report.labels = formats.into_iter().collect();
    }
    // The `from-*` copies were only staging for this join.
    for base in [ANNOTATIONS, FAILURES, SOURCES] {
        for (path, _) in from_files(out, base)? {
            let _ = std::fs::remove_file(path);
        }
    }
    report.brought = brought;
    Ok(report)
}

/// Checks every `--from` folder before anything is brought in, so a bad one
/// leaves OUT as it was: each is a folder made with the settings of the
/// others (and of OUT's), and its annotation CSVs read (every path in them
/// checked: a tampered shard must not carry `../x` rows into OUT's file).
fn check_folders(out: &Path, from: &[PathBuf]) -> Result<(), PipelineError> {
    let mut settings: Option<(PathBuf, String)> =
        std::fs::read_to_string(out.join(MASK_SETTINGS_JSON)).ok().map(|s| (out.to_path_buf(), s));
    for src in from {
        if !src.is_dir() {
            return Err(PipelineError::NotAFolder(src.to_path_buf()));
        }
        if let Ok(theirs) = std::fs::read_to_string(src.join(MASK_SETTINGS_JSON)) {
            match &settings {
                Some((dir, ours)) if *ours != theirs => {
                    return Err(PipelineError::MergeSettings { theirs: src.to_path_buf(), ours: dir.clone() });
                }
                Some(_) => {}
                None => settings = Some((src.to_path_buf(), theirs)),
            }
        }
        for (path, _) in csv_files(src, ANNOTATIONS)? {
            maskforge_contracts::read_annotations(&path)?;
        }
    }
    Ok(())
}

/// Brings one shard folder's images and CSVs into `out`; returns how many
/// image files were added. Label files are not brought (merge writes its
/// own), nor YOLO `.txt` files when `src` has YOLO labels.
fn bring_folder(src: &Path, out: &Path, skip_txt: bool) -> Result<usize, PipelineError> {
    if !src.is_dir() {
        return Err(PipelineError::NotAFolder(src.to_path_buf()));
    }
    let settings = out.join(MASK_SETTINGS_JSON);
    let ours = std::fs::read_to_string(&settings).ok();
    let theirs = std::fs::read_to_string(src.join(MASK_SETTINGS_JSON)).ok();
    match (&ours, &theirs) {
        (Some(a), Some(b)) if a != b => {
            return Err(PipelineError::MergeSettings { theirs: src.to_path_buf(), ours: out.to_path_buf() });
        }
        (None, Some(b)) => {
            maskforge_imageio::write_atomic(&settings, b.as_bytes()).map_err(PipelineError::io(&settings))?
        }
        _ => {}
    }
    let brought = bring_files(src, out, skip_txt)?;
    // Their CSVs join ours under their shard names.
    for base in [ANNOTATIONS, FAILURES, SOURCES] {
        for (path, shard) in csv_files(src, base)? {
            let target = out.join(csv_name(base, shard));
            if shard.is_none() {
                // A folder's already merged file: keep its rows under a unique name.
                let alt = out.join(format!("{base}.from-{}.csv", safe_name(src)));
                std::fs::copy(&path, &alt).map_err(PipelineError::io(&path))?;
            } else if target.exists() && !same_file_content(&path, &target) {
                return Err(PipelineError::ShardFilesDiffer { theirs: path, ours: target });
            } else if !target.exists() {
                std::fs::copy(&path, &target).map_err(PipelineError::io(&path))?;
            }
        }
    }
    Ok(brought)
}

/// Joins `annotations*.csv` into `annotations.csv`, checking the shards; returns the rows too.
fn join_annotations(out: &Path, require_all_shards: bool) -> Result<(MergeReport, Vec<AnnotationRow>), PipelineError> {
    let mut rows: Vec<AnnotationRow> = Vec::new();
    let mut shards: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut files = csv_files(out, ANNOTATIONS)?;
    files.extend(from_files(out, ANNOTATIONS)?);
    for (path, shard) in &files {
        rows.extend(maskforge_contracts::read_annotations(path)?);
        if let Some((i, n)) = shard {
            shards.entry(*n).or_default().insert(*i);
        }
    }
    if files.is_empty() {
        return Err(PipelineError::NothingToMerge(out.to_path_buf()));
    }
    if shards.len() > 1 {
        return Err(PipelineError::MixedSplits { counts: shards.keys().copied().collect(), dir: out.to_path_buf() });
    }
    let mut warnings = Vec::new();
    for (n, have) in &shards {
        let missing: Vec<usize> = (1..=*n).filter(|i| !have.contains(i)).collect();
        if !missing.is_empty() {
            let e = PipelineError::MissingShards { missing, count: *n };
            if require_all_shards {
                return Err(e);
            }
            warnings.push(e.to_string());
        }
    }
    let annotations = out.join(csv_name(ANNOTATIONS, None));
    maskforge_contracts::write_annotations(&annotations, &rows)?;
    let sources: BTreeSet<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let report = MergeReport {
        annotation_rows: rows.len(),
        sources: sources.len(),
        csv_files: files.len(),
        annotations,
        warnings,
        ..Default::default()
    };
    Ok((report, rows))
}

/// Joins `failures*.csv` into `failures.csv`; returns how many failures it lists.
fn join_failures(out: &Path) -> Result<usize, PipelineError> {
    let mut failures = Vec::new();
    let mut files = csv_files(out, FAILURES)?;
    files.extend(from_files(out, FAILURES)?);
    for (path, _) in &files {
        let mut r = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
        for row in r.records() {
            let row = row.map_err(|e| csv_error(path, e))?;
            if let (Some(p), Some(reason)) = (row.get(0), row.get(1)) {
                failures.push(Failure::new(p, reason));
            }
        }
    }
    failures.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
    failures.dedup();
    let path = out.join(csv_name(FAILURES, None));
    maskforge_imageio::write_failures_csv(&path, &failures).map_err(PipelineError::io(&path))?;
    Ok(failures.len())
}

/// Joins the source stamps, so the merged folder resumes like a single run's.
fn join_sources(out: &Path) -> Result<(), PipelineError> {
    let mut stamps = Vec::new();
    let mut files = csv_files(out, SOURCES)?;
    files.extend(from_files(out, SOURCES)?);
    for (path, _) in &files {
        stamps.extend(mask_files::read_sources(path)?);
    }
    if !files.is_empty() {
        mask_files::write_sources(&out.join(csv_name(SOURCES, None)), &stamps)?;
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> PipelineError {
    PipelineError::Contract(maskforge_contracts::ContractError::format(path, e.to_string()))
}

/// The CSVs of one base name in `dir`: the merged one and every shard's.
fn csv_files(dir: &Path, base: &str) -> Result<Vec<ShardFile>, PipelineError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(PipelineError::io(dir))? {
        let e = e.map_err(PipelineError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == csv_name(base, None) {
            out.push((e.path(), None));
        } else if let Some(s) = shard_of(&name, base) {
            out.push((e.path(), Some(s)));
        }
    }
    out.sort();
    Ok(out)
}

/// The `NAME.from-KEY.csv` copies of other folders' merged files in `dir`.
fn from_files(dir: &Path, base: &str) -> Result<Vec<ShardFile>, PipelineError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(PipelineError::io(dir))? {
        let e = e.map_err(PipelineError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{base}.from-")) && name.ends_with(".csv") {
            out.push((e.path(), None));
        }
    }
    out.sort();
    Ok(out)
}

/// A short file-name-safe key for a folder path.
fn safe_name(p: &Path) -> String {
    format!("{:016x}", maskforge_mask::rng::stable_hash(p.to_string_lossy().as_bytes()))
}

fn same_file_content(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => std::fs::read(a).ok() == std::fs::read(b).ok(),
        _ => false,
    }
}

/// Brings `src`'s files into `dst` (links or copies), but for `.txt` files
/// with `skip_txt`; returns how many were added.
fn bring_files(src: &Path, dst: &Path, skip_txt: bool) -> Result<usize, PipelineError> {
    let mut added = 0;
    for entry in WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(|source| PipelineError::Walk { path: src.to_path_buf(), source })?;
        let kind = entry.file_type();
        if !kind.is_file() && !kind.is_symlink() {
            continue;
        }
        let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
        let name = entry.file_name().to_string_lossy();
        // Each folder's CSVs are joined, not copied over each other; journals are private.
        let top_level = rel.components().count() == 1;
        if top_level && (name.ends_with(".csv") || name == MASK_SETTINGS_JSON || name.starts_with('.')) {
            continue;
        }
        // Label files are written from the merged rows; a shard's may number classes differently.
        let is_txt = rel.extension() == Some(OsStr::new("txt"));
        if (top_level && is_label_file(&name)) || (skip_txt && is_txt && !top_level) {
            continue;
        }
        let target = maskforge_imageio::confined(dst, rel)?;
        if target.symlink_metadata().is_ok() {
            if kind.is_symlink() || same_file_content(entry.path(), &target) {
                continue;
            }
            return Err(PipelineError::Collision { theirs: entry.path().to_path_buf(), ours: target });
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
        }
        bring_file(entry.path(), kind.is_symlink(), &target)?;
        added += 1;
    }
    Ok(added)
}

/// One file: a symlink is recreated, anything else hard-linked or copied (atomically).
fn bring_file(from: &Path, is_symlink: bool, target: &Path) -> Result<(), PipelineError> {
    if is_symlink {
        #[cfg(unix)]
        {
            let link = std::fs::read_link(from).map_err(PipelineError::io(from))?;
            std::os::unix::fs::symlink(&link, target).map_err(PipelineError::io(target))?;
        }
        #[cfg(not(unix))]
        std::fs::copy(from, target).map_err(PipelineError::io(target))?;
    } else if std::fs::hard_link(from, target).is_err() {
        let tmp = maskforge_imageio::temp_path_for(target, "merge");
        std::fs::copy(from, &tmp).map_err(PipelineError::io(&tmp))?;
        std::fs::rename(&tmp, target).map_err(PipelineError::io(target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_folders_of_different_splits_and_names_missing_shards() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let header = maskforge_contracts::annotations_bytes(&[]).unwrap();
        std::fs::write(out.join("annotations.shard-1-of-3.csv"), &header).unwrap();
        let report = merge(out, &[], false).unwrap();
        assert_eq!(report.warnings, ["shards [2, 3] of 3 are missing: their images are not in the merged CSVs"]);
        assert_eq!(std::fs::read(out.join("annotations.csv")).unwrap(), header);
        assert!(matches!(merge(out, &[], true), Err(PipelineError::MissingShards { .. })));
        std::fs::write(out.join("annotations.shard-1-of-2.csv"), &header).unwrap();
        assert!(matches!(merge(out, &[], false), Err(PipelineError::MixedSplits { .. })));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(merge(empty.path(), &[], false), Err(PipelineError::NothingToMerge(_))));
    }
}
