//! The Python venv of set-up (torch, torchvision, pycocotools, OpenCV: about
//! 4.7 GB) is kept once per machine, not once per clone: in
//! `$MASKFORGE_VENV` (the venv folder itself) or
//! `${XDG_CACHE_HOME:-$HOME/.cache}/maskforge/venvs/KEY`, where KEY names the
//! pinned versions and the Python it was made with. A clone's `.venv` is a
//! symbolic link to it, so everything that runs `.venv/bin/python` (tests,
//! README commands, torch-sys through `LIBTORCH_USE_PYTORCH`) is unchanged.
//!
//! * A venv is whole when its marker file holds its key (written last, after
//!   every install of the set succeeded and the imports were checked) and the
//!   imports still pass; anything else that set-up made there (its owner
//!   file says so) is removed and built again.
//! * Set-ups of several clones at once take a lock (`KEY.lock` beside the
//!   venv) before they build, and check again once they hold it: one builds,
//!   the others wait and then use it.
//! * A clone whose `.venv` is a real folder (made before the venv was
//!   shared), or a link to a venv that set-up did not make, keeps it.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Written into a shared venv right after `python3 -m venv`: set-up made this
/// folder, so set-up may remove it and build it again.
pub const OWNER_FILE: &str = ".maskforge-venv";
/// Written last, after every install of the set succeeded and its imports were
/// checked; holds the key.
pub const MARKER_FILE: &str = ".maskforge-venv-complete";

/// The Python a venv is made with (`python3` on PATH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    /// `platform.python_version()`, e.g. `3.11.7`.
    pub version: String,
    /// `platform.machine()`, e.g. `x86_64`.
    pub machine: String,
    /// The real path of the base interpreter (a venv's python resolves to
    /// the one it was made from): the venv's `bin/python` links to it.
    pub executable: String,
}

impl Python {
    /// Asks `python3` what it is.
    pub fn probe() -> Result<Python> {
        let code = "import os, platform, sys; print(platform.python_version()); print(platform.machine()); \
                    print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)))";
        let out = Command::new("python3").args(["-c", code]).output().context("cannot run python3")?;
        if !out.status.success() {
            bail!("python3 failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().map(str::trim);
        match (lines.next(), lines.next(), lines.next()) {
            (Some(v), Some(m), Some(e)) if !v.is_empty() && !e.is_empty() => {
                Ok(Python { version: v.into(), machine: m.into(), executable: e.into() })
            }
            _ => bail!("python3 printed no version, machine and path: {text:?}"),
        }
    }
}

/// What a shared venv is made of: the text its marker holds, and the name of
/// its folder under `venvs/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub text: String,
    pub dir_name: String,
}

/// The key of a venv made with `python` holding `pins` (PyPI name, version).
/// The folder name is readable (Python and torch version) and ends with a
/// hash of the whole key, so any other pin or Python is another folder.
pub fn key(python: &Python, pins: &[(&str, &str)]) -> Key {
    let mut text = format!("maskforge venv 1\npython {} {} {}\n", python.version, python.machine, python.executable);
    for (name, version) in pins {
        text.push_str(&format!("{name}=={version}\n"));
    }
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
    let torch = pins.iter().find(|(n, _)| *n == "torch").map(|(_, v)| format!("-torch{v}")).unwrap_or_default();
    let dir_name = format!("py{}{torch}-{}", python.version, &hash[..16]);
    Key { text, dir_name }
}

/// The shared venv's folder: `$MASKFORGE_VENV` as it is (relative to `cwd`
/// when relative), else `venvs/KEY` in `$XDG_CACHE_HOME/maskforge` or
/// `$HOME/.cache/maskforge`. `None` with neither set.
pub fn shared_dir(key: &Key, env: &dyn Fn(&str) -> Option<OsString>, cwd: &Path) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("MASKFORGE_VENV") {
        return Some(cwd.join(dir));
    }
    Some(cache_root(env)?.join("venvs").join(&key.dir_name))
}

/// `$XDG_CACHE_HOME/maskforge` (when absolute), else `$HOME/.cache/maskforge`.
fn cache_root(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = match set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        Some(xdg) => xdg,
        None => set("HOME")?.join(".cache"),
    };
    Some(cache.join("maskforge"))
}

/// The machine's store of the files set-up checks by SHA-256 (models,
/// sample photos), named by their SHA-256, beside the shared venvs:
/// `$XDG_CACHE_HOME/maskforge/files` or `$HOME/.cache/maskforge/files`.
/// A second clone copies them from there instead of downloading the sdists
/// and wheels again. `None` with neither variable set.
pub fn file_store(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    Some(cache_root(env)?.join("files"))
}

