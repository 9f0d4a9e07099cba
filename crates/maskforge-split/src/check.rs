//! Reading manifests back: `maskforge verify` and `maskforge stats MANIFEST`.

use crate::assign::Split;
use crate::manifest::read_classes;
use crate::plan::{CLASSES_CSV, SPLIT_JSON};
use crate::scan::load_complete;
use crate::stats::{stats_from_sums, stats_sums, ChannelSums, Stats};
use crate::{Progress, SplitError};
use maskforge_contracts::{read_manifest, Entry, ReadOptions, SetRecord, SplitJson};
use maskforge_imageio::{hex, sha256_hex, Failure, LoadLimits};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Manifests with what is needed to read them: the dataset root and classes.
#[derive(Clone, Debug)]
pub struct ManifestSet {
    /// The dataset root the manifests' paths are relative to.
    pub root: PathBuf,
    /// The folder of the manifests (and of `split.json`, `classes.csv`).
    pub dir: PathBuf,
    /// Class names by index.
    pub classes: Vec<String>,
    /// (file name, usable rows) in split order. Every path is checked to
    /// stay under the root; open it with `entry.path.under(&set.root)`.
    pub manifests: Vec<(String, Vec<Entry>)>,
    /// Rows the reader refused, per manifest (same order as `manifests`),
    /// keyed `file:line`.
    pub skipped: Vec<Vec<Failure>>,
    /// `split.json` of the folder, when there is one, as train reads it too.
    pub record: Option<SplitJson>,
    /// The fingerprint part of `split.json` ([`SetRecord::Absent`] without one).
    pub set: SetRecord,
    /// True when `target` was a folder (all its manifests are read).
    pub whole_folder: bool,
}

/// Opens a manifest folder (as `maskforge split --out` writes it) or one
/// manifest file. The dataset root is `root` if given, else the one recorded
/// in `split.json` beside the manifests (relative: to their folder; read by
/// the reader training uses, [`SplitJson`]); classes come from `classes.csv`
/// beside them, else `split.json`, else the rows themselves. Rows the reader
/// refuses (a path outside the root, a bad field) are kept in `skipped`.
pub fn open_manifests(target: &Path, root: Option<&Path>) -> Result<ManifestSet, SplitError> {
    let meta = std::fs::metadata(target).map_err(SplitError::io(target))?;
    let whole_folder = meta.is_dir();
    let dir = if whole_folder {
        target.to_path_buf()
    } else {
        target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let record_path = dir.join(SPLIT_JSON);
    let record = SplitJson::read(&dir)?;
    let set = record.as_ref().map_or(SetRecord::Absent, |r| r.set.clone());

    let files: Vec<PathBuf> = if !whole_folder {
        vec![target.to_path_buf()]
    } else if let Some(listed) = record.as_ref().and_then(|r| r.manifests.as_ref()) {
        listed.iter().map(|m| m.under(&dir)).collect()
    } else {
        Split::ALL.iter().map(|s| dir.join(s.manifest_name())).filter(|p| p.is_file()).collect()
    };
    if files.is_empty() {
        return Err(SplitError::Manifest {
            path: dir,
            message: "no split.json and no train.csv/val.csv/test.csv here".into(),
        });
    }
    let classes_path = dir.join(CLASSES_CSV);
    let known_classes: Option<Vec<String>> = if classes_path.is_file() {
        Some(read_classes(&classes_path)?.into_iter().map(|c| c.name).collect())
    } else {
        record.as_ref().and_then(|rec| rec.classes.clone())
    };
    let mut manifests = Vec::new();
    let mut skipped = Vec::new();
    for f in &files {
        let m = read_manifest(f, ReadOptions { classes: known_classes.as_deref() })?;
        manifests.push((m.name, m.entries));
        skipped.push(m.skipped);
    }

    let root = match (root, &record) {
        (Some(r), _) => r.to_path_buf(),
        (None, Some(SplitJson { dataset_root: Some(r), .. })) => r.clone(),
        (None, found) => {
            let what = if found.is_some() { "has no dataset_root" } else { "missing" };
            return Err(SplitError::Manifest {
                path: record_path,
                message: format!("{what}, so the dataset root is unknown: pass --root"),
            });
        }
    };
    let classes = match known_classes {
        Some(c) => c,
        None => classes_from_rows(&manifests).ok_or_else(|| SplitError::Manifest {
            path: files[0].clone(),
            message: format!("class_index values above {MAX_CLASSES} are not plausible; pass a classes.csv beside it"),
        })?,
    };
    Ok(ManifestSet { root, dir, classes, manifests, skipped, record, set, whole_folder })
}

/// Without classes.csv, class indices above this are taken as a broken
/// manifest rather than allocated for.
const MAX_CLASSES: usize = 100_000;

fn classes_from_rows(manifests: &[(String, Vec<Entry>)]) -> Option<Vec<String>> {
    let mut by_index: BTreeMap<usize, &str> = BTreeMap::new();
    for (_, rows) in manifests {
        for r in rows {
            by_index.entry(r.class_index).or_insert(&r.class);
        }
    }
    let n = by_index.keys().next_back().map(|&i| i + 1).unwrap_or(0);
    if n > MAX_CLASSES {
        return None;
    }
    Some((0..n).map(|i| by_index.get(&i).map(|s| s.to_string()).unwrap_or_else(|| format!("class{i}"))).collect())
}

/// One problem `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mismatch {
    /// The manifest file (or `split.json` for whole-set problems).
    pub manifest: String,
    /// The image path as listed, or `line N` for a row that was skipped.
    pub path: String,
    /// What is wrong, one line.
    pub problem: String,
}

