//! Whole-pipeline tests on generated trees.

use crate::assign::SplitMix64;
use crate::*;
use image::{Rgb, RgbImage};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn noise_image(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut rng = SplitMix64::new(seed);
    RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next_u64();
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    })
}

fn encoded(img: &RgbImage, ext: &str) -> Vec<u8> {
    maskforge_imageio::encode_image(img, Path::new(&format!("x.{ext}")), 90).unwrap()
}

/// A dataset as (relative path, content); written in any order.
type Spec = Vec<(String, Vec<u8>)>;

/// Three classes of "people" folders with 1–4 images each, plus the bad files
/// every real dataset has, and a stray file outside the class folders.
fn dataset_spec(people_per_class: usize) -> Spec {
    let mut spec = Spec::new();
    let mut rng = SplitMix64::new(1234);
    for class in ["masked", "unmasked", "incorrect"] {
        for p in 0..people_per_class {
            for i in 0..(1 + rng.below_unbiased(4)) {
                let ext = if i % 2 == 0 { "png" } else { "jpg" };
                let img =
                    noise_image(rng.next_u64(), 6 + rng.below_unbiased(6) as u32, 5 + rng.below_unbiased(6) as u32);
                spec.push((format!("{class}/p{p:03}/img{i}.{ext}"), encoded(&img, ext)));
            }
        }
    }
    let jpeg = encoded(&noise_image(5, 32, 32), "jpg");
    spec.push(("masked/p000/empty.jpg".into(), Vec::new()));
    spec.push(("unmasked/p001/notes.png".into(), b"this is text, not a PNG".to_vec()));
    spec.push(("incorrect/p002/cut.jpg".into(), jpeg[..jpeg.len() / 2].to_vec()));
    spec.push(("preview.png".into(), encoded(&noise_image(6, 4, 4), "png")));
    spec
}

