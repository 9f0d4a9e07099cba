//! The optimiser's settings and the numbers that need no tensors: the
//! kinds and their defaults, the learning-rate schedule, and the loss
//! scaler's rule for fp16 autocast. The optimisers themselves (tensors)
//! are in `maskforge-train`'s `optim`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The optimiser (`--optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum; weight decay added to the gradient.
    Sgd,
    /// Adam; weight decay added to the gradient (L2), as PyTorch's `Adam`.
    Adam,
    /// AdamW: Adam with decoupled weight decay, as PyTorch's `AdamW`.
    Adamw,
}

impl OptimizerKind {
    /// Learning rate when none is given: seed 000's 0.01 for SGD, seed
    /// 002's 1e-3 for Adam; AdamW as Adam.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Sgd => 0.01,
            OptimizerKind::Adam | OptimizerKind::Adamw => 1e-3,
        }
    }

    /// Weight decay when none is given: seed 000's 5e-4 for SGD, none for
    /// Adam, PyTorch's 0.01 for AdamW.
    pub fn default_weight_decay(self) -> f64 {
        match self {
            OptimizerKind::Sgd => 5e-4,
            OptimizerKind::Adam => 0.0,
            OptimizerKind::Adamw => 0.01,
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
        })
    }
}

impl FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::Adamw),
            _ => Err(format!("unknown optimiser {s:?}: expected sgd, adam or adamw")),
        }
    }
}

/// The optimiser's hyper-parameters (the learning rate comes from the [`Schedule`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// SGD momentum, in [0, 1); unused by Adam(W).
    pub momentum: f64,
    /// Weight decay, >= 0 (L2 for SGD and Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Adam(W)'s decay rate of the first moment.
    pub beta1: f64,
    /// Adam(W)'s decay rate of the second moment.
    pub beta2: f64,
    /// Adam(W)'s term added to the denominator for stability.
    pub eps: f64,
}

/// The learning-rate schedule after the warm-up (`--schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step,
    /// Cosine decay from the base rate to `min_lr` over the run.
    Cosine,
}

impl FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "constant" | "none" => Ok(ScheduleKind::Constant),
            "step" => Ok(ScheduleKind::Step),
            "cosine" => Ok(ScheduleKind::Cosine),
            _ => Err(format!("unknown schedule {s:?}: expected step, cosine or constant")),
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Step => "step",
            ScheduleKind::Cosine => "cosine",
        })
    }
}

/// Learning rate as a function of (fractional) epoch, with linear warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The shape after the warm-up.
    pub kind: ScheduleKind,
    /// The peak rate (`--lr`).
    pub base_lr: f64,
    /// Linear warm-up from 0 to `base_lr`, in (fractional) epochs.
    pub warmup_epochs: f64,
    /// Epochs of the run (the cosine's span ends there).
    pub epochs: usize,
    /// Step schedule: epochs between decays.
    pub step_size: usize,
    /// Step schedule: decay factor.
    pub gamma: f64,
    /// Cosine schedule: the rate at the end of the run.
    pub min_lr: f64,
}

impl Schedule {
    /// The rate at `epoch` (0-based) after `done` of its `steps` batches.
    pub fn lr(&self, epoch: usize, done: usize, steps: usize) -> f64 {
        // Position at the start of this step; warm-up counts the step itself
        // so that its first step is not taken at a zero rate.
        let t = epoch as f64 + done as f64 / steps.max(1) as f64;
        let t_end = t + 1.0 / steps.max(1) as f64;
        let warm = if self.warmup_epochs > 0.0 && t < self.warmup_epochs {
            (t_end / self.warmup_epochs).min(1.0)
        } else {
            1.0
        };
        let rate = match self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Step => self.base_lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32),
            ScheduleKind::Cosine => {
                let span = (self.epochs as f64 - self.warmup_epochs).max(1e-9);
                let progress = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
                self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        rate * warm
    }
}

/// Dynamic loss scaling for fp16 autocast (PyTorch's `GradScaler` rule):
/// scale the loss up so small gradients survive fp16, skip a step whose
/// gradients overflowed and halve the scale, double it after a run of
/// good steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The factor the loss is multiplied by (65536 at the start, at least 1).
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub good_steps: u32,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: 65536.0, good_steps: 0 }
    }
}

impl LossScaler {
    const GROWTH_INTERVAL: u32 = 2000;

    /// Updates after a step; `finite` says whether the gradients were.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale = (self.scale * 0.5).max(1.0);
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaler_halves_on_overflow() {
        let mut s = LossScaler::default();
        s.update(false);
        assert_eq!(s.scale, 32768.0);
    }

    #[test]
    fn schedules_warm_up_and_decay() {
        let s = Schedule {
            kind: ScheduleKind::Cosine,
            base_lr: 1.0,
            warmup_epochs: 1.0,
            epochs: 11,
            step_size: 1,
            gamma: 0.1,
            min_lr: 0.0,
        };
        assert!((s.lr(0, 0, 4) - 0.25).abs() < 1e-12);
        assert!((s.lr(0, 3, 4) - 1.0).abs() < 1e-12);
        assert!((s.lr(6, 0, 4) - 0.5).abs() < 1e-12);
        // The last step still learns; the rate approaches min_lr.
        let last = s.lr(10, 3, 4);
        assert!(last > 0.0 && last < 0.01, "{last}");
        let st = Schedule { kind: ScheduleKind::Step, warmup_epochs: 0.0, step_size: 3, ..s };
        assert_eq!(st.lr(2, 0, 4), 1.0);
        assert!((st.lr(3, 0, 4) - 0.1).abs() < 1e-12);
        assert!((st.lr(6, 0, 4) - 0.01).abs() < 1e-12);
    }
}
