#!/usr/bin/env python3
"""The PyTorch + torchvision counterpart of `bench_train` (cargo xtask bench train).

    python xtask/bench_train_pytorch.py --work target/bench/train [--device auto] [--batch N] [--steps N]

Run `bench_train` first: it writes the 256 px JPEG face crops to WORK/crops/,
which this script reads, so both measure the same files with the same work:

* the input pipeline alone: decode + RandomResizedCrop(224, scale 0.85) +
  horizontal flip + rotation ±10° + ColorJitter(0.1, 0.1, 0.1) + ToTensor +
  Normalize, through a DataLoader with 0 workers (in the main process, the
  closest to one thread) and with one worker per core;
* ResNet50 training images/s at 112 and 224 px: SGD (lr 0.01, momentum 0.9,
  wd 5e-4), cross-entropy, torch.autocast + GradScaler on CUDA with cudnn
  benchmark mode, fed by the DataLoader, timed after warm-up steps.

Prints a table and writes WORK/bench_train_pytorch.json.
"""
import argparse
import glob
import json
import os
import time

import torch
import torchvision
from torchvision import transforms
from torchvision.io import ImageReadMode, decode_image


class Crops(torch.utils.data.Dataset):
    def __init__(self, files, transform):
        self.files = files
        self.transform = transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = decode_image(self.files[i], mode=ImageReadMode.RGB)  # uint8 CHW
        return self.transform(img), i % 2


def make_transform(size):
    return transforms.Compose([
        transforms.RandomResizedCrop(size, scale=(0.85, 1.0), antialias=True),
        transforms.RandomHorizontalFlip(0.5),
        transforms.RandomRotation(10),
        transforms.ColorJitter(0.1, 0.1, 0.1),
        transforms.ConvertImageDtype(torch.float32),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])


def loader(files, size, batch, workers, shuffle=True):
    return torch.utils.data.DataLoader(
        Crops(files, make_transform(size)),
        batch_size=batch,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        drop_last=False,
    )


def pipeline_rate(files, workers, rounds):
    dl = loader(files, 224, 32, workers)
    for _ in dl:  # start the workers
        break
    n = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for x, _y in dl:
            n += x.shape[0]
    return n / (time.perf_counter() - start)


def train_rate(files, size, batch, warmup, steps, device, workers):
    amp = device.type == "cuda"
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Linear(2048, 2)
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_fn = torch.nn.CrossEntropyLoss()
    dl = loader(files, size, batch, workers)
    total = warmup + steps
    done = 0
    images = 0
    start = time.perf_counter()
    while done < total:
        for x, y in dl:
            if done == total:
                break
            if done == warmup:
                if amp:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                images = 0
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, enabled=amp):
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss.item()  # as bench_train reads its loss each step
            images += x.shape[0]
            done += 1
    if amp:
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="target/bench/train")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int)
    args, _unknown = ap.parse_known_args()

    files = sorted(glob.glob(os.path.join(args.work, "crops", "*.jpg")))
    if not files:
        raise SystemExit(f"no crops in {args.work}/crops: run `cargo xtask bench train` (bench_train) first")
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    cores = os.cpu_count() or 1
    print(f"bench train (pytorch): {len(files)} images in {args.work}/crops, device {device}, {cores} cores, "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}, torchvision {torchvision.__version__}")

    rounds = 8 if gpu else 2
    p1 = pipeline_rate(files, 0, rounds)
    print(f"input pipeline, 224 px, train transform, 0 workers:    {p1:8.1f} images/s")
    pn = pipeline_rate(files, cores, rounds)
    print(f"input pipeline, 224 px, train transform, {cores:2d} workers:   {pn:8.1f} images/s")

    batch = args.batch or (64 if gpu else 8)
    results = []
    for size, cpu_steps in ((112, 8), (224, 4)):
        steps = args.steps or (30 if gpu else cpu_steps)
        warmup = 5 if gpu else 2
        rate = train_rate(files, size, batch, warmup, steps, device, cores)
        print(f"resnet50 training, {size} px, batch {batch}, {steps} timed steps: {rate:8.1f} images/s")
        results.append({"img_size": size, "batch": batch, "steps": steps, "images_per_s": rate})
    out = {
        "device": str(device),
        "cores": cores,
        "torch": torch.__version__,
        "amp": gpu,
        "pipeline_images_per_s": {"workers_0": p1, "workers_all": pn, "img_size": 224},
        "train_resnet50": results,
    }
    path = os.path.join(args.work, "bench_train_pytorch.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
