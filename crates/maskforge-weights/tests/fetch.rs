//! `fetch` against a local HTTP server, with a checkpoint built in Rust
//! (a MobileNetV2 state_dict of torchvision's names and shapes): conversion
//! and cache, the cache hit, hash mismatch, HTTP errors, resuming a stopped
//! transfer, a server that ignores ranges, the wrong model, a local file;
//! the size cap (a huge `Content-Length`, an endless body, a local file
//! over it), the free-space check, devices and FIFOs given as the file,
//! redirects (followed within HTTP, refused to `file://`), and a partial
//! download as large as or larger than the file, which starts over.
//! No Python; `tests/weights.rs` at the workspace root checks the logits
//! against torchvision's.

mod support {
    pub mod server;
    pub mod writer;
}

use maskforge_weights::fetch::{partial_path, sha256_file};
use maskforge_weights::{
    fetch, read_provenance, Arch, FetchRequest, Fetched, NoProgress, Source, WeightsError, DEFAULT_MAX_BYTES,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::server::{files, Server};
use support::writer::f32_checkpoint;

/// A MobileNetV2 checkpoint (zip) with values derived from each tensor's index.
fn mobilenet_checkpoint() -> Vec<u8> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Arch::MobilenetV2
        .expected_tensors()
        .into_iter()
        .enumerate()
        .map(|(i, (n, s))| {
            let numel: usize = s.iter().product();
            let v = (0..numel).map(|j| ((i * 31 + j) % 97) as f32 / 97.0 - 0.5).collect();
            (n, s, v)
        })
        .collect();
    f32_checkpoint(&tensors, false)
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, bytes).unwrap();
    sha256_file(&p).unwrap()
}

struct Fixture {
    server: Server,
    good: String,
    bytes: Vec<u8>,
    sha: String,
}

fn fixture() -> Fixture {
    let bytes = mobilenet_checkpoint();
    let sha = sha256(&bytes);
    let good = format!("/models/mobilenet_v2-{}.pth", &sha[..8]);
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let files = HashMap::from([
        (good.clone(), bytes.clone()),
        (format!("/bad/mobilenet_v2-{}.pth", &sha[..8]), corrupt),
        (format!("/wrong/resnet18-{}.pth", &sha[..8]), bytes.clone()),
        ("/nohash/mobilenet_v2.pth".to_string(), bytes.clone()),
    ]);
    Fixture { server: Server::start(files), good, bytes, sha }
}

fn request(url: String, model: Arch, cache: &Path) -> FetchRequest {
    FetchRequest {
        model,
        source: Source::Url(url),
        sha256: None,
        cache_dir: cache.to_path_buf(),
        force: false,
        max_bytes: DEFAULT_MAX_BYTES,
    }
}

/// `fetch(req)` on a thread; the test fails if it has not returned within
/// `secs` seconds (a hang is a failure, not a stuck test run).
fn fetch_within(secs: u64, req: FetchRequest) -> Result<Fetched, WeightsError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let what = req.source.describe();
    std::thread::spawn(move || {
        let _ = tx.send(fetch(&req, &mut NoProgress));
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("fetch of {what} still running after {secs} s"))
}

