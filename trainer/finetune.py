"""Fine-tuning on a small data set of your own: the validation hold-out and the label set kept from the init model.

A data set with no validation split gets one held out of its training rows. With several people (``subject``)
the hold-out is grouped by person, so nobody is on both sides; with one person it is split in time instead: the
last fifth of each expression's images, in manifest order (capture order), which are the frames furthest in time
from the ones trained on. Fine-tuning (``--init``) keeps the init model's classes: a capture of some expressions
still gives a model of all seven, and the classes with no training faces are kept by distilling the init model
on the same faces (its probabilities are part of every target), unless ``--teacher`` names other teachers.
``--classes`` changes the label set instead: the output layer is copied class by class, by name, and a class the
init model lacks (FER+'s contempt, or one of your own) starts untrained.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from ferlite.errors import MissingFileError, UsageError
from ferlite.trainer.config import TrainConfig

#: Share of the training rows held out for validation when the data set has no validation split.
HOLD_OUT = 0.2
#: Weight of the init model's probabilities in the targets when some of its classes have no training faces.
KEEP_DISTILL = 0.5


def _subject(value) -> str:
    return "" if str(value) in ("nan", "<NA>", "None") else str(value or "")


def hold_out(df, train_split: str, val_split: str, seed: int, fraction: float = HOLD_OUT):
    """A data set with no validation split (e.g. kiosk captures): hold out a fifth of the training rows,
    grouped by person when several are known, else in time within the one person. Returns the new data
    frame and a sentence saying what was held out."""
    rows = df[df["split"] == train_split].to_dict("records")
    subjects = {_subject(r.get("subject")) for r in rows}
    if len(subjects) == 1 and "" not in subjects:
        split = _split_in_time(rows, fraction)
        how = (f"one person ({subjects.pop()}): the last {fraction:.0%} of each expression's images, "
               "in capture order, held out")
    else:
        split = _split_grouped(rows, fraction, seed)
        how = ("a stratified sample, grouped by person, held out" if all(subjects) and len(subjects) > 1
               else "a stratified sample held out (no person ids)")
    out = df.copy()
    out.loc[df["split"] == train_split, "split"] = [val_split if s == "val" else train_split for s in split]
    held = sum(s == "val" for s in split)
    if held == 0:
        raise UsageError(f"no {val_split!r} split, and {len(rows)} {train_split!r} image(s) are too few to hold "
                         f"any out: capture more, or give a validation split (--val-split)")
    note = f"no {val_split!r} split: {how} for validation ({held} of {len(rows)} images)"
    print(note)
    return out, note


def training_hold_out(df, model_path: Path | None, split: str | None = None) -> tuple:
    """For evaluate and convert: the data set with the validation rows the run ``model_path`` comes from used
    (its config.json: split names and seed, else the defaults and seed 0), held out again as `ferlite train`
    did when the data set has no such split; and the split to use (``split`` when given). Returns (df, split)."""
    from ferlite.trainer.data import default_split_names

    splits = set(df["split"].dropna())
    train_split, val_split = default_split_names(splits)
    seed = 0
    run_config = model_path.parent / "config.json" if model_path is not None else None
    if run_config is not None and run_config.is_file():
        run = json.loads(run_config.read_text())
        seed = run.get("seed", 0)
        train_split, val_split = run.get("train_split") or train_split, run.get("val_split") or val_split
    if not split and val_split not in splits and train_split in splits:
        df, _ = hold_out(df, train_split, val_split, seed)
    return df, split or val_split


def _split_in_time(rows: list[dict], fraction: float) -> list[str]:
    """The last ``fraction`` of each label's rows (at least one when it has two or more) -> "val"."""
    split = ["train"] * len(rows)
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r["label"], []).append(i)
    for indices in by_label.values():
        n = min(max(1, math.ceil(fraction * len(indices))), len(indices) - 1)
        for i in indices[len(indices) - n:]:
            split[i] = "val"
    return split


def _split_grouped(rows: list[dict], fraction: float, seed: int) -> list[str]:
    from ferlite.trainer.splits import assign_splits

    rows = [dict(r, split="", subject=_subject(r.get("subject"))) for r in rows]
    assign_splits(rows, fraction, 0.0, seed)
    return [r["split"] for r in rows]


def init_classes(path: Path) -> tuple[str, ...]:
    """The classes of a .keras model: from its sidecar (``<stem>.json``, as convert and the bundled models
    write) or its run folder's config.json."""
    for candidate, key in ((path.with_suffix(".json"), "labels"), (path.parent / "config.json", "classes")):
        if candidate.is_file():
            try:
                classes = json.loads(candidate.read_text()).get(key)
            except (OSError, ValueError):
                continue
            if classes:
                return tuple(classes)
    raise UsageError(f"--init {path}: cannot tell its classes (no {path.with_suffix('.json').name} with 'labels' "
                     "beside it, and no config.json of a run folder)")


