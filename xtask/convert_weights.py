#!/usr/bin/env python3
"""Export PyTorch weights to safetensors for `maskforge train --weights`.

    python xtask/convert_weights.py IN.pth OUT.safetensors

IN is anything `torch.load` gives: a state_dict (torchvision's
`model.state_dict()`, e.g. ImageNet weights saved with `torch.save`), a dict
holding one under "state_dict" or "model", or a whole pickled nn.Module.
Tensor names are written unchanged (torchvision's `conv1.weight`,
`layer1.0.bn1.running_mean`, `fc.weight`, ...), except a leading `module.`
left by DataParallel, which is removed. Buffers such as
`num_batches_tracked` are written too; maskforge skips them when loading.

The file is written with the standard library and torch only (the
safetensors package is not needed): an 8-byte little-endian header length,
a JSON header of dtype/shape/offsets, then the raw little-endian bytes.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # a pickled nn.Module needs the full unpickler
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            raise SystemExit(f"{path}: cannot load with torch.load: {first}")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise SystemExit(f"{path}: no state_dict found (got {type(obj).__name__})")
    tensors = {}
    for name, value in obj.items():
        if not torch.is_tensor(value):
            raise SystemExit(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        if name.startswith("module."):
            name = name[len("module."):]
        tensors[name] = value
    return tensors


def write_safetensors(tensors, out_path, metadata=None):
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in DTYPES:
            raise SystemExit(f"tensor {name!r}: unsupported dtype {t.dtype}")
        # Reinterpret as bytes; reshape(-1) first so 0-d buffers work too.
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * ((8 - len(blob) % 8) % 8)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for c in chunks:
            f.write(c)
    os.replace(tmp, out_path)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    tensors = load_state_dict(src)
    write_safetensors(tensors, dst)
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {dst}: {len(tensors)} tensors, {n} values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