fn write_spec(root: &Path, spec: &Spec, shuffle_seed: Option<u64>) {
    let mut order: Vec<usize> = (0..spec.len()).collect();
    if let Some(seed) = shuffle_seed {
        SplitMix64::new(seed).shuffle_unbiased(&mut order);
    }
    for i in order {
        let (rel, bytes) = &spec[i];
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn opts(group_by: &str) -> SplitOptions {
    SplitOptions { group_by: group_by.parse().unwrap(), ..SplitOptions::default() }
}

fn plan_with_jobs(root: &Path, options: &SplitOptions, jobs: usize) -> SplitPlan {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().unwrap();
    pool.install(|| plan_split(root, options, &())).unwrap()
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn split_of_rows(plan: &SplitPlan) -> BTreeMap<String, (Split, String)> {
    let mut m = BTreeMap::new();
    for s in Split::ALL {
        for r in &plan.rows[s.index()] {
            m.insert(r.path.clone(), (s, r.group.clone()));
        }
    }
    m
}

#[test]
fn outputs_are_byte_identical_across_jobs_creation_order_and_location() {
    let spec = dataset_spec(12);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root_a = a.path().join("data");
    let root_b = b.path().join("elsewhere/copy");
    write_spec(&root_a, &spec, None);
    write_spec(&root_b, &spec, Some(77));
    let options = SplitOptions { scan: ScanOptions { hash: true, ..ScanOptions::default() }, ..opts("parent") };

    let outs: Vec<BTreeMap<String, Vec<u8>>> = [(&root_a, 1), (&root_a, 2), (&root_b, 2), (&root_b, 1)]
        .iter()
        .enumerate()
        .map(|(i, (root, jobs))| {
            let out = a.path().join(format!("out{i}"));
            write_split(&plan_with_jobs(root, &options, *jobs), &out, None).unwrap();
            read_dir_files(&out)
        })
        .collect();
    let names: Vec<&String> = outs[0].keys().collect();
    assert_eq!(names, ["classes.csv", "failures.csv", "split.json", "stats.json", "train.csv", "val.csv"]);
    assert_eq!(outs[0], outs[1], "jobs 1 vs 2");
    assert_eq!(outs[2], outs[3], "jobs 2 vs 1 on the copy");
    for name in ["train.csv", "val.csv", "classes.csv", "failures.csv", "stats.json"] {
        assert_eq!(outs[0][name], outs[2][name], "{name}: original vs shuffled copy elsewhere");
    }
    // split.json differs only in the recorded root.
    let rec =
        |o: &BTreeMap<String, Vec<u8>>| -> serde_json::Value { serde_json::from_slice(&o["split.json"]).unwrap() };
    let (ra, mut rb) = (rec(&outs[0]), rec(&outs[2]));
    assert_eq!(Path::new(rb["dataset_root"].as_str().unwrap()), std::fs::canonicalize(&root_b).unwrap());
    rb["dataset_root"] = ra["dataset_root"].clone();
    assert_eq!(ra, rb);
    assert!(ra["input"]["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    // The header and the first line look as documented.
    let train = String::from_utf8(outs[0]["train.csv"].clone()).unwrap();
    assert!(
        train.starts_with(
            "path,class_index,class,group,bytes,sha256\nincorrect/p000/img0.png,0,incorrect,incorrect/p000,"
        ),
        "{train}"
    );
}

#[test]
fn bad_files_are_left_out_and_listed_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(4), None);
    let plan = plan_with_jobs(&root, &opts("parent"), 2);
    let failures: Vec<(&str, &str)> = plan.failures.iter().map(|f| (f.path.as_str(), f.reason.as_str())).collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(failures[0].0, "incorrect/p002/cut.jpg");
    assert!(failures[0].1.contains("truncated"), "{failures:?}");
    assert_eq!(failures[1], ("masked/p000/empty.jpg", "empty file (0 bytes)"));
    assert_eq!(failures[2], ("unmasked/p001/notes.png", "not a recognised image format"));
    let listed = split_of_rows(&plan);
    for (bad, _) in &failures {
        assert!(!listed.contains_key(*bad));
    }
    assert_eq!(plan.outside_classes, 1, "preview.png at the top is not in a class");

    // A symlink loop is reported, not followed forever; a symlinked class folder is followed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&root, root.join("masked/p001/loop")).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        write_spec(&elsewhere, &vec![("x.png".to_string(), encoded(&noise_image(8, 4, 4), "png"))], None);
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
        let plan = plan_with_jobs(&root, &opts("parent"), 2);
        assert!(
            plan.failures.iter().any(|f| f.path == "masked/p001/loop" && f.reason.contains("loop")),
            "{:?}",
            plan.failures
        );
        assert!(plan.rows.iter().flatten().any(|r| r.path == "linked/x.png" && r.class == "linked"));
        std::fs::remove_file(root.join("masked/p001/loop")).unwrap();
        std::fs::remove_file(root.join("linked")).unwrap();
    }
    let out = dir.path().join("out");
    write_split(&plan, &out, None).unwrap();
    let csv = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert!(csv.starts_with("path,reason\nincorrect/p002/cut.jpg,truncated JPEG"), "{csv}");
}

#[test]
fn no_group_crosses_splits_and_each_class_is_within_one_group_of_its_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(30), None);
    for (val, test) in [(0.2, 0.0), (0.2, 0.2)] {
        for seed in [1, 2, 3] {
            let options = SplitOptions { ratios: Ratios::new(val, test).unwrap(), seed, ..opts("parent") };
            let plan = plan_with_jobs(&root, &options, 2);
            let mut group_split: BTreeMap<String, Split> = BTreeMap::new();
            let mut largest_group: BTreeMap<String, u64> = BTreeMap::new();
            for (path, (split, group)) in split_of_rows(&plan) {
                assert_eq!(group, path.rsplit_once('/').unwrap().0);
                assert_eq!(*group_split.entry(group.clone()).or_insert(split), split, "group {group} in two splits");
                *largest_group.entry(group).or_default() += 1;
            }
            let largest = *largest_group.values().max().unwrap() as f64;
            for (c, counts) in plan.counts().iter().enumerate() {
                let total: u64 = counts.iter().sum();
                for s in Split::ALL {
                    let target = options.ratios.fractions()[s.index()] * total as f64;
                    assert!(
                        (counts[s.index()] as f64 - target).abs() <= largest,
                        "class {c} {s}: {counts:?}, target {target}, largest group {largest}"
                    );
                }
            }
        }
    }
    // One person across classes: key by the person folder, not the class.
    let plan = plan_with_jobs(&root, &opts(r"regex:^[^/]+/(p\d+)/"), 1);
    let mut person_split: BTreeMap<String, Split> = BTreeMap::new();
    for (path, (split, group)) in split_of_rows(&plan) {
        assert_eq!(group, path.split('/').nth(1).unwrap());
        assert_eq!(*person_split.entry(group).or_insert(split), split);
    }
    assert_eq!(plan.grouping.groups, 30);
}