#[test]
fn fetch_converts_caches_and_hits_the_cache() {
    let fx = fixture();
    let cache = tempfile::tempdir().unwrap();
    let url = fx.server.url(&fx.good);
    let got = fetch(&request(url.clone(), Arch::MobilenetV2, cache.path()), &mut NoProgress).unwrap();
    assert!(got.fresh);
    assert_eq!(got.path, cache.path().join("mobilenet_v2-imagenet.safetensors"));
    assert_eq!(got.tensors, Arch::MobilenetV2.expected_tensors().len());
    assert_eq!((got.downloaded, got.resumed_from), (fx.bytes.len() as u64, 0));
    assert_eq!(files(cache.path()), std::slice::from_ref(&got.path), "only the converted file is left");
    let prov = read_provenance(&got.path).unwrap().unwrap();
    assert_eq!(
        (prov.arch.as_str(), prov.source.as_str(), prov.sha256.as_str()),
        ("mobilenet_v2", url.as_str(), fx.sha.as_str())
    );

    // The tensors, read back with the safetensors crate.
    let st_bytes = std::fs::read(&got.path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    assert_eq!(st.names().len(), Arch::MobilenetV2.expected_tensors().len());
    let w = st.tensor("classifier.1.weight").unwrap();
    assert_eq!(w.shape(), [1000, 1280]);
    let i = Arch::MobilenetV2.expected_tensors().iter().position(|(n, _)| n == "classifier.1.weight").unwrap();
    let first = f32::from_le_bytes(w.data()[4..8].try_into().unwrap());
    assert_eq!(first, ((i * 31 + 1) % 97) as f32 / 97.0 - 0.5);

    // Again: a cache hit, no request; --force fetches again.
    let n = fx.server.log().len();
    let again = fetch(&request(url.clone(), Arch::MobilenetV2, cache.path()), &mut NoProgress).unwrap();
    assert!(!again.fresh);
    assert_eq!(fx.server.log().len(), n);
    let mut forced = request(url, Arch::MobilenetV2, cache.path());
    forced.force = true;
    assert!(fetch(&forced, &mut NoProgress).unwrap().fresh);
    assert_eq!(fx.server.log().len(), n + 1);
}

#[test]
fn hash_mismatch_http_errors_and_wrong_models_cache_nothing() {
    let fx = fixture();
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();

    let url = fx.server.url(&format!("/bad/mobilenet_v2-{}.pth", &fx.sha[..8]));
    let e = fetch(&request(url.clone(), Arch::MobilenetV2, c), &mut NoProgress).unwrap_err();
    assert!(matches!(e, WeightsError::HashMismatch { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("SHA-256 of {url} is ")), "{msg}");
    assert!(msg.contains(&format!("expected one starting with {} (from its file name)", &fx.sha[..8])), "{msg}");
    assert!(msg.contains("removed and nothing was cached"), "{msg}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // The right hash given with --sha256 rejects the file too; a wrong one rejects a good file.
    let mut r = request(url, Arch::MobilenetV2, c);
    r.sha256 = Some(fx.sha.clone());
    assert!(fetch(&r, &mut NoProgress).unwrap_err().to_string().contains("(--sha256)"));
    let mut r = request(fx.server.url(&fx.good), Arch::MobilenetV2, c);
    r.sha256 = Some("00000000".into());
    assert!(fetch(&r, &mut NoProgress).unwrap_err().to_string().contains("expected one starting with 00000000"));
    assert_eq!(files(c), Vec::<PathBuf>::new());

    let url = fx.server.url("/missing/mobilenet_v2-0123abcd.pth");
    let e = fetch(&request(url.clone(), Arch::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert_eq!(e, format!("cannot download {url}: HTTP 404 Not Found"));
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/mobilenet_v2-0123abcd.pth");
    let e = fetch(&request(url.clone(), Arch::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot download {url}: ")), "{e}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // A MobileNetV2 file fetched as ResNet18: named as what it is not.
    let url = fx.server.url(&format!("/wrong/resnet18-{}.pth", &fx.sha[..8]));
    let e = fetch(&request(url.clone(), Arch::Resnet18, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{url}: not torchvision's resnet18 state_dict: ")), "{e}");
    assert!(e.ends_with("nothing was cached"), "{e}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // No hash in the name and no --sha256: refused before any request.
    let n = fx.server.log().len();
    let e = fetch(&request(fx.server.url("/nohash/mobilenet_v2.pth"), Arch::MobilenetV2, c), &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no -HASH part") && e.contains("--sha256 HEX"), "{e}");
    assert_eq!(fx.server.log().len(), n);
    // With --sha256 it is fetched.
    let mut r = request(fx.server.url("/nohash/mobilenet_v2.pth"), Arch::MobilenetV2, c);
    r.sha256 = Some(fx.sha.to_uppercase());
    assert!(fetch(&r, &mut NoProgress).unwrap().fresh);
}

#[test]
fn a_stopped_transfer_resumes_and_a_range_ignoring_server_restarts() {
    let fx = fixture();
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();
    let url = fx.server.url(&fx.good);
    let cut = 1 << 20;
    fx.server.state.lock().unwrap().cut_once.insert(fx.good.clone(), cut);
    let e = fetch(&request(url.clone(), Arch::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot download {url}: the transfer stopped after {cut} byte(s) of ")), "{e}");
    assert!(e.contains("run the same command again to resume"), "{e}");
    let part = partial_path(c, &format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64);

    let got = fetch(&request(url.clone(), Arch::MobilenetV2, c), &mut NoProgress).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (cut as u64, (fx.bytes.len() - cut) as u64));
    assert_eq!(fx.server.log().last().unwrap().1.as_deref(), Some(format!("bytes={cut}-").as_str()));
    assert_eq!(got.provenance.sha256, fx.sha);
    assert!(!part.exists());

    // A partial of garbage and a server that ignores ranges: the whole file
    // comes again and replaces it.
    let cache2 = tempfile::tempdir().unwrap();
    let part2 = partial_path(cache2.path(), &format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    std::fs::write(&part2, vec![7u8; 100]).unwrap();
    fx.server.state.lock().unwrap().ignore_range = true;
    let got = fetch(&request(url.clone(), Arch::MobilenetV2, cache2.path()), &mut NoProgress).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (0, fx.bytes.len() as u64));
    fx.server.state.lock().unwrap().ignore_range = false;

    // A partial of garbage with a server that honours ranges: the hash
    // catches it, the partial is removed, and the next fetch is clean.
    let cache3 = tempfile::tempdir().unwrap();
    let part3 = partial_path(cache3.path(), &format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    std::fs::write(&part3, vec![7u8; 100]).unwrap();
    let e = fetch(&request(url.clone(), Arch::MobilenetV2, cache3.path()), &mut NoProgress).unwrap_err();
    assert!(matches!(e, WeightsError::HashMismatch { .. }), "{e}");
    assert!(!part3.exists());
    assert!(fetch(&request(url.clone(), Arch::MobilenetV2, cache3.path()), &mut NoProgress).unwrap().fresh);

    // A complete partial: the server answers 416 and nothing is transferred.
    let cache4 = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(cache4.path(), &format!("mobilenet_v2-{}.pth", &fx.sha[..8])), &fx.bytes).unwrap();
    let got = fetch(&request(url, Arch::MobilenetV2, cache4.path()), &mut NoProgress).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (fx.bytes.len() as u64, 0));
}

#[test]
fn a_local_file_is_checked_and_converted() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join(format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    std::fs::write(&pth, &fx.bytes).unwrap();
    let cache = dir.path().join("cache");
    let req = |p: &Path| FetchRequest {
        model: Arch::MobilenetV2,
        source: Source::File(p.to_path_buf()),
        sha256: None,
        cache_dir: cache.clone(),
        force: false,
        max_bytes: DEFAULT_MAX_BYTES,
    };
    let got = fetch(&req(&pth), &mut NoProgress).unwrap();
    assert!(got.fresh && got.path.is_file());
    assert_eq!(got.provenance.source, pth.display().to_string());
    // A file whose name promises another hash is refused and left alone.
    let other = dir.path().join("mobilenet_v2-0000abcd.pth");
    std::fs::write(&other, &fx.bytes).unwrap();
    let e = fetch(&req(&other), &mut NoProgress).unwrap_err().to_string();
    assert!(e.contains("nothing was cached") && !e.contains("removed"), "{e}");
    assert!(other.exists());
}

#[test]
fn a_huge_content_length_is_refused_before_anything_is_written() {
    let fx = fixture();
    let path = format!("/huge/mobilenet_v2-{}.pth", &fx.sha[..8]);
    let huge = 1_000_000_000_000_000u64;
    {
        let mut s = fx.server.state.lock().unwrap();
        s.files.insert(path.clone(), fx.bytes[..1000].to_vec());
        s.announce_length.insert(path.clone(), huge);
    }
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();
    let url = fx.server.url(&path);
    let e = fetch_within(30, request(url.clone(), Arch::MobilenetV2, c)).unwrap_err();
    assert!(matches!(e, WeightsError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot download {url}: the server announces {huge} bytes, over the limit of {DEFAULT_MAX_BYTES} bytes \
             for a checkpoint (--max-bytes N raises it); nothing was written"
        )
    );
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // With the cap lifted, the cache folder's free space stops it.
    let mut r = request(url.clone(), Arch::MobilenetV2, c);
    r.max_bytes = u64::MAX;
    let e = fetch_within(30, r).unwrap_err();
    assert!(matches!(e, WeightsError::NoSpace { .. }), "{e}");
    let e = e.to_string();
    let head = format!("not enough free space in {} to download {url}: {huge} bytes needed, ", c.display());
    assert!(e.starts_with(&head) && e.ends_with(" available") && !e.contains('\n'), "{e}");
    assert_eq!(files(c), Vec::<PathBuf>::new());
}

#[test]
fn an_endless_body_stops_at_the_cap_and_leaves_nothing() {
    let fx = fixture();
    let path = format!("/endless/mobilenet_v2-{}.pth", &fx.sha[..8]);
    fx.server.state.lock().unwrap().endless.insert(path.clone());
    let cache = tempfile::tempdir().unwrap();
    let url = fx.server.url(&path);
    let mut r = request(url.clone(), Arch::MobilenetV2, cache.path());
    r.max_bytes = 1 << 20;
    let t = Instant::now();
    let e = fetch_within(60, r).unwrap_err();
    assert!(matches!(e, WeightsError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot download {url}: the body went past the limit of 1048576 bytes for a checkpoint \
             (--max-bytes N raises it); the partial download was removed"
        )
    );
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert_eq!(files(cache.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_local_file_must_be_a_regular_file_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let req = |p: &Path, max_bytes: u64| FetchRequest {
        model: Arch::MobilenetV2,
        source: Source::File(p.to_path_buf()),
        sha256: Some("00000000".into()),
        cache_dir: cache.clone(),
        force: false,
        max_bytes,
    };
    let e = fetch_within(30, req(Path::new("/dev/zero"), DEFAULT_MAX_BYTES)).unwrap_err().to_string();
    assert_eq!(e, "/dev/zero: not a regular file (a device): give a file");

    let fifo = dir.path().join("mobilenet_v2-0123abcd.pth");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = fetch_within(30, req(&fifo, DEFAULT_MAX_BYTES)).unwrap_err().to_string();
    assert_eq!(e, format!("{}: not a regular file (a FIFO): give a file", fifo.display()));

    let big = dir.path().join("big.pth");
    std::fs::File::create(&big).unwrap().set_len(2 << 20).unwrap();
    let e = fetch_within(30, req(&big, 1 << 20)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: file is 2097152 bytes, over the limit of 1048576 bytes for a checkpoint (--max-bytes N raises it)",
            big.display()
        )
    );
    assert_eq!(files(&cache), Vec::<PathBuf>::new());
}

#[test]
fn redirects_are_followed_within_http_and_refused_elsewhere() {
    let fx = fixture();
    let name = format!("mobilenet_v2-{}.pth", &fx.sha[..8]);
    {
        let mut s = fx.server.state.lock().unwrap();
        s.redirects.insert(format!("/file/{name}"), "file:///etc/passwd".into());
        s.redirects.insert(format!("/loop/{name}"), format!("/loop/{name}"));
        s.redirects.insert(format!("/moved/{name}"), fx.good.clone());
        s.redirects.insert(format!("/far/{name}"), fx.server.url(&format!("/moved/{name}")));
    }
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();

    let url = fx.server.url(&format!("/file/{name}"));
    let e = fetch_within(30, request(url.clone(), Arch::MobilenetV2, c)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("cannot download {url}: the server redirected to file:///etc/passwd, not an http:// or https:// URL; refused")
    );
    assert_eq!(files(c), Vec::<PathBuf>::new());

    let url = fx.server.url(&format!("/loop/{name}"));
    let e = fetch_within(30, request(url.clone(), Arch::MobilenetV2, c)).unwrap_err().to_string();
    let expected = format!("cannot download {url}: too many redirects (more than 10), the last to {url}");
    assert_eq!(e, expected);
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // An absolute redirect to a relative one to the file; a stopped
    // transfer resumes through both, the range asked of the file itself.
    let cut = 1 << 20;
    fx.server.state.lock().unwrap().cut_once.insert(fx.good.clone(), cut);
    let url = fx.server.url(&format!("/far/{name}"));
    let e = fetch_within(30, request(url.clone(), Arch::MobilenetV2, c)).unwrap_err().to_string();
    assert!(e.contains("run the same command again to resume"), "{e}");
    let got = fetch_within(30, request(url.clone(), Arch::MobilenetV2, c)).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (cut as u64, (fx.bytes.len() - cut) as u64));
    assert_eq!(got.provenance.source, url);
    let log = fx.server.log();
    let tail: Vec<_> = log[log.len() - 3..].iter().map(|(p, r)| (p.as_str(), r.as_deref())).collect();
    let range = format!("bytes={cut}-");
    let (far, moved) = (format!("/far/{name}"), format!("/moved/{name}"));
    let expected =
        [(far.as_str(), Some(range.as_str())), (moved.as_str(), Some(&range)), (fx.good.as_str(), Some(&range))];
    assert_eq!(tail, expected);
}

#[test]
fn a_partial_as_large_as_or_larger_than_the_file_starts_over() {
    let fx = fixture();
    let url = fx.server.url(&fx.good);
    let name = format!("mobilenet_v2-{}.pth", &fx.sha[..8]);
    let len = fx.bytes.len();

    // Larger: the server answers 416 with the file's length; the partial
    // is discarded and the whole file fetched, in the same run.
    let cache = tempfile::tempdir().unwrap();
    let part = partial_path(cache.path(), &name);
    let mut longer = fx.bytes.clone();
    longer.extend_from_slice(&[7u8; 100]);
    std::fs::write(&part, &longer).unwrap();
    let got = fetch_within(60, request(url.clone(), Arch::MobilenetV2, cache.path())).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (0, len as u64));
    assert_eq!(got.provenance.sha256, fx.sha);
    assert!(!part.exists());
    let log = fx.server.log();
    let asked: Vec<Option<&str>> = log[log.len() - 2..].iter().map(|(_, r)| r.as_deref()).collect();
    assert_eq!(asked, [Some(format!("bytes={}-", len + 100).as_str()), None]);

    // As large but wrong: taken as complete (416), fails the hash, and is
    // fetched again whole, once, in the same run.
    let cache = tempfile::tempdir().unwrap();
    let part = partial_path(cache.path(), &name);
    let mut wrong = fx.bytes.clone();
    wrong[len / 3] ^= 0x55;
    std::fs::write(&part, &wrong).unwrap();
    let got = fetch_within(60, request(url.clone(), Arch::MobilenetV2, cache.path())).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (0, len as u64));
    assert_eq!(got.provenance.sha256, fx.sha);
    assert!(!part.exists());
    assert_eq!(files(cache.path()), std::slice::from_ref(&got.path));
}
