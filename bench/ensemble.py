"""How good is an ensemble of trained runs, as a teacher: each run and their average on a FER2013 split.

    python bench/ensemble.py runs/train/gpu-wfp150 runs/train/gpu-fp ... \
        --data ../shared/data/fer2013/fer2013.csv.gz --usage PublicTest

Each run (a run folder or .keras file) classifies every face and its mirror image; a run's figure is its
flip-averaged logits' accuracy, and the ensemble's is that of the logits averaged over all runs, the targets
`ferlite train --teacher ...` distils from (trainer/distill.py). Keras float models, so figures sit near, not
at, the int8 files'. Writes runs/ensemble.{md,csv} unless --out says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from ferlite.errors import ModelLoadError
    from ferlite.trainer.distill import model_logits, teacher_path
    from ferlite.trainer.evaluate import load_fer_csv, metrics, model_labels
    from ferlite.trainer.model import import_keras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders (their best.keras) or .keras files")
    ap.add_argument("--data", type=Path, required=True, help="FER2013-layout csv")
    ap.add_argument("--usage", default="PublicTest")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ensemble")
    args = ap.parse_args()
    keras = import_keras()
    data = load_fer_csv(args.data, args.usage)
    known = {}
    for run in args.runs:  # a .keras file without a sidecar or config.json is taken to share the others' labels
        try:
            known[run] = list(model_labels(teacher_path(run)))
        except ModelLoadError:
            continue
    if not known or any(labels != next(iter(known.values())) for labels in known.values()):
        raise SystemExit("the runs must name the same classes in the same order (config.json or sidecar)")
    classes = next(iter(known.values()))
    x = data.x.astype(np.float32)
    rows, total = [], np.zeros((len(x), len(classes)))
    bar = tqdm(total=2 * len(args.runs) * len(x), desc="predictions", unit="face", leave=False)
    for run in args.runs:
        logits = model_logits(keras, teacher_path(run), x, classes, bar)
        total += logits
        m = metrics(data.labels, logits, tuple(classes))
        rows.append({"model": run, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
    bar.close()
    m = metrics(data.labels, total / len(args.runs), tuple(classes))
    rows.append({"model": f"ensemble of {len(args.runs)}", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    md = [f"{data.name}, flip-averaged logits, Keras float", "", "| model | accuracy | macro-F1 |", "|---|---|---|"]
    md += [f"| {r.model} | {r.accuracy:.4f} | {r.macro_f1:.3f} |" for r in table.itertuples(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