#[test]
fn stable_keeps_every_old_assignment_when_images_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(20), None);
    let options = SplitOptions { method: Method::Stable, ratios: Ratios::new(0.25, 0.15).unwrap(), ..opts("parent") };
    let before = split_of_rows(&plan_with_jobs(&root, &options, 2));
    // New people, and new images of existing people.
    let mut more = Spec::new();
    for p in 0..25 {
        more.push((format!("masked/p{p:03}/new.png"), encoded(&noise_image(900 + p, 5, 5), "png")));
        more.push((format!("unmasked/q{p:03}/a.png"), encoded(&noise_image(950 + p, 5, 5), "png")));
    }
    write_spec(&root, &more, None);
    let after_plan = plan_with_jobs(&root, &options, 1);
    let after = split_of_rows(&after_plan);
    assert_eq!(after.len(), before.len() + more.len());
    for (path, old) in &before {
        assert_eq!(&after[path], old, "{path} moved");
    }
    let counts = after_plan.counts();
    assert!(counts.iter().map(|c| c[Split::Test.index()]).sum::<u64>() > 0);
    // Exact, by contrast, may move old images when the set changes; that is its documented trade-off.
}

/// Reference: decode each train image with the `image` crate directly and
/// compute mean and std in plain f64, two passes.
fn reference_stats(root: &Path, rows: &[ManifestRow], size: Option<u32>) -> ([f64; 3], [f64; 3], u64) {
    let images: Vec<RgbImage> = rows
        .iter()
        .map(|r| {
            let img = image::open(root.join(&r.path)).unwrap().to_rgb8();
            match size {
                Some(s) => image::imageops::resize(&img, s, s, image::imageops::FilterType::Triangle),
                None => img,
            }
        })
        .collect();
    let n: u64 = images.iter().map(|i| (i.width() * i.height()) as u64).sum();
    let mut mean = [0.0f64; 3];
    for img in &images {
        for p in img.pixels() {
            for c in 0..3 {
                mean[c] += f64::from(p[c]) / 255.0;
            }
        }
    }
    mean = mean.map(|m| m / n as f64);
    let mut var = [0.0f64; 3];
    for img in &images {
        for p in img.pixels() {
            for c in 0..3 {
                var[c] += (f64::from(p[c]) / 255.0 - mean[c]).powi(2);
            }
        }
    }
    (mean, var.map(|v| (v / n as f64).sqrt()), n)
}

