//! Pretrained weights: untrained torchvision models (with randomised
//! batch-norm statistics, so that buffers matter) are saved by the venv's
//! torchvision, exported with `xtask/convert_weights.py`, loaded into the
//! tch models, and must give torchvision's logits (eval mode, same input)
//! within 1e-4. A file with a missing, renamed or mis-shaped tensor is an
//! error naming the tensor.

use maskforge_train::checkpoint::{load_into, read_safetensors, write_safetensors, LoadMode};
use maskforge_train::{Arch, Classifier};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

type Named = Vec<(String, Tensor)>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MASKFORGE_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "{} missing: run the project set-up (cargo xtask setup) or set MASKFORGE_PYTHON",
        venv.display()
    );
    venv
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const MAKE_MODELS: &str = r#"
import sys, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
x = torch.rand(2, 3, 64, 64) * 4 - 2
probe = {"input": x}
for name in ["resnet50", "resnet18", "mobilenet_v2"]:
    m = getattr(torchvision.models, name)(weights=None)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.num_batches_tracked.fill_(7)
    m.eval()
    with torch.no_grad():
        probe[name] = m(x)
    torch.save(m.state_dict(), f"{out}/{name}.pth")
torch.save(probe, f"{out}/probe.pth")
"#;

#[test]
fn torchvision_weights_load_and_match_logits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let py = python();
    let convert = repo().join("xtask/convert_weights.py");
    run(Command::new(&py).arg("-c").arg(MAKE_MODELS).arg(d));
    for name in ["resnet50", "resnet18", "mobilenet_v2", "probe"] {
        run(Command::new(&py)
            .arg(&convert)
            .arg(d.join(format!("{name}.pth")))
            .arg(d.join(format!("{name}.safetensors"))));
    }
    let probe = read_safetensors(&d.join("probe.safetensors")).unwrap();
    let input = &probe.tensors["input"];

    for arch in [Arch::Resnet50, Arch::Resnet18, Arch::MobilenetV2] {
        let path = d.join(format!("{}.safetensors", arch.name()));
        let file = read_safetensors(&path).unwrap();
        let model = Classifier::new(arch, 1000, arch.default_dropout(), Device::Cpu);
        let summary = load_into(&model, &file, &path, LoadMode::Exact).unwrap();
        assert!(summary.skipped_buffers > 0, "num_batches_tracked buffers are skipped");
        assert_eq!(summary.loaded, model.named_tensors().len());
        let logits = tch::no_grad(|| model.forward_t(input, false));
        let expected = &probe.tensors[arch.name()];
        let diff = (&logits - expected).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{arch}: max |tch - torchvision| = {diff}");
        assert!(expected.abs().max().double_value(&[]) > 1e-3, "{arch}: logits not trivially zero");

        // Pretrained into a 2-class model: backbone loads, the 1000-class
        // head is left out and reported.
        let two = Classifier::new(arch, 2, 0.0, Device::Cpu);
        let s = load_into(&two, &file, &path, LoadMode::Pretrained).unwrap();
        assert_eq!(s.head_not_loaded.len(), 2, "{s:?}");
        let k = if arch == Arch::MobilenetV2 { "features.0.0.weight" } else { "conv1.weight" };
        assert!(two.vs.variables()[k].equal(&file.tensors[k]));
    }

    // Broken files: each problem is named.
    let path = d.join("resnet50.safetensors");
    let file = read_safetensors(&path).unwrap();
    let model = Classifier::new(Arch::Resnet50, 1000, 0.0, Device::Cpu);
    let broken = |edit: &dyn Fn(&mut Named)| -> String {
        let mut tensors: Named = file.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        edit(&mut tensors);
        let p = d.join("broken.safetensors");
        write_safetensors(&p, &tensors, HashMap::new()).unwrap();
        let f = read_safetensors(&p).unwrap();
        load_into(&model, &f, &p, LoadMode::Pretrained).unwrap_err().to_string()
    };
    let e = broken(&|t| t.retain(|(n, _)| n != "layer1.0.bn1.running_mean"));
    assert!(e.contains("missing") && e.contains("layer1.0.bn1.running_mean"), "{e}");
    let e = broken(&|t| {
        for (n, _) in t.iter_mut() {
            if n == "layer2.0.conv1.weight" {
                *n = "layer2.0.conv1.weights".into();
            }
        }
    });
    assert!(
        e.contains("layer2.0.conv1.weight") && e.contains("unexpected") && e.contains("layer2.0.conv1.weights"),
        "{e}"
    );
    let e = broken(&|t| {
        for (n, v) in t.iter_mut() {
            if n == "conv1.weight" {
                *v = Tensor::zeros([64, 3, 3, 3], (Kind::Float, Device::Cpu));
            }
        }
    });
    assert!(e.contains("conv1.weight is [64, 3, 3, 3] in the file, [64, 3, 7, 7]"), "{e}");
    assert!(e.starts_with(&format!("weights {}", d.join("broken.safetensors").display())), "{e}");
    // Nothing was copied from the broken files.
    assert!(model.vs.variables()["conv1.weight"].abs().sum(Kind::Float).double_value(&[]) > 0.0);
}
