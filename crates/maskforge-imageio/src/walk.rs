use crate::{relative_string, Failure};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// File extensions treated as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];

pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// Why a file with a non-UTF-8 name is skipped.
pub const NON_UTF8_REASON: &str = "file name is not valid UTF-8: rename it (outputs and CSVs name files by UTF-8 path)";

/// A path that is not valid UTF-8, with its invalid bytes as `\xNN` escapes,
/// so two such names never print the same.
fn escaped(rel: &Path) -> String {
    let debug = format!("{:?}", rel.as_os_str());
    debug.trim_matches('"').to_string()
}

/// The result of walking an image tree.
#[derive(Debug, Default)]
pub struct WalkOutput {
    /// Image files, as full paths, sorted by their relative path so the order
    /// never depends on the file system's listing order.
    pub images: Vec<PathBuf>,
    /// Entries that could not be read (permission denied, symlink loop, ...).
    pub failures: Vec<Failure>,
}

/// Lists image files under `root` (recursively, following symlinks; loops are
/// reported, not followed). Hidden files and folders (`.name`) are skipped:
/// they hold our own temporary files and tools' metadata.
pub fn walk_images(root: &Path) -> WalkOutput {
    let mut out = WalkOutput::default();
    let walker = WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        match entry {
            Ok(e) => {
                if !(e.file_type().is_file() && is_image_path(e.path())) {
                    continue;
                }
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                if rel.to_str().is_none() {
                    // Every CSV names files by UTF-8 relative path: a lossy name
                    // could merge two inputs or point to a file that does not exist.
                    out.failures.push(Failure::new(escaped(rel), NON_UTF8_REASON));
                    continue;
                }
                out.images.push(e.into_path());
            }
            Err(err) => {
                let path = err.path().map(|p| relative_string(root, p)).unwrap_or_else(|| root.display().to_string());
                let reason = if err.loop_ancestor().is_some() {
                    "symlink loop, not followed".to_string()
                } else {
                    err.io_error().map(|e| e.to_string()).unwrap_or_else(|| err.to_string())
                };
                out.failures.push(Failure::new(path, reason));
            }
        }
    }
    out.images.sort_by_cached_key(|p| relative_string(root, p));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn lists_images_sorted_case_insensitive_and_survives_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in ["b/c/z.JPG", "a.png", "b/y.webp", "notes.txt", ".hidden/q.jpg", "b/x.Jpeg"] {
            fs::write(root.join(f), b"x").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("b/loop")).unwrap();
        let out = walk_images(root);
        let rel: Vec<String> = out.images.iter().map(|p| relative_string(root, p)).collect();
        assert_eq!(rel, ["a.png", "b/c/z.JPG", "b/x.Jpeg", "b/y.webp"]);
        #[cfg(unix)]
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_reported_each_under_its_own_name() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [&b"\xffa.jpg"[..], b"\xfea.jpg", b"ok.jpg"] {
            fs::write(root.join(std::ffi::OsStr::from_bytes(name)), b"x").unwrap();
        }
        let out = walk_images(root);
        assert_eq!(out.images, [root.join("ok.jpg")]);
        let mut names: Vec<&str> = out.failures.iter().map(|f| f.path.as_str()).collect();
        names.sort();
        assert_eq!(names, ["\\xFEa.jpg", "\\xFFa.jpg"]);
        assert!(out.failures.iter().all(|f| f.reason == NON_UTF8_REASON));
    }
}
