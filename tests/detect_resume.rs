//! End-to-end tests of large runs on the real sample photos: `maskforge
//! detect` killed mid-run and resumed from its journal (the same
//! landmarks.csv as an uninterrupted run, finished photos not detected
//! again), and `--list FILE` for detect and mask (a plain list and a
//! manifest; missing, escaping and non-image entries reported in
//! failures.csv, the rest processed as a walk would).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::{maskforge, samples};

fn copy_sample(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(samples().join(name), to).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `maskforge STAGE INPUT --out OUT EXTRA...`, which must succeed.
fn stage(stage: &str, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = maskforge().arg(stage).arg(input).arg("--out").arg(out).args(extra).output().unwrap();
    assert!(o.status.success(), "{stage} failed:\nstdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    o
}

/// `path → reason` of OUT/failures.csv.
fn failures(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("failures.csv")).expect("failures.csv");
    r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect()
}

/// The lines of a CSV file after its header.
fn data_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap().lines().skip(1).map(String::from).collect()
}

/// Photos journalled so far: complete lines after the settings line.
fn journalled(out: &Path) -> usize {
    let bytes = std::fs::read(out.join(".detect-journal.jsonl")).unwrap_or_default();
    bytes.iter().filter(|&&c| c == b'\n').count().saturating_sub(1)
}

