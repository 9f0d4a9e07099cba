//! End-to-end: no subcommand writes inside what it reads, file names round
//! trip or are refused, numbers are checked, every photo is accounted for,
//! errors name their file, and `mask` redoes a replaced input. Each test here
//! reproduces a failure of an earlier version with the real binary and the
//! real sample photos.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;
use common::{files_under as tree, maskforge, refused, samples, stderr, succeeded as ok};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    maskforge().args(args).output().unwrap()
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

fn copy_sample(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(samples().join(name), to).unwrap();
}

/// A resnet18 trained for one epoch on `split`'s output of `mask` crops of
/// the sample photos: the whole chain, once per test process.
fn model() -> PathBuf {
    chain().join("run/best.safetensors")
}

/// The folder of that chain: photos/, masked/, manifests/, run/.
fn chain() -> &'static Path {
    static CHAIN: OnceLock<PathBuf> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let (photos, masked, manifests, run_dir) =
            (dir.join("photos"), dir.join("masked"), dir.join("manifests"), dir.join("run"));
        for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg"] {
            copy_sample(name, &photos.join(name));
        }
        let v = args![
            "mask",
            photos,
            "--out",
            masked,
            "--crop-size",
            "48",
            "--unmasked",
            "copy",
            "--variants",
            "correct,chin"
        ];
        ok(run(v));
        ok(run(args!["split", masked, "--out", manifests, "--group-by", "source", "--val", "0.4"]));
        ok(run(args![
            "train",
            "--manifests",
            manifests,
            "--out",
            run_dir,
            "--arch",
            "resnet18",
            "--epochs",
            "1",
            "--img-size",
            "32",
            "--batch-size",
            "4",
            "--workers",
            "1"
        ]));
        dir
    })
}

#[test]
fn predict_never_writes_into_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("annotated/obama.jpg"));
    copy_sample("biden.jpg", &input.join("biden.jpg"));
    std::fs::write(input.join("predictions.csv"), "the user's own file\n").unwrap();
    let before = tree(&input);
    let model = &model();
    for out in [input.clone(), input.join("out"), input.join("annotated")] {
        let o = run(args!["predict", input, "--model", model, "--out", out]);
        refused(&o, "inside the input");
    }
    // The input inside the output is refused too (it would read its own outputs).
    let o = run(args!["predict", input, "--model", model, "--out", dir.path()]);
    refused(&o, "lies inside the output folder");
    assert_eq!(tree(&input), before, "predict changed its input");
}

#[test]
fn predict_accounts_for_every_photo() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("obama.jpg"));
    copy_sample("biden.jpg", &input.join("biden.jpg"));
    // No face: a plain grey photo. Unreadable: a truncated file.
    image::RgbImage::from_pixel(200, 150, image::Rgb([128, 128, 128])).save(input.join("wall.png")).unwrap();
    std::fs::write(input.join("broken.jpg"), b"\xff\xd8\xff\xe0 not a jpeg").unwrap();
    let out = dir.path().join("out");
    let o = ok(run(args!["predict", input, "--model", model(), "--out", out]));
    let paths = |file: &str| -> Vec<String> {
        let mut r = csv::Reader::from_path(out.join(file)).unwrap();
        r.records().map(|x| x.unwrap()[0].to_string()).collect()
    };
    let predicted = paths("predictions.csv");
    let failed = paths("failures.csv");
    assert!(
        predicted.contains(&"obama.jpg".to_string()) && predicted.contains(&"biden.jpg".to_string()),
        "{predicted:?}"
    );
    assert_eq!(failed, ["broken.jpg", "wall.png"], "{}", String::from_utf8_lossy(&o.stdout));
    let reasons = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert!(reasons.contains("wall.png,no face detected"), "{reasons}");
}

#[test]
fn predict_and_mask_refuse_unbounded_or_nonsense_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("obama.jpg"));
    let out = dir.path().join("out");
    let o = run(args!["predict", input, "--model", "missing.safetensors", "--out", out, "--crop-size", "100000"]);
    assert!(!o.status.success() && stderr(&o).contains("--crop-size"), "{}", stderr(&o));
    for bad in [
        "--lighting=nan",
        "--lighting=-1",
        "--shadow=2",
        "--relief=-1",
        "--photo-match=nan",
        "--crop-margin=-1",
        "--texture-weight=2",
        "--crop-size=100000",
    ] {
        let o = run(args!["mask", input, "--out", out, bad]);
        refused(&o, bad.split('=').next().unwrap());
    }
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

#[test]
fn detect_overlay_never_replaces_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    copy_sample("obama.jpg", &d.join("overlays/obama.jpg"));
    copy_sample("biden.jpg", &d.join("biden.jpg"));
    let before = tree(&d);
    let o = run(args!["detect", d, "-o", d, "--overlay"]);
    refused(&o, "inside the input");
    let o = run(args!["detect", d, "-o", d.join("det"), "--overlay"]);
    refused(&o, "inside the input");
    assert_eq!(tree(&d), before);
    ok(run(args!["detect", d, "-o", dir.path().join("det"), "--overlay"]));
    assert_eq!(tree(&d), before);
}

