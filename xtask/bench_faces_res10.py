#!/usr/bin/env python3
"""The OpenCV peer of `cargo xtask bench faces`, and its crop maker.

    python xtask/bench_faces_res10.py detect --photos DIR [--list FILE] \\
        --prototxt models/res10_deploy.prototxt \\
        --caffemodel models/res10_300x300_ssd_iter_140000.caffemodel \\
        --out dets.csv [--summary dets.json] [--threads N] [--conf 0.5]

    python xtask/bench_faces_res10.py crops --photos DIR --boxes boxes.csv --out CROPS \\
        [--min-side 50] [--margin 0.2] [--quality 95]

`detect` runs OpenCV's res10 SSD face detector (Caffe, 300x300) the way the
face-mask write-ups run it: `cv2.dnn.blobFromImage(cv2.resize(img, (300, 300)),
1.0, (300, 300), (104.0, 177.0, 123.0))`, detections with confidence > 0.5,
boxes scaled by the image size (and clamped to it). It reads the photos named
in --list (one path relative to --photos a line) or walks --photos, writes
`path,left,top,right,bottom,score` to --out, and times the loading and the
detection of all photos by wall clock (the model is loaded before the clock
starts). The summary (photos, seconds, photos/s, unreadable photos) is printed
and written to --summary as JSON.

    python xtask/bench_faces_res10.py sheet --photos DIR --boxes boxes.csv --out PREFIX \
        [--context 0.25] [--side 112]

`sheet` draws every box of boxes.csv (`image,xmin,ymin,xmax,ymax`), grown by
--context of its size per side, as a --side px tile numbered by its row (from
0), 64 tiles (8x8) to a PNG: PREFIX-1.png, PREFIX-2.png, ... For a look by
eye at the boxes a detector found where the set has no face boxed.

`crops` cuts every box of boxes.csv (`image,xmin,ymin,xmax,ymax,label`) whose
shorter side is at least --min-side px, grown by --margin of its width and
height on each side and clamped to the photo, into CROPS/<label>/NNNN.jpg
(JPEG quality --quality): an ImageFolder tree of real face crops. NNNN is the
box's row in boxes.csv (from 0). Prints the count per label; photos it cannot
read are named and make the exit status 1.
"""
import argparse
import csv
import json
import os
import sys
import time

import cv2
import numpy as np


def photo_list(photos, list_file):
    if list_file:
        with open(list_file, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    names = []
    for dirpath, dirnames, filenames in os.walk(photos):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if not fn.startswith(".") and fn.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp")):
                names.append(os.path.relpath(os.path.join(dirpath, fn), photos).replace(os.sep, "/"))
    return names


def read_photos(photos, names, failed):
    """(name, BGR image) for each of `names` under `photos`; the unreadable ones go to `failed`."""
    for name in names:
        img = cv2.imread(os.path.join(photos, name))
        if img is None:
            failed.append(name)
        else:
            yield name, img


def detect(args):
    cv2.setNumThreads(args.threads)
    net = cv2.dnn.readNetFromCaffe(args.prototxt, args.caffemodel)
    names = photo_list(args.photos, args.list)
    failed = []
    rows = []
    t0 = time.perf_counter()
    for name, img in read_photos(args.photos, names, failed):
        h, w = img.shape[:2]
        blob = cv2.dnn.blobFromImage(cv2.resize(img, (300, 300)), 1.0, (300, 300), (104.0, 177.0, 123.0))
        net.setInput(blob)
        out = net.forward()
        for i in range(out.shape[2]):
            conf = float(out[0, 0, i, 2])
            if conf <= args.conf:
                continue
            x0, y0, x1, y1 = (float(v) for v in out[0, 0, i, 3:7] * [w, h, w, h])
            x0, x1 = max(0.0, min(x0, w)), max(0.0, min(x1, w))
            y0, y1 = max(0.0, min(y0, h)), max(0.0, min(y1, h))
            if x1 > x0 and y1 > y0:
                rows.append((name, x0, y0, x1, y1, conf))
    seconds = time.perf_counter() - t0
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "left", "top", "right", "bottom", "score"])
        for name, x0, y0, x1, y1, conf in rows:
            wr.writerow([name, f"{x0:.1f}", f"{y0:.1f}", f"{x1:.1f}", f"{y1:.1f}", f"{conf:.4f}"])
    done = len(names) - len(failed)
    summary = {
        "photos": done,
        "seconds": seconds,
        "photos_per_s": done / seconds if seconds > 0 else 0.0,
        "faces": len(rows),
        "threads": args.threads,
        "opencv": cv2.__version__,
        "failed": failed,
    }
    print(
        f"res10: {done} photos, {len(rows)} faces, {len(failed)} unreadable, "
        f"{summary['photos_per_s']:.1f} photos/s (OpenCV {cv2.__version__}, {args.threads} threads)"
    )
    for name in failed:
        print(f"res10: cannot read {name!r}", file=sys.stderr)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    return 0


