//! `cargo xtask bench faces`: maskforge's face detectors and OpenCV's res10
//! SSD side by side on real crowd photos (the `crowds` development set: 300
//! photos, 833 boxes labelled `mask` / `no_mask`), then how many real face
//! crops of that set `maskforge mask` puts a mask on.
//!
//! Every detector is scored the same way, here: a detection matches an
//! annotated face at IoU >= 0.3 (greedy, one to one, best pair first);
//! maskforge's boxes as `predict` reports them (the whole face around
//! detect's tight dlib-convention box), res10's as it gives them. Not
//! every face of a crowd is boxed, so the share of unmatched detections
//! overstates false positives (the set's README, "Caveats"). The set is read
//! where it lies and never copied; work files go to target/bench/faces/.

use crate::{build_release, setup};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask bench faces [--crowds DIR] [--detectors hog,mtcnn,centerface] [--min-face PX] [--jobs N]
                               [--no-mask] [--no-build]

  --crowds DIR        the crowds set (photos/, boxes.csv) [default: $MASKFORGE_CROWDS, else
                      ../shared/data/crowds from the checkout]
  --detectors LIST    maskforge detectors to run, comma-separated: hog, cnn (slow on CPU), mtcnn,
                      centerface [default: hog,mtcnn,centerface]; OpenCV's res10 SSD always runs
                      as the peer
  --min-face PX       maskforge's --min-face for detect and mask [default: each detector's own:
                      hog 80 and cnn 40 (their windows, full size), mtcnn and centerface 24]
  --jobs N            worker threads for maskforge, and cv2.setNumThreads [default: all cores]
  --no-mask           skip the crop-coverage part (maskforge mask on face crops of the set)
  --no-build          use target/release/maskforge as it is";

/// ` --min-face PX` when one was given (for the `==>` lines), else a note.
fn min_face_flag(min_face: Option<u32>) -> String {
    match min_face {
        Some(px) => format!(" --min-face {px}"),
        None => " (default --min-face)".into(),
    }
}

fn min_face_args(min_face: Option<u32>) -> Vec<String> {
    min_face.map(|px| vec!["--min-face".to_string(), px.to_string()]).unwrap_or_default()
}

/// The match threshold: boxes of the set vary from tight faces to whole heads.
const MIN_IOU: f64 = 0.3;
/// Overall and by-label recall count the faces whose shorter side is at least this.
const RECALL_MIN_SIDE: f64 = 32.0;
/// Size bands of the shorter side of an annotated box.
const BANDS: [&str; 4] = ["<32", "32–63", "64–127", "≥128"];
/// Crops: boxes with a shorter side of at least this, grown by this share per side.
const CROP_MIN_SIDE: u32 = 50;
const CROP_MARGIN: f64 = 0.2;
/// MaskTheFace (Python, dlib HOG, one core) on ~120 px face crops: images/s
/// and the share of crops it finds a face in (docs/mask.md, Benchmark).
const MASKTHEFACE_IPS: f64 = 23.6;
const MASKTHEFACE_FOUND: f64 = 0.51;

/// The width of the small copies whose photos/s the bench also measures
/// (issue #18's bar: ≥ 15 photos/s on ~400 px photos on 2 cores).
const SMALL_WIDTH: u32 = 400;

/// A box as `[left, top, right, bottom]` in pixels.
pub type Bbox = [f64; 4];

/// An annotated face.
#[derive(Debug, Clone)]
pub struct Truth {
    pub b: Bbox,
    pub label: String,
}

struct Opts {
    crowds: PathBuf,
    detectors: Vec<String>,
    /// `None`: each detector's own default (hog 80, cnn 40, mtcnn and centerface 24).
    min_face: Option<u32>,
    jobs: usize,
    mask: bool,
    build: bool,
}

