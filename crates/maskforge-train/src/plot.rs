//! `curves.png`: loss and accuracy per epoch, train against val (the plots
//! of seeds 000 and 002), drawn with imageproc and the built-in font.

use crate::font::{draw_text, text_height, text_width};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_line_segment_mut};
use imageproc::rect::Rect;

const BG: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([60, 60, 60]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
pub const TRAIN_COLOR: Rgb<u8> = Rgb([31, 119, 180]);
pub const VAL_COLOR: Rgb<u8> = Rgb([255, 127, 14]);

/// One line of a panel: `(epoch, value)` points.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: Rgb<u8>,
    pub points: Vec<(f64, f64)>,
}

/// The two panels, loss and accuracy, for per-epoch values.
pub fn render_curves(epochs: &[usize], train_loss: &[f64], val_loss: &[f64], train_acc: &[f64], val_acc: &[f64]) -> RgbImage {
    let (w, h) = (1000u32, 420u32);
    let mut img = RgbImage::from_pixel(w, h, BG);
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        epochs.iter().zip(v).filter(|(_, y)| y.is_finite()).map(|(&e, &y)| (e as f64, y)).collect()
    };
    let loss = [
        Series { label: "train", color: TRAIN_COLOR, points: pts(train_loss) },
        Series { label: "val", color: VAL_COLOR, points: pts(val_loss) },
    ];
    let acc = [
        Series { label: "train", color: TRAIN_COLOR, points: pts(train_acc) },
        Series { label: "val", color: VAL_COLOR, points: pts(val_acc) },
    ];
    draw_panel(&mut img, (0, 0, w / 2, h), "loss", &loss, None);
    draw_panel(&mut img, (w / 2, 0, w / 2, h), "accuracy", &acc, Some((0.0, 1.0)));
    img
}

/// A line chart in the rectangle `(x, y, w, h)` of `img`. `fixed` pins the
/// y range (accuracy), else it is fitted to the data.
pub fn draw_panel(img: &mut RgbImage, area: (u32, u32, u32, u32), title: &str, series: &[Series], fixed: Option<(f64, f64)>) {
    let (ax, ay, aw, ah) = area;
    let scale = 2;
    let left = ax as f32 + 70.0;
    let right = (ax + aw) as f32 - 20.0;
    let top = ay as f32 + 40.0;
    let bottom = (ay + ah) as f32 - 50.0;

    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0f64, f64::max).max(2.0);
    let x_min = 1.0;
    let (mut y_min, mut y_max) = match fixed {
        Some(r) => r,
        None => {
            let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() && hi.is_finite() {
                (lo.min(0.0).max(lo - (hi - lo) * 0.1), hi + (hi - lo).max(1e-3) * 0.1)
            } else {
                (0.0, 1.0)
            }
        }
    };
    if y_max - y_min < 1e-9 {
        y_max += 0.5;
        y_min -= 0.5;
    }
    let px = |x: f64| left + ((x - x_min) / (x_max - x_min)) as f32 * (right - left);
    let py = |y: f64| bottom - ((y - y_min) / (y_max - y_min)) as f32 * (bottom - top);

    // Grid and y labels.
    let ticks = 5;
    for i in 0..=ticks {
        let y = y_min + (y_max - y_min) * i as f64 / ticks as f64;
        let yy = py(y);
        draw_line_segment_mut(img, (left, yy), (right, yy), GRID);
        let label = format_tick(y, y_max - y_min);
        let tw = text_width(&label, 1) as f32;
        draw_text(img, (left - 8.0 - tw) as i64, (yy - 3.0) as i64, &label, 1, AXIS);
    }
    // X ticks at whole epochs, at most ~10 of them.
    let span = (x_max - x_min).round() as usize;
    let step = span.div_ceil(10).max(1);
    let mut e = 1usize;
    while e as f64 <= x_max + 1e-9 {
        let xx = px(e as f64);
        draw_line_segment_mut(img, (xx, bottom), (xx, bottom + 4.0), AXIS);
        let label = e.to_string();
        let tw = text_width(&label, 1) as f32;
        draw_text(img, (xx - tw / 2.0) as i64, (bottom + 8.0) as i64, &label, 1, AXIS);
        e += step;
    }
    // Axes.
    draw_line_segment_mut(img, (left, top), (left, bottom), AXIS);
    draw_line_segment_mut(img, (left, bottom), (right, bottom), AXIS);
    // Titles.
    let tw = text_width(title, scale) as f32;
    draw_text(img, ((left + right) / 2.0 - tw / 2.0) as i64, (ay + 12) as i64, title, scale, AXIS);
    let xl = "epoch";
    let tw = text_width(xl, 1) as f32;
    draw_text(img, ((left + right) / 2.0 - tw / 2.0) as i64, (bottom + 24.0) as i64, xl, 1, AXIS);

    // Lines (2 px) and points.
    for s in series {
        for w in s.points.windows(2) {
            let (a, b) = ((px(w[0].0), py(w[0].1)), (px(w[1].0), py(w[1].1)));
            for d in [-0.5f32, 0.5] {
                draw_line_segment_mut(img, (a.0, a.1 + d), (b.0, b.1 + d), s.color);
            }
        }
        for p in &s.points {
            draw_filled_circle_mut(img, (px(p.0) as i32, py(p.1) as i32), 3, s.color);
        }
    }
    // Legend, top right.
    let mut ly = top as i32 + 8;
    for s in series {
        let lx = right as i32 - 90;
        draw_filled_rect_mut(img, Rect::at(lx, ly).of_size(14, 4), s.color);
        draw_text(img, (lx + 20) as i64, (ly - 1) as i64, s.label, 1, AXIS);
        ly += text_height(1) as i32 + 8;
    }
}

fn format_tick(v: f64, span: f64) -> String {
    if span >= 10.0 {
        format!("{v:.0}")
    } else if span >= 1.0 {
        format!("{v:.1}")
    } else if span >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lines_in_both_colours() {
        let img = render_curves(&[1, 2, 3], &[1.0, 0.6, 0.4], &[1.1, 0.8, f64::NAN], &[0.5, 0.7, 0.9], &[0.4, 0.6, 0.8]);
        assert_eq!(img.dimensions(), (1000, 420));
        let count = |c: Rgb<u8>| img.pixels().filter(|p| **p == c).count();
        assert!(count(TRAIN_COLOR) > 100 && count(VAL_COLOR) > 100);
        // One epoch only, constant values: still draws without dividing by zero.
        let one = render_curves(&[1], &[0.5], &[0.5], &[1.0], &[1.0]);
        assert_eq!(one.dimensions(), (1000, 420));
        assert_eq!(format_tick(0.25, 0.5), "0.25");
    }
}
