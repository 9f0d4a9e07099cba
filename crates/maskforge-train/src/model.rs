//! The classifiers: a torchvision-compatible backbone from `tch::vision`
//! with its head replaced for our classes.
//!
//! Variable names are torchvision's `state_dict` names (`conv1.weight`,
//! `layer1.0.bn1.running_mean`, `fc.weight`; `features.0.0.weight`,
//! `classifier.1.weight` for MobileNetV2), so ImageNet weights exported from
//! torchvision load unchanged and our checkpoints load back into torchvision.
//! Dropout has no parameters, so `--dropout` does not change any name.

use maskforge_train_core::{Arch, Tta};
use std::fmt;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// A backbone plus a linear head of `num_outputs` logits (one for
/// `--loss bce`), with its variables in one `VarStore`.
pub struct Classifier {
    /// Every variable of backbone and head, under torchvision's names.
    pub vs: nn::VarStore,
    /// The backbone.
    pub arch: Arch,
    /// Logits of the head: the class count, or 1 for `--loss bce`.
    pub num_outputs: i64,
    /// Dropout probability before the head, in training only (0 disables it).
    pub dropout: f64,
    backbone: Box<dyn ModuleT>,
    head: nn::Linear,
    frozen: bool,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("arch", &self.arch)
            .field("num_outputs", &self.num_outputs)
            .field("dropout", &self.dropout)
            .field("frozen", &self.frozen)
            .finish()
    }
}

impl Classifier {
    /// A freshly initialised model on `device`.
    pub fn new(arch: Arch, num_outputs: i64, dropout: f64, device: Device) -> Classifier {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let backbone: Box<dyn ModuleT> = match arch {
            Arch::Resnet50 => Box::new(tch::vision::resnet::resnet50_no_final_layer(&root)),
            Arch::Resnet18 => Box::new(tch::vision::resnet::resnet18_no_final_layer(&root)),
            Arch::MobilenetV2 => Box::new(mobilenet_v2_features(&root)),
        };
        let head_path = match arch {
            Arch::MobilenetV2 => &root / "classifier" / "1",
            _ => &root / "fc",
        };
        let head = nn::linear(head_path, arch.feature_dim(), num_outputs, Default::default());
        Classifier { vs, arch, num_outputs, dropout, backbone, head, frozen: false }
    }

    /// Logits `[batch, num_outputs]` (float32) for a normalised batch
    /// `[batch, 3, H, W]`. With a frozen backbone the features are computed
    /// without gradients and with batch norm in inference mode, as a
    /// feature extractor (seed 004's recipe).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let features = if self.frozen {
            tch::no_grad(|| self.backbone.forward_t(xs, false))
        } else {
            self.backbone.forward_t(xs, train)
        };
        features.dropout(self.dropout, train).apply(&self.head).to_kind(Kind::Float)
    }

    /// Inference logits (as `forward_t(xs, false)`), with `Tta::Flip` the
    /// mean of the batch's and of its mirror image's.
    pub fn infer(&self, xs: &Tensor, tta: Tta) -> Tensor {
        let logits = self.forward_t(xs, false);
        match tta {
            Tta::None => logits,
            Tta::Flip => (logits + self.forward_t(&xs.flip([3]), false)) * 0.5,
        }
    }

    /// Stops training everything but the head.
    pub fn freeze_backbone(&mut self) {
        for (name, t) in self.vs.variables() {
            if !self.arch.is_head(&name) {
                let _ = t.set_requires_grad(false);
            }
        }
        self.frozen = true;
    }

    /// Whether [`Self::freeze_backbone`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// All variables (parameters and batch-norm buffers), sorted by name.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The parameters the optimiser updates, sorted by name.
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        self.named_tensors().into_iter().filter(|(_, t)| t.requires_grad()).collect()
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Number of scalar parameters (trainable or not, buffers excluded).
    pub fn parameter_count(&self) -> (i64, i64) {
        let mut all = 0;
        let mut trainable = 0;
        for (name, t) in self.named_tensors() {
            if name.contains("running_") {
                continue;
            }
            let n = t.numel() as i64;
            all += n;
            if t.requires_grad() {
                trainable += n;
            }
        }
        (all, trainable)
    }
}

