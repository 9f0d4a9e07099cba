//! The backbones by name, with the facts about them that need no tensors:
//! feature width, torchvision's head name, default dropout.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The backbones the seeds compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Resnet50,
    Resnet18,
    MobilenetV2,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Resnet50, Arch::Resnet18, Arch::MobilenetV2];

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

    pub fn is_head(self, name: &str) -> bool {
        name.strip_prefix(self.head_prefix()).is_some_and(|rest| rest.starts_with('.'))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_heads() {
        assert!(Arch::MobilenetV2.is_head("classifier.1.weight"));
        assert!(!Arch::Resnet50.is_head("fcx.weight"));
        assert_eq!("mobilenet-v2".parse::<Arch>(), Ok(Arch::MobilenetV2));
    }
}
