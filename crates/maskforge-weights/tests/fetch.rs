//! `fetch` against a local HTTP server, with a checkpoint built in Rust
//! (a MobileNetV2 state_dict of torchvision's names and shapes): conversion
//! and cache, the cache hit, hash mismatch, HTTP errors, resuming a stopped
//! transfer, a server that ignores ranges, the wrong model, a local file.
//! No Python; `tests/weights.rs` at the workspace root checks the logits
//! against torchvision's.

mod support {
    pub mod server;
    pub mod writer;
}

use maskforge_weights::fetch::{partial_path, sha256_file};
use maskforge_weights::{fetch, read_provenance, FetchRequest, Model, NoProgress, Source, WeightsError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::server::{files, Server};
use support::writer::f32_checkpoint;

/// A MobileNetV2 checkpoint (zip) with values derived from each tensor's index.
fn mobilenet_checkpoint() -> Vec<u8> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Model::MobilenetV2
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

fn request(url: String, model: Model, cache: &Path) -> FetchRequest {
    FetchRequest { model, source: Source::Url(url), sha256: None, cache_dir: cache.to_path_buf(), force: false }
}

#[test]
fn fetch_converts_caches_and_hits_the_cache() {
    let fx = fixture();
    let cache = tempfile::tempdir().unwrap();
    let url = fx.server.url(&fx.good);
    let got = fetch(&request(url.clone(), Model::MobilenetV2, cache.path()), &mut NoProgress).unwrap();
    assert!(got.fresh);
    assert_eq!(got.path, cache.path().join("mobilenet_v2-imagenet.safetensors"));
    assert_eq!(got.tensors, Model::MobilenetV2.expected_tensors().len());
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
    assert_eq!(st.names().len(), Model::MobilenetV2.expected_tensors().len());
    let w = st.tensor("classifier.1.weight").unwrap();
    assert_eq!(w.shape(), [1000, 1280]);
    let i = Model::MobilenetV2.expected_tensors().iter().position(|(n, _)| n == "classifier.1.weight").unwrap();
    let first = f32::from_le_bytes(w.data()[4..8].try_into().unwrap());
    assert_eq!(first, ((i * 31 + 1) % 97) as f32 / 97.0 - 0.5);

    // Again: a cache hit, no request; --force fetches again.
    let n = fx.server.log().len();
    let again = fetch(&request(url.clone(), Model::MobilenetV2, cache.path()), &mut NoProgress).unwrap();
    assert!(!again.fresh);
    assert_eq!(fx.server.log().len(), n);
    let mut forced = request(url, Model::MobilenetV2, cache.path());
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
    let e = fetch(&request(url.clone(), Model::MobilenetV2, c), &mut NoProgress).unwrap_err();
    assert!(matches!(e, WeightsError::HashMismatch { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("SHA-256 of {url} is ")), "{msg}");
    assert!(msg.contains(&format!("expected one starting with {} (from its file name)", &fx.sha[..8])), "{msg}");
    assert!(msg.contains("removed and nothing was cached"), "{msg}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // The right hash given with --sha256 rejects the file too; a wrong one rejects a good file.
    let mut r = request(url, Model::MobilenetV2, c);
    r.sha256 = Some(fx.sha.clone());
    assert!(fetch(&r, &mut NoProgress).unwrap_err().to_string().contains("(--sha256)"));
    let mut r = request(fx.server.url(&fx.good), Model::MobilenetV2, c);
    r.sha256 = Some("00000000".into());
    assert!(fetch(&r, &mut NoProgress).unwrap_err().to_string().contains("expected one starting with 00000000"));
    assert_eq!(files(c), Vec::<PathBuf>::new());

    let url = fx.server.url("/missing/mobilenet_v2-0123abcd.pth");
    let e = fetch(&request(url.clone(), Model::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert_eq!(e, format!("cannot download {url}: HTTP 404 Not Found"));
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/mobilenet_v2-0123abcd.pth");
    let e = fetch(&request(url.clone(), Model::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot download {url}: ")), "{e}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // A MobileNetV2 file fetched as ResNet18: named as what it is not.
    let url = fx.server.url(&format!("/wrong/resnet18-{}.pth", &fx.sha[..8]));
    let e = fetch(&request(url.clone(), Model::Resnet18, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{url}: not torchvision's resnet18 state_dict: ")), "{e}");
    assert!(e.ends_with("nothing was cached"), "{e}");
    assert_eq!(files(c), Vec::<PathBuf>::new());

    // No hash in the name and no --sha256: refused before any request.
    let n = fx.server.log().len();
    let e = fetch(&request(fx.server.url("/nohash/mobilenet_v2.pth"), Model::MobilenetV2, c), &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no -HASH part") && e.contains("--sha256 HEX"), "{e}");
    assert_eq!(fx.server.log().len(), n);
    // With --sha256 it is fetched.
    let mut r = request(fx.server.url("/nohash/mobilenet_v2.pth"), Model::MobilenetV2, c);
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
    let e = fetch(&request(url.clone(), Model::MobilenetV2, c), &mut NoProgress).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot download {url}: the transfer stopped after {cut} byte(s) of ")), "{e}");
    assert!(e.contains("run the same command again to resume"), "{e}");
    let part = partial_path(c, &format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64);

    let got = fetch(&request(url.clone(), Model::MobilenetV2, c), &mut NoProgress).unwrap();
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
    let got = fetch(&request(url.clone(), Model::MobilenetV2, cache2.path()), &mut NoProgress).unwrap();
    assert_eq!((got.resumed_from, got.downloaded), (0, fx.bytes.len() as u64));
    fx.server.state.lock().unwrap().ignore_range = false;

    // A partial of garbage with a server that honours ranges: the hash
    // catches it, the partial is removed, and the next fetch is clean.
    let cache3 = tempfile::tempdir().unwrap();
    let part3 = partial_path(cache3.path(), &format!("mobilenet_v2-{}.pth", &fx.sha[..8]));
    std::fs::write(&part3, vec![7u8; 100]).unwrap();
    let e = fetch(&request(url.clone(), Model::MobilenetV2, cache3.path()), &mut NoProgress).unwrap_err();
    assert!(matches!(e, WeightsError::HashMismatch { .. }), "{e}");
    assert!(!part3.exists());
    assert!(fetch(&request(url.clone(), Model::MobilenetV2, cache3.path()), &mut NoProgress).unwrap().fresh);

    // A complete partial: the server answers 416 and nothing is transferred.
    let cache4 = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(cache4.path(), &format!("mobilenet_v2-{}.pth", &fx.sha[..8])), &fx.bytes).unwrap();
    let got = fetch(&request(url, Model::MobilenetV2, cache4.path()), &mut NoProgress).unwrap();
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
        model: Model::MobilenetV2,
        source: Source::File(p.to_path_buf()),
        sha256: None,
        cache_dir: cache.clone(),
        force: false,
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