/// How thoroughly `verify` checks each file.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Decode every image (catches corrupt files; the slow part).
    pub decode: bool,
    /// Size bounds of the images decoded.
    pub limits: LoadLimits,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { decode: true, limits: LoadLimits::default() }
    }
}

/// What `verify` checked and found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// (manifest, rows checked, rows with a hash).
    pub checked: Vec<(String, usize, usize)>,
    /// Sorted by manifest and path.
    pub mismatches: Vec<Mismatch>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Checks every listed file (exists, same size, decodes, hash matches, class
/// consistent with the path and `classes.csv`), that no file or group is in
/// two manifests, and that the set still matches `split.json`'s fingerprint.
pub fn verify(set: &ManifestSet, options: &VerifyOptions, progress: &dyn Progress) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut mismatches = Vec::new();
    progress.start(set.manifests.iter().map(|(_, rows)| rows.len() as u64).sum());
    for ((name, rows), skipped) in set.manifests.iter().zip(&set.skipped) {
        let hashed = rows.iter().filter(|r| r.sha256.is_some()).count();
        report.checked.push((name.clone(), rows.len() + skipped.len(), hashed));
        // Rows the reader refused (a path outside the root, say) were not opened.
        for f in skipped {
            let line =
                f.path.strip_prefix(&format!("{name}:")).map(|l| format!("line {l}")).unwrap_or_else(|| f.path.clone());
            mismatches.push(Mismatch { manifest: name.clone(), path: line, problem: f.reason.clone() });
        }
        let found: Vec<Vec<String>> = rows
            .par_iter()
            .map(|row| {
                let problems = check_row(set, row, options);
                progress.advance();
                problems
            })
            .collect();
        for (row, problems) in rows.iter().zip(found) {
            mismatches.extend(problems.into_iter().map(|problem| Mismatch {
                manifest: name.clone(),
                path: row.path.to_string(),
                problem,
            }));
        }
    }

    // The same file or group on two sides is the leak a split must not have.
    let mut first_path: BTreeMap<&str, &str> = BTreeMap::new();
    let mut first_group: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, rows) in &set.manifests {
        for r in rows {
            if let Some(other) = first_path.insert(r.path.as_str(), name) {
                if other != name {
                    mismatches.push(Mismatch {
                        manifest: name.clone(),
                        path: r.path.to_string(),
                        problem: format!("also listed in {other}"),
                    });
                }
            }
            if r.group.is_empty() {
                continue;
            }
            match first_group.get(r.group.as_str()) {
                Some(&other) if other != name => mismatches.push(Mismatch {
                    manifest: name.clone(),
                    path: r.path.to_string(),
                    problem: format!("group {:?} also in {other}", r.group),
                }),
                Some(_) => {}
                None => {
                    first_group.insert(&r.group, name);
                }
            }
        }
    }

    let recorded = set.record.as_ref().and_then(|r| r.input_fingerprint.as_ref());
    if let (Some(recorded), true) = (recorded, set.whole_folder) {
        let mut all: Vec<&Entry> = set.manifests.iter().flat_map(|(_, rows)| rows.iter()).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        let mut h = Sha256::new();
        for r in all {
            h.update(format!("{}\t{}\n", r.path, r.bytes.unwrap_or(0)).as_bytes());
        }
        let fingerprint = format!("sha256:{}", hex(&h.finalize()));
        if &fingerprint != recorded {
            mismatches.push(Mismatch {
                manifest: SPLIT_JSON.into(),
                path: String::new(),
                problem: format!(
                    "manifests do not match the recorded input fingerprint {recorded} (edited, or from another run): {fingerprint}"
                ),
            });
        }
    }
    // Each file of the set must be the one split.json records: a killed
    // split leaves some files of the new run beside some of the old one.
    for problem in set.set.problems(&set.dir) {
        mismatches.push(Mismatch { manifest: SPLIT_JSON.into(), path: String::new(), problem: problem.to_string() });
    }
    mismatches.sort();
    report.mismatches = mismatches;
    report
}

