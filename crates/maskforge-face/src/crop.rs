//! Face crops for classification.
//!
//! The mask stage writes crops with `--crop-size` and `predict` classifies
//! crops of faces it detects; both must cut the same way or the classifier
//! sees different framing at training and at inference time. The crop is a
//! square around the detector box, grown by a margin and rotated so the eyes
//! are level. It uses the box and the eyes only: on a masked face the
//! detector box and the eyes stay reliable while mouth and jaw landmarks do not.

use crate::{BBox, Face, Point};
use image::{Rgb, RgbImage};

/// Crops `face` from `img` into a `size`×`size` image: a square of side
/// `max(box w, h) · (1 + 2·margin)` centred on the box, rotated by the face's
/// roll. Pixels outside the source image are black (as torchvision pads):
/// smearing the border pixel across them would invent streaky texture.
pub fn crop_face(img: &RgbImage, face: &Face, size: u32, margin: f32) -> RgbImage {
    crop_box(img, &face.bbox, face.landmarks.roll(), size, margin)
}

/// The geometry of a face crop: maps points between the source image and
/// the `size`×`size` crop, so annotations (landmarks, boxes, polygons) can be
/// carried into crop coordinates with exactly the formula the pixels used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropTransform {
    center: Point,
    /// Source pixels per crop pixel.
    scale: f32,
    sin: f32,
    cos: f32,
    half: f32,
    size: u32,
}

impl CropTransform {
    /// The transform [`crop_face`] uses: [`Self::for_box`] on the face's box,
    /// rotated by its roll.
    pub fn for_face(face: &Face, size: u32, margin: f32) -> Self {
        Self::for_box(&face.bbox, face.landmarks.roll(), size, margin)
    }

    /// A square of side `max(w, h) · (1 + 2·margin)` around the box centre,
    /// rotated by `roll` (radians; non-finite counts as 0).
    pub fn for_box(bbox: &BBox, roll: f32, size: u32, margin: f32) -> Self {
        let size = size.max(1);
        let side = bbox.width().max(bbox.height()).max(1.0) * (1.0 + 2.0 * margin.max(0.0));
        let (sin, cos) = if roll.is_finite() { roll.sin_cos() } else { (0.0, 1.0) };
        CropTransform { center: bbox.center(), scale: side / size as f32, sin, cos, half: size as f32 / 2.0, size }
    }

    /// Another framing of the same face (`mask --framings`): the window
    /// `zoom` times as wide, its centre moved by `shift` (shares of this
    /// window's side, in the face's upright frame: +x right, +y down). The
    /// output size stays; a zoom below 1 cuts through the forehead or chin.
    pub fn reframed(self, zoom: f32, shift: Point) -> Self {
        let zoom = if zoom.is_finite() && zoom > 0.0 { zoom } else { 1.0 };
        let side = self.scale * self.size as f32;
        let (dx, dy) = (shift.x * side, shift.y * side);
        let center =
            Point::new(self.center.x + dx * self.cos - dy * self.sin, self.center.y + dx * self.sin + dy * self.cos);
        CropTransform { center, scale: self.scale * zoom, ..self }
    }

    /// Side of the crop, pixels.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Crop coordinates → source coordinates: `c + R(roll)·d`.
    pub fn to_source(&self, o: Point) -> Point {
        let (dx, dy) = ((o.x - self.half) * self.scale, (o.y - self.half) * self.scale);
        Point::new(self.center.x + dx * self.cos - dy * self.sin, self.center.y + dx * self.sin + dy * self.cos)
    }

    /// Source coordinates → crop coordinates (the inverse of [`Self::to_source`]).
    pub fn to_crop(&self, p: Point) -> Point {
        let (dx, dy) = (p.x - self.center.x, p.y - self.center.y);
        Point::new(
            (dx * self.cos + dy * self.sin) / self.scale + self.half,
            (-dx * self.sin + dy * self.cos) / self.scale + self.half,
        )
    }