fn parse_args(root: &Path, args: &[&str]) -> Result<Opts> {
    let mut o = Opts {
        crowds: default_crowds(root),
        detectors: vec!["hog".into(), "mtcnn".into(), "centerface".into()],
        min_face: None,
        jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        mask: true,
        build: true,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut value = || it.next().copied().with_context(|| format!("{a} needs a value\n\n{USAGE}"));
        match a {
            "--crowds" => o.crowds = PathBuf::from(value()?),
            "--detectors" => {
                o.detectors = value()?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
            }
            "--min-face" => o.min_face = Some(value()?.parse().context("--min-face: a whole number of pixels")?),
            "--jobs" | "-j" => o.jobs = value()?.parse().context("--jobs: a whole number")?,
            "--no-mask" => o.mask = false,
            "--no-build" => o.build = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if o.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    Ok(o)
}

/// Where the crowds set is unless `--crowds` says: `$MASKFORGE_CROWDS`, else
/// `../shared/data/crowds` from the checkout.
pub fn default_crowds(root: &Path) -> PathBuf {
    std::env::var_os("MASKFORGE_CROWDS").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/data/crowds"))
}

/// The crowds set at `dir`: the folder (resolved), its `photos/` and its
/// `boxes.csv`; an error naming the options when either is missing.
pub fn locate_crowds(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let (photos, boxes_csv) = (dir.join("photos"), dir.join("boxes.csv"));
    if !photos.is_dir() || !boxes_csv.is_file() {
        bail!("no crowds set at {} (photos/ and boxes.csv): pass --crowds DIR or set MASKFORGE_CROWDS", dir.display());
    }
    Ok((dir, photos, boxes_csv))
}

pub fn iou(a: &Bbox, b: &Bbox) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &Bbox| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy one-to-one matching, best IoU first (ties: lower truth, then lower
/// detection index): for each truth, the detection it is matched with.
pub fn greedy_match(dets: &[Bbox], truths: &[Bbox], min_iou: f64) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (t, tb) in truths.iter().enumerate() {
        for (d, db) in dets.iter().enumerate() {
            let v = iou(db, tb);
            if v >= min_iou {
                pairs.push((v, t, d));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut truth_of = vec![None; truths.len()];
    let mut used = vec![false; dets.len()];
    for (_, t, d) in pairs {
        if truth_of[t].is_none() && !used[d] {
            truth_of[t] = Some(d);
            used[d] = true;
        }
    }
    truth_of
}

/// Found / annotated.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    pub hit: usize,
    pub n: usize,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.hit += usize::from(hit);
        self.n += 1;
    }
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.hit as f64 / self.n as f64)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Score {
    /// Faces with a shorter side >= 32 px, all labels / `mask` / `no_mask`.
    pub all: Tally,
    pub mask: Tally,
    pub no_mask: Tally,
    /// Every face, by the shorter side of its box ([`BANDS`]).
    pub bands: [Tally; 4],
    /// Detector boxes.
    pub dets: usize,
    /// The boxes matching no annotated face, by photo, for a look by eye:
    /// the set leaves many faces unboxed, so most are faces, not false
    /// detections.
    pub unmatched_boxes: Vec<(String, Bbox)>,
}

impl Score {
    /// Detector boxes matching no annotated face.
    pub fn unmatched(&self) -> usize {
        self.unmatched_boxes.len()
    }
}

fn band(side: f64) -> usize {
    match side {
        s if s < 32.0 => 0,
        s if s < 64.0 => 1,
        s if s < 128.0 => 2,
        _ => 3,
    }
}

/// Scores the detections of every photo against its annotated faces. Photos
/// with detections but no annotation count all their boxes as unmatched.
pub fn score(truth: &BTreeMap<String, Vec<Truth>>, dets: &BTreeMap<String, Vec<Bbox>>) -> Score {
    let mut s = Score::default();
    let none: Vec<Bbox> = Vec::new();
    for (photo, faces) in truth {
        let d = dets.get(photo).unwrap_or(&none);
        let boxes: Vec<Bbox> = faces.iter().map(|f| f.b).collect();
        let matched = greedy_match(d, &boxes, MIN_IOU);
        s.dets += d.len();
        let used: Vec<usize> = matched.iter().flatten().copied().collect();
        let unused = d.iter().enumerate().filter(|(i, _)| !used.contains(i));
        s.unmatched_boxes.extend(unused.map(|(_, b)| (photo.clone(), *b)));
        for (face, m) in faces.iter().zip(&matched) {
            let hit = m.is_some();
            let side = (face.b[2] - face.b[0]).min(face.b[3] - face.b[1]);
            s.bands[band(side)].add(hit);
            if side >= RECALL_MIN_SIDE {
                s.all.add(hit);
                match face.label.as_str() {
                    "mask" => s.mask.add(hit),
                    "no_mask" => s.no_mask.add(hit),
                    _ => {}
                }
            }
        }
    }
    for (photo, d) in dets {
        if !truth.contains_key(photo) {
            s.dets += d.len();
            s.unmatched_boxes.extend(d.iter().map(|b| (photo.clone(), *b)));
        }
    }
    s
}

/// The boxes of a `image,xmin,ymin,xmax,ymax,label` CSV by photo, in file order.
pub fn read_truth(boxes_csv: &Path) -> Result<BTreeMap<String, Vec<Truth>>> {
    let mut rd = csv::Reader::from_path(boxes_csv).with_context(|| format!("read {}", boxes_csv.display()))?;
    let col = column_finder(rd.headers()?.clone(), boxes_csv);
    let (image, label) = (col("image")?, col("label")?);
    let coords = [col("xmin")?, col("ymin")?, col("xmax")?, col("ymax")?];
    let mut truth: BTreeMap<String, Vec<Truth>> = BTreeMap::new();
    for rec in rd.records() {
        let rec = rec.with_context(|| format!("read {}", boxes_csv.display()))?;
        let b = parse_box(&rec, coords).with_context(|| format!("{}: bad box {rec:?}", boxes_csv.display()))?;
        truth.entry(rec[image].to_string()).or_default().push(Truth { b, label: rec[label].to_string() });
    }
    Ok(truth)
}

/// Detector boxes by photo from a CSV with `path,left,top,right,bottom`
/// columns (maskforge's landmarks.csv, the res10 script's output).
fn read_dets(file: &Path) -> Result<BTreeMap<String, Vec<Bbox>>> {
    let mut rd = csv::Reader::from_path(file).with_context(|| format!("read {}", file.display()))?;
    let col = column_finder(rd.headers()?.clone(), file);
    let path = col("path")?;
    let coords = [col("left")?, col("top")?, col("right")?, col("bottom")?];
    let mut dets: BTreeMap<String, Vec<Bbox>> = BTreeMap::new();
    for rec in rd.records() {
        let rec = rec.with_context(|| format!("read {}", file.display()))?;
        let b = parse_box(&rec, coords).with_context(|| format!("{}: bad box {rec:?}", file.display()))?;
        dets.entry(rec[path].to_string()).or_default().push(b);
    }
    Ok(dets)
}

/// detect's boxes (dlib's tight convention) as `predict` reports them: the
/// whole face around each ([`maskforge_face::BBox::whole_face`]), which is
/// what a hand-drawn face box holds.
fn whole_faces(dets: BTreeMap<String, Vec<Bbox>>) -> BTreeMap<String, Vec<Bbox>> {
    let whole = |b: &Bbox| {
        let w = maskforge_face::BBox::new(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32).whole_face();
        [w.left as f64, w.top as f64, w.right as f64, w.bottom as f64]
    };
    dets.into_iter().map(|(k, v)| (k, v.iter().map(whole).collect())).collect()
}

pub fn column_finder(headers: csv::StringRecord, file: &Path) -> impl Fn(&str) -> Result<usize> + '_ {
    move |name| {
        headers.iter().position(|h| h == name).with_context(|| format!("{}: no `{name}` column", file.display()))
    }
}

fn parse_box(rec: &csv::StringRecord, cols: [usize; 4]) -> Result<Bbox> {
    let mut b = [0.0; 4];
    for (v, c) in b.iter_mut().zip(cols) {
        *v = rec.get(c).context("short row")?.trim().parse()?;
    }
    Ok(b)
}

/// One detector's run: what it measured, or why it failed.
struct DetRun {
    name: String,
    result: std::result::Result<(Score, f64), String>,
    unreadable: usize,
}

/// The first `error` line of a failed command's output, else its last line.
pub fn failure_reason(out: &std::process::Output) -> String {
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines.iter().find(|l| l.starts_with("error")).or(lines.last()).copied().unwrap_or("no output");
    format!("{} ({})", line, out.status)
}

/// Runs a command with its output captured (maskforge's progress goes to
/// stderr); prints its stdout (the summary) on success, returns the reason on
/// failure.
pub fn run_timed(cmd: &mut Command) -> std::result::Result<f64, String> {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(failure_reason(&out));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
        println!("    {line}");
    }
    Ok(secs)
}

pub fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    Ok(())
}

