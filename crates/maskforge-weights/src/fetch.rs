//! `maskforge weights fetch`: download a checkpoint, check its SHA-256,
//! convert it, cache it.
//!
//! * The expected hash is `--sha256 HEX` (8 to 64 hex digits, a prefix of
//!   the file's SHA-256), else the hex after the last `-` of the file name
//!   (`resnet18-f37072fd.pth`), torch.hub's convention, which every
//!   torchvision URL follows. With neither, nothing is downloaded.
//! * The download goes to `CACHE/.NAME.partial` ([`crate::download`]:
//!   locked, resumed, size-capped, free space checked, redirects checked).
//!   A partial file the server took as complete (`416`) that fails the hash
//!   is discarded and the file downloaded whole, once, in the same run.
//! * A local file (`--file`) must be a regular file (not a device or a
//!   FIFO, which would never end or never start) within the cap;
//!   it is read through `maskforge_imageio::read_regular`, as a download is.
//! * A file whose hash does not match is removed with an error naming the
//!   URL, and nothing is cached; so is one that is not the model's
//!   state_dict. HTTP errors name the status and the URL.
//! * The converted file is written atomically (temporary name, rename), so
//!   the cache holds the old file or the complete new one, never part of one;
//!   the partial download is removed once it is converted.

use crate::cache::cached_file;
use crate::convert::{convert_pth, read_provenance, Provenance};
use crate::download::{download, download_with};
use crate::error::{Result, WeightsError};
use crate::model::{Arch, DEFAULT_MAX_BYTES};
use std::path::{Path, PathBuf};

pub use crate::download::{parse_max_bytes, Downloaded, NoProgress, Progress};

/// How a file over the cap is named in the message.
const CHECKPOINT: &str = "a checkpoint (--max-bytes N raises it)";

/// Where the checkpoint comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://` URL (the official one, or a mirror).
    Url(String),
    /// A .pth file already on disk (downloaded elsewhere).
    File(PathBuf),
}

impl Source {
    /// `weights fetch`'s source: the local `file` if given, else `url` (a
    /// mirror), else `model`'s official URL.
    pub fn chosen(model: Arch, url: Option<&str>, file: Option<&Path>) -> Source {
        match (url, file) {
            (_, Some(f)) => Source::File(f.to_path_buf()),
            (Some(u), None) => Source::Url(u.to_string()),
            (None, None) => Source::Url(model.official_url().to_string()),
        }
    }

    /// How messages name the source.
    pub fn describe(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// The checkpoint's file name (the URL's last path segment).
    pub fn file_name(&self) -> Option<String> {
        match self {
            Source::Url(u) => url_file_name(u).map(str::to_string),
            Source::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
        }
    }
}

/// What to fetch, from where, into which cache.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    /// The backbone the checkpoint must hold.
    pub model: Arch,
    /// Where the checkpoint is: a URL (the official one by default) or a file.
    pub source: Source,
    /// Expected SHA-256 (or a prefix of at least 8 hex digits); default:
    /// from the file name.
    pub sha256: Option<String>,
    /// The cache folder the converted file goes to.
    pub cache_dir: PathBuf,
    /// Fetch even when the cache already holds this checkpoint.
    pub force: bool,
    /// The most bytes a download or local file may have (a longer body is
    /// cut off, a larger announced or local file refused);
    /// [`DEFAULT_MAX_BYTES`] unless raised.
    pub max_bytes: u64,
}

impl FetchRequest {
    /// A request with the defaults: hash from the file name, the size cap
    /// [`DEFAULT_MAX_BYTES`], the cache honoured.
    pub fn new(model: Arch, source: Source, cache_dir: impl Into<PathBuf>) -> FetchRequest {
        FetchRequest {
            model,
            source,
            sha256: None,
            cache_dir: cache_dir.into(),
            force: false,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// What a fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The cached safetensors file.
    pub path: PathBuf,
    /// Where the cached file came from, as its metadata records.
    pub provenance: Provenance,
    /// False when the cache already held this checkpoint and nothing was done.
    pub fresh: bool,
    /// Tensors written (0 when not fresh).
    pub tensors: usize,
    /// Bytes transferred now.
    pub downloaded: u64,
    /// Bytes a stopped download had left, resumed from.
    pub resumed_from: u64,
}

/// The expected hash prefix and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHash {
    /// Lowercase hex, 8 to 64 digits: a prefix of the file's SHA-256.
    pub prefix: String,
    /// `--sha256`, or `from its file name`.
    pub from: &'static str,
}

/// The last path segment of a URL (query and fragment removed).
pub fn url_file_name(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, p) = after_scheme.split_once('/')?;
    p.rsplit('/').next().filter(|n| !n.is_empty())
}

