"""Measure label flicker and log volume on the bundled clips for [tracking] hold and margin settings.

    python bench/flicker.py                      # the sample clip and the kiosk clip, a grid of settings
    python bench/flicker.py --hold 0.5 --margin 0.05
    python bench/flicker.py --looped 10 --fps 59     # the log of a 10-minute looped run of the sample clip
    python bench/flicker.py --threshold 0.75         # where the sample clip's camera man hovers

Each clip goes through the real pipeline once (YuNet, the bundled int8 model, detection every 5 frames) with
no smoothing, and the recorded per-frame probabilities are then replayed through the tracker for each setting
(window 5, [tracking] threshold: 0.45 unless --threshold). Reported per clip, on the clip's own clock: label
changes per minute (summed over tracks), rows per minute that the real SQLite log writes with its default
log_interval (the clip's clock standing in for the wall clock), and for the kiosk clip, whose true
expression changes at 10 s and 20 s, how long after each change the face's label first differs from the one
before it. --looped plays the sample clip's recording in a loop on a simulated wall clock instead, as
`ferlite run` does with source.loop = true, so its figures do not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {"sample": ROOT / "edge" / "data" / "sample.mp4", "kiosk": ROOT / "edge" / "data" / "kiosk.mp4"}


def record(clip: Path) -> list[tuple[float, list]]:
    """(timestamp, [Detection]) per frame: the pipeline's unsmoothed probabilities."""
    from ferlite.edge.build import replay
    from ferlite.edge.results import Detection

    results = replay(clip, ["tracking.window=1", "tracking.hold=0", "tracking.margin=0"])
    return [(r.timestamp, [Detection(f.box, f.probs, f.det_score) for f in r.faces]) for r in results], \
        results[0].labels


def replay(frames, labels, hold: float, margin: float, loop_s: float = 0.0, fps: float = 0.0,
           threshold: float = 0.45):
    """The recorded frames through the tracker (window 5, ``threshold``) and the real SQLite log with its
    default log_interval. Once through on the clip's clock; or, with ``loop_s``, looped for that many seconds
    of a wall clock at ``fps`` frames a second, as ``ferlite run --set source.loop=true`` plays it (the tracker
    restarts with every loop, the log's clock runs on). Returns (tracks: track id -> [(t, label)], log rows)."""
    import sqlite3
    import tempfile

    from ferlite.edge.outputs.sqlite import SqliteSink
    from ferlite.edge.results import FrameResult
    from ferlite.edge.tracking import Tracker

    tracker = Tracker(labels, window=5, threshold=threshold, hold=hold, margin=margin)
    tracks: dict[int, list[tuple[float, str]]] = {}
    clock = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        with SqliteSink(Path(tmp) / "log.db", clock=lambda: clock[0]) as sink:
            n = 0
            while n == 0 or clock[0] < loop_s:
                for t, dets in frames:
                    faces, events = tracker.step(t, dets)
                    for face in (f for f in faces if f.settled):  # what the log and the outputs report
                        tracks.setdefault(face.track_id, []).append((clock[0] if loop_s else t, face.label))
                    clock[0] = (n + 1) / fps if loop_s else t
                    sink.write(FrameResult(n, t, "clip", faces, tuple(labels), events=events))
                    n += 1
                    if loop_s and clock[0] >= loop_s:
                        break
        with sqlite3.connect(Path(tmp) / "log.db") as conn:
            rows = conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0]
    return tracks, rows


def label_changes(tracks) -> int:
    """Label changes summed over tracks."""
    return sum(a[1] != b[1] for points in tracks.values() for a, b in zip(points, points[1:]))


def measure(replayed, seconds: float, changes_at: list[float]) -> dict[str, float]:
    tracks, rows = replayed
    changes = label_changes(tracks)
    out = {"changes/min": 60 * changes / seconds, "rows/min": 60 * rows / seconds}
    main = max(tracks.values(), key=len)
    for k, when in enumerate(changes_at, 1):
        before = [label for t, label in main if t < when][-1]
        later = [t - when for t, label in main if t >= when and label != before]
        out[f"change {k} seen after s"] = later[0] if later else float("nan")
    return out


def looped(frames, labels, minutes: float, fps: float, threshold: float) -> None:
    """The service's looped run of the sample clip, without and with hysteresis (the table in docs/recognize.md)."""
    print(f"sample clip looped for {minutes:g} min at {fps:g} frames/s, threshold {threshold:g}:")
    counts = {}
    for name, hold, margin in (("without hysteresis", 0.0, 0.0), ("default", 0.3, 0.05)):
        tracks, rows = replay(frames, labels, hold, margin, loop_s=60 * minutes, fps=fps, threshold=threshold)
        changes = label_changes(tracks)
        counts[name] = rows
        print(f"  {name}: {rows} rows ({rows / minutes:.0f}/min), {changes} label changes "
              f"({changes / minutes:.1f}/min), {len(tracks)} tracks")
    print(f"  the log shrinks {counts['without hysteresis'] / counts['default']:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hold", type=float, nargs="*", default=[0.0, 0.3, 0.5, 1.0])
    ap.add_argument("--margin", type=float, nargs="*", default=[0.0, 0.05, 0.1])
    ap.add_argument("--looped", type=float, metavar="MINUTES",
                    help="instead: the sample clip looped for this many minutes of wall clock (see --fps)")
    ap.add_argument("--fps", type=float, default=59.0,
                    help="with --looped: frames a second the service gets through (59: this machine, idle)")
    ap.add_argument("--threshold", type=float, default=0.45, help="[tracking] threshold (default 0.45)")
    args = ap.parse_args()
    if args.looped:
        looped(*record(CLIPS["sample"]), args.looped, args.fps, args.threshold)
        return
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
        print(f"{name}: {len(frames)} frames, {seconds:.1f} s, threshold {args.threshold:g}")
        for hold in args.hold:
            for margin in args.margin:
                figures = measure(replay(frames, labels, hold, margin, threshold=args.threshold), seconds, changes_at)
                print(f"  hold {hold:g} s, margin {margin:g}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