/// The release binary: built first (`cargo build --release -p maskforge`)
/// unless `build` is false, then it must exist.
pub fn maskforge_bin(root: &Path, build: bool) -> Result<PathBuf> {
    let bin = if build { build_release(root)? } else { root.join("target/release/maskforge") };
    if !bin.is_file() {
        bail!("{} is missing (run without --no-build)", bin.display());
    }
    // --no-build trusts the binary: say so when the sources moved on since
    // (a stale binary once measured the previous defaults).
    if let Some(newer) = newer_source(root, &bin) {
        println!(
            "warning: {} is older than {} (changed since the build): its figures are the old code's; run without --no-build",
            bin.display(),
            newer.strip_prefix(root).unwrap_or(&newer).display()
        );
    }
    Ok(bin)
}

/// A source of the binary (`Cargo.lock`, or a `.rs` or `Cargo.toml` under
/// `crates/`) modified after `bin` was, if any.
fn newer_source(root: &Path, bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let newer = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t > built);
    let lock = root.join("Cargo.lock");
    if newer(&lock) {
        return Some(lock);
    }
    let mut dirs = vec![root.join("crates")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_source = path.extension().is_some_and(|e| e == "rs") || path.ends_with("Cargo.toml");
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if is_source && newer(&path) {
                return Some(path);
            }
        }
    }
    None
}

/// `xtask/bench_faces_res10.py SUBCOMMAND` run by the project venv's Python.
fn res10_script(root: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(setup::venv_python(root));
    cmd.arg(root.join("xtask/bench_faces_res10.py")).arg(subcommand);
    cmd
}

/// Face crops of the boxes of `boxes_csv` (photos under `photos`) whose
/// shorter side is at least `min_side` px, grown by `margin` per side and
/// clamped to the photo, as JPEG q95: `out/<label>/NNNN.jpg`, NNNN the box's
/// row in `boxes_csv` (xtask/bench_faces_res10.py `crops`). Returns the
/// number of crops by label.
pub fn make_crops(
    root: &Path,
    photos: &Path,
    boxes_csv: &Path,
    out: &Path,
    min_side: u32,
    margin: f64,
) -> Result<BTreeMap<String, usize>> {
    fresh_dir(out)?;
    crate::run_cmd(
        res10_script(root, "crops")
            .arg("--photos")
            .arg(photos)
            .arg("--boxes")
            .arg(boxes_csv)
            .arg("--out")
            .arg(out)
            .args(["--min-side", &min_side.to_string(), "--margin", &margin.to_string(), "--quality", "95"]),
    )?;
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    if out.is_dir() {
        for entry in std::fs::read_dir(out)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let n = std::fs::read_dir(entry.path())?.count();
                by_label.insert(entry.file_name().to_string_lossy().into_owned(), n);
            }
        }
    }
    Ok(by_label)
}

