//! The input pipeline's batches as tensors. The pipeline itself (decoding,
//! augmentation, the bounded queue) is tensor-free and lives in
//! `maskforge_train_core::data`, re-exported here.

use tch::Tensor;

pub use maskforge_train_core::data::{items, shuffled, Batch, BatchIter, Item, Loader, Transform};

/// A ready batch on the model thread's side.
pub trait BatchTensors {
    /// The images as a `[B, 3, S, S]` CPU tensor.
    fn tensor(&self) -> Tensor;
    /// The class indices as a `[B]` int64 CPU tensor.
    fn label_tensor(&self) -> Tensor;
}

impl BatchTensors for Batch {
    fn tensor(&self) -> Tensor {
        let s = self.size as i64;
        Tensor::from_slice(&self.pixels).view([self.len() as i64, 3, s, s])
    }

    fn label_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_become_nchw_tensors() {
        let batch = Batch {
            pixels: vec![0.5; 2 * 3 * 8 * 8],
            labels: vec![1, 0],
            indices: vec![4, 5],
            failures: Vec::new(),
            size: 8,
        };
        assert_eq!(batch.tensor().size(), [2, 3, 8, 8]);
        assert_eq!(Vec::<i64>::try_from(&batch.label_tensor()).unwrap(), [1, 0]);
    }
}
