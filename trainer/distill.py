"""Knowledge distillation targets: what trained teacher models say about each training face.

The teachers (one or more .keras files or run folders) classify every training face and its mirror
image once, before training; their logits are averaged over views and teachers and softened by a
temperature. ``ferlite train --teacher A --teacher B --distill 0.8`` then trains on
``0.2 * label + 0.8 * teachers``: the ensemble's knowledge in one model of the student's size.

A run saves the averaged logits as ``teachers.npz`` in its folder, with a fingerprint of the training faces:
``--resume`` reads them back instead of asking every teacher again, and ``--teacher RUN/teachers.npz`` hands
a whole ensemble to another run (on another machine) as one small file, counted as the teachers it holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ferlite.errors import MissingFileError, UsageError

SAVED = "teachers.npz"


def teacher_path(spec: str) -> Path:
    """A teacher is a .keras file, a run folder whose best.keras is used, or a saved ensemble (.npz)."""
    p = Path(spec)
    if p.is_dir():
        p = p / "best.keras"
    if not p.is_file():
        raise MissingFileError(f"teacher {spec}: no such .keras file (give a .keras file, a run folder with "
                         f"best.keras, or a run's {SAVED})")
    return p


def fingerprint(x: np.ndarray) -> str:
    """Which training faces (and in which order) a set of logits belongs to."""
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def read_saved(path: Path) -> dict:
    """A teachers.npz's contents: logits, count, faces (fingerprint), classes, specs."""
    try:
        with np.load(path) as f:
            return {"logits": f["logits"], "count": int(f["count"]), "faces": str(f["faces"]),
                    "classes": list(f["classes"]), "specs": list(f["specs"])}
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"teacher {path}: not a saved ensemble ({exc})") from None


def saved_logits(path: Path, x: np.ndarray, classes: list[str], saved: dict | None = None) -> tuple[np.ndarray, int]:
    """(mean logits, number of teachers) from a teachers.npz (or its contents, ``saved``), checked against
    these faces and classes."""
    saved = saved or read_saved(path)
    if saved["classes"] != list(classes):
        raise UsageError(f"teacher {path}: saved for classes {', '.join(saved['classes'])}, the data set has "
                         f"{', '.join(classes)}")
    if saved["faces"] != fingerprint(x):
        raise UsageError(f"teacher {path}: saved for other training faces than these {len(x)} (another data set "
                         "or split)")
    return saved["logits"], saved["count"]


def model_logits(keras, path: Path, x: np.ndarray, classes: list[str], bar, batch: int = 512) -> np.ndarray:
    """One model's logits averaged over each face and its mirror image."""
    model = keras.models.load_model(path)
    if model.output_shape[-1] != len(classes):
        raise UsageError(f"teacher {path}: {model.output_shape[-1]} classes, the data set has {len(classes)}")
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    total = np.zeros((len(x), len(classes)), np.float64)
    for view in (x, x[:, :, ::-1]):
        for start in range(0, len(view), batch):  # a batch at a time, for the progress bar
            total[start:start + batch] += logits.predict_on_batch(view[start:start + batch])
            bar.update(len(view[start:start + batch]))
    return total / 2


def ensemble_logits(keras, specs: list[str], x: np.ndarray, classes: list[str]) -> tuple[np.ndarray, int]:
    """(mean logits over every teacher, number of teachers); a saved ensemble counts as its teachers."""
    from tqdm import tqdm

    xf = x.astype(np.float32)
    paths = [teacher_path(s) for s in specs]
    models = [p for p in paths if p.suffix != ".npz"]
    bar = tqdm(total=2 * len(models) * len(x), desc="teacher predictions", unit="face", leave=False)
    total, count = np.zeros((len(x), len(classes)), np.float64), 0
    for path in paths:
        logits, n = saved_logits(path, x, classes) if path.suffix == ".npz" else \
            (model_logits(keras, path, xf, classes, bar), 1)
        total += n * logits
        count += n
    bar.close()
    return total / count, count


def soften(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def teacher_targets(keras, specs: list[str], x: np.ndarray, classes: list[str], temperature: float = 1.0,
                    run_dir: Path | None = None) -> np.ndarray:
    """(N, classes) probabilities: softmax(mean logits over teachers and {face, mirror} / temperature).
    With ``run_dir``, the logits are read from its teachers.npz when it holds these teachers' for these faces,
    and written there otherwise."""
    saved = run_dir / SAVED if run_dir is not None else None
    if saved is not None and saved.exists():
        kept = read_saved(saved)
        if kept["specs"] == list(specs):
            try:
                logits = saved_logits(saved, x, classes, kept)[0]
            except UsageError:  # other faces or classes (an edited data set): computed again
                pass
            else:
                print(f"teacher logits from {saved}")
                return soften(logits, temperature)
    logits, count = ensemble_logits(keras, specs, x, classes)
    if saved is not None:
        np.savez_compressed(saved, logits=logits.astype(np.float32), count=count, faces=fingerprint(x),
                            classes=np.array(classes), specs=np.array(specs))
    return soften(logits, temperature)