/// `maskforge detect` of the listed photos with detector `det` and the
/// bench's `-j` and `--min-face`.
fn detect_cmd(bin: &Path, photos: &Path, out: &Path, list: &Path, det: &str, o: &Opts) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("detect").arg(photos).arg("--out").arg(out).arg("--list").arg(list);
    cmd.args(["--detector", det, "-j", &o.jobs.to_string()]).args(min_face_args(o.min_face));
    cmd
}

/// Each maskforge detector's `detect` on copies of the photos scaled to
/// [`SMALL_WIDTH`] px wide (made once by xtask/bench_faces_res10.py
/// `scaled`), timed by wall clock: seconds per run, or why it failed.
fn small_photo_rates(
    root: &Path,
    bin: &Path,
    o: &Opts,
    photos: &Path,
    list: &Path,
    work: &Path,
) -> Result<Vec<(String, std::result::Result<f64, String>)>> {
    let small = work.join(format!("photos{SMALL_WIDTH}"));
    fresh_dir(&small)?;
    println!("==> the photos scaled to {SMALL_WIDTH} px wide (cv2 INTER_AREA, JPEG q92)");
    crate::run_cmd(
        res10_script(root, "scaled")
            .arg("--photos")
            .arg(photos)
            .arg("--list")
            .arg(list)
            .arg("--out")
            .arg(&small)
            .args(["--width", &SMALL_WIDTH.to_string()]),
    )?;
    let mut rates = Vec::new();
    for det in &o.detectors {
        let out = work.join(format!("{det}_{SMALL_WIDTH}"));
        fresh_dir(&out)?;
        println!(
            "==> maskforge detect --detector {det}{} -j {} on the {SMALL_WIDTH} px copies",
            min_face_flag(o.min_face),
            o.jobs
        );
        rates.push((det.clone(), run_timed(&mut detect_cmd(bin, &small, &out, list, det, o))));
    }
    Ok(rates)
}

fn print_small_rates(rates: &[(String, std::result::Result<f64, String>)], n_photos: usize) {
    println!("the same {n_photos} photos scaled to {SMALL_WIDTH} px wide: `maskforge detect`, wall clock (start-up included)");
    println!("  {:<12}  {:>8}", "detector", "photos/s");
    for (det, r) in rates {
        match r {
            Ok(secs) => println!("  {det:<12}  {:>8.1}", n_photos as f64 / secs.max(1e-9)),
            Err(e) => println!("  {det:<12}  FAILED: {e}"),
        }
    }
}

/// For each detector that ran: its unmatched boxes in
/// `work/unmatched-<name>.csv` (`image,xmin,ymin,xmax,ymax`), drawn on
/// numbered contact sheets `work/unmatched-<name>-N.png` by the Python
/// script. Returns (detector, CSV, the sheets' path pattern or why not).
fn unmatched_sheets(
    root: &Path,
    photos: &Path,
    work: &Path,
    runs: &[DetRun],
) -> Result<Vec<(String, PathBuf, String)>> {
    let mut out = Vec::new();
    for run in runs {
        let Ok((score, _)) = &run.result else { continue };
        let name = run.name.trim_start_matches("opencv ").to_string();
        let csv_path = work.join(format!("unmatched-{name}.csv"));
        let mut wr = csv::Writer::from_path(&csv_path).with_context(|| format!("write {}", csv_path.display()))?;
        wr.write_record(["image", "xmin", "ymin", "xmax", "ymax"])?;
        for (photo, b) in &score.unmatched_boxes {
            let [x0, y0, x1, y1] = b.map(|v| format!("{v:.1}"));
            wr.write_record([photo.as_str(), &x0, &y0, &x1, &y1])?;
        }
        wr.flush()?;
        let prefix = work.join(format!("unmatched-{name}"));
        let drawn = run_timed(
            res10_script(root, "sheet")
                .arg("--photos")
                .arg(photos)
                .arg("--boxes")
                .arg(&csv_path)
                .arg("--out")
                .arg(&prefix),
        );
        let sheets = match drawn {
            Ok(_) => format!("{}-N.png", prefix.display()),
            Err(e) => format!("no sheets: {e}"),
        };
        out.push((run.name.clone(), csv_path, sheets));
    }
    Ok(out)
}

/// Rows of failures.csv (`path,reason`) that are not "no face detected".
fn unreadable(failures: &Path) -> usize {
    let Ok(mut rd) = csv::Reader::from_path(failures) else { return 0 };
    rd.records().flatten().filter(|r| !r.get(1).unwrap_or_default().contains("no face")).count()
}

