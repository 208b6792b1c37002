"""Write evaluation figures: tables, confusion-matrix csv/png, training curves."""

from __future__ import annotations

import csv
from pathlib import Path

from ferlite.tables import format_table


def summary_table(result: dict) -> str:
    rows = [[name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", c["support"]]
            for name, c in result["per_class"].items()]
    rows.append(["macro-F1", "", "", f"{result['macro_f1']:.3f}", result["n"]])
    rows.append(["accuracy", "", "", f"{result['accuracy']:.4f}", result["n"]])
    return format_table(["class", "precision", "recall", "f1", "support"], rows)


def write_confusion(result: dict, out: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    labels, cm = result["labels"], np.array(result["confusion"])
    with open(out / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true\\pred", *labels])
        w.writerows([[labels[i], *row] for i, row in enumerate(cm.tolist())])
    with open(out / "per_class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "precision", "recall", "f1", "support"])
        w.writerows([[k, v["precision"], v["recall"], v["f1"], v["support"]] for k, v in result["per_class"].items()])
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)


def write_curves(metrics_csv: Path, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    m = pd.read_csv(metrics_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in ((a, "loss"), (b, "accuracy")):
        ax.plot(m.epoch, m[metric], label="train")
        if f"val_{metric}" in m:
            ax.plot(m.epoch, m[f"val_{metric}"], label="val")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