/// Whether `marker` (the marker file's contents, `None` when it cannot be
/// read) says the venv was completed for `key`.
pub fn marker_matches(marker: Option<&str>, key: &Key) -> bool {
    marker == Some(key.text.as_str())
}

fn read_marker(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(MARKER_FILE)).ok()
}

/// What is at a clone's `.venv` path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// A real folder: a per-clone venv.
    Dir,
    /// A symbolic link; `ours` when it leads nowhere or to a venv set-up made.
    Link {
        target: PathBuf,
        ours: bool,
    },
    /// A file, or anything else.
    Other,
}

impl Existing {
    pub fn inspect(path: &Path) -> Result<Existing> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(path)?;
            let resolved = path.parent().unwrap_or(Path::new(".")).join(&target);
            let ours = !resolved.exists() || resolved.join(OWNER_FILE).is_file();
            return Ok(Existing::Link { target, ours });
        }
        Ok(if meta.is_dir() { Existing::Dir } else { Existing::Other })
    }
}

/// What set-up does with a clone's `.venv` (see [`decide_link`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// Use it as it is (a folder, or a link to a venv set-up did not make).
    PerClone,
    /// It already links to the shared venv.
    Keep,
    /// Make the link.
    Create,
    /// Point the link at the shared venv (it led nowhere, or to set-up's venv
    /// of other pins or another `$MASKFORGE_VENV`).
    Replace,
    /// Stop: not something set-up replaces.
    Refuse(String),
}

/// The decision for a clone's `.venv` at `link`, given what is there and the
/// shared venv's folder.
pub fn decide_link(existing: &Existing, link: &Path, shared: &Path) -> LinkAction {
    if shared == link {
        return LinkAction::Refuse(format!(
            "MASKFORGE_VENV names this clone's own {}: name a folder outside the clone",
            link.display()
        ));
    }
    match existing {
        Existing::Nothing => LinkAction::Create,
        Existing::Dir => LinkAction::PerClone,
        Existing::Link { target, .. } if target == shared => LinkAction::Keep,
        Existing::Link { ours: true, .. } => LinkAction::Replace,
        Existing::Link { ours: false, .. } => LinkAction::PerClone,
        Existing::Other => LinkAction::Refuse(format!(
            "{} is neither a folder nor a link: remove it and run set-up again",
            link.display()
        )),
    }
}