/// torch.hub's convention: `NAME-HASH.EXT`, HASH the first (8 or more)
/// lowercase hex digits of the file's SHA-256, after the last `-`.
pub fn hash_from_file_name(name: &str) -> Option<String> {
    let (_, tail) = name.rsplit_once('-')?;
    let hex = tail.split('.').next()?;
    (hex.len() >= 8 && hex.len() <= 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| hex.to_string())
}

/// The hash a download must have: `--sha256`, else from the file name.
pub fn expected_hash(source: &Source, sha256: Option<&str>) -> Result<ExpectedHash> {
    if let Some(h) = sha256 {
        let h = h.trim().to_ascii_lowercase();
        if h.len() < 8 || h.len() > 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(WeightsError::Usage(format!(
                "--sha256 {h:?}: expected 8 to 64 hex digits (the file's SHA-256 or its start)"
            )));
        }
        return Ok(ExpectedHash { prefix: h, from: "--sha256" });
    }
    match source.file_name().as_deref().and_then(hash_from_file_name) {
        Some(prefix) => Ok(ExpectedHash { prefix, from: "from its file name" }),
        None => Err(WeightsError::Usage(format!(
            "{}: its file name has no -HASH part (as in resnet18-f37072fd.pth) to check the download against; give --sha256 HEX",
            source.describe()
        ))),
    }
}

/// `CACHE/.NAME.partial`: the download in progress (kept when a transfer
/// stops, for the next fetch to resume).
pub fn partial_path(cache_dir: &Path, file_name: &str) -> PathBuf {
    let safe: String =
        file_name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.');
    cache_dir.join(format!(".{}.partial", if safe.is_empty() { "download" } else { safe }))
}

/// Fetches, checks, converts and caches `req.model`'s checkpoint.
pub fn fetch(req: &FetchRequest, progress: &mut dyn Progress) -> Result<Fetched> {
    let expected = expected_hash(&req.source, req.sha256.as_deref())?;
    let dir = &req.cache_dir;
    std::fs::create_dir_all(dir).map_err(WeightsError::io("create the weights cache", dir))?;
    let target = cached_file(dir, req.model);
    if !req.force {
        if let Ok(Some(p)) = read_provenance(&target) {
            if p.arch == req.model.name() && p.sha256.starts_with(&expected.prefix) {
                return Ok(Fetched {
                    path: target,
                    provenance: p,
                    fresh: false,
                    tensors: 0,
                    downloaded: 0,
                    resumed_from: 0,
                });
            }
        }
    }
    let origin = req.source.describe();
    let got = obtain(req, &expected, progress)?;
    let discard = || {
        if let Some(part) = &got.partial {
            let _ = std::fs::remove_file(part);
        }
    };
    if !got.sha256.starts_with(&expected.prefix) {
        discard();
        return Err(WeightsError::HashMismatch {
            origin,
            actual: got.sha256,
            expected: expected.prefix,
            from: expected.from,
            consequence: if got.partial.is_some() {
                "the file is damaged or not the published one; it was removed and nothing was cached"
            } else {
                "the file is damaged or not the published one; nothing was cached"
            },
        });
    }
    let provenance = Provenance { arch: req.model.name().to_string(), source: origin.clone(), sha256: got.sha256 };
    let converted = convert_pth(&got.bytes, req.model, &provenance);
    drop(got.bytes);
    let (st, tensors) = converted.map_err(|msg| {
        discard();
        WeightsError::Checkpoint { origin, msg }
    })?;
    maskforge_imageio::write_atomic(&target, &st).map_err(WeightsError::io("write", &target))?;
    discard();
    Ok(Fetched {
        path: target,
        provenance,
        fresh: true,
        tensors,
        downloaded: got.downloaded,
        resumed_from: got.resumed_from,
    })
}

/// The checkpoint's bytes, downloaded or read, and their SHA-256.
struct Obtained {
    bytes: Vec<u8>,
    sha256: String,
    downloaded: u64,
    resumed_from: u64,
    /// The partial download holding `bytes` (removed once used).
    partial: Option<PathBuf>,
}