pub fn bench(root: &Path, args: &[&str]) -> Result<()> {
    let mut o = parse_args(root, args)?;
    let (crowds, photos, boxes_csv) = locate_crowds(&o.crowds)?;
    o.crowds = crowds;
    setup::setup(root)?;
    let bin = maskforge_bin(root, o.build)?;
    let work = root.join("target/bench/faces");
    std::fs::create_dir_all(&work)?;
    let truth = read_truth(&boxes_csv)?;
    // Both sides read exactly the annotated photos, named in a list file
    // (`detect --list`: one path a line, `#` starts a comment).
    for name in truth.keys() {
        if name.starts_with('#') || name.trim() != name || name.contains(['\n', '\r']) {
            bail!("{}: photo name {name:?} cannot go into a --list file", boxes_csv.display());
        }
    }
    let list = work.join("photos.txt");
    std::fs::write(&list, truth.keys().map(|k| format!("{k}\n")).collect::<String>())?;
    let n_photos = truth.len();
    let n_faces: usize = truth.values().map(Vec::len).sum();
    println!("==> bench faces: {n_photos} photos, {n_faces} annotated faces in {}", o.crowds.display());

    let mut runs: Vec<DetRun> = Vec::new();
    for det in &o.detectors {
        let out_dir = work.join(det);
        fresh_dir(&out_dir)?;
        println!("==> maskforge detect --detector {det}{} -j {}", min_face_flag(o.min_face), o.jobs);
        let timed = run_timed(&mut detect_cmd(&bin, &photos, &out_dir, &list, det, &o));
        let result = match timed {
            Ok(secs) => read_dets(&out_dir.join("landmarks.csv")).map(|d| (score(&truth, &whole_faces(d)), secs)),
            Err(reason) => Err(anyhow::anyhow!(reason)),
        };
        if let Err(e) = &result {
            println!("    {det}: FAILED: {e:#}");
        }
        let unreadable = unreadable(&out_dir.join("failures.csv"));
        runs.push(DetRun { name: det.clone(), result: result.map_err(|e| format!("{e:#}")), unreadable });
    }

    println!("==> OpenCV res10 SSD (cv2.dnn, 300x300, confidence > 0.5, {} threads)", o.jobs);
    let res10_csv = work.join("res10.csv");
    let res10_json = work.join("res10.json");
    let _ = std::fs::remove_file(&res10_csv);
    let models = root.join("models");
    let timed = run_timed(
        res10_script(root, "detect")
            .arg("--photos")
            .arg(&photos)
            .arg("--list")
            .arg(&list)
            .arg("--prototxt")
            .arg(models.join("res10_deploy.prototxt"))
            .arg("--caffemodel")
            .arg(models.join("res10_300x300_ssd_iter_140000.caffemodel"))
            .arg("--out")
            .arg(&res10_csv)
            .arg("--summary")
            .arg(&res10_json)
            .args(["--threads", &o.jobs.to_string()]),
    );
    let mut res10_unreadable = 0;
    let result = timed.and_then(|_| {
        // The script times loading + detection itself (the model is loaded before its clock starts).
        let summary: serde_json::Value = std::fs::read(&res10_json)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))?;
        res10_unreadable = summary["failed"].as_array().map_or(0, Vec::len);
        let secs = summary["seconds"].as_f64().ok_or("no seconds in the summary")?;
        let dets = read_dets(&res10_csv).map_err(|e| format!("{e:#}"))?;
        Ok((score(&truth, &dets), secs))
    });
    if let Err(e) = &result {
        println!("    res10: FAILED: {e}");
    }
    runs.push(DetRun { name: "opencv res10".into(), result, unreadable: res10_unreadable });

    let sheets = unmatched_sheets(root, &photos, &work, &runs)?;
    let small_rates = small_photo_rates(root, &bin, &o, &photos, &list, &work)?;
    let mask_rows = if o.mask { crop_coverage(root, &bin, &o, &boxes_csv, &photos, &work)? } else { Vec::new() };

    println!();
    print_detect_table(&runs, &truth, n_photos, &o);
    println!();
    print_small_rates(&small_rates, n_photos);
    if !sheets.is_empty() {
        println!();
        println!("  unmatched boxes, numbered by row of each CSV, to check by eye (faces the set left unboxed, or false detections):");
        for (name, csv, sheet) in &sheets {
            println!("  {name:<12}  {} -> {}", csv.display(), sheet);
        }
    }
    if !mask_rows.is_empty() {
        println!();
        print_mask_table(&mask_rows);
    }

    let report = json!({
        "crowds": o.crowds.display().to_string(),
        "photos": n_photos,
        "annotated_faces": n_faces,
        "min_iou": MIN_IOU,
        "recall_min_side": RECALL_MIN_SIDE,
        "min_face": o.min_face,
        "jobs": o.jobs,
        "detectors": runs.iter().map(|r| detector_json(r, n_photos)).collect::<Vec<_>>(),
        "photos_per_s_at_width": {
            "width": SMALL_WIDTH,
            "rates": small_rates.iter().map(|(d, r)| json!({"detector": d, "photos_per_s": r.as_ref().ok().map(|s| n_photos as f64 / s), "error": r.as_ref().err()})).collect::<Vec<_>>(),
        },
        "crop_coverage": {
            "crop_min_side": CROP_MIN_SIDE,
            "crop_margin": CROP_MARGIN,
            "masktheface_reference": {"images_per_s": MASKTHEFACE_IPS, "found_share": MASKTHEFACE_FOUND},
            "modes": mask_rows.iter().map(mask_json).collect::<Vec<_>>(),
        },
    });
    let report_path = work.join("report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nreport: {}", report_path.display());
    Ok(())
}

fn tally_json(t: &Tally) -> serde_json::Value {
    json!({"found": t.hit, "faces": t.n, "recall": t.rate()})
}