#[test]
fn train_statistics_match_an_independent_f64_reference() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // Known content: per class a different colour ramp, PNG so it is lossless.
    let mut spec = Spec::new();
    for (ci, class) in ["a", "b"].iter().enumerate() {
        for i in 0..10u32 {
            let img = RgbImage::from_fn(10 + i, 7 + 2 * i, |x, y| {
                Rgb([(x * 20 + i) as u8, (y * 9 + 40 * ci as u32) as u8, if (x + y + i) % 3 == 0 { 255 } else { 17 }])
            });
            spec.push((format!("{class}/{i}.png"), encoded(&img, "png")));
        }
    }
    write_spec(&root, &spec, None);
    for size in [None, Some(8)] {
        let options = SplitOptions { scan: ScanOptions { stats_size: size, ..ScanOptions::default() }, ..opts("none") };
        let plan = plan_with_jobs(&root, &options, 2);
        let stats = plan.train_stats().unwrap();
        let train = &plan.rows[Split::Train.index()];
        let (mean, std, pixels) = reference_stats(&root, train, size);
        assert_eq!(stats.pixels, pixels);
        assert_eq!(stats.images, train.len() as u64);
        for c in 0..3 {
            assert!((stats.mean[c] - mean[c]).abs() < 1e-9, "{size:?} mean {c}: {} vs {}", stats.mean[c], mean[c]);
            assert!((stats.std[c] - std[c]).abs() < 1e-9, "{size:?} std {c}: {} vs {}", stats.std[c], std[c]);
        }
        assert_eq!(stats.class_counts, [8, 8]);
        assert_eq!(stats.class_weights, [Some(1.0), Some(1.0)]);

        // `maskforge stats train.csv` gives the same file.
        let out = dir.path().join("out");
        write_split(&plan, &out, None).unwrap();
        let set = open_manifests(&out.join("train.csv"), None).unwrap();
        let (again, failures) = manifest_stats(&set, 0, size, Default::default(), &());
        assert!(failures.is_empty());
        assert_eq!(again.to_json(), std::fs::read_to_string(out.join("stats.json")).unwrap());
    }
}

#[test]
fn bad_input_is_an_error_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(3), None);
    let check = |root: &Path, options: &SplitOptions, expect: &str| {
        let err = plan_split(root, options, &()).unwrap_err().to_string();
        assert!(err.contains(expect), "{err:?} should mention {expect:?}");
    };
    check(&root, &SplitOptions { ratios: Ratios { val: 0.6, test: 0.5 }, ..opts("none") }, "leaves nothing for train");
    check(&root, &opts("source"), "annotations.csv");
    check(&root, &opts("regex:^nomatch/(.*)"), "matches no part of");
    check(&root, &opts("regex:(unclosed"), "invalid group regex");
    check(&root.join("masked/p000/img0.png"), &opts("none"), "not a directory");
    let flat = dir.path().join("flat");
    write_spec(&flat, &vec![("x.png".to_string(), encoded(&noise_image(1, 4, 4), "png"))], None);
    check(&flat, &opts("none"), "no class folders");
    std::fs::create_dir_all(root.join("zz_empty/sub")).unwrap();
    std::fs::write(root.join("zz_empty/sub/bad.jpg"), b"").unwrap();
    std::fs::create_dir_all(root.join("aa_none")).unwrap();
    check(&root, &opts("none"), "\"aa_none\" (no image files), \"zz_empty\" (all 1 image files unusable)");
    assert!(matches!(check_output_dir(&root, &root.join("manifests")), Err(SplitError::OutputInsideRoot { .. })));
    assert!(check_output_dir(&root, &dir.path().join("manifests")).is_ok());
}

