//! `maskforge merge`: join the outputs of `maskforge mask --shard I/N` runs.
//!
//! Shards write disjoint image files and their own `annotations.shard-I-of-N.csv`
//! and `failures.shard-I-of-N.csv`. Merge optionally brings other shard
//! folders' files into the destination (hard links, or copies across file
//! systems; never overwriting a different file), then joins all annotation and
//! failure CSVs in the destination into `annotations.csv` and `failures.csv`,
//! sorted exactly as a single run would have written them.

use anyhow::{bail, Context, Result};
use clap::Args;
use maskforge_imageio::AtomicFile;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// File names mask runs write next to the image tree.
pub const ANNOTATIONS: &str = "annotations";
pub const FAILURES: &str = "failures";
pub const SETTINGS: &str = "mask_settings.json";
/// Hidden: what a re-run needs, not part of the dataset.
pub const SOURCES: &str = ".mask-sources";

/// A CSV file and the shard `(I, N)` it belongs to (`None`: a merged file).
type ShardFile = (PathBuf, Option<(usize, usize)>);
/// A row and its sort key.
type KeyedRow<'a> = (&'a Vec<String>, (String, i64, String));

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Destination output folder (it may already hold some shards' outputs).
    pub out: PathBuf,
    /// Other shard output folders whose files are brought into OUT first
    /// (hard-linked where possible, else copied).
    #[arg(long = "from", value_name = "DIR")]
    pub from: Vec<PathBuf>,
    /// Fail instead of warning when some shards of an N-way split are missing.
    #[arg(long)]
    pub require_all_shards: bool,
}

/// The annotations.csv header (the contract with `maskforge split`).
pub fn annotations_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "source", "output", "face", "variant", "class", "template", "colour", "seed", "box_left", "box_top", "box_right",
        "box_bottom", "score",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..68 {
        h.push(format!("x{i}"));
        h.push(format!("y{i}"));
    }
    h.push("mask_polygon".into());
    h
}

/// Sort key of an annotation row: output path, then face index (empty first).
pub fn row_key(row: &[String]) -> (String, i64, String) {
    let output = row.get(1).cloned().unwrap_or_default();
    let face = row.get(2).and_then(|f| f.parse::<i64>().ok()).unwrap_or(-1);
    (output, face, row.join(","))
}

/// Writes annotation rows (sorted, duplicates dropped) atomically.
pub fn write_annotations(path: &Path, rows: &[Vec<String>]) -> Result<()> {
    let mut sorted: Vec<KeyedRow> = rows.iter().map(|r| (r, row_key(r))).collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    sorted.dedup_by(|a, b| a.1 == b.1);
    let write = || -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        {
            let mut w = csv::Writer::from_writer(&mut file);
            w.write_record(annotations_header())?;
            for (r, _) in sorted {
                w.write_record(r)?;
            }
            w.flush()?;
        }
        file.commit()?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `.mask-sources*.csv` (`source,bytes,mtime_ns`: each finished
/// source file's size and modification time), sorted by source.
pub fn write_sources(path: &Path, rows: &[Vec<String>]) -> Result<()> {
    let mut sorted: Vec<&Vec<String>> = rows.iter().collect();
    sorted.sort();
    sorted.dedup_by(|a, b| a.first() == b.first());
    let write = || -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        {
            let mut w = csv::Writer::from_writer(&mut file);
            w.write_record(["source", "bytes", "mtime_ns"])?;
            for r in sorted {
                w.write_record(r)?;
            }
            w.flush()?;
        }
        file.commit()?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// `NAME.csv` or `NAME.shard-I-of-N.csv` for a shard.
pub fn csv_name(base: &str, shard: Option<(usize, usize)>) -> String {
    match shard {
        Some((i, n)) => format!("{base}.shard-{i}-of-{n}.csv"),
        None => format!("{base}.csv"),
    }
}

/// Parses `NAME.shard-I-of-N.csv` into `(I, N)`.
fn shard_of(file_name: &str, base: &str) -> Option<(usize, usize)> {
    let rest = file_name.strip_prefix(base)?.strip_prefix(".shard-")?.strip_suffix(".csv")?;
    let (i, n) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// The annotation / failure CSVs in `dir`: the merged one and every shard's.
fn csv_files(dir: &Path, base: &str) -> Result<Vec<ShardFile>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == format!("{base}.csv") {
            out.push((e.path(), None));
        } else if let Some(s) = shard_of(&name, base) {
            out.push((e.path(), Some(s)));
        }
    }
    out.sort();
    Ok(out)
}

fn read_rows(path: &Path, expected_header: Option<&[String]>) -> Result<Vec<Vec<String>>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("read {}", path.display()))?;
    let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    if let Some(h) = expected_header {
        if header != h {
            bail!("{}: unexpected header (not written by this version of maskforge mask)", path.display());
        }
    }
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("parse {}", path.display()))?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    Ok(rows)
}

