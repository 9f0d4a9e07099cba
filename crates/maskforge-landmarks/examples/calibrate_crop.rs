//! Where `mask --faces crop`'s constants come from, and how well it works.
//!
//! ```text
//! cargo run --release -p maskforge-landmarks --example calibrate_crop -- MODELS PHOTO... [--neg IMAGE...]
//! ```
//!
//! 1. Finds the faces in the photos with HOG at full resolution, upsampled
//!    once, and fits the box-from-landmarks constants and the mean shape
//!    (printed as Rust, for `maskforge_face::fit`).
//! 2. Cuts face crops of each face as crop datasets do (the detector box
//!    plus 0–45% margin per side, shifted up to 5%, 120 and 250 px) and runs
//!    the crop fit on them: share accepted, landmark error against the
//!    full-photo landmarks (in eye distances), and what HOG finds in the
//!    same crops.
//! 3. Runs the crop fit on crops with no face (regions of the photos away
//!    from every face, blank, noise, a gradient, and the `--neg` images) and
//!    prints the share rejected; every decision is listed with its numbers.

use image::{Rgb, RgbImage};
use maskforge_face::crop::{crop_box, CropTransform};
use maskforge_face::fit::{self, CropLimits};
use maskforge_face::{BBox, Face, Landmarks68, Point};
use maskforge_imageio::{load_rgb, LoadLimits};
use maskforge_landmarks::{Detector, DetectorConfig};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let models = args.next().ok_or("usage: calibrate_crop MODELS PHOTO... [--neg IMAGE...]")?;
    let (mut photos, mut negs, mut in_neg) = (Vec::new(), Vec::new(), false);
    for a in args {
        if a == "--neg" {
            in_neg = true;
        } else if in_neg {
            negs.push(a);
        } else {
            photos.push(a);
        }
    }
    let mut cfg = DetectorConfig::new(&models);
    cfg.detect_max_side = None;
    cfg.upsample = 1;
    let mut hog_full = Detector::new(&cfg)?;
    let mut hog_crop = Detector::new(&DetectorConfig::new(&models))?;
    let mut faces: Vec<(RgbImage, Face)> = Vec::new();
    let mut all_boxes: Vec<(usize, Vec<BBox>)> = Vec::new();
    let mut images = Vec::new();
    for p in &photos {
        let img = load_rgb(Path::new(p), LoadLimits::default())?;
        let found = hog_full.detect(&img)?;
        println!("# {p}: {} faces", found.len());
        all_boxes.push((images.len(), found.iter().map(|f| f.bbox).collect()));
        for f in found {
            faces.push((img.clone(), f));
        }
        images.push(img);
    }
    fit_constants(&faces);
    let limits = CropLimits::default();
    positives(&faces, &hog_full, &mut hog_crop, &limits)?;
    negatives(&images, &all_boxes, &negs, &hog_full, &limits)?;
    Ok(())
}

/// Box constants and the mean shape from the HOG faces.
fn fit_constants(faces: &[(RgbImage, Face)]) {
    let (mut side, mut dx, mut dy) = (Vec::new(), Vec::new(), Vec::new());
    for (_, f) in faces {
        let inner = inner_bounds(&f.landmarks);
        let s = inner.width().max(inner.height());
        side.push(f.bbox.width().max(f.bbox.height()) / s);
        dx.push((f.bbox.center().x - inner.center().x) / (s * side.last().copied().unwrap_or(1.0)));
        dy.push((f.bbox.center().y - inner.center().y) / (s * side.last().copied().unwrap_or(1.0)));
    }
    let stats = |v: &[f32]| {
        let m = v.iter().sum::<f32>() / v.len().max(1) as f32;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len().max(1) as f32).sqrt();
        (m, sd)
    };
    println!(
        "BOX_SIDE {:?}  BOX_DX {:?}  BOX_DY {:?}  (mean, sd over {} faces)",
        stats(&side),
        stats(&dx),
        stats(&dy),
        faces.len()
    );
    // Mean shape: each face normalised (eye centres (-0.5,0),(0.5,0)), averaged.
    // Each face and its mirror image, so the mean is symmetric.
    let mut sum = [(0.0f32, 0.0f32); 68];
    for (_, f) in faces {
        let n = normalise(&f.landmarks);
        for (i, p) in n.0.iter().enumerate() {
            let m = n.0[MIRROR[i]];
            sum[i].0 += (p.x - m.x) / 2.0;
            sum[i].1 += (p.y + m.y) / 2.0;
        }
    }
    let k = faces.len().max(1) as f32;
    let mean: Vec<String> = sum.iter().map(|(x, y)| format!("({:.3}, {:.3})", x / k, y / k)).collect();
    println!("MEAN_SHAPE = [{}]", mean.join(", "));
    MEAN.with(|m| *m.borrow_mut() = std::array::from_fn(|i| (sum[i].0 / k, sum[i].1 / k)));
    let mean_lm = Landmarks68(std::array::from_fn(|i| Point::new(sum[i].0 / k, sum[i].1 / k)));
    for (_, f) in faces {
        println!(
            "  residual of a HOG face to the new mean: {:.3} (to the built-in: {:.3})",
            residual_to(&f.landmarks, &mean_lm),
            fit::shape_residual(&f.landmarks)
        );
    }
}

