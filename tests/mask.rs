//! End-to-end tests of `maskforge mask` and `maskforge merge` on the real
//! sample photos (PyPI face_recognition 1.3.0's test images, installed by
//! `cargo xtask setup`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::{maskforge, samples};

/// A small input tree: two single-face photos, one in a subfolder.
fn input_tree(dir: &Path) -> PathBuf {
    let s = samples();
    let root = dir.join("in");
    std::fs::create_dir_all(root.join("people")).unwrap();
    std::fs::copy(s.join("obama.jpg"), root.join("obama.jpg")).unwrap();
    std::fs::copy(s.join("biden.jpg"), root.join("people/biden.jpg")).unwrap();
    root
}

fn mask(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = maskforge().arg("mask").arg(input).arg("--out").arg(out).args(extra).output().unwrap();
    assert!(
        o.status.success(),
        "mask failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// All files under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            m.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    m
}

struct Row(csv::StringRecord);

impl Row {
    fn get(&self, name: &str, header: &csv::StringRecord) -> String {
        let i = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
        self.0[i].to_string()
    }
}

fn read_annotations(out: &Path) -> (csv::StringRecord, Vec<Row>) {
    let mut r = csv::Reader::from_path(out.join("annotations.csv")).expect("annotations.csv");
    let h = r.headers().unwrap().clone();
    let rows = r.records().map(|x| Row(x.unwrap())).collect();
    (h, rows)
}

fn read_failures(out: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(out.join("failures.csv")).expect("failures.csv");
    r.records().map(|x| x.unwrap()).map(|x| (x[0].to_string(), x[1].to_string())).collect()
}

fn patch_diff(a: &image::RgbImage, b: &image::RgbImage, x: f32, y: f32, r: i64) -> f32 {
    let mut sum = 0.0f32;
    let mut n = 0.0f32;
    for dy in -r..=r {
        for dx in -r..=r {
            let (px, py) = (x as i64 + dx, y as i64 + dy);
            if px < 0 || py < 0 || px >= a.width() as i64 || py >= a.height() as i64 {
                continue;
            }
            let (p, q) = (a.get_pixel(px as u32, py as u32), b.get_pixel(px as u32, py as u32));
            sum += (0..3).map(|k| (p[k] as f32 - q[k] as f32).abs()).sum::<f32>() / 3.0;
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

#[test]
fn nose_tip_is_covered_in_correct_and_visible_in_nose_exposed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let out = tmp.path().join("out");
    // PNG output: pixels outside the mask are exactly the decoded source.
    mask(&input, &out, &["--variants", "correct,nose_exposed,chin", "--format", "png", "--seed", "3"]);
    let (h, rows) = read_annotations(&out);
    assert_eq!(rows.len(), 2 * 3, "one row per output and face");
    for row in &rows {
        let src = image::open(input.join(row.get("source", &h))).unwrap().to_rgb8();
        let dst = image::open(out.join(row.get("output", &h))).unwrap().to_rgb8();
        assert_eq!(src.dimensions(), dst.dimensions());
        let pt = |i: usize| -> (f32, f32) {
            (row.get(&format!("x{i}"), &h).parse().unwrap(), row.get(&format!("y{i}"), &h).parse().unwrap())
        };
        let (nx, ny) = pt(30);
        let (mx, my) = pt(62);
        let nose = patch_diff(&src, &dst, nx, ny, 2);
        let mouth = patch_diff(&src, &dst, mx, my, 2);
        match row.get("variant", &h).as_str() {
            "correct" => {
                assert!(nose > 12.0, "correct: nose tip barely changed ({nose})");
                assert!(mouth > 12.0, "correct: mouth barely changed ({mouth})");
            }
            "nose_exposed" => {
                assert_eq!(nose, 0.0, "nose_exposed: pixels under the nose tip changed");
                assert!(mouth > 12.0, "nose_exposed: mouth barely changed ({mouth})");
            }
            "chin" => {
                assert_eq!(nose, 0.0, "chin: nose changed");
                assert_eq!(mouth, 0.0, "chin: mouth changed");
                let (cx, cy) = pt(8);
                assert!(patch_diff(&src, &dst, cx, cy - 3.0, 2) > 12.0, "chin: chin not covered");
            }
            v => panic!("unexpected variant {v}"),
        }
    }
}

#[test]
fn annotations_match_the_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let out = tmp.path().join("out");
    let seg = tmp.path().join("seg");
    // `bytes`: the originals' own bytes (the default `copy` re-encodes them like
    // their masked siblings: tests/realism.rs checks those pairs).
    mask(&input, &out, &["--unmasked", "bytes", "--seg-dir", seg.to_str().unwrap()]);
    let (h, rows) = read_annotations(&out);
    assert_eq!(h.len(), 14 + 136 + 1);
    assert_eq!(&h[0], "source");
    assert_eq!(&h[h.len() - 1], "mask_polygon");
    // Every listed output exists, sits in its class folder, mirrors its source path.
    let mut listed = BTreeSet::new();
    for row in &rows {
        let output = row.get("output", &h);
        let class = row.get("class", &h);
        let source = row.get("source", &h);
        assert_eq!(output, format!("{class}/{source}"), "default classes keep the relative path");
        assert!(out.join(&output).is_file(), "{output} missing");
        listed.insert(output.clone());
        let variant = row.get("variant", &h);
        if variant == "none" {
            assert_eq!(row.get("face", &h), "");
            assert_eq!(std::fs::read(out.join(&output)).unwrap(), std::fs::read(input.join(&source)).unwrap());
            continue;
        }
        assert_eq!(class, variant);
        assert_eq!(row.get("seed", &h), "0");
        assert_eq!(row.get("method", &h), "hog");
        assert!(["surgical", "n95", "n95_valve", "kn95", "cloth", "cloth_pleated", "printed", "sponge"]
            .contains(&row.get("template", &h).as_str()));
        assert!(!row.get("colour", &h).is_empty());
        let img = image::open(out.join(&output)).unwrap().to_rgb8();
        let poly: Vec<(f32, f32)> = row
            .get("mask_polygon", &h)
            .split(';')
            .map(|p| {
                let (x, y) = p.split_once(' ').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert!(poly.len() > 20);
        let left: f32 = row.get("box_left", &h).parse().unwrap();
        let right: f32 = row.get("box_right", &h).parse().unwrap();
        assert!(right > left + 100.0);
        for (x, y) in &poly {
            assert!(*x > -50.0 && *x < img.width() as f32 + 50.0 && *y > -50.0 && *y < img.height() as f32 + 50.0);
        }
        // The segmentation mask marks the polygon's centre and not the image corner.
        let segm = image::open(seg.join(&output).with_extension("png")).unwrap().to_luma8();
        assert_eq!(segm.dimensions(), img.dimensions());
        let (cx, cy) = poly.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (cx, cy) = (cx / poly.len() as f32, cy / poly.len() as f32);
        assert_eq!(segm.get_pixel(cx as u32, cy as u32)[0], 255, "{output}: centre not in segmentation");
        assert_eq!(segm.get_pixel(0, 0)[0], 0);
    }
    // And nothing unlisted was written into the class folders.
    let on_disk: BTreeSet<String> = tree(&out).into_keys().filter(|k| k.contains('/') && !k.starts_with('.')).collect();
    assert_eq!(on_disk, listed);
    assert_eq!(listed.len(), 2 * 5, "4 variants + unmasked for 2 images");
    assert!(read_failures(&out).is_empty());
    // The input tree is untouched.
    assert_eq!(tree(&input).len(), 2);
}

#[test]
fn jobs_do_not_change_a_single_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (pa, pb) = (tmp.path().join("a.png"), tmp.path().join("b.png"));
    let common = ["--mode", "random", "--variants", "correct=2,nose_exposed=1,chin=1,chin_exposed=1", "--seed", "11"];
    mask(&input, &a, &[&common[..], &["--jobs", "1", "--preview", pa.to_str().unwrap()]].concat());
    mask(&input, &b, &[&common[..], &["--jobs", "2", "--preview", pb.to_str().unwrap()]].concat());
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs between --jobs 1 and --jobs 2");
    }
    assert_eq!(std::fs::read(pa).unwrap(), std::fs::read(pb).unwrap(), "preview sheets differ");
    // Random mode: one output per image.
    assert_eq!(ta.keys().filter(|k| k.contains('/')).count(), 2);
}

#[test]
fn resume_after_a_partial_or_killed_run_gives_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let s = samples();
    for name in ["obama2.jpg", "obama3.jpg"] {
        std::fs::copy(s.join(name), input.join(name)).unwrap();
    }
    let fresh = tmp.path().join("fresh");
    mask(&input, &fresh, &["--jobs", "2"]);

    // A run cut short by --limit, then finished.
    let partial = tmp.path().join("partial");
    mask(&input, &partial, &["--limit", "2"]);
    let (_, rows) = read_annotations(&partial);
    assert_eq!(rows.iter().map(|r| r.0[0].to_string()).collect::<BTreeSet<_>>().len(), 2);
    let o = mask(&input, &partial, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 processed now, 2 already done"), "{stdout}");
    assert_eq!(tree(&fresh), tree(&partial));

    // A finished folder re-run with other settings is refused.
    let o = maskforge()
        .args(["mask", input.to_str().unwrap(), "--out", fresh.to_str().unwrap(), "--seed", "5"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("seed"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Journal lines written so far (complete lines only).
fn journal_lines(out: &Path) -> usize {
    std::fs::read(out.join(".mask-journal.jsonl")).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

#[test]
fn kill_mid_run_then_resume_recovers_a_torn_journal_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let s = samples();
    const IMAGES: usize = 16;
    for i in 0..IMAGES {
        let name = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"][i % 4];
        std::fs::copy(s.join(name), input.join(format!("p{i:02}.jpg"))).unwrap();
    }
    let fresh = tmp.path().join("fresh");
    mask(&input, &fresh, &["--variants", "correct"]);

    let killed = tmp.path().join("killed");
    let mut child = maskforge()
        .args([
            "mask",
            input.to_str().unwrap(),
            "--out",
            killed.to_str().unwrap(),
            "--jobs",
            "1",
            "--variants",
            "correct",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill after two journalled images: mid-run by construction, whatever
    // the machine's speed (model loading alone can take seconds).
    let started = std::time::Instant::now();
    while journal_lines(&killed) < 2 && started.elapsed().as_secs() < 300 {
        assert!(child.try_wait().unwrap().is_none(), "mask ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = journal_lines(&killed);
    assert!((2..IMAGES).contains(&done), "kill did not land mid-run: {done} of {IMAGES} journalled");
    assert!(!killed.join("annotations.csv").exists(), "the killed run finished");

    // As if the kill had hit mid-write: a torn journal line, and a temporary
    // file of a dead process on this host.
    let mut journal = std::fs::OpenOptions::new().append(true).open(killed.join(".mask-journal.jsonl")).unwrap();
    std::io::Write::write_all(&mut journal, b"{\"source\":\"p15.jpg\",\"outp").unwrap();
    drop(journal);
    let live = maskforge_imageio::temp_path_for(&killed.join("correct/p00.jpg"), "0");
    let dead = live.to_string_lossy().replace(&format!("~{}.", std::process::id()), "~4194303.");
    std::fs::create_dir_all(killed.join("correct")).unwrap();
    std::fs::write(&dead, b"half").unwrap();

    let o = mask(&input, &killed, &["--variants", "correct"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&format!("({} processed now, {done} already done)", IMAGES - done)), "{stdout}");
    let t = tree(&killed);
    assert!(t.keys().all(|k| !k.ends_with(".tmp") && !k.contains("journal")), "leftovers: {:?}", t.keys());
    assert_eq!(tree(&fresh), t);
}

#[test]
fn bad_inputs_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    std::fs::write(input.join("empty.jpg"), b"").unwrap();
    std::fs::write(input.join("notes.jpg"), b"this is a text file, not a photo\n").unwrap();
    let bytes = std::fs::read(samples().join("obama2.jpg")).unwrap();
    std::fs::write(input.join("people/truncated.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    // A photo without a face: a flat grey picture.
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128])).save(input.join("wall.png")).unwrap();
    let out = tmp.path().join("out");
    mask(&input, &out, &["--variants", "correct"]);
    let f = read_failures(&out);
    assert_eq!(
        f.keys().cloned().collect::<Vec<_>>(),
        ["empty.jpg", "notes.jpg", "people/truncated.jpg", "wall.png"],
        "{f:?}"
    );
    assert!(f["empty.jpg"].contains("empty"), "{f:?}");
    assert!(f["wall.png"].contains("no face"), "{f:?}");
    let (h, rows) = read_annotations(&out);
    let sources: BTreeSet<String> = rows.iter().map(|r| r.get("source", &h)).collect();
    assert_eq!(sources.into_iter().collect::<Vec<_>>(), ["obama.jpg", "people/biden.jpg"]);
}

#[test]
fn refuses_an_output_folder_inside_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let before = tree(&input);
    for out in [input.join("masked"), input.join("people/../x")] {
        let o = maskforge().arg("mask").arg(&input).arg("--out").arg(&out).output().unwrap();
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("inside the input"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Nor an input inside the output (class folders could land in it).
    let o = maskforge().arg("mask").arg(&input).arg("--out").arg(tmp.path()).output().unwrap();
    assert!(!o.status.success());
    assert_eq!(tree(&input), before, "the input tree changed");
}

#[test]
fn class_map_crops_shards_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let args = [
        "--variants",
        "correct,nose_exposed,chin",
        "--class-map",
        "correct=masked,nose_exposed=incorrect,chin=incorrect,unmasked=plain",
        "--unmasked",
        "copy",
        "--crop-size",
        "160",
    ];
    let whole = tmp.path().join("whole");
    mask(&input, &whole, &args);
    let t = tree(&whole);
    for f in [
        "masked/obama.jpg",
        "incorrect/obama__nose_exposed.jpg",
        "incorrect/obama__chin.jpg",
        "plain/people/biden.jpg",
        "incorrect/people/biden__chin.jpg",
    ] {
        assert!(t.contains_key(f), "{f} missing: {:?}", t.keys().collect::<Vec<_>>());
    }
    let crop = image::load_from_memory(&t["masked/obama.jpg"]).unwrap();
    assert_eq!((crop.width(), crop.height()), (160, 160));
    // Landmarks are in crop coordinates.
    let (h, rows) = read_annotations(&whole);
    for r in &rows {
        let x: f32 = r.get("x30", &h).parse().unwrap();
        let y: f32 = r.get("y30", &h).parse().unwrap();
        assert!((40.0..120.0).contains(&x) && (40.0..130.0).contains(&y), "nose tip at {x},{y} in a 160 crop");
    }

    // Two shards in two folders, merged, equal the single run.
    let (s1, s2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    mask(&input, &s1, &[&args[..], &["--shard", "1/2"]].concat());
    mask(&input, &s2, &[&args[..], &["--shard", "2/2"]].concat());
    assert!(s1.join("annotations.shard-1-of-2.csv").is_file());
    let o = maskforge().arg("merge").arg(&s1).arg("--from").arg(&s2).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = tree(&s1);
    for (k, v) in &t {
        assert!(merged.get(k) == Some(v), "{k} differs after merge");
    }
}

#[test]
fn preview_only_writes_just_the_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let sheet = tmp.path().join("sheet.png");
    let o = maskforge()
        .arg("mask")
        .arg(&input)
        .args(["--preview-only", "--preview", sheet.to_str().unwrap(), "--preview-count", "4"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&sheet).unwrap();
    assert!(img.width() > 300 && img.height() > 300);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2, "only the input and the sheet");
}

/// Every face in the sample photos is large; the summary says which
/// `--min-face` would detect on a smaller copy, and that value finds the
/// same faces (and earns no further tip).
#[test]
fn a_run_of_large_faces_suggests_a_min_face_that_finds_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg"] {
            std::fs::copy(samples().join(name), root.join(sub).join(name)).unwrap();
        }
    }
    let stdout = |o: Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let faces_masked = |text: &str| text.split(", ").find_map(|p| p.strip_suffix(" faces masked")).map(str::to_owned);

    let first = stdout(mask(&root, &dir.path().join("auto"), &["--variants", "correct"]));
    let tip = first.lines().find(|l| l.contains("tip:")).unwrap_or_else(|| panic!("no tip in:\n{first}"));
    let suggested: u32 = tip.split("--min-face ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    let smallest: f32 = tip.split("was ").nth(1).and_then(|t| t.split(" px").next()).unwrap().parse().unwrap();
    assert!(suggested >= 120 && (suggested as f32) <= smallest * 0.75, "{tip}");

    let min_face = suggested.to_string();
    let second = stdout(mask(&root, &dir.path().join("raised"), &["--variants", "correct", "--min-face", &min_face]));
    assert_eq!(faces_masked(&first), Some("10".into()), "{first}");
    assert_eq!(faces_masked(&second), faces_masked(&first), "{second}");
    assert!(!second.contains("tip:"), "{second}");
}

/// Template rasters cached by one run are read by the next (the files are
/// not written again), and outputs are the same bytes with the cache, from
/// the cache and without it.
#[test]
fn the_raster_cache_is_reused_and_never_changes_an_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_tree(tmp.path());
    let cache = tmp.path().join("cache");
    let run = |out: &str, cache_setting: &Path| {
        let out = tmp.path().join(out);
        let o = maskforge()
            .env("MASKFORGE_CACHE", cache_setting)
            .args(["mask", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--seed", "5"])
            .args(["--variants", "correct,nose_exposed,chin_exposed"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        tree(&out)
    };
    let rasters = || -> BTreeMap<String, std::time::SystemTime> {
        std::fs::read_dir(cache.join("templates"))
            .map(|d| {
                d.map(|e| e.unwrap())
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().modified().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    };

    let first = run("first", &cache);
    let stored = rasters();
    assert!(!stored.is_empty() && stored.keys().all(|k| k.ends_with(".raster")), "{stored:?}");
    let second = run("second", &cache);
    assert_eq!(rasters(), stored, "the second run rendered again instead of reading the cache");
    let uncached = run("uncached", Path::new("off"));
    for other in [&second, &uncached] {
        assert_eq!(first.keys().collect::<Vec<_>>(), other.keys().collect::<Vec<_>>());
        for (k, v) in &first {
            assert!(v == &other[k], "{k} differs with the raster cache");
        }
    }
}

/// `--draws 3`: three masked outputs per face and variant, each its own draw
/// (template, colour, placement), the first exactly a single draw's output,
/// and `split` keeps all of them with their unmasked twin in one group.
#[test]
fn draws_give_independent_masks_of_one_source_in_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["obama.jpg", "biden.jpg"] {
        std::fs::copy(samples().join(name), input.join(name)).unwrap();
    }
    let common = ["--variants", "correct", "--crop-size", "96", "--unmasked", "copy", "--seed", "4"];
    let (one, three) = (dir.path().join("one"), dir.path().join("three"));
    mask(&input, &one, &common);
    mask(&input, &three, &[&common[..], &["--draws", "3"]].concat());
    let files = tree(&three);
    for name in ["obama", "biden"] {
        let draws: Vec<&Vec<u8>> = ["", "__draw1", "__draw2"]
            .iter()
            .map(|d| files.get(&format!("correct/{name}{d}.jpg")).unwrap_or_else(|| panic!("{name}{d} missing")))
            .collect();
        assert_eq!(*draws[0], std::fs::read(one.join(format!("correct/{name}.jpg"))).unwrap(), "first draw");
        assert!(draws[0] != draws[1] && draws[1] != draws[2] && draws[0] != draws[2], "{name}: draws repeat");
    }
    assert!(!files.contains_key("unmasked/obama__draw1.jpg"), "one unmasked twin per face, not per draw");
    // The annotation rows of one face: three different draws of template and colour.
    let csv = String::from_utf8(files["annotations.csv"].clone()).unwrap();
    let looks: BTreeSet<String> = csv
        .lines()
        .filter(|l| l.starts_with("obama.jpg,correct/"))
        .map(|l| l.split(',').skip(5).take(2).collect::<Vec<_>>().join(","))
        .collect();
    assert!(looks.len() >= 2, "draws share template and colour: {looks:?}");
    let manifests = dir.path().join("manifests");
    let o = maskforge().arg("split").arg(&three).arg("--out").arg(&manifests).args(["--val", "0.5"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for split in ["train.csv", "val.csv"] {
        let text = std::fs::read_to_string(manifests.join(split)).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            groups.entry(f[3].to_string()).or_default().insert(format!("{split}:{}", f[0]));
        }
    }
    assert_eq!(groups.len(), 2, "{groups:?}");
    for members in groups.values() {
        assert_eq!(members.len(), 4, "three draws and the twin: {members:?}");
        let split_of = |m: &String| m.split(':').next().unwrap().to_string();
        assert_eq!(members.iter().map(split_of).collect::<BTreeSet<_>>().len(), 1, "a group spans both splits");
    }
}
