"""Measure label flicker and log volume on the bundled clips for [tracking] hold and margin settings.

    python bench/flicker.py                      # the sample clip and the kiosk clip, a grid of settings
    python bench/flicker.py --hold 0.5 --margin 0.05

Each clip goes through the real pipeline once (YuNet, the bundled int8 model, detection every 5 frames) with
no smoothing, and the recorded per-frame probabilities are then replayed through the tracker for each setting
(window 5, threshold 0.45). Reported per clip, on the clip's own clock: label changes per minute (summed over
tracks), rows per minute that the SQLite log would write (a row per track per second or per change; the
clip's clock standing in for the wall clock), and for the kiosk clip, whose true expression changes at 10 s
and 20 s, how long after each change the face's label first differs from the one before it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {"sample": ROOT / "edge" / "data" / "sample.mp4", "kiosk": ROOT / "edge" / "data" / "kiosk.mp4"}


def record(clip: Path) -> list[tuple[float, list]]:
    """(timestamp, [Detection]) per frame: the pipeline's unsmoothed probabilities."""
    from ferlite.edge.build import PipelineParts, make_source
    from ferlite.edge.configfile import load
    from ferlite.edge.outputs.files import ListSink
    from ferlite.edge.pipeline import run
    from ferlite.edge.results import Detection

    config = load(overrides=[f"source.spec={clip}", "tracking.window=1", "tracking.hold=0", "tracking.margin=0"])
    parts = PipelineParts(config, kind="video")
    source, _ = make_source(config)
    with source, ListSink() as sink:
        run(source, parts.pipeline, sink)
    return [(r.timestamp, [Detection(f.box, f.probs, f.det_score) for f in r.faces]) for r in sink.results], \
        parts.classifier.labels


def replay(frames, labels, hold: float, margin: float) -> dict[int, list[tuple[float, str]]]:
    from ferlite.edge.tracking import Tracker

    tracker = Tracker(labels, window=5, threshold=0.45, hold=hold, margin=margin)
    tracks: dict[int, list[tuple[float, str]]] = {}
    for t, dets in frames:
        for face in tracker.update(t, dets):
            tracks.setdefault(face.track_id, []).append((t, face.label))
    return tracks


def measure(tracks, seconds: float, changes_at: list[float]) -> dict[str, float]:
    changes = sum(a[1] != b[1] for points in tracks.values() for a, b in zip(points, points[1:]))
    rows = 0
    for points in tracks.values():  # the SQLite log's volume control, log_interval 1 s
        last_label, last_row = None, float("-inf")
        for t, label in points:
            if label != last_label or t - last_row >= 1.0:
                rows, last_label, last_row = rows + 1, label, t
    out = {"changes/min": 60 * changes / seconds, "rows/min": 60 * rows / seconds}
    main = max(tracks.values(), key=len)
    for k, when in enumerate(changes_at, 1):
        before = [label for t, label in main if t < when][-1]
        later = [t - when for t, label in main if t >= when and label != before]
        out[f"change {k} seen after s"] = later[0] if later else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hold", type=float, nargs="*", default=[0.0, 0.3, 0.5, 1.0])
    ap.add_argument("--margin", type=float, nargs="*", default=[0.0, 0.05, 0.1])
    args = ap.parse_args()
    for name, clip in CLIPS.items():
        frames, labels = record(clip)
        seconds = frames[-1][0] - frames[0][0]
        changes_at = []
        truth = clip.with_suffix(".truth.csv")
        if name == "kiosk":
            with open(truth, newline="") as f:
                rows = list(csv.DictReader(f))
            rows = [r for r in rows if r["label"]]  # frames with a face
            changes_at = [float(b["time"]) for a, b in zip(rows, rows[1:]) if a["label"] != b["label"]]
        print(f"{name}: {len(frames)} frames, {seconds:.1f} s")
        for hold in args.hold:
            for margin in args.margin:
                figures = measure(replay(frames, labels, hold, margin), seconds, changes_at)
                print(f"  hold {hold:g} s, margin {margin:g}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
