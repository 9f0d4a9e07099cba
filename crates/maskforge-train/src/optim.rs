//! Optimisers with state we can save: SGD (momentum, weight decay), Adam
//! and AdamW, following PyTorch's update rules exactly (`torch.optim`'s
//! single-tensor implementations), plus the learning-rate schedule and the
//! loss scaler used with fp16 autocast.
//!
//! tch's own optimisers keep their state (momentum buffers, Adam moments)
//! inside libtorch with no way to read it out, so a resumed run would
//! restart them. These keep it in tensors that go into `last.safetensors`,
//! so `--resume` continues the optimiser exactly where it stopped.

use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
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

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

#[derive(Default)]
struct ParamState {
    /// SGD momentum buffer.
    momentum: Option<Tensor>,
    /// Adam first and second moments.
    exp_avg: Option<Tensor>,
    exp_avg_sq: Option<Tensor>,
}

/// An optimiser over named parameters.
pub struct Optimizer {
    pub config: OptimConfig,
    params: Vec<(String, Tensor)>,
    state: Vec<ParamState>,
    /// Completed optimisation steps (Adam's bias correction uses it).
    pub steps: u64,
}

impl Optimizer {
    pub fn new(config: OptimConfig, params: Vec<(String, Tensor)>) -> Self {
        let state = params.iter().map(|_| ParamState::default()).collect();
        Optimizer { config, params, state, steps: 0 }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// Multiplies all gradients by `factor` and says whether they are all
    /// finite (the loss scaler's unscale-and-check).
    pub fn unscale_grads(&mut self, factor: f64) -> bool {
        tch::no_grad(|| {
            let mut total: Option<Tensor> = None;
            for (_, p) in &self.params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = g.g_mul_scalar_(factor);
                let s = g.abs().sum(tch::Kind::Float);
                total = Some(match total {
                    None => s,
                    Some(t) => t + s,
                });
            }
            total.map(|t| t.double_value(&[]).is_finite()).unwrap_or(true)
        })
    }

