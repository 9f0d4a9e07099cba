//! Normalisation statistics: per-channel mean and standard deviation of RGB
//! in [0, 1] (what torchvision's `Normalize` takes), class counts and
//! inverse-frequency class weights.
//!
//! Pixel values are summed as exact integers (`u64` sums, `u128` sums of
//! squares), so adding images in any order, on any number of threads, gives
//! bit-identical results; floating point is used once, at the end.

use image::RgbImage;

/// Exact per-channel sums over a set of pixels (values 0..=255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelSums {
    /// Pixels summed over.
    pub pixels: u64,
    /// Sum of the values per channel R, G, B.
    pub sum: [u64; 3],
    /// Sum of the squared values per channel R, G, B.
    pub sum_sq: [u128; 3],
}

impl ChannelSums {
    /// Sums of one image's pixels.
    pub fn of_image(img: &RgbImage) -> ChannelSums {
        // The interleaved RGB bytes are summed in 48 lanes (a multiple of 3
        // channels and of SIMD widths) so the loop vectorises; lane j holds
        // channel j % 3. Lanes are u32 over blocks of 65 536 steps
        // (65 536 × 255² < 2³²), then folded into u64.
        const LANES: usize = 48;
        const BLOCK: usize = LANES * 65_536;
        let len = img.width() as usize * img.height() as usize * 3;
        let raw = &img.as_raw()[..len];
        let mut sum = [0u64; 3];
        let mut sum_sq = [0u64; 3];
        for block in raw.chunks(BLOCK) {
            let mut s = [0u32; LANES];
            let mut q = [0u32; LANES];
            let mut steps = block.chunks_exact(LANES);
            for step in &mut steps {
                for j in 0..LANES {
                    let v = step[j] as u32;
                    s[j] += v;
                    q[j] += v * v;
                }
            }
            // Blocks start at multiples of 48, so the tail keeps lane = channel order.
            for (j, &b) in steps.remainder().iter().enumerate() {
                let v = b as u32;
                s[j] += v;
                q[j] += v * v;
            }
            for j in 0..LANES {
                sum[j % 3] += s[j] as u64;
                sum_sq[j % 3] += q[j] as u64;
            }
        }
        ChannelSums { pixels: img.width() as u64 * img.height() as u64, sum, sum_sq: sum_sq.map(|v| v as u128) }
    }

    /// Adds the sums of other pixels (another image, another worker's share).
    pub fn add(&mut self, other: &ChannelSums) {
        self.pixels += other.pixels;
        for c in 0..3 {
            self.sum[c] += other.sum[c];
            self.sum_sq[c] += other.sum_sq[c];
        }
    }

    /// Mean and population standard deviation per channel, in [0, 1] units.
    /// `None` without pixels.
    pub fn mean_std(&self) -> Option<([f64; 3], [f64; 3])> {
        if self.pixels == 0 {
            return None;
        }
        let n = self.pixels as u128;
        let mut mean = [0.0; 3];
        let mut std = [0.0; 3];
        for c in 0..3 {
            let s = self.sum[c] as u128;
            mean[c] = s as f64 / (n as f64 * 255.0);
            // n·Σx² − (Σx)² is exact in integers and ≥ 0, so no cancellation.
            let var = match n.checked_mul(self.sum_sq[c]).and_then(|a| s.checked_mul(s).map(|b| a - b)) {
                Some(num) => num as f64 / ((n as f64) * (n as f64) * 65025.0),
                // Only past ~10¹⁶ pixels; the f64 formula is then still close.
                None => {
                    let m = s as f64 / n as f64;
                    (self.sum_sq[c] as f64 / n as f64 - m * m).max(0.0) / 65025.0
                }
            };
            std[c] = var.sqrt();
        }
        Some((mean, std))
    }
}

/// The sums of an image for the statistics: as decoded, or resized to
/// `size`×`size` (bilinear with antialiasing, like torchvision's
/// `Resize((size, size))`) when a size is given.
pub fn stats_sums(img: &RgbImage, size: Option<u32>) -> ChannelSums {
    match size {
        Some(s) if (img.width(), img.height()) != (s, s) => {
            ChannelSums::of_image(&image::imageops::resize(img, s, s, image::imageops::FilterType::Triangle))
        }
        _ => ChannelSums::of_image(img),
    }
}

/// `stats.json` (its layout lives in `maskforge-contracts`).
pub use maskforge_contracts::Stats;

/// The statistics of `sums` over images of `class_counts` per class.
pub fn stats_from_sums(
    manifest: &str,
    sums: &ChannelSums,
    skipped: u64,
    stats_size: Option<u32>,
    class_names: &[String],
    class_counts: &[u64],
) -> Stats {
    let (mean, std) = sums.mean_std().unwrap_or(([0.0; 3], [0.0; 3]));
    Stats {
        manifest: manifest.to_string(),
        images: class_counts.iter().sum(),
        skipped,
        pixels: sums.pixels,
        stats_size,
        mean,
        std,
        class_names: class_names.to_vec(),
        class_counts: class_counts.to_vec(),
        class_weights: class_weights(class_counts),
    }
}

