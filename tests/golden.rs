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
        // All changed in #11: the mask takes on the photo (softness, noise, colour),
        // casts a contact shadow and lights its relief from the face's light; the
        // default draw of styles and colours is weighted (eight styles); placements
        // vary in height, reach and fit; the manifests list the new files.
        // annotations.csv, train.csv and val.csv changed in #20: `--unmasked copy`
        // writes each twin as its masked siblings are (here PNG, so
        // `unmasked/obama.png`, not the original JPEG's bytes); the pixels did not.
        // nose_exposed's pixels, annotations.csv (its polygon) and the manifests
        // (its file's bytes) changed in #20 item 5: a pulled-down mask keeps its
        // height and sags under the chin, and shows a fold under its top edge (a
        // crease, and a sheen along the doubled-over edge).
        ("correct/obama.png pixels", 0xc35e_e59a_debd_a1a8),
        ("nose_exposed/biden.png pixels", 0x1470_79ec_3675_8341),
        ("annotations.csv", 0x5eec_a282_0a48_4f3c),
        ("crop correct/obama.jpg pixels", 0x605a_8c57_4524_9f79),
        ("crop annotations.csv", 0x91a7_5b8f_1620_f46e),
        ("train.csv", 0xda67_ca07_2908_782f),
        ("val.csv", 0xe307_4575_beaa_f7de),
    ];
    let listing = got.iter().map(|(k, v)| format!("(\"{k}\", 0x{v:016x}),")).collect::<Vec<_>>().join("\n");
    assert_eq!(got, want, "golden values changed; this version's:\n{listing}");
}
