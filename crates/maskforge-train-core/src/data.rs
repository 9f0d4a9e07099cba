//! The input pipeline: decode, augment and normalise on worker threads,
//! ahead of the model, through a bounded queue.
//!
//! A producer thread walks the epoch's batches in order; each batch is
//! decoded and transformed in parallel on a rayon pool and sent through a
//! `sync_channel` of `prefetch` batches. The model thread receives ready
//! `[B, 3, S, S]` buffers and never waits on JPEG decoding while the queue
//! is full. Dropping the iterator stops the producer (its next send fails).
//!
//! An image that cannot be read or decoded is left out of its batch and
//! reported with the batch, once per occurrence; it never stops the run.
//!
//! Batches are plain `f32` buffers; `maskforge-train` turns them into
//! tensors on the model thread.

use crate::augment::{self, AugmentConfig, Normalize};
use crate::manifest::Manifest;
use crate::rng::Rng;
use maskforge_imageio::{load_rgb, LoadLimits};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One image of a dataset.
#[derive(Clone, Debug)]
pub struct Item {
    /// Full path on disk.
    pub path: PathBuf,
    /// Path as written in the manifest (for messages and reports).
    pub rel: String,
    /// Class index.
    pub label: usize,
}

/// The items of a manifest's usable rows, their files under `root`.
pub fn items(manifest: &Manifest, root: &Path) -> Vec<Item> {
    manifest
        .samples
        .iter()
        // `under` is the only way from a checked manifest path to a file.
        .map(|s| Item { path: s.path.under(root), rel: s.path.to_string(), label: s.class_index })
        .collect()
}

/// How images are transformed.
#[derive(Clone, Debug)]
pub enum Transform {
    /// Random augmentation; draws depend on (seed, epoch, item index) only.
    Train {
        /// The augmentations.
        augment: AugmentConfig,
        /// The run's seed.
        seed: u64,
        /// The epoch (0-based), so each epoch draws anew.
        epoch: u64,
    },
    /// Centre crop and resize.
    Eval,
}

/// A ready batch; images that failed are left out, so it may be shorter
/// than asked for (or empty).
pub struct Batch {
    /// `len × 3 × size × size` normalised floats, CHW per image.
    pub pixels: Vec<f32>,
    /// Class index of each image, in order.
    pub labels: Vec<i64>,
    /// Dataset indices of the images in the batch, in order.
    pub indices: Vec<usize>,
    /// Images of this batch that were skipped: (dataset index, reason).
    pub failures: Vec<(usize, String)>,
    /// Side of each image, pixels.
    pub size: u32,
}

impl Batch {
    /// Images in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether every image of the batch failed (or none was asked for).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Shared settings of the pipeline.
pub struct Loader {
    pool: Arc<rayon::ThreadPool>,
    /// Side of the square model input, pixels.
    pub img_size: u32,
    /// The input normalisation.
    pub norm: Normalize,
    /// Size bounds of the images decoded.
    pub limits: LoadLimits,
    /// Batches prepared ahead of the model.
    pub prefetch: usize,
}

impl Loader {
    /// `workers` decoding threads (0: all cores).
    pub fn new(
        workers: usize,
        img_size: u32,
        norm: Normalize,
        limits: LoadLimits,
        prefetch: usize,
    ) -> std::io::Result<Loader> {
        let mut b = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("maskforge-loader-{i}"));
        if workers > 0 {
            b = b.num_threads(workers);
        }
        let pool = b.build().map_err(std::io::Error::other)?;
        Ok(Loader { pool: Arc::new(pool), img_size, norm, limits, prefetch: prefetch.max(1) })
    }