fn check_row(set: &ManifestSet, row: &Entry, options: &VerifyOptions) -> Vec<String> {
    let mut problems = Vec::new();
    if set.classes.get(row.class_index) != Some(&row.class) {
        problems.push(format!("class {:?} with index {} disagrees with classes.csv", row.class, row.class_index));
    }
    if row.path.as_str().split('/').next() != Some(row.class.as_str()) {
        problems.push(format!("class {:?} but the file is not in that class folder", row.class));
    }
    let path = row.path.under(&set.root);
    let need_bytes = options.decode || row.sha256.is_some();
    if !need_bytes {
        match std::fs::metadata(&path) {
            Ok(m) if row.bytes != Some(m.len()) => problems.push(size_problem(row.bytes, m.len())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push("missing".into()),
            Err(e) => problems.push(format!("cannot read: {e}")),
        }
        return problems;
    }
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push("missing".into());
            return problems;
        }
        Err(e) => {
            problems.push(format!("cannot read: {e}"));
            return problems;
        }
    };
    if row.bytes != Some(data.len() as u64) {
        problems.push(size_problem(row.bytes, data.len() as u64));
    }
    if let Some(expected) = &row.sha256 {
        let actual = sha256_hex(&data);
        if &actual != expected {
            problems.push(format!("sha256 mismatch: listed {expected}, file has {actual}"));
        }
    }
    if options.decode {
        if let Err(reason) = load_complete(&path, &data, options.limits) {
            problems.push(format!("does not decode: {reason}"));
        }
    }
    problems
}

fn size_problem(listed: Option<u64>, actual: u64) -> String {
    match listed {
        Some(listed) => format!("size changed: listed {listed} bytes, file has {actual}"),
        None => format!("no size listed (bytes column missing or not a number); file has {actual} bytes"),
    }
}

/// Statistics of the images one manifest lists (decoded, EXIF-upright,
/// optionally resized). Files that fail to load are left out and returned.
pub fn manifest_stats(
    set: &ManifestSet,
    manifest_index: usize,
    stats_size: Option<u32>,
    limits: LoadLimits,
    progress: &dyn Progress,
) -> (Stats, Vec<Failure>) {
    let (name, rows) = &set.manifests[manifest_index];
    progress.start(rows.len() as u64);
    let results: Vec<Result<ChannelSums, Failure>> = rows
        .par_iter()
        .map(|row| {
            let result = if row.class_index >= set.classes.len() {
                Err(Failure::new(
                    row.path.to_string(),
                    format!("class index {} out of range ({} classes)", row.class_index, set.classes.len()),
                ))
            } else {
                let path = row.path.under(&set.root);
                std::fs::read(&path)
                    .map_err(|e| format!("cannot read file: {e}"))
                    .and_then(|data| load_complete(&path, &data, limits))
                    .map(|img| stats_sums(&img, stats_size))
                    .map_err(|reason| Failure::new(row.path.to_string(), reason))
            };
            progress.advance();
            result
        })
        .collect();
    let mut total = ChannelSums::default();
    let mut counts = vec![0u64; set.classes.len()];
    // Rows the reader refused count as skipped too.
    let mut failures: Vec<Failure> = set.skipped.get(manifest_index).cloned().unwrap_or_default();
    for (row, r) in rows.iter().zip(results) {
        match r {
            Ok(s) => {
                total.add(&s);
                counts[row.class_index] += 1;
            }
            Err(f) => failures.push(f),
        }
    }
    (stats_from_sums(name, &total, failures.len() as u64, stats_size, &set.classes, &counts), failures)
}