    /// The axis-aligned box (in crop coordinates) around a mapped source box.
    pub fn box_to_crop(&self, b: &BBox) -> BBox {
        let corners = [
            Point::new(b.left, b.top),
            Point::new(b.right, b.top),
            Point::new(b.left, b.bottom),
            Point::new(b.right, b.bottom),
        ];
        BBox::enclosing(corners.map(|p| self.to_crop(p)))
    }

    /// Cuts the crop out of `img`: bilinear inside the photo, black outside.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let mut out = RgbImage::new(self.size, self.size);
        if img.width() == 0 || img.height() == 0 {
            return out;
        }
        let (w, h) = (img.width() as f32, img.height() as f32);
        for oy in 0..self.size {
            for ox in 0..self.size {
                let s = self.to_source(Point::new(ox as f32 + 0.5, oy as f32 + 0.5));
                if s.x >= 0.0 && s.y >= 0.0 && s.x <= w && s.y <= h {
                    out.put_pixel(ox, oy, sample_bilinear(img, s.x - 0.5, s.y - 0.5));
                }
            }
        }
        out
    }
}

/// As [`crop_face`], from a box and a roll angle in radians.
pub fn crop_box(img: &RgbImage, bbox: &BBox, roll: f32, size: u32, margin: f32) -> RgbImage {
    CropTransform::for_box(bbox, roll, size, margin).apply(img)
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
    fn a_reframed_crop_zooms_about_a_moved_centre_in_the_face_frame() {
        let bbox = BBox::new(10.0, 10.0, 30.0, 30.0);
        let base = CropTransform::for_box(&bbox, 0.0, 20, 0.0);
        // Half as wide, moved down by a quarter of the side: the lower half of the box.
        let closer = base.reframed(0.5, Point::new(0.0, 0.25));
        let (tl, br) = (closer.to_source(Point::new(0.0, 0.0)), closer.to_source(Point::new(20.0, 20.0)));
        assert!((tl.x - 15.0).abs() < 1e-4 && (tl.y - 20.0).abs() < 1e-4, "{tl:?}");
        assert!((br.x - 25.0).abs() < 1e-4 && (br.y - 30.0).abs() < 1e-4, "{br:?}");
        // Rolled a quarter turn, "down" in the face is -x in the photo: R(90°)·(0, 1) = (-1, 0).
        let rolled =
            CropTransform::for_box(&bbox, std::f32::consts::FRAC_PI_2, 20, 0.0).reframed(1.0, Point::new(0.0, 0.25));
        let c = rolled.to_source(Point::new(10.0, 10.0));
        assert!((c.x - 15.0).abs() < 1e-4 && (c.y - 20.0).abs() < 1e-4, "{c:?}");
        // Zoom and shift 0 change nothing; a nonsense zoom counts as 1.
        assert_eq!(base.reframed(1.0, Point::new(0.0, 0.0)), base);
        assert_eq!(base.reframed(f32::NAN, Point::new(0.0, 0.0)), base);
    }

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
    fn transform_round_trips_and_matches_the_pixels() {
        let t = CropTransform::for_box(&BBox::new(10.0, 20.0, 50.0, 70.0), 0.4, 64, 0.2);
        let p = Point::new(33.0, 41.5);
        let q = t.to_source(t.to_crop(p));
        assert!((p.x - q.x).abs() < 1e-3 && (p.y - q.y).abs() < 1e-3);
        // A single bright source pixel lands where to_crop says.
        let mut img = RgbImage::from_pixel(80, 90, Rgb([0, 0, 0]));
        img.put_pixel(33, 41, Rgb([255, 255, 255]));
        let crop = t.apply(&img);
        let c = t.to_crop(Point::new(33.5, 41.5));
        assert!(crop.get_pixel(c.x as u32, c.y as u32)[0] > 60, "{:?}", crop.get_pixel(c.x as u32, c.y as u32));
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
