//! `maskforge split`: from a tree to manifests, in two steps. [`plan_split`]
//! reads and decides everything and can fail without side effects;
//! [`write_split`] only writes what the plan holds.

use crate::assign::{assign_groups, GroupCounts, Method, Ratios, Split};
use crate::classes::discover_classes;
use crate::group::GroupBy;
use crate::manifest::{write_classes, write_manifest, ClassInfo, ManifestRow};
use crate::scan::{scan_images, ScanOptions, ScannedImage};
use crate::stats::{stats_from_sums, ChannelSums, Stats};
use crate::{EmptyClass, Progress, SplitError, TOOL_VERSION};
use maskforge_contracts::{sha256_hex, RelPath};
use maskforge_imageio::{
    check_disjoint, hex, relative_string, walk_images, write_atomic, write_failures_csv, Failure, GuardError, Output,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The seed used when none is given; printed and recorded in `split.json`.
pub const DEFAULT_SEED: u64 = 20_240_601;

pub use maskforge_contracts::{CLASSES_CSV, FAILURES_CSV, SPLIT_JSON, STATS_JSON};

/// Everything that decides a split.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Shares of val and test; train gets the rest.
    pub ratios: Ratios,
    /// Seed of the assignment: the same seed and data give the same split.
    pub seed: u64,
    /// How groups are assigned to splits.
    pub method: Method,
    /// How images are grouped (a group never spans two splits).
    pub group_by: GroupBy,
    /// What is read of each image.
    pub scan: ScanOptions,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            ratios: Ratios { val: 0.2, test: 0.0 },
            seed: DEFAULT_SEED,
            method: Method::Exact,
            group_by: GroupBy::Auto,
            scan: ScanOptions::default(),
        }
    }
}

/// How the group keys were found (for the report).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupingSummary {
    /// Distinct groups.
    pub groups: usize,
    /// `--group-by source`: images found in `annotations.csv`.
    pub annotated: usize,
    /// `--group-by source`: unmasked originals joined to their source's group.
    pub originals_joined: usize,
    /// `--group-by source`: images with no row, each its own group.
    pub unannotated: usize,
}

/// A decided split, not yet written.
#[derive(Clone, Debug)]
pub struct SplitPlan {
    /// Canonical absolute dataset root.
    pub root: PathBuf,
    /// The options, with `group_by` resolved (never `Auto`).
    pub options: SplitOptions,
    /// The classes, by index, with their usable image counts.
    pub classes: Vec<ClassInfo>,
    /// Rows of train, val and test (indexed by [`Split::index`]), sorted by path.
    pub rows: [Vec<ManifestRow>; 3],
    /// Skipped files with reasons, sorted by path.
    pub failures: Vec<Failure>,
    /// How the group keys were found.
    pub grouping: GroupingSummary,
    /// Image files directly in ROOT (not in a class folder), ignored as
    /// ImageFolder ignores them.
    pub outside_classes: usize,
    /// Pixel sums of the train images (when decoding).
    pub train_sums: Option<ChannelSums>,
    /// SHA-256 over the sorted `path\tbytes` lines of all accepted images.
    pub fingerprint: String,
}

/// Scans, groups and assigns. Nothing is written; every error about the
/// input (ratios, no classes, empty class, missing annotations, a regex that
/// matches nothing) comes from here. Runs on the current rayon pool.
pub fn plan_split(root: &Path, options: &SplitOptions, progress: &dyn Progress) -> Result<SplitPlan, SplitError> {
    Ratios::new(options.ratios.val, options.ratios.test)?;
    if !std::fs::metadata(root).map_err(SplitError::io(root))?.is_dir() {
        return Err(SplitError::RootNotDir(root.to_path_buf()));
    }
    let root = std::fs::canonicalize(root).map_err(SplitError::io(root))?;
    let group_by = options.group_by.resolve(&root);
    group_by.precheck(&root)?;
    let class_names = discover_classes(&root)?;

    let listing = list_class_files(&root, &class_names);
    let mut failures = listing.failures;
    let rels: Vec<String> = listing.files.iter().map(|(_, r)| r.clone()).collect();
    let grouping = group_by.keys(&root, &rels)?;

    let scanned = scan_images(&listing.files, &options.scan, progress);
    let (accepted, skipped_per_class) =
        sort_scanned(scanned, rels, listing.class, grouping.keys, class_names.len(), &mut failures);
    failures.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.reason.cmp(&b.reason)));

    let mut count_per_class = vec![0u64; class_names.len()];
    for a in &accepted {
        count_per_class[a.class] += 1;
    }
    check_no_empty_class(&class_names, &count_per_class, &skipped_per_class)?;

    let split_of = assign_splits(&accepted, class_names.len(), options);
    let (rows, train_sums, fingerprint) = manifest_rows(accepted, &split_of, &class_names, options.scan.decode);
    let classes = class_names
        .iter()
        .enumerate()
        .map(|(i, name)| ClassInfo { index: i, name: name.clone(), count: count_per_class[i] })
        .collect();
    Ok(SplitPlan {
        root,
        options: SplitOptions { group_by, ..options.clone() },
        classes,
        rows,
        failures,
        grouping: GroupingSummary {
            groups: split_of.len(),
            annotated: grouping.annotated,
            originals_joined: grouping.originals_joined,
            unannotated: grouping.unannotated,
        },
        outside_classes: listing.outside_classes,
        train_sums,
        fingerprint,
    })
}