fn detector_json(r: &DetRun, n_photos: usize) -> serde_json::Value {
    match &r.result {
        Ok((s, secs)) => json!({
            "detector": r.name,
            "ok": true,
            "seconds": secs,
            "photos_per_s": n_photos as f64 / secs,
            "unreadable_photos": r.unreadable,
            "recall_min32": tally_json(&s.all),
            "recall_min32_mask": tally_json(&s.mask),
            "recall_min32_no_mask": tally_json(&s.no_mask),
            "recall_by_band": BANDS.iter().zip(&s.bands).map(|(b, t)| (b.to_string(), tally_json(t))).collect::<serde_json::Map<_, _>>(),
            "boxes": s.dets,
            "unmatched_boxes": s.unmatched(),
            "unmatched_share": (s.dets > 0).then(|| s.unmatched() as f64 / s.dets as f64),
        }),
        Err(e) => json!({"detector": r.name, "ok": false, "error": e}),
    }
}

fn pct(t: &Tally) -> String {
    t.rate().map_or("-".into(), |r| format!("{:.1}%", 100.0 * r))
}

/// Prints rows aligned: the first column left, the others right.
fn print_table(header: &[String], rows: &[Vec<String>]) {
    let width = |s: &String| s.chars().count();
    let mut w: Vec<usize> = header.iter().map(width).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |r: &[String]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(w[i] - width(c));
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        println!("  {}", cells.join("  ").trim_end());
    };
    line(header);
    println!("  {}", w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().join("  "));
    for r in rows {
        line(r);
    }
}

fn print_detect_table(runs: &[DetRun], truth: &BTreeMap<String, Vec<Truth>>, n_photos: usize, o: &Opts) {
    // The denominators are the same for every detector: they go into the header.
    let s = score(truth, &BTreeMap::new());
    let mut header: Vec<String> = vec![
        "detector".into(),
        "photos/s".into(),
        format!("≥32 px ({})", s.all.n),
        format!("mask ({})", s.mask.n),
        format!("no_mask ({})", s.no_mask.n),
    ];
    header.extend(BANDS.iter().zip(&s.bands).map(|(b, t)| format!("{b} ({})", t.n)));
    header.extend(["boxes".into(), "unmatched".into()]);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for r in runs {
        match &r.result {
            Ok((s, secs)) => {
                let mut row = vec![
                    r.name.clone(),
                    format!("{:.1}", n_photos as f64 / secs),
                    pct(&s.all),
                    pct(&s.mask),
                    pct(&s.no_mask),
                ];
                row.extend(s.bands.iter().map(pct));
                row.push(s.dets.to_string());
                let share = if s.dets > 0 { 100.0 * s.unmatched() as f64 / s.dets as f64 } else { 0.0 };
                row.push(format!("{} ({share:.0}%)", s.unmatched()));
                rows.push(row);
                if r.unreadable > 0 {
                    notes.push(format!("{}: {} photos could not be read", r.name, r.unreadable));
                }
            }
            Err(e) => {
                let mut row = vec![r.name.clone(), "FAILED".into()];
                row.resize(header.len(), "-".into());
                rows.push(row);
                notes.push(format!("{} failed: {e}", r.name));
            }
        }
    }
    println!(
        "face detection on {n_photos} crowd photos: recall at IoU ≥ {MIN_IOU} (greedy one-to-one), maskforge{} -j {}",
        min_face_flag(o.min_face),
        o.jobs
    );
    print_table(&header, &rows);
    println!("  recall: faces with a shorter side ≥ 32 px (all, by label), then every face by shorter side (annotated faces in brackets)");
    println!("  boxes: maskforge's as predict reports them (the whole face around detect's tight dlib box), res10's as it gives them");
    println!("  unmatched: detector boxes matching no annotated face; crowds are not fully annotated, so this overstates false positives");
    println!("  photos/s: maskforge = the whole `detect` process (start-up, decode, detection, 68 landmarks, CSV);");
    println!("            res10 = cv2.imread + detection of every photo, the model loaded before the clock starts");
    for n in notes {
        println!("  {n}");
    }
}

struct MaskRow {
    mode: String,
    crops: usize,
    by_label: BTreeMap<String, usize>,
    result: std::result::Result<(BTreeMap<String, usize>, f64), String>,
}