fn same_file_content(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => std::fs::read(a).ok() == std::fs::read(b).ok(),
        _ => false,
    }
}

/// Brings `src`'s files into `dst` (links or copies); returns how many were added.
fn bring_files(src: &Path, dst: &Path) -> Result<usize> {
    let mut added = 0;
    for entry in WalkDir::new(src).follow_links(false) {
        let entry = entry.with_context(|| format!("walk {}", src.display()))?;
        if !entry.file_type().is_file() && !entry.file_type().is_symlink() {
            continue;
        }
        let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
        let name = entry.file_name().to_string_lossy();
        // Each folder's CSVs are joined below, not copied over each other; journals are private.
        let top_level = rel.components().count() == 1;
        if top_level && (name.ends_with(".csv") || name == SETTINGS || name.starts_with('.')) {
            continue;
        }
        let target = dst.join(rel);
        if target.exists() || target.symlink_metadata().is_ok() {
            if entry.file_type().is_symlink() || same_file_content(entry.path(), &target) {
                continue;
            }
            bail!(
                "{} and {} differ: outputs of different runs collide (merge only shards of one run)",
                entry.path().display(),
                target.display()
            );
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        }
        if entry.file_type().is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(&link, &target).with_context(|| format!("link {}", target.display()))?;
            #[cfg(not(unix))]
            std::fs::copy(entry.path(), &target).with_context(|| format!("copy {}", target.display()))?;
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            let tmp = maskforge_imageio::temp_path_for(&target, "merge");
            std::fs::copy(entry.path(), &tmp).with_context(|| format!("copy to {}", tmp.display()))?;
            std::fs::rename(&tmp, &target)?;
        }
        added += 1;
    }
    Ok(added)
}