/// The images in class folders, in walk order (sorted by relative path).
struct ClassFiles {
    /// (full path, relative path) of each image.
    files: Vec<(PathBuf, String)>,
    /// The class index of each image in `files`.
    class: Vec<usize>,
    /// Unreadable entries from the walk and names no manifest could list.
    failures: Vec<Failure>,
    /// Images not in a class folder (directly in ROOT), ignored as ImageFolder ignores them.
    outside_classes: usize,
}

/// Walks `root` and sorts its images by class folder.
fn list_class_files(root: &Path, class_names: &[String]) -> ClassFiles {
    let class_index: BTreeMap<&str, usize> = class_names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let walk = walk_images(root, &[]);
    let mut failures = walk.failures;
    let mut outside_classes = 0;
    let mut files: Vec<(PathBuf, String)> = Vec::with_capacity(walk.images.len());
    let mut file_class: Vec<usize> = Vec::with_capacity(walk.images.len());
    for path in walk.images {
        let rel = relative_string(root, &path);
        match rel.split_once('/').and_then(|(class, _)| class_index.get(class)) {
            // A name a manifest reader would refuse (a backslash, say) is
            // reported now rather than written and then skipped by train.
            Some(_) if RelPath::new(&rel).is_err() => {
                let reason = format!("cannot be listed in a manifest: {}", RelPath::new(&rel).unwrap_err());
                failures.push(Failure::new(rel, reason));
            }
            Some(&c) => {
                files.push((path, rel));
                file_class.push(c);
            }
            None => outside_classes += 1,
        }
    }
    ClassFiles { files, class: file_class, failures, outside_classes }
}

/// An image that scanned cleanly, with its class and group key.
struct Accepted {
    rel: String,
    class: usize,
    key: String,
    bytes: u64,
    sha256: Option<String>,
    sums: Option<ChannelSums>,
}

/// Separates the scanned images (in listing order, alongside their relative
/// paths, classes and group keys) into the accepted ones and failures
/// (appended to `failures`); also returns the failures per class, which an
/// empty class's error reports.
fn sort_scanned(
    scanned: Vec<Result<ScannedImage, Failure>>,
    rels: Vec<String>,
    file_class: Vec<usize>,
    keys: Vec<String>,
    n_classes: usize,
    failures: &mut Vec<Failure>,
) -> (Vec<Accepted>, Vec<usize>) {
    let mut accepted: Vec<Accepted> = Vec::with_capacity(scanned.len());
    let mut skipped_per_class = vec![0usize; n_classes];
    for (((result, rel), class), key) in scanned.into_iter().zip(rels).zip(file_class).zip(keys) {
        match result {
            Ok(img) => {
                accepted.push(Accepted { rel, class, key, bytes: img.bytes, sha256: img.sha256, sums: img.sums })
            }
            Err(f) => {
                skipped_per_class[class] += 1;
                failures.push(f);
            }
        }
    }
    (accepted, skipped_per_class)
}

/// Refuses a split where some class has no accepted image.
fn check_no_empty_class(
    class_names: &[String],
    count_per_class: &[u64],
    skipped_per_class: &[usize],
) -> Result<(), SplitError> {
    let empty: Vec<EmptyClass> = class_names
        .iter()
        .enumerate()
        .filter(|&(i, _)| count_per_class[i] == 0)
        .map(|(i, name)| EmptyClass { name: name.clone(), skipped: skipped_per_class[i] })
        .collect();
    if !empty.is_empty() {
        return Err(SplitError::EmptyClasses(empty));
    }
    Ok(())
}

