//! The backbones (`--arch`), the one enum of them for weights and training:
//! their official checkpoint URLs and the exact tensors (torchvision
//! `state_dict` names and shapes) a checkpoint of each must hold, so a
//! mirror serving the wrong model is caught before anything is cached; and
//! the facts training needs without tensors (feature width, head name,
//! default dropout).

use crate::pth::StateDict;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The largest checkpoint `fetch` takes unless told otherwise
/// ([`FetchRequest::max_bytes`](crate::FetchRequest::max_bytes), `weights
/// fetch --max-bytes N`): 256 MiB (268435456 bytes). The largest published
/// checkpoint of [`Arch::ALL`], ResNet50's `resnet50-0676ba61.pth`, is
/// about 98 MiB (25.6 M float32 values and some kilobytes of pickle and
/// zip); the cap is that with more than twice the room, rounded up to a
/// power of two, so a mirror's re-save fits while a runaway server or a
/// wrong file cannot fill a disk.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// A backbone (`--arch`; the names of `config.json` and checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// ResNet-50 (2048 features).
    Resnet50,
    /// ResNet-18 (512 features).
    Resnet18,
    /// MobileNetV2 (1280 features).
    MobilenetV2,
}

impl Arch {
    /// Every backbone, in `--arch`'s order.
    pub const ALL: [Arch; 3] = [Arch::Resnet50, Arch::Resnet18, Arch::MobilenetV2];

    /// Its `--arch` name: `resnet50`, `resnet18`, `mobilenet_v2`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet50 => "resnet50",
            Arch::Resnet18 => "resnet18",
            Arch::MobilenetV2 => "mobilenet_v2",
        }
    }

    /// Width of the pooled features the head sees.
    pub fn feature_dim(self) -> i64 {
        match self {
            Arch::Resnet50 => 2048,
            Arch::Resnet18 => 512,
            Arch::MobilenetV2 => 1280,
        }
    }

    /// torchvision's name of the final linear layer.
    pub fn head_prefix(self) -> &'static str {
        match self {
            Arch::Resnet50 | Arch::Resnet18 => "fc",
            Arch::MobilenetV2 => "classifier.1",
        }
    }

    /// torchvision's own default dropout before the head (MobileNetV2's
    /// classifier has `Dropout(0.2)`, ResNets none).
    pub fn default_dropout(self) -> f64 {
        match self {
            Arch::MobilenetV2 => 0.2,
            _ => 0.0,
        }
    }

    /// Whether the tensor `name` belongs to the head.
    pub fn is_head(self, name: &str) -> bool {
        name.strip_prefix(self.head_prefix()).is_some_and(|rest| rest.starts_with('.'))
    }

    /// torchvision's `IMAGENET1K_V1` checkpoint. Its file name ends in the
    /// first hex digits of the file's SHA-256 (torch.hub's check).
    pub fn official_url(self) -> &'static str {
        match self {
            Arch::Resnet50 => "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            Arch::Resnet18 => "https://download.pytorch.org/models/resnet18-f37072fd.pth",
            Arch::MobilenetV2 => "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        }
    }

    /// Every parameter and batch-norm buffer of torchvision's model with
    /// its shape, in torchvision's order; `num_batches_tracked` buffers are
    /// not listed (optional, scalar int64, unused by maskforge).
    pub fn expected_tensors(self) -> Vec<(String, Vec<usize>)> {
        let mut t = Tensors::default();
        match self {
            Arch::Resnet18 => resnet(&mut t, false, [2, 2, 2, 2]),
            Arch::Resnet50 => resnet(&mut t, true, [3, 4, 6, 3]),
            Arch::MobilenetV2 => mobilenet_v2(&mut t),
        }
        t.0
    }

    /// Checks that `sd` is this model's state_dict: the same names with the
    /// same shapes, floating-point parameters and buffers. One message
    /// lists every problem (the first few of each kind).
    pub fn check(self, sd: &StateDict) -> Result<(), String> {
        let expected = self.expected_tensors();
        let mut missing = Vec::new();
        let mut misshaped = Vec::new();
        let mut not_float = Vec::new();
        for (name, shape) in &expected {
            match sd.get(name) {
                None => missing.push(name.clone()),
                Some(t) if &t.shape != shape => {
                    misshaped.push(format!("{name} is {:?} in the file, {shape:?} in torchvision's {self}", t.shape))
                }
                Some(t) if !t.dtype.is_float() => not_float.push(format!("{name} ({})", t.dtype.name())),
                Some(_) => {}
            }
        }
        let mut extra = Vec::new();
        for (name, t) in &sd.tensors {
            if name.ends_with("num_batches_tracked") {
                if t.numel() != 1 || t.dtype.is_float() {
                    misshaped.push(format!("{name} is {:?} {}, not a scalar int", t.shape, t.dtype.name()));
                }
            } else if !expected.iter().any(|(n, _)| n == name) {
                extra.push(name.clone());
            }
        }
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("{} tensor(s) missing: {}", missing.len(), list(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("{} unexpected tensor(s): {}", extra.len(), list(&extra)));
        }
        if !misshaped.is_empty() {
            parts.push(format!("{} mis-shaped: {}", misshaped.len(), list(&misshaped)));
        }
        if !not_float.is_empty() {
            parts.push(format!("{} not floating point: {}", not_float.len(), list(&not_float)));
        }
        if parts.is_empty() {
            Ok(())
        } else {
            Err(format!("not torchvision's {self} state_dict: {}", parts.join("; ")))
        }
    }
}

