"""Whole-pipeline frames/s on one clip: ferlite (Haar, YuNet, both BlazeFace models) against the `fer` package.

    python bench/fer_compare.py [CLIP] [--models default[,fer2013]]

`fer` (25.10, its Haar detector and its quantized TFLite model through tf.lite) runs in its own venv
under .cache/fer-venv, created on first use (`fer` is installed without its torch-based MTCNN extra).
Both sides run pinned to one CPU core (taskset), read the same frames, warm up on 10 frames and time
the next ones, taking turns (fer, then every ferlite row) for --rounds rounds. frames/s and the ratio come
from the mean time per frame (ferlite searches the whole frame only every 5th frame by default, so its median
alone would flatter it); medians, p90 and max are shown too. Writes runs/fer_compare.md (--out
bench/results/fer_compare for the committed table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "fer-venv"
FER_PACKAGES = ["fer==25.10.3", "--no-deps"]
FER_DEPS = ["tensorflow-cpu>=2.20,<2.22", "opencv-contrib-python-headless<5", "pandas", "matplotlib", "requests",
            "tqdm", "Pillow", "setuptools<81"]

FER_SCRIPT = r"""
import json, statistics, sys, time, cv2
cv2.setNumThreads(1)
from fer.fer import FER
det = FER(mtcnn=False)
clock = time.process_time if sys.argv[4] == "cpu" else time.perf_counter
cap = cv2.VideoCapture(sys.argv[1]); frames = []
while len(frames) < int(sys.argv[2]):
    ok, f = cap.read()
    if not ok: break
    frames.append(f)
times, faces = [], 0
for i in range(10 + int(sys.argv[3])):
    f = frames[i % len(frames)]
    t0 = clock(); r = det.detect_emotions(f); dt = 1e3 * (clock() - t0)
    if i >= 10: times.append(dt); faces += len(r)
s = sorted(times)
print(json.dumps({"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
                  "p90_ms": s[round(0.9 * (len(s) - 1))], "max_ms": s[-1],
                  "faces_per_frame": faces / int(sys.argv[3])}))
"""


def ensure_fer_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *FER_DEPS], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *FER_PACKAGES], check=True)
    return py


def time_ferlite(clip: str, detector: str, n: int, every: int = 5, model: str = "default", coarse: bool = True,
                 cpu: bool = False, **options) -> dict:
    """The pipeline as the service builds it from its config, with this detector, detect-every, model and
    whole-frame search (coarse or at full resolution; detector ``options``, e.g. Haar's min_size, build that
    detector by hand)."""
    from ferlite.edge.build import PipelineParts
    from ferlite.edge.configfile import load
    from ferlite.edge.detection.regions import for_stream
    from ferlite.edge.detection.registry import create_detector
    from ferlite.edge.sources.registry import open_source

    config = load(system_path="/nonexistent").replace(detector={"type": detector, "every": every, "coarse": coarse},
                                                      classifier={"model": model, "threads": 1})
    d = config.detector
    custom = for_stream(create_detector(detector, **options), every, "video", min_face=d.min_face,
                        coarse=coarse) if options else None
    pipe = PipelineParts(config, "video", detector=custom).pipeline
    with open_source(clip) as src:
        frames = [f for _, f in zip(range(300), src)]
    times, faces = [], 0
    clock = time.process_time if cpu else time.perf_counter
    for i in range(10 + n):
        f = frames[i % len(frames)]
        t0 = clock()
        r = pipe.process(f)
        dt = 1e3 * (clock() - t0)
        if i >= 10:
            times.append(dt)
            faces += len(r.faces)
    s = sorted(times)
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "p90_ms": s[round(0.9 * (len(s) - 1))], "max_ms": s[-1], "faces_per_frame": faces / n}


def time_fer(py: Path, clip: str, n: int, clock: str = "wall") -> dict:
    r = subprocess.run(["taskset", "-c", "0", str(py), "-c", FER_SCRIPT, clip, "300", str(n), clock],
                       capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if r.returncode:
        sys.exit(f"fer run failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def configurations(models: list[str], detectors: list[str]) -> list[tuple[str, dict]]:
    """(row name, time_ferlite options) per ferlite row: each detector every frame and every 5th, YuNet also
    with the whole-frame search at full resolution (as before the coarse search), Haar at fer's 50 px."""
    rows = []
    for model in models:
        for det in detectors:
            for every in (1, 5):
                rows.append((f"ferlite ({det}, whole frame every {every}, model {model})",
                             {"detector": det, "every": every, "model": model}))
                if det == "yunet":
                    rows.append((f"ferlite ({det}, whole frame every {every} at full resolution, model {model})",
                                 {"detector": det, "every": every, "model": model, "coarse": False}))
        if "haar" in detectors:
            rows.append((f"ferlite (haar, min face 50 px as fer, whole frame every 1, model {model})",
                         {"detector": "haar", "every": 1, "model": model, "min_size": 50}))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default=str(ROOT / "edge" / "data" / "sample.mp4"))
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of fer then every ferlite row, alternating; "
                    "each row's figures are the median over rounds, x fer the median of each round's ratio")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "fer_compare",
                    help="table path without suffix (bench/results/fer_compare for the committed one)")
    ap.add_argument("--models", default="default",
                    help="bundled classifiers (or .tflite paths) to time, comma-separated (default: default)")
    ap.add_argument("--detectors", default="haar,yunet,blazeface,blazeface-full")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="time each frame by the wall clock "
                    "or by the process's CPU time (all its threads; steadier where other work shares the core)")
    args = ap.parse_args()
    if "--child" not in sys.argv and os.environ.get("FERLITE_PINNED") != "1":
        env = dict(os.environ, FERLITE_PINNED="1")
        sys.exit(subprocess.run(["taskset", "-c", "0", sys.executable, *sys.argv], env=env).returncode)
    py = ensure_fer_venv()
    configs = configurations(args.models.split(","), args.detectors.split(","))
    runs: dict[str, list[dict]] = {"fer 25.10.3 (Haar + its TFLite model)": []}
    runs.update({name: [] for name, _ in configs})
    for _ in range(args.rounds):
        runs["fer 25.10.3 (Haar + its TFLite model)"].append(time_fer(py, args.clip, args.frames, args.clock))
        for name, options in configs:
            runs[name].append(time_ferlite(args.clip, n=args.frames, cpu=args.clock == "cpu", **options))
    fer = runs["fer 25.10.3 (Haar + its TFLite model)"]
    rows = []
    for name, got in runs.items():
        row = {"pipeline": name, **{k: statistics.median(g[k] for g in got) for k in got[0]}}
        row["frames/s"] = 1e3 / row["mean_ms"]
        row["x fer"] = statistics.median(f["mean_ms"] / g["mean_ms"] for f, g in zip(fer, got))
        rows.append(row)
    write(rows, args)


def write(rows: list[dict], args) -> None:
    headers = ["pipeline", "median_ms", "mean_ms", "p90_ms", "max_ms", "frames/s", "x fer", "faces_per_frame"]
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(f"{r[h]:.2f}" if isinstance(r[h], float) else str(r[h]) for h in headers) + " |"
           for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    note = (f"{Path(args.clip).name}, {args.frames} frames after 10 warm-up, one core (taskset -c 0), {args.rounds} "
            f"rounds alternating fer and ferlite (medians over rounds), {args.clock} clock; frames/s and x fer from "
            "the mean ms per frame\n\n")
    args.out.with_suffix(".md").write_text(note + "\n".join(md) + "\n")
    print(note + "\n".join(md))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
