"""Two label conventions, one output: what mixing a FER2013-label model with a FER+-label model buys.

    python bench/label_conventions.py MODEL_A.tflite MODEL_B.tflite ../shared/data [--out runs/conventions]

For each weight w (0, 0.1, ..., 1) the two models' log-probabilities are mixed, (1 - w) A + w B (the ensemble
a single model distilled from both would imitate), and the mixture is scored on FER2013 PublicTest against
FER2013's labels and against FER+'s majority labels, and on the wild photos end to end (each model's
probabilities for the same YuNet faces, as bench/wild_eval.py scores them). Writes OUT.md and OUT.csv.

With --bound FLOOR it also asks whether a per-class shift of the mixture's log-probabilities (a change of class
priors) could meet both goals: for w in 0, 0.02, ..., 0.1 a seeded random search fits the shift on the wild
photos themselves, keeping FER2013 PublicTest at or above FLOOR, and OUT_bound.md lists the best found. Fitted
on the photos it is scored on, it is an optimistic bound on what a prior correction buys, not a model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from wild_eval import joined_scores, recognize_csv  # noqa: E402


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


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes in ``y`` or ``pred`` (integer labels below ``k``), as sklearn's f1_score gives
    it; the prior search calls it 30,000 times, where f1_score (1.6 ms a call here) would take most of a minute."""
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp, seen = np.diag(cm), (cm.sum(0) + cm.sum(1)) > 0
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return float(f1[seen].mean())


def _fit(z13, y13, zw, yw, floor: float, shift: np.ndarray) -> tuple[float, float]:
    """(wild macro-F1, or PublicTest accuracy - 1 below the floor; PublicTest accuracy) under one shift."""
    acc = float(((z13 + shift).argmax(1) == y13).mean())
    return (macro_f1(yw, (zw + shift).argmax(1), z13.shape[1]) if acc >= floor else acc - 1), acc


def prior_bound(pub: tuple[list[np.ndarray], np.ndarray], wild: tuple[list[np.ndarray], np.ndarray],
                floor: float, tries: int = 5000, seed: int = 0) -> list[dict]:
    """Per w, the per-class log-prior shift that maximises wild macro-F1 with PublicTest accuracy >= floor."""
    (pa, pb), y13 = pub
    (wa, wb), yw = wild
    k, rng, rows, prev = pa.shape[1], np.random.default_rng(seed), [], None
    for w in np.round(np.arange(0, 0.101, 0.02), 2):
        z13, zw = np.log(mix(pa, pb, w) + 1e-9), np.log(mix(wa, wb, w) + 1e-9)
        fit = partial(_fit, z13, y13, zw, yw, floor)
        starts = [np.zeros(k)] if prev is None else [np.zeros(k), prev]  # warm start from the last w's best
        best = max(starts, key=lambda b: fit(b)[0])
        goal, acc = fit(best)
        for _ in range(tries):
            step = best + rng.normal(0, 0.15, k) * (rng.random(k) < 0.3)
            g, a = fit(step)
            if g > goal:
                best, goal, acc = step, g, a
        prev = best
        rows.append({"w (FER+ model)": float(w), "PublicTest FER2013 acc": acc,
                     "wild macro-F1": goal if goal >= 0 else float("nan"),
                     "shift": " ".join(f"{v:+.2f}" for v in best - best.mean())})
        print(rows[-1], flush=True)
    return rows


def write_table(rows: list[dict], out: Path, title: str, w_format: str = ".1f") -> None:
    table = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    cells = [[format(v, w_format) if i == 0 else v if isinstance(v, str) else f"{v:.4f}" for i, v in enumerate(r)]
             for r in table.itertuples(index=False)]
    md = [title, "", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    md += ["| " + " | ".join(c) + " |" for c in cells]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def wild_probs(wild: Path, models: list[Path], tmp: Path) -> list[pd.DataFrame]:
    """Each model's scored wild photos (``joined_scores``'s third frame), rows aligned with the first model's."""
    for i, m in enumerate(models):
        recognize_csv(wild, tmp / f"{i}.csv", m)
    known = [joined_scores(wild, tmp / f"{i}.csv")[2] for i in range(len(models))]
    return [known[0]] + [k.loc[known[0].index] for k in known[1:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_a", type=Path, help="the FER2013-label model (w = 0)")
    ap.add_argument("model_b", type=Path, help="the FER+-label model (w = 1)")
    ap.add_argument("shared", type=Path, help="the shared data folder (fer2013/, wild/)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "conventions", help="table path without suffix")
    ap.add_argument("--bound", type=float, metavar="FLOOR",
                    help="also fit per-class prior shifts on the wild photos with PublicTest >= FLOOR (OUT_bound)")
    args = ap.parse_args()
    from ferlite.trainer.evaluate import metrics, model_labels

    models, labels = [args.model_a, args.model_b], model_labels(args.model_a)
    fer = args.shared / "fer2013"
    p13, y13 = publictest(models, fer / "fer2013.csv.gz", None)
    pfp, yfp = publictest(models, fer / "fer2013.csv.gz", fer / "fer2013new.csv")
    with tempfile.TemporaryDirectory() as tmp:
        wa, wb = wild_probs(args.shared / "wild", models, Path(tmp))
    cols = [f"p_{c}" for c in labels]
    ww, yw = [wa[cols].to_numpy(), wb[cols].to_numpy()], wa["label_true"].to_numpy()
    rows = []
    for w in np.round(np.linspace(0, 1, 11), 1):
        row = {"w (FER+ model)": float(w)}
        for name, (p, y) in {"PublicTest FER2013": (p13, y13), "PublicTest FER+": (pfp, yfp),
                             "wild": (ww, yw)}.items():
            m = metrics(list(y), mix(p[0], p[1], w), labels)
            row[f"{name} acc"], row[f"{name} macro-F1"] = m["accuracy"], m["macro_f1"]
        rows.append(row)
        print(row, flush=True)
    write_table(rows, args.out, f"A = {args.model_a}, B = {args.model_b}; log-probabilities mixed (1 - w) A + w B")
    if args.bound is not None:
        index = {c: i for i, c in enumerate(labels)}
        codes = [np.array([index[t] for t in y]) for y in (y13, yw)]
        bound = prior_bound((p13, codes[0]), (ww, codes[1]), args.bound)
        write_table(bound, args.out.with_name(args.out.name + "_bound"),
                    f"Per-class log-prior shifts fitted on the wild photos, FER2013 PublicTest kept >= {args.bound}; "
                    "the shift is centred (a common offset changes nothing)", ".2f")


if __name__ == "__main__":
    main()
