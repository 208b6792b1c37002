"""Benchmark the pipeline on this machine: frame time (median, p90, p99, max), frames/s, and where the time goes.

Runs a clip (default: the bundled sample clip, 640x480, two faces) through the real pipeline, built from the
config as the service builds it (ferlite.edge.build), for each detector, model and detect-every asked for,
logging to a throw-away SQLite file as the service would, after a warm-up. Also times the classifier alone on
face crops. Prints a table and writes it (markdown and csv) under runs/bench (or --out).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

from ferlite.edge.config import ClassifierConfig, DetectorConfig
from ferlite.errors import UsageError

#: Where a frame's time goes: decode, the whole-frame search (every few frames) and the regions around the
#: faces (the detect stage, split), classify, smooth, the log write, and the whole frame.
COLUMNS = ("decode", "search", "regions", "classify", "smooth", "sink", "total")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, help="video clip or images (default: the bundled sample clip)")
    p.add_argument("--detectors", default="yunet,haar", help="comma-separated detectors to compare")
    p.add_argument("--models", default=None, help="comma-separated TFLite model files or bundled names "
                   "(default, fer2013) (default: the config's classifier.model)")
    p.add_argument("--detect-every", default=None, metavar="N[,N]",
                   help="search the whole frame every N frames, in between only around the faces found, as "
                   "recognize and the service do on video (1 = every frame); a comma list compares "
                   f"(default: {DetectorConfig.every})")
    p.add_argument("--coarse", default=None, metavar="true[,false]",
                   help="search the whole frame at the smallest scale detector.min_face allows (true) or at full "
                   "resolution (false, as before); a comma list compares (default: the config's)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="time frames by the wall clock, or "
                   "by the frame thread's CPU time (steadier where other work shares the cores)")
    p.add_argument("--threads", type=int, help=f"threads for the interpreter and OpenCV (default: "
                   f"{ClassifierConfig.threads})")
    p.add_argument("--frames", type=int, default=150, help="frames to time per configuration (the clip loops)")
    p.add_argument("--outputs", default="", metavar="http[,mqtt]", help="also time the default pipeline with "
                   "these live outputs added ([http] listen; [mqtt] host and port: start a broker first)")
    p.add_argument("--warmup", type=int, default=10, help="untimed frames first")
    p.add_argument("--out", type=Path, default=None, help="output path stem, .md and .csv (default: "
                   "runs/bench/exp/bench, numbered; the committed tables in bench/results change only on purpose)")
    from ferlite.edge.configfile import add_config_arguments

    add_config_arguments(p, source=False)


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


def bench_pipeline(frames: list, config, n: int, warmup: int, extra: tuple[str, ...] = (), cpu: bool = False) -> dict:
    """Per-frame and per-stage times over ``n`` timed frames (the clip is replayed in a loop): the frame time's
    median, p90, p99 and max, and each stage's mean and share of the mean frame time; frames/s from the mean
    frame time, which counts the periodic whole-frame searches at their real weight. ``extra`` outputs (http,
    mqtt) are written to beside the SQLite log, as the service would. ``cpu``: time with the frame thread's CPU
    time instead of the wall clock (steadier on a machine shared with other work; the log's and the stream's
    own threads are not counted)."""
    from ferlite.edge.build import PipelineParts
    from ferlite.edge.outputs.base import MultiSink, OutputContext
    from ferlite.edge.outputs.registry import open_outputs
    from ferlite.edge.outputs.sqlite import SqliteSink

    parts = PipelineParts(config, "video")
    clock = time.thread_time if cpu else time.perf_counter
    parts.pipeline.clock = parts.detector.clock = clock
    rows: dict[str, list[float]] = {s: [] for s in COLUMNS}
    faces = 0
    with tempfile.TemporaryDirectory() as tmp, SqliteSink(Path(tmp) / "bench.db") as log_sink, \
            open_outputs(extra, config, OutputContext(Path(tmp), "bench")) as more, stream_client(config, extra):
        sink = MultiSink([log_sink, more])
        for i in range(warmup + n):
            frame = frames[i % len(frames)]
            t0 = clock()
            decoded = frame.image.copy()  # stands in for decode: the clip is held in memory
            decode_ms = 1e3 * (clock() - t0)
            result = parts.pipeline.process(type(frame)(**{**frame.__dict__, "image": decoded}), decode_ms)
            t1 = clock()
            sink.write(result, frame)
            sink_ms = 1e3 * (clock() - t1)
            if i < warmup:
                continue
            faces += len(result.faces)
            split = getattr(parts.detector, "timings", {"search": result.timings_ms["detect"]})
            rows["search"].append(split["search"])
            rows["regions"].append(result.timings_ms["detect"] - split["search"])
            for k in ("decode", "classify", "smooth"):
                rows[k].append(result.timings_ms[k])
            rows["sink"].append(sink_ms)
            rows["total"].append(1e3 * (clock() - t0))
    return summarize(rows, {"detector": config.detector.type, "every": config.detector.every,
                            "coarse": config.detector.coarse, "model": parts.classifier.model_path.name,
                            "faces/frame": faces / n})


def summarize(rows: dict[str, list[float]], ids: dict) -> dict:
    """One row: ``ids``, the frame time's spread (median, p90, p99, max, and p90 and max over the median),
    frames/s, and each stage's mean ms and % of the mean frame time."""
    total = rows["total"]
    med, mean = statistics.median(total), statistics.fmean(total)
    out = {**ids, "total med": med, "total p90": percentile(total, 0.9), "total p99": percentile(total, 0.99),
           "total max": max(total)}
    out["p90/med"], out["max/med"] = out["total p90"] / med, out["total max"] / med
    out["total mean"], out["frames/s"] = mean, 1e3 / mean
    for s in COLUMNS[:-1]:
        out[f"{s} mean"] = statistics.fmean(rows[s])
        out[f"{s} %"] = 100 * out[f"{s} mean"] / mean
    out["sink med"] = statistics.median(rows["sink"])
    return out


