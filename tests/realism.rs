//! A mask follows the photo it is drawn on: on a dark, a blurred and a
//! grey-scale copy of a real sample photo, the pixels of the mask region are
//! themselves dark, soft and grey. The faces come from one `detect` run on the
//! original (given to every copy with `--landmarks`), so every copy's mask is
//! placed on the same landmarks and only the photo differs.

mod common;

use common::{mask_ok, maskforge, sample_image, text};
use image::{GrayImage, RgbImage};
use std::path::Path;

const COPIES: [&str; 4] = ["normal", "dark", "blurred", "grey"];

fn write_copies(input: &Path) {
    let img = sample_image("obama.jpg");
    let dark = RgbImage::from_fn(img.width(), img.height(), |x, y| {
        image::Rgb(img.get_pixel(x, y).0.map(|c| (c as f32 * 0.3).round() as u8))
    });
    let blurred = imageproc::filter::gaussian_blur_f32(&img, 3.0);
    let grey = image::DynamicImage::ImageLuma8(image::imageops::grayscale(&img)).to_rgb8();
    for (name, copy) in COPIES.iter().zip([&img, &dark, &blurred, &grey]) {
        std::fs::create_dir_all(input.join(name)).unwrap();
        copy.save(input.join(name).join("obama.png")).unwrap();
    }
}

/// `detect` on the original; its row given to each copy's path.
fn landmarks_for_copies(input: &Path, work: &Path) -> std::path::PathBuf {
    let det = work.join("det");
    let o = maskforge().arg("detect").arg(input.join("normal")).arg("--out").arg(&det).output().unwrap();
    assert!(o.status.success(), "detect: {}", text(&o.stderr));
    let csv = std::fs::read_to_string(det.join("landmarks.csv")).unwrap();
    let mut lines = csv.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    let row = lines.find(|l| l.starts_with("obama.png,")).expect("a face in obama.png");
    for name in COPIES {
        out += &format!("{name}/{row}\n");
    }
    let path = work.join("landmarks.csv");
    std::fs::write(&path, out).unwrap();
    path
}

/// The mask's inner region: segmentation pixels whose whole 7×7
/// neighbourhood is mask (so no skin is mixed in at the feathered edge).
fn inner(seg: &GrayImage) -> Vec<(u32, u32)> {
    let (w, h) = seg.dimensions();
    let mut pts = Vec::new();
    for y in 3..h.saturating_sub(3) {
        for x in 3..w.saturating_sub(3) {
            let all = (y - 3..=y + 3).all(|yy| (x - 3..=x + 3).all(|xx| seg.get_pixel(xx, yy)[0] == 255));
            if all {
                pts.push((x, y));
            }
        }
    }
    pts
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

fn mean_luma(img: &RgbImage, pts: &[(u32, u32)]) -> f32 {
    pts.iter().map(|&(x, y)| luma(img.get_pixel(x, y))).sum::<f32>() / pts.len() as f32
}

/// Mean absolute Laplacian of the luma: the mask's fine detail (pleats,
/// fibres, its noise), which a soft photo must soften.
fn detail(img: &RgbImage, pts: &[(u32, u32)]) -> f32 {
    let l = |x: u32, y: u32| luma(img.get_pixel(x, y));
    pts.iter().map(|&(x, y)| (4.0 * l(x, y) - l(x - 1, y) - l(x + 1, y) - l(x, y - 1) - l(x, y + 1)).abs()).sum::<f32>()
        / pts.len() as f32
}

#[test]
fn a_mask_on_a_dark_blurred_or_grey_photo_is_dark_blurred_or_grey() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_copies(&input);
    let landmarks = landmarks_for_copies(&input, tmp.path());
    let (out, seg) = (tmp.path().join("out"), tmp.path().join("seg"));
    mask_ok(
        &input,
        &out,
        &[
            "--variants",
            "correct",
            "--template",
            "surgical",
            "--colour",
            "white",
            "--landmarks",
            landmarks.to_str().unwrap(),
            "--seg-dir",
            seg.to_str().unwrap(),
        ],
    );
    // Each copy has its own path, so its own placement draw: each is measured
    // over its own mask region.
    let load = |name: &str| {
        let img = image::open(out.join("correct").join(name).join("obama.png")).unwrap().to_rgb8();
        let seg = image::open(seg.join("correct").join(name).join("obama.png")).unwrap().to_luma8();
        let pts = inner(&seg);
        assert!(pts.len() > 2000, "{name}: mask region of {} pixels", pts.len());
        (img, pts)
    };
    let ((normal, pts), (dark, pts_dark), (blurred, pts_blurred), (grey, _)) =
        (load("normal"), load("dark"), load("blurred"), load("grey"));

    // A white mask on a normal photo is bright; on the photo at 30% it is
    // dim like the skin around it, not a bright patch.
    let (l_normal, l_dark) = (mean_luma(&normal, &pts), mean_luma(&dark, &pts_dark));
    assert!(l_normal > 150.0, "white mask on the normal photo: mean luma {l_normal}");
    assert!(l_dark < 0.5 * l_normal, "on the dark photo: mean luma {l_dark} vs {l_normal}");

    // On the blurred photo, the mask's detail is softened like the photo's.
    let (d_normal, d_blurred) = (detail(&normal, &pts), detail(&blurred, &pts_blurred));
    assert!(d_blurred < 0.6 * d_normal, "detail on the blurred photo {d_blurred} vs normal {d_normal}");

    // On the grey-scale photo, the mask is grey too: no pixel has colour.
    let coloured = grey.pixels().filter(|p| p[0].abs_diff(p[1]) > 1 || p[1].abs_diff(p[2]) > 1).count();
    assert_eq!(coloured, 0, "{coloured} coloured pixels in the grey-scale output");
    // ... and the white surgical mask on the normal photo is not grey.
    let tinted =
        pts.iter().filter(|&&(x, y)| normal.get_pixel(x, y).0.iter().max() != normal.get_pixel(x, y).0.iter().min());
    assert!(tinted.count() > pts.len() / 2, "the normal photo's mask takes no tint at all");
}