    /// Decoding threads of the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Starts producing the batches of `order` (dataset indices).
    pub fn batches(
        &self,
        items: Arc<Vec<Item>>,
        order: Vec<usize>,
        batch_size: usize,
        transform: Transform,
    ) -> BatchIter {
        let (tx, rx) = sync_channel(self.prefetch);
        let pool = Arc::clone(&self.pool);
        let (size, norm, limits) = (self.img_size, self.norm, self.limits);
        let batch_size = batch_size.max(1);
        let handle = std::thread::Builder::new()
            .name("maskforge-batcher".into())
            .spawn(move || {
                for chunk in order.chunks(batch_size) {
                    let results: Vec<Result<Vec<f32>, String>> = pool.install(|| {
                        chunk.par_iter().map(|&i| prepare(&items[i], i, size, &norm, limits, &transform)).collect()
                    });
                    let plane = 3 * (size as usize) * (size as usize);
                    let mut batch = Batch {
                        pixels: Vec::with_capacity(chunk.len() * plane),
                        labels: Vec::with_capacity(chunk.len()),
                        indices: Vec::with_capacity(chunk.len()),
                        failures: Vec::new(),
                        size,
                    };
                    for (&i, r) in chunk.iter().zip(results) {
                        match r {
                            Ok(px) => {
                                batch.pixels.extend_from_slice(&px);
                                batch.labels.push(items[i].label as i64);
                                batch.indices.push(i);
                            }
                            Err(reason) => batch.failures.push((i, reason)),
                        }
                    }
                    if tx.send(batch).is_err() {
                        return; // the consumer stopped listening
                    }
                }
            })
            .ok();
        BatchIter { rx, handle }
    }
}

/// Loads and transforms one image.
fn prepare(
    item: &Item,
    index: usize,
    size: u32,
    norm: &Normalize,
    limits: LoadLimits,
    t: &Transform,
) -> Result<Vec<f32>, String> {
    let img = load_rgb(&item.path, limits).map_err(|e| e.reason())?;
    let mut out = vec![0f32; 3 * (size as usize) * (size as usize)];
    match t {
        Transform::Eval => augment::eval_transform(&img, size, norm, &mut out),
        Transform::Train { augment, seed, epoch } => {
            let img = augment::preshrink(img, size);
            let mut rng = Rng::derive(*seed, *epoch, index as u64);
            augment::train_transform(&img, size, augment, norm, &mut rng, &mut out);
        }
    }
    Ok(out)
}

/// Iterator over the batches of one pass.
pub struct BatchIter {
    rx: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for BatchIter {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Unblock the producer (its send fails once the receiver is gone),
        // then wait for it so no thread outlives the pass.
        let (_, dead) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The epoch's order: a seeded shuffle of `0..n`.
pub fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    Rng::derive(seed, epoch, u64::MAX).shuffle(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn batches_arrive_in_order_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut items = Vec::new();
        for i in 0..7 {
            let p = dir.path().join(format!("{i}.png"));
            if i == 3 {
                std::fs::write(&p, b"not an image").unwrap();
            } else {
                RgbImage::from_pixel(20, 10, Rgb([i as u8 * 30, 0, 0])).save(&p).unwrap();
            }
            items.push(Item { path: p, rel: format!("{i}.png"), label: i % 2 });
        }
        items.push(Item { path: dir.path().join("missing.png"), rel: "missing.png".into(), label: 0 });
        let items = Arc::new(items);
        let loader = Loader::new(2, 8, Normalize::IDENTITY, LoadLimits::default(), 2).unwrap();
        let batches: Vec<Batch> = loader.batches(Arc::clone(&items), (0..8).collect(), 3, Transform::Eval).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].indices, [0, 1, 2]);
        assert_eq!(batches[1].indices, [4, 5]);
        assert_eq!(batches[1].failures.len(), 1);
        assert!(batches[1].failures[0].1.contains("not a recognised image format"), "{:?}", batches[1].failures);
        assert_eq!(batches[2].failures[0].0, 7);
        assert_eq!((batches[1].len(), batches[1].size, batches[1].pixels.len()), (2, 8, 2 * 3 * 8 * 8));
        // Red channel of image 4 (value 120) survives the transform.
        assert!((batches[1].pixels[0] - 120.0 / 255.0).abs() < 1e-5);

        // Augmented passes repeat exactly for the same seed and epoch.
        let t = Transform::Train { augment: AugmentConfig::default(), seed: 5, epoch: 1 };
        let a: Vec<f32> = loader.batches(Arc::clone(&items), vec![0, 1], 2, t.clone()).flat_map(|b| b.pixels).collect();
        let b: Vec<f32> = loader.batches(Arc::clone(&items), vec![0, 1], 2, t).flat_map(|b| b.pixels).collect();
        assert_eq!(a, b);
        // Dropping an unfinished iterator does not hang.
        let mut it = loader.batches(items, (0..8).collect(), 1, Transform::Eval);
        assert!(it.next().is_some());
        drop(it);
        assert_ne!(shuffled(10, 1, 0), shuffled(10, 1, 1));
    }
}
