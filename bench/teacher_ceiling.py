"""How far an ensemble of trained FER+ models (the teachers a distillation could use) reads PublicTest: each
model with one view and with its mirror, then every combination's flip-averaged log-probabilities, scored by
FER+'s protocol (eight classes, contempt counted wrong for a seven-class model; and seven).

    python bench/teacher_ceiling.py MODEL.keras ... --fer ../shared/data/fer2013 --out bench/results/teacher_ceiling
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np


def name(path: Path) -> str:
    return path.parent.name if path.name == "best.keras" else path.stem


def main() -> None:
    from ferlite.trainer.evaluate import load_fer_csv, model_labels, predict

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help=".keras models of the same seven classes")
    p.add_argument("--fer", type=Path, default=Path("../shared/data/fer2013"), help="fer2013.csv.gz and fer2013new.csv")
    p.add_argument("--out", type=Path, default=Path("bench/results/teacher_ceiling"))
    args = p.parse_args()
    data = load_fer_csv(args.fer / "fer2013.csv.gz", "PublicTest", args.fer / "fer2013new.csv")
    labels = model_labels(args.models[0])
    y = np.array([labels.index(t) if t in labels else -1 for t in data.labels])
    rows, logp = [], {}
    for m in args.models:
        views = [np.log(predict(m, x, flip=False) + 1e-9) for x in (data.x, data.x[:, :, ::-1].copy())]
        logp[m] = views[0] + views[1]
        rows += [(name(m), "one view", views[0]), (name(m), "face + mirror", logp[m])]
    for k in range(2, len(args.models) + 1):
        rows += [(" + ".join(name(m) for m in c), "face + mirror", sum(logp[m] for m in c))
                 for c in itertools.combinations(args.models, k)]
    known = y >= 0
    head = f"PublicTest by FER+'s protocol (Keras float): {len(y)} faces with eight classes, {known.sum()} with seven"
    lines = [head,
             "", "| models | views | 8 classes | 7 classes |", "|---|---|---:|---:|"]
    for who, views, q in rows:
        pred = q.argmax(1)
        lines.append(f"| {who} | {views} | {np.mean(pred == y):.2%} | {np.mean(pred[known] == y[known]):.2%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