thread_local! {
    static MEAN: std::cell::RefCell<[(f32, f32); 68]> = const { std::cell::RefCell::new([(0.0, 0.0); 68]) };
}

/// The index of each point's mirror image (iBUG 68).
const MIRROR: [usize; 68] = [
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, // jaw
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17, // brows
    27, 28, 29, 30, 35, 34, 33, 32, 31, // nose
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, // eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, // outer lips
    64, 63, 62, 61, 60, 67, 66, 65, // inner lips
];

fn inner_bounds(lm: &Landmarks68) -> BBox {
    BBox::enclosing(lm.0[17..].iter().copied())
}

/// Eye centres to (-0.5, 0) and (0.5, 0).
fn normalise(lm: &Landmarks68) -> Landmarks68 {
    let (a, b) = (lm.right_eye_center(), lm.left_eye_center());
    let c = a.lerp(b, 0.5);
    let d = b - a;
    let len2 = (d.x * d.x + d.y * d.y).max(1e-6);
    // Rotation+scale taking d to (1, 0).
    let (ca, sa) = (d.x / len2, -d.y / len2);
    lm.map(|p| {
        let q = p - c;
        Point::new(ca * q.x - sa * q.y, sa * q.x + ca * q.y)
    })
}

fn residual_to(lm: &Landmarks68, reference: &Landmarks68) -> f32 {
    let a = normalise(lm);
    let b = normalise(reference);
    (a.0.iter().zip(&b.0).map(|(p, q)| p.distance(*q).powi(2)).sum::<f32>() / 68.0).sqrt()
}

/// Every number the crop fit's checks look at, whatever the limits.
fn metrics(
    det: &Detector,
    img: &RgbImage,
    mean: &[(f32, f32); 68],
) -> Result<(Landmarks68, String), Box<dyn std::error::Error>> {
    let full = maskforge_landmarks::to_matrix(img);
    let mut predict = |b: &BBox| det.landmarks(&full, b);
    let start = fit::start_box(img.width(), img.height());
    let (bbox, lm) = fit::refine(start, &mut predict)?;
    let residual = fit::shape_residual_to(&lm, mean);
    let frame = match fit::check_shape_and_frame(
        &lm,
        img.width(),
        img.height(),
        &CropLimits { max_shape_residual: f32::INFINITY, ..CropLimits::default() },
    ) {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string().replace("no face in the crop: ", ""),
    };
    let mut follow = 0.0;
    for b in fit::jittered(&bbox) {
        follow += fit::follow_ratio(&lm, &bbox, &predict(&b)?, &b) / 2.0;
    }
    Ok((lm, format!("residual {residual:.3} follow {follow:.2} frame {frame}")))
}

