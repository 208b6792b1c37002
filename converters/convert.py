"""Convert a trained Keras model to TFLite (int8 and float16) and check it.

The labels, input size and pixel format travel in a sidecar JSON next to each .tflite file. A parity
check is part of conversion: the Keras model and each TFLite file are evaluated on the same split, and
conversion fails (exit code 1) if int8 loses more than --max-drop points of accuracy. A data set with no
validation split is checked on the faces `ferlite train` held out of it (trainer/finetune.py). On the same
faces it fits a temperature for the logits (converters/calibrate.py; 200 faces at least, else 1), stored in the
sidecar, so that probabilities mean what they say. Writing into
the installed package's model folder (the bundled models) needs --replace-bundled.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

from ferlite.converters.tflite import DEFAULT_SAMPLES, MIN_SAMPLES
from ferlite.errors import FerliteError, MissingFileError, UsageError, require


class ConversionError(FerliteError):
    """A converted model failed its parity check."""


def resolve_keras(path: Path) -> Path:
    """A .keras file, or a run folder (its best.keras)."""
    if path.is_dir():
        path = path / "best.keras"
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or folder")
    if path.suffix != ".keras" or not path.is_file():
        raise UsageError(f"{path}: expected a .keras model or a training run folder holding best.keras")
    return path


def shifted(keras, image, dy: int, dx: int):
    """``image`` (batch, height, width, channels) moved by ``dy`` rows and ``dx`` columns, the uncovered border
    filled by repeating the edge pixels (numpy's ``mode="edge"``). Slices and concatenations only: exact in int8."""
    if dy > 0:
        image = keras.ops.concatenate([image[:, :1]] * dy + [image[:, :-dy]], axis=1)
    elif dy < 0:
        image = keras.ops.concatenate([image[:, -dy:]] + [image[:, -1:]] * -dy, axis=1)
    if dx > 0:
        image = keras.ops.concatenate([image[:, :, :1]] * dx + [image[:, :, :-dx]], axis=2)
    elif dx < 0:
        image = keras.ops.concatenate([image[:, :, -dx:]] + [image[:, :, -1:]] * -dx, axis=2)
    return image


def view_offsets(shift: int) -> list[tuple[int, int]]:
    """The (dy, dx) of each view: the face itself, then, with ``shift``, the face moved ``shift`` pixels up, down,
    left and right."""
    return [(0, 0)] + ([(-shift, 0), (shift, 0), (0, -shift), (0, shift)] if shift else [])


def deploy_graph(keras, model, mirror: bool = False, shift: int = 0):
    """What ships as TFLite: the model up to its logits, when it ends in a softmax layer (ferlite's own do);
    with ``mirror`` and/or ``shift``, a graph that classifies several views of the face in one invoke (one output
    row each, which the device averages): the face and its mirror image; each of those also moved ``shift``
    pixels up, down, left and right. Returns (graph, output kind, number of views).

    The device applies softmax in float. TFLite's int8 SOFTMAX kernel rounds differently on arm64 and x86
    (1 LSB on a few outputs), while every op before it gives identical int8 outputs on both; and float
    softmax gives finer confidences than int8's steps of 1/256."""
    graph, output = model, "probs"
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax) and len(model.layers) > 1:
        graph, output = keras.Model(model.input, model.layers[-2].output, name=model.name), "logits"
    if not (mirror or shift):
        return graph, output, 1
    image = keras.Input(model.input_shape[1:], name="image")
    faces = [image, keras.ops.flip(image, axis=2)] if mirror else [image]
    views = [shifted(keras, face, dy, dx) for face in faces for dy, dx in view_offsets(shift)]
    batch = keras.layers.Concatenate(axis=0, name="views")(views)
    return keras.Model(image, graph(batch), name=model.name), output, len(views)


