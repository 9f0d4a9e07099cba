//! `maskforge weights fetch` end to end: the venv's torchvision saves
//! seeded models (random batch-norm statistics, so buffers matter) with
//! `torch.save` under torch.hub's `NAME-HASH8.pth` names (ResNet18 and
//! ResNet50 in the zip format, MobileNetV2 in the legacy format that
//! checkpoints published before PyTorch 1.6 may use), a local HTTP server serves them, the binary fetches
//! and converts them with no Python, and the converted files loaded in our
//! tch models must give torchvision's logits within 1e-4. A corrupted file
//! and a 404 fail with a message naming the URL and leave nothing in the
//! cache; `train --weights imagenet` uses the cached file, or says to fetch it.

#[path = "../crates/maskforge-weights/tests/support/server.rs"]
mod server;

use maskforge_train::checkpoint::{load_into, read_safetensors, LoadMode};
use maskforge_train::{Arch, Classifier};
use server::{files, Server};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{Device, Tensor};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MASKFORGE_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "{} missing: run the project set-up (cargo xtask setup) or set MASKFORGE_PYTHON",
        venv.display()
    );
    venv
}

/// The binary, with no proxy between it and 127.0.0.1 and no user cache.
fn maskforge(args: &[&str], weights_env: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_maskforge"));
    c.args(args);
    for k in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        c.env_remove(k);
    }
    match weights_env {
        Some(d) => c.env("MASKFORGE_WEIGHTS", d),
        None => c.env_remove("MASKFORGE_WEIGHTS"),
    };
    c.output().expect("maskforge runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(args: &[&str], weights_env: Option<&Path>) -> (String, String) {
    let out = maskforge(args, weights_env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "maskforge {args:?} failed\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Runs a command that must fail; returns its error: the last line of
/// stderr, the only one starting with `error:` (progress lines may precede it).
fn fails(args: &[&str], weights_env: Option<&Path>) -> String {
    let out = maskforge(args, weights_env);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "maskforge {args:?} should fail\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "the error comes last:\n{stderr}");
    errors[0].to_string()
}

const MAKE_MODELS: &str = r#"
import hashlib, json, os, sys, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
x = torch.rand(2, 3, 64, 64) * 4 - 2
x.numpy().tofile(f"{out}/input.f32")
names = {}
for name, legacy in [("resnet18", False), ("mobilenet_v2", True), ("resnet50", False)]:
    m = getattr(torchvision.models, name)(weights=None)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.num_batches_tracked.fill_(7)
    m.eval()
    with torch.no_grad():
        m(x).numpy().tofile(f"{out}/{name}.logits.f32")
    tmp = f"{out}/{name}.pth"
    torch.save(m.state_dict(), tmp, _use_new_zipfile_serialization=not legacy)
    sha = hashlib.sha256(open(tmp, "rb").read()).hexdigest()
    names[name] = f"{name}-{sha[:8]}.pth"
    os.rename(tmp, f"{out}/serve/{names[name]}")
    names[name + ".sha256"] = sha
json.dump(names, open(f"{out}/names.json", "w"))
"#;

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// A tiny two-class ImageFolder, split by the binary.
fn tiny_dataset(dir: &Path) -> PathBuf {
    let root = dir.join("photos");
    for (c, colour) in [("masked", [40u8, 90, 200]), ("unmasked", [210, 160, 120])] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        for i in 0..6u8 {
            let img = image::RgbImage::from_fn(40, 40, |x, y| {
                let v = ((x as u8).wrapping_mul(3) ^ (y as u8).wrapping_mul(5)).wrapping_add(i * 17) / 8;
                image::Rgb([colour[0].saturating_add(v), colour[1].saturating_add(v), colour[2].saturating_sub(v)])
            });
            img.save(root.join(c).join(format!("p{i}.png"))).unwrap();
        }
    }
    let manifests = dir.join("manifests");
    ok(&["split", root.to_str().unwrap(), "--out", manifests.to_str().unwrap()], None);
    manifests
}

#[test]
fn fetched_weights_match_torchvision_and_train_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("serve")).unwrap();
    let out = Command::new(python()).arg("-c").arg(MAKE_MODELS).arg(d).output().expect("python runs");
    assert!(out.status.success(), "torchvision export failed:\n{}", text(&out.stderr));
    let names: HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(d.join("names.json")).unwrap()).unwrap();

    let mut files_served = HashMap::new();
    for e in std::fs::read_dir(d.join("serve")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        files_served.insert(format!("/models/{name}"), std::fs::read(e.path()).unwrap());
    }
    // The ResNet18 file with one byte changed, under its true name.
    let mut corrupt = files_served[&format!("/models/{}", names["resnet18"])].clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x55;
    files_served.insert(format!("/corrupt/{}", names["resnet18"]), corrupt);
    let server = Server::start(files_served);

    let cache = d.join("cache");
    let c = cache.to_str().unwrap();
    let x = Tensor::from_slice(&read_f32(&d.join("input.f32"))).reshape([2, 3, 64, 64]);
    for arch in [Arch::Resnet18, Arch::MobilenetV2, Arch::Resnet50] {
        let url = server.url(&format!("/models/{}", names[arch.name()]));
        let (stdout, _) = ok(&["weights", "fetch", arch.name(), "--url", &url, "--cache", c], None);
        let path = cache.join(format!("{}-imagenet.safetensors", arch.name()));
        assert!(stdout.contains(&format!("cached {arch} ImageNet weights: {}", path.display())), "{stdout}");
        assert!(stdout.contains(&names[&format!("{}.sha256", arch.name())]), "{stdout}");

        let file = read_safetensors(&path).unwrap();
        assert_eq!(file.metadata["source"], url);
        let model = Classifier::new(arch, 1000, arch.default_dropout(), Device::Cpu);
        let summary = load_into(&model, &file, &path, LoadMode::Exact).unwrap();
        assert_eq!(summary.loaded, model.named_tensors().len());
        assert!(summary.skipped_buffers > 0, "num_batches_tracked is kept in the file");
        let logits = tch::no_grad(|| model.forward_t(&x, false));
        let expected = Tensor::from_slice(&read_f32(&d.join(format!("{}.logits.f32", arch.name())))).reshape([2, 1000]);
        let diff = (&logits - &expected).abs().max().double_value(&[]);
        eprintln!("{arch}: max |tch - torchvision| = {diff:.2e}");
        assert!(diff < 1e-4, "{arch}: max |tch - torchvision| = {diff}");
        assert!(expected.abs().max().double_value(&[]) > 1e-3, "{arch}: logits not trivially zero");
    }
    // Only the three converted files: no partial download left behind.
    let mut left: Vec<String> = files(&cache).iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    left.sort();
    assert_eq!(
        left,
        ["mobilenet_v2-imagenet.safetensors", "resnet18-imagenet.safetensors", "resnet50-imagenet.safetensors"]
    );

    // A second fetch finds the file in the cache and downloads nothing.
    let before = server.log().len();
    let url = server.url(&format!("/models/{}", names["resnet18"]));
    let (stdout, _) = ok(&["weights", "fetch", "resnet18", "--url", &url, "--cache", c], None);
    assert!(stdout.contains("resnet18 ImageNet weights already cached"), "{stdout}");
    assert_eq!(server.log().len(), before);
    let (stdout, _) = ok(&["weights", "list", "--cache", c], None);
    assert!(stdout.contains(&format!("weights cache: {c} (from --cache)")), "{stdout}");
    assert!(stdout.contains(&names["resnet50.sha256"]), "{stdout}");

    // A corrupted copy: a one-line error naming the URL, nothing cached.
    let empty = d.join("empty-cache");
    let url = server.url(&format!("/corrupt/{}", names["resnet18"]));
    let e = fails(&["weights", "fetch", "resnet18", "--url", &url, "--cache", empty.to_str().unwrap()], None);
    assert!(e.starts_with(&format!("error: SHA-256 of {url} is ")), "{e}");
    assert!(e.contains(&format!("expected one starting with {}", &names["resnet18.sha256"][..8])), "{e}");
    assert!(e.contains("nothing was cached"), "{e}");
    assert_eq!(files(&empty), Vec::<PathBuf>::new());

    // train --weights imagenet: the cached file for --arch, through $MASKFORGE_WEIGHTS.
    let manifests = tiny_dataset(d);
    let run = d.join("runs/r18");
    let (_, stderr) = ok(
        &[
            "train",
            "--manifests",
            manifests.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--arch",
            "resnet18",
            "--weights",
            "imagenet",
            "--norm",
            "imagenet",
            "--epochs",
            "1",
            "--img-size",
            "32",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--workers",
            "1",
        ],
        Some(&cache),
    );
    let loaded = format!("tensors from {}", cache.join("resnet18-imagenet.safetensors").display());
    assert!(stderr.contains(&loaded) && stderr.contains("num_batches_tracked buffers skipped"), "{stderr}");
    assert!(stderr.contains("head replaced for 2 output(s)"), "{stderr}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("resnet18-imagenet.safetensors"), "{config}");
}