def crops(args):
    by_photo = {}
    with open(args.boxes, newline="", encoding="utf-8") as f:
        for n, r in enumerate(csv.DictReader(f)):
            by_photo.setdefault(r["image"], []).append(
                (n, int(r["xmin"]), int(r["ymin"]), int(r["xmax"]), int(r["ymax"]), r["label"])
            )
    counts = {}
    failed = []
    params = [cv2.IMWRITE_JPEG_QUALITY, args.quality]
    for name in sorted(by_photo):
        img = None
        for n, x0, y0, x1, y1, label in by_photo[name]:
            bw, bh = x1 - x0, y1 - y0
            if min(bw, bh) < args.min_side:
                continue
            if img is None:
                img = cv2.imread(os.path.join(args.photos, name))
                if img is None:
                    failed.append(name)
                    break
            h, w = img.shape[:2]
            cx0 = max(0, int(round(x0 - args.margin * bw)))
            cy0 = max(0, int(round(y0 - args.margin * bh)))
            cx1 = min(w, int(round(x1 + args.margin * bw)))
            cy1 = min(h, int(round(y1 + args.margin * bh)))
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            folder = os.path.join(args.out, label)
            os.makedirs(folder, exist_ok=True)
            out = os.path.join(folder, f"{n:04d}.jpg")
            if not cv2.imwrite(out, img[cy0:cy1, cx0:cx1], params):
                raise SystemExit(f"cannot write {out}")
            counts[label] = counts.get(label, 0) + 1
    print(
        "crops: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f" (boxes >= {args.min_side} px, {args.margin:.0%} margin) -> {args.out}"
    )
    for name in failed:
        print(f"crops: cannot read {name!r}", file=sys.stderr)
    return 1 if failed else 0


def scaled(args):
    """Copies of the photos resized to --width px wide (area averaging), same names."""
    params = [cv2.IMWRITE_JPEG_QUALITY, args.quality]
    failed = []
    names = photo_list(args.photos, args.list)
    for name, img in read_photos(args.photos, names, failed):
        h, w = img.shape[:2]
        size = (args.width, max(1, int(round(h * args.width / w))))
        out = os.path.join(args.out, name)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        if not cv2.imwrite(out, cv2.resize(img, size, interpolation=cv2.INTER_AREA), params):
            raise SystemExit(f"cannot write {out}")
    print(f"scaled: {len(names) - len(failed)} photos {args.width} px wide -> {args.out}")
    for name in failed:
        print(f"scaled: cannot read {name!r}", file=sys.stderr)
    return 1 if failed else 0


def sheet(args):
    rows = []
    with open(args.boxes, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((r["image"], *(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))))
    cols, side, failed, written = 8, args.side, [], []
    per = cols * cols
    cache = {}
    for first in range(0, len(rows), per):
        page = rows[first : first + per]
        out = np.zeros((((len(page) + cols - 1) // cols) * side, cols * side, 3), np.uint8)
        for k, (name, x0, y0, x1, y1) in enumerate(page):
            if name not in cache:
                # Rows come photo by photo: keep the last one, padded once.
                # Outside the photo stays black, so a box keeps its place in its tile.
                img = cv2.imread(os.path.join(args.photos, name))
                pad = None if img is None else cv2.copyMakeBorder(img, side, side, side, side, cv2.BORDER_CONSTANT)
                cache = {name: pad}
            src = cache[name]
            if src is None:
                failed.append(name)
                continue
            h, w = src.shape[0] - 2 * side, src.shape[1] - 2 * side
            gx, gy = args.context * (x1 - x0), args.context * (y1 - y0)
            cx0 = int(round(max(-side, x0 - gx))) + side
            cy0 = int(round(max(-side, y0 - gy))) + side
            cx1 = int(round(min(w + side, x1 + gx))) + side
            cy1 = int(round(min(h + side, y1 + gy))) + side
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            tile = cv2.resize(src[cy0:cy1, cx0:cx1], (side, side), interpolation=cv2.INTER_AREA)
            r, c = divmod(k, cols)
            out[r * side : (r + 1) * side, c * side : (c + 1) * side] = tile
            label = str(first + k)
            cv2.rectangle(out, (c * side, r * side), (c * side + 8 * len(label) + 4, r * side + 14), (0, 0, 0), -1)
            cv2.putText(out, label, (c * side + 2, r * side + 11), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 255, 255), 1)
        path = f"{args.out}-{first // per + 1}.png"
        if not cv2.imwrite(path, out):
            raise SystemExit(f"cannot write {path}")
        written.append(path)
    print(f"sheet: {len(rows)} boxes on {len(written)} sheet(s): {', '.join(written) or '-'}")
    for name in sorted(set(failed)):
        print(f"sheet: cannot read {name!r}", file=sys.stderr)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect", help="res10 SSD face detection, timed")
    d.add_argument("--photos", required=True)
    d.add_argument("--list", help="file of photo paths relative to --photos, one a line (default: walk)")
    d.add_argument("--prototxt", required=True)
    d.add_argument("--caffemodel", required=True)
    d.add_argument("--out", required=True, help="output CSV: path,left,top,right,bottom,score")
    d.add_argument("--summary", help="also write the summary as JSON here")
    d.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cv2.setNumThreads")
    d.add_argument("--conf", type=float, default=0.5)
    c = sub.add_parser("crops", help="face crops of the annotated boxes, as an ImageFolder tree")
    c.add_argument("--photos", required=True)
    c.add_argument("--boxes", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--min-side", type=int, default=50)
    c.add_argument("--margin", type=float, default=0.2)
    c.add_argument("--quality", type=int, default=95)
    s = sub.add_parser("scaled", help="copies of the photos scaled to one width (for photos/s on small photos)")
    s.add_argument("--photos", required=True)
    s.add_argument("--list", help="file of photo paths relative to --photos, one a line (default: walk)")
    s.add_argument("--out", required=True)
    s.add_argument("--width", type=int, default=400)
    s.add_argument("--quality", type=int, default=92)
    t = sub.add_parser("sheet", help="numbered contact sheets of boxes, for a look by eye")
    t.add_argument("--photos", required=True)
    t.add_argument("--boxes", required=True)
    t.add_argument("--out", required=True, help="prefix: PREFIX-1.png, PREFIX-2.png, ...")
    t.add_argument("--context", type=float, default=0.25)
    t.add_argument("--side", type=int, default=112)
    args = ap.parse_args()
    return {"detect": detect, "crops": crops, "scaled": scaled, "sheet": sheet}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