pub fn run(args: MergeArgs) -> Result<()> {
    let out = &args.out;
    let inputs: Vec<&Path> = args.from.iter().map(PathBuf::as_path).collect();
    maskforge_imageio::check_disjoint(&inputs, &[maskforge_imageio::Output::new(out, "output folder")])?;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let own_settings = std::fs::read_to_string(out.join(SETTINGS)).ok();
    let mut brought = 0;
    for src in &args.from {
        if !src.is_dir() {
            bail!("{}: not a folder", src.display());
        }
        let theirs = std::fs::read_to_string(src.join(SETTINGS)).ok();
        match (&own_settings, &theirs) {
            (Some(a), Some(b)) if a != b => {
                bail!("{} was made with different settings than {} ({SETTINGS} differs)", src.display(), out.display())
            }
            (None, Some(b)) => maskforge_imageio::write_atomic(&out.join(SETTINGS), b.as_bytes())?,
            _ => {}
        }
        brought += bring_files(src, out)?;
        // Their CSVs join ours under their shard names.
        for base in [ANNOTATIONS, FAILURES, SOURCES] {
            for (path, shard) in csv_files(src, base)? {
                let name = csv_name(base, shard);
                let target = out.join(&name);
                if shard.is_none() {
                    // A folder's already merged file: keep its rows under a unique name.
                    let alt = out.join(format!("{base}.from-{}.csv", safe_name(src)));
                    std::fs::copy(&path, &alt).with_context(|| format!("copy {}", path.display()))?;
                } else if target.exists() && !same_file_content(&path, &target) {
                    bail!("{} and {} differ", path.display(), target.display());
                } else if !target.exists() {
                    std::fs::copy(&path, &target).with_context(|| format!("copy {}", path.display()))?;
                }
            }
        }
    }

    // Join annotations.
    let header = annotations_header();
    let mut rows = Vec::new();
    let mut shards: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut files = csv_files(out, ANNOTATIONS)?;
    files.extend(from_files(out, ANNOTATIONS)?);
    for (path, shard) in &files {
        rows.extend(read_rows(path, Some(&header))?);
        if let Some((i, n)) = shard {
            shards.entry(*n).or_default().insert(*i);
        }
    }
    if files.is_empty() {
        bail!("no annotations.csv or annotations.shard-*-of-*.csv in {}", out.display());
    }
    if shards.len() > 1 {
        bail!("shard files of different splits (N = {:?}) in {}", shards.keys().collect::<Vec<_>>(), out.display());
    }
    for (n, have) in &shards {
        let missing: Vec<usize> = (1..=*n).filter(|i| !have.contains(i)).collect();
        if !missing.is_empty() {
            let msg = format!("shards {missing:?} of {n} are missing: their images are not in the merged CSVs");
            if args.require_all_shards {
                bail!(msg);
            }
            eprintln!("warning: {msg}");
        }
    }
    write_annotations(&out.join(csv_name(ANNOTATIONS, None)), &rows)?;

    // Join failures.
    let mut failures = Vec::new();
    let mut ffiles = csv_files(out, FAILURES)?;
    ffiles.extend(from_files(out, FAILURES)?);
    for (path, _) in &ffiles {
        for r in read_rows(path, None)? {
            if r.len() >= 2 {
                failures.push(maskforge_imageio::Failure::new(r[0].clone(), r[1].clone()));
            }
        }
    }
    failures.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
    failures.dedup();
    maskforge_imageio::write_failures_csv(&out.join(csv_name(FAILURES, None)), &failures)?;
    // Join the source stamps, so the merged folder resumes like a single run's.
    let mut stamps = Vec::new();
    let mut sfiles = csv_files(out, SOURCES)?;
    sfiles.extend(from_files(out, SOURCES)?);
    for (path, _) in &sfiles {
        stamps.extend(read_rows(path, None)?.into_iter().filter(|r| r.len() == 3));
    }
    if !sfiles.is_empty() {
        write_sources(&out.join(csv_name(SOURCES, None)), &stamps)?;
    }
    // The `from-*` copies were only staging for this join.
    for base in [ANNOTATIONS, FAILURES, SOURCES] {
        for (path, _) in from_files(out, base)? {
            let _ = std::fs::remove_file(path);
        }
    }
    let n_sources: BTreeSet<&String> = rows.iter().filter_map(|r| r.first()).collect();
    println!(
        "merge: {} annotation rows from {} source images ({} CSV files), {} failures, {brought} files brought in -> {}",
        rows.len(),
        n_sources.len(),
        files.len(),
        failures.len(),
        out.join("annotations.csv").display()
    );
    Ok(())
}

fn from_files(dir: &Path, base: &str) -> Result<Vec<ShardFile>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{base}.from-")) && name.ends_with(".csv") {
            out.push((e.path(), None));
        }
    }
    out.sort();
    Ok(out)
}

/// A short file-name-safe key for a folder path.
pub fn safe_name(p: &Path) -> String {
    format!("{:016x}", maskforge_mask::rng::stable_hash(p.to_string_lossy().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_round_trip() {
        assert_eq!(csv_name("annotations", Some((2, 8))), "annotations.shard-2-of-8.csv");
        assert_eq!(shard_of("annotations.shard-2-of-8.csv", "annotations"), Some((2, 8)));
        assert_eq!(shard_of("annotations.csv", "annotations"), None);
        assert_eq!(shard_of("failures.shard-x-of-8.csv", "failures"), None);
    }

    #[test]
    fn rows_sort_by_output_then_numeric_face() {
        let r = |o: &str, f: &str| vec!["s".to_string(), o.to_string(), f.to_string()];
        let mut rows = vec![r("b.jpg", "10"), r("b.jpg", "2"), r("a.jpg", "0"), r("b.jpg", "")];
        rows.sort_by_key(|x| row_key(x));
        assert_eq!(rows, vec![r("a.jpg", "0"), r("b.jpg", ""), r("b.jpg", "2"), r("b.jpg", "10")]);
    }
}
