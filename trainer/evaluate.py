"""Evaluate a Keras or TFLite expression model on a data set split or a FER2013-layout csv.

Reports accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix; --out writes
confusion.csv, confusion.png and per_class.csv, --json writes the figures. TFLite models run through
the same ExpressionClassifier the device uses. With no --model, the bundled int8 model is evaluated:

    ferlite evaluate --data fer2013.csv --usage PrivateTest --json out.json

With --ferplus fer2013new.csv a FER2013 csv is scored by FER+'s protocol (Barsoum et al. 2016): each face labelled
by the majority of its ten annotators, faces without a majority or labelled unknown / not-a-face left out. It
reports the eight-class figure the FER+ literature gives (a contempt face counts as wrong for a model without
contempt) beside the figure over the classes the model has.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ferlite.errors import DatasetError, MissingFileError, ModelLoadError, UsageError, require

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class EvalData:
    x: np.ndarray  # (N, S, S, 1) uint8
    labels: list[str]
    name: str


def load_fer_csv(path: Path, usage: str, ferplus: Path | None = None, protocol: bool = True) -> EvalData:
    """A FER2013-layout csv's rows of one Usage; with ``ferplus`` (FER+'s fer2013new.csv), labelled by FER+'s
    protocol instead of FER2013's labels, the rows it gives no label dropped (``importers.ferplus_majority``);
    with ``protocol=False``, by the plurality labels ``ferlite import --ferplus`` trains on."""
    import numpy as np
    import pandas as pd

    from ferlite.trainer.labels import FER2013_LABELS

    try:
        df = pd.read_csv(path, usecols=["emotion", "pixels", "Usage"])
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path}: not a FER2013-layout csv (emotion,pixels,Usage): {exc}") from None
    in_usage = (df["Usage"] == usage).to_numpy()
    if not in_usage.any():
        raise DatasetError(f"{path}: no rows with Usage={usage!r} (found {', '.join(sorted(set(df['Usage'])))})")
    labels = [FER2013_LABELS[int(e)] for e in df["emotion"]]
    name = f"{path.name}:{usage}"
    if ferplus is not None:
        labels = ferplus_labels(ferplus, path, df, None if protocol else labels)
        name += " (FER+ majority labels)" if protocol else " (FER+ plurality labels)"
    keep = in_usage & np.array([label is not None for label in labels])
    x = np.stack([np.array(p.split(), np.uint8) for p in df["pixels"][keep]]).reshape(-1, 48, 48, 1)
    return EvalData(x, [label for label, k in zip(labels, keep) if k], name)


def ferplus_labels(ferplus: Path, csv_path: Path, df, fer2013: list[str] | None = None) -> list[str | None]:
    """FER+'s majority label of each row of FER2013's csv ``df`` (None where FER+'s protocol gives none); given
    FER2013's labels ``fer2013``, the import's plurality label instead (``importers.ferplus_label``)."""
    from ferlite.trainer.importers import ferplus_label, ferplus_majority, read_ferplus, vote_counts

    votes = read_ferplus(ferplus, csv_path, df).to_dict("records")
    return [None if not isinstance(v["Image name"], str)
            else ferplus_majority(vote_counts(v)) if fer2013 is None else ferplus_label(vote_counts(v), fer2013[i])
            for i, v in enumerate(votes)]


def all_faces(result: dict, data: EvalData) -> dict:
    """FER+'s published figure: accuracy over every labelled face, those of a class the model lacks counted
    wrong (eight classes: FER+'s contempt for a seven-class model)."""
    total = len(data.labels)
    return {"classes": len(set(data.labels) | set(result["labels"])), "n": total,
            "accuracy": round(result["accuracy"] * result["n"]) / total}


def all_faces_line(result: dict, data: EvalData) -> str:
    """The FER+ protocol's figure, and the one over the model's own classes when they differ."""
    every = all_faces(result, data)
    line = f"FER+ protocol, {every['classes']} classes: {every['accuracy']:.2%} of {every['n']} faces"
    if result["skipped_unknown_label"]:
        missing = sorted(set(data.labels) - set(result["labels"]))
        line += (f"; {len(result['labels'])} classes ({result['skipped_unknown_label']} {', '.join(missing)} "
                 f"faces left out): {result['accuracy']:.2%} of {result['n']}")
    return line


def is_fer_csv(path: Path) -> bool:
    """Whether ``path`` is a FER2013-layout csv (an ``emotion`` and a ``pixels`` column), not a manifest,
    whatever the file is called."""
    import gzip

    if not path.is_file() or path.suffix not in (".csv", ".gz"):
        return False
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as f:
            header = {name.strip() for name in f.readline().split(",")}
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    return {"emotion", "pixels"} <= header


def load_dataset_split(path: str, split: str | None, size: int, model: Path | None = None) -> EvalData:
    """A data set's split; with none named, the validation split of the run ``model`` comes from, held out
    of the training rows again when the data set has none (trainer/finetune.py ``training_hold_out``)."""
    from ferlite.trainer import dataset
    from ferlite.trainer.data import load_split
    from ferlite.trainer.finetune import training_hold_out

    df, split = training_hold_out(dataset.load(path), model, split)
    classes = sorted(set(df["label"].dropna()))
    s = load_split(df, split, classes, size, progress=False)
    return EvalData(s.x, [classes[i] for i in s.y], dataset.describe(path, split))


def model_labels(model_path: Path) -> tuple[str, ...]:
    """Labels of a model: its sidecar JSON, or the run's config.json for a training checkpoint."""
    from ferlite.edge.classification.modelinfo import ModelInfo

    if ModelInfo.sidecar(model_path).exists():
        return ModelInfo.for_model(model_path).labels
    cfg = model_path.parent / "config.json"
    if cfg.exists():
        return tuple(json.loads(cfg.read_text())["classes"])
    raise ModelLoadError(f"{model_path}: no labels found (expected {ModelInfo.sidecar(model_path).name} "
                         "or the run's config.json beside it)")


def predict(model_path: Path, x: np.ndarray, flip: bool = False, threads: int = 1) -> np.ndarray:
    """Class probabilities for a batch of uint8 faces, from a .keras or .tflite model."""
    import numpy as np

    if model_path.suffix == ".tflite":
        from ferlite.edge.classification.classifier import ExpressionClassifier

        clf = ExpressionClassifier(model_path, num_threads=threads, flip=flip)
        return np.stack([clf.probabilities(face[:, :, 0]) for face in x])
    if model_path.suffix != ".keras":
        raise UsageError(f"{model_path}: expected a .keras or .tflite model")
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    model = keras.models.load_model(model_path)
    xf = x.astype(np.float32)
    p = model.predict(xf, batch_size=256, verbose=0)
    if flip:
        p = (p + model.predict(xf[:, :, ::-1, :], batch_size=256, verbose=0)) / 2
    return p


def metrics(true: list[str], probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y = np.array([labels.index(t) for t in true])
    pred = probs.argmax(1)
    idx = list(range(len(labels)))
    p, r, f, n = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    seen = sorted(set(y.tolist()) | set(pred.tolist()))  # macro-F1 over the classes in the data or predicted
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=seen, average="macro", zero_division=0)),
        "per_class": {labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                  "support": int(n[i])} for i in idx},
        "labels": list(labels),
        "confusion": confusion_matrix(y, pred, labels=idx).tolist(),
    }


