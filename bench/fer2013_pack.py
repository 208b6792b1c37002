"""FER2013 (Training + PublicTest) packed small enough to travel to a machine that lacks it, and back.

    python bench/fer2013_pack.py pack ../shared/data/fer2013/fer2013.csv.gz .device/fer2013.xz   # 55 MB
    python bench/fer2013_pack.py unpack .device/fer2013.xz /tmp/fer2013.csv                   # Kaggle layout
    ferlite import /tmp/fer2013.csv --out data/fer2013

The Kaggle csv.gz is 85 MB; its pixels as raw bytes, xz-compressed, are 55 MB, which fits a 64 MiB
transfer limit beside the repository. Unpacking writes the same csv layout (emotion, pixels, Usage), row
for row, so ``ferlite import`` builds the same data set as from the original. Standard library and numpy.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import lzma
import sys
from pathlib import Path

import numpy as np


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(pixels (N, 2304) uint8, emotion (N,) uint8, usage per row) of a FER2013-layout csv (gzipped or not)."""
    opener = gzip.open if path.suffix == ".gz" else open
    pixels, emotion, usage = [], [], []
    with opener(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            pixels.append(np.array(row["pixels"].split(), np.uint8))
            emotion.append(int(row["emotion"]))
            usage.append(row["Usage"])
    return np.stack(pixels), np.array(emotion, np.uint8), usage


def pack(src: Path, dst: Path) -> None:
    pixels, emotion, usage = read_csv(src)
    names = sorted(set(usage))
    buf = io.BytesIO()
    np.savez(buf, pixels=pixels, emotion=emotion, usage=np.array([names.index(u) for u in usage], np.uint8),
             names=np.array(names))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(lzma.compress(buf.getvalue(), preset=9))
    print(f"{dst}: {len(pixels)} faces ({', '.join(names)}), {dst.stat().st_size / 1e6:.1f} MB")


def unpack(src: Path, dst: Path) -> None:
    data = np.load(io.BytesIO(lzma.decompress(src.read_bytes())))
    names = [str(n) for n in data["names"]]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["emotion", "pixels", "Usage"])
        for face, label, usage in zip(data["pixels"], data["emotion"], data["usage"]):
            out.writerow([int(label), " ".join(map(str, face.tolist())), names[usage]])
    print(f"{dst}: {len(data['pixels'])} faces")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["pack", "unpack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    args = ap.parse_args()
    if not args.src.is_file():
        print(f"{args.src}: no such file", file=sys.stderr)
        return 2
    (pack if args.action == "pack" else unpack)(args.src, args.dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