#[test]
fn detect_killed_mid_run_resumes_to_the_same_landmarks() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    const IMAGES: usize = 16;
    for i in 0..IMAGES - 1 {
        let name = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"][i % 4];
        copy_sample(name, &input.join(format!("p{i:02}.jpg")));
    }
    // A photo without a face is finished too: it must not be detected again.
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128])).save(input.join("wall.png")).unwrap();
    let fresh = tmp.path().join("fresh");
    stage("detect", &input, &fresh, &[]);

    let killed = tmp.path().join("killed");
    let mut child = maskforge()
        .args(["detect", input.to_str().unwrap(), "--out", killed.to_str().unwrap(), "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill after two journalled photos: mid-run by construction, whatever
    // the machine's speed (loading the models alone takes a while).
    let started = std::time::Instant::now();
    while journalled(&killed) < 2 && started.elapsed().as_secs() < 300 {
        assert!(child.try_wait().unwrap().is_none(), "detect ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = journalled(&killed);
    assert!((2..IMAGES).contains(&done), "kill did not land mid-run: {done} of {IMAGES} journalled");
    assert!(!killed.join("landmarks.csv").exists(), "the killed run finished");

    // As if the kill had hit mid-write: a torn last line.
    let mut journal = std::fs::OpenOptions::new().append(true).open(killed.join(".detect-journal.jsonl")).unwrap();
    std::io::Write::write_all(&mut journal, b"{\"path\":\"p15.jpg\",\"fac").unwrap();
    drop(journal);

    let o = stage("detect", &input, &killed, &[]);
    let stdout = text(&o.stdout);
    assert!(stdout.contains(&format!("({} detected now, {done} already done)", IMAGES - done)), "{stdout}");
    assert!(stdout.contains(&format!("{IMAGES} images, ")) && stdout.contains("1 images without a face"), "{stdout}");
    for file in ["landmarks.csv", "failures.csv"] {
        assert_eq!(std::fs::read(fresh.join(file)).unwrap(), std::fs::read(killed.join(file)).unwrap(), "{file}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Finished: a re-run detects nothing and writes the same files; a
    // replaced photo alone is detected again.
    let o = stage("detect", &input, &killed, &[]);
    assert!(text(&o.stdout).contains(&format!("(0 detected now, {IMAGES} already done)")), "{}", text(&o.stdout));
    assert_eq!(
        std::fs::read(fresh.join("landmarks.csv")).unwrap(),
        std::fs::read(killed.join("landmarks.csv")).unwrap()
    );
    std::fs::remove_file(input.join("p03.jpg")).unwrap();
    copy_sample("obama.jpg", &input.join("p03.jpg"));
    let o = stage("detect", &input, &killed, &[]);
    assert!(text(&o.stdout).contains(&format!("(1 detected now, {} already done)", IMAGES - 1)), "{}", text(&o.stdout));

    // Other detector settings are refused, naming what differs; nothing is lost.
    let o = maskforge()
        .args(["detect", input.to_str().unwrap(), "--out", killed.to_str().unwrap(), "--upsample", "1"])
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(!o.status.success() && err.contains("other detector settings") && err.contains("upsample: 0"), "{err}");
    assert!(err.contains("--out") && err.contains(".detect-journal.jsonl"), "{err}");
    assert_eq!(journalled(&killed), IMAGES);
}

/// `in/`: a.jpg, a.png (the same photo as PNG), people/b.jpg, c.jpg, notes.txt.
fn list_input(dir: &Path) -> PathBuf {
    let root = dir.join("in");
    copy_sample("obama.jpg", &root.join("a.jpg"));
    image::open(samples().join("obama2.jpg")).unwrap().to_rgb8().save(root.join("a.png")).unwrap();
    copy_sample("biden.jpg", &root.join("people/b.jpg"));
    copy_sample("obama3.jpg", &root.join("c.jpg"));
    std::fs::write(root.join("notes.txt"), "not a photo\n").unwrap();
    root
}

const PLAIN_LIST: &str = "# photos to do\n\
                          a.jpg\n\
                          \n\
                          ./people/b.jpg\n\
                          missing.jpg\n\
                          ../escape.jpg\n\
                          notes.txt\n\
                          a.jpg\n";

const MANIFEST: &str = "path,class_index,class,group,bytes\n\
                        c.jpg,0,x,c,1\n\
                        people/b.jpg,0,x,b,1\n\
                        ../escape.jpg,0,x,e,1\n\
                        notes.txt,0,x,n,1\n";

/// The failures a list (named `name`) of [`list_input`] gives, by key.
fn expected_list_failures(name: &str, escape_line: usize, missing: bool) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = [format!("{name}:{escape_line}"), "notes.txt".to_string()].into();
    if missing {
        keys.insert("missing.jpg".into());
    }
    keys
}

#[test]
fn detect_list_processes_what_it_names_and_reports_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let input = list_input(tmp.path());
    let lists = tmp.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("todo.txt"), PLAIN_LIST).unwrap();
    std::fs::write(lists.join("val.csv"), MANIFEST).unwrap();
    let all = tmp.path().join("all");
    stage("detect", &input, &all, &[]);
    let all_rows = data_lines(&all.join("landmarks.csv"));
    let rows_of = |paths: &[&str]| -> Vec<String> {
        all_rows.iter().filter(|l| paths.iter().any(|p| l.starts_with(&format!("{p},")))).cloned().collect()
    };

    let plain = tmp.path().join("plain");
    stage("detect", &input, &plain, &["--list", lists.join("todo.txt").to_str().unwrap()]);
    // The listed photos' rows, byte for byte those of a walk; nothing else.
    assert_eq!(data_lines(&plain.join("landmarks.csv")), rows_of(&["a.jpg", "people/b.jpg"]));
    let f = failures(&plain);
    assert_eq!(f.keys().cloned().collect::<BTreeSet<_>>(), expected_list_failures("todo.txt", 6, true), "{f:?}");
    assert!(f["todo.txt:6"].contains("not relative"), "{f:?}");
    assert!(f["missing.jpg"].contains("not found"), "{f:?}");
    assert!(f["notes.txt"].contains("not an image"), "{f:?}");

    let manifest = tmp.path().join("manifest");
    stage("detect", &input, &manifest, &["--list", lists.join("val.csv").to_str().unwrap()]);
    assert_eq!(data_lines(&manifest.join("landmarks.csv")), rows_of(&["c.jpg", "people/b.jpg"]));
    let f = failures(&manifest);
    assert_eq!(f.keys().cloned().collect::<BTreeSet<_>>(), expected_list_failures("val.csv", 4, false), "{f:?}");

    // A list that is neither: refused whole, naming the file.
    std::fs::write(lists.join("bad.csv"), "path,reason\na.jpg,x\n").unwrap();
    let o = maskforge()
        .args(["detect", input.to_str().unwrap(), "--out", tmp.path().join("bad").to_str().unwrap()])
        .args(["--list", lists.join("bad.csv").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o.stderr).contains("bad.csv"), "{}", text(&o.stderr));
}

/// `output → bytes` of the images under OUT (CSVs and settings left out).
fn outputs(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(out) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(out).unwrap().to_string_lossy().replace('\\', "/");
        if e.file_type().is_file() && rel.contains('/') {
            m.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    m
}

#[test]
fn mask_list_processes_what_it_names_as_a_walk_would() {
    let tmp = tempfile::tempdir().unwrap();
    let input = list_input(tmp.path());
    let lists = tmp.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("todo.txt"), PLAIN_LIST).unwrap();
    std::fs::write(lists.join("val.csv"), MANIFEST).unwrap();
    // PNG outputs: a.jpg and a.png would both be `a.png`, so a walk names
    // them a__jpg.png and a__png.png, and a list naming one must too.
    let args = ["--variants", "correct", "--format", "png"];
    let all = tmp.path().join("all");
    stage("mask", &input, &all, &args);
    let all_outputs = outputs(&all);
    assert!(all_outputs.contains_key("correct/a__jpg.png"), "{:?}", all_outputs.keys());

    let plain = tmp.path().join("plain");
    let list_arg = lists.join("todo.txt");
    stage("mask", &input, &plain, &[&args[..], &["--list", list_arg.to_str().unwrap()]].concat());
    let got = outputs(&plain);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["correct/a__jpg.png", "correct/people/b.png"]);
    for (k, bytes) in &got {
        assert!(all_outputs[k] == *bytes, "{k} differs from the walked run's");
    }
    let f = failures(&plain);
    assert_eq!(f.keys().cloned().collect::<BTreeSet<_>>(), expected_list_failures("todo.txt", 6, true), "{f:?}");

    let manifest = tmp.path().join("manifest");
    let list_arg = lists.join("val.csv");
    let o = stage("mask", &input, &manifest, &[&args[..], &["--list", list_arg.to_str().unwrap()]].concat());
    assert!(text(&o.stdout).contains("mask: 2 images"), "{}", text(&o.stdout));
    let got = outputs(&manifest);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["correct/c.png", "correct/people/b.png"]);
    let f = failures(&manifest);
    assert_eq!(f.keys().cloned().collect::<BTreeSet<_>>(), expected_list_failures("val.csv", 4, false), "{f:?}");
}
