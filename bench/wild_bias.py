"""Does a per-class shift of the logits, fitted on the wild photos of the training people, raise macro-F1 on the
held-out people? (An experiment for issue #29's wild goal; it leaves the tree in the commit after it.)

    python bench/wild_bias.py edge/models/ferlite_cnn48_w_ferplus_int8.tflite data/wild-faces data/fer2013-ferplus

The wild face crops (``ferlite faces`` output: the device's detector and aligner, split train / val by person)
and FER+ PublicTest's crops are read through the int8 model. One shift per class (neutral fixed at 0) is fitted
on the train split by coordinate ascent on macro-F1 (grid -1 to 3 in steps of 0.25, three sweeps), then applied to
the held-out people and to PublicTest's plurality labels.
"""

from __future__ import annotations

import csv
import sys

import cv2
import numpy as np

from ferlite.edge.classification.classifier import ExpressionClassifier


def crops(clf, folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in csv.DictReader(open(f"{folder}/manifest.csv"))
            if r["split"] == split and r.get("status", "kept") == "kept"]
    x = np.stack([clf._invoke(clf._preprocess(cv2.imread(f"{folder}/{r['path']}", cv2.IMREAD_GRAYSCALE)))
                  for r in rows])
    return x, np.array([r["label"] for r in rows])


def scores(x, y, bias, labels) -> tuple[float, list[float], float]:
    keep = np.isin(y, labels)
    truth = np.array([labels.index(v) for v in y[keep]])
    pred = (x[keep] + bias).argmax(1)
    f1 = []
    for c in range(len(labels)):
        tp, fp = ((pred == c) & (truth == c)).sum(), ((pred == c) & (truth != c)).sum()
        fn = ((pred != c) & (truth == c)).sum()
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1)), f1, float((pred == truth).mean())


def fit(x, y, labels) -> np.ndarray:
    bias, best = np.zeros(len(labels)), scores(x, y, np.zeros(len(labels)), labels)[0]
    for _ in range(3):
        for c in (c for c in range(len(labels)) if labels[c] != "neutral"):
            for g in np.arange(-1.0, 3.01, 0.25):
                trial = bias.copy()
                trial[c] = g
                if (s := scores(x, y, trial, labels)[0]) > best + 1e-9:
                    best, bias = s, trial
    return bias


def main() -> None:
    model, wild, fer = sys.argv[1:4]
    clf = ExpressionClassifier(model)
    labels = list(clf.labels)
    (tx, ty), (vx, vy), (px, py) = crops(clf, wild, "train"), crops(clf, wild, "val"), crops(clf, fer, "PublicTest")
    bias = fit(tx, ty, labels)
    print("shift:", ", ".join(f"{n} {b:+.2f}" for n, b in zip(labels, bias)))
    print("| logits | wild train: macro-F1 / acc | held-out: macro-F1 / acc | held-out F1 per class "
          f"({', '.join(labels)}) | PublicTest acc |\n|---|---|---|---|---|")
    for name, b in (("as trained", np.zeros(len(labels))), ("shifted", bias)):
        (tf1, _, ta), (vf1, vper, va), (_, _, pa) = (scores(x, y, b, labels) for x, y in
                                                    ((tx, ty), (vx, vy), (px, py)))
        print(f"| {name} | {tf1:.3f} / {ta:.1%} | {vf1:.3f} / {va:.1%} | {' '.join(f'{v:.2f}' for v in vper)} "
              f"| {pa:.2%} |")


if __name__ == "__main__":
    main()
