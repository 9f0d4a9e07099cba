//! `curves.png`: loss and accuracy per epoch, train against val (the plots
//! of seeds 000 and 002), drawn with plotters into an image buffer, labels
//! in the project's one font (DejaVu Sans, from `maskforge_draw`).

use image::{Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontTransform};

/// Colour of the training curves (matplotlib's first, blue).
pub const TRAIN_COLOR: Rgb<u8> = Rgb([31, 119, 180]);
/// Colour of the validation curves (matplotlib's second, orange).
pub const VAL_COLOR: Rgb<u8> = Rgb([255, 127, 14]);
const AXIS: RGBColor = RGBColor(60, 60, 60);
const GRID: RGBColor = RGBColor(225, 225, 225);
/// The family plotters is told; the text itself is drawn by [`Canvas`].
const FONT: &str = "DejaVu Sans";
/// Size of `curves.png`: two panels side by side.
pub const SIZE: (u32, u32) = (1000, 420);

/// Why the curves could not be drawn (a plotting-library failure; the data
/// cannot cause one).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the curves: {0}")]
pub struct PlotError(String);

/// One line of a panel: `(epoch, value)` points.
pub struct Series<'a> {
    /// The legend's text.
    pub label: &'a str,
    /// The line's colour.
    pub color: Rgb<u8>,
    /// `(epoch, value)` points, in epoch order.
    pub points: Vec<(f64, f64)>,
}

/// The two panels, loss and accuracy, for per-epoch values; non-finite
/// values are left out.
pub fn render_curves(
    epochs: &[usize],
    train_loss: &[f64],
    val_loss: &[f64],
    train_acc: &[f64],
    val_acc: &[f64],
) -> Result<RgbImage, PlotError> {
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
    let (w, h) = SIZE;
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = Canvas(BitMapBackend::with_buffer(&mut pixels, (w, h))).into_drawing_area();
        let (left, right) = root.split_horizontally(w / 2);
        // Loss falls and accuracy rises: each legend goes where its lines rarely are.
        draw_panel(&left, "loss", &loss, None, SeriesLabelPosition::UpperRight)
            .map_err(|e| PlotError(e.to_string()))?;
        draw_panel(&right, "accuracy", &acc, Some((0.0, 1.0)), SeriesLabelPosition::LowerRight)
            .map_err(|e| PlotError(e.to_string()))?;
        root.present().map_err(|e| PlotError(e.to_string()))?;
    }
    RgbImage::from_raw(w, h, pixels).ok_or_else(|| PlotError("the pixel buffer has the wrong size".into()))
}

/// plotters' bitmap backend with its text drawn by `maskforge_draw`, so
/// that plots use the same font and glyph layout as every other label
/// (plotters 0.3.7's own `ab_glyph` text drops each glyph's side bearing,
/// which reads as "ep och").
struct Canvas<'a>(BitMapBackend<'a>);

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if !matches!(style.transform(), FontTransform::None) {
            // These charts draw no rotated text; say so rather than draw it wrong.
            return Err(DrawingErrorKind::FontError(Box::new(PlotError("rotated text is not supported".into()))));
        }
        let color = style.color();
        let mask = maskforge_draw::coverage(text, style.size() as f32);
        let (w, h) = (mask.width() as i32, mask.height() as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        for (x, y, c) in mask.enumerate_pixels().filter(|(_, _, c)| c.0[0] > 0) {
            let alpha = color.alpha * f64::from(c.0[0]) / 255.0;
            self.0
                .draw_pixel((pos.0 + dx + x as i32, pos.1 + dy + y as i32), BackendColor { alpha, rgb: color.rgb })?;
        }
        Ok(())
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(maskforge_draw::text_size(text, style.size() as f32))
    }
}

/// A line chart of `series` in `area`. `fixed` pins the y range (accuracy),
/// else it is fitted to the data.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    fixed: Option<(f64, f64)>,
    legend: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let x_max = all.iter().map(|p| p.0).fold(2.0f64, f64::max);
    let (y_min, y_max) = fixed.unwrap_or_else(|| fitted_range(all.iter().map(|p| p.1)));
    // Margins so that the markers at the ends are not cut in half.
    let x_pad = ((x_max - 1.0) * 0.03).max(0.25);
    let y_pad = (y_max - y_min) * 0.02;

    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 24).into_font().color(&AXIS))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(1.0 - x_pad..x_max + x_pad, y_min - y_pad..y_max + y_pad)?;
    let label_font = (FONT, 15).into_font().color(&AXIS);
    let span = y_max - y_min;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        // Ticks at whole epochs (plotters picks round steps), at most ~10.
        .x_labels((x_max as usize).min(10))
        .x_label_formatter(&|v| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() })
        .y_labels(6)
        .y_label_formatter(&|v| format_tick(*v, span))
        .x_desc("epoch")
        .label_style(label_font.clone())
        .axis_desc_style(label_font.clone())
        .draw()?;

    for s in series {
        let color = RGBColor(s.color.0[0], s.color.0[1], s.color.0[2]);
        let line = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), line).point_size(3))?
            .label(s.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 2), (x + 16, y + 2)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font(label_font)
        .draw()?;
    Ok(())
}

/// A y range around `values` with a tenth of their spread as margin (the
/// lower one stopping at 0 for positive values); ±0.5 around a constant.
fn fitted_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let spread = hi - lo;
    if spread < 1e-9 {
        return (lo - 0.5, hi + 0.5);
    }
    (lo.min(0.0).max(lo - spread * 0.1), hi + spread * 0.1)
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
        let img =
            render_curves(&[1, 2, 3], &[1.0, 0.6, 0.4], &[1.1, 0.8, f64::NAN], &[0.5, 0.7, 0.9], &[0.4, 0.6, 0.8])
                .unwrap();
        assert_eq!(img.dimensions(), (1000, 420));
        let count = |c: Rgb<u8>| img.pixels().filter(|p| **p == c).count();
        assert!(count(TRAIN_COLOR) > 100 && count(VAL_COLOR) > 100);
        // One epoch only, constant values: still draws without dividing by zero.
        let one = render_curves(&[1], &[0.5], &[0.5], &[1.0], &[1.0]).unwrap();
        assert_eq!(one.dimensions(), (1000, 420));
        assert_eq!(format_tick(0.25, 0.5), "0.25");
        // Labels are drawn: dark text pixels in the caption band of each panel.
        let dark_in = |x0: u32, x1: u32| (x0..x1).any(|x| (0..40).any(|y| img.get_pixel(x, y).0[0] < 120));
        assert!(dark_in(0, 500) && dark_in(500, 1000));
    }

    #[test]
    fn y_ranges_fit_the_data() {
        assert_eq!(fitted_range([].into_iter()), (0.0, 1.0));
        assert_eq!(fitted_range([0.5, 0.5].into_iter()), (0.0, 1.0));
        let (lo, hi) = fitted_range([2.0, 3.0].into_iter());
        assert!((lo - 1.9).abs() < 1e-12 && (hi - 3.1).abs() < 1e-12, "{lo} {hi}");
    }
}