def graph_scores(graph, views: int, x):
    """Per-face mean over the views of a deploy graph's output rows, evaluated in Keras (float). For a batch of
    n faces the graph returns its rows view by view (all faces' first view, then all faces' second, ...)."""
    import numpy as np

    out = [graph.predict_on_batch(x[i:i + 256]) for i in range(0, len(x), 256)]  # one batch: rows stay in order
    return np.concatenate([o.reshape(views, -1, o.shape[-1]).mean(axis=0) for o in out])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="a .keras model, or a training run folder (uses its best.keras)")
    p.add_argument("--data", required=True, help="data set for calibration and the parity check")
    p.add_argument("--calib-split", default="", help="split the int8 calibration faces come from (default: training)")
    p.add_argument("--val-split", default="", help="split for the parity check (default: PublicTest, else val)")
    p.add_argument("--precision", nargs="+", choices=["int8", "float16", "float32"], default=["int8", "float16"],
                   help="precisions to export")
    p.add_argument("--samples", type=int, default=None,
                   help="representative faces for int8 calibration, 20-500 (default: 300, or every face of the "
                        "calibration split when it has fewer)")
    p.add_argument("--max-drop", type=float, default=1.0, help="largest accuracy loss allowed for int8, in points")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    p.add_argument("--replace-bundled", action="store_true",
                   help="allow --out to be the installed package's model folder (replaces the bundled models)")
    p.add_argument("--name", default="", help="file stem (default ferlite_<arch>)")
    p.add_argument("--mirror", action="store_true",
                   help="build flip averaging into the model: it classifies each face and its mirror image in one "
                        "invoke (about twice the time) and the device averages the two")
    p.add_argument("--shift", type=int, default=0, metavar="PIXELS",
                   help="also classify each view moved PIXELS up, down, left and right (edges repeated) and average: "
                        "five times the views (with --mirror, 10 per face in one invoke); 0 (default) turns it off")


@dataclass(frozen=True)
class Source:
    """The Keras model being converted, and what its sidecars will say about it."""

    path: Path
    model: object
    labels: tuple[str, ...]
    size: int
    arch: str


def bundled_models_folder() -> Path:
    """The installed package's model folder (edge/models of an editable install)."""
    from importlib import resources

    return Path(str(resources.files("ferlite.edge") / "models"))


def check_options(args: argparse.Namespace) -> None:
    if args.shift < 0 or args.shift > 8:
        raise UsageError(f"--shift {args.shift}: use 0 (off) to 8 pixels")
    if args.samples is not None and not MIN_SAMPLES <= args.samples <= 500:
        raise UsageError(f"--samples {args.samples}: use {MIN_SAMPLES} to 500 calibration faces")
    bundled = bundled_models_folder().resolve()
    out = args.out.resolve()
    if (out == bundled.parent or bundled.parent in out.parents) and not args.replace_bundled:
        raise UsageError(f"--out {args.out}: that is inside the installed package, by its model folder ({bundled}); "
                         "writing there replaces the bundled models for every user of this install. Choose another "
                         "folder and pass the model with --model, or add --replace-bundled to do it on purpose")


def load_model(keras, path: Path) -> Source:
    """The .keras model (or a run folder's best.keras) and its labels (found before TensorFlow loads it)."""
    from ferlite.trainer.evaluate import model_labels

    keras_path = resolve_keras(path)
    labels = model_labels(keras_path)
    model = keras.models.load_model(keras_path)
    arch = model.name.removeprefix("ferlite_").replace("_", "-")
    return Source(keras_path, model, tuple(labels), int(model.input_shape[1]), arch)


def load_data(args: argparse.Namespace, src: Source):
    """The data set, the calibration split's name and the parity-check faces (named machine-independently)."""
    from ferlite.trainer import dataset
    from ferlite.trainer.data import default_split_names, load_split
    from ferlite.trainer.evaluate import EvalData
    from ferlite.trainer.finetune import training_hold_out

    df, val_split = training_hold_out(dataset.load(args.data), src.path, args.val_split)
    train_split, _ = default_split_names(set(df["split"].dropna()))
    val = load_split(df, val_split, list(src.labels), src.size, progress=False)
    val_data = EvalData(val.x, [src.labels[i] for i in val.y], dataset.describe(args.data, val_split))
    return df, args.calib_split or train_split, val_data


def calibration(args: argparse.Namespace, df, split: str, src: Source):
    """The int8 representative set: --samples faces of the calibration split; a one-line error naming the option
    when the split has too few."""
    from ferlite.converters.tflite import Int8Config
    from ferlite.trainer.data import load_split

    if not (df["split"] == split).any():
        raise UsageError(f"--calib-split {split}: the data set has no faces in this split "
                         f"(splits: {', '.join(sorted(set(df['split'].dropna())))})")
    faces = load_split(df, split, list(src.labels), src.size, progress=False).x
    samples = args.samples or max(MIN_SAMPLES, min(DEFAULT_SAMPLES, len(faces)))
    if len(faces) < samples:
        raise UsageError(f"--samples {samples}: the {split!r} split has only {len(faces)} faces with the model's "
                         f"labels to calibrate int8 with (give fewer, at least {MIN_SAMPLES}, or another "
                         "--calib-split)")
    if samples < DEFAULT_SAMPLES:
        print(f"int8 calibration on {samples} faces of {split!r} (the default is {DEFAULT_SAMPLES})")
    return Int8Config.for_full_integer(faces, samples)