/// torchvision's MobileNetV2 `features` followed by global average pooling
/// (`[B, 1280]`). Same structure and names as `tch::vision::mobilenet::v2`,
/// without its fixed classifier so that ours can be attached.
fn mobilenet_v2_features(p: &nn::Path) -> impl ModuleT {
    // Conv2d + BatchNorm2d + ReLU6, torchvision's `Conv2dNormActivation`.
    fn cbr(p: nn::Path, c_in: i64, c_out: i64, ks: i64, stride: i64, groups: i64) -> nn::SequentialT {
        let cfg = nn::ConvConfig { stride, padding: (ks - 1) / 2, groups, bias: false, ..Default::default() };
        nn::seq_t()
            .add(nn::conv2d(&p / 0, c_in, c_out, ks, cfg))
            .add(nn::batch_norm2d(&p / 1, c_out, Default::default()))
            .add_fn(|xs| xs.relu().clamp_max(6.))
    }
    fn inverted_residual(p: nn::Path, c_in: i64, c_out: i64, stride: i64, expand: i64) -> impl ModuleT {
        let hidden = expand * c_in;
        let mut conv = nn::seq_t();
        let mut id = 0;
        if expand != 1 {
            conv = conv.add(cbr(&p / id, c_in, hidden, 1, 1, 1));
            id += 1;
        }
        conv = conv
            .add(cbr(&p / id, hidden, hidden, 3, stride, hidden))
            .add(nn::conv2d(&p / (id + 1), hidden, c_out, 1, nn::no_bias()))
            .add(nn::batch_norm2d(&p / (id + 2), c_out, Default::default()));
        nn::func_t(move |xs, train| {
            let ys = xs.apply_t(&conv, train);
            if stride == 1 && c_in == c_out {
                xs + ys
            } else {
                ys
            }
        })
    }
    const SETTINGS: [(i64, i64, i64, i64); 7] =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let f = p / "features";
    let mut c_in = 32;
    let mut features = nn::seq_t().add(cbr(&f / 0, 3, c_in, 3, 2, 1));
    let mut layer = 1;
    for (expand, c_out, n, stride) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { stride } else { 1 };
            features = features.add(inverted_residual(&f / layer / "conv", c_in, c_out, stride, expand));
            c_in = c_out;
            layer += 1;
        }
    }
    features = features.add(cbr(&f / layer, c_in, 1280, 1, 1, 1));
    nn::func_t(move |xs, train| xs.apply_t(&features, train).adaptive_avg_pool2d([1, 1]).flat_view())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_torchvision_and_heads_replaced() {
        let m = Classifier::new(Arch::Resnet18, 3, 0.3, Device::Cpu);
        let names: Vec<String> = m.named_tensors().into_iter().map(|(n, _)| n).collect();
        for expected in
            ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias"]
        {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
        assert_eq!(m.vs.variables()["fc.weight"].size(), [3, 512]);
        let x = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(m.forward_t(&x, false).size(), [2, 3]);

        let mut mb = Classifier::new(Arch::MobilenetV2, 1, 0.2, Device::Cpu);
        let vars = mb.vs.variables();
        assert_eq!(vars["classifier.1.weight"].size(), [1, 1280]);
        assert!(vars.contains_key("features.1.conv.0.0.weight"));
        assert!(vars.contains_key("features.18.1.running_var"));
        assert_eq!(mb.forward_t(&x, true).size(), [2, 1]);
        mb.freeze_backbone();
        let trainable: Vec<String> = mb.trainable().into_iter().map(|(n, _)| n).collect();
        assert_eq!(trainable, ["classifier.1.bias", "classifier.1.weight"]);
    }

    #[test]
    fn flip_tta_averages_the_logits_of_the_image_and_its_mirror_image() {
        tch::manual_seed(5);
        let m = Classifier::new(Arch::Resnet18, 2, 0.0, Device::Cpu);
        let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu));
        let max_diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        let plain = m.infer(&x, Tta::None);
        assert_eq!(max_diff(&plain, &m.forward_t(&x, false)), 0.0);
        let mirrored = m.infer(&x.flip([3]), Tta::None);
        assert!(max_diff(&plain, &mirrored) > 1e-4, "the net is not symmetric, so the mirror image counts");
        let both = m.infer(&x, Tta::Flip);
        assert!(max_diff(&both, &((&plain + &mirrored) * 0.5)) < 1e-5);
        // An image and its mirror image get the same answer.
        assert!(max_diff(&both, &m.infer(&x.flip([3]), Tta::Flip)) < 1e-5);
    }
}
