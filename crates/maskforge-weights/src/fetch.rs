//! `maskforge weights fetch`: download a checkpoint, check its SHA-256,
//! convert it, cache it.
//!
//! * The expected hash is `--sha256 HEX` (8 to 64 hex digits, a prefix of
//!   the file's SHA-256), else the hex after the last `-` of the file name
//!   (`resnet18-f37072fd.pth`), torch.hub's convention, which every
//!   torchvision URL follows. With neither, nothing is downloaded.
//! * The download goes to `CACHE/.NAME.partial`, locked (`flock`) so two
//!   fetches never write one file. A transfer that stops leaves it there,
//!   and the next fetch asks for the rest (`Range`); a server that ignores
//!   the range sends the whole file again, which replaces it.
//! * A file whose hash does not match is removed with an error naming the
//!   URL, and nothing is cached; so is one that is not the model's
//!   state_dict. HTTP errors name the status and the URL.
//! * The converted file is written atomically (temporary name, rename), so
//!   the cache holds the old file or the complete new one, never part of one;
//!   the partial download is removed once it is converted.

use crate::cache::cached_file;
use crate::convert::{convert_pth, read_provenance, Provenance};
use crate::error::{Result, WeightsError};
use crate::model::Model;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the checkpoint comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://` URL (the official one, or a mirror).
    Url(String),
    /// A .pth file already on disk (downloaded elsewhere).
    File(PathBuf),
}

impl Source {
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
    pub model: Model,
    pub source: Source,
    /// Expected SHA-256 (or a prefix of at least 8 hex digits); default:
    /// from the file name.
    pub sha256: Option<String>,
    pub cache_dir: PathBuf,
    /// Fetch even when the cache already holds this checkpoint.
    pub force: bool,
}

