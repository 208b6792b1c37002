"""End to end on the wild photos: `ferlite recognize` on the images, scored against labels.csv.

    python bench/wild_eval.py ../shared/data/wild [--detector yunet] [--margin 0.05 0.1]

Detection rate = photos with at least one face; accuracy and macro-F1 over photos with a face whose
label is one the model knows (contempt is not). Several --margin values compare crop margins.
Writes runs/wild.{md,csv} (--out bench/results/wild for the committed table), and with --per-class each
run's recall and precision per class and where each class's photos went (OUT_per_class.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def joined_scores(wild: Path, results_csv: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """(the labelled photos, those with a face, those scored with their true and predicted label, the model's
    labels)."""
    from ferlite.trainer.labels import normalize_label

    truth = pd.read_csv(wild / "labels.csv")
    truth["label"] = truth["emotion"].map(normalize_label)
    truth = truth[[(wild / "images" / f).exists() for f in truth["image"]]]
    res = pd.read_csv(results_csv) if results_csv.stat().st_size else pd.DataFrame(columns=["path"])
    res["image"] = res["path"].map(lambda p: Path(p).name)
    res = res.sort_values("confidence", ascending=False).drop_duplicates("image")  # the most confident face
    joined = truth.merge(res, on="image", how="left", suffixes=("_true", ""))
    found = joined[joined["label"].notna()]
    probs = [c for c in res.columns if c.startswith("p_")]
    known = found[found["label_true"].isin([c[2:] for c in probs])]
    known = known.assign(label_pred=[probs[i][2:] for i in known[probs].to_numpy().argmax(1)])
    return truth, found, known, [c[2:] for c in probs]


def recognize_csv(wild: Path, csv_path: Path, model: str = "", detector: str = "yunet",
                  margin: float | None = None) -> None:
    """Run ``ferlite recognize`` on the wild photos, its results csv written to ``csv_path``."""
    cmd = [sys.executable, "-m", "ferlite", "recognize", str(wild / "images"), "--no-save", "--detector", detector,
           "--csv", str(csv_path), "--out", str(csv_path.parent / "out")]
    cmd += ["--model", str(model)] if model else []
    cmd += ["--margin", str(margin)] if margin is not None else []
    print("$ ferlite " + " ".join(cmd[3:]), flush=True)
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    if rc:
        raise SystemExit(f"ferlite recognize failed (exit {rc}); its error is above")


def score(joined) -> dict:
    """The summary row of one run, from ``joined_scores``."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, found, known, _ = joined
    return {"photos": len(truth), "with a face": len(found), "detection rate": len(found) / len(truth),
            "scored": len(known), "accuracy": accuracy_score(known["label_true"], known["label_pred"]),
            "macro-F1": f1_score(known["label_true"], known["label_pred"], average="macro")}


def per_class(joined, title: str) -> str:
    """A markdown table from ``joined_scores``: per true class, photos, recall, precision, F1 and the
    predictions they got."""
    from sklearn.metrics import precision_recall_fscore_support

    _, _, known, labels = joined
    present = [c for c in labels if (known["label_true"] == c).any()]
    p, r, f, n = precision_recall_fscore_support(known["label_true"], known["label_pred"], labels=present,
                                                 zero_division=0)
    md = [f"{title}", "", "| true | photos | recall | precision | F1 | read as |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(present):
        went = known.loc[known["label_true"] == c, "label_pred"].value_counts()
        md.append(f"| {c} | {n[i]} | {r[i]:.3f} | {p[i]:.3f} | {f[i]:.3f} | "
                  + ", ".join(f"{k} {v}" for k, v in went.items()) + " |")
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wild", type=Path)
    ap.add_argument("--detector", default="yunet")
    ap.add_argument("--model", default="")
    ap.add_argument("--margin", type=float, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "wild",
                    help="table path without suffix (bench/results/wild for the committed one)")
    ap.add_argument("--per-class", action="store_true", help="also write OUT_per_class.md")
    args = ap.parse_args()
    rows, tables = [], []
    for margin in args.margin or [None]:
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = Path(tmp) / "results.csv"
            recognize_csv(args.wild, csv_path, args.model, args.detector, margin)
            joined = joined_scores(args.wild, csv_path)
            rows.append({"detector": args.detector, "margin": "default" if margin is None else margin,
                         **score(joined)})
            print(rows[-1], flush=True)
            if args.per_class:
                tables.append(per_class(joined, f"{args.model or 'default model'}, margin {rows[-1]['margin']}"))
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    md = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    md += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r) + " |"
           for r in table.itertuples(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    if tables:
        (args.out.parent / f"{args.out.name}_per_class.md").write_text("\n".join(tables))
        print("\n".join(tables))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