/// Makes `link` a symbolic link to `shared` (a new link renamed over the old
/// one, so the path is never missing).
pub fn make_link(link: &Path, shared: &Path) -> Result<()> {
    let tmp = link.with_file_name(format!(".venv.link-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(shared, &tmp).with_context(|| format!("cannot make the link {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("cannot rename {} to {}", tmp.display(), link.display()))
}

/// Checks in `python` that every pinned package imports at its version.
pub fn imports_ok(python: &Path, pins: &[(&str, &str)]) -> bool {
    let code = "import importlib.metadata as m, sys\n\
                import torch, torchvision, pycocotools.coco, cv2\n\
                cv2.dnn.readNetFromCaffe\n\
                for spec in sys.argv[1:]:\n    \
                    name, want = spec.split('==')\n    \
                    assert m.version(name).split('+')[0] == want, (name, m.version(name), want)\n";
    Command::new(python)
        .arg("-c")
        .arg(code)
        .args(pins.iter().map(|(n, v)| format!("{n}=={v}")))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Why the venv in `dir` is not whole for `key` (`None`: it is).
fn incomplete(dir: &Path, key: &Key, pins: &[(&str, &str)]) -> Option<&'static str> {
    if !dir.exists() {
        return Some("absent");
    }
    if !dir.join("bin/python").exists() {
        return Some("no python in it (a set-up did not finish)");
    }
    if !marker_matches(read_marker(dir).as_deref(), key) {
        return Some(if dir.join(MARKER_FILE).exists() {
            "its marker names other versions"
        } else {
            "no completion marker (a set-up did not finish)"
        });
    }
    if !imports_ok(&dir.join("bin/python"), pins) {
        return Some("damaged (a pinned package does not import)");
    }
    None
}

/// Whether set-up may remove the folder `dir`: absent, empty, or made by set-up.
fn removable(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Err(_) => true,
        Ok(mut entries) => entries.next().is_none() || dir.join(OWNER_FILE).is_file(),
    }
}

/// Makes sure the shared venv in `dir` is whole for `key`: when it is not,
/// under the lock, removes what is there and builds it (`python3 -m venv`,
/// then `install` with its python), checks the imports and writes the marker.
pub fn ensure_shared(
    dir: &Path,
    key: &Key,
    pins: &[(&str, &str)],
    install: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    if incomplete(dir, key, pins).is_none() {
        println!("    shared venv {}: complete", dir.display());
        return Ok(());
    }
    let parent = dir.parent().context("the shared venv's folder has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dir.file_name().context("the shared venv's folder has no name")?.to_string_lossy();
    let lock_path = parent.join(format!("{name}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        println!("    waiting for another set-up of the shared venv ({})", lock_path.display());
        lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    // Another set-up may have built it while this one waited.
    let Some(why) = incomplete(dir, key, pins) else {
        println!("    shared venv {}: complete (built by another set-up)", dir.display());
        return Ok(());
    };
    if dir.exists() {
        if !removable(dir) {
            bail!(
                "{} is not a venv that set-up made (no {OWNER_FILE} in it), and not whole: \
                 remove it, or set MASKFORGE_VENV to another folder",
                dir.display()
            );
        }
        println!("    shared venv {}: {why}; building it again", dir.display());
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    } else {
        println!("    creating the shared venv {} (one per machine, for every clone)", dir.display());
    }
    crate::run_cmd(Command::new("python3").args(["-m", "venv"]).arg(dir))?;
    fs::write(dir.join(OWNER_FILE), format!("made by `cargo xtask setup` (maskforge) for\n{}", key.text))?;
    let python = dir.join("bin/python");
    install(&python)?;
    if !imports_ok(&python, pins) {
        bail!("the packages were installed into {}, but they do not all import", dir.display());
    }
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    fs::write(&tmp, &key.text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, dir.join(MARKER_FILE))?;
    println!("    shared venv {}: complete", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINS: &[(&str, &str)] = &[("torch", "2.11.0"), ("torchvision", "0.26.0")];

    fn python() -> Python {
        Python { version: "3.11.7".into(), machine: "x86_64".into(), executable: "/usr/bin/python3.11".into() }
    }

    /// A fresh folder under the system's temp folder, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("xtask-venv-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_key_changes_with_every_pin_and_python_and_names_a_readable_folder() {
        let k = key(&python(), PINS);
        assert!(k.dir_name.starts_with("py3.11.7-torch2.11.0-"), "{}", k.dir_name);
        assert_eq!(k.dir_name.len(), "py3.11.7-torch2.11.0-".len() + 16);
        assert!(k.text.contains("torch==2.11.0\n") && k.text.contains("python 3.11.7 x86_64 /usr/bin/python3.11"));
        assert_eq!(key(&python(), PINS), k, "the same inputs give the same key");
        let others = [
            key(&python(), &[("torch", "2.11.0"), ("torchvision", "0.26.1")]),
            key(&python(), &PINS[..1]),
            key(&Python { version: "3.11.8".into(), ..python() }, PINS),
            key(&Python { machine: "aarch64".into(), ..python() }, PINS),
            key(&Python { executable: "/opt/py/bin/python3.11".into(), ..python() }, PINS),
        ];
        for other in &others {
            assert_ne!(other.dir_name, k.dir_name);
            assert_ne!(other.text, k.text);
        }
    }

    #[test]
    fn the_shared_folder_is_maskforge_venv_else_the_cache_folder() {
        let k = key(&python(), PINS);
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
        };
        let cwd = Path::new("/work/clone");
        let home = env(&[("HOME", "/home/u")]);
        assert_eq!(shared_dir(&k, &home, cwd), Some(PathBuf::from("/home/u/.cache/maskforge/venvs").join(&k.dir_name)));
        let xdg = env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/var/cache/u")]);
        assert_eq!(shared_dir(&k, &xdg, cwd), Some(PathBuf::from("/var/cache/u/maskforge/venvs").join(&k.dir_name)));
        // XDG says a relative value is to be ignored; an empty one too.
        let bad_xdg = env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "cache")]);
        assert_eq!(shared_dir(&k, &bad_xdg, cwd), shared_dir(&k, &home, cwd));
        let named = env(&[("HOME", "/home/u"), ("MASKFORGE_VENV", "/srv/venv")]);
        assert_eq!(shared_dir(&k, &named, cwd), Some(PathBuf::from("/srv/venv")));
        let relative = env(&[("MASKFORGE_VENV", "../venv")]);
        assert_eq!(shared_dir(&k, &relative, cwd), Some(PathBuf::from("/work/clone/../venv")));
        let empty = env(&[("HOME", "/home/u"), ("MASKFORGE_VENV", "")]);
        assert_eq!(shared_dir(&k, &empty, cwd), shared_dir(&k, &home, cwd));
        assert_eq!(shared_dir(&k, &env(&[]), cwd), None);
        // The file store sits beside the venvs; MASKFORGE_VENV names a venv only.
        assert_eq!(file_store(&named), Some(PathBuf::from("/home/u/.cache/maskforge/files")));
        assert_eq!(file_store(&xdg), Some(PathBuf::from("/var/cache/u/maskforge/files")));
        assert_eq!(file_store(&env(&[])), None);
    }

    #[test]
    fn only_a_marker_holding_the_key_says_complete() {
        let k = key(&python(), PINS);
        assert!(marker_matches(Some(&k.text), &k));
        assert!(!marker_matches(None, &k));
        assert!(!marker_matches(Some(""), &k));
        assert!(!marker_matches(Some(&k.text[..k.text.len() - 1]), &k), "a cut marker");
        let other = key(&python(), &PINS[..1]);
        assert!(!marker_matches(Some(&other.text), &k));

        // On disk: no venv, a venv without the marker, with another key's.
        let scratch = Scratch::new("marker");
        let dir = scratch.0.join("venv");
        assert_eq!(incomplete(&dir, &k, PINS), Some("absent"));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(incomplete(&dir, &k, PINS), Some("no python in it (a set-up did not finish)"));
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/python"), "").unwrap();
        assert_eq!(incomplete(&dir, &k, PINS), Some("no completion marker (a set-up did not finish)"));
        fs::write(dir.join(MARKER_FILE), &other.text).unwrap();
        assert_eq!(incomplete(&dir, &k, PINS), Some("its marker names other versions"));
        // With the right marker the imports are checked: this "python" runs nothing.
        fs::write(dir.join(MARKER_FILE), &k.text).unwrap();
        assert_eq!(incomplete(&dir, &k, PINS), Some("damaged (a pinned package does not import)"));
    }

    #[test]
    fn only_an_empty_folder_or_one_setup_made_is_removed() {
        let scratch = Scratch::new("removable");
        let dir = scratch.0.join("venv");
        assert!(removable(&dir), "absent");
        fs::create_dir_all(&dir).unwrap();
        assert!(removable(&dir), "empty");
        fs::write(dir.join("pyvenv.cfg"), "").unwrap();
        assert!(!removable(&dir), "someone else's venv");
        fs::write(dir.join(OWNER_FILE), "").unwrap();
        assert!(removable(&dir));
    }

    #[test]
    fn a_clone_keeps_its_own_venv_and_links_to_the_shared_one_otherwise() {
        let link = Path::new("/work/clone/.venv");
        let shared = Path::new("/home/u/.cache/maskforge/venvs/k");
        let decide = |e: Existing| decide_link(&e, link, shared);
        assert_eq!(decide(Existing::Nothing), LinkAction::Create);
        assert_eq!(decide(Existing::Dir), LinkAction::PerClone);
        assert_eq!(decide(Existing::Link { target: shared.into(), ours: true }), LinkAction::Keep);
        let old = PathBuf::from("/home/u/.cache/maskforge/venvs/old");
        assert_eq!(decide(Existing::Link { target: old.clone(), ours: true }), LinkAction::Replace);
        assert_eq!(decide(Existing::Link { target: old, ours: false }), LinkAction::PerClone);
        assert!(matches!(decide(Existing::Other), LinkAction::Refuse(_)));
        assert!(matches!(decide_link(&Existing::Nothing, link, link), LinkAction::Refuse(_)));
    }

    #[test]
    fn inspect_tells_links_folders_and_files_apart_and_make_link_replaces_a_link() {
        let scratch = Scratch::new("inspect");
        let link = scratch.0.join(".venv");
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Nothing);
        let shared = scratch.0.join("shared");
        make_link(&link, &shared).unwrap();
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Link { target: shared.clone(), ours: true });
        let foreign = scratch.0.join("foreign");
        fs::create_dir_all(&foreign).unwrap();
        make_link(&link, &foreign).unwrap();
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Link { target: foreign.clone(), ours: false });
        fs::write(foreign.join(OWNER_FILE), "").unwrap();
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Link { target: foreign, ours: true });
        fs::remove_file(&link).unwrap();
        fs::create_dir(&link).unwrap();
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Dir);
        fs::remove_dir(&link).unwrap();
        fs::write(&link, "").unwrap();
        assert_eq!(Existing::inspect(&link).unwrap(), Existing::Other);
    }
}
