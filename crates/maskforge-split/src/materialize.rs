//! `--materialize DIR`: `DIR/<split>/<class>/...` folders for tools that want
//! a tree rather than a manifest. The tree is built beside DIR under a hidden
//! temporary name and swapped in whole, so DIR never mixes two splits.

use crate::assign::Split;
use crate::plan::SplitPlan;
use crate::SplitError;
use maskforge_imageio::resolve_existing_prefix;
use rayon::prelude::*;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Left in DIR so a later run knows it may replace the folder.
pub const MARKER_FILE: &str = ".maskforge-materialized";

/// How each file is placed in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaterializeMode {
    /// Absolute symbolic links to the dataset files (fast, no space).
    Symlink,
    /// Hard links (no space; same file system only).
    Hardlink,
    /// Full copies.
    Copy,
}

impl FromStr for MaterializeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "symlink" => Ok(MaterializeMode::Symlink),
            "hardlink" => Ok(MaterializeMode::Hardlink),
            "copy" => Ok(MaterializeMode::Copy),
            other => Err(format!("unknown mode {other:?}: expected symlink, hardlink or copy")),
        }
    }
}

impl fmt::Display for MaterializeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaterializeMode::Symlink => "symlink",
            MaterializeMode::Hardlink => "hardlink",
            MaterializeMode::Copy => "copy",
        })
    }
}

/// Refuses a DIR that would be read as part of the dataset, that holds the
/// dataset, or that holds files we did not make. Call before writing anything.
pub fn check_materialize_dir(root: &Path, dir: &Path) -> Result<(), SplitError> {
    let root_abs = std::fs::canonicalize(root).map_err(SplitError::io(root))?;
    let dir_abs = resolve_existing_prefix(dir).map_err(SplitError::io(dir))?;
    if dir_abs.starts_with(&root_abs) || root_abs.starts_with(&dir_abs) {
        return Err(SplitError::Materialize(format!(
            "--materialize {} overlaps the dataset root {}: choose a folder outside it",
            dir.display(),
            root.display()
        )));
    }
    if dir.exists() {
        let is_ours = dir.join(MARKER_FILE).is_file();
        let is_empty = std::fs::read_dir(dir).map_err(SplitError::io(dir))?.next().is_none();
        if !is_ours && !is_empty {
            return Err(SplitError::Materialize(format!(
                "--materialize {} exists and was not made by maskforge split; remove it or choose another folder",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Builds `dir/<split>/<class>/<path inside class>` for every manifest row,
/// with a folder for every class in every split (so ImageFolder's indices
/// match `classes.csv` even where a split lacks a class). Returns the number
/// of files placed.
pub fn materialize(plan: &SplitPlan, dir: &Path, mode: MaterializeMode) -> Result<usize, SplitError> {
    check_materialize_dir(&plan.root, dir)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "materialized".into());
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(SplitError::io(&parent))?;
    let pid = std::process::id();
    let temp = parent.join(format!(".{name}.{pid}.building"));
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(SplitError::io(&temp))?;
    }
    let result = build(plan, &temp, mode);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    if dir.exists() {
        let old = parent.join(format!(".{name}.{pid}.old"));
        std::fs::rename(dir, &old).map_err(SplitError::io(dir))?;
        std::fs::rename(&temp, dir).map_err(SplitError::io(dir))?;
        std::fs::remove_dir_all(&old).map_err(SplitError::io(&old))?;
    } else {
        std::fs::rename(&temp, dir).map_err(SplitError::io(dir))?;
    }
    Ok(plan.rows.iter().map(Vec::len).sum())
}

fn build(plan: &SplitPlan, temp: &Path, mode: MaterializeMode) -> Result<(), SplitError> {
    for s in plan.splits() {
        for c in &plan.classes {
            let d = temp.join(s.name()).join(&c.name);
            std::fs::create_dir_all(&d).map_err(SplitError::io(&d))?;
        }
    }
    let jobs: Vec<(Split, &str)> = plan
        .splits()
        .into_iter()
        .flat_map(|s| plan.rows[s.index()].iter().map(move |r| (s, r.path.as_str())))
        .collect();
    jobs.par_iter().try_for_each(|&(split, rel)| {
        let src = plan.root.join(rel);
        // The one path check: a row's path is data and never leaves its split folder.
        let dst = maskforge_imageio::confined(&temp.join(split.name()), Path::new(rel))
            .map_err(|e| SplitError::Materialize(e.to_string()))?;
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p).map_err(SplitError::io(p))?;
        }
        place(&src, &dst, mode)
            .map_err(|e| SplitError::Materialize(format!("cannot {mode} {} to {}: {e}", src.display(), dst.display())))
    })?;
    let marker = temp.join(MARKER_FILE);
    let note = format!("made by maskforge split from {}\n", plan.root.display());
    std::fs::write(&marker, note).map_err(SplitError::io(&marker))
}

fn place(src: &Path, dst: &Path, mode: MaterializeMode) -> std::io::Result<()> {
    match mode {
        MaterializeMode::Symlink => symlink(src, dst),
        // Link the real file, not a symlink that the dataset may contain.
        MaterializeMode::Hardlink => std::fs::hard_link(std::fs::canonicalize(src)?, dst),
        MaterializeMode::Copy => std::fs::copy(src, dst).map(|_| ()),
    }
}

#[cfg(unix)]
fn symlink(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(src, dst)
}

#[cfg(windows)]
fn symlink(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(src, dst)
}