/// Face crops of the set's boxes, then `maskforge mask` on them in each way
/// of finding faces: the share of crops that got a mask, and images/s.
fn crop_coverage(
    root: &Path,
    bin: &Path,
    o: &Opts,
    boxes_csv: &Path,
    photos: &Path,
    work: &Path,
) -> Result<Vec<MaskRow>> {
    let crops = work.join("crops");
    println!(
        "==> face crops: boxes with a shorter side ≥ {CROP_MIN_SIDE} px, {:.0}% margin per side, JPEG q95",
        CROP_MARGIN * 100.0
    );
    let by_label = make_crops(root, photos, boxes_csv, &crops, CROP_MIN_SIDE, CROP_MARGIN)?;
    let n_crops: usize = by_label.values().sum();

    let mut modes: Vec<(&str, &str, Vec<&str>)> = vec![
        ("detect (hog)", "mask_detect", vec!["--faces", "detect", "--detector", "hog"]),
        ("auto (hog)", "mask_auto", vec!["--faces", "auto", "--detector", "hog"]),
    ];
    if o.detectors.iter().any(|d| d == "mtcnn") {
        modes.push(("detect (mtcnn)", "mask_detect_mtcnn", vec!["--faces", "detect", "--detector", "mtcnn"]));
        modes.push(("auto (mtcnn)", "mask_auto_mtcnn", vec!["--faces", "auto", "--detector", "mtcnn"]));
    }
    if o.detectors.iter().any(|d| d == "centerface") {
        let detect = vec!["--faces", "detect", "--detector", "centerface"];
        modes.push(("detect (centerface)", "mask_detect_centerface", detect));
        // Without --detector, auto is CenterFace then the crop fit.
        modes.push(("auto (centerface)", "mask_auto_centerface", vec!["--faces", "auto"]));
    }
    modes.push(("crop", "mask_crop", vec!["--faces", "crop"]));
    let mut rows = Vec::new();
    for (mode, dir, flags) in modes {
        let out = work.join(dir);
        fresh_dir(&out)?;
        println!(
            "==> maskforge mask {} --variants correct{} -j {}",
            flags.join(" "),
            min_face_flag(o.min_face),
            o.jobs
        );
        let timed = run_timed(
            Command::new(bin)
                .arg("mask")
                .arg(&crops)
                .arg("--out")
                .arg(&out)
                .args(&flags)
                .args(["--variants", "correct", "-j", &o.jobs.to_string()])
                .args(min_face_args(o.min_face)),
        );
        let result = timed.and_then(|secs| {
            masked_sources(&out.join("annotations.csv")).map(|m| (m, secs)).map_err(|e| format!("{e:#}"))
        });
        if let Err(e) = &result {
            println!("    {mode}: FAILED: {e}");
        }
        rows.push(MaskRow { mode: mode.into(), crops: n_crops, by_label: by_label.clone(), result });
    }
    Ok(rows)
}

/// The distinct sources of `maskforge mask`'s annotations.csv with a masked
/// (not `none`) variant.
pub fn masked_source_set(annotations: &Path) -> Result<BTreeSet<String>> {
    let mut rd = csv::Reader::from_path(annotations).with_context(|| format!("read {}", annotations.display()))?;
    let col = column_finder(rd.headers()?.clone(), annotations);
    let (source, variant) = (col("source")?, col("variant")?);
    let mut seen = BTreeSet::new();
    for rec in rd.records() {
        let rec = rec?;
        if &rec[variant] != "none" {
            seen.insert(rec[source].to_string());
        }
    }
    Ok(seen)
}

/// Masked crops by label (the first folder of `source`), from annotations.csv:
/// distinct sources with a masked (not `none`) variant.
fn masked_sources(annotations: &Path) -> Result<BTreeMap<String, usize>> {
    let mut by_label = BTreeMap::new();
    for s in masked_source_set(annotations)? {
        let label = s.split('/').next().unwrap_or_default().to_string();
        *by_label.entry(label).or_insert(0) += 1;
    }
    Ok(by_label)
}