def export(graph, precision: str, out: Path, info, int8_config, val_data) -> tuple:
    """Convert the graph at one precision, write its sidecar and evaluate it on the parity-check faces:
    (the figures, the probabilities, their true labels), as ``trainer.evaluate.scored``."""
    from ferlite.converters.tflite import EXPORTERS
    from ferlite.trainer.evaluate import scored

    EXPORTERS[precision](graph, out, *([int8_config] if precision == "int8" else []))
    info.write(out)
    return scored(out, val_data)  # reads the sidecar just written; it is rewritten with the figures by the caller


def write_shipped_keras(keras, src: Source, out: Path, reference: dict, data_name: str, views: int) -> Path:
    """The .keras file that ships (no optimizer state) and its sidecar with the float figures."""
    from ferlite.edge.classification.modelinfo import ModelInfo
    from ferlite.trainer.model import save_weights_only

    save_weights_only(keras, src.model, out)
    ModelInfo(labels=src.labels, input_size=src.size, arch=src.arch, precision="float32",
              metrics={"data": data_name, "accuracy": round(reference["accuracy"], 4),
                       "macro_f1": round(reference["macro_f1"], 4), "views": views}).write(out)
    return out


def run(args: argparse.Namespace) -> int:
    require("tensorflow", "train", "convert")
    from ferlite.converters.calibrate import MIN_FACES, calibrate_file
    from ferlite.edge.classification.modelinfo import ModelInfo
    from ferlite.tables import format_table
    from ferlite.trainer.evaluate import metrics
    from ferlite.trainer.model import import_keras

    check_options(args)
    keras = import_keras()
    src = load_model(keras, args.model)
    df, calib_split, val_data = load_data(args, src)
    stem = args.name or f"ferlite_{src.arch.replace('-', '_')}"
    graph, output, views = deploy_graph(keras, src.model, args.mirror, args.shift)
    int8_config = calibration(args, df, calib_split, src) if "int8" in args.precision else None

    # The float reference is the graph that gets converted, views and all, so the drop measures quantization alone.
    reference = metrics(val_data.labels, graph_scores(graph, views, val_data.x.astype("float32")), src.labels)
    rows = [[f"keras float32, {views} view{'s' if views > 1 else ''}", f"{reference['accuracy']:.4f}",
             f"{reference['macro_f1']:.3f}", src.path.stat().st_size, ""]]
    failures = []
    for precision in args.precision:
        out = args.out / f"{stem}_{precision}.tflite"
        info = ModelInfo(labels=src.labels, input_size=src.size, arch=src.arch, precision=precision, output=output,
                         views=views)
        result, probs, true = export(graph, precision, out, info, int8_config, val_data)
        replace(info, metrics={"data": val_data.name, "accuracy": round(result["accuracy"], 4),
                               "macro_f1": round(result["macro_f1"], 4),
                               "keras_accuracy": round(reference["accuracy"], 4)}).write(out)
        calibrated = calibrate_file(out, probs, true) if output == "logits" else None
        if calibrated:
            note = "" if len(true) >= MIN_FACES else f" (under {MIN_FACES} faces: not fitted)"
            print(f"{out.name}: temperature {calibrated[0]:g}{note}; calibration error {calibrated[1]:.3f} -> "
                  f"{calibrated[2]:.3f} on {val_data.name}")
        drop = 100 * (reference["accuracy"] - result["accuracy"])
        rows.append([f"tflite {precision}", f"{result['accuracy']:.4f}", f"{result['macro_f1']:.3f}",
                     out.stat().st_size, f"{drop:+.2f}"])
        if precision == "int8" and drop > args.max_drop:  # the parity check
            failures.append(f"int8 loses {drop:.2f} points of accuracy (limit {args.max_drop})")
    slim = write_shipped_keras(keras, src, args.out / f"{stem}.keras", reference, val_data.name, views)
    rows.append(["keras (shipped, no optimizer)", "", "", slim.stat().st_size, ""])
    print(format_table(["model", "accuracy", "macro-F1", "bytes", "drop (points)"], rows))
    (args.out / f"{stem}_conversion.json").write_text(json.dumps({"rows": rows, "data": val_data.name}, indent=1))
    if failures:
        raise ConversionError("; ".join(failures) + f" on {val_data.name}")
    print(f"wrote {', '.join(f'{stem}_{p}.tflite' for p in args.precision)} and {stem}.keras "
          f"(+ .json sidecars) to {args.out}")
    return 0