def evaluate(model_path: Path, data: EvalData, flip: bool = False) -> dict:
    return scored(model_path, data, flip)[0]


def scored(model_path: Path, data: EvalData, flip: bool = False) -> tuple[dict, np.ndarray, list[str]]:
    """(the figures, the probabilities, their true labels) over the faces whose label the model knows."""
    labels = model_labels(model_path)
    keep = [i for i, t in enumerate(data.labels) if t in labels]
    if not keep:
        raise DatasetError(f"{data.name}: no rows with a label the model knows ({', '.join(labels)})")
    probs = predict(model_path, data.x[keep], flip)
    true = [data.labels[i] for i in keep]
    result = metrics(true, probs, labels)
    result.update(model=str(model_path), data=data.name, flip=flip, skipped_unknown_label=len(data.labels) - len(keep))
    return result, probs, true


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=None,
                   help="a .tflite or .keras model, a training run folder, or a bundled int8 model by name: "
                        "default (FER+ labels), fer2013 (FER2013 labels) (default: default)")
    p.add_argument("--data", required=True, help="a data-set folder / manifest.csv, or a FER2013-layout csv")
    p.add_argument("--usage", default="", help="FER2013 csv: the Usage to evaluate (Training, PublicTest, PrivateTest)")
    p.add_argument("--ferplus", type=Path, metavar="FER2013NEW_CSV",
                   help="FER2013 csv: score by FER+'s protocol (fer2013new.csv: the annotators' majority label; "
                        "reports the eight-class figure and the one over the model's classes)")
    p.add_argument("--split", default="", help="data set: the split to evaluate (default PublicTest, else val)")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror image")
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    p.add_argument("--out", type=Path, help="folder for confusion.csv, confusion.png and per_class.csv")


def run(args: argparse.Namespace) -> int:
    require("pandas", "train", "evaluate")
    require("sklearn", "train", "evaluate")
    from ferlite.edge.assets import classifier_model
    from ferlite.trainer.report import summary_table, write_confusion

    model = classifier_model(args.model)
    if model.is_dir():
        model = model / "best.keras"
    if not model.exists():
        raise MissingFileError(f"{model}: no such model")
    data_path = Path(args.data)
    if not data_path.exists():
        raise MissingFileError(f"{data_path}: no such file or folder")
    if is_fer_csv(data_path):
        data = load_fer_csv(data_path, args.usage or "PublicTest", args.ferplus)
    else:
        if args.usage or args.ferplus:
            raise UsageError("--usage and --ferplus apply to a FER2013-layout csv; use --split for a data set")
        from ferlite.edge.classification.modelinfo import ModelInfo

        size = ModelInfo.for_model(model).input_size if ModelInfo.sidecar(model).exists() else 48
        data = load_dataset_split(args.data, args.split or None, size, model)
    result = evaluate(model, data, flip=args.flip)
    print(f"{model} on {data.name} ({result['n']} faces{', flip-averaged' if args.flip else ''})")
    print(summary_table(result))
    if args.ferplus:
        result["ferplus_protocol"] = all_faces(result, data)
        print(all_faces_line(result, data))
    elif result["skipped_unknown_label"]:
        print(f"({result['skipped_unknown_label']} faces skipped: their label is not one the model knows)")
    if args.out:
        write_confusion(result, args.out, f"{model.name} on {data.name}")
        print(f"wrote confusion.csv, confusion.png, per_class.csv to {args.out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")
    return 0