    /// One update with learning rate `lr`, using the current gradients.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let c = self.config;
        let step = self.steps as i32;
        tch::no_grad(|| {
            for ((_, p), st) in self.params.iter_mut().zip(self.state.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                match c.kind {
                    OptimizerKind::Sgd => {
                        let mut d = if c.weight_decay != 0.0 { &g + &*p * c.weight_decay } else { g.shallow_clone() };
                        if c.momentum != 0.0 {
                            let buf = match st.momentum.take() {
                                None => d.detach().copy(),
                                Some(mut buf) => {
                                    let _ = buf.g_mul_scalar_(c.momentum);
                                    let _ = buf.g_add_(&d);
                                    buf
                                }
                            };
                            d = buf.shallow_clone();
                            st.momentum = Some(buf);
                        }
                        let _ = p.g_sub_(&(d * lr));
                    }
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        let g = if c.kind == OptimizerKind::Adam && c.weight_decay != 0.0 {
                            &g + &*p * c.weight_decay
                        } else {
                            g
                        };
                        if c.kind == OptimizerKind::Adamw && c.weight_decay != 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        }
                        let mut m = st.exp_avg.take().unwrap_or_else(|| p.zeros_like());
                        let mut v = st.exp_avg_sq.take().unwrap_or_else(|| p.zeros_like());
                        let _ = m.g_mul_scalar_(c.beta1);
                        let _ = m.g_add_(&(&g * (1.0 - c.beta1)));
                        let _ = v.g_mul_scalar_(c.beta2);
                        let _ = v.g_add_(&(&g * &g * (1.0 - c.beta2)));
                        let bias1 = 1.0 - c.beta1.powi(step);
                        let bias2 = 1.0 - c.beta2.powi(step);
                        let denom = v.sqrt() / bias2.sqrt() + c.eps;
                        let _ = p.g_sub_(&(&m / denom * (lr / bias1)));
                        st.exp_avg = Some(m);
                        st.exp_avg_sq = Some(v);
                    }
                }
            }
        });
    }

    /// The state as named tensors, `optimizer.<slot>.<param>`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for ((name, _), st) in self.params.iter().zip(&self.state) {
            for (slot, t) in [("momentum_buffer", &st.momentum), ("exp_avg", &st.exp_avg), ("exp_avg_sq", &st.exp_avg_sq)] {
                if let Some(t) = t {
                    out.push((format!("{}{slot}.{name}", crate::checkpoint::OPTIMIZER_PREFIX), t.shallow_clone()));
                }
            }
        }
        out
    }

    /// Restores the state saved by [`state_tensors`](Self::state_tensors);
    /// a buffer of the wrong shape is an error naming it.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        let by_name: HashMap<&str, usize> = self.params.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
        for (key, t) in tensors {
            let Some(rest) = key.strip_prefix(crate::checkpoint::OPTIMIZER_PREFIX) else { continue };
            let Some((slot, name)) = rest.split_once('.') else { continue };
            let Some(&i) = by_name.get(name) else {
                return Err(TrainError::Config(format!("optimiser state {key}: no such trainable parameter")));
            };
            let p = &self.params[i].1;
            if t.size() != p.size() {
                return Err(TrainError::Config(format!("optimiser state {key}: shape {:?}, parameter {:?}", t.size(), p.size())));
            }
            let t = t.f_to_device(p.device())?.f_to_kind(p.kind())?;
            let st = &mut self.state[i];
            match slot {
                "momentum_buffer" => st.momentum = Some(t),
                "exp_avg" => st.exp_avg = Some(t),
                "exp_avg_sq" => st.exp_avg_sq = Some(t),
                other => return Err(TrainError::Config(format!("optimiser state {key}: unknown slot {other}"))),
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
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
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_epochs: f64,
    pub epochs: usize,
    pub step_size: usize,
    pub gamma: f64,
    pub min_lr: f64,
}

impl Schedule {
    /// The rate at `epoch` (0-based) after `done` of its `steps` batches.
    pub fn lr(&self, epoch: usize, done: usize, steps: usize) -> f64 {
        // Position at the start of this step; warm-up counts the step itself
        // so that its first step is not taken at a zero rate.
        let t = epoch as f64 + done as f64 / steps.max(1) as f64;
        let t_end = t + 1.0 / steps.max(1) as f64;
        let warm = if self.warmup_epochs > 0.0 && t < self.warmup_epochs { (t_end / self.warmup_epochs).min(1.0) } else { 1.0 };
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
    pub scale: f64,
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
    use tch::{Device, Kind};

    fn param(v: &[f32]) -> Tensor {
        Tensor::from_slice(v).set_requires_grad(true)
    }

    fn set_grad(p: &Tensor, g: &[f32]) {
        let loss = (p * Tensor::from_slice(g)).sum(Kind::Float);
        loss.backward();
    }

    #[test]
    fn sgd_momentum_matches_pytorch_by_hand() {
        // torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
        // p=1, g=2: d = 2 + 0.01 = 2.01, buf = 2.01, p = 1 - 0.201 = 0.799;
        // step 2, g=2: d = 2 + 0.00799 = 2.00799, buf = 0.9*2.01 + 2.00799 =
        // 3.81699, p = 0.799 - 0.381699 = 0.417301.
        let p = param(&[1.0]);
        let cfg = OptimConfig { kind: OptimizerKind::Sgd, momentum: 0.9, weight_decay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), p.shallow_clone())]);
        for _ in 0..2 {
            opt.zero_grad();
            set_grad(&p, &[2.0]);
            opt.step(0.1);
        }
        assert!((p.double_value(&[0]) - 0.417301).abs() < 1e-6, "{}", p.double_value(&[0]));

        // Saved and restored state continues identically.
        let saved: BTreeMap<String, Tensor> = opt.state_tensors().into_iter().map(|(n, t)| (n, t.copy())).collect();
        assert!(saved.contains_key("optimizer.momentum_buffer.w"));
        let q = param(&[0.417301]);
        let mut opt2 = Optimizer::new(cfg, vec![("w".into(), q.shallow_clone())]);
        opt2.load_state(&saved, opt.steps).unwrap();
        for (o, t) in [(&mut opt, &p), (&mut opt2, &q)] {
            o.zero_grad();
            set_grad(t, &[1.0]);
            o.step(0.1);
        }
        assert!((p.double_value(&[0]) - q.double_value(&[0])).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_moves_by_lr_and_adamw_decays() {
        // Adam's first step is lr * sign(g) (bias-corrected m/sqrt(v) = ±1).
        let p = param(&[1.0, -1.0]);
        let cfg = OptimConfig { kind: OptimizerKind::Adam, momentum: 0.0, weight_decay: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), p.shallow_clone())]);
        set_grad(&p, &[3.0, -0.5]);
        opt.step(0.01);
        assert!((p.double_value(&[0]) - 0.99).abs() < 1e-6);
        assert!((p.double_value(&[1]) + 0.99).abs() < 1e-6);

        let p = param(&[1.0]);
        let cfg = OptimConfig { kind: OptimizerKind::Adamw, weight_decay: 0.1, ..cfg };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), p.shallow_clone())]);
        set_grad(&p, &[1.0]);
        opt.step(0.01);
        // p * (1 - 0.01*0.1) - 0.01
        assert!((p.double_value(&[0]) - (0.999 - 0.01)).abs() < 1e-6);
        let _ = Device::Cpu;
    }

    #[test]
    fn unscale_detects_overflow() {
        let p = param(&[1.0]);
        let cfg = OptimConfig { kind: OptimizerKind::Sgd, momentum: 0.0, weight_decay: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), p.shallow_clone())]);
        set_grad(&p, &[4.0]);
        assert!(opt.unscale_grads(0.5));
        assert!((p.grad().double_value(&[0]) - 2.0).abs() < 1e-9);
        opt.zero_grad();
        set_grad(&p, &[f32::INFINITY]);
        assert!(!opt.unscale_grads(1.0));
        let mut s = LossScaler::default();
        s.update(false);
        assert_eq!(s.scale, 32768.0);
    }

    #[test]
    fn schedules_warm_up_and_decay() {
        let s = Schedule { kind: ScheduleKind::Cosine, base_lr: 1.0, warmup_epochs: 1.0, epochs: 11, step_size: 1, gamma: 0.1, min_lr: 0.0 };
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
