//! End-to-end: no path read from a file and no symlink may carry a write or
//! a delete outside OUT, outputs are never read back as inputs, and files
//! that are not regular files are refused or reported, never read forever.
//! Each test reproduces a defect of an earlier version with the real binary
//! and the real sample photos.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{files_under as tree, maskforge, refused, samples, stderr, succeeded as ok};

const VARIANTS: [&str; 4] = ["--variants", "correct", "--jobs", "1"];

fn mask(input: &Path, out: &Path, extra: &[&str]) -> Output {
    maskforge().arg("mask").arg(input).arg("--out").arg(out).args(VARIANTS).args(extra).output().unwrap()
}

/// `in/` with two sample photos, masked once into `out/`.
fn masked_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(samples().join("obama.jpg"), input.join("a.jpg")).unwrap();
    std::fs::copy(samples().join("biden.jpg"), input.join("b.jpg")).unwrap();
    ok(mask(&input, &out, &[]));
    assert!(out.join("correct/a.jpg").is_file());
    (input, out)
}

/// A FIFO at `path`: opening it for reading blocks until a writer comes.
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A grey photo with no face, written over `path`.
fn faceless(path: &Path) {
    image::RgbImage::from_pixel(300, 300, image::Rgb([90, 90, 90]))
        .save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

#[test]
fn a_rerun_never_removes_what_a_tampered_annotations_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = masked_pair(dir.path());
    let victim = dir.path().join("victim.jpg");
    std::fs::write(&victim, b"precious").unwrap();
    let csv = out.join("annotations.csv");
    let clean = std::fs::read_to_string(&csv).unwrap();
    for evil in ["../in/b.jpg".to_string(), victim.display().to_string()] {
        std::fs::write(&csv, clean.replace("correct/a.jpg", &evil)).unwrap();
        // a.jpg changes, so a re-run removes the outputs its row names.
        faceless(&input.join("a.jpg"));
        let o = mask(&input, &out, &[]);
        refused(&o, "annotations.csv");
        refused(&o, "is not relative");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(input.join("b.jpg").is_file(), "an input named by a tampered row was removed");
        std::fs::copy(samples().join("obama.jpg"), input.join("a.jpg")).unwrap();
    }
}

#[test]
fn merge_refuses_a_tampered_shard_before_bringing_anything_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_, shard) = masked_pair(dir.path());
    let csv = shard.join("annotations.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("correct/a.jpg", "../in/b.jpg")).unwrap();
    let merged = dir.path().join("merged");
    let o = maskforge().arg("merge").arg(&merged).arg("--from").arg(&shard).output().unwrap();
    refused(&o, "output: path \"../in/b.jpg\" is not relative");
    assert!(
        !merged.exists() || tree(&merged).is_empty(),
        "merge brought files in before checking: {:?}",
        tree(&merged)
    );
}

#[cfg(unix)]
#[test]
fn a_class_folder_symlinked_into_the_input_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = masked_pair(dir.path());
    std::fs::remove_dir_all(out.join("correct")).unwrap();
    std::os::unix::fs::symlink(&input, out.join("correct")).unwrap();
    std::fs::copy(samples().join("obama2.jpg"), input.join("c.jpg")).unwrap();
    let before = tree(&input);
    let o = mask(&input, &out, &[]);
    refused(&o, "is a symlink that leads outside");
    assert_eq!(tree(&input), before, "an input photo was replaced through the symlinked class folder");
}

#[test]
fn a_preview_never_takes_the_place_of_a_run_file_or_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = masked_pair(dir.path());
    let before = tree(&out);
    let o = mask(&input, &out, &["--preview", out.join("annotations.csv").to_str().unwrap()]);
    refused(&o, "must end in .png, .jpg or .jpeg");
    let o = mask(&input, &out, &["--preview", out.join("correct/x.jpg").to_str().unwrap()]);
    refused(&o, "it would be read as a sample");
    assert_eq!(tree(&out), before);
    let sheet = out.join("sheet.png");
    ok(mask(&input, &out, &["--preview", sheet.to_str().unwrap()]));
    assert!(sheet.is_file());
}

#[cfg(unix)]
#[test]
fn outputs_reached_through_a_symlink_in_the_input_are_not_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = masked_pair(dir.path());
    std::os::unix::fs::symlink(&out, input.join("outlink")).unwrap();
    mkfifo(&input.join("pipe.jpg"));
    ok(mask(&input, &out, &[]));
    let made: Vec<PathBuf> = tree(&out).into_keys().filter(|p| p.starts_with("correct")).collect();
    assert_eq!(made, [PathBuf::from("correct/a.jpg"), PathBuf::from("correct/b.jpg")]);
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert!(failures.contains("outlink,a symlink into the output folder"), "{failures}");
    assert!(failures.contains("pipe.jpg,\"not a regular file"), "{failures}");
}

/// Runs `maskforge ARGS` and kills it if it has not ended within a minute:
/// a read of a FIFO or a device must be refused, not block or run on.
fn run_or_kill(args: &[&str]) -> Output {
    let mut child =
        maskforge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("maskforge {args:?} still running after 60 s (reading a file that never ends?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn lists_and_landmarks_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(samples().join("obama.jpg"), input.join("a.jpg")).unwrap();
    let fifo = dir.path().join("list.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    for (flag, file, kind) in [
        ("--list", "/dev/zero", "(a device)"),
        ("--landmarks", "/dev/urandom", "(a device)"),
        ("--list", fifo.to_str().unwrap(), "(a FIFO)"),
    ] {
        let r = run_or_kill(&["mask", i, "--out", o, flag, file]);
        refused(&r, &format!("{file}: not a regular file {kind}"));
        let r = run_or_kill(&["detect", i, "--out", o, "--list", file]);
        if flag == "--list" {
            refused(&r, &format!("{file}: not a regular file {kind}"));
        }
    }
    let long = dir.path().join("long.csv");
    std::fs::write(&long, format!("path,x0\n{}\n", "1".repeat(2 << 20))).unwrap();
    let r = run_or_kill(&["mask", i, "--out", o, "--landmarks", long.to_str().unwrap()]);
    refused(&r, "long.csv:2: line longer than 1048576 bytes");
}

#[test]
fn a_cache_folder_inside_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(samples().join("obama.jpg"), input.join("a.jpg")).unwrap();
    let out = dir.path().join("out");
    let o = maskforge()
        .env("MASKFORGE_CACHE", input.join("cache"))
        .arg("mask")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(VARIANTS)
        .output()
        .unwrap();
    refused(&o, "(MASKFORGE_CACHE) and");
    assert!(!input.join("cache").exists(), "rasters were written into the input");
}

/// `maskforge weights list | head -1`: the reader goes away first; the
/// writer must end quietly with status 0, not die of SIGPIPE (141).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child =
        common::maskforge().args(["weights", "list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Close the reading end before the binary has loaded its libraries.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "status {:?}, stderr: {}", o.status, stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}