/// The split of each group key. Groups go to the assignment in key order, so
/// it sees the same sequence whatever the listing order or thread count.
fn assign_splits(accepted: &[Accepted], n_classes: usize, options: &SplitOptions) -> BTreeMap<String, Split> {
    let mut groups: BTreeMap<&str, BTreeMap<usize, u64>> = BTreeMap::new();
    for a in accepted {
        *groups.entry(a.key.as_str()).or_default().entry(a.class).or_default() += 1;
    }
    let group_list: Vec<GroupCounts> = groups
        .iter()
        .map(|(k, per)| GroupCounts { key: k.to_string(), per_class: per.iter().map(|(&c, &n)| (c, n)).collect() })
        .collect();
    let assignment = assign_groups(&group_list, n_classes, options.ratios, options.method, options.seed);
    group_list.into_iter().map(|g| g.key).zip(assignment).collect()
}

/// The manifest rows of train, val and test (each sorted), the train images'
/// pixel sums (when `decode`), and the fingerprint over all accepted images
/// in listing order.
fn manifest_rows(
    accepted: Vec<Accepted>,
    split_of: &BTreeMap<String, Split>,
    class_names: &[String],
    decode: bool,
) -> ([Vec<ManifestRow>; 3], Option<ChannelSums>, String) {
    let mut rows: [Vec<ManifestRow>; 3] = Default::default();
    let mut train_sums = decode.then(ChannelSums::default);
    let mut fingerprint = Sha256::new();
    for a in accepted {
        fingerprint.update(format!("{}\t{}\n", a.rel, a.bytes).as_bytes());
        let split = split_of.get(a.key.as_str()).copied().unwrap_or(Split::Train);
        if split == Split::Train {
            if let (Some(total), Some(s)) = (train_sums.as_mut(), a.sums.as_ref()) {
                total.add(s);
            }
        }
        rows[split.index()].push(ManifestRow {
            path: a.rel,
            class_index: a.class,
            class: class_names[a.class].clone(),
            group: a.key,
            bytes: a.bytes,
            sha256: a.sha256,
        });
    }
    for r in rows.iter_mut() {
        r.sort();
    }
    (rows, train_sums, format!("sha256:{}", hex(&fingerprint.finalize())))
}

impl SplitPlan {
    /// The splits written (test only when a test ratio was given).
    pub fn splits(&self) -> Vec<Split> {
        self.options.ratios.splits()
    }

    /// Images per class (rows) and split (columns, by [`Split::index`]).
    pub fn counts(&self) -> Vec<[u64; 3]> {
        let mut counts = vec![[0u64; 3]; self.classes.len()];
        for s in Split::ALL {
            for r in &self.rows[s.index()] {
                counts[r.class_index][s.index()] += 1;
            }
        }
        counts
    }

