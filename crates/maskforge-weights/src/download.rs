//! HTTP(S) download of one file into a locked, resumable partial file,
//! bounded in every way a server can misbehave:
//!
//! * The partial file is locked (`File::try_lock`), so two fetches never write one
//!   file. A transfer that stops leaves it, and the next download asks for
//!   the rest (`Range: bytes=N-`); a server that ignores the range sends the
//!   whole file again, which replaces it.
//! * A partial file the server says is not the start of its file (`416`
//!   with another length, as when the partial is longer than the file, or a
//!   `Content-Range` that does not continue it) is discarded and the file
//!   fetched whole, once, in the same run.
//! * Size: a `Content-Length` (or `Content-Range` total) over the cap
//!   (`max_bytes`, by default [`DEFAULT_MAX_BYTES`](crate::DEFAULT_MAX_BYTES))
//!   is refused before anything is written, and a body that goes past it is
//!   cut off and the partial file removed. The folder's free space
//!   (`statvfs`) must hold the bytes still to come, when the server says how
//!   many.
//! * Redirects are followed here, at most [`MAX_REDIRECTS`], each checked:
//!   one to anything but `http://` or `https://` is refused, naming it.

use crate::error::{Result, WeightsError};
use maskforge_imageio::hex;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// Redirects followed for one request before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// Download progress, drawn by the caller.
pub trait Progress {
    /// The transfer starts: `total` bytes if the server said, of which
    /// `resumed_from` are already on disk.
    fn start(&mut self, _total: Option<u64>, _resumed_from: u64) {}
    /// `bytes` more were written (a delta, not a running total).
    fn advance(&mut self, _bytes: u64) {}
    /// The transfer ended, complete or not.
    fn finish(&mut self) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

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

/// Parses a byte count (`--max-bytes`): digits, optionally followed by
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB` or `T`/`TiB` (powers of 1024, case
/// ignored, a space allowed before); above zero. `MB` and the like are
/// refused rather than guessed (1000² or 1024²?). The error is the reason
/// alone, for clap to put after the value.
pub fn parse_max_bytes(s: &str) -> std::result::Result<u64, String> {
    let bad = || "expected a byte count such as 268435456, 512MiB or 2GiB".to_string();
    let t = s.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err("the limit must be above 0 bytes".to_string()),
        Some(v) => Ok(v),
        None => Err(format!("more than {} bytes", u64::MAX)),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Followed by `get`, which checks where each one leads.
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("maskforge/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Takes the exclusive lock of `f` (`flock` on Unix) without waiting: false
/// when another process holds it. Released when the file is closed.
fn try_lock(f: &File) -> std::io::Result<bool> {
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Bytes free to an unprivileged user in the file system holding `dir`.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // the field types differ between platforms
fn free_space(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs only writes the struct it is given; a zeroed one is valid.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a pointer to that struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// `bytes START-END/TOTAL` of a 206 answer: (START, TOTAL if known).
pub(crate) fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// `bytes */LENGTH` of a 416 answer: the file's length.
fn unsatisfied_range(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

type Response = ureq::http::Response<ureq::Body>;

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A URL's scheme (`https` of `https://h/p`), if it has one.
fn scheme(url: &str) -> Option<&str> {
    let (s, _) = url.split_once(':')?;
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    ok.then_some(s)
}

fn is_http(url: &str) -> bool {
    scheme(url).is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        && url.contains("://")
}

/// A redirect's `Location` made absolute against the URL that sent it.
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    let loc = location.trim();
    if scheme(loc).is_some() {
        return loc.to_string();
    }
    let (base_scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(net) = loc.strip_prefix("//") {
        return format!("{base_scheme}://{net}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &base[..base.len() - rest.len() + authority_end];
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    if loc.starts_with(['?', '#']) {
        return format!("{origin}{path}{loc}");
    }
    format!("{origin}{dir}{loc}")
}

/// GET `url`, from byte `from` on when it is above 0, following redirects
/// within HTTP(S); the error is the reason, for [`WeightsError::Download`].
fn get(agent: &ureq::Agent, url: &str, from: u64) -> std::result::Result<Response, String> {
    let mut at = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&at);
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let resp = req.call().map_err(|e| e.to_string())?;
        let Some(location) = header(&resp, "location").filter(|_| resp.status().is_redirection()) else {
            return Ok(resp);
        };
        let next = resolve_location(&at, location);
        if !is_http(&next) {
            return Err(format!("the server redirected to {next}, not an http:// or https:// URL; refused"));
        }
        at = next;
    }
    Err(format!("too many redirects (more than {MAX_REDIRECTS}), the last to {at}"))
}

/// The locked partial file and the hash of what it holds.
struct Partial<'a> {
    file: File,
    path: &'a Path,
    hasher: Sha256,
    have: u64,
}

