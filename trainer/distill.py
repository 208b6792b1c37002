"""Knowledge distillation targets: what trained teacher models say about each training face.

The teachers (one or more .keras files or run folders) classify every training face and its mirror
image once, before training; their logits are averaged over views and teachers and softened by a
temperature. ``ferlite train --teacher A --teacher B --distill 0.8`` then trains on
``0.2 * label + 0.8 * teachers``: the ensemble's knowledge in one model of the student's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlite.errors import UsageError


def teacher_path(spec: str) -> Path:
    """A teacher is a .keras file, or a run folder whose best.keras is used."""
    p = Path(spec)
    if p.is_dir():
        p = p / "best.keras"
    if not p.is_file():
        raise UsageError(f"teacher {spec}: no such .keras file (give a .keras file or a run folder with best.keras)")
    return p


def teacher_targets(keras, specs: list[str], x: np.ndarray, classes: list[str],
                    temperature: float = 1.0, batch: int = 512) -> np.ndarray:
    """(N, classes) probabilities: softmax(mean logits over teachers and {face, mirror} / temperature)."""
    from tqdm import tqdm

    total = np.zeros((len(x), len(classes)), np.float64)
    xf = x.astype(np.float32)
    bar = tqdm(total=2 * len(specs) * len(x), desc="teacher predictions", unit="face", leave=False)
    for spec in specs:
        model = keras.models.load_model(teacher_path(spec))
        if model.output_shape[-1] != len(classes):
            raise UsageError(f"teacher {spec}: {model.output_shape[-1]} classes, the data set has {len(classes)}")
        logits = keras.Model(model.inputs, model.get_layer("logits").output)
        for view in (xf, xf[:, :, ::-1]):
            for start in range(0, len(view), batch):  # a batch at a time, for the progress bar
                total[start:start + batch] += logits.predict_on_batch(view[start:start + batch])
                bar.update(len(view[start:start + batch]))
    bar.close()
    z = total / (2 * len(specs)) / temperature
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)
