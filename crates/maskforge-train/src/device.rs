//! `--device auto|cpu|cuda|cuda:N`, and the libtorch this build runs on.

use crate::error::{Result, TrainError};
use tch::{Cuda, Device};

/// The libtorch version this crate was built against (from the torch wheel).
pub const LIBTORCH_VERSION: &str = env!("MASKFORGE_LIBTORCH_VERSION");

/// Resolves a device name; `auto` is the first GPU when CUDA works, else
/// the CPU. Asking for a GPU that is not there is an error, not a silent
/// fallback.
pub fn parse_device(name: &str) -> Result<Device> {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "auto" => Ok(if Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = match n.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest.strip_prefix(':').and_then(|i| i.parse::<usize>().ok()).ok_or_else(|| {
                    TrainError::Config(format!("--device {name:?}: expected auto, cpu, cuda or cuda:N"))
                })?,
                None => {
                    return Err(TrainError::Config(format!("--device {name:?}: expected auto, cpu, cuda or cuda:N")))
                }
            };
            let count = Cuda::device_count();
            if (index as i64) >= count {
                return Err(TrainError::Config(if count == 0 {
                    format!(
                        "--device {name}: CUDA is not available (no GPU, or libtorch without CUDA); use --device cpu"
                    )
                } else {
                    format!("--device {name}: only {count} CUDA device(s)")
                }));
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// The `--device` spelling of `d` (`cpu`, `cuda:0`, ...), for logs and metadata.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// Turns on cuDNN's autotuner for the fixed input size of a run.
pub fn configure(d: Device) {
    if d.is_cuda() {
        Cuda::cudnn_set_benchmark(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        if !Cuda::is_available() {
            assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
            assert!(parse_device("cuda:0").unwrap_err().to_string().contains("not available"));
        }
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
    }
}