def split_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The frame-time table and the per-stage table from bench_pipeline's rows."""
    ids = ("detector", "every", "coarse", "model")
    frames = [{k: v for k, v in r.items() if k in ids or k.startswith(("total", "p90/", "max/", "frames/s", "faces"))}
              for r in rows]
    stages = [{**{k: r[k] for k in ids}, **{k: r[k] for k in r if k.endswith((" mean", " %")) and "total" not in k}}
              for r in rows]
    return frames, stages


class stream_client:
    """With the http output: one client reading /stream.mjpg for the whole run, as a kiosk page would."""

    def __init__(self, config, extra: tuple[str, ...]):
        self.url = f"http://{config.http.listen.replace('0.0.0.0', '127.0.0.1')}/stream.mjpg" \
            if "http" in extra else None
        self.headers = {"Authorization": f"Bearer {config.http.token}"} if config.http.token else {}
        self.stop = None

    def __enter__(self):
        import threading

        if self.url:
            self.stop = threading.Event()
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        import urllib.request

        with urllib.request.urlopen(urllib.request.Request(self.url, headers=self.headers), timeout=30) as r:
            while not self.stop.is_set():
                r.read(65536)

    def __exit__(self, *exc) -> None:
        if self.stop is not None:
            self.stop.set()


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _output_row(spec: str, config, n: int, warmup: int, extra: tuple[str, ...]) -> tuple[float, float, float]:
    """In a fresh process: (frames/s, sink ms median, peak RSS MB) of the pipeline with these outputs."""
    r = bench_pipeline(load_frames(spec, 300), config, n, warmup, extra)
    return r["frames/s"], r["sink med"], peak_rss_mb()