#[test]
fn group_by_source_keeps_a_photo_its_masked_versions_and_its_original_together() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("masked_out");
    let mut spec = Spec::new();
    let mut annotations = String::from("source,output,face,variant,class,template\n");
    for p in 0..40 {
        for (variant, class) in [("correct", "correct"), ("nose_exposed", "incorrect"), ("chin", "incorrect_chin")] {
            let output = format!("{class}/person{p}/photo.jpg");
            for face in 0..(1 + p % 2) {
                annotations.push_str(&format!("person{p}/photo.jpg,{output},{face},{variant},{class},t\n"));
            }
            spec.push((output, encoded(&noise_image(p * 10 + class.len() as u64, 8, 8), "jpg")));
        }
        // The original copied into `unmasked` without an annotation row.
        spec.push((format!("unmasked/person{p}/photo.jpg"), encoded(&noise_image(p, 8, 8), "jpg")));
    }
    spec.push(("unmasked/stray.png".into(), encoded(&noise_image(1, 8, 8), "png")));
    spec.push(("annotations.csv".into(), annotations.into_bytes()));
    write_spec(&root, &spec, None);
    let plan = plan_with_jobs(&root, &SplitOptions::default(), 2);
    assert_eq!(plan.options.group_by, GroupBy::Source, "auto picks source when annotations.csv exists");
    assert_eq!((plan.grouping.annotated, plan.grouping.originals_joined, plan.grouping.unannotated), (120, 40, 1));
    assert_eq!(plan.grouping.groups, 41);
    let mut group_split: BTreeMap<String, Split> = BTreeMap::new();
    for (_, (split, group)) in split_of_rows(&plan) {
        assert_eq!(*group_split.entry(group.clone()).or_insert(split), split, "{group}");
    }
    // 40 photo groups spanning all four classes: 8 of them in val.
    assert_eq!(plan.counts().iter().map(|c| c[Split::Val.index()]).collect::<Vec<_>>(), [8, 8, 8, 8]);
}

#[test]
fn materialized_tree_has_the_class_order_of_classes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let mut spec = dataset_spec(5);
    // A class with a single image: val gets none of it, yet needs the folder.
    spec.push(("Zebra/only.png".into(), encoded(&noise_image(3, 4, 4), "png")));
    write_spec(&root, &spec, None);
    let plan = plan_with_jobs(&root, &opts("parent"), 2);
    assert_eq!(plan.warnings().len(), 1, "{:?}", plan.warnings());
    let names: Vec<String> = plan.classes.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["Zebra", "incorrect", "masked", "unmasked"]);
    let target = dir.path().join("folders");
    for mode in [MaterializeMode::Symlink, MaterializeMode::Hardlink, MaterializeMode::Copy] {
        materialize(&plan, &target, mode).unwrap();
        for s in plan.splits() {
            let mut found: Vec<String> = std::fs::read_dir(target.join(s.name()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            assert_eq!(found, names, "{mode} {s}");
            for r in &plan.rows[s.index()] {
                let placed = target.join(s.name()).join(&r.path);
                assert_eq!(
                    std::fs::read(&placed).unwrap(),
                    std::fs::read(root.join(&r.path)).unwrap(),
                    "{mode} {}",
                    r.path
                );
                assert_eq!(
                    std::fs::symlink_metadata(&placed).unwrap().file_type().is_symlink(),
                    mode == MaterializeMode::Symlink
                );
            }
        }
        let leftovers: BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, BTreeSet::from(["data".to_string(), "folders".to_string()]));
    }
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), b"mine").unwrap();
    assert!(materialize(&plan, &foreign, MaterializeMode::Symlink).is_err());
    assert!(foreign.join("keep.txt").is_file());
    assert!(check_materialize_dir(&root, &root.join("x")).is_err());
    assert!(check_materialize_dir(&root, dir.path()).is_err(), "a folder holding the dataset must never be replaced");
}

