//! Golden values: the pixels of one masked face, its annotations and the
//! manifests `split` makes of it, pinned as literal hashes of this version.
//! A refactoring must leave them unchanged; a deliberate change of the
//! rendering or the split updates them in the same commit, saying why.

use maskforge_mask::rng::stable_hash;
use std::path::Path;

mod common;
use common::{maskforge, samples};

fn ok(args: &[&std::ffi::OsStr]) {
    let o = maskforge().args(args).output().unwrap();
    assert!(o.status.success(), "{:?} failed: {}", args, String::from_utf8_lossy(&o.stderr));
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

fn pixels_hash(path: &Path) -> u64 {
    let img = maskforge_imageio::load_rgb(path, Default::default()).unwrap();
    stable_hash(img.as_raw())
}

fn file_hash(path: &Path) -> u64 {
    stable_hash(&std::fs::read(path).unwrap())
}

#[test]
fn masked_face_annotations_and_manifests_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["obama.jpg", "biden.jpg"] {
        std::fs::copy(samples().join(name), input.join(name)).unwrap();
    }
    let out = dir.path().join("out");
    ok(args![
        "mask",
        input,
        "--out",
        out,
        "--variants",
        "correct,nose_exposed",
        "--seed",
        "3",
        "--format",
        "png",
        "--unmasked",
        "copy"
    ]);
    let crops = dir.path().join("crops");
    ok(args![
        "mask",
        input,
        "--out",
        crops,
        "--variants",
        "correct",
        "--seed",
        "3",
        "--crop-size",
        "96",
        "--jobs",
        "1"
    ]);
    let manifests = dir.path().join("manifests");
    ok(args!["split", out, "--out", manifests, "--val", "0.5", "--seed", "5"]);

    let got = [
        ("correct/obama.png pixels", pixels_hash(&out.join("correct/obama.png"))),
        ("nose_exposed/biden.png pixels", pixels_hash(&out.join("nose_exposed/biden.png"))),
        ("annotations.csv", file_hash(&out.join("annotations.csv"))),
        ("crop correct/obama.jpg pixels", pixels_hash(&crops.join("correct/obama.jpg"))),
        ("crop annotations.csv", file_hash(&crops.join("annotations.csv"))),
        ("train.csv", file_hash(&manifests.join("train.csv"))),
        ("val.csv", file_hash(&manifests.join("val.csv"))),
    ];
    let want: [(&str, u64); 7] = [
        ("correct/obama.png pixels", 0xdbcf_ff2c_5652_dd57),
        ("nose_exposed/biden.png pixels", 0x3dfe_6d99_f64c_6a47),
        ("annotations.csv", 0x395c_9b3d_90de_9bb9),
        ("crop correct/obama.jpg pixels", 0x6670_ff36_4ec5_3d65),
        ("crop annotations.csv", 0xc6c3_18e8_7786_4c0d),
        ("train.csv", 0x6481_5b77_dfd0_f6b0),
        ("val.csv", 0x8a56_33e7_e6e8_5a9e),
    ];
    let listing = got.iter().map(|(k, v)| format!("(\"{k}\", 0x{v:016x}),")).collect::<Vec<_>>().join("\n");
    assert_eq!(got, want, "golden values changed; this version's:\n{listing}");
}
