//! Face crops for classification.
//!
//! The mask stage writes crops with `--crop-size` and `predict` classifies
//! crops of faces it detects; both must cut the same way or the classifier
//! sees different framing at training and at inference time. The crop is a
//! square around the detector box, grown by a margin and rotated so the eyes
//! are level. It uses the box and the eyes only: on a masked face the
//! detector box and the eyes stay reliable while mouth and jaw landmarks do not.

use crate::{BBox, Face};
use image::{Rgb, RgbImage};

/// Crops `face` from `img` into a `size`×`size` image: a square of side
/// `max(box w, h) · (1 + 2·margin)` centred on the box, rotated by the face's
/// roll. Pixels outside the source image are black (as torchvision pads):
/// smearing the border pixel across them would invent streaky texture.
pub fn crop_face(img: &RgbImage, face: &Face, size: u32, margin: f32) -> RgbImage {
    crop_box(img, &face.bbox, face.landmarks.roll(), size, margin)
}

/// As [`crop_face`], from a box and a roll angle in radians.
pub fn crop_box(img: &RgbImage, bbox: &BBox, roll: f32, size: u32, margin: f32) -> RgbImage {
    let size = size.max(1);
    let mut out = RgbImage::new(size, size);
    if img.width() == 0 || img.height() == 0 {
        return out;
    }
    let c = bbox.center();
    let side = bbox.width().max(bbox.height()).max(1.0) * (1.0 + 2.0 * margin.max(0.0));
    let scale = side / size as f32; // source pixels per output pixel
    let (sin, cos) = if roll.is_finite() { roll.sin_cos() } else { (0.0, 1.0) };
    let half = size as f32 / 2.0;
    for oy in 0..size {
        for ox in 0..size {
            // Output pixel centre relative to the crop centre, in source units,
            // rotated by the roll so an upright crop comes out of a tilted face.
            let dx = (ox as f32 + 0.5 - half) * scale;
            let dy = (oy as f32 + 0.5 - half) * scale;
            let sx = c.x + dx * cos - dy * sin;
            let sy = c.y + dx * sin + dy * cos;
            let inside = sx >= 0.0 && sy >= 0.0 && sx <= img.width() as f32 && sy <= img.height() as f32;
            if inside {
                out.put_pixel(ox, oy, sample_bilinear(img, sx - 0.5, sy - 0.5));
            }
        }
    }
    out
}

/// Bilinear sample at continuous pixel coordinates, clamped to the border.
pub fn sample_bilinear(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let w = img.width() as i64;
    let h = img.height() as i64;
    let x = if x.is_finite() { x } else { 0.0 };
    let y = if y.is_finite() { y } else { 0.0 };
    let x0f = x.floor();
    let y0f = y.floor();
    let fx = x - x0f;
    let fy = y - y0f;
    let clamp = |v: i64, hi: i64| v.clamp(0, hi - 1) as u32;
    let x0 = clamp(x0f as i64, w);
    let x1 = clamp(x0f as i64 + 1, w);
    let y0 = clamp(y0f as i64, h);
    let y1 = clamp(y0f as i64 + 1, h);
    let p00 = img.get_pixel(x0, y0).0;
    let p10 = img.get_pixel(x1, y0).0;
    let p01 = img.get_pixel(x0, y1).0;
    let p11 = img.get_pixel(x1, y1).0;
    let mut px = [0u8; 3];
    for k in 0..3 {
        let top = p00[k] as f32 * (1.0 - fx) + p10[k] as f32 * fx;
        let bottom = p01[k] as f32 * (1.0 - fx) + p11[k] as f32 * fx;
        px[k] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(px)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrotated_crop_of_a_box_reproduces_the_pixels() {
        let img = RgbImage::from_fn(40, 40, |x, y| Rgb([x as u8 * 5, y as u8 * 5, 7]));
        let bbox = BBox::new(10.0, 10.0, 30.0, 30.0);
        let crop = crop_box(&img, &bbox, 0.0, 20, 0.0);
        assert_eq!(crop.get_pixel(0, 0), img.get_pixel(10, 10));
        assert_eq!(crop.get_pixel(19, 5), img.get_pixel(29, 15));
    }

    #[test]
    fn box_outside_the_image_is_black_there_and_never_panics() {
        let img = RgbImage::from_pixel(10, 10, Rgb([9, 9, 9]));
        let crop = crop_box(&img, &BBox::new(-54.0, -20.0, 5.0, 30.0), 0.3, 16, 0.2);
        assert!(crop.pixels().all(|p| *p == Rgb([9, 9, 9]) || *p == Rgb([0, 0, 0])));
        assert!(crop.pixels().any(|p| *p == Rgb([9, 9, 9])));
        assert_eq!(crop.get_pixel(0, 0), &Rgb([0, 0, 0]));
        let crop = crop_box(&img, &BBox::new(f32::NAN, 0.0, 5.0, 5.0), f32::NAN, 4, 0.0);
        assert_eq!(crop.dimensions(), (4, 4));
    }

    #[test]
    fn roll_rotates_the_crop_upright() {
        // A bright dot to the face's right of centre along a 90° roll lands below the centre
        // in the source image; the crop must bring it back to the right.
        let mut img = RgbImage::from_pixel(41, 41, Rgb([0, 0, 0]));
        img.put_pixel(20, 30, Rgb([255, 255, 255]));
        let bbox = BBox::new(0.0, 0.0, 41.0, 41.0);
        let crop = crop_box(&img, &bbox, std::f32::consts::FRAC_PI_2, 41, 0.0);
        assert!(crop.get_pixel(30, 20)[0] > 200, "{:?}", crop.get_pixel(30, 20));
    }
}
