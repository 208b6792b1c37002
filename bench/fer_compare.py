"""Whole-pipeline frames/s on one clip: ferlite (Haar, YuNet, both BlazeFace models) against the `fer` package.

    python bench/fer_compare.py [CLIP] [--models default[,fer2013]]

`fer` (25.10, its Haar detector and its quantized TFLite model through tf.lite) runs in its own venv
under .cache/fer-venv, created on first use (`fer` is installed without its torch-based MTCNN extra).
Both sides run pinned to one CPU core (taskset), read the same frames, warm up on 10 frames and time
the next ones. frames/s and the ratio come from the mean time per frame (ferlite searches the whole frame
only every 5th frame by default, so its median alone would flatter it); medians are shown too.
Writes bench/results/fer_compare.md.
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
cap = cv2.VideoCapture(sys.argv[1]); frames = []
while len(frames) < int(sys.argv[2]):
    ok, f = cap.read()
    if not ok: break
    frames.append(f)
times, faces = [], 0
for i in range(10 + int(sys.argv[3])):
    f = frames[i % len(frames)]
    t0 = time.perf_counter(); r = det.detect_emotions(f); dt = 1e3 * (time.perf_counter() - t0)
    if i >= 10: times.append(dt); faces += len(r)
print(json.dumps({"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
                  "faces_per_frame": faces / int(sys.argv[3])}))
"""


def ensure_fer_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *FER_DEPS], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *FER_PACKAGES], check=True)
    return py


def time_ferlite(clip: str, detector: str, n: int, every: int = 5, model: str = "default", **options) -> dict:
    """The pipeline as the service builds it from its config, with this detector, detect-every and model
    (detector ``options``, e.g. Haar's min_size, build that detector by hand)."""
    from ferlite.edge.build import PipelineParts
    from ferlite.edge.configfile import load
    from ferlite.edge.detection.regions import for_stream
    from ferlite.edge.detection.registry import create_detector
    from ferlite.edge.sources.registry import open_source

    config = load(system_path="/nonexistent").replace(detector={"type": detector, "every": every},
                                                      classifier={"model": model, "threads": 1})
    custom = for_stream(create_detector(detector, **options), every, "video") if options else None
    pipe = PipelineParts(config, "video", detector=custom).pipeline
    with open_source(clip) as src:
        frames = [f for _, f in zip(range(300), src)]
    times, faces = [], 0
    for i in range(10 + n):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        r = pipe.process(f)
        dt = 1e3 * (time.perf_counter() - t0)
        if i >= 10:
            times.append(dt)
            faces += len(r.faces)
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times), "faces_per_frame": faces / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default=str(ROOT / "edge" / "data" / "sample.mp4"))
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fer_compare")
    ap.add_argument("--models", default="default",
                    help="bundled classifiers (or .tflite paths) to time, comma-separated (default: default)")
    args = ap.parse_args()
    if "--child" not in sys.argv and os.environ.get("FERLITE_PINNED") != "1":
        env = dict(os.environ, FERLITE_PINNED="1")
        sys.exit(subprocess.run(["taskset", "-c", "0", sys.executable, *sys.argv], env=env).returncode)
    py = ensure_fer_venv()
    r = subprocess.run(["taskset", "-c", "0", str(py), "-c", FER_SCRIPT, args.clip, "300", str(args.frames)],
                       capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if r.returncode:
        sys.exit(f"fer run failed:\n{r.stderr[-2000:]}")
    fer = json.loads(r.stdout.strip().splitlines()[-1])
    rows = [{"pipeline": "fer 25.10.3 (Haar + its TFLite model)", **fer}]
    for model in args.models.split(","):
        for det in ("haar", "yunet", "blazeface", "blazeface-full"):
            for every in (1, 5):
                rows.append({"pipeline": f"ferlite ({det}, whole frame every {every}, model {model})",
                             **time_ferlite(args.clip, det, args.frames, every, model)})
        rows.append({"pipeline": f"ferlite (haar, min face 50 px as fer, whole frame every 1, model {model})",
                     **time_ferlite(args.clip, "haar", args.frames, 1, model, min_size=50)})
    for row in rows:
        row["frames/s"] = 1e3 / row["mean_ms"]
        row["x fer"] = fer["mean_ms"] / row["mean_ms"]
    headers = ["pipeline", "median_ms", "mean_ms", "frames/s", "x fer", "faces_per_frame"]
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(f"{r[h]:.2f}" if isinstance(r[h], float) else str(r[h]) for h in headers) + " |"
           for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    note = (f"{Path(args.clip).name}, {args.frames} frames after 10 warm-up, one core (taskset -c 0); "
            "frames/s and x fer from the mean ms per frame\n\n")
    args.out.with_suffix(".md").write_text(note + "\n".join(md) + "\n")
    print(note + "\n".join(md))


if __name__ == "__main__":
    main()
