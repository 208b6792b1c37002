"""FER2013 (Training + PublicTest) packed small enough to travel to a machine that lacks it, and back.

    python bench/fer2013_pack.py pack ../shared/data/fer2013/fer2013.csv.gz .device/fer2013.xz \
        --ferplus ../shared/data/fer2013/fer2013new.csv                                      # 50 MB
    python bench/fer2013_pack.py unpack .device/fer2013.xz /tmp/fer2013.csv   # + /tmp/fer2013new.csv
    ferlite import /tmp/fer2013.csv [--ferplus /tmp/fer2013new.csv --keep-fer2013-labels] --out data/fer2013

The Kaggle csv.gz is 85 MB. Each pixel is stored as its difference from the median edge predictor of
its left, upper and upper-left neighbours (LOCO-I, as in JPEG-LS), which xz compresses to 48.5 MB
instead of 54.8 MB for the raw bytes: with the repository and Keras's wheels it fits a 64 MiB transfer
limit. Unpacking writes the same csv layout (emotion, pixels, Usage), row for row, so ``ferlite import``
builds the same data set as from the original; the FER+ vote file, when packed, comes back byte for byte.
Standard library and numpy.
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

SIDE = 48


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


def _predict(left: np.ndarray, up: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """The median edge predictor: min or max of left and up at an edge, else left + up - diag."""
    lo, hi = np.minimum(left, up), np.maximum(left, up)
    return np.where(diag >= hi, lo, np.where(diag <= lo, hi, left + up - diag))


def encode(pixels: np.ndarray) -> np.ndarray:
    """(N, 2304) uint8 -> prediction residuals mod 256, same shape (neighbours outside the image are 0)."""
    img = pixels.reshape(-1, SIDE, SIDE).astype(np.int16)
    left, up, diag = (np.zeros_like(img) for _ in range(3))
    left[:, :, 1:], up[:, 1:, :], diag[:, 1:, 1:] = img[:, :, :-1], img[:, :-1, :], img[:, :-1, :-1]
    return ((img - _predict(left, up, diag)) % 256).astype(np.uint8).reshape(pixels.shape)


def decode(residuals: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode`, pixel by pixel in raster order, all images at once."""
    res = residuals.reshape(-1, SIDE, SIDE).astype(np.int16)
    img = np.zeros_like(res)
    zero = np.zeros(len(res), np.int16)
    for y in range(SIDE):
        for x in range(SIDE):
            left = img[:, y, x - 1] if x else zero
            up = img[:, y - 1, x] if y else zero
            diag = img[:, y - 1, x - 1] if x and y else zero
            img[:, y, x] = (_predict(left, up, diag) + res[:, y, x]) % 256
    return img.astype(np.uint8).reshape(residuals.shape)


def pack(src: Path, dst: Path, ferplus: Path | None) -> None:
    pixels, emotion, usage = read_csv(src)
    names = sorted(set(usage))
    votes = np.frombuffer(ferplus.read_bytes(), np.uint8) if ferplus else np.zeros(0, np.uint8)
    buf = io.BytesIO()
    np.savez(buf, residuals=encode(pixels), emotion=emotion, names=np.array(names), ferplus=votes,
             usage=np.array([names.index(u) for u in usage], np.uint8))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    extra = " and the FER+ votes" if ferplus else ""
    print(f"{dst}: {len(pixels)} faces ({', '.join(names)}){extra}, {dst.stat().st_size / 1e6:.1f} MB")


def unpack(src: Path, dst: Path) -> None:
    data = np.load(io.BytesIO(lzma.decompress(src.read_bytes())))
    names = [str(n) for n in data["names"]]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["emotion", "pixels", "Usage"])
        for face, label, usage in zip(decode(data["residuals"]), data["emotion"], data["usage"]):
            out.writerow([int(label), " ".join(map(str, face.tolist())), names[usage]])
    print(f"{dst}: {len(data['emotion'])} faces")
    if len(data["ferplus"]):
        votes = dst.with_name("fer2013new.csv")
        votes.write_bytes(data["ferplus"].tobytes())
        print(f"{votes}: the FER+ votes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["pack", "unpack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--ferplus", type=Path, help="pack: FER+'s fer2013new.csv too (unpacked beside the csv)")
    args = ap.parse_args()
    for path in (args.src, args.ferplus):
        if path is not None and not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            return 2
    if args.action == "pack":
        pack(args.src, args.dst, args.ferplus)
    else:
        unpack(args.src, args.dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
