//! Text on images, in the project's one font: DejaVu Sans, embedded in the
//! binary by the `dejavu` crate, rasterised by `ab_glyph` and drawn with
//! `imageproc`'s anti-aliased `draw_text_mut`.
//!
//! Embedded so that rendering never depends on system fonts (CI machines
//! and containers often have none) and gives the same pixels everywhere.
//! Used for contact-sheet labels (`maskforge-mask`), the labels of
//! `curves.png` (`maskforge-train-core`'s plotters backend draws its text
//! with [`coverage`]) and `predict`'s annotated photos.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::sync::OnceLock;

/// The font, parsed once.
pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // The bytes are compiled in and tested below: a parse failure is a
    // broken build, never a property of the input.
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded DejaVu Sans parses"))
}

/// Width and height in pixels of `text` on one line at `size` pixels (the
/// height from the highest ascender to the lowest descender).
pub fn text_size(text: &str, size: f32) -> (u32, u32) {
    let (w, _) = imageproc::drawing::text_size(PxScale::from(size), font(), text);
    (w, line_height(size))
}

/// Height in pixels of a line of text at `size`.
pub fn line_height(size: f32) -> u32 {
    font().as_scaled(PxScale::from(size)).height().ceil() as u32
}

/// Draws `text` on one line with the top of its line box at `(x, y)`,
/// anti-aliased; pixels outside the image are clipped.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, size: f32, color: Rgb<u8>, text: &str) {
    imageproc::drawing::draw_text_mut(img, color, x, y, PxScale::from(size), font(), text);
}

/// How much of each pixel `text` covers (0 to 255), in an image of its
/// [`text_size`]: for drawing it onto other surfaces with their own blending.
pub fn coverage(text: &str, size: f32) -> GrayImage {
    let (w, h) = text_size(text, size);
    let mut mask = GrayImage::new(w, h);
    // On black, drawing white leaves exactly the coverage in each pixel.
    imageproc::drawing::draw_text_mut(&mut mask, Luma([255]), 0, 0, PxScale::from(size), font(), text);
    mask
}

/// `text` if it fits in `max_width` pixels at `size`, else `..` and as much
/// of its end as fits (for paths, whose end names the file).
pub fn keep_tail(text: &str, size: f32, max_width: u32) -> String {
    if text_size(text, size).0 <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // The shortest cut that fits, found by bisection over the dropped prefix.
    let (mut lo, mut hi) = (1, chars.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if text_size(&format!("..{}", chars[mid..].iter().collect::<String>()), size).0 <= max_width {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    format!("..{}", chars[lo..].iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_draws_clipped_text() {
        assert!(font().glyph_id('a').0 != 0 && font().glyph_id('é').0 != 0);
        let mut img = RgbImage::from_pixel(60, 20, Rgb([255, 255, 255]));
        draw_text(&mut img, 1, 2, 12.0, Rgb([0, 0, 0]), "ok 0.97");
        let ink = img.pixels().filter(|p| p.0[0] < 100).count();
        assert!(ink > 20, "{ink}");
        // Off the image, or empty: no panic.
        draw_text(&mut img, -40, 15, 30.0, Rgb([0, 255, 0]), "clipped ~");
        draw_text(&mut img, 0, 0, 12.0, Rgb([0, 255, 0]), "");
        let (w, h) = text_size("masked", 12.0);
        assert!((30..60).contains(&w) && (12..=15).contains(&h), "{w}x{h}");
        assert!(text_size("mmmm", 12.0).0 > text_size("iiii", 12.0).0, "proportional");
        let mask = coverage("val", 15.0);
        assert_eq!(mask.dimensions(), text_size("val", 15.0));
        assert!(mask.pixels().any(|p| p.0[0] > 240) && mask.pixels().any(|p| p.0[0] == 0));
    }

    #[test]
    fn long_text_keeps_its_tail() {
        assert_eq!(keep_tail("short.jpg", 12.0, 200), "short.jpg");
        let cut = keep_tail("very/long/path/to/the/photo_0042.jpg", 12.0, 100);
        assert!(cut.starts_with("..") && cut.ends_with("0042.jpg"), "{cut}");
        assert!(text_size(&cut, 12.0).0 <= 100, "{cut}");
        // One character more would not fit.
        let longer = format!("..{}", &"very/long/path/to/the/photo_0042.jpg"[36 - cut.len() + 1..]);
        assert!(text_size(&longer, 12.0).0 > 100, "{longer}");
    }
}