/// Inverse-frequency weights `total / (classes × count)`.
pub fn class_weights(counts: &[u64]) -> Vec<Option<f64>> {
    let total: u64 = counts.iter().sum();
    let k = counts.len() as f64;
    counts.iter().map(|&n| (n > 0).then(|| total as f64 / (k * n as f64))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// The textbook two-pass computation in f64, written independently of
    /// the integer path.
    fn reference(images: &[RgbImage]) -> ([f64; 3], [f64; 3]) {
        let mut mean = [0.0f64; 3];
        let mut n = 0.0f64;
        for img in images {
            for p in img.pixels() {
                for c in 0..3 {
                    mean[c] += p[c] as f64 / 255.0;
                }
                n += 1.0;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = [0.0f64; 3];
        for img in images {
            for p in img.pixels() {
                for c in 0..3 {
                    let d = p[c] as f64 / 255.0 - mean[c];
                    var[c] += d * d;
                }
            }
        }
        (mean, var.map(|v| (v / n).sqrt()))
    }

    fn generated(seed: u32, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = x.wrapping_mul(31).wrapping_add(y.wrapping_mul(17)).wrapping_add(seed.wrapping_mul(101));
            Rgb([(v % 256) as u8, ((v / 3) % 256) as u8, if (x + y) % 2 == 0 { 255 } else { 0 }])
        })
    }

    #[test]
    fn known_values() {
        // Half black, half white: mean 0.5, std 0.5 on every channel.
        let img = RgbImage::from_fn(4, 2, |x, _| if x < 2 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
        let (mean, std) = ChannelSums::of_image(&img).mean_std().unwrap();
        assert_eq!(mean, [0.5; 3]);
        assert_eq!(std, [0.5; 3]);
        // A constant image has zero spread exactly.
        let flat = RgbImage::from_pixel(7, 5, Rgb([51, 102, 204]));
        let (mean, std) = ChannelSums::of_image(&flat).mean_std().unwrap();
        assert_eq!(mean, [0.2, 0.4, 0.8]);
        assert_eq!(std, [0.0; 3]);
        assert_eq!(ChannelSums::default().mean_std(), None);
    }

    #[test]
    fn matches_f64_reference_in_any_order() {
        let images: Vec<RgbImage> = (0..6).map(|i| generated(i, 50 + 13 * i, 40 + 7 * i)).collect();
        let (rm, rs) = reference(&images);
        let mut forward = ChannelSums::default();
        images.iter().for_each(|im| forward.add(&ChannelSums::of_image(im)));
        let mut backward = ChannelSums::default();
        images.iter().rev().for_each(|im| backward.add(&ChannelSums::of_image(im)));
        assert_eq!(forward, backward);
        let (m, s) = forward.mean_std().unwrap();
        for c in 0..3 {
            assert!((m[c] - rm[c]).abs() < 1e-9, "mean {c}: {} vs {}", m[c], rm[c]);
            assert!((s[c] - rs[c]).abs() < 1e-9, "std {c}: {} vs {}", s[c], rs[c]);
        }
    }

    #[test]
    fn lane_sums_equal_per_pixel_sums_for_any_size() {
        for (w, h) in [(1, 1), (5, 3), (16, 1), (17, 3), (33, 7), (100, 41)] {
            let img = generated(w * h, w, h);
            let mut sum = [0u64; 3];
            let mut sum_sq = [0u128; 3];
            for p in img.pixels() {
                for c in 0..3 {
                    sum[c] += p[c] as u64;
                    sum_sq[c] += (p[c] as u128).pow(2);
                }
            }
            assert_eq!(ChannelSums::of_image(&img), ChannelSums { pixels: (w * h) as u64, sum, sum_sq }, "{w}x{h}");
        }
    }

    #[test]
    fn large_images_do_not_overflow() {
        // More than one block of 48 × 65 536 bytes, all at the maximum value.
        let img = RgbImage::from_pixel(2100, 1100, Rgb([255, 255, 255]));
        let s = ChannelSums::of_image(&img);
        assert_eq!(s.sum, [255 * 2100 * 1100; 3]);
        assert_eq!(s.sum_sq, [65025 * 2100 * 1100; 3]);
    }

    #[test]
    fn wide_rows_do_not_overflow() {
        let img = RgbImage::from_pixel(70_000, 1, Rgb([255, 255, 255]));
        let s = ChannelSums::of_image(&img);
        assert_eq!(s.sum, [255 * 70_000; 3]);
        assert_eq!(s.sum_sq, [65025 * 70_000; 3]);
    }

    #[test]
    fn resizing_for_stats() {
        let img = generated(3, 64, 48);
        assert_eq!(stats_sums(&img, None), ChannelSums::of_image(&img));
        assert_eq!(stats_sums(&img, Some(16)).pixels, 256);
        let resized = image::imageops::resize(&img, 16, 16, image::imageops::FilterType::Triangle);
        assert_eq!(stats_sums(&img, Some(16)), ChannelSums::of_image(&resized));
    }

    #[test]
    fn inverse_frequency_weights() {
        let w = class_weights(&[30, 1, 0]);
        assert_eq!(w[0], Some(31.0 / 90.0));
        assert_eq!(w[1], Some(31.0 / 3.0));
        assert_eq!(w[2], None);
        assert_eq!(class_weights(&[5, 5]), [Some(1.0), Some(1.0)]);
    }
}
