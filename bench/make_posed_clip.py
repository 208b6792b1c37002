"""Compose a posed clip: one to three large faces over a photo, coming and going, 640x480 at 25 frames/s.

    python bench/make_posed_clip.py runs/clips/posed.mp4

It stands in for a kind of clip the bundled sample (two faces in view all the time, 15 frames/s) is not: people
posing for a camera, each in view for a few seconds, so the number of faces changes (1 -> 2 -> 3 -> 2 -> 1, then
for 1 s nobody, then 1 -> 2) and each arrival must be found by a whole-frame search. Three people from tests/data/faces
(muxspace/facial_expressions, Apache-2.0 repository, research use: Alvaro_Uribe, Dileep, Amelia_Vega; their
48x48 crops upscaled to about 180 px) stand side by side over scikit-image's coffee photo (BSD-3, lightly
blurred); each swaps to another of their own photos every 2 s and drifts and breathes a little. 12 s, 300
frames (the benches read the first 300 frames of a clip). The box and label of every face in every frame are
written next to the clip as a csv (``bench/clip_eval.py`` scores a run against it).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
from make_kiosk_clip import paste  # bench/ is on the path when this runs as a script

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
SIZE = (640, 480)
FPS = 25.0
SECONDS = 12.0
FACE_PX = 180
SWAP_S = 2.0
#: Who stands where (x centre), and from when to when (seconds) they are in view.
PEOPLE = (
    ("Alvaro_Uribe", 120, ((0.0, 7.5),)),
    ("Dileep", 320, ((1.5, 5.5), (9.5, 12.0))),
    ("Amelia_Vega", 520, ((3.0, 8.5), (10.5, 12.0))),
)


def photos(subject: str) -> list[tuple[str, object]]:
    with open(FACES / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subject"] == subject]
    return [(r["label"], cv2.imread(str(FACES / r["path"]))) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--groups", action="store_true", help="also write the frames with 0, 1, 2 and 3 faces in view "
                    "as clips of their own, OUT_faces0.mp4 ... OUT_faces3.mp4 (to time each kind of frame)")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bg = cv2.imread(str(ROOT / "tests" / "data" / "photos" / "skimage_coffee.png"))
    bg = cv2.GaussianBlur(cv2.resize(bg, SIZE), (0, 0), 1.5)
    shots = {name: photos(name) for name, _, _ in PEOPLE}
    n = int(SECONDS * FPS)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    truth, groups = [], {k: [] for k in range(len(PEOPLE) + 1)}
    for i in range(n):
        t = i / FPS
        frame = bg.copy()
        for k, (name, x, spans) in enumerate(PEOPLE):
            if not any(a <= t < b for a, b in spans):
                continue
            label, face = shots[name][int(t // SWAP_S + 3 * k) % len(shots[name])]
            size = int(FACE_PX * (1 + 0.04 * math.sin(t * 1.7 + k)))
            box = paste(frame, face, x + 12 * math.sin(t * 0.9 + 2 * k), 240 + 15 * math.sin(t * 1.3 + k), size)
            truth.append((i, round(t, 3), k + 1, label, *box))
        writer.write(frame)
        groups[sum(row[0] == i for row in truth)].append(frame)
    writer.release()
    for k, frames in groups.items() if args.groups else ():
        out = cv2.VideoWriter(str(args.out.with_name(f"{args.out.stem}_faces{k}.mp4")),
                              cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
        for frame in frames:
            out.write(frame)
        out.release()
    with open(args.out.with_suffix(".truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time", "face", "label", "x", "y", "w", "h"])
        w.writerows(truth)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n} frames) and its truth csv")


if __name__ == "__main__":
    main()
