//! The one validator of paths that come from data: a path read from a CSV,
//! a journal or any file a stage wrote earlier (annotations, shard CSVs,
//! landmarks, manifests) is untrusted. [`check_relative`] accepts plain
//! relative paths only; [`confined`] also resolves what exists of the path
//! on disk, so that no symlinked folder under the root carries a write or a
//! delete outside it. Every such path goes through here before it is read,
//! written or removed.

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path from data was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// Absolute, with a drive, a backslash, NUL, or an empty, `.` or `..`
    /// component (the path as given).
    #[error("path {0:?} is not relative to the dataset root")]
    NotRelative(String),
    /// A folder on the way is a symlink to somewhere outside the root.
    #[error("{path}: {link} is a symlink that leads outside {root}: refusing to write or remove through it")]
    Escapes {
        /// The full path asked for.
        path: String,
        /// The symlinked folder on the way.
        link: String,
        /// The root it must stay under.
        root: String,
    },
    /// A symlinked folder on the way (or the root) cannot be resolved.
    #[error("{path}: cannot resolve {link}: {reason}")]
    Unresolvable {
        /// The full path asked for.
        path: String,
        /// The symlinked folder on the way.
        link: String,
        /// The I/O error, in words.
        reason: String,
    },
}

impl From<ConfineError> for io::Error {
    fn from(e: ConfineError) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, e.to_string())
    }
}

/// Checks that `rel` is a relative path of plain names: not empty, not
/// absolute, no `.`/`..`/empty component, no NUL, no backslash (Windows reads
/// it as a separator: `a\..\..\x`), no leading drive (`C:`). Lexical: nothing
/// is looked up on disk. Stricter than any one platform needs, so that a file
/// means the same on all of them.
pub fn check_relative(rel: &OsStr) -> Result<(), ConfineError> {
    let bytes = rel.as_encoded_bytes();
    if bytes.is_empty() {
        return Err(ConfineError::Empty);
    }
    let refuse = || ConfineError::NotRelative(rel.to_string_lossy().into_owned());
    if bytes.contains(&0) || bytes.contains(&b'\\') || bytes.starts_with(b"/") {
        return Err(refuse());
    }
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(refuse());
    }
    let parts = bytes.split(|&b| b == b'/');
    if parts.clone().any(|p| p.is_empty() || p == b"." || p == b"..") {
        return Err(refuse());
    }
    // The same question asked of the platform's own parser, so that no form
    // it knows (prefixes, root) slips past the checks above.
    let mut normal = 0;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => normal += 1,
            _ => return Err(refuse()),
        }
    }
    if normal != parts.count() {
        return Err(refuse());
    }
    Ok(())
}

/// The path of `rel` under `root`, for writing or removing: `rel` passes
/// [`check_relative`], and every folder between `root` and the file that
/// exists is either a real folder or a symlink whose target lies inside
/// `root` (resolved). The file itself may be a symlink: a write replaces it
/// by rename and a removal removes the link, neither follows it. Folders that
/// do not exist yet are created later under a checked parent.
pub fn confined(root: &Path, rel: &Path) -> Result<PathBuf, ConfineError> {
    check_relative(rel.as_os_str())?;
    let target = root.join(rel);
    let mut real_root: Option<PathBuf> = None;
    let mut folder = root.to_path_buf();
    let names: Vec<&OsStr> = rel.iter().collect();
    for name in &names[..names.len() - 1] {
        folder.push(name);
        let Ok(meta) = folder.symlink_metadata() else { break };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let show = |p: &Path| p.display().to_string();
        let unresolvable = |e: io::Error| ConfineError::Unresolvable {
            path: show(&target),
            link: show(&folder),
            reason: e.to_string(),
        };
        let resolved = folder.canonicalize().map_err(unresolvable)?;
        if real_root.is_none() {
            real_root = Some(root.canonicalize().map_err(unresolvable)?);
        }
        if !real_root.as_ref().is_some_and(|r| resolved.starts_with(r)) {
            return Err(ConfineError::Escapes { path: show(&target), link: show(&folder), root: show(root) });
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(s: &str) -> Result<(), ConfineError> {
        check_relative(OsStr::new(s))
    }

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["a.jpg", "masked/p1/x.png", "with space/ü.jpg", "a..b/c", ".hidden/x", "é:/x", "a/b:c"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../outside/x.jpg",
            "a/../../b",
            "a/./b",
            "./a",
            "a/",
            "a//b",
            "..",
            ".",
            "C:\\x.jpg",
            "C:x.jpg",
            "c:/x",
            "\\\\server\\share\\x",
            "a\\..\\..\\x",
            "a\0b",
            "//x",
            "x:y/z",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_that_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("out"), dir.path().join("in"));
        std::fs::create_dir_all(root.join("inner")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("correct")).unwrap();
        std::os::unix::fs::symlink(root.join("inner"), root.join("alias")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("dangling")).unwrap();
        let e = confined(&root, Path::new("correct/a.jpg")).unwrap_err();
        assert!(matches!(e, ConfineError::Escapes { .. }), "{e}");
        assert!(e.to_string().contains("is a symlink that leads outside"), "{e}");
        assert!(confined(&root, Path::new("correct/sub/a.jpg")).is_err());
        assert!(matches!(confined(&root, Path::new("dangling/a.jpg")), Err(ConfineError::Unresolvable { .. })));
        assert_eq!(confined(&root, Path::new("alias/a.jpg")).unwrap(), root.join("alias/a.jpg"));
        assert_eq!(confined(&root, Path::new("new/deeper/a.jpg")).unwrap(), root.join("new/deeper/a.jpg"));
        // The file itself may be a link: a rename replaces it, a removal unlinks it.
        assert_eq!(confined(&root, Path::new("correct")).unwrap(), root.join("correct"));
    }

    /// A path component: plain names, the dangerous ones, non-UTF-8 bytes
    /// and the names of the symlinks the property test plants.
    fn component() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z]{1,3}".prop_map(String::into_bytes),
            Just(b"..".to_vec()),
            Just(b".".to_vec()),
            Just(Vec::new()),
            Just(b"C:".to_vec()),
            Just(b"a\\..".to_vec()),
            Just(b"x\0y".to_vec()),
            Just(vec![0xff, 0xfe]),
            Just(b"up".to_vec()),
            Just(b"abs".to_vec()),
            Just(b"self".to_vec()),
        ]
    }

    #[cfg(unix)]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever the path, an accepted one lies under the root once every
        /// existing folder on the way is resolved.
        #[test]
        fn accepted_paths_never_resolve_outside_the_root(
            parts in proptest::collection::vec(component(), 1..6),
            absolute in any::<bool>(),
        ) {
            use std::os::unix::ffi::OsStrExt;
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("self/abc")).unwrap();
            std::os::unix::fs::symlink("..", root.join("up")).unwrap();
            std::os::unix::fs::symlink("/", root.join("abs")).unwrap();
            std::os::unix::fs::symlink(".", root.join("self/me")).unwrap();
            let mut bytes = if absolute { b"/".to_vec() } else { Vec::new() };
            bytes.extend(parts.join(&b'/'));
            let rel = Path::new(OsStr::from_bytes(&bytes));
            if let Ok(path) = confined(&root, rel) {
                let parent = crate::resolve_existing_prefix(path.parent().unwrap()).unwrap();
                let real_root = root.canonicalize().unwrap();
                prop_assert!(parent.starts_with(&real_root), "{rel:?} -> {parent:?}");
                prop_assert!(!bytes.contains(&0) && !bytes.starts_with(b"/"));
            }
        }
    }
}
