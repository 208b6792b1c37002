"""Detection rate and accuracy on the bundled clips' truth files, the pipeline as `ferlite run` builds it.

    python bench/clip_eval.py [CLIP ...] [--set detector.coarse=false ...] [--compare detector.coarse=false]

Each clip's ``.truth.csv`` (made with it by bench/make_clip.py, make_kiosk_clip.py, make_posed_clip.py) holds a
box per face per frame, and for the made-up kiosk and posed clips the face's expression. A truth face counts
as found when a face the pipeline reports has its centre inside the truth box (the truth boxes are the pasted
patches, a little larger than the faces). Reported per clip: truth faces, the share found, faces reported
outside every truth box, and where the truth has labels, the share of found faces whose reported (smoothed)
label is the truth's and the share whose raw label is. ``--compare`` adds rows with more settings, run in the
same process (before/after). Writes runs/clip_eval.{md,csv} (or --out).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = [ROOT / "edge" / "data" / "sample.mp4", ROOT / "edge" / "data" / "kiosk.mp4"]


def read_truth(path: Path) -> dict[int, list[tuple[str, tuple[float, ...]]]]:
    """frame -> [(label or "", (x, y, w, h))]; a frame row without a box is a frame without a face."""
    truth: dict[int, list] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("x"):
                box = tuple(float(row[k]) for k in ("x", "y", "w", "h"))
                truth[int(row["frame"])].append((row.get("label") or "", box))
    return truth


def inside(face_box, truth_box) -> bool:
    x, y, w, h = face_box
    tx, ty, tw, th = truth_box
    cx, cy = x + w / 2, y + h / 2
    return tx <= cx <= tx + tw and ty <= cy <= ty + th


def evaluate(clip: Path, overrides: list[str]) -> dict:
    from ferlite.edge.build import replay

    truth = read_truth(clip.with_suffix(".truth.csv"))
    results = replay(str(clip), overrides)
    n = found = false = labelled = right = raw_right = 0
    for r in results:
        faces = list(r.faces)
        for label, box in truth.get(r.index, []):
            n += 1
            match = next((f for f in faces if inside(f.box, box)), None)
            if match is None:
                continue
            found += 1
            faces.remove(match)
            if label:
                labelled += 1
                right += match.label == label
                raw_right += match.raw_label == label
        false += len(faces)
    row = {"clip": clip.name, "settings": " ".join(overrides) or "defaults", "frames": len(results),
           "truth faces": n, "found": found / max(n, 1), "false faces": false}
    if labelled:
        row.update({"label right": right / labelled, "raw label right": raw_right / labelled})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", type=Path, default=CLIPS)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--compare", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="also run with these settings added (repeatable: one more row set each)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "clip_eval")
    args = ap.parse_args()
    rows = []
    for clip in args.clips:
        for extra in [None, *args.compare]:
            rows.append(evaluate(clip, args.overrides + ([extra] if extra else [])))
            print(rows[-1], flush=True)
    headers = list(dict.fromkeys(k for r in rows for k in r))
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(f"{r[h]:.4f}" if isinstance(r.get(h), float) else str(r.get(h, "")) for h in headers)
           + " |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=headers)
        w.writeheader()
        w.writerows(rows)
    print("\n".join(md))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