fn list(items: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "resnet50" => Ok(Arch::Resnet50),
            "resnet18" => Ok(Arch::Resnet18),
            "mobilenet_v2" | "mobilenetv2" => Ok(Arch::MobilenetV2),
            _ => Err(format!("unknown backbone {s:?}: expected resnet50, resnet18 or mobilenet_v2")),
        }
    }
}

#[derive(Default)]
struct Tensors(Vec<(String, Vec<usize>)>);

impl Tensors {
    fn add(&mut self, name: String, shape: Vec<usize>) {
        self.0.push((name, shape));
    }

    fn conv(&mut self, p: &str, c_out: usize, c_in_per_group: usize, k: usize) {
        self.add(format!("{p}.weight"), vec![c_out, c_in_per_group, k, k]);
    }

    fn bn(&mut self, p: &str, c: usize) {
        for n in ["weight", "bias", "running_mean", "running_var"] {
            self.add(format!("{p}.{n}"), vec![c]);
        }
    }

    fn linear(&mut self, p: &str, c_out: usize, c_in: usize) {
        self.add(format!("{p}.weight"), vec![c_out, c_in]);
        self.add(format!("{p}.bias"), vec![c_out]);
    }
}

/// torchvision's ResNet: BasicBlock (18, 34) or Bottleneck (50+).
fn resnet(t: &mut Tensors, bottleneck: bool, blocks: [usize; 4]) {
    let expansion = if bottleneck { 4 } else { 1 };
    t.conv("conv1", 64, 3, 7);
    t.bn("bn1", 64);
    let mut c_in = 64;
    for (i, &n) in blocks.iter().enumerate() {
        let planes = 64 << i;
        let stride = if i == 0 { 1 } else { 2 };
        for b in 0..n {
            let p = format!("layer{}.{b}", i + 1);
            if bottleneck {
                t.conv(&format!("{p}.conv1"), planes, c_in, 1);
                t.bn(&format!("{p}.bn1"), planes);
                t.conv(&format!("{p}.conv2"), planes, planes, 3);
                t.bn(&format!("{p}.bn2"), planes);
                t.conv(&format!("{p}.conv3"), planes * expansion, planes, 1);
                t.bn(&format!("{p}.bn3"), planes * expansion);
            } else {
                t.conv(&format!("{p}.conv1"), planes, c_in, 3);
                t.bn(&format!("{p}.bn1"), planes);
                t.conv(&format!("{p}.conv2"), planes, planes, 3);
                t.bn(&format!("{p}.bn2"), planes);
            }
            if b == 0 && (stride != 1 || c_in != planes * expansion) {
                t.conv(&format!("{p}.downsample.0"), planes * expansion, c_in, 1);
                t.bn(&format!("{p}.downsample.1"), planes * expansion);
            }
            c_in = planes * expansion;
        }
    }
    t.linear("fc", 1000, 512 * expansion);
}