    /// Images in the manifests (all splits).
    pub fn accepted(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// `stats.json` of the train split (when images were decoded).
    pub fn train_stats(&self) -> Option<Stats> {
        let sums = self.train_sums.as_ref()?;
        let names: Vec<String> = self.classes.iter().map(|c| c.name.clone()).collect();
        let counts: Vec<u64> = self.counts().iter().map(|c| c[Split::Train.index()]).collect();
        Some(stats_from_sums(&Split::Train.manifest_name(), sums, 0, self.options.scan.stats_size, &names, &counts))
    }

    /// Refuses a split that cannot train a classifier: a single class
    /// (unless `allow.single_class`), or a requested split (val, test) left
    /// without any image (unless `allow.empty_split`), which happens when the
    /// groups are too coarse, e.g. a `--group-by regex:` without a capture
    /// group that keys whole class folders. Call before anything is written.
    pub fn check_usable(&self, allow: Allow) -> Result<(), SplitError> {
        if self.classes.len() == 1 && !allow.single_class {
            return Err(SplitError::SingleClass { root: self.root.clone(), class: self.classes[0].name.clone() });
        }
        if allow.empty_split {
            return Ok(());
        }
        for s in self.splits() {
            if !self.rows[s.index()].is_empty() {
                continue;
            }
            let others: Vec<&str> =
                self.splits().into_iter().filter(|o| !self.rows[o.index()].is_empty()).map(|o| o.name()).collect();
            let hint = match &self.options.group_by {
                GroupBy::Regex(p) if regex_has_no_group(p) => format!(
                    "; --group-by regex:{p} has no capture group, so whole matches (e.g. class folders) are the groups: put the part that names a person or photo in ( )"
                ),
                _ => String::new(),
            };
            let reason = format!(
                "the {} images form only {} group(s), and all went to {}{hint}",
                self.accepted(),
                self.grouping.groups,
                others.join(" and "),
            );
            return Err(SplitError::EmptySplit { split: s.manifest_name(), reason });
        }
        Ok(())
    }

    /// Problems worth a warning: splits without any image of some class.
    pub fn warnings(&self) -> Vec<String> {
        let counts = self.counts();
        let mut out = Vec::new();
        for s in self.splits() {
            let missing: Vec<&str> =
                self.classes.iter().filter(|c| counts[c.index][s.index()] == 0).map(|c| c.name.as_str()).collect();
            if !missing.is_empty() {
                out.push(format!(
                    "{s} has no image of class(es) {} (too few groups); its ImageFolder needs allow_empty=True",
                    missing.join(", ")
                ));
            }
        }
        out
    }

    /// The content of `split.json`.
    pub fn record(&self, materialized: Option<MaterializedRecord>) -> SplitRecord {
        let o = &self.options;
        let splits = self.splits();
        SplitRecord {
            tool: "maskforge split".into(),
            version: TOOL_VERSION.into(),
            dataset_root: self.root.to_string_lossy().into_owned(),
            seed: o.seed,
            arguments: SplitArguments {
                val: o.ratios.val,
                test: o.ratios.test,
                seed: o.seed,
                method: o.method,
                group_by: o.group_by.to_string(),
                hash: o.scan.hash,
                decode: o.scan.decode,
                stats_size: o.scan.stats_size,
                max_pixels: o.scan.limits.max_pixels,
            },
            input: InputRecord {
                images: self.accepted() as u64,
                skipped: self.failures.len() as u64,
                outside_classes: self.outside_classes as u64,
                groups: self.grouping.groups as u64,
                fingerprint: self.fingerprint.clone(),
            },
            classes: self.classes.iter().map(|c| c.name.clone()).collect(),
            manifests: splits
                .iter()
                .map(|s| ManifestRecord {
                    split: *s,
                    file: s.manifest_name(),
                    images: self.rows[s.index()].len() as u64,
                })
                .collect(),
            stats: self.train_sums.is_some().then(|| STATS_JSON.to_string()),
            failures: FAILURES_CSV.into(),
            materialized,
            complete: true,
            files: BTreeMap::new(),
        }
    }
}

/// What [`SplitPlan::check_usable`] lets through.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// `--allow-single-class`: a tree with one class folder.
    pub single_class: bool,
    /// `--allow-empty-split`: val (or test) without any image.
    pub empty_split: bool,
}

fn regex_has_no_group(pattern: &str) -> bool {
    regex::Regex::new(pattern).map(|re| re.captures_len() == 1).unwrap_or(false)
}

/// `split.json` as split writes it: how a split was made, for humans, and
/// what `verify` and training read back. Written only: the one reader is
/// [`maskforge_contracts::SplitJson`] (the fields it reads are optional
/// there, so that `split.json` files written before `complete` and `files`
/// existed, and hand-made ones, are read too).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitRecord {
    /// `maskforge split`.
    pub tool: String,
    /// The maskforge version that wrote it.
    pub version: String,
    /// Absolute dataset root; manifest paths are relative to it.
    pub dataset_root: String,
    /// The seed of the assignment.
    pub seed: u64,
    /// The options that shaped the output.
    pub arguments: SplitArguments,
    /// What was found under the root.
    pub input: InputRecord,
    /// Class names by index.
    pub classes: Vec<String>,
    /// The manifests written, in split order.
    pub manifests: Vec<ManifestRecord>,
    /// `stats.json` when images were decoded; `None` otherwise.
    pub stats: Option<String>,
    /// The failures file's name, `failures.csv`.
    pub failures: String,
    /// The `--materialize` tree, if one was built.
    pub materialized: Option<MaterializedRecord>,
    /// False while `maskforge split` is writing the set (the first
    /// `split.json` it writes); true once every file is in place.
    pub complete: bool,
    /// SHA-256 (hex) of every other file of the set, by name: a reader that
    /// finds a file with other bytes knows the set is mixed (a killed split).
    pub files: BTreeMap<String, String>,
}

/// The options that shaped the output (`--jobs` is left out: it never does).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitArguments {
    /// `--val`.
    pub val: f64,
    /// `--test`.
    pub test: f64,
    /// `--seed`.
    pub seed: u64,
    /// `--method`.
    pub method: Method,
    /// `--group-by`, resolved (never `auto`).
    pub group_by: String,
    /// `--hash`: a `sha256` column in the manifests.
    pub hash: bool,
    /// Whether images were decoded (checked, and their statistics computed).
    pub decode: bool,
    /// `--stats-size`: the square size images were resized to for statistics.
    pub stats_size: Option<u32>,
    /// `--max-pixels`.
    pub max_pixels: u64,
}

