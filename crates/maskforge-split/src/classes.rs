//! Class discovery, the way torchvision's `ImageFolder.find_classes` does it:
//! the sorted names of the root's sub-folders (symlinks followed), index =
//! position. Hidden folders (`.name`) are left out, as the image walk skips them.

use crate::SplitError;
use std::path::Path;

/// Sorted class folder names under `root`.
pub fn discover_classes(root: &Path) -> Result<Vec<String>, SplitError> {
    let meta = std::fs::metadata(root).map_err(SplitError::io(root))?;
    if !meta.is_dir() {
        return Err(SplitError::RootNotDir(root.to_path_buf()));
    }
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(root).map_err(SplitError::io(root))? {
        let entry = entry.map_err(SplitError::io(root))?;
        let path = entry.path();
        // metadata() follows symlinks, as os.scandir's is_dir() does.
        if !std::fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = entry.file_name().into_string().map_err(|_| SplitError::ClassName(path.clone()))?;
        if !name.starts_with('.') {
            classes.push(name);
        }
    }
    // Byte order of UTF-8 = code point order = Python's sorted() on str.
    classes.sort();
    if classes.is_empty() {
        return Err(SplitError::NoClasses(root.to_path_buf()));
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_like_python_skipping_files_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["b", "B", "a_x", "ä", ".cache", "10", "9"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("annotations.csv"), "x").unwrap();
        assert_eq!(discover_classes(dir.path()).unwrap(), ["10", "9", "B", "a_x", "b", "ä"]);
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("x.jpg"), "x").unwrap();
        assert!(matches!(discover_classes(empty.path()), Err(SplitError::NoClasses(_))));
        assert!(matches!(discover_classes(&empty.path().join("x.jpg")), Err(SplitError::RootNotDir(_))));
    }
}