/// Downloads (or reads) the checkpoint. A download that is only what a
/// partial file held (the server said it was complete) and fails the hash
/// is done again from the start, once.
fn obtain(req: &FetchRequest, expected: &ExpectedHash, progress: &mut dyn Progress) -> Result<Obtained> {
    let url = match &req.source {
        Source::File(p) => {
            let bytes = maskforge_imageio::read_regular(p, req.max_bytes, CHECKPOINT)?;
            let sha256 = maskforge_imageio::sha256_hex(&bytes);
            return Ok(Obtained { bytes, sha256, downloaded: 0, resumed_from: 0, partial: None });
        }
        Source::Url(url) => url,
    };
    let name = req.source.file_name().unwrap_or_else(|| format!("{}.pth", req.model));
    let part = partial_path(&req.cache_dir, &name);
    let mut d = download(url, &part, req.max_bytes, progress)?;
    if d.bytes == 0 && d.resumed_from > 0 && !d.sha256.starts_with(&expected.prefix) {
        d = download_with(url, &part, req.max_bytes, true, progress)?;
    }
    let bytes = maskforge_imageio::read_regular(&part, req.max_bytes, CHECKPOINT)?;
    Ok(Obtained { bytes, sha256: d.sha256, downloaded: d.bytes, resumed_from: d.resumed_from, partial: Some(part) })
}

/// SHA-256 of a regular file, lowercase hex (a device or a FIFO is refused).
pub fn sha256_file(path: &Path) -> Result<String> {
    let f = maskforge_imageio::open_regular(path, u64::MAX, "a file to hash")?;
    maskforge_imageio::sha256_read(f).map_err(WeightsError::io("read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_from_names() {
        assert_eq!(hash_from_file_name("resnet50-0676ba61.pth").as_deref(), Some("0676ba61"));
        assert_eq!(hash_from_file_name("mobilenet_v2-b0353104.pth").as_deref(), Some("b0353104"));
        assert_eq!(hash_from_file_name("a-b-0123456789abcdef.pth").as_deref(), Some("0123456789abcdef"));
        assert_eq!(hash_from_file_name("resnet50.pth"), None);
        assert_eq!(hash_from_file_name("resnet50-imagenet.pth"), None);
        assert_eq!(hash_from_file_name("resnet50-0676BA61.pth"), None);
        assert_eq!(hash_from_file_name("x-0676ba6.pth"), None, "fewer than 8 digits");
        assert_eq!(url_file_name("https://h/models/resnet18-f37072fd.pth?x=1#y"), Some("resnet18-f37072fd.pth"));
        assert_eq!(url_file_name("https://h"), None);
        assert_eq!(url_file_name("https://h/"), None);
    }

    #[test]
    fn expected_hash_rules() {
        let u = |s: &str| Source::Url(s.into());
        let e = expected_hash(&u("http://h/resnet18-f37072fd.pth"), None).unwrap();
        assert_eq!(e, ExpectedHash { prefix: "f37072fd".into(), from: "from its file name" });
        let e = expected_hash(&u("http://h/resnet18-f37072fd.pth"), Some("ABCDEF0123")).unwrap();
        assert_eq!(e, ExpectedHash { prefix: "abcdef0123".into(), from: "--sha256" });
        let e = expected_hash(&u("http://h/weights.pth"), None).unwrap_err().to_string();
        assert!(e.contains("http://h/weights.pth") && e.contains("--sha256"), "{e}");
        assert!(expected_hash(&u("http://h/w.pth"), Some("xyz12345")).is_err());
        assert!(expected_hash(&u("http://h/w.pth"), Some("abc")).is_err());
        let f = Source::File("/tmp/resnet18-f37072fd.pth".into());
        assert_eq!(expected_hash(&f, None).unwrap().prefix, "f37072fd");
    }

    #[test]
    fn partial_names_stay_in_the_cache() {
        let p = partial_path(Path::new("/c"), "resnet18-f37072fd.pth");
        assert_eq!(p, Path::new("/c/.resnet18-f37072fd.pth.partial"));
        assert_eq!(partial_path(Path::new("/c"), "../x y"), Path::new("/c/._x_y.partial"));
        assert_eq!(partial_path(Path::new("/c"), ".."), Path::new("/c/.download.partial"));
    }
}