/// What a split found under the dataset root.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputRecord {
    /// Images accepted into the manifests.
    pub images: u64,
    /// Files skipped (rows of `failures.csv`).
    pub skipped: u64,
    /// Image files directly in the root, ignored.
    pub outside_classes: u64,
    /// Distinct groups.
    pub groups: u64,
    /// SHA-256 over the sorted `path\tbytes` lines of the accepted images.
    pub fingerprint: String,
}

/// One manifest of a split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManifestRecord {
    /// Which split it lists.
    pub split: Split,
    /// Its file name (`train.csv`...).
    pub file: String,
    /// Rows in it.
    pub images: u64,
}

/// The `--materialize` tree of a split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaterializedRecord {
    /// The tree's folder, absolute.
    pub dir: String,
    /// How files were placed (`symlink`, `hardlink`, `copy`).
    pub mode: String,
}

impl SplitRecord {
    /// Pretty JSON with a final newline: the bytes of `split.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Refuses an output folder inside the dataset root (it would become a class
/// folder on the next run), or one that holds the root. Call before anything
/// is written.
pub fn check_output_dir(root: &Path, out: &Path) -> Result<(), SplitError> {
    std::fs::canonicalize(root).map_err(SplitError::io(root))?;
    match check_disjoint(&[root], &[Output::new(out, "output folder")]) {
        Err(GuardError::OutputInsideInput { .. }) => {
            Err(SplitError::OutputInsideRoot { out: out.to_path_buf(), root: root.to_path_buf() })
        }
        other => other.map_err(SplitError::from),
    }
}

/// Writes the manifests, `classes.csv`, `failures.csv`, `stats.json` and
/// `split.json`, each atomically. A `test.csv` or `stats.json` left by an
/// earlier split in the same folder is removed so the folder never mixes two
/// runs.
///
/// The files are renamed into place one by one, so a killed split could
/// leave some new and some old. `split.json` is therefore written first
/// marked incomplete (`"complete": false`) and last with the SHA-256 of every
/// other file (`"files"`): `train`, `eval` and `verify` refuse a set whose
/// files do not match it, and a re-run of split repairs the set.
pub fn write_split(
    plan: &SplitPlan,
    out: &Path,
    materialized: Option<MaterializedRecord>,
) -> Result<Vec<PathBuf>, SplitError> {
    std::fs::create_dir_all(out).map_err(SplitError::io(out))?;
    let mut record = plan.record(materialized);
    let record_path = out.join(SPLIT_JSON);
    record.complete = false;
    write_atomic(&record_path, record.to_json().as_bytes()).map_err(SplitError::io(&record_path))?;

    let mut written = Vec::new();
    let mut files = BTreeMap::new();
    for s in plan.splits() {
        let path = out.join(s.manifest_name());
        files.insert(s.manifest_name(), write_manifest(&path, &plan.rows[s.index()], plan.options.scan.hash)?);
        written.push(path);
    }
    for s in Split::ALL {
        let stale = out.join(s.manifest_name());
        if !plan.splits().contains(&s) && stale.is_file() {
            std::fs::remove_file(&stale).map_err(SplitError::io(&stale))?;
        }
    }
    let path = out.join(CLASSES_CSV);
    files.insert(CLASSES_CSV.to_string(), write_classes(&path, &plan.classes)?);
    written.push(path);
    let path = out.join(FAILURES_CSV);
    write_failures_csv(&path, &plan.failures).map_err(SplitError::io(&path))?;
    files.insert(FAILURES_CSV.to_string(), sha256_hex(&std::fs::read(&path).map_err(SplitError::io(&path))?));
    written.push(path);
    let stats_path = out.join(STATS_JSON);
    match plan.train_stats() {
        Some(stats) => {
            let json = stats.to_json();
            write_atomic(&stats_path, json.as_bytes()).map_err(SplitError::io(&stats_path))?;
            files.insert(STATS_JSON.to_string(), sha256_hex(json.as_bytes()));
            written.push(stats_path);
        }
        None if stats_path.is_file() => std::fs::remove_file(&stats_path).map_err(SplitError::io(&stats_path))?,
        None => {}
    }
    record.complete = true;
    record.files = files;
    write_atomic(&record_path, record.to_json().as_bytes()).map_err(SplitError::io(&record_path))?;
    written.push(record_path);
    Ok(written)
}