#[test]
fn http_errors_and_missing_weights_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let server = Server::start(HashMap::new());

    let url = server.url("/models/resnet18-f37072fd.pth");
    let e = fails(&["weights", "fetch", "resnet18", "--url", &url, "--cache", c], None);
    assert_eq!(e, format!("error: cannot download {url}: HTTP 404 Not Found"));
    assert_eq!(files(&cache), Vec::<PathBuf>::new());

    let url = server.url("/models/resnet18.pth");
    let e = fails(&["weights", "fetch", "resnet18", "--url", &url, "--cache", c], None);
    assert!(e.contains("no -HASH part") && e.contains("give --sha256 HEX"), "{e}");
    assert!(server.log().len() == 1, "nothing requested without an expected hash");

    let out = maskforge(&["weights", "fetch", "vgg16", "--cache", c], None);
    let e = text(&out.stderr);
    assert!(!out.status.success() && e.contains("unknown backbone \"vgg16\": expected resnet50"), "{e}");

    // No cached weights: train says what to run before reading anything.
    let e = fails(
        &[
            "train",
            "--manifests",
            "nowhere",
            "--out",
            dir.path().join("run").to_str().unwrap(),
            "--arch",
            "mobilenet_v2",
            "--weights",
            "imagenet",
        ],
        Some(&cache),
    );
    assert!(
        e.contains(&format!(
            "no ImageNet weights for mobilenet_v2 in {c}: run `maskforge weights fetch mobilenet_v2` first"
        )),
        "{e}"
    );
    let (stdout, _) = ok(&["weights", "list"], Some(&cache));
    assert!(stdout.contains(&format!("weights cache: {c} (from $MASKFORGE_WEIGHTS)")), "{stdout}");
    assert!(
        stdout.contains(
            "missing: maskforge weights fetch resnet50   (https://download.pytorch.org/models/resnet50-0676ba61.pth)"
        ),
        "{stdout}"
    );
}
