use crate::{relative_string, Failure};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// File extensions treated as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`] (by name only; the
/// content is not looked at).
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
///
/// Reported as failures rather than listed: names that are not UTF-8 or that
/// a CSV cannot carry ([`crate::check_relative`]), files that are not regular
/// (a FIFO would block a reader forever, a device never ends), and anything
/// that resolves into one of `outputs` (a symlink in the input that leads to
/// the output folder would make a run read its own outputs back).
pub fn walk_images(root: &Path, outputs: &[&Path]) -> WalkOutput {
    let mut out = WalkOutput::default();
    let outputs: Vec<PathBuf> = outputs.iter().filter_map(|p| crate::resolve_existing_prefix(p).ok()).collect();
    let mut walker = WalkDir::new(root).follow_links(true).into_iter();
    while let Some(entry) = walker.next() {
        let e = match entry {
            Ok(e) => e,
            Err(err) => {
                out.failures.push(walk_error(root, &err));
                continue;
            }
        };
        let hidden = e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
        let into_output = e.depth() > 0 && e.path_is_symlink() && resolves_into(e.path(), &outputs);
        if hidden || into_output {
            if e.file_type().is_dir() {
                walker.skip_current_dir();
            }
            if into_output {
                let reason = "a symlink into the output folder: skipped (outputs are never read back as inputs)";
                out.failures.push(Failure::new(relative_string(root, e.path()), reason));
            }
            continue;
        }
        if let Some(failure) = unlisted(root, &e) {
            out.failures.push(failure);
        } else if e.file_type().is_file() && is_image_path(e.path()) {
            out.images.push(e.into_path());
        }
    }
    out.images.sort_by_cached_key(|p| relative_string(root, p));
    out
}

/// Whether `path` resolves to a place inside one of `outputs` (resolved).
fn resolves_into(path: &Path, outputs: &[PathBuf]) -> bool {
    path.canonicalize().is_ok_and(|real| outputs.iter().any(|o| real.starts_with(o)))
}

/// Why an entry of the walk is reported instead of listed, if it is.
fn unlisted(root: &Path, e: &walkdir::DirEntry) -> Option<Failure> {
    let kind = e.file_type();
    if kind.is_dir() {
        return None;
    }
    let rel = e.path().strip_prefix(root).unwrap_or(e.path());
    if !kind.is_file() {
        // Symlinks are followed, so this is a FIFO, socket or device.
        return Some(Failure::new(
            relative_string(root, e.path()),
            "not a regular file (FIFO, socket or device): skipped",
        ));
    }
    if !is_image_path(e.path()) {
        return None;
    }
    if rel.to_str().is_none() {
        // Every CSV names files by UTF-8 relative path: a lossy name
        // could merge two inputs or point to a file that does not exist.
        return Some(Failure::new(escaped(rel), NON_UTF8_REASON));
    }
    crate::check_relative(rel.as_os_str())
        .err()
        .map(|_| Failure::new(relative_string(root, e.path()), NOT_PORTABLE_REASON))
}

/// Why a file whose name a CSV cannot carry is skipped.
pub const NOT_PORTABLE_REASON: &str =
    "file name holds a backslash or starts with a drive (`C:`): rename it (CSVs name files by `/`-separated path)";

fn walk_error(root: &Path, err: &walkdir::Error) -> Failure {
    let path = err.path().map(|p| relative_string(root, p)).unwrap_or_else(|| root.display().to_string());
    let reason = if err.loop_ancestor().is_some() {
        "symlink loop, not followed".to_string()
    } else {
        err.io_error().map(|e| e.to_string()).unwrap_or_else(|| err.to_string())
    };
    Failure::new(path, reason)
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
        let out = walk_images(root, &[]);
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
        let out = walk_images(root, &[]);
        assert_eq!(out.images, [root.join("ok.jpg")]);
        let mut names: Vec<&str> = out.failures.iter().map(|f| f.path.as_str()).collect();
        names.sort();
        assert_eq!(names, ["\\xFEa.jpg", "\\xFFa.jpg"]);
        assert!(out.failures.iter().all(|f| f.reason == NON_UTF8_REASON));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_links_into_the_output_and_unportable_names_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (root, out) = (dir.path().join("in"), dir.path().join("out"));
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(out.join("correct")).unwrap();
        for f in ["sub/a.jpg", "b\\c.jpg", "C:d.jpg"] {
            fs::write(root.join(f), b"x").unwrap();
        }
        fs::write(out.join("correct/a.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(&out, root.join("outlink")).unwrap();
        std::os::unix::fs::symlink(out.join("correct/a.jpg"), root.join("one.jpg")).unwrap();
        let fifo = std::ffi::CString::new(root.join("pipe.jpg").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let walked = walk_images(&root, &[&out]);
        assert_eq!(walked.images, [root.join("sub/a.jpg")]);
        let mut failures: Vec<(&str, &str)> =
            walked.failures.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect();
        failures.sort();
        let into = "a symlink into the output folder: skipped (outputs are never read back as inputs)";
        assert_eq!(
            failures,
            [
                ("C:d.jpg", NOT_PORTABLE_REASON),
                ("b\\c.jpg", NOT_PORTABLE_REASON),
                ("one.jpg", into),
                ("outlink", into),
                ("pipe.jpg", "not a regular file (FIFO, socket or device): skipped"),
            ]
        );
        // Without the output named, the link is an ordinary input.
        assert_eq!(walk_images(&root, &[]).images.len(), 3);
    }
}
