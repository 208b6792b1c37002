"""Ablations of the training recipe on a short, equal schedule; writes bench/results/ablation.{md,csv}.

    python bench/ablation.py --data data/fer2013-votes --epochs 6

Each variant is one `ferlite train` run with the same seed and epochs, changing one thing from the
baseline (the shipped recipe); its best checkpoint is evaluated on PublicTest with and without flip
averaging. The data set must carry FER+ votes (import with --ferplus ... --keep-fer2013-labels) for the
soft-label variant. Finished variants are skipped on a re-run, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "baseline": [],
    "FER+ soft labels 0.5": ["--soft-labels", "0.5"],
    "no augmentation": ["--aug-strength", "0", "--erase", "0"],
    "no label smoothing": ["--label-smoothing", "0"],
    "narrow (cnn48-s)": ["--arch", "cnn48-s"],
    "FC head (cnn48-fc)": ["--arch", "cnn48-fc"],
    "mixup 0.2": ["--mixup", "0.2"],
}


def evaluate(run: Path, data: str, flip: bool) -> dict:
    out = run / ("eval_flip.json" if flip else "eval.json")
    if not out.exists():
        cmd = [sys.executable, "-m", "ferlite", "evaluate", "--model", str(run / "best.keras"), "--data", data,
               "--json", str(out)] + (["--flip"] if flip else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--project", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--only", nargs="*", help="variants to run (default all)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/ablation"))
    args = ap.parse_args()
    rows = []
    for name, extra in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        run = args.project / name.split(" (")[0].replace(" ", "-").replace("+", "p").lower()
        if not (run / "results.json").exists():
            if (run / "last.keras").exists():
                cmd = ["--resume", str(run)]
            else:
                run.parent.mkdir(parents=True, exist_ok=True)
                cmd = [args.data, "--epochs", str(args.epochs), "--project", str(run.parent), "--name", run.name,
                       "--patience", "100", *extra]
            print(f"== {name}: ferlite train {' '.join(cmd)}", flush=True)
            subprocess.run([sys.executable, "-m", "ferlite", "train", *cmd], check=True)
        plain, flipped = evaluate(run, args.data, False), evaluate(run, args.data, True)
        with open(run / "metrics.csv") as f:
            seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
        from ferlite.trainer.model import import_keras

        params = import_keras().models.load_model(run / "best.keras").count_params()
        rows.append({"variant": name, "change": " ".join(extra) or "(shipped recipe)",
                     "PublicTest acc": round(plain["accuracy"], 4), "acc + flip": round(flipped["accuracy"], 4),
                     "macro-F1": round(plain["macro_f1"], 4), "params": params,
                     "epoch s (median)": round(statistics.median(seconds), 1)})
        print(rows[-1], flush=True)
        write_table(rows, args.out, args.epochs, args.data)  # after each variant: a stop keeps what is done


def write_table(rows: list[dict], out: Path, epochs: int, data: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    headers = list(rows[0])
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=headers)
        w.writeheader()
        w.writerows(rows)
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(str(r[h]) for h in headers) + " |" for r in rows]
    out.with_suffix(".md").write_text(f"{epochs} epochs each, seed 0, data {data}\n\n" + "\n".join(md) + "\n")
    print("\n".join(md), flush=True)


if __name__ == "__main__":
    main()
