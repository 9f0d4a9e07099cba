//! Where converted weights are kept, and the file of each backbone.
//!
//! The cache folder is, first match wins: the `--cache DIR` flag,
//! `$MASKFORGE_WEIGHTS`, `$XDG_CACHE_HOME/maskforge/weights`,
//! `~/.cache/maskforge/weights`. It is per user, like torch.hub's, so it
//! survives a new checkout or `cargo clean`, and one fetch serves every run;
//! copying the folder (and pointing `$MASKFORGE_WEIGHTS` at it) is how a
//! machine without network gets the weights. Each backbone has one file,
//! `ARCH-imagenet.safetensors`; its metadata records where it came from.

use crate::error::{Result, WeightsError};
use crate::model::Arch;
use std::path::{Path, PathBuf};

/// The environment variable naming the cache folder.
pub const ENV_VAR: &str = "MASKFORGE_WEIGHTS";

/// The cache folder and which rule chose it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    /// The folder (it need not exist yet).
    pub dir: PathBuf,
    /// The rule that chose it: `--cache`, `$MASKFORGE_WEIGHTS`,
    /// `$XDG_CACHE_HOME` or `~/.cache`.
    pub from: &'static str,
}

/// The cache folder (see the module docs); errors only when none of the
/// rules gives one (no `$HOME`).
pub fn cache_dir(flag: Option<&Path>) -> Result<CacheDir> {
    cache_dir_from(flag, &|k| std::env::var_os(k))
}

fn cache_dir_from(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<CacheDir> {
    if let Some(dir) = flag {
        return Ok(CacheDir { dir: dir.to_path_buf(), from: "--cache" });
    }
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(ENV_VAR) {
        return Ok(CacheDir { dir, from: "$MASKFORGE_WEIGHTS" });
    }
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(CacheDir { dir: xdg.join("maskforge/weights"), from: "$XDG_CACHE_HOME" });
    }
    if let Some(home) = set("HOME") {
        return Ok(CacheDir { dir: home.join(".cache/maskforge/weights"), from: "~/.cache" });
    }
    Err(WeightsError::Usage(format!("no weights cache folder: set ${ENV_VAR} or pass --cache DIR")))
}

/// The converted ImageNet weights of `model` in `dir`.
pub fn cached_file(dir: &Path, model: Arch) -> PathBuf {
    dir.join(format!("{}-imagenet.safetensors", model.name()))
}

/// The cached ImageNet weights of `model` (what `train --weights imagenet`
/// loads), or the error that says how to fetch them.
pub fn imagenet_weights(model: Arch) -> Result<PathBuf> {
    let cache = cache_dir(None)?;
    let path = cached_file(&cache.dir, model);
    if path.is_file() {
        Ok(path)
    } else {
        Err(WeightsError::NotCached { model, dir: cache.dir })
    }
}

/// `train --weights`: `imagenet` means the cached ImageNet weights of
/// `model` ([`imagenet_weights`]); anything else is a file path, unchanged.
pub fn train_weights(weights: &Path, model: Arch) -> Result<PathBuf> {
    if weights.as_os_str() == "imagenet" {
        imagenet_weights(model)
    } else {
        Ok(weights.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn with(vars: &[(&str, &str)]) -> Result<CacheDir> {
        let m: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        cache_dir_from(None, &move |k| m.get(k).cloned())
    }

    #[test]
    fn resolution_order() {
        let flag = cache_dir_from(Some(Path::new("/f")), &|_| Some("/env".into())).unwrap();
        assert_eq!(flag, CacheDir { dir: "/f".into(), from: "--cache" });
        let all = [("MASKFORGE_WEIGHTS", "/w"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(with(&all).unwrap().dir, Path::new("/w"));
        assert_eq!(with(&all[1..]).unwrap().dir, Path::new("/x/maskforge/weights"));
        assert_eq!(
            with(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]).unwrap().dir,
            Path::new("/h/.cache/maskforge/weights")
        );
        assert_eq!(with(&[("MASKFORGE_WEIGHTS", ""), ("HOME", "/h")]).unwrap().from, "~/.cache");
        assert!(with(&[]).unwrap_err().to_string().contains("set $MASKFORGE_WEIGHTS or pass --cache DIR"));
        assert_eq!(cached_file(Path::new("/c"), Arch::MobilenetV2), Path::new("/c/mobilenet_v2-imagenet.safetensors"));
    }
}