fn share(n: usize, of: usize) -> String {
    if of == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

fn print_mask_table(rows: &[MaskRow]) {
    let first = &rows[0];
    let mut header: Vec<String> = vec!["faces by".into(), "images/s".into(), format!("masked ({})", first.crops)];
    header.extend(first.by_label.iter().map(|(l, n)| format!("{l} ({n})")));
    header.push("× MaskTheFace".into());
    let mut table = Vec::new();
    let mut notes = Vec::new();
    for r in rows {
        match &r.result {
            Ok((masked, secs)) => {
                let ips = r.crops as f64 / secs;
                let mut row = vec![r.mode.clone(), format!("{ips:.1}"), share(masked.values().sum(), r.crops)];
                row.extend(r.by_label.iter().map(|(l, n)| share(masked.get(l).copied().unwrap_or(0), *n)));
                row.push(format!("{:.1}×", ips / MASKTHEFACE_IPS));
                table.push(row);
            }
            Err(e) => {
                let mut row = vec![r.mode.clone(), "FAILED".into()];
                row.resize(header.len(), "-".into());
                table.push(row);
                notes.push(format!("{} failed: {e}", r.mode));
            }
        }
    }
    table.push(vec![
        "MaskTheFace (ref.)".into(),
        format!("{MASKTHEFACE_IPS:.1}"),
        format!("{:.0}%", MASKTHEFACE_FOUND * 100.0),
        "".into(),
        "".into(),
        "1.0×".into(),
    ]);
    let last = table.len() - 1;
    table[last].resize(header.len(), String::new());
    println!(
        "crop coverage: `maskforge mask --variants correct` on {} real face crops (boxes ≥ {CROP_MIN_SIDE} px + {:.0}% margin)",
        first.crops,
        CROP_MARGIN * 100.0
    );
    print_table(&header, &table);
    println!("  masked: crops with a masked output in annotations.csv; images/s: the whole `mask` process, wall clock");
    println!(
        "  MaskTheFace (Python, dlib HOG, one core): {MASKTHEFACE_IPS} images/s on ~120 px crops, a face in {:.0}% of them",
        MASKTHEFACE_FOUND * 100.0
    );
    for n in notes {
        println!("  {n}");
    }
}

fn mask_json(r: &MaskRow) -> serde_json::Value {
    match &r.result {
        Ok((masked, secs)) => json!({
            "mode": r.mode,
            "ok": true,
            "crops": r.crops,
            "crops_by_label": r.by_label,
            "masked": masked.values().sum::<usize>(),
            "masked_by_label": masked,
            "seconds": secs,
            "images_per_s": r.crops as f64 / secs,
            "vs_masktheface": r.crops as f64 / secs / MASKTHEFACE_IPS,
        }),
        Err(e) => json!({"mode": r.mode, "ok": false, "error": e, "crops": r.crops}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(b: Bbox, label: &str) -> Truth {
        Truth { b, label: label.into() }
    }

    #[test]
    fn a_source_changed_after_the_build_is_named() {
        let root = std::env::temp_dir().join(format!("xtask-newer-{}", std::process::id()));
        let src = root.join("crates/a/src");
        std::fs::create_dir_all(&src).unwrap();
        let at = |path: &Path, secs: u64| {
            std::fs::write(path, "x").unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
        };
        let bin = root.join("maskforge");
        at(&root.join("Cargo.lock"), 1_000);
        at(&src.join("lib.rs"), 1_000);
        at(&src.join("notes.md"), 3_000);
        at(&bin, 2_000);
        assert_eq!(newer_source(&root, &bin), None, "only .rs, Cargo.toml and Cargo.lock count");
        at(&src.join("lib.rs"), 3_000);
        assert_eq!(newer_source(&root, &bin), Some(src.join("lib.rs")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        // Half overlap: 50 / 150.
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn greedy_matching_is_one_to_one_best_first() {
        let truths = [[0.0, 0.0, 10.0, 10.0], [6.0, 0.0, 16.0, 10.0]];
        // Detection 0 overlaps both truths, truth 1 best (IoU 0.67 vs 0.43);
        // detection 1 fits truth 0 exactly: truth 0 takes it first (IoU 1).
        let dets = [[4.0, 0.0, 14.0, 10.0], [0.0, 0.0, 10.0, 10.0]];
        assert_eq!(greedy_match(&dets, &truths, 0.3), vec![Some(1), Some(0)]);
        // One detection between two faces matches only one of them.
        let one = [[3.0, 0.0, 13.0, 10.0]];
        assert_eq!(greedy_match(&one, &truths, 0.3), vec![Some(0), None]);
        // Below the threshold nothing matches.
        assert_eq!(greedy_match(&[[8.0, 0.0, 18.0, 10.0]], &truths[..1], 0.3), vec![None]);
        assert_eq!(greedy_match(&[], &truths, 0.3), vec![None, None]);
    }

    #[test]
    fn score_counts_recall_by_label_and_band_and_unmatched_boxes() {
        let mut truth = BTreeMap::new();
        truth.insert(
            "a.jpg".to_string(),
            vec![
                t([0.0, 0.0, 40.0, 40.0], "mask"),        // 40 px: found
                t([100.0, 0.0, 120.0, 30.0], "mask"),     // 20 px: missed, under 32
                t([200.0, 0.0, 400.0, 150.0], "no_mask"), // 150 px: found
            ],
        );
        truth.insert("b,1%.jpg".to_string(), vec![t([0.0, 0.0, 100.0, 100.0], "no_mask")]); // missed
        let mut dets = BTreeMap::new();
        dets.insert(
            "a.jpg".to_string(),
            vec![[2.0, 2.0, 42.0, 42.0], [210.0, 10.0, 390.0, 140.0], [500.0, 500.0, 600.0, 600.0]],
        );
        dets.insert("b,1%.jpg".to_string(), vec![[60.0, 60.0, 160.0, 160.0]]); // IoU 0.09
        dets.insert("unannotated.jpg".to_string(), vec![[0.0, 0.0, 1.0, 1.0]]);
        let s = score(&truth, &dets);
        assert_eq!(s.all, Tally { hit: 2, n: 3 });
        assert_eq!(s.mask, Tally { hit: 1, n: 1 });
        assert_eq!(s.no_mask, Tally { hit: 1, n: 2 });
        assert_eq!(
            s.bands,
            [Tally { hit: 0, n: 1 }, Tally { hit: 1, n: 1 }, Tally { hit: 0, n: 1 }, Tally { hit: 1, n: 1 }]
        );
        assert_eq!((s.dets, s.unmatched()), (5, 3));
        let unmatched = [
            ("a.jpg", [500.0, 500.0, 600.0, 600.0]),
            ("b,1%.jpg", [60.0, 60.0, 160.0, 160.0]),
            ("unannotated.jpg", [0.0, 0.0, 1.0, 1.0]),
        ];
        assert_eq!(s.unmatched_boxes, unmatched.map(|(p, b)| (p.to_string(), b)).to_vec());
        assert_eq!(s.all.rate(), Some(2.0 / 3.0));
        assert_eq!(Tally::default().rate(), None);
    }

    #[test]
    fn band_edges() {
        assert_eq!([31.9, 32.0, 63.9, 64.0, 127.0, 128.0].map(band), [0, 1, 1, 2, 2, 3]);
    }
}
