//! Optimisers with state we can save: SGD (momentum, weight decay), Adam
//! and AdamW, following PyTorch's update rules exactly (`torch.optim`'s
//! single-tensor implementations). Their settings, the learning-rate
//! schedule and the loss scaler are tensor-free and live in
//! `maskforge_train_core::optim`, re-exported here.
//!
//! tch's own optimisers keep their state (momentum buffers, Adam moments)
//! inside libtorch with no way to read it out, so a resumed run would
//! restart them. These keep it in tensors that go into `last.safetensors`,
//! so `--resume` continues the optimiser exactly where it stopped.

use crate::error::{torch, Result, TrainError};
use maskforge_train_core::meta::OPTIMIZER_PREFIX;
use std::collections::{BTreeMap, HashMap};
use tch::Tensor;

pub use maskforge_train_core::optim::{LossScaler, OptimConfig, OptimizerKind, Schedule, ScheduleKind};

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
    /// Algorithm and hyper-parameters (the learning rate is set per step).
    pub config: OptimConfig,
    params: Vec<(String, Tensor)>,
    state: Vec<ParamState>,
    /// Completed optimisation steps (Adam's bias correction uses it).
    pub steps: u64,
}

impl Optimizer {
    /// An optimiser over `params` (name, tensor) with no state yet.
    pub fn new(config: OptimConfig, params: Vec<(String, Tensor)>) -> Self {
        let state = params.iter().map(|_| ParamState::default()).collect();
        Optimizer { config, params, state, steps: 0 }
    }

    /// Sets every parameter's gradient to zero before the next backward pass.
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
            for (slot, t) in
                [("momentum_buffer", &st.momentum), ("exp_avg", &st.exp_avg), ("exp_avg_sq", &st.exp_avg_sq)]
            {
                if let Some(t) = t {
                    out.push((format!("{OPTIMIZER_PREFIX}{slot}.{name}"), t.shallow_clone()));
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
            let Some(rest) = key.strip_prefix(OPTIMIZER_PREFIX) else { continue };
            let Some((slot, name)) = rest.split_once('.') else { continue };
            let Some(&i) = by_name.get(name) else {
                return Err(TrainError::Config(format!("optimiser state {key}: no such trainable parameter")));
            };
            let p = &self.params[i].1;
            if t.size() != p.size() {
                return Err(TrainError::Config(format!(
                    "optimiser state {key}: shape {:?}, parameter {:?}",
                    t.size(),
                    p.size()
                )));
            }
            let t = t.f_to_device(p.device()).and_then(|t| t.f_to_kind(p.kind())).map_err(torch)?;
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
        let cfg = OptimConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
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
        let cfg = OptimConfig {
            kind: OptimizerKind::Adam,
            momentum: 0.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
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
        let cfg = OptimConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut opt = Optimizer::new(cfg, vec![("w".into(), p.shallow_clone())]);
        set_grad(&p, &[4.0]);
        assert!(opt.unscale_grads(0.5));
        assert!((p.grad().double_value(&[0]) - 2.0).abs() < 1e-9);
        opt.zero_grad();
        set_grad(&p, &[f32::INFINITY]);
        assert!(!opt.unscale_grads(1.0));
    }
}
