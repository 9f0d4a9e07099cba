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
    let walker = WalkDir::new(root).follow_links(true).into_iter().filter_entry(|e| {
        e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
    });
    for entry in walker {
        match entry {
            Ok(e) => {
                if e.file_type().is_file() && is_image_path(e.path()) {
                    out.images.push(e.into_path());
                }
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
}