fn positives(
    faces: &[(RgbImage, Face)],
    det: &Detector,
    hog: &mut Detector,
    limits: &CropLimits,
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut n, mut accepted, mut hog_found, mut errs) = (0, 0, 0, Vec::new());
    let start = Instant::now();
    let mut fit_time = 0.0;
    for (img, f) in faces {
        for size in [120u32, 250] {
            for (k, margin) in [0.0f32, 0.1, 0.2, 0.3, 0.45].into_iter().enumerate() {
                let side = f.bbox.width().max(f.bbox.height());
                let shift = side * 0.05 * [0.0, 1.0, -1.0, 0.5, -0.5][k];
                let b = BBox::new(f.bbox.left + shift, f.bbox.top - shift, f.bbox.right + shift, f.bbox.bottom - shift);
                let crop = crop_box(img, &b, 0.0, size, margin);
                let map = CropTransform::for_box(&b, 0.0, size, margin);
                let truth = f.landmarks.map(|p| map.to_crop(p));
                n += 1;
                let t = Instant::now();
                let got = det.face_in_crop(&crop, limits)?;
                fit_time += t.elapsed().as_secs_f64();
                let (_, m) = metrics(det, &crop, &MEAN.with(|m| *m.borrow()))?;
                println!("posm size {size} margin {margin:.2}: {m}");
                if !hog.detect_boxes(&crop)?.is_empty() {
                    hog_found += 1;
                }
                match got {
                    Ok(face) => {
                        accepted += 1;
                        let e = fit::eye_distance(&truth).max(1.0);
                        let err =
                            face.landmarks.0.iter().zip(&truth.0).map(|(p, q)| p.distance(*q)).sum::<f32>() / 68.0 / e;
                        errs.push(err);
                        println!(
                            "pos size {size} margin {margin:.2}: accepted, score {:.2}, error {err:.3} eye distances",
                            face.score
                        );
                    }
                    Err(why) => println!("pos size {size} margin {margin:.2}: REJECTED {why}"),
                }
            }
        }
    }
    errs.sort_by(f32::total_cmp);
    let med = errs.get(errs.len() / 2).copied().unwrap_or(f32::NAN);
    let max = errs.last().copied().unwrap_or(f32::NAN);
    println!(
        "positives: {accepted}/{n} accepted ({:.1}%), HOG finds {hog_found}/{n} ({:.1}%); landmark error median {med:.3}, max {max:.3} eye distances; fit {:.2} ms/crop ({:.1}s total)",
        100.0 * accepted as f64 / n as f64,
        100.0 * hog_found as f64 / n as f64,
        1000.0 * fit_time / n as f64,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn negatives(
    images: &[RgbImage],
    boxes: &[(usize, Vec<BBox>)],
    negs: &[String],
    det: &Detector,
    limits: &CropLimits,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut crops: Vec<(String, RgbImage)> = Vec::new();
    for (i, bs) in boxes {
        let img = &images[*i];
        let (w, h) = (img.width() as f32, img.height() as f32);
        for side in [120.0f32, 250.0, 400.0] {
            for (fx, fy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 1.0), (0.0, 0.5), (1.0, 0.5)] {
                let (x, y) = ((w - side) * fx, (h - side) * fy);
                let b = BBox::new(x, y, x + side, y + side);
                if x < 0.0 || y < 0.0 || bs.iter().any(|f| f.expanded(0.5).iou(&b) > 0.0) {
                    continue;
                }
                crops.push((format!("region {i} {side} {fx},{fy}"), crop_box(img, &b, 0.0, 160, 0.0)));
            }
        }
    }
    crops.push(("blank".into(), RgbImage::from_pixel(160, 160, Rgb([128, 128, 128]))));
    crops.push(("white".into(), RgbImage::from_pixel(120, 120, Rgb([250, 250, 250]))));
    let mut state = 12345u64;
    crops.push((
        "noise".into(),
        RgbImage::from_fn(160, 160, |_, _| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = (state >> 56) as u8;
            Rgb([v, v / 2 + 40, 255 - v])
        }),
    ));
    crops.push(("gradient".into(), RgbImage::from_fn(160, 160, |x, y| Rgb([(x + y) as u8, x as u8, y as u8]))));
    for p in negs {
        let img = load_rgb(Path::new(p), LoadLimits::default())?;
        crops.push((p.clone(), img));
    }
    let mut rejected = 0;
    for (name, img) in &crops {
        let (_, m) = metrics(det, img, &MEAN.with(|m| *m.borrow()))?;
        println!("negm {name}: {m}");
        match det.face_in_crop(img, limits)? {
            Ok(face) => println!("neg {name}: ACCEPTED score {:.2}", face.score),
            Err(why) => {
                rejected += 1;
                println!("neg {name}: rejected {why}");
            }
        }
    }
    println!("negatives: {rejected}/{} rejected", crops.len());
    Ok(())
}