/// Download progress, drawn by the caller.
pub trait Progress {
    /// The transfer starts: `total` bytes if the server said, of which
    /// `resumed_from` are already on disk.
    fn start(&mut self, _total: Option<u64>, _resumed_from: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What a fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The cached safetensors file.
    pub path: PathBuf,
    pub provenance: Provenance,
    /// False when the cache already held this checkpoint and nothing was done.
    pub fresh: bool,
    /// Tensors written (0 when not fresh).
    pub tensors: usize,
    /// Bytes transferred now, and bytes a stopped download had left (resumed).
    pub downloaded: u64,
    pub resumed_from: u64,
}

/// The expected hash prefix and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHash {
    pub prefix: String,
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
    let (file, downloaded, resumed_from, partial) = match &req.source {
        Source::Url(url) => {
            let name = req.source.file_name().unwrap_or_else(|| format!("{}.pth", req.model));
            let part = partial_path(dir, &name);
            let d = download(url, &part, progress)?;
            (part.clone(), d.bytes, d.resumed_from, Some((part, d.sha256)))
        }
        Source::File(p) => (p.clone(), 0, 0, None),
    };
    let sha256 = match &partial {
        Some((_, h)) => h.clone(),
        None => sha256_file(&file)?,
    };
    let discard = || {
        if let Some((part, _)) = &partial {
            let _ = std::fs::remove_file(part);
        }
    };
    if !sha256.starts_with(&expected.prefix) {
        discard();
        return Err(WeightsError::HashMismatch {
            origin,
            actual: sha256,
            expected: expected.prefix,
            from: expected.from,
            consequence: if partial.is_some() {
                "the file is damaged or not the published one; it was removed and nothing was cached"
            } else {
                "the file is damaged or not the published one; nothing was cached"
            },
        });
    }
    let bytes = std::fs::read(&file).map_err(WeightsError::io("read", &file))?;
    let provenance = Provenance { arch: req.model.name().to_string(), source: origin.clone(), sha256 };
    let converted = convert_pth(&bytes, req.model, &provenance);
    drop(bytes);
    let (st, tensors) = converted.map_err(|msg| {
        discard();
        WeightsError::Checkpoint { origin, msg }
    })?;
    maskforge_imageio::write_atomic(&target, &st).map_err(WeightsError::io("write", &target))?;
    discard();
    Ok(Fetched { path: target, provenance, fresh: true, tensors, downloaded, resumed_from })
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(WeightsError::io("read", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(WeightsError::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Bytes transferred by this call.
    pub bytes: u64,
    /// Bytes that were already in the partial file and kept.
    pub resumed_from: u64,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("maskforge/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

#[cfg(unix)]
fn try_lock(f: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this File owns; released when it is closed.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// `bytes START-END/TOTAL` of a 206 answer: (START, TOTAL if known).
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Downloads `url` into `part`, resuming what a stopped download left
/// there; returns the whole file's SHA-256. The partial file is kept when
/// the transfer stops (to resume) and removed when the server answers with
/// an error before anything was written.
pub fn download(url: &str, part: &Path, progress: &mut dyn Progress) -> Result<Downloaded> {
    let fail = |msg: String| WeightsError::Download { url: url.to_string(), msg };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail("only http:// and https:// URLs are fetched (use --file for a local .pth)".into()));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(WeightsError::io("create", part))?;
    if !try_lock(&file).map_err(WeightsError::io("lock", part))? {
        return Err(fail(format!(
            "another maskforge is downloading it into {}; wait for it to finish",
            part.display()
        )));
    }
    // What a stopped download left: hashed again, then continued.
    let mut hasher = Sha256::new();
    let mut have = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(WeightsError::io("read", part))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        have += n as u64;
    }
    let remove_if_empty = |file: &File| {
        if file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
            let _ = std::fs::remove_file(part);
        }
    };
    let agent = agent();
    let mut resumed_from = have;
    let resp = {
        let mut req = agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        req.call().map_err(|e| {
            remove_if_empty(&file);
            fail(e.to_string())
        })?
    };
    let status = resp.status().as_u16();
    let total = match status {
        206 if have > 0 => {
            let range = header(&resp, "content-range").and_then(content_range);
            match range {
                Some((start, total)) if start == have => total,
                _ => {
                    return Err(fail(format!(
                        "the server answered the request for bytes {have}- with {:?}; remove {} and fetch again",
                        header(&resp, "content-range").unwrap_or("no Content-Range"),
                        part.display()
                    )))
                }
            }
        }
        // The part already holds the whole file.
        416 if have > 0 => {
            let sha256 = hex(&hasher.finalize());
            progress.start(Some(have), have);
            progress.finish();
            return Ok(Downloaded { sha256, bytes: 0, resumed_from: have });
        }
        200 => {
            if have > 0 {
                // The server sends the whole file: start again.
                file.set_len(0).map_err(WeightsError::io("truncate", part))?;
                hasher = Sha256::new();
                resumed_from = 0;
                have = 0;
            }
            header(&resp, "content-length").and_then(|v| v.trim().parse().ok())
        }
        _ => {
            remove_if_empty(&file);
            let reason = resp.status().canonical_reason().unwrap_or("");
            return Err(fail(format!("HTTP {status} {reason}").trim_end().to_string()));
        }
    };
    file.seek(SeekFrom::End(0)).map_err(WeightsError::io("seek", part))?;
    progress.start(total, resumed_from);
    let mut reader = resp.into_body().into_reader();
    let mut got = 0u64;
    let stopped = |got: u64, e: &dyn std::fmt::Display| {
        fail(format!(
            "the transfer stopped after {} byte(s){}: {e}; run the same command again to resume",
            resumed_from + got,
            total.map(|t| format!(" of {t}")).unwrap_or_default()
        ))
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_all();
                return Err(stopped(got, &e));
            }
        };
        file.write_all(&buf[..n]).map_err(WeightsError::io("write", part))?;
        hasher.update(&buf[..n]);
        got += n as u64;
        progress.advance(n as u64);
    }
    file.sync_all().map_err(WeightsError::io("write", part))?;
    if let Some(t) = total {
        if have + got != t {
            return Err(stopped(got, &format!("{} byte(s) expected", t)));
        }
    }
    progress.finish();
    Ok(Downloaded { sha256: hex(&hasher.finalize()), bytes: got, resumed_from })
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
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 100-199/*"), Some((100, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
