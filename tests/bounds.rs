//! End-to-end: every size a user types is bounded, and a small file whose
//! header promises a huge image is refused before its pixels are allocated
//! ("Trust, round two", defects 5, 8 and 9). Each test reproduces a failure
//! of an earlier version with the real binary and the real sample photos.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{maskforge, samples, text};

/// The one message of an out-of-range `--max-pixels`.
const PIXELS_RANGE: &str = "is out of range: --max-pixels must be 1..=1000000000";
/// The one message of an out-of-range thread count (`--jobs`, `--workers`).
const JOBS_RANGE: &str = "is out of range: --FLAG must be 0..=1024 (0: all cores)";

/// Bytes of private writable memory (heap, anonymous maps, thread stacks)
/// every run here may use: plenty for the sample photos, less than the
/// pixels of the 30000² lying file below or the stacks of 100000 threads.
const LIMIT: u64 = 2 << 30;

/// `maskforge ARGS` under an `RLIMIT_DATA` of [`LIMIT`], so that an
/// unbounded version fails fast instead of starving the machine.
fn run_limited(args: &[&OsStr]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = maskforge();
    cmd.args(args);
    // SAFETY: between fork and exec the closure only calls setrlimit, which
    // is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Refused with one error line saying `needle`, before anything is written.
fn refused_before_work(what: &str, o: &Output, needle: &str, out: &Path) {
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{what}: expected a refusal, got success:\n{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{what}: not one error line:\n{err}");
    assert!(errors[0].contains(needle), "{what}: the error does not say {needle:?}:\n{err}");
    assert!(!out.exists(), "{what}: {} was written before the refusal", out.display());
}

/// Runs every subcommand that decodes images with `--FLAG VALUE` (train and
/// eval call their threads `--workers`); each must refuse it with `message`.
fn every_decoding_command_refuses(flag: &str, value: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (photos, out, manifests) = (dir.path().join("photos"), dir.path().join("out"), dir.path().join("manifests"));
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(samples().join("obama.jpg"), photos.join("obama.jpg")).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();
    let train = manifests.join("train.csv");
    std::fs::write(&train, "path,class_index\n").unwrap();
    let (p, o, m, t) = (photos.as_os_str(), out.as_os_str(), manifests.as_os_str(), train.as_os_str());
    let os = OsStr::new;
    let commands: [&[&OsStr]; 8] = [
        &[os("mask"), p, os("--out"), o],
        &[os("detect"), p, os("--out"), o],
        &[os("predict"), p, os("--model"), os("missing.safetensors"), os("--out"), o],
        &[os("split"), p, os("--out"), o],
        &[os("verify"), m],
        &[os("stats"), t],
        &[os("train"), os("--manifests"), m, os("--out"), o],
        &[os("eval"), os("--model"), os("missing.safetensors"), os("--manifest"), t, os("--out"), o],
    ];
    for args in commands {
        let name = args[0].to_string_lossy();
        let flag = if flag == "jobs" && (name == "train" || name == "eval") { "workers" } else { flag };
        let arg = format!("--{flag}");
        let o = run_limited(&[args, &[os(&arg), os(value)]].concat());
        refused_before_work(&format!("{name} {arg} {value}"), &o, &message.replace("FLAG", flag), &out);
    }
}

#[test]
fn max_pixels_has_one_ceiling_everywhere() {
    // `--max-pixels 99999999999999` was accepted by mask, detect and predict;
    // a 21 KB JPEG declaring 65535x65535 then aborted the process.
    every_decoding_command_refuses("max-pixels", "99999999999999", PIXELS_RANGE);
    every_decoding_command_refuses("max-pixels", "0", PIXELS_RANGE);
}

#[test]
fn jobs_has_one_bound_everywhere() {
    // `--jobs 100000` started a hundred thousand threads in mask, detect and predict.
    every_decoding_command_refuses("jobs", "100000", JOBS_RANGE);
    every_decoding_command_refuses("jobs", "1025", JOBS_RANGE);
}

/// A small real JPEG (a sample photo at 160x200) whose SOF0 header is
/// patched to declare `side`x`side`: an EOI marker, far too little data.
fn lying_jpeg(side: u16) -> Vec<u8> {
    let photo = common::sample_image("obama.jpg");
    let small = image::imageops::resize(&photo, 160, 200, image::imageops::FilterType::Triangle);
    let mut bytes = maskforge_imageio::encode_image(&small, Path::new("x.jpg"), 75).unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    assert!(bytes.len() < 30_000, "{} bytes", bytes.len());
    bytes
}

/// Two real photos and three lying files: 10000² (the default pixel limit
/// exactly), 30000² (under the highest limit) and 65535² (over it).
fn input_with_lying_files(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("lies")).unwrap();
    for name in ["obama.jpg", "biden.jpg"] {
        std::fs::copy(samples().join(name), input.join(name)).unwrap();
    }
    for (name, side) in [("lies/ten.jpg", 10000), ("lies/thirty.jpg", 30000), ("lies/max.jpg", 65535)] {
        std::fs::write(input.join(name), lying_jpeg(side)).unwrap();
    }
    input
}

fn read_failures(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("failures.csv")).expect("failures.csv");
    r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect()
}

/// The run succeeds and lists each lying file in failures.csv with a
/// one-line reason; the real photos are not failures.
fn check_lies_reported(o: &Output, out: &Path) {
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", o.status);
    let f = read_failures(out);
    assert!(!f.contains_key("obama.jpg") && !f.contains_key("biden.jpg"), "{f:?}");
    for (name, side) in [("lies/ten.jpg", 10000), ("lies/thirty.jpg", 30000)] {
        let reason = f.get(name).unwrap_or_else(|| panic!("{name} not in failures.csv: {f:?}"));
        assert!(reason.starts_with("truncated or corrupt JPEG: "), "{name}: {reason}");
        assert!(reason.contains(&format!("cannot hold the {side}x{side} pixels")), "{name}: {reason}");
        assert!(!reason.contains('\n'), "{reason}");
    }
    assert!(f["lies/max.jpg"].contains("over the limit of 1000000000 pixels"), "{f:?}");
}

#[test]
fn mask_reports_lying_headers_without_decoding_them() {
    // A 21 KB JPEG declaring 10000x10000 decoded as grey, 1.6 GB a worker;
    // at 30000x30000 the decode alone is 2.7 GB: over LIMIT, an abort.
    let dir = tempfile::tempdir().unwrap();
    let input = input_with_lying_files(dir.path());
    let out = dir.path().join("out");
    let os = OsStr::new;
    let args = [os("mask"), input.as_os_str(), os("--out"), out.as_os_str(), os("--variants"), os("correct")];
    let flags = ["--crop-size", "64", "--jobs", "2", "--max-pixels", "1000000000"].map(os);
    let o = run_limited(&[&args[..], &flags].concat());
    check_lies_reported(&o, &out);
    for name in ["obama.jpg", "biden.jpg"] {
        assert!(out.join("correct").join(name).is_file(), "{name} not masked");
    }
}

#[test]
fn detect_reports_lying_headers_without_decoding_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_with_lying_files(dir.path());
    let out = dir.path().join("out");
    let os = OsStr::new;
    let args = [os("detect"), input.as_os_str(), os("--out"), out.as_os_str()];
    let o = run_limited(&[&args[..], &["--jobs", "2", "--max-pixels", "1000000000"].map(os)].concat());
    check_lies_reported(&o, &out);
    let landmarks = std::fs::read_to_string(out.join("landmarks.csv")).unwrap();
    assert!(landmarks.contains("\nobama.jpg,") && landmarks.contains("\nbiden.jpg,"), "{landmarks}");
}
