"""Compose the bundled sample clip: two public-domain faces moving over a background, 640x480.

    python bench/make_clip.py edge/data/sample.mp4

The faces are cut from scikit-image's astronaut (public domain) and camera man (BSD-3) photos; the
background is a blurred crop of scikit-image's coffee photo (BSD-3). Face 1 crosses left to right,
face 2 moves up and down, and for a second in the middle they pass close to each other: a test of
track-id stability. Ground-truth boxes are written next to the clip as a csv.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos"
SIZE = (640, 480)


def cutout(photo: str, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    img = cv2.imread(str(PHOTOS / photo))
    x, y, w, h = box
    patch = img[y : y + h, x : x + w]
    return cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def paste(frame: np.ndarray, patch: np.ndarray, cx: float, cy: float) -> tuple[int, int, int, int]:
    """Paste with a feathered elliptical mask; returns the patch box (x, y, w, h)."""
    h, w = patch.shape[:2]
    x0, y0 = int(cx - w / 2), int(cy - h / 2)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.48), int(h * 0.48)), 0, 0, 360, 1.0, -1)
    blend(frame, patch, cv2.GaussianBlur(mask, (0, 0), max(1, w // 20)), x0, y0)
    return x0, y0, w, h


def blend(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> None:
    """Mix ``patch`` into ``frame`` at (x0, y0), weighted by ``mask`` (0..1, the patch's height and width)."""
    h, w = patch.shape[:2]
    roi = frame[y0 : y0 + h, x0 : x0 + w]
    frame[y0 : y0 + h, x0 : x0 + w] = (roi * (1 - mask[..., None]) + patch * mask[..., None]).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--fps", type=float, default=15.0)
    args = ap.parse_args()
    bg = cv2.imread(str(PHOTOS / "skimage_coffee.png"))
    bg = cv2.GaussianBlur(cv2.resize(bg, SIZE), (0, 0), 6)
    faces = [cutout("skimage_astronaut.png", (150, 30, 150, 175), 1.0),
             cutout("skimage_camera.png", (170, 80, 115, 140), 1.1)]
    n = int(args.seconds * args.fps)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, SIZE)
    truth = []
    for i in range(n):
        t = i / (n - 1)
        frame = bg.copy()
        b1 = paste(frame, faces[0], 110 + 420 * t, 250 + 30 * math.sin(6 * t))
        b2 = paste(frame, faces[1], 470 - 120 * t, 240 + 130 * math.sin(2 * math.pi * t))
        writer.write(frame)
        truth += [(i, 1, *b1), (i, 2, *b2)]
    writer.release()
    with open(args.out.with_suffix(".truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "face", "x", "y", "w", "h"])
        w.writerows(truth)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n} frames) and its truth csv")


if __name__ == "__main__":
    main()