impl<'a> Partial<'a> {
    /// Opens (or creates) and locks `path`, and hashes what a stopped
    /// download left there.
    fn open(url: &str, path: &'a Path) -> Result<Partial<'a>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(WeightsError::io("create", path))?;
        if !try_lock(&file).map_err(WeightsError::io("lock", path))? {
            let msg = format!("another maskforge is downloading it into {}; wait for it to finish", path.display());
            return Err(WeightsError::Download { url: url.to_string(), msg });
        }
        let mut p = Partial { file, path, hasher: Sha256::new(), have: 0 };
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = p.file.read(&mut buf).map_err(WeightsError::io("read", path))?;
            if n == 0 {
                break;
            }
            p.hasher.update(&buf[..n]);
            p.have += n as u64;
        }
        Ok(p)
    }

    /// Empties the file, to download the whole file again.
    fn discard(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(WeightsError::io("truncate", self.path))?;
        self.file.seek(SeekFrom::Start(0)).map_err(WeightsError::io("seek", self.path))?;
        self.hasher = Sha256::new();
        self.have = 0;
        Ok(())
    }

    /// Removes the file if it holds nothing (this download created it).
    fn remove_if_empty(&self) {
        if self.file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
            let _ = std::fs::remove_file(self.path);
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(WeightsError::io("write", self.path))?;
        self.hasher.update(bytes);
        self.have += bytes.len() as u64;
        Ok(())
    }
}

/// What to do with an answer to the request from byte `have` on.
enum Plan {
    /// Write the body after what the partial file holds (after emptying it
    /// when `whole`); `total` bytes in all, if the server said.
    Body { whole: bool, total: Option<u64>, announced: Option<u64> },
    /// The partial file already holds the whole file (as far as the server
    /// can tell: the hash decides).
    Complete,
    /// The partial file is not the start of the server's file.
    StartOver,
}

/// Reads the status and the length headers of an answer.
fn plan(resp: &Response, have: u64) -> std::result::Result<Plan, String> {
    let length = header(resp, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    match resp.status().as_u16() {
        206 if have > 0 => match header(resp, "content-range").and_then(content_range) {
            Some((start, total)) if start == have && total.is_none_or(|t| t > have) => {
                Ok(Plan::Body { whole: false, total, announced: total.or(length.map(|l| have + l)) })
            }
            _ => Ok(Plan::StartOver),
        },
        416 if have > 0 => match header(resp, "content-range").and_then(unsatisfied_range) {
            Some(len) if len != have => Ok(Plan::StartOver),
            _ => Ok(Plan::Complete),
        },
        200 => Ok(Plan::Body { whole: true, total: length, announced: length }),
        status => {
            let reason = resp.status().canonical_reason().unwrap_or("");
            Err(format!("HTTP {status} {reason}").trim_end().to_string())
        }
    }
}

/// Downloads `url` into `part`, resuming what a stopped download left
/// there; returns the whole file's SHA-256. At most `max_bytes` are
/// accepted. The partial file is kept when the transfer stops (to resume)
/// and removed when the server answers with an error before anything was
/// written, or when the body goes past `max_bytes`.
pub fn download(url: &str, part: &Path, max_bytes: u64, progress: &mut dyn Progress) -> Result<Downloaded> {
    download_with(url, part, max_bytes, false, progress)
}

/// [`download`], first emptying the partial file when `start_over`.
pub(crate) fn download_with(
    url: &str,
    part: &Path,
    max_bytes: u64,
    start_over: bool,
    progress: &mut dyn Progress,
) -> Result<Downloaded> {
    let fail = |msg: String| WeightsError::Download { url: url.to_string(), msg };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail("only http:// and https:// URLs are fetched (use --file for a local .pth)".into()));
    }
    let mut partial = Partial::open(url, part)?;
    if start_over || partial.have > max_bytes {
        partial.discard()?;
    }
    let agent = agent();
    // At most twice: once more, from the start, when the partial file
    // turns out not to be the start of the server's file.
    for _ in 0..2 {
        let have = partial.have;
        let answer = get(&agent, url, have).and_then(|resp| Ok((plan(&resp, have)?, resp)));
        let (plan, resp) = answer.map_err(|msg| {
            partial.remove_if_empty();
            fail(msg)
        })?;
        match plan {
            Plan::Body { whole, total, announced } => {
                return receive(url, &mut partial, resp, Expected { whole, total, announced, max_bytes }, progress)
            }
            Plan::Complete => {
                progress.start(Some(have), have);
                progress.finish();
                let sha256 = hex(&partial.hasher.finalize_reset());
                return Ok(Downloaded { sha256, bytes: 0, resumed_from: have });
            }
            Plan::StartOver => partial.discard()?,
        }
    }
    Err(fail(format!("the server does not continue {}: remove it and fetch again", part.display())))
}

/// What the server announced of a body.
struct Expected {
    /// The body is the whole file (not the rest of the partial one).
    whole: bool,
    /// The file's length, for the progress and the completeness check.
    total: Option<u64>,
    /// The length the server announces (for the cap and the free space).
    announced: Option<u64>,
    max_bytes: u64,
}

