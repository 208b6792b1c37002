"""Classify time of candidate classifier layouts as int8 TFLite, before training any of them.

    python bench/arch_speed.py [--rounds 5] [--n 300] [--baseline default] [--out runs/bench/arch_speed]

Each layout is built with random weights, exported as ferlite ships models (full-integer int8, logits, the
views built into the graph) and timed through the device's own classifier code (ai-edge-litert, 1 thread),
in rounds that alternate with a baseline model (--baseline: the shipped default unless named) in the same
process, so the ratio to it holds even on a busy machine. Weights do not change an int8 graph's speed, so
this says what a layout will cost once trained. Prints a table (median ms per face, and its ratio to the
baseline, which issue-style targets quote) and writes it as markdown and csv under --out.
bench/results/arch_speed.md was measured against the ten-view cnn48 that was the default until cnn48-w
replaced it (``--baseline`` with that file).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: name -> (architecture spec as in trainer/model.py ARCHITECTURES, views built in: 1 or 2 = with the mirror).
CANDIDATES = {
    "cnn48, 1 view": (dict(widths=(32, 48, 96, 192), convs=(1, 2, 2, 2)), 1),
    "cnn48, 2 views": (dict(widths=(32, 48, 96, 192), convs=(1, 2, 2, 2)), 2),
    "cnn48 one conv at 24 px, 2 views": (dict(widths=(32, 48, 96, 192), convs=(1, 1, 2, 2)), 2),
    "cnn48-w, 1 view": (dict(widths=(32, 48, 112, 224), convs=(1, 2, 2, 2)), 1),
    "wide 32-64-128-224, 1 view": (dict(widths=(32, 64, 128, 224), convs=(1, 2, 2, 2)), 1),
    "deep 32-48-96-192 x3, 1 view": (dict(widths=(32, 48, 96, 192), convs=(1, 3, 3, 3)), 1),
}


def macs(spec: dict, size: int = 48) -> int:
    """Multiply-adds of one view's convolutions (the dense head is negligible)."""
    total, channels, side = 0, 1, size
    for s, (width, convs) in enumerate(zip(spec["widths"], spec["convs"])):
        for _ in range(convs):
            total += side * side * 9 * channels * width
            channels = width
        if s < len(spec["widths"]) - 1:
            side //= 2
    return total


def export(name: str, spec: dict, views: int, folder: Path) -> tuple[Path, int]:
    """The layout as a shipped-style int8 .tflite with its sidecar; returns (path, parameters)."""
    from ferlite.converters.convert import deploy_graph
    from ferlite.converters.tflite import Int8Config, export_int8
    from ferlite.trainer import model as model_mod
    from ferlite.trainer.labels import FER2013_LABELS

    arch = "bench-" + "".join(c if c.isalnum() else "-" for c in name)
    model_mod.ARCHITECTURES[arch] = spec
    keras = model_mod.import_keras()
    model = model_mod.build_model(7, 48, arch)
    graph, output, views = deploy_graph(keras, model, mirror=views == 2)
    faces = np.random.default_rng(0).integers(0, 256, (100, 48, 48, 1), dtype=np.uint8)
    path = folder / f"{arch}.tflite"
    export_int8(graph, path, Int8Config.for_full_integer(faces, samples=100))
    labels = list(FER2013_LABELS)
    path.with_suffix(".json").write_text(json.dumps({"labels": labels, "input_size": 48, "pixel_format": "grey",
                                                     "arch": arch, "precision": "int8", "output": output,
                                                     "views": views}))
    return path, model.count_params()


def time_model(model: str, n: int) -> float:
    """Median ms per face through the device's classifier (1 thread): ``ferlite bench``'s own timing."""
    from ferlite.edge.bench import bench_classifier
    from ferlite.edge.configfile import load

    config = load(overrides=[f"classifier.model={model}", "classifier.threads=1"])
    return bench_classifier(config, n)["ms/face med"]


def baseline_row(path: Path) -> dict:
    """The baseline's table row but for its timing: its layout and views from its sidecar."""
    from ferlite.trainer import model as model_mod

    side = json.loads(path.with_suffix(".json").read_text())
    spec = model_mod.ARCHITECTURES[side["arch"]]
    params = model_mod.build_model(len(side["labels"]), side["input_size"], side["arch"]).count_params()
    views = f"{side['views']} view" + "s" * (side["views"] > 1)
    return {"layout": f"baseline: {path.name} ({side['arch']}, {views})", "parameters": params,
            "MMAC/view": macs(spec) / 1e6, "int8 KB": round(path.stat().st_size / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=300, help="faces timed per model and round")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "arch_speed")
    ap.add_argument("--baseline", default="default", help="model the layouts are timed against: a .tflite "
                    "file or a bundled name (default: the shipped default)")
    args = ap.parse_args()
    from ferlite.edge.assets import classifier_model

    base_path = classifier_model(args.baseline)
    first = baseline_row(base_path)
    with tempfile.TemporaryDirectory() as tmp:
        built = {name: export(name, spec, views, Path(tmp)) for name, (spec, views) in CANDIDATES.items()}
        times: dict[str, list[float]] = {first["layout"]: [], **{name: [] for name in built}}
        ratios: dict[str, list[float]] = {name: [] for name in built}
        for r in range(args.rounds):
            base = time_model(str(base_path), args.n)
            times[first["layout"]].append(base)
            for name, (path, _) in built.items():
                t = time_model(str(path), args.n)
                times[name].append(t)
                ratios[name].append(t / base)
            print(f"round {r + 1}/{args.rounds}: baseline {base:.3f} ms", flush=True)
        rows = [{**first, "ms/face": statistics.median(times[first["layout"]]), "x default": 1.0}]
        for name, (path, params) in built.items():
            rows.append({"layout": name, "parameters": params, "MMAC/view": macs(CANDIDATES[name][0]) / 1e6,
                         "int8 KB": round(path.stat().st_size / 1024), "ms/face": statistics.median(times[name]),
                         "x default": statistics.median(ratios[name])})
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int)
                                       else str(v) for v in row.values()) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table)
    with open(args.out.with_suffix(".csv"), "w") as f:
        f.write(",".join(header) + "\n" + "".join(",".join(str(v) for v in row.values()) + "\n" for row in rows))
    print(f"written {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