def keep_label_set(cfg: TrainConfig, train_labels: set[str], init_file: Path) -> tuple[TrainConfig, str]:
    """Fine-tuning: the init model's classes, with those that have no training faces kept by distilling the
    init model on the same faces. Returns the config and a sentence for the summary ("" when all have data)."""
    classes = init_classes(init_file)
    unknown = sorted(train_labels - set(classes))
    if unknown:
        raise UsageError(f"--init {cfg.init}: its classes are {', '.join(classes)}; the data set also has "
                         f"{', '.join(unknown)}: name the classes to train, --classes {','.join(classes)} to leave "
                         f"{'it' if len(unknown) == 1 else 'them'} out or --classes {','.join((*classes, *unknown))} "
                         "to add (a new class starts untrained)")
    cfg = replace(cfg, classes=classes)
    missing = [c for c in classes if c not in train_labels]
    if not missing:
        return cfg, ""
    if not cfg.teachers:
        cfg = replace(cfg, teachers=(str(init_file),), distill=KEEP_DISTILL)
    note = (f"no training images of {', '.join(missing)}: the model keeps all {len(classes)} classes of --init "
            f"{cfg.init}, and learns them from its teacher(s) on your faces (distill {cfg.distill:g})")
    print(note)
    return cfg, note


def unlearnt_classes(cfg: TrainConfig, train_labels: set[str]) -> str:
    """--classes naming a class with no training images: said (and returned for the summary), not refused: the
    model keeps its output, but has nothing to learn it from; from --init, it forgets it."""
    empty = [c for c in cfg.classes if c not in train_labels]
    if not empty:
        return ""
    note = (f"--classes {','.join(empty)}: no {cfg.train_split!r} images, so the model cannot learn "
            f"{'it' if len(empty) == 1 else 'them'}" + (" and forgets what --init knew (leave --classes out to "
                                                        "keep such classes by distilling --init)" if cfg.init else ""))
    print(note)
    return note


def init_path(init: str) -> Path:
    """--init: a .keras path, or a bundled model by name ("bundled" and "default" are the default model)."""
    from ferlite.edge.assets import KERAS_CLASSIFIERS, bundled_keras_model

    path = Path(init)
    if not path.exists() and init in ("bundled", *KERAS_CLASSIFIERS):
        path = bundled_keras_model("default" if init == "bundled" else init)
    if not path.is_file():
        raise MissingFileError(f"--init {init}: no such .keras file")
    return path


def load_init_weights(keras, model, init: str, classes: tuple[str, ...]) -> None:
    """Copy weights layer by layer from a trained model (the bundled one, or a .keras path); the output layer
    class by class, by name, so ``--classes`` may reorder, drop or add classes (a new one starts at zero weights
    and the init's lowest bias: rarely predicted until its faces teach it)."""
    path = init_path(init)
    src = keras.models.load_model(path)
    weighted = [layer for layer in model.layers if layer.get_weights()]
    copied, grown = 0, []
    for layer in weighted:
        try:
            other = src.get_layer(layer.name)
        except ValueError:
            continue
        ws = other.get_weights()
        if layer.name == "logits" and ws and ws[0].shape[0] == layer.get_weights()[0].shape[0]:
            ws, grown = _output_by_class(ws, _init_classes_or_none(path, ws[1].shape[0]), classes)
        if ws and all(a.shape == b.shape for a, b in zip(ws, layer.get_weights())):
            layer.set_weights(ws)
            copied += 1
    if copied == 0:
        raise UsageError(f"--init {init}: none of its layers fits the {model.name} architecture (see --arch)")
    print(f"--init {init}: copied the weights of {copied} of {len(weighted)} layers"
          + (f"; new class(es) {', '.join(grown)} start untrained" if grown else ""))


def _init_classes_or_none(path: Path, n: int) -> tuple[str, ...] | None:
    """The init model's class names when they can be told and match its output width, else None."""
    try:
        names = init_classes(path)
    except UsageError:
        return None
    return names if len(names) == n else None


def _output_by_class(ws: list, src_classes: tuple[str, ...] | None, classes: tuple[str, ...]) -> tuple[list, list]:
    """The init's output kernel and bias laid out for ``classes``: each known class's column, by name; zeros and
    the lowest bias for a class the init lacks. Without the init's names, the weights as they are (copied only
    when the widths agree). Returns (weights, the new classes)."""
    import numpy as np

    if src_classes is None or tuple(src_classes) == tuple(classes):
        return ws, []
    kernel, bias = ws
    new_kernel = np.zeros((kernel.shape[0], len(classes)), kernel.dtype)
    new_bias = np.full(len(classes), bias.min(), bias.dtype)
    grown = []
    for j, name in enumerate(classes):
        if name in src_classes:
            i = src_classes.index(name)
            new_kernel[:, j], new_bias[j] = kernel[:, i], bias[i]
        else:
            grown.append(name)
    return [new_kernel, new_bias], grown
