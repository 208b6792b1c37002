"""Confidence calibration of a converted classifier: temperature scaling (Guo et al. 2017).

A model trained on soft targets (teachers' probabilities, FER+ votes, label smoothing) can be right more
often than its probabilities say; one trained on hard labels, less often. Dividing the logits by one
temperature T, fitted on the validation split by log-likelihood, makes the probabilities mean what they say
without changing any prediction, so the tracker's ``uncertain`` threshold means the same for every model.
``ferlite convert`` fits T for each file it writes and stores it in the sidecar (``temperature``); the device
divides the logits by it before its softmax. For a file converted before this existed:

    python -m ferlite.converters.calibrate MODEL.tflite --data DATA [--split PublicTest]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

#: Fewer validation faces than this give too noisy a fit: the temperature stays 1.
MIN_FACES = 200
GRID = np.round(np.arange(0.5, 2.0001, 0.05), 2)


def calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the mean gap between confidence and accuracy over 10 confidence bins."""
    conf, right = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        k = (conf > lo) & (conf <= hi)
        if k.any():
            total += k.mean() * abs(right[k].mean() - conf[k].mean())
    return float(total)


def rescale(probs: np.ndarray, t: float) -> np.ndarray:
    """The probabilities at temperature ``t``: softmax(log(probs) / t), which is softmax(logits / t)."""
    z = np.log(np.clip(probs, 1e-12, 1.0)) / t
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(T, calibration error before, after): the T of :data:`GRID` with the lowest negative log-likelihood
    of the true classes ``y`` (indices) given ``probs``; T = 1 with fewer than :data:`MIN_FACES` faces."""
    before = calibration_error(probs, y)
    if len(y) < MIN_FACES:
        return 1.0, before, before
    rows = np.arange(len(y))
    nll = [-np.log(rescale(probs, t)[rows, y] + 1e-12).mean() for t in GRID]
    t = float(GRID[int(np.argmin(nll))])
    return t, before, calibration_error(rescale(probs, t), y)


def calibrate_file(model: Path, probs: np.ndarray, true: list[str]) -> tuple[float, float, float]:
    """Fit the temperature of a .tflite file from its probabilities ``probs`` for faces labelled ``true``
    (``trainer.evaluate.scored``), on top of the one its sidecar holds, and store the product in the sidecar;
    returns (temperature, error before, after)."""
    from dataclasses import replace

    from ferlite.edge.classification.modelinfo import ModelInfo
    from ferlite.errors import UsageError

    info = ModelInfo.for_model(model)
    if info.output != "logits":
        raise UsageError(f"{model}: its output is {info.output}; only a model that ends at its logits can be rescaled")
    t, before, after = fit_temperature(probs, np.array([info.labels.index(label) for label in true]))
    temperature = round(info.temperature * t, 3)
    replace(info, temperature=temperature, metrics={**info.metrics, "calibration_error": round(after, 4)}).write(model)
    return temperature, before, after


def main(argv: list[str] | None = None) -> int:
    from ferlite.errors import FerliteError
    from ferlite.trainer.evaluate import load_dataset_split, scored

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="a .tflite file with its .json sidecar")
    ap.add_argument("--data", required=True, help="a data-set folder or its manifest.csv")
    ap.add_argument("--split", default="", help="the split to fit on (default PublicTest, else val)")
    args = ap.parse_args(argv)
    try:
        data = load_dataset_split(args.data, args.split or None, 48, args.model)
        _, probs, true = scored(args.model, data)
        t, before, after = calibrate_file(args.model, probs, true)
    except FerliteError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model}: temperature {t:g} (calibration error on {data.name}: {before:.3f} -> {after:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