/// The marker segments of a JPEG before its first scan that say how it was
/// encoded (quantisation tables, frame with its sampling factors) and what it
/// carries (APPn: EXIF, ICC, ...), as `(marker, length, hash of the payload)`.
fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, usize, u64)> {
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "not a JPEG");
    let mut segments = Vec::new();
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF && bytes[i + 1] != 0xDA {
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xDB || (0xC0..=0xC2).contains(&marker) || (0xE1..=0xEF).contains(&marker) {
            let payload = &bytes[i + 4..i + 2 + len];
            segments.push((marker, payload.len(), maskforge_mask::rng::stable_hash(payload)));
        }
        i += 2 + len;
    }
    segments
}

/// `--unmasked copy` (the default way to make an unmasked class): each twin is
/// written as its masked sibling is, so the two differ only where the mask
/// and its contact shadow are. Before, the twin kept the original's bytes:
/// another encoder, quality and metadata, a cue a model learns instead of the
/// mask (real masked photos, never re-encoded by us, then looked unmasked).
#[test]
fn unmasked_twins_differ_from_their_masked_siblings_only_where_the_mask_is() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out, seg) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("seg"));
    std::fs::create_dir_all(&input).unwrap();
    for name in ["obama.jpg", "biden.jpg", "obama2.jpg"] {
        std::fs::copy(common::samples().join(name), input.join(name)).unwrap();
    }
    let args = ["--variants", "correct,nose_exposed", "--unmasked", "copy", "--seg-dir", seg.to_str().unwrap()];
    mask_ok(&input, &out, &args);
    let mut pairs = 0;
    for name in ["obama.jpg", "biden.jpg", "obama2.jpg"] {
        let twin_bytes = std::fs::read(out.join("unmasked").join(name)).unwrap();
        let twin = image::load_from_memory(&twin_bytes).unwrap().to_rgb8();
        for variant in ["correct", "nose_exposed"] {
            let masked_bytes = std::fs::read(out.join(variant).join(name)).unwrap();
            assert_eq!(jpeg_segments(&masked_bytes), jpeg_segments(&twin_bytes), "{variant}/{name}: encoding differs");
            let masked = image::load_from_memory(&masked_bytes).unwrap().to_rgb8();
            assert_eq!(masked.dimensions(), twin.dimensions(), "{variant}/{name}");
            let region = image::open(seg.join(variant).join(name).with_extension("png")).unwrap().to_luma8();
            // The shadow reaches ~0.1 face widths past the mask; JPEG blocks are 8 px.
            let face_width = region
                .enumerate_pixels()
                .filter(|p| p.2 .0[0] > 0)
                .map(|p| p.0)
                .fold((u32::MAX, 0), |(lo, hi), x| (lo.min(x), hi.max(x)));
            let reach = (0.15 * (face_width.1 - face_width.0) as f32) as u8 + 16;
            let near = imageproc::morphology::dilate(&region, imageproc::distance_transform::Norm::LInf, reach);
            let differing = masked
                .enumerate_pixels()
                .filter(|(x, y, p)| near.get_pixel(*x, *y).0[0] == 0 && *p != twin.get_pixel(*x, *y))
                .count();
            assert_eq!(differing, 0, "{variant}/{name}: pixels away from the mask differ from the unmasked twin");
            pairs += 1;
        }
    }
    assert_eq!(pairs, 6);
}
