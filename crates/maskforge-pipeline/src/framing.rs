//! `mask --framings K`: more crops of each face, framed as real photos frame
//! faces. A detector-centred crop always shows a face at one scale and place,
//! while real masked photos are often close-ups (the mask fills the lower
//! half, the frame cuts through the forehead or eyes) or wide, off-centre
//! shots. Each extra framing is a window drawn per face from the seed, the
//! same for every output of that face (every variant, draw and the unmasked
//! crop), so a masked crop and its unmasked twin still differ only by the mask.

use maskforge_face::crop::CropTransform;
use maskforge_face::Point;
use maskforge_mask::SplitMix64;

/// Most `--framings`: each is a full crop per face and output.
pub const MAX_FRAMINGS: u32 = 16;

/// The window's side relative to the standard crop's, drawn log-uniformly:
/// down to a close-up that keeps about the eyes-to-chin band, up to a face
/// at about half the frame's width.
pub const ZOOM: (f32, f32) = (0.6, 1.6);

/// Extra off-centre room, as a share of the standard side, beyond what keeps
/// a close window on the face.
const SLACK: f32 = 0.06;

/// The window of framing `k` (0: the standard crop, unchanged) of face
/// `face` of source `rel`: a zoom and a shift for [`CropTransform::reframed`].
pub fn window(seed: u64, rel: &str, face: usize, k: u32) -> (f32, Point) {
    if k == 0 {
        return (1.0, Point::new(0.0, 0.0));
    }
    let mut rng = SplitMix64::for_face(seed, rel, face).fork(&format!("frame{k}"));
    let zoom = rng.range(ZOOM.0.ln(), ZOOM.1.ln()).exp();
    // A close window slides within the standard one, mostly down (the crop
    // cuts the forehead, the mask fills the lower half); a wide one leaves
    // the face off-centre anywhere in it.
    let room = (1.0 - zoom).abs() / 2.0;
    let x = rng.range(-(room + SLACK), room + SLACK);
    let y = if zoom < 1.0 { rng.range(-SLACK, room + SLACK) } else { rng.range(-(room + SLACK), room + SLACK) };
    (zoom, Point::new(x, y))
}

/// The crop transform of framing `k` of a face whose standard crop is `base`.
pub fn framed(base: CropTransform, seed: u64, rel: &str, face: usize, k: u32) -> CropTransform {
    let (zoom, shift) = window(seed, rel, face, k);
    base.reframed(zoom, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_framing_is_the_standard_crop_and_the_others_are_pinned_by_the_seed() {
        assert_eq!(window(42, "a/b.jpg", 0, 0), (1.0, Point::new(0.0, 0.0)));
        assert_eq!(window(42, "a/b.jpg", 0, 1), window(42, "a/b.jpg", 0, 1));
        // Literal values: a change to the draw changes every dataset made with --framings.
        let got: Vec<(f32, f32, f32)> = (1..4)
            .map(|k| window(42, "a/b.jpg", 0, k))
            .map(|(z, s)| ((z * 1e4).round() / 1e4, (s.x * 1e4).round() / 1e4, (s.y * 1e4).round() / 1e4))
            .collect();
        assert_eq!(got, PINNED.to_vec());
        assert_ne!(window(42, "a/b.jpg", 1, 1), window(42, "a/b.jpg", 0, 1), "each face draws its own");
        assert_ne!(window(7, "a/b.jpg", 0, 1), window(42, "a/b.jpg", 0, 1), "the seed matters");
    }

    const PINNED: [(f32, f32, f32); 3] = [(0.8165, 0.0831, 0.1227), (0.633, 0.1335, 0.2371), (1.163, 0.1263, 0.1124)];

    #[test]
    fn windows_stay_in_range_and_close_ones_lean_down() {
        let (mut close, mut down) = (0, 0);
        for k in 1..2000 {
            let (z, s) = window(3, "x.jpg", 0, k);
            assert!((ZOOM.0..=ZOOM.1).contains(&z), "{z}");
            let room = (1.0 - z).abs() / 2.0 + SLACK;
            assert!(s.x.abs() <= room && s.y.abs() <= room, "{z} {s:?}");
            if z < 1.0 {
                close += 1;
                down += usize::from(s.y > 0.0);
            }
        }
        assert!(close > 600 && down * 10 > close * 7, "{close} close windows, {down} moved down");
    }
}
