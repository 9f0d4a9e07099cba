//! The per-image pass: size, optional SHA-256, and a full decode that both
//! proves the file is usable and yields its pixel sums, so the statistics
//! never decode an image a second time.

use crate::stats::{stats_sums, ChannelSums};
use crate::Progress;
use image::RgbImage;
#[cfg(test)]
use maskforge_imageio::jpeg_truncation;
use maskforge_imageio::{load_rgb_from_bytes, sha256_hex, Failure, LoadLimits};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What the pass does per image.
#[derive(Clone, Copy, Debug)]
pub struct ScanOptions {
    /// Decode every image (and compute its pixel sums). Off only for
    /// benchmarking the listing and splitting alone: corrupt files then go
    /// undetected.
    pub decode: bool,
    /// Compute each file's SHA-256.
    pub hash: bool,
    /// Resize to this square size before summing pixels.
    pub stats_size: Option<u32>,
    /// Size bounds of the images decoded.
    pub limits: LoadLimits,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { decode: true, hash: false, stats_size: None, limits: LoadLimits::default() }
    }
}

/// A file that passed the scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedImage {
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file (hex), with `hash`.
    pub sha256: Option<String>,
    /// Present when decoded.
    pub sums: Option<ChannelSums>,
}

/// Scans `files` (full path, path relative to the root used in reports) on
/// the current rayon pool. Results keep the input order, so everything
/// downstream is independent of the thread count.
pub fn scan_images(
    files: &[(PathBuf, String)],
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Vec<Result<ScannedImage, Failure>> {
    progress.start(files.len() as u64);
    files
        .par_iter()
        .map(|(path, rel)| {
            let result = scan_one(path, options).map_err(|reason| Failure::new(rel.clone(), reason));
            progress.advance();
            result
        })
        .collect()
}

fn scan_one(path: &Path, options: &ScanOptions) -> Result<ScannedImage, String> {
    if !options.decode && !options.hash {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read file: {e}"))?;
        return Ok(ScannedImage { bytes: meta.len(), sha256: None, sums: None });
    }
    let data = std::fs::read(path).map_err(|e| format!("cannot read file: {e}"))?;
    let sha256 = options.hash.then(|| sha256_hex(&data));
    let sums = if options.decode {
        let img = load_complete(path, &data, options.limits)?;
        Some(stats_sums(&img, options.stats_size))
    } else {
        None
    };
    Ok(ScannedImage { bytes: data.len() as u64, sha256, sums })
}

/// Decodes with [`load_rgb_from_bytes`], which also refuses truncated JPEGs
/// (see `maskforge_imageio::jpeg_truncation`). Errors are one-line reasons
/// without the path.
pub fn load_complete(path: &Path, data: &[u8], limits: LoadLimits) -> Result<RgbImage, String> {
    load_rgb_from_bytes(path, data, limits).map_err(|e| e.reason())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_jpegs_are_refused_whole_ones_and_trailing_data_accepted() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x ^ y) * 5) as u8]));
        let full = maskforge_imageio::encode_image(&img, Path::new("a.jpg"), 90).unwrap();
        assert_eq!(jpeg_truncation(&full), None);
        let mut trailing = full.clone();
        trailing.extend_from_slice(b"\xFF\xDAvendor junk after EOI");
        assert_eq!(jpeg_truncation(&trailing), None);
        for keep in [3, 20, full.len() / 3, full.len() / 2, full.len() - 2, full.len() - 1] {
            assert!(jpeg_truncation(&full[..keep]).is_some(), "cut at {keep} of {}", full.len());
            assert!(load_complete(Path::new("a.jpg"), &full[..keep], LoadLimits::default()).is_err());
        }
        assert_eq!(jpeg_truncation(b"\x89PNG"), None);
    }

    #[test]
    fn failures_carry_the_relative_path_and_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("e.jpg");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("t.png");
        std::fs::write(&text, b"hello").unwrap();
        let files = vec![
            (empty, "c/e.jpg".to_string()),
            (text, "c/t.png".to_string()),
            (dir.path().join("gone.jpg"), "c/gone.jpg".to_string()),
        ];
        let out = scan_images(&files, &ScanOptions::default(), &());
        let reasons: Vec<Failure> = out.into_iter().map(|r| r.unwrap_err()).collect();
        assert_eq!(reasons[0], Failure::new("c/e.jpg", "empty file (0 bytes)"));
        assert_eq!(reasons[1], Failure::new("c/t.png", "not a recognised image format"));
        assert!(reasons[2].reason.starts_with("cannot read file"), "{:?}", reasons[2]);
        // Without decoding only existence is checked.
        let fast = ScanOptions { decode: false, ..ScanOptions::default() };
        let out = scan_images(&files, &fast, &());
        assert_eq!(out[0], Ok(ScannedImage { bytes: 0, sha256: None, sums: None }));
        assert!(out[2].is_err());
    }
}
