//! Contact sheets: a grid of labelled thumbnails, so a user can look at a
//! sample of outputs before generating a whole dataset. Labels are drawn in
//! the project's one font (`maskforge_draw`).

use image::{imageops, Rgb, RgbImage};
use maskforge_face::BBox;

/// One cell of a sheet.
pub struct SheetItem {
    /// The image shown (fitted into the cell).
    pub thumbnail: RgbImage,
    /// Up to two lines, split at `\n`.
    pub label: String,
}

/// Label text size in pixels (ascender to descender).
const LABEL_PX: f32 = 12.0;
/// Distance between the two label lines.
const LINE_H: u32 = 11;

/// A square `size`×`size` thumbnail around `focus` (grown by 35%), or of the
/// whole image (letterboxed) when there is no focus.
pub fn thumbnail(img: &RgbImage, focus: Option<BBox>, size: u32) -> RgbImage {
    let size = size.max(8);
    let mut out = RgbImage::from_pixel(size, size, Rgb([24, 24, 28]));
    if img.width() == 0 || img.height() == 0 {
        return out;
    }
    let region = focus.and_then(|b| {
        let b = b.expanded(0.35);
        let side = b.width().max(b.height());
        let c = b.center();
        BBox::new(c.x - side / 2.0, c.y - side / 2.0, c.x + side / 2.0, c.y + side / 2.0)
            .clip(img.width(), img.height())
    });
    let (x0, y0, x1, y1) = region.unwrap_or((0, 0, img.width(), img.height()));
    let view = imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
    let s = size as f32 / (x1 - x0).max(y1 - y0) as f32;
    let (tw, th) = (((x1 - x0) as f32 * s).round().max(1.0) as u32, ((y1 - y0) as f32 * s).round().max(1.0) as u32);
    let small = imageops::resize(&view, tw.min(size), th.min(size), imageops::FilterType::Triangle);
    imageops::overlay(&mut out, &small, ((size - small.width()) / 2) as i64, ((size - small.height()) / 2) as i64);
    out
}

/// Lays `items` out in a grid of `cols` columns of `cell`-pixel thumbnails
/// with their labels underneath.
pub fn contact_sheet(items: &[SheetItem], cols: usize, cell: u32) -> RgbImage {
    let cols = cols.max(1).min(items.len().max(1)) as u32;
    let rows = (items.len() as u32).div_ceil(cols).max(1);
    let gap = 6;
    let label_h = 2 * LINE_H + 4;
    let (cw, ch) = (cell + gap, cell + label_h + gap);
    let mut sheet = RgbImage::from_pixel(cols * cw + gap, rows * ch + gap, Rgb([245, 245, 242]));
    for (i, item) in items.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        let (x, y) = (gap + c * cw, gap + r * ch);
        let thumb = if item.thumbnail.width() != cell || item.thumbnail.height() != cell {
            thumbnail(&item.thumbnail, None, cell)
        } else {
            item.thumbnail.clone()
        };
        imageops::overlay(&mut sheet, &thumb, x as i64, y as i64);
        for (li, line) in item.label.lines().take(2).enumerate() {
            // Too long a line keeps its end, which names the file.
            let text = maskforge_draw::keep_tail(line, LABEL_PX, cell);
            let ty = y + cell + 2 + li as u32 * LINE_H;
            maskforge_draw::draw_text(&mut sheet, x as i32, ty as i32, LABEL_PX, Rgb([30, 30, 34]), &text);
        }
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_lays_out_cells_and_labels() {
        let items: Vec<SheetItem> = (0..5)
            .map(|i| SheetItem {
                thumbnail: RgbImage::from_pixel(40, 30, Rgb([i * 40, 0, 0])),
                label: format!("Class_{i}\nvery/long/path/name/{i}.jpg"),
            })
            .collect();
        let s = contact_sheet(&items, 3, 64);
        assert_eq!(s.width(), 3 * 70 + 6);
        assert_eq!(s.height(), 2 * (64 + 26 + 6) + 6);
        // Label ink below the first cell.
        let ink = (6..70).any(|x| (6 + 64 + 3..6 + 64 + 12).any(|y| s.get_pixel(x, y)[0] < 100));
        assert!(ink);
        assert_eq!(contact_sheet(&[], 4, 32).width(), 32 + 12);
    }

    #[test]
    fn thumbnail_of_a_box_outside_the_image_falls_back() {
        let img = RgbImage::from_pixel(50, 20, Rgb([200, 0, 0]));
        let t = thumbnail(&img, Some(BBox::new(-500.0, -500.0, -400.0, -400.0)), 32);
        assert_eq!(t.dimensions(), (32, 32));
        assert_eq!(t.get_pixel(16, 16), &Rgb([200, 0, 0]));
    }
}