/// Checks the announced size against the cap and the free space, then
/// writes the body to the partial file.
fn receive(
    url: &str,
    partial: &mut Partial<'_>,
    resp: Response,
    e: Expected,
    progress: &mut dyn Progress,
) -> Result<Downloaded> {
    if let Some(n) = e.announced.filter(|&n| n > e.max_bytes) {
        partial.remove_if_empty();
        let what = format!("the server announces {n} bytes, over");
        return Err(WeightsError::TooLarge {
            url: url.into(),
            what,
            max: e.max_bytes,
            consequence: "nothing was written",
        });
    }
    if e.whole && partial.have > 0 {
        partial.discard()?;
    }
    if let Some(needed) = e.announced.map(|n| n.saturating_sub(partial.have)) {
        let dir = partial.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let available = free_space(dir).map_err(WeightsError::io("check the free space of", dir))?;
        if available < needed {
            partial.remove_if_empty();
            return Err(WeightsError::NoSpace { dir: dir.to_path_buf(), url: url.into(), needed, available });
        }
    }
    partial.file.seek(SeekFrom::End(0)).map_err(WeightsError::io("seek", partial.path))?;
    let resumed_from = partial.have;
    progress.start(e.total, resumed_from);
    let stopped = |at: u64, why: &dyn std::fmt::Display| WeightsError::Download {
        url: url.into(),
        msg: format!(
            "the transfer stopped after {at} byte(s){}: {why}; run the same command again to resume",
            e.total.map(|t| format!(" of {t}")).unwrap_or_default()
        ),
    };
    // One byte past the cap is enough to know the body goes on.
    let mut reader = resp.into_body().into_reader().take(e.max_bytes.saturating_sub(resumed_from).saturating_add(1));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                let _ = partial.file.sync_all();
                return Err(stopped(partial.have, &err));
            }
        };
        if partial.have + n as u64 > e.max_bytes {
            let _ = std::fs::remove_file(partial.path);
            let (what, consequence) = ("the body went past".to_string(), "the partial download was removed");
            return Err(WeightsError::TooLarge { url: url.into(), what, max: e.max_bytes, consequence });
        }
        partial.append(&buf[..n])?;
        progress.advance(n as u64);
    }
    partial.file.sync_all().map_err(WeightsError::io("write", partial.path))?;
    if let Some(t) = e.total.filter(|&t| t != partial.have) {
        return Err(stopped(partial.have, &format!("{t} byte(s) expected")));
    }
    progress.finish();
    let sha256 = hex(&partial.hasher.finalize_reset());
    Ok(Downloaded { sha256, bytes: partial.have - resumed_from, resumed_from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_locations() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 100-199/*"), Some((100, None)));
        assert_eq!(content_range("items 1-2/3"), None);
        assert_eq!(unsatisfied_range("bytes */200"), Some(200));
        assert_eq!(unsatisfied_range("bytes 0-1/200"), None);
        let base = "https://h.org:8080/a/b/c.pth?x=1";
        assert_eq!(resolve_location(base, "/d/e.pth"), "https://h.org:8080/d/e.pth");
        assert_eq!(resolve_location(base, "e.pth"), "https://h.org:8080/a/b/e.pth");
        assert_eq!(resolve_location(base, "?y=2"), "https://h.org:8080/a/b/c.pth?y=2");
        assert_eq!(resolve_location(base, "//m.org/f.pth"), "https://m.org/f.pth");
        assert_eq!(resolve_location(base, "http://m.org/f.pth"), "http://m.org/f.pth");
        assert_eq!(resolve_location(base, " file:///etc/passwd "), "file:///etc/passwd");
        assert_eq!(resolve_location("http://h", "f.pth"), "http://h/f.pth");
        assert_eq!(resolve_location("http://h?q", "/f.pth"), "http://h/f.pth");
        assert!(is_http("HTTPS://h/x") && is_http("http://h"));
        assert!(!is_http("file:///etc/passwd") && !is_http("ftp://h/x") && !is_http("mailto:a@b") && !is_http("/x:y"));
    }

    #[test]
    fn byte_counts_parse() {
        assert_eq!(parse_max_bytes("268435456"), Ok(268_435_456));
        assert_eq!(parse_max_bytes("256MiB"), Ok(crate::DEFAULT_MAX_BYTES));
        assert_eq!(parse_max_bytes(" 512m "), Ok(512 << 20));
        assert_eq!(parse_max_bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_max_bytes("64k"), Ok(64 << 10));
        assert_eq!(parse_max_bytes("1TiB"), Ok(1 << 40));
        for bad in ["", "MiB", "-1", "1.5G", "12MB", "1e9", "0x10", "10 bytes"] {
            let e = parse_max_bytes(bad).unwrap_err();
            assert!(e.contains("expected a byte count such as 268435456, 512MiB or 2GiB"), "{bad}: {e}");
        }
        assert!(parse_max_bytes("0").unwrap_err().contains("above 0"));
        assert!(parse_max_bytes("0GiB").unwrap_err().contains("above 0"));
        assert!(parse_max_bytes("99999999999TiB").unwrap_err().contains("more than 18446744073709551615 bytes"));
        assert!(parse_max_bytes("99999999999999999999").unwrap_err().contains("expected a byte count"));
    }

    #[cfg(unix)]
    #[test]
    fn free_space_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(dir.path()).unwrap() > 0);
        assert!(free_space(&dir.path().join("missing")).is_err());
    }
}