#[test]
fn verify_names_every_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(6), None);
    let options = SplitOptions { scan: ScanOptions { hash: true, ..ScanOptions::default() }, ..opts("parent") };
    let plan = plan_with_jobs(&root, &options, 2);
    let out = dir.path().join("manifests");
    write_split(&plan, &out, None).unwrap();
    let set = open_manifests(&out, None).unwrap();
    let clean = verify(&set, &VerifyOptions::default(), &());
    assert!(clean.ok(), "{:?}", clean.mismatches);
    assert_eq!(clean.checked.iter().map(|c| c.1).sum::<usize>(), plan.accepted());

    let train = &plan.rows[Split::Train.index()];
    let (gone, changed, broken) = (&train[0].path, &train[1].path, &train[2].path);
    std::fs::remove_file(root.join(gone)).unwrap();
    let mut bytes = std::fs::read(root.join(changed)).unwrap();
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 1; // same size, different content
    std::fs::write(root.join(changed), &bytes).unwrap();
    std::fs::write(root.join(broken), b"garbage").unwrap();
    let report = verify(&set, &VerifyOptions::default(), &());
    let found: Vec<(String, String)> = report.mismatches.iter().map(|m| (m.path.clone(), m.problem.clone())).collect();
    assert!(found.contains(&(gone.clone(), "missing".into())), "{found:?}");
    assert!(found.iter().any(|(p, e)| p == changed && e.starts_with("sha256 mismatch")), "{found:?}");
    assert!(found.iter().any(|(p, e)| p == broken && e.starts_with("size changed")), "{found:?}");
    assert!(found.iter().any(|(p, e)| p == broken && e.starts_with("does not decode")), "{found:?}");
    assert!(report.mismatches.iter().all(|m| m.manifest == "train.csv"));

    // A hand-edited manifest that leaks a file into both sides.
    let val_csv = std::fs::read_to_string(out.join("val.csv")).unwrap();
    let train_csv = std::fs::read_to_string(out.join("train.csv")).unwrap();
    let leaked = train_csv.lines().nth(4).unwrap();
    std::fs::write(out.join("val.csv"), format!("{val_csv}{leaked}\n")).unwrap();
    let set = open_manifests(&out, None).unwrap();
    let report = verify(&set, &VerifyOptions::default(), &());
    assert!(report.mismatches.iter().any(|m| m.problem == "also listed in train.csv"), "{:?}", report.mismatches);
    assert!(report.mismatches.iter().any(|m| m.manifest == "split.json"), "fingerprint must catch the edit");
}

#[test]
fn unusable_splits_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(4), None);
    // No capture group: the class folder is the whole match, so each class is one group.
    let plan = plan_with_jobs(&root, &opts("regex:^[^/]+"), 2);
    let err = plan.check_usable(Allow::default()).unwrap_err().to_string();
    assert!(err.starts_with("val.csv would be empty: ") && err.contains("has no capture group"), "{err}");
    assert!(plan.check_usable(Allow { empty_split: true, ..Allow::default() }).is_ok());
    assert!(plan_with_jobs(&root, &opts("parent"), 2).check_usable(Allow::default()).is_ok());

    let one = dir.path().join("one");
    let spec: Spec = dataset_spec(4).into_iter().filter(|(p, _)| p.starts_with("masked/")).collect();
    write_spec(&one, &spec, None);
    let plan = plan_with_jobs(&one, &opts("parent"), 2);
    assert!(matches!(plan.check_usable(Allow::default()), Err(SplitError::SingleClass { .. })));
    assert!(plan.check_usable(Allow { single_class: true, ..Allow::default() }).is_ok());
}

#[test]
fn split_json_fingerprints_every_file_of_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(4), None);
    let out = dir.path().join("m");
    write_split(&plan_with_jobs(&root, &opts("parent"), 2), &out, None).unwrap();
    let record = contracts::SplitJson::read(&out).unwrap().expect("written");
    let contracts::SetRecord::Files(files) = &record.set else { panic!("{record:?}: not complete") };
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["classes.csv", "failures.csv", "stats.json", "train.csv", "val.csv"]);
    for (name, hash) in files {
        assert_eq!(&contracts::sha256_hex(&std::fs::read(out.join(name)).unwrap()), hash, "{name}");
    }
    assert!(contracts::SetRecord::read(&out).unwrap().problems(&out).is_empty());
    // A set mixed by hand is named by the reader of the file.
    std::fs::write(out.join("val.csv"), "path,class_index,class,group,bytes\n").unwrap();
    let err = contracts::read_checked(&out.join("val.csv")).unwrap_err().to_string();
    assert!(err.starts_with("val.csv does not match split.json"), "{err}");
    assert!(contracts::read_checked(&out.join("train.csv")).is_ok());
}

