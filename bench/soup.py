"""Average the weights of several fine-tunes of one model (a "model soup") and score it on the validation split.

    python bench/soup.py runs/train/swa-g4 runs/train/swa-b ... --data data/fer2013-votes --greedy \
        --out runs/soup/greedy

Wortsman et al. 2022 ("Model soups"): fine-tunes that start from the same weights stay in one basin, so the
mean of their weights is a model too, often better than any of them. Each ingredient (a .keras file, or a run
folder for its best.keras) is scored on the data set's validation split (PublicTest for FER2013); the uniform
soup averages them all. With --greedy, the ingredients are taken best first and each is kept only when the
soup with it scores at least as high as without (the greedy soup). Every soup's batch-norm statistics are
re-estimated on the training faces before it is scored (trainer/recalibrate.py), as ferlite train does for a
weight average. The soup is saved like a run folder, --out/best.keras with the first ingredient's run
config.json beside it, so ferlite convert and ferlite evaluate take the folder; the table of what was tried
goes to the console and to --out/soup.md. Each soup scored is a candidate compared on the validation split:
count them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ingredient_path(arg: str) -> Path:
    path = Path(arg)
    return path / "best.keras" if path.is_dir() else path


def mean_weights(weight_sets: list[list]) -> list:
    import numpy as np

    return [np.mean([ws[i].astype(np.float64) for ws in weight_sets], axis=0).astype(weight_sets[0][i].dtype)
            for i in range(len(weight_sets[0]))]


def write_config(first: Path, out: Path, members: list[Path]) -> None:
    """The first ingredient's run config (its labels, layout and data set), or its labels alone, and the
    ingredients."""
    import json

    from ferlite.trainer.evaluate import model_labels

    src = first.parent / "config.json"
    cfg = json.loads(src.read_text()) if src.exists() else {"classes": list(model_labels(first))}
    cfg["soup"] = [str(m) for m in members]
    out.write_text(json.dumps(cfg, indent=1))


def main() -> None:
    from ferlite.trainer import dataset as ds_mod
    from ferlite.trainer.data import default_split_names, load_split
    from ferlite.trainer.evaluate import model_labels
    from ferlite.trainer.model import import_keras, save_weights_only
    from ferlite.trainer.recalibrate import accuracy, recalibrate_bn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help=".keras files or run folders (their best.keras), one start point")
    ap.add_argument("--data", required=True, help="the ferlite data set folder they were trained on")
    ap.add_argument("--greedy", action="store_true", help="keep an ingredient only when it helps the soup")
    ap.add_argument("--seed", type=int, default=0, help="order of the batch-norm recalibration batches")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "soup", help="folder for best.keras, soup.md")
    args = ap.parse_args()
    paths = [ingredient_path(m) for m in args.models]
    for p in paths:
        if not p.is_file():
            raise SystemExit(f"soup: {p}: no such model file")
        if model_labels(p) != model_labels(paths[0]):
            raise SystemExit(f"soup: {p}: other labels than {paths[0]}: {', '.join(model_labels(p))}")
    keras = import_keras()
    model = keras.models.load_model(paths[0])
    df = ds_mod.load(args.data)
    train_name, val_name = default_split_names(set(df["split"].dropna()))
    classes = list(model_labels(paths[0]))
    train_s, val_s = (load_split(df, s, classes, model.input_shape[1]) for s in (train_name, val_name))
    weights = {p: keras.models.load_model(p).get_weights() for p in paths}
    rows = []
    for p in paths:
        model.set_weights(weights[p])
        rows.append((f"{p}", 1, accuracy(model, val_s.x, val_s.y)))
        print(f"{p}: {rows[-1][2]:.4f}", flush=True)
    order = [p for p, _ in sorted(zip(paths, [r[2] for r in rows]), key=lambda t: -t[1])]

    def score(members: list[Path]) -> float:
        model.set_weights(mean_weights([weights[p] for p in members]))
        recalibrate_bn(keras, model, train_s.x, seed=args.seed, desc=f"recalibrate batch norm, {len(members)}")
        return accuracy(model, val_s.x, val_s.y)

    best_members, best_acc, best_weights = [order[0]], max(r[2] for r in rows), weights[order[0]]
    if args.greedy:
        for p in order[1:]:
            acc = score(best_members + [p])
            rows.append((f"greedy: + {p}", len(best_members) + 1, acc))
            print(f"{rows[-1][0]}: {acc:.4f} ({'kept' if acc >= best_acc else 'left out'})", flush=True)
            if acc >= best_acc:
                best_members, best_acc, best_weights = best_members + [p], acc, model.get_weights()
    else:
        best_members, best_acc = order, score(order)
        best_weights = model.get_weights()
        rows.append(("uniform soup of all", len(order), best_acc))
    model.set_weights(best_weights)  # as scored, batch norm recalibrated
    args.out.mkdir(parents=True, exist_ok=True)
    save_weights_only(keras, model, args.out / "best.keras")
    write_config(paths[0], args.out / "config.json", best_members)
    lines = [f"{val_name} accuracy, Keras float, batch norm recalibrated on {train_name} for every soup", "",
             "| model | ingredients | accuracy |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {acc:.2%} |" for name, n, acc in rows]
    names = ", ".join(map(str, best_members))
    lines += ["", f"saved: {args.out / 'best.keras'} ({len(best_members)} ingredients: {names}), {best_acc:.2%}"]
    (args.out / "soup.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
