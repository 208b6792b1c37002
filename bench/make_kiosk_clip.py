"""Compose the bundled kiosk clip: one person showing happy, surprise, then neutral, 320x240 at 15 frames/s.

    python bench/make_kiosk_clip.py edge/data/kiosk.mp4

It stands in for a recording of someone in front of a kiosk camera, so that the own-data journey of docs/fine-tuning.md
(`ferlite capture` with its default countdown, count and interval, then faces, train, evaluate, convert,
recognize) runs on a fresh clone. The faces are one person's real photos: the Alvaro_Uribe crops of
tests/data/faces (muxspace/facial_expressions, Apache-2.0 repository, research use), upscaled and pasted
with a feathered edge over a blurred crop of scikit-image's coffee photo (BSD-3). Each expression lasts
``SEGMENT_S`` seconds, long enough for capture's defaults (a 3 s countdown, then 20 frames 0.3 s apart: 9.4 s
at 15 frames/s, where a 0.3 s wait ends on the 5th frame); the face drifts and the photo changes every 1.5 s.
From 25 s to 26 s nobody is in view, so capture saves a few frames with no face, which `ferlite faces` skips.
The true label and box of every frame (empty with no face) are written next to the clip as a csv.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np
from make_clip import blend  # bench/ is on the path when this runs as a script

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
SIZE = (320, 240)
FPS = 15.0
SEGMENT_S = 10.0
TAIL_S = 1.0
SUBJECT = "Alvaro_Uribe"
EXPRESSIONS = ("happy", "surprise", "neutral")
FACE_PX = 128
#: Seconds with nobody in view (the person stepped aside): capture saves a few frames that `ferlite faces` skips.
ABSENT = (25.0, 26.0)


def photos() -> dict[str, list[np.ndarray]]:
    with open(FACES / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subject"] == SUBJECT]
    return {label: [cv2.imread(str(FACES / r["path"])) for r in rows if r["label"] == label] for label in EXPRESSIONS}


def paste(frame: np.ndarray, face: np.ndarray, cx: float, cy: float, size: int) -> tuple[int, int, int, int]:
    """Paste ``face`` scaled to ``size`` px centred at (cx, cy), its edge feathered; returns its box."""
    patch = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    mask = np.zeros((size, size), np.float32)
    inset = size // 12
    cv2.rectangle(mask, (inset, inset), (size - inset, size - inset), 1.0, -1)
    blend(frame, patch, cv2.GaussianBlur(mask, (0, 0), size / 24), x0, y0)
    return x0, y0, size, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    bg = cv2.imread(str(ROOT / "tests" / "data" / "photos" / "skimage_coffee.png"))
    bg = cv2.GaussianBlur(cv2.resize(bg, SIZE), (0, 0), 6)
    faces = photos()
    n = int((SEGMENT_S * len(EXPRESSIONS) + TAIL_S) * FPS)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    truth = []
    for i in range(n):
        t = i / FPS
        label = EXPRESSIONS[min(int(t // SEGMENT_S), len(EXPRESSIONS) - 1)]
        choices = faces[label]
        face = choices[int((t % SEGMENT_S) // 1.5) % len(choices)]
        frame = bg.copy()
        size = int(FACE_PX * (1 + 0.05 * math.sin(t * 1.3)))
        if ABSENT[0] <= t < ABSENT[1]:
            label, box = "", ("", "", "", "")
        else:
            box = paste(frame, face, SIZE[0] / 2 + 20 * math.sin(t * 0.7), SIZE[1] / 2 + 8 * math.sin(t * 1.1), size)
        writer.write(frame)
        truth.append((i, round(t, 3), label, *box))
    writer.release()
    with open(args.out.with_suffix(".truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time", "label", "x", "y", "w", "h"])
        w.writerows(truth)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n} frames) and its truth csv")


if __name__ == "__main__":
    main()