#[test]
fn train_and_verify_read_split_json_alike() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_spec(&root, &dataset_spec(4), None);
    let out = dir.path().join("m");
    let plan = plan_with_jobs(&root, &opts("parent"), 2);
    write_split(&plan, &out, None).unwrap();
    let train_root = |m: &Path| maskforge_train_core::manifest::resolve_root(m, None).map_err(|e| e.to_string());
    let verify_root = |m: &Path| open_manifests(m, None).map(|s| s.root).map_err(|e| e.to_string());

    // What split writes: every field the reader knows, the root absolute.
    let record = contracts::SplitJson::read(&out).unwrap().unwrap();
    assert_eq!(record.dataset_root.as_deref(), Some(plan.root.as_path()));
    assert_eq!(record.classes.as_deref(), Some(&["incorrect".to_string(), "masked".into(), "unmasked".into()][..]));
    let files: Vec<&str> = record.manifests.iter().flatten().map(|m| m.as_str()).collect();
    assert_eq!(files, ["train.csv", "val.csv"]);
    assert_eq!(record.input_fingerprint.as_deref(), Some(plan.fingerprint.as_str()));
    assert_eq!(train_root(&out).unwrap(), plan.root);
    assert_eq!(verify_root(&out).unwrap(), plan.root);
    assert!(verify(&open_manifests(&out, None).unwrap(), &VerifyOptions::default(), &()).ok());

    // A relative root is relative to the manifests' folder, for both
    // (wherever the command runs), and verify finds the images there.
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("split.json")).unwrap()).unwrap();
    json["dataset_root"] = "../data".into();
    std::fs::write(out.join("split.json"), json.to_string()).unwrap();
    assert_eq!(train_root(&out).unwrap(), out.join("../data"));
    assert_eq!(verify_root(&out).unwrap(), out.join("../data"));
    assert_eq!(verify_root(&out.join("train.csv")).unwrap(), out.join("../data"));
    assert!(verify(&open_manifests(&out, None).unwrap(), &VerifyOptions::default(), &()).ok());

    // A hand-made split.json of the root alone: both read it.
    let hand_made = dir.path().join("hand");
    std::fs::create_dir_all(&hand_made).unwrap();
    for name in ["classes.csv", "train.csv", "val.csv"] {
        std::fs::copy(out.join(name), hand_made.join(name)).unwrap();
    }
    std::fs::write(hand_made.join("split.json"), r#"{"dataset_root": "../data"}"#).unwrap();
    assert_eq!(train_root(&hand_made).unwrap(), hand_made.join("../data"));
    assert_eq!(verify_root(&hand_made).unwrap(), hand_made.join("../data"));

    // And both refuse the same files, with the same message.
    for (json, expect) in [
        (r#"{"root": "../data"}"#, "not \"root\": rename the key"),
        (r#"{"dataset_root": 7}"#, "\"dataset_root\" must be a path"),
        (r#"{"dataset_root": "/d", "manifests": [{"file": "../x.csv"}]}"#, "\"manifests\": "),
        (r#"{"dataset_root": "/d", "complete": "yes"}"#, "\"complete\" must be true or false"),
        ("[1]", "not a JSON object"),
    ] {
        std::fs::write(hand_made.join("split.json"), json).unwrap();
        let (t, v) = (train_root(&hand_made).unwrap_err(), verify_root(&hand_made).unwrap_err());
        assert!(t.contains(expect) && v.contains(expect), "{json}: train {t:?}, verify {v:?}");
    }
}
