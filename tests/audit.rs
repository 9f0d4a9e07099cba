//! `maskforge audit` on real faces: `mask`'s own output (the unmasked twins
//! written as their masked siblings are) shows no cue but the label, and a
//! deliberately leaky copy of it (masked images re-encoded at another JPEG
//! quality; unmasked ones resized) is flagged with status 2, naming the cue.

mod common;
use common::{mask_ok, maskforge, sample_image, text};
use image::{imageops, RgbImage};
use std::path::Path;
use std::process::Output;

/// 24 source photos: six sample photos, each as is, mirrored, darker and
/// cropped, saved as JPEG.
fn sources(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let names =
        ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"];
    for name in names {
        let img = sample_image(name);
        let (w, h) = img.dimensions();
        let dark = RgbImage::from_fn(w, h, |x, y| image::Rgb(img.get_pixel(x, y).0.map(|c| (c as f32 * 0.8) as u8)));
        let cropped = imageops::crop_imm(&img, w / 10, h / 10, w * 8 / 10, h * 8 / 10).to_image();
        let stem = name.trim_end_matches(".jpg");
        for (kind, copy) in
            [("plain", img.clone()), ("mirror", imageops::flip_horizontal(&img)), ("dark", dark), ("crop", cropped)]
        {
            copy.save(dir.join(format!("{stem}_{kind}.jpg"))).unwrap();
        }
    }
}

fn audit(dataset: &Path) -> Output {
    maskforge().arg("audit").arg(dataset).output().unwrap()
}

/// Every image of `dir/class`, rewritten by `f`.
fn rewrite(dir: &Path, class: &str, f: impl Fn(&Path)) {
    for e in std::fs::read_dir(dir.join(class)).unwrap() {
        f(&e.unwrap().path());
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).into_iter().map(Result::unwrap) {
        let target = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn mask_output_is_clean_and_leaky_copies_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    sources(&photos);
    let crops = dir.path().join("crops");
    mask_ok(&photos, &crops, &["--variants", "correct", "--crop-size", "112", "--unmasked", "copy", "--seed", "2"]);
    let o = audit(&crops);
    let report = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "mask's crops flagged:\n{report}{}", text(&o.stderr));
    assert!(report.contains("verdict: clean"), "{report}");

    let whole = dir.path().join("whole");
    mask_ok(&photos, &whole, &["--variants", "correct", "--unmasked", "copy", "--seed", "2"]);
    let o = audit(&whole);
    assert_eq!(o.status.code(), Some(0), "mask's whole images flagged:\n{}", text(&o.stdout));

    // Masked crops re-encoded at quality 60: the encoding tells the classes apart.
    let requality = dir.path().join("requality");
    copy_tree(&crops, &requality);
    rewrite(&requality, "correct", |p| {
        let img = image::open(p).unwrap().to_rgb8();
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 60).encode_image(&img).unwrap();
        std::fs::write(p, bytes).unwrap();
    });
    let o = audit(&requality);
    let report = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "re-encoded set not flagged:\n{report}");
    assert!(report.contains("verdict: LEAKY: jpeg_quality"), "{report}");
    assert!(!report.contains("LEAKY: all cues"), "{report}");

    // Unmasked crops resized: the size tells the classes apart.
    let resized = dir.path().join("resized");
    copy_tree(&crops, &resized);
    rewrite(&resized, "unmasked", |p| {
        let img = image::open(p).unwrap().to_rgb8();
        imageops::resize(&img, 100, 100, imageops::FilterType::Triangle).save(p).unwrap();
    });
    let o = audit(&resized);
    let report = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "resized set not flagged:\n{report}");
    assert!(report.contains("verdict: LEAKY: "), "{report}");
}
