"""Crop consistency: how FER2013's 48x48 frames sit around a face, as the device's own detector sees it.

    python bench/framing.py ../shared/data/fer2013/fer2013.csv.gz --wild ../shared/data/wild

FER2013's faces were cropped by another detector. To compare its framing with the device's, YuNet (the
device's detector) runs on FER2013 faces upscaled 4x with a replicated border, and on the wild photos at
their own size. Per face: the frame side over the YuNet box's longer side (the device crops
max(w, h) x (1 + 2 x margin), so a ratio r means margin (r - 1) / 2), the eye distance over the box's longer
side, and where the eyes and the box centre sit in the frame. Medians and quartiles over the faces found.
Writes runs/framing.{md,csv} unless --out says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
UPSCALE, PAD = 4, 64  # FER2013 faces: 48 -> 192 px, and 64 px of replicated border for the box to spill into


def fer_faces(csv: Path, usage: str, n: int, seed: int) -> list[np.ndarray]:
    from ferlite.trainer.evaluate import load_fer_csv

    data = load_fer_csv(csv, usage)
    pick = np.random.default_rng(seed).choice(len(data.x), min(n, len(data.x)), replace=False)
    return [data.x[i][:, :, 0] for i in pick]


def geometry(face, frame: float, ox: float = 0.0, oy: float = 0.0) -> dict:
    """One face's framing in fractions of its frame (side ``frame``, origin ``ox, oy``)."""
    x, y, w, h = face.box
    (rx, ry), (lx, ly) = face.eyes
    side = max(w, h)
    return {"frame / box side": frame / side, "eye distance / box side": np.hypot(lx - rx, ly - ry) / side,
            "box height / width": h / w, "box centre y / frame": (y + h / 2 - oy) / frame,
            "eyes y / frame": ((ry + ly) / 2 - oy) / frame}


def measure_fer(det, faces: list[np.ndarray]) -> list[dict]:
    import cv2

    rows = []
    for face in faces:
        big = cv2.resize(face, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
        found = det.detect(big)
        if found:
            rows.append(geometry(found[0], face.shape[0] * UPSCALE, PAD, PAD))
    return rows


def measure_wild(det, wild: Path, n: int, seed: int, margin: float) -> tuple[list[dict], int]:
    """The wild photos as the device crops them (the frame is the box's longer side plus ``margin``):
    (a row per photo with a face, photos tried)."""
    import cv2

    paths = sorted((wild / "images").glob("*.jpg"))
    pick = np.random.default_rng(seed).choice(len(paths), min(n, len(paths)), replace=False)
    rows = []
    for i in pick:
        image = cv2.imread(str(paths[i]))
        found = det.detect(image) if image is not None else ()
        if found:
            x, y, w, h = found[0].box
            frame = max(w, h) * (1 + 2 * margin)
            rows.append(geometry(found[0], frame, x + w / 2 - frame / 2, y + h / 2 - frame / 2))
    return rows, len(pick)


def summarise(name: str, rows: list[dict], tried: int) -> list[dict]:
    out = []
    for key in rows[0]:
        v = np.array([r[key] for r in rows])
        out.append({"faces": name, "found": f"{len(rows)}/{tried}", "measure": key, "median": np.median(v),
                    "p25": np.percentile(v, 25), "p75": np.percentile(v, 75)})
    return out


def main() -> None:
    from ferlite.edge.config import ClassifierConfig
    from ferlite.edge.detection.detectors import YuNetDetector

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fer_csv", type=Path, help="FER2013-layout csv (emotion,pixels,Usage)")
    ap.add_argument("--usage", default="Training", help="FER2013 split to measure (default: Training)")
    ap.add_argument("--wild", type=Path, help="a folder with images/*.jpg, cropped the device's way")
    ap.add_argument("-n", type=int, default=3000, help="faces to sample from each (default: 3000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "framing")
    args = ap.parse_args()
    det = YuNetDetector(score_threshold=0.6)  # upscaled 48-px faces score lower than photos
    faces = fer_faces(args.fer_csv, args.usage, args.n, args.seed)
    rows = summarise(f"FER2013 {args.usage}", measure_fer(det, faces), len(faces))
    if args.wild:
        margin = ClassifierConfig.margin
        rows += summarise(f"wild, device crop (margin {margin:g})", *measure_wild(det, args.wild, args.n,
                                                                                  args.seed, margin))
    import pandas as pd

    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    md = ["| faces | found | measure | median | p25 | p75 |", "|---|---|---|---|---|---|"]
    md += [f"| {r.faces} | {r.found} | {r.measure} | {r.median:.3f} | {r.p25:.3f} | {r.p75:.3f} |"
           for r in table.itertuples(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
