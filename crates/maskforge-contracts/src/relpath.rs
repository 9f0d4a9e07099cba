//! Paths read from a CSV, checked to stay under the root they are relative to.
//!
//! A manifest is data, and data can be wrong or hostile: `../outside/x.jpg`,
//! `/etc/passwd` or `C:\x` must never be opened. [`RelPath`] can only be made
//! by [`RelPath::new`], which accepts plain relative paths and nothing else,
//! and a file is only reached through [`RelPath::under`], so code that opens
//! a manifest's files cannot open an unchecked one.

use maskforge_imageio::ConfineError;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A relative path of `/`-separated plain names: no empty, `.` or `..`
/// component, not absolute, no backslash, no drive (`C:`), no NUL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

/// Why a path was refused, as a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// Absolute, with a drive, a backslash, NUL, or an empty, `.` or `..`
    /// component (the path as given).
    #[error("path {0:?} is not relative to the dataset root")]
    NotRelative(String),
}

impl RelPath {
    /// Checks `s` with the project's one path validator,
    /// [`maskforge_imageio::check_relative`] (lexical: nothing is looked up).
    pub fn new(s: &str) -> Result<RelPath, PathError> {
        match maskforge_imageio::check_relative(std::ffi::OsStr::new(s)) {
            Ok(()) => Ok(RelPath(s.to_string())),
            Err(ConfineError::Empty) => Err(PathError::Empty),
            Err(_) => Err(PathError::NotRelative(s.to_string())),
        }
    }

    /// The path as written, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file under `root`: the only way to turn a manifest path into
    /// something to open. Lexically it always lies under `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        for part in self.0.split('/') {
            p.push(part);
        }
        p
    }

    /// The file under `root` for a write or a removal:
    /// [`maskforge_imageio::confined`] also refuses a symlinked folder on the
    /// way that leads outside `root`.
    pub fn confined(&self, root: &Path) -> Result<PathBuf, ConfineError> {
        maskforge_imageio::confined(root, Path::new(&self.0))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RelPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RelPath::new(s)
    }
}

/// True when `path` lies lexically under `root`: `root` is a prefix of its
/// components and nothing after it is `..`, `.`, a root or a prefix.
pub fn is_lexically_under(path: &Path, root: &Path) -> bool {
    match path.strip_prefix(root) {
        Ok(rest) => rest.components().next().is_some() && rest.components().all(|c| matches!(c, Component::Normal(_))),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["a.jpg", "masked/p1/x.png", "with space/ü.jpg", "a..b/c", ".hidden/x", "é:/x", "a/b:c"] {
            let p = RelPath::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(p.as_str(), ok);
            assert!(is_lexically_under(&p.under(Path::new("/data/root")), Path::new("/data/root")), "{ok}");
        }
        // The full list of refused forms is the validator's own test
        // (maskforge_imageio::confine); here, that RelPath goes through it.
        for bad in ["/etc/passwd", "a/../../b", "C:\\x.jpg", "a\0b"] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(RelPath::new("").unwrap_err().to_string(), "empty path");
        assert_eq!(RelPath::new("../x").unwrap_err().to_string(), "path \"../x\" is not relative to the dataset root");
        assert!(!is_lexically_under(Path::new("/data/root/../x"), Path::new("/data/root")));
        assert!(!is_lexically_under(Path::new("/data/root"), Path::new("/data/root")));
        assert!(!is_lexically_under(Path::new("/data/rooty/x"), Path::new("/data/root")));
    }
}
