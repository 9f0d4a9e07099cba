//! The one rule every writing subcommand obeys: never write where it reads.
//!
//! [`check_disjoint`] refuses an output (folder or file) that lies inside an
//! input, and an input that lies inside an output, after resolving symlinks
//! (also of paths that do not exist yet: their longest existing prefix is
//! resolved). Without it a run can overwrite the photos it reads, or read its
//! own earlier outputs back in as inputs.

use std::path::{Component, Path, PathBuf};

/// Why a set of paths was refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// An output lies inside (or is) an input.
    #[error("refusing to write {what} {output} inside the input {input}: choose a {what} outside it")]
    OutputInsideInput {
        /// What the output is called ([`Output::what`]).
        what: String,
        /// The output, as given.
        output: PathBuf,
        /// The input that holds it, as given.
        input: PathBuf,
    },
    /// An input lies inside an output.
    #[error("the input {input} lies inside the {what} {output}: choose a {what} outside it")]
    InputInsideOutput {
        /// What the output is called ([`Output::what`]).
        what: String,
        /// The output that holds the input, as given.
        output: PathBuf,
        /// The input, as given.
        input: PathBuf,
    },
    /// The existing part of a path could not be resolved.
    #[error("{path}: cannot resolve: {source}")]
    Resolve {
        /// The path, as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The render cache folder and an input or output folder overlap.
    #[error("the cache folder {} (MASKFORGE_CACHE) and {} overlap: set MASKFORGE_CACHE to a folder outside them, or to `off`", cache.display(), folder.display())]
    CacheOverlap {
        /// The cache folder.
        cache: PathBuf,
        /// The input or output folder it overlaps.
        folder: PathBuf,
    },
}

/// A path a stage writes to, with what it is called in messages
/// ("output folder", "--preview file", ...).
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The folder or file written (it need not exist yet).
    pub path: &'a Path,
    /// What messages call it.
    pub what: &'a str,
}

impl<'a> Output<'a> {
    /// The output `path`, called `what` in messages.
    pub fn new(path: &'a Path, what: &'a str) -> Self {
        Output { path, what }
    }
}

/// Refuses any output inside any input and any input inside any output.
/// Inputs are files or folders that are read; equal paths count as inside.
pub fn check_disjoint(inputs: &[&Path], outputs: &[Output<'_>]) -> Result<(), GuardError> {
    let resolve =
        |p: &Path| resolve_existing_prefix(p).map_err(|source| GuardError::Resolve { path: p.to_path_buf(), source });
    let inputs: Vec<(&Path, PathBuf)> =
        inputs.iter().map(|p| Ok((*p, resolve(p)?))).collect::<Result<_, GuardError>>()?;
    for out in outputs {
        let out_abs = resolve(out.path)?;
        for (input, input_abs) in &inputs {
            if out_abs.starts_with(input_abs) {
                return Err(GuardError::OutputInsideInput {
                    what: out.what.to_string(),
                    output: out.path.to_path_buf(),
                    input: input.to_path_buf(),
                });
            }
            if input_abs.starts_with(&out_abs) {
                return Err(GuardError::InputInsideOutput {
                    what: out.what.to_string(),
                    output: out.path.to_path_buf(),
                    input: input.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a cache folder (`$MASKFORGE_CACHE`) inside a folder the run reads
/// or writes, or one holding such a folder: files kept there would be
/// walked as input photos, or filed among the outputs. A cache under a
/// hidden folder (the default `~/.cache`) is never walked, so it may lie
/// inside.
pub fn check_cache_folder(cache: Option<&Path>, folders: &[&Path]) -> Result<(), GuardError> {
    let Some(cache) = cache else { return Ok(()) };
    let resolve =
        |p: &Path| resolve_existing_prefix(p).map_err(|source| GuardError::Resolve { path: p.to_path_buf(), source });
    let cache_abs = resolve(cache)?;
    for folder in folders {
        let abs = resolve(folder)?;
        let hidden = |rest: &Path| rest.iter().any(|c| c.to_string_lossy().starts_with('.'));
        let inside = cache_abs.strip_prefix(&abs).is_ok_and(|rest| !hidden(rest));
        if inside || abs.starts_with(&cache_abs) {
            return Err(GuardError::CacheOverlap { cache: cache.to_path_buf(), folder: folder.to_path_buf() });
        }
    }
    Ok(())
}

/// Absolute form of a path that may not exist yet: its longest existing
/// prefix canonicalised (symlinks resolved), the rest appended with `..`
/// and `.` applied.
pub fn resolve_existing_prefix(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let mut existing = abs.as_path();
    let mut rest: Vec<Component> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            let mut out = c;
            for comp in rest.iter().rev() {
                match comp {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return Ok(out);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_folder_stays_apart_unless_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (photos, out) = (d.join("photos"), d.join("out"));
        let check = |cache: &Path| check_cache_folder(Some(cache), &[&photos, &out]);
        assert!(check(&d.join("cache")).is_ok());
        assert!(check(&photos.join(".cache/maskforge")).is_ok(), "under a hidden folder: never walked");
        for overlapping in [out.join("cache"), d.to_path_buf(), photos.clone()] {
            let err = check(&overlapping).unwrap_err();
            assert!(err.to_string().contains("(MASKFORGE_CACHE) and"), "{overlapping:?}: {err}");
        }
        assert!(check_cache_folder(None, &[d]).is_ok());
    }

    #[test]
    fn refuses_nesting_both_ways_and_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in");
        std::fs::create_dir_all(input.join("sub")).unwrap();
        let out = |p: &Path| check_disjoint(&[&input], &[Output::new(p, "output folder")]);

        assert!(out(&d.join("out")).is_ok());
        assert!(out(&d.join("in2")).is_ok(), "a sibling sharing a name prefix is outside");
        for inside in [input.clone(), input.join("sub"), input.join("new/deeper"), d.join("in/sub/../x")] {
            let err = out(&inside).unwrap_err();
            assert!(matches!(err, GuardError::OutputInsideInput { .. }), "{inside:?}: {err}");
        }
        assert!(matches!(out(d).unwrap_err(), GuardError::InputInsideOutput { .. }));

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&input, d.join("link")).unwrap();
            let err = out(&d.join("link/out")).unwrap_err();
            assert!(err.to_string().contains("inside the input"), "{err}");
        }
        // A file input: an output folder that contains it is refused.
        let photo = input.join("sub/a.jpg");
        std::fs::write(&photo, b"x").unwrap();
        let err = check_disjoint(&[&photo], &[Output::new(&input, "output folder")]).unwrap_err();
        assert!(err.to_string().starts_with("the input"), "{err}");
    }
}
