"""Two label conventions, one output: what mixing a FER2013-label model with a FER+-label model buys.

    python bench/label_conventions.py MODEL_A.tflite MODEL_B.tflite ../shared/data [--out runs/conventions]

For each weight w (0, 0.1, ..., 1) the two models' log-probabilities are mixed, (1 - w) A + w B (the ensemble
a single model distilled from both would imitate), and the mixture is scored on FER2013 PublicTest against
FER2013's labels and against FER+'s majority labels, and on the wild photos end to end (each model's
probabilities for the same YuNet faces, as bench/wild_eval.py scores them). Writes OUT.md and OUT.csv.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from wild_eval import joined_scores, recognize_csv, score  # noqa: E402


def mix(p_a: np.ndarray, p_b: np.ndarray, w: float) -> np.ndarray:
    """softmax((1 - w) log p_a + w log p_b)."""
    z = (1 - w) * np.log(p_a + 1e-9) + w * np.log(p_b + 1e-9)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def publictest(models: list[Path], fer_csv: Path, ferplus: Path | None) -> tuple[list[np.ndarray], list[str]]:
    """Each model's probabilities on PublicTest's faces that have a label both models know, and the labels."""
    from ferlite.trainer.evaluate import load_fer_csv, model_labels, predict

    data = load_fer_csv(fer_csv, "PublicTest", ferplus)
    keep = [i for i, t in enumerate(data.labels) if t in model_labels(models[0])]
    return [predict(m, data.x[keep]) for m in models], [data.labels[i] for i in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_a", type=Path, help="the FER2013-label model (w = 0)")
    ap.add_argument("model_b", type=Path, help="the FER+-label model (w = 1)")
    ap.add_argument("shared", type=Path, help="the shared data folder (fer2013/, wild/)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "conventions", help="table path without suffix")
    args = ap.parse_args()
    from ferlite.trainer.evaluate import metrics, model_labels

    models, labels = [args.model_a, args.model_b], model_labels(args.model_a)
    fer = args.shared / "fer2013"
    p13, y13 = publictest(models, fer / "fer2013.csv.gz", None)
    pfp, yfp = publictest(models, fer / "fer2013.csv.gz", fer / "fer2013new.csv")
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(models):
            recognize_csv(args.shared / "wild", Path(tmp) / f"{i}.csv", m)
        wa, wb = (pd.read_csv(Path(tmp) / f"{i}.csv") for i in range(2))
        cols = [c for c in wa.columns if c.startswith("p_")]
        rows = []
        for w in np.round(np.linspace(0, 1, 11), 1):
            mixed = wa.copy()
            mixed[cols] = mix(wa[cols].to_numpy(), wb[cols].to_numpy(), w)
            mixed.to_csv(Path(tmp) / "mixed.csv", index=False)
            wild = score(joined_scores(args.shared / "wild", Path(tmp) / "mixed.csv"))
            row = {"w (FER+ model)": float(w)}
            for name, (p, y) in {"PublicTest FER2013": (p13, y13), "PublicTest FER+": (pfp, yfp)}.items():
                m = metrics(y, mix(p[0], p[1], w), labels)
                row[f"{name} acc"], row[f"{name} macro-F1"] = m["accuracy"], m["macro_f1"]
            row["wild acc"], row["wild macro-F1"] = wild["accuracy"], wild["macro-F1"]
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    md = [f"A = {args.model_a}, B = {args.model_b}; log-probabilities mixed (1 - w) A + w B", "",
          "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    md += ["| " + " | ".join(f"{v:.1f}" if i == 0 else f"{v:.4f}" for i, v in enumerate(r)) + " |"
           for r in table.itertuples(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