#[cfg(unix)]
#[test]
fn non_utf8_names_are_refused_never_merged() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join(std::ffi::OsStr::from_bytes(b"\xffa.jpg")));
    copy_sample("biden.jpg", &input.join(std::ffi::OsStr::from_bytes(b"\xfea.jpg")));
    copy_sample("obama2.jpg", &input.join("plain.jpg"));
    let out = dir.path().join("out");
    ok(run(args!["mask", input, "--out", out, "--variants", "correct"]));
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert!(failures.contains("\\xFFa.jpg,file name is not valid UTF-8"), "{failures}");
    assert!(failures.contains("\\xFEa.jpg,file name is not valid UTF-8"), "{failures}");
    // Every output named in annotations.csv exists, and only plain.jpg was masked.
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).unwrap();
    let outputs: Vec<String> = r.records().map(|x| x.unwrap()[1].to_string()).collect();
    assert_eq!(outputs, ["correct/plain.jpg"]);
    assert!(outputs.iter().all(|o| out.join(o).is_file()));
}

#[test]
fn mask_redoes_an_input_replaced_by_another_photo() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("a.jpg"));
    copy_sample("biden.jpg", &input.join("b.jpg"));
    let out = dir.path().join("out");
    let v = ["--variants", "correct", "--jobs", "1"];
    ok(run(args!["mask", input, "--out", out, v[0], v[1], v[2], v[3]]));
    let first = std::fs::read(out.join("correct/a.jpg")).unwrap();

    // Same name, another photo (a different size too, so the stamp must change).
    copy_sample("obama2.jpg", &input.join("a.jpg"));
    let o = ok(run(args!["mask", input, "--out", out, v[0], v[1], v[2], v[3]]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(1 processed now, 1 already done)"), "{stdout}");
    let redone = std::fs::read(out.join("correct/a.jpg")).unwrap();
    assert_ne!(redone, first, "the replaced input kept its old output");

    // Exactly what a fresh run on the new input makes.
    let fresh = dir.path().join("fresh");
    ok(run(args!["mask", input, "--out", fresh, v[0], v[1], v[2], v[3]]));
    assert_eq!(redone, std::fs::read(fresh.join("correct/a.jpg")).unwrap());
    assert_eq!(
        std::fs::read(out.join("annotations.csv")).unwrap(),
        std::fs::read(fresh.join("annotations.csv")).unwrap()
    );

    // Replaced by a photo without a face: the stale masked output must go.
    image::RgbImage::from_pixel(300, 300, image::Rgb([90, 90, 90]))
        .save_with_format(input.join("a.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    ok(run(args!["mask", input, "--out", out, v[0], v[1], v[2], v[3]]));
    assert!(!out.join("correct/a.jpg").exists(), "a stale output of a replaced input is still filed as masked");
}

#[test]
fn write_errors_name_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("a.jpg"));
    let out = dir.path().join("out");
    ok(run(args!["mask", input, "--out", out, "--variants", "correct"]));
    // annotations.csv cannot be replaced (a folder is in the way).
    std::fs::remove_file(out.join("annotations.csv")).unwrap();
    std::fs::create_dir_all(out.join("annotations.csv/x")).unwrap();
    let o = run(args!["mask", input, "--out", out, "--variants", "correct"]);
    refused(&o, "annotations.csv");

    // A missing file: its name once, the OS reason once.
    let o = run(args!["verify", dir.path().join("no-such-manifests")]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("no-such-manifests"), "{err}");
    assert!(err.matches("(os error 2)").count() <= 1, "{err}");
}

/// Runs `maskforge ARGS` unable to write a single byte to any file
/// (RLIMIT_FSIZE 0, SIGXFSZ ignored: every write fails with EFBIG).
#[cfg(target_os = "linux")]
fn run_without_file_space(args: &[&std::ffi::OsStr]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = maskforge();
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("a.jpg"));
    let o = run_without_file_space(args!["mask", input, "--out", dir.path().join("masked"), "--variants", "correct"]);
    refused(&o, "mask_settings.json");
    // detect's first write is its journal (resume after a kill).
    let o = run_without_file_space(args!["detect", input, "--out", dir.path().join("det")]);
    refused(&o, ".detect-journal.jsonl");
}

#[test]
fn split_train_and_eval_never_write_into_what_they_read() {
    let c = chain();
    let (masked, manifests) = (c.join("masked"), c.join("manifests"));
    let before = (tree(&masked), tree(&manifests));
    // split: output inside the dataset, or holding it.
    refused(&run(args!["split", masked, "--out", masked.join("m")]), "inside the dataset root");
    refused(&run(args!["split", masked, "--out", c]), "lies inside the output folder");
    // train: the run folder inside the dataset root or the manifests folder.
    let train = |out: &Path| {
        run(args![
            "train",
            "--manifests",
            manifests,
            "--out",
            out,
            "--arch",
            "resnet18",
            "--epochs",
            "1",
            "--img-size",
            "32"
        ])
    };
    refused(&train(&masked.join("run")), "inside the input");
    refused(&train(&manifests.join("run")), "inside the input");
    // eval: its report folder inside the dataset root.
    let o =
        run(args!["eval", "--model", model(), "--manifest", manifests.join("val.csv"), "--out", masked.join("eval")]);
    refused(&o, "inside the input");
    // stats: its --out file over the manifest it reads, or inside the dataset root.
    refused(
        &run(args!["stats", manifests.join("train.csv"), "--out", manifests.join("train.csv")]),
        "inside the input",
    );
    refused(&run(args!["stats", manifests.join("train.csv"), "--out", masked.join("stats.json")]), "inside the input");
    assert_eq!((tree(&masked), tree(&manifests)), before, "a refused run changed its input");
}

#[test]
fn mask_never_writes_over_its_landmarks_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample("obama.jpg", &input.join("a.jpg"));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("faces.csv"), "path,x0\n").unwrap();
    let o = run(args!["mask", input, "--out", out, "--landmarks", out.join("faces.csv")]);
    refused(&o, "lies inside the output folder");
    assert_eq!(std::fs::read(out.join("faces.csv")).unwrap(), b"path,x0\n");
}
