//! Image lists: the `--list FILE` of `maskforge detect` and `mask`, which
//! process the images a file names instead of walking the input folder.
//!
//! Two layouts, told apart by the first line:
//!
//! * a **manifest** as `maskforge split` writes it: a CSV whose header has a
//!   `path` column and a `class_index` (or `label`) column, read by the one
//!   manifest reader ([`crate::parse_manifest`]), so its rules apply (bad rows
//!   skipped and reported as `FILE:LINE`); only the paths are used;
//! * otherwise **plain text**: one path a line, relative to the input folder
//!   with `/`. Blank lines and lines starting with `#` are ignored; white
//!   space around a path and a leading `./` (as `find .` prints) are dropped.
//!
//! A first line that looks like a CSV header with a `path` column but is no
//! manifest is an error rather than a list of odd file names. Every path is
//! a [`RelPath`], so no listed path can leave the input folder; a path
//! listed twice is taken once. [`ImageList::resolve`] turns the paths into
//! files, and listed files that are missing or not images into failures.

use crate::manifest::{parse_manifest, ReadOptions};
use crate::read::{MAX_LINE_BYTES, MAX_LIST_BYTES};
use crate::relpath::RelPath;
use crate::ContractError;
use maskforge_imageio::{is_image_path, Failure, IMAGE_EXTENSIONS};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The two layouts of an image list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageListFormat {
    /// One path a line.
    Lines,
    /// A manifest CSV (`path,class_index,...`).
    Manifest,
}

/// What an image list names.
#[derive(Clone, Debug)]
pub struct ImageList {
    /// The list file read.
    pub file: PathBuf,
    /// The file name, as failures of its lines are keyed (`list.txt:7`).
    pub name: String,
    /// Its layout, by content.
    pub format: ImageListFormat,
    /// Checked paths, each once, in the order first listed.
    pub paths: Vec<RelPath>,
    /// Lines that name no usable path, keyed `FILE:LINE`, with a reason.
    pub skipped: Vec<Failure>,
    /// Paths listed again after their first line (taken once).
    pub duplicates: usize,
}

/// Reads an image list from disk (see the module documentation). A missing
/// or unreadable file, or a CSV that is not a manifest, is an error naming it.
pub fn read_image_list(path: &Path) -> Result<ImageList, ContractError> {
    let bytes = crate::read::read_bounded(path, MAX_LIST_BYTES, Some(MAX_LINE_BYTES), "image list")?;
    parse_image_list(path, &bytes)
}

/// Parses the bytes of an image list read from `path` (named in messages).
pub fn parse_image_list(path: &Path, bytes: &[u8]) -> Result<ImageList, ContractError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let mut list = ImageList {
        file: path.to_path_buf(),
        name: name.clone(),
        format: ImageListFormat::Lines,
        paths: Vec::new(),
        skipped: Vec::new(),
        duplicates: 0,
    };
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut seen = HashSet::new();
    let mut add = |list: &mut ImageList, p: RelPath| {
        if seen.insert(p.clone()) {
            list.paths.push(p);
        } else {
            list.duplicates += 1;
        }
    };
    if let Some(columns) = csv_header(bytes) {
        if !columns.iter().any(|c| c == "class_index" || c == "label") {
            return Err(ContractError::format(
                path,
                "a CSV image list must be a manifest as `maskforge split` writes it (columns path, class_index, ...); \
                 or list one path a line",
            ));
        }
        let manifest = parse_manifest(path, bytes, ReadOptions::default())?;
        list.format = ImageListFormat::Manifest;
        list.skipped = manifest.skipped;
        for entry in manifest.entries {
            add(&mut list, entry.path);
        }
        return Ok(list);
    }
    // Only complete lines and a last one without a newline: `split` leaves
    // an empty piece after a final newline, which is not a line.
    let pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let count = if bytes.ends_with(b"\n") { pieces.len() - 1 } else { pieces.len() };
    for (i, raw) in pieces.into_iter().take(count).enumerate() {
        let key = || format!("{name}:{}", i + 1);
        let Ok(line) = std::str::from_utf8(raw) else {
            list.skipped.push(Failure::new(key(), "path is not valid UTF-8"));
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut p = line;
        while let Some(rest) = p.strip_prefix("./") {
            p = rest.trim_start_matches('/');
        }
        match RelPath::new(p) {
            Ok(rel) => add(&mut list, rel),
            Err(e) => list.skipped.push(Failure::new(key(), e)),
        }
    }
    Ok(list)
}

/// The column names of the first line when it reads as a CSV header with a
/// `path` column (two columns at least); `None` for a plain list.
fn csv_header(bytes: &[u8]) -> Option<Vec<String>> {
    let first = bytes.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?.trim_end_matches('\r');
    let columns: Vec<String> = first.split(',').map(|c| c.trim().trim_matches('"').trim().to_string()).collect();
    (columns.len() >= 2 && columns.iter().any(|c| c == "path")).then_some(columns)
}