/// torchvision's MobileNetV2 (width 1.0): `features.N` blocks and `classifier.1`.
fn mobilenet_v2(t: &mut Tensors) {
    const SETTINGS: [(usize, usize, usize); 7] =
        [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)];
    t.conv("features.0.0", 32, 3, 3);
    t.bn("features.0.1", 32);
    let mut c_in = 32;
    let mut layer = 1;
    for (expand, c_out, n) in SETTINGS {
        for _ in 0..n {
            let hidden = c_in * expand;
            let p = format!("features.{layer}.conv");
            let mut id = 0;
            if expand != 1 {
                t.conv(&format!("{p}.0.0"), hidden, c_in, 1);
                t.bn(&format!("{p}.0.1"), hidden);
                id = 1;
            }
            t.conv(&format!("{p}.{id}.0"), hidden, 1, 3); // depthwise
            t.bn(&format!("{p}.{id}.1"), hidden);
            t.conv(&format!("{p}.{}", id + 1), c_out, hidden, 1);
            t.bn(&format!("{p}.{}", id + 2), c_out);
            c_in = c_out;
            layer += 1;
        }
    }
    t.conv(&format!("features.{layer}.0"), 1280, c_in, 1);
    t.bn(&format!("features.{layer}.1"), 1280);
    t.linear("classifier.1", 1000, 1280);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pth::{DType, RawTensor};

    fn params(m: Arch) -> usize {
        m.expected_tensors()
            .iter()
            .filter(|(n, _)| !n.contains("running_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    #[test]
    fn counts_match_torchvision() {
        // len(state_dict()) minus the num_batches_tracked buffers, and the
        // parameter counts torchvision documents for each model.
        assert_eq!(Arch::Resnet18.expected_tensors().len(), 122 - 20);
        assert_eq!(Arch::Resnet50.expected_tensors().len(), 320 - 53);
        assert_eq!(Arch::MobilenetV2.expected_tensors().len(), 314 - 52);
        assert_eq!(params(Arch::Resnet18), 11_689_512);
        assert_eq!(params(Arch::Resnet50), 25_557_032);
        assert_eq!(params(Arch::MobilenetV2), 3_504_872);
    }

    #[test]
    fn the_default_cap_fits_every_checkpoint_with_room() {
        // float32 values of every tensor: a checkpoint's bulk.
        let bytes = |m: Arch| m.expected_tensors().iter().map(|(_, s)| 4 * s.iter().product::<usize>() as u64).sum();
        let largest: u64 = Arch::ALL.into_iter().map(bytes).max().unwrap();
        assert_eq!(largest, bytes(Arch::Resnet50));
        assert!(largest > 97 << 20 && largest < 98 << 20, "{largest}");
        assert!(2 * largest < DEFAULT_MAX_BYTES && DEFAULT_MAX_BYTES < 4 * largest);
        assert_eq!(DEFAULT_MAX_BYTES, 268_435_456);
    }

    #[test]
    fn names_parse_like_arch() {
        assert_eq!("mobilenet-v2".parse::<Arch>(), Ok(Arch::MobilenetV2));
        assert_eq!("ResNet50".parse::<Arch>(), Ok(Arch::Resnet50));
        assert!("vgg16".parse::<Arch>().unwrap_err().contains("expected resnet50"));
        for m in Arch::ALL {
            assert_eq!(m.name().parse::<Arch>(), Ok(m));
            assert!(m.official_url().ends_with(".pth"));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
        }
    }

    #[test]
    fn heads_are_the_last_linear_layer() {
        assert!(Arch::MobilenetV2.is_head("classifier.1.weight"));
        assert!(!Arch::Resnet50.is_head("fcx.weight"));
        for m in Arch::ALL {
            let head = format!("{}.weight", m.head_prefix());
            let shape = m.expected_tensors().into_iter().find(|(n, _)| *n == head).map(|(_, s)| s);
            assert_eq!(shape, Some(vec![1000, m.feature_dim() as usize]), "{m}");
        }
    }

    #[test]
    fn check_names_every_problem() {
        let f32t = |shape: &[usize]| RawTensor {
            dtype: DType::F32,
            shape: shape.to_vec(),
            data: vec![0; shape.iter().product::<usize>() * 4],
        };
        let mut sd = StateDict::default();
        for (n, s) in Arch::Resnet18.expected_tensors() {
            sd.tensors.push((n, f32t(&s)));
        }
        sd.tensors
            .push(("bn1.num_batches_tracked".into(), RawTensor { dtype: DType::I64, shape: vec![], data: vec![0; 8] }));
        assert_eq!(Arch::Resnet18.check(&sd), Ok(()));
        let e = Arch::Resnet50.check(&sd).unwrap_err();
        assert!(e.contains("not torchvision's resnet50") && e.contains("missing") && e.contains("mis-shaped"), "{e}");

        sd.tensors.retain(|(n, _)| n != "layer1.0.bn1.running_var");
        sd.tensors.push(("fc.extra".into(), f32t(&[1])));
        sd.tensors[0].1 = f32t(&[64, 3, 3, 3]);
        sd.tensors[1].1.dtype = DType::I32;
        let e = Arch::Resnet18.check(&sd).unwrap_err();
        assert!(e.contains("1 tensor(s) missing: layer1.0.bn1.running_var"), "{e}");
        assert!(e.contains("1 unexpected tensor(s): fc.extra"), "{e}");
        assert!(
            e.contains("conv1.weight is [64, 3, 3, 3] in the file, [64, 3, 7, 7] in torchvision's resnet18"),
            "{e}"
        );
        assert!(e.contains("not floating point: bn1.weight (int32)"), "{e}");
    }
}
