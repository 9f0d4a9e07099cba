//! Occlusion sensitivity (seed 002's interpretation): slide a grey patch
//! over the face and record how much the probability of the predicted class
//! drops; large drops mark the regions that drive the decision.

use crate::predictor::Predictor;
use image::{Rgb, RgbImage};
use maskforge_train_core::augment::{eval_transform, eval_view};
use tch::Tensor;

/// Heat per input pixel (`size × size`, row-major): the mean drop of the
/// class probability over the patches covering the pixel, clamped at 0.
/// The patch is the dataset mean (0 after normalisation), i.e. grey.
pub fn occlusion_map(p: &Predictor, crop: &RgbImage, class: usize, patch: u32, stride: u32) -> Vec<f32> {
    let s = p.meta.img_size as usize;
    let patch = (patch as usize).clamp(1, s);
    let stride = (stride as usize).max(1);
    let plane = 3 * s * s;
    let mut base = vec![0f32; plane];
    eval_transform(crop, s as u32, &p.normalize(), &mut base);
    let base_prob = p
        .probabilities(&Tensor::from_slice(&base).view([1, 3, s as i64, s as i64]))
        .first()
        .and_then(|v| v.get(class).copied())
        .unwrap_or(0.0);

    let mut positions = Vec::new();
    let mut y = 0;
    loop {
        let mut x = 0;
        loop {
            positions.push((x, y));
            if x + patch >= s {
                break;
            }
            x = (x + stride).min(s - patch);
        }
        if y + patch >= s {
            break;
        }
        y = (y + stride).min(s - patch);
    }
    let mut heat = vec![0f32; s * s];
    let mut cover = vec![0u32; s * s];
    // Batches of occluded copies, so the model runs a few large batches.
    for chunk in positions.chunks(32) {
        let mut buf = Vec::with_capacity(chunk.len() * plane);
        for &(x0, y0) in chunk {
            let mut img = base.clone();
            for c in 0..3 {
                for yy in y0..y0 + patch {
                    let row = c * s * s + yy * s;
                    img[row + x0..row + x0 + patch].fill(0.0);
                }
            }
            buf.extend_from_slice(&img);
        }
        let xs = Tensor::from_slice(&buf).view([chunk.len() as i64, 3, s as i64, s as i64]);
        let probs = p.probabilities(&xs);
        for (&(x0, y0), pr) in chunk.iter().zip(&probs) {
            let drop = base_prob - pr.get(class).copied().unwrap_or(0.0);
            for yy in y0..y0 + patch {
                for xx in x0..x0 + patch {
                    heat[yy * s + xx] += drop;
                    cover[yy * s + xx] += 1;
                }
            }
        }
    }
    heat.iter().zip(&cover).map(|(h, &n)| if n > 0 { (h / n as f32).max(0.0) } else { 0.0 }).collect()
}

/// The crop and, beside it, the heat map (`size × size`, as from
/// [`occlusion_map`]) blended over it, both `display` pixels high; the
/// colour scale runs blue → red up to the map's maximum.
pub fn render_heatmap(crop: &RgbImage, heat: &[f32], size: u32, display: u32) -> RgbImage {
    let display = display.max(1);
    let view = eval_view(crop, display);
    let max = heat.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    let map: image::ImageBuffer<image::Luma<f32>, Vec<f32>> = image::ImageBuffer::from_fn(size, size, |x, y| {
        image::Luma([heat.get((y * size + x) as usize).copied().unwrap_or(0.0) / max])
    });
    let map = image::imageops::resize(&map, display, display, image::imageops::FilterType::Triangle);
    let mut out = RgbImage::new(display * 2, display);
    for (x, y, px) in view.enumerate_pixels() {
        out.put_pixel(x, y, *px);
        let c = colormap(map.get_pixel(x, y).0[0]);
        let blended = Rgb(std::array::from_fn(|k| (px.0[k] as f32 * 0.5 + c.0[k] as f32 * 0.5).round() as u8));
        out.put_pixel(x + display, y, blended);
    }
    out
}

/// A simple "jet"-like scale: blue (0) → cyan → yellow → red (1).
fn colormap(t: f32) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    Rgb([(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends() {
        assert_eq!(colormap(0.0), Rgb([0, 0, 127]));
        assert_eq!(colormap(1.0), Rgb([127, 0, 0]));
        let crop = RgbImage::from_pixel(8, 8, Rgb([100, 100, 100]));
        let heat: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let img = render_heatmap(&crop, &heat, 8, 16);
        assert_eq!(img.dimensions(), (32, 16));
        assert_eq!(img.get_pixel(0, 0), &Rgb([100, 100, 100]));
        assert_ne!(img.get_pixel(16, 0), img.get_pixel(31, 15));
    }
}
