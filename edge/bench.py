"""Benchmark the pipeline on this machine: per-stage latency (median and p90) and frames/s.

Runs a clip (default: the bundled sample clip, 640x480, two faces) through the real pipeline for each
detector and model asked for, logging to a throw-away SQLite file as the service would, after a warm-up.
Also times the classifier alone on face crops. Prints a table and writes it (markdown and csv) to --out.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

from ferlite.edge.results import STAGES

from ferlite.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, help="video clip or images (default: the bundled sample clip)")
    p.add_argument("--detectors", default="yunet,haar", help="comma-separated detectors to compare")
    p.add_argument("--models", default="", help="comma-separated TFLite model files or bundled names "
                   "(default, fast); default: default")
    p.add_argument("--detect-every", default="5", metavar="N[,N]",
                   help="search the whole frame every N frames, in between only around the faces found, as "
                   "recognize and the service do on video (1 = every frame); a comma list compares")
    p.add_argument("--threads", type=int, default=1, help="threads for the interpreter and for OpenCV")
    p.add_argument("--frames", type=int, default=150, help="frames to time per configuration (the clip loops)")
    p.add_argument("--warmup", type=int, default=10, help="untimed frames first")
    p.add_argument("--out", type=Path, default=Path("bench/results/bench"), help="output path stem (.md and .csv)")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def load_frames(spec: str, limit: int) -> list:
    from ferlite.edge.sources.registry import open_source

    with open_source(spec) as src:
        frames = [f for _, f in zip(range(limit), src)]
    if not frames:
        raise UsageError(f"{spec}: no frames")
    return frames


def bench_pipeline(frames: list, detector_name: str, model: Path | None, threads: int, n: int, warmup: int,
                   every: int = 1) -> dict:
    """Median and p90 per stage over ``n`` timed frames (the clip is replayed in a loop); frames/s from the
    mean total, which counts the periodic whole-frame detections at their real weight."""
    from ferlite.edge.classification.classifier import ExpressionClassifier
    from ferlite.edge.detection.detectors import create_detector
    from ferlite.edge.detection.regions import for_stream
    from ferlite.edge.outputs import SqliteSink
    from ferlite.edge.pipeline import Pipeline
    from ferlite.edge.tracking import Tracker

    clf = ExpressionClassifier(model, num_threads=threads)
    pipe = Pipeline(for_stream(create_detector(detector_name), every, "video"), clf, Tracker(clf.labels))
    rows: dict[str, list[float]] = {s: [] for s in STAGES}
    faces = 0
    with tempfile.TemporaryDirectory() as tmp, SqliteSink(Path(tmp) / "bench.db") as sink:
        for i in range(warmup + n):
            frame = frames[i % len(frames)]
            t0 = time.perf_counter()
            decoded = frame.image.copy()  # stands in for decode: the clip is held in memory
            decode_ms = 1e3 * (time.perf_counter() - t0)
            result = pipe.process(type(frame)(**{**frame.__dict__, "image": decoded}), decode_ms)
            t1 = time.perf_counter()
            sink.write(result)
            sink_ms = 1e3 * (time.perf_counter() - t1)
            if i < warmup:
                continue
            faces += len(result.faces)
            for k, v in result.timings_ms.items():
                rows[k].append(v)
            rows["sink"].append(sink_ms)
            rows["total"].append(1e3 * (time.perf_counter() - t0))
    out = {"detector": detector_name, "every": every, "model": clf.model_path.name, "faces/frame": faces / n}
    for s in STAGES:
        out[f"{s} med"] = statistics.median(rows[s])
        out[f"{s} p90"] = percentile(rows[s], 0.9)
    out["total mean"] = statistics.fmean(rows["total"])
    out["frames/s"] = 1e3 / out["total mean"]
    return out


def bench_classifier(model: Path | None, threads: int, n: int = 500) -> dict:
    import numpy as np
    from ferlite.edge.classification.classifier import ExpressionClassifier

    clf = ExpressionClassifier(model, num_threads=threads)
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    for f in faces[:20]:
        clf.probabilities(f)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        clf.probabilities(faces[i % len(faces)])
        times.append(1e3 * (time.perf_counter() - t0))
    return {"model": clf.model_path.name, "backend": clf.backend, "threads": threads,
            "ms/face med": statistics.median(times), "ms/face p90": percentile(times, 0.9)}


def write_tables(stem: Path, tables: list[tuple[str, list[dict]]]) -> Path:
    from ferlite.tables import format_table

    stem.parent.mkdir(parents=True, exist_ok=True)
    md = []
    for title, rows in tables:
        headers = list(rows[0])
        body = [[f"{v:.2f}" if isinstance(v, float) else v for v in r.values()] for r in rows]
        print(f"\n{title}\n{format_table(headers, body)}")
        md += [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        md += ["| " + " | ".join(str(c) for c in r) + " |" for r in body] + [""]
        with open(stem.parent / f"{stem.name}_{title.split()[0].lower()}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=headers)
            w.writeheader()
            w.writerows(rows)
    stem.with_suffix(".md").write_text("\n".join(md))
    return stem.with_suffix(".md")


def run(args: argparse.Namespace) -> int:
    import platform

    import cv2

    cv2.setNumThreads(args.threads)  # OpenCV's detectors (YuNet, Haar) get the same thread budget as LiteRT
    spec = args.source or str(Path(__file__).parent / "data" / "sample.mp4")
    models = [Path(m) for m in args.models.split(",") if m] or [None]
    frames = load_frames(spec, 300)
    try:
        everies = [int(e) for e in args.detect_every.split(",")]
    except ValueError:
        raise UsageError(f"--detect-every {args.detect_every!r}: give whole numbers >= 1, e.g. 5 or 1,5") from None
    if min(everies) < 1:
        raise UsageError(f"--detect-every {args.detect_every!r}: every N must be >= 1")
    pipeline_rows = [bench_pipeline(frames, d.strip(), m, args.threads, args.frames, args.warmup, e)
                     for d in args.detectors.split(",") for e in everies for m in models]
    classifier_rows = [bench_classifier(m, args.threads) for m in models]
    print(f"{platform.machine()} {platform.processor() or ''}, {args.threads} thread(s), {spec}, "
          f"{args.frames} frames after {args.warmup} warm-up")
    path = write_tables(args.out, [("Pipeline latency (ms)", pipeline_rows), ("Classifier alone", classifier_rows)])
    print(f"\nwrote {path}")
    return 0