impl ImageList {
    /// The listed images under `root` as `(file, path relative to root)`,
    /// sorted by that path (the order a walk gives), and one failure per
    /// listed path that is missing, not a file, or not an image (by its
    /// extension, as a walk picks them), keyed by the path.
    pub fn resolve(&self, root: &Path) -> (Vec<(PathBuf, String)>, Vec<Failure>) {
        let mut images = Vec::new();
        let mut failures = Vec::new();
        for rel in &self.paths {
            let file = rel.under(root);
            let problem = match std::fs::metadata(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some(format!("listed in {} but not found in the input folder", self.name))
                }
                Err(e) => Some(format!("listed in {} but cannot be read: {e}", self.name)),
                Ok(m) if m.is_dir() => Some(format!("listed in {} but is a folder, not an image", self.name)),
                Ok(m) if !m.is_file() => Some(format!("listed in {} but is not a regular file", self.name)),
                Ok(_) if !is_image_path(&file) => Some(format!(
                    "listed in {} but not an image file (extensions: {})",
                    self.name,
                    IMAGE_EXTENSIONS.join(", ")
                )),
                Ok(_) => None,
            };
            match problem {
                Some(reason) => failures.push(Failure::new(rel.as_str(), reason)),
                None => images.push((file, rel.as_str().to_string())),
            }
        }
        images.sort_by(|a, b| a.1.cmp(&b.1));
        (images, failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageList {
        parse_image_list(Path::new("/lists/list.txt"), text.as_bytes()).unwrap()
    }

    fn paths(list: &ImageList) -> Vec<&str> {
        list.paths.iter().map(RelPath::as_str).collect()
    }

    fn skipped(list: &ImageList) -> Vec<(&str, &str)> {
        list.skipped.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect()
    }

    #[test]
    fn plain_lists_skip_comments_blanks_and_duplicates_and_refuse_escapes() {
        let list = parse(
            "\u{feff}# photos to redo\n\
             a.jpg\n\
             \n\
             \x20 people/b c.jpg \r\n\
             ./people/d.png\n\
             ../escape.jpg\n\
             /etc/passwd\n\
             a.jpg\n\
             people/../../x.jpg\n\
             C:\\x.jpg\n\
             \t# indented comment\n\
             last.webp",
        );
        assert_eq!(list.format, ImageListFormat::Lines);
        assert_eq!(paths(&list), ["a.jpg", "people/b c.jpg", "people/d.png", "last.webp"]);
        assert_eq!(list.duplicates, 1);
        assert_eq!(
            skipped(&list),
            [
                ("list.txt:6", "path \"../escape.jpg\" is not relative to the dataset root"),
                ("list.txt:7", "path \"/etc/passwd\" is not relative to the dataset root"),
                ("list.txt:9", "path \"people/../../x.jpg\" is not relative to the dataset root"),
                ("list.txt:10", "path \"C:\\\\x.jpg\" is not relative to the dataset root"),
            ]
        );
        let list = parse_image_list(Path::new("l.txt"), b"ok.jpg\nbad\xff.jpg\n").unwrap();
        assert_eq!((paths(&list), skipped(&list)), (vec!["ok.jpg"], vec![("l.txt:2", "path is not valid UTF-8")]));
        assert!(parse("").paths.is_empty() && parse("\n\n# none\n").skipped.is_empty());
        // A lone `path` line is a file name, not a header.
        assert_eq!(paths(&parse("path\n")), ["path"]);
    }

    #[test]
    fn manifests_are_read_by_the_manifest_reader() {
        let list = parse(
            "path,class_index,class,group,bytes\n\
             masked/a.jpg,0,masked,a,10\n\
             ../outside/x.jpg,0,masked,b,10\n\
             masked/a.jpg,0,masked,a,10\n\
             \"unmasked/b,1.jpg\",1,unmasked,c,10\n",
        );
        assert_eq!(list.format, ImageListFormat::Manifest);
        assert_eq!(paths(&list), ["masked/a.jpg", "unmasked/b,1.jpg"]);
        assert_eq!(list.duplicates, 1);
        assert_eq!(skipped(&list), [("list.txt:3", "path \"../outside/x.jpg\" is not relative to the dataset root")]);
        assert_eq!(paths(&parse("\u{feff}\"path\",label\nx.jpg,1\n")), ["x.jpg"]);
        // A CSV with a path column that is not a manifest is refused whole.
        let err = parse_image_list(Path::new("failures.csv"), b"path,reason\na.jpg,bad\n").unwrap_err().to_string();
        assert!(err.starts_with("failures.csv: a CSV image list must be a manifest"), "{err}");
        let missing = read_image_list(Path::new("/nonexistent/list.txt")).unwrap_err();
        assert!(matches!(missing, ContractError::Io { .. }) && missing.to_string().contains("/nonexistent/list.txt"));
    }

    #[test]
    fn resolve_keeps_images_and_reports_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/folder.jpg")).unwrap();
        for f in ["z.jpg", "sub/a.PNG", "notes.txt"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let list = parse("z.jpg\nmissing.jpg\nsub/a.PNG\nnotes.txt\nsub/folder.jpg\n");
        let (images, failures) = list.resolve(root);
        assert_eq!(images, [(root.join("sub/a.PNG"), "sub/a.PNG".to_string()), (root.join("z.jpg"), "z.jpg".into())]);
        let got: Vec<(&str, &str)> = failures.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect();
        assert_eq!(
            got,
            [
                ("missing.jpg", "listed in list.txt but not found in the input folder"),
                ("notes.txt", "listed in list.txt but not an image file (extensions: jpg, jpeg, png, bmp, webp)"),
                ("sub/folder.jpg", "listed in list.txt but is a folder, not an image"),
            ]
        );
    }
}
