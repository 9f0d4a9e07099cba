//! The loss functions (cross-entropy, binary cross-entropy with logits),
//! with optional class weights, and the predictions and probabilities they
//! imply: one definition for training, evaluation and prediction.

use maskforge_train_core::LossKind;
use tch::{Device, Kind, Tensor};

/// The loss of a run, with optional per-class weights.
///
/// Weighted losses are normalised as PyTorch's weighted `CrossEntropyLoss`
/// does: `Σ wᵢ·lᵢ / Σ wᵢ` with `wᵢ` the weight of sample i's class. The same
/// rule is used for BCE (per-sample weights by class), so that both losses
/// mean the same with `--class-weights`.
pub struct Criterion {
    /// Cross-entropy over the classes, or BCE on a single logit.
    pub kind: LossKind,
    weights: Option<Tensor>,
    /// Label smoothing ε of the targets (0: none).
    smoothing: f64,
}

impl Criterion {
    /// The loss `kind`, with `class_weights` (one per class, index order)
    /// moved to `device`; `None` weighs every sample 1.
    pub fn new(kind: LossKind, class_weights: Option<&[f32]>, device: Device) -> Self {
        Criterion { kind, weights: class_weights.map(|w| Tensor::from_slice(w).to_device(device)), smoothing: 0.0 }
    }

    /// The same loss against smoothed targets (`train --label-smoothing`):
    /// for the training step only, so that every reported loss stays the
    /// plain one.
    pub fn smoothed(kind: LossKind, class_weights: Option<&[f32]>, smoothing: f64, device: Device) -> Self {
        Criterion { smoothing, ..Criterion::new(kind, class_weights, device) }
    }

    /// Per-sample losses and weights, both `[B]` float32.
    pub fn per_sample(&self, logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        let logits = logits.to_kind(Kind::Float);
        let losses = match self.kind {
            LossKind::Ce => {
                logits.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::None, -100, self.smoothing)
            }
            LossKind::Bce => {
                let target = labels.to_kind(Kind::Float) * (1.0 - self.smoothing) + self.smoothing / 2.0;
                logits.squeeze_dim(1).binary_cross_entropy_with_logits::<Tensor>(
                    &target,
                    None,
                    None,
                    tch::Reduction::None,
                )
            }
        };
        let weights = match &self.weights {
            Some(w) => w.index_select(0, labels),
            None => losses.ones_like(),
        };
        (losses, weights)
    }

    /// Predicted class index per sample.
    pub fn predict(&self, logits: &Tensor) -> Tensor {
        match self.kind {
            LossKind::Ce => logits.argmax(1, false),
            // sigmoid(x) >= 0.5  ⇔  x >= 0
            LossKind::Bce => logits.squeeze_dim(1).ge(0.0).to_kind(Kind::Int64),
        }
    }

    /// Class probabilities `[B, classes]`; for BCE `[1 − σ(x), σ(x)]`.
    pub fn probabilities(&self, logits: &Tensor) -> Tensor {
        let logits = logits.to_kind(Kind::Float);
        match self.kind {
            LossKind::Ce => logits.softmax(1, Kind::Float),
            LossKind::Bce => {
                let p = logits.sigmoid();
                Tensor::cat(&[1.0 - &p, p], 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_losses_follow_pytorch() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let labels = Tensor::from_slice(&[0i64, 0]);
        let c = Criterion::new(LossKind::Ce, Some(&[3.0, 1.0]), Device::Cpu);
        let (l, w) = c.per_sample(&logits, &labels);
        // CE of [2,0] for class 0: ln(1 + e^-2); of [0,1]: ln(1 + e).
        let l0 = (1.0f64 + (-2.0f64).exp()).ln();
        let l1 = (1.0f64 + 1.0f64.exp()).ln();
        assert!((l.double_value(&[0]) - l0).abs() < 1e-6 && (l.double_value(&[1]) - l1).abs() < 1e-6);
        assert_eq!(w.double_value(&[0]), 3.0);
        let pred: Vec<i64> = Vec::try_from(&c.predict(&logits)).unwrap();
        assert_eq!(pred, [0, 1]);

        let b = Criterion::new(LossKind::Bce, None, Device::Cpu);
        let logit = Tensor::from_slice(&[0.0f32, 2.0]).view([2, 1]);
        let (l, _) = b.per_sample(&logit, &Tensor::from_slice(&[1i64, 0]));
        assert!((l.double_value(&[0]) - 2f64.ln()).abs() < 1e-6);
        assert!((l.double_value(&[1]) - (1.0 + 2f64.exp()).ln()).abs() < 1e-5);
        let p: Vec<Vec<f32>> = Vec::try_from(&b.probabilities(&logit)).unwrap();
        assert!((p[0][1] - 0.5).abs() < 1e-6 && (p[1][0] + p[1][1] - 1.0).abs() < 1e-6);
        let pred: Vec<i64> = Vec::try_from(&b.predict(&logit)).unwrap();
        assert_eq!(pred, [1, 1]);
    }

    #[test]
    fn smoothed_targets_put_epsilon_on_every_class() {
        // CE of logits [2, 0] for class 0 with ε = 0.2 over 2 classes: the
        // target is [0.9, 0.1].
        let logits = Tensor::from_slice(&[2.0f32, 0.0]).view([1, 2]);
        let label = Tensor::from_slice(&[0i64]);
        let c = Criterion::smoothed(LossKind::Ce, Some(&[3.0, 1.0]), 0.2, Device::Cpu);
        let (l, w) = c.per_sample(&logits, &label);
        let (lp0, lp1) = (-(1.0f64 + (-2.0f64).exp()).ln(), -(1.0f64 + 2.0f64.exp()).ln());
        assert!((l.double_value(&[0]) - -(0.9 * lp0 + 0.1 * lp1)).abs() < 1e-5, "{}", l.double_value(&[0]));
        assert_eq!(w.double_value(&[0]), 3.0);
        // BCE: target 1 becomes 0.9; the same loss as CE's on [0, x].
        let b = Criterion::smoothed(LossKind::Bce, None, 0.2, Device::Cpu);
        let (lb, _) = b.per_sample(&Tensor::from_slice(&[-2.0f32]).view([1, 1]), &Tensor::from_slice(&[1i64]));
        assert!((lb.double_value(&[0]) - -(0.9 * lp1 + 0.1 * lp0)).abs() < 1e-5, "{}", lb.double_value(&[0]));
        // Unsmoothed stays what it was.
        let plain = Criterion::new(LossKind::Ce, None, Device::Cpu).per_sample(&logits, &label).0;
        assert!((plain.double_value(&[0]) + lp0).abs() < 1e-6);
    }
}