def bench_outputs(spec: str, config, n: int, warmup: int, names: list[str], rounds: int = 3) -> list[dict]:
    """The pipeline with the SQLite log alone, then with each live output added (and all of them), each run in
    a fresh process, the configurations taking turns for ``rounds`` rounds: median frames/s, its ratio to the
    log alone (median of each round's ratio), and the peak resident memory the outputs added."""
    import multiprocessing

    combos = [(), *[(name,) for name in names], *([tuple(names)] if len(names) > 1 else [])]
    runs: dict[tuple, list] = {c: [] for c in combos}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for _ in range(rounds):
            for combo in combos:
                runs[combo].append(pool.apply(_output_row, (spec, config, n, warmup, combo)))
    base = runs[()]
    return [{"outputs": "+".join(("sqlite",) + c), "frames/s": statistics.median(r[0] for r in runs[c]),
             "x log alone": statistics.median(r[0] / b[0] for r, b in zip(runs[c], base)),
             "sink ms med": statistics.median(r[1] for r in runs[c]),
             "peak RSS MB": statistics.median(r[2] for r in runs[c]),
             "RSS added MB": statistics.median(r[2] for r in runs[c]) - statistics.median(b[2] for b in base)}
            for c in combos]


def bench_classifier(config, n: int = 500) -> dict:
    import numpy as np

    from ferlite.edge.build import make_classifier

    clf = make_classifier(config)
    threads = config.classifier.threads
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


def write_tables(stem: Path, tables: list[tuple[str, list[dict]]], note: str = "") -> Path:
    from ferlite.tables import format_table

    stem.parent.mkdir(parents=True, exist_ok=True)
    md = [note, ""] if note else []
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


def configurations(args: argparse.Namespace):
    """The config, and one config per (detector, detect-every, model) row asked for."""
    from ferlite.edge.configfile import load_from_args

    config = load_from_args(args, {"threads": "classifier.threads"})
    try:
        everies = [int(e) for e in args.detect_every.split(",")] if args.detect_every else [config.detector.every]
    except ValueError:
        raise UsageError(f"--detect-every {args.detect_every!r}: give whole numbers >= 1, e.g. 5 or 1,5") from None
    coarse = _booleans(args.coarse) if args.coarse else [config.detector.coarse]
    models = [m for m in args.models.split(",") if m] if args.models else [config.classifier.model]
    rows = []
    for d in args.detectors.split(","):
        for e in everies:
            for c in coarse:
                for m in models:
                    try:
                        rows.append(config.replace(detector={"type": d.strip(), "every": e, "coarse": c},
                                                   classifier={"model": m}))
                    except ValueError as exc:
                        raise UsageError(f"--detectors {d.strip()} --detect-every {e}: {exc}") from None
    return config, rows


def _booleans(text: str) -> list[bool]:
    words = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
    try:
        return [words[w.strip().lower()] for w in text.split(",")]
    except KeyError:
        raise UsageError(f"--coarse {text!r}: give true or false, e.g. true,false") from None


def run(args: argparse.Namespace) -> int:
    import platform

    from ferlite.runs import next_run_dir

    spec = args.source or str(Path(__file__).parent / "data" / "sample.mp4")
    config, rows = configurations(args)
    frames = load_frames(spec, 300)
    pipeline_rows = [bench_pipeline(frames, c, args.frames, args.warmup, cpu=args.clock == "cpu") for c in rows]
    classifier_rows = [bench_classifier(c) for c in {c.classifier: c for c in rows}.values()]
    note = (f"{platform.machine()} {platform.processor() or ''}, {config.classifier.threads} thread(s), "
            f"{Path(spec).name}, {args.frames} frames after {args.warmup} warm-up, {args.clock} clock")
    print(note)
    stem = args.out or next_run_dir(Path("runs/bench")) / "bench"
    frame_rows, stage_rows = split_rows(pipeline_rows)
    tables = [("Frames (ms)", frame_rows), ("Stages (ms per frame, mean, and % of the frame time)", stage_rows),
              ("Classifier alone", classifier_rows)]
    names = [name.strip() for name in args.outputs.split(",") if name.strip()]
    if names:
        tables.append(("Live outputs", bench_outputs(spec, rows[0], args.frames, args.warmup, names)))
    path = write_tables(stem, tables, note)
    print(f"\nwrote {path}")
    return 0
