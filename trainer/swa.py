"""Stochastic weight averaging (``ferlite train --swa N``): the mean of the weights after each of the last N
epochs, trained at a constant learning rate (``--swa-lr``), becomes a candidate for best.keras.

Izmailov et al. 2018 ("Averaging weights leads to wider optima and better generalization"): SGD at a high
constant rate keeps moving around a wide region of good weights; their mean sits nearer its centre than any
one point on the way. The running mean is written to the run folder's swa.keras after every averaged epoch
(with the count in state.json), so a run interrupted in the averaging phase resumes it. At the end its
batch-norm statistics are re-estimated on the clean training faces (trainer/recalibrate.py: the averaged
weights never ran with the averaged statistics), and it replaces best.keras only when it scores higher on the
validation split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SWA_FILE = "swa.keras"


def averaging(cfg, epoch: int) -> bool:
    """Whether ``epoch`` (0-based) is one of the averaged ones."""
    return cfg.swa > 0 and epoch >= cfg.epochs - cfg.swa


class WeightAverage:
    """The running mean of a model's weights, kept in memory and in ``run_dir/swa.keras``."""

    def __init__(self, keras, run_dir: Path, state: dict):
        self.keras, self.path, self.state = keras, Path(run_dir) / SWA_FILE, state
        self.mean: list[np.ndarray] | None = None

    def add(self, model) -> int:
        """Fold the model's current weights into the mean and save it; returns how many epochs it holds."""
        from ferlite.trainer.model import save_weights_only

        count = int(self.state.get("swa_count", 0))
        current = model.get_weights()
        if self.mean is None and count > 0 and self.path.exists():  # resumed in the averaging phase
            self.mean = [w.astype(np.float64) for w in self.keras.models.load_model(self.path).get_weights()]
        if self.mean is None or count == 0:
            self.mean, count = [w.astype(np.float64) for w in current], 0
        else:
            self.mean = [m + (w - m) / (count + 1) for m, w in zip(self.mean, current)]
        count += 1
        model.set_weights([m.astype(w.dtype) for m, w in zip(self.mean, current)])
        save_weights_only(self.keras, model, self.path)
        model.set_weights(current)
        self.state["swa_count"] = count
        return count


def finish_swa(keras, run_dir: Path, state: dict, train_x: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
               seed: int = 0) -> None:
    """Recalibrate swa.keras's batch norm and score it; it becomes best.keras when it beats the best so far.
    What was done goes into ``state["swa"]`` (None when the run averaged nothing) and state.json."""
    path = Path(run_dir) / SWA_FILE
    count = int(state.get("swa_count", 0))
    state["swa"] = None
    if count > 0 and path.exists():
        state["swa"] = _score_average(keras, path, state, count, train_x, val_x, val_y, seed)
        if state["swa"]["kept"]:
            # best.keras is no epoch now: say so until an epoch beats it (a run that averages on)
            state.update(best=state["swa"]["accuracy"],
                         best_from="the weight average of epochs {}-{}".format(*state["swa"]["epochs"]))
    (Path(run_dir) / "state.json").write_text(json.dumps(state, indent=1))


def _score_average(keras, path: Path, state: dict, count: int, train_x, val_x, val_y, seed: int) -> dict:
    from ferlite.trainer.model import save_weights_only
    from ferlite.trainer.recalibrate import accuracy, recalibrate_bn

    model = keras.models.load_model(path)
    recalibrate_bn(keras, model, train_x, seed=seed, desc=f"recalibrate batch norm, {SWA_FILE}")
    acc = accuracy(model, val_x, val_y)
    before = float(state["best"])
    kept = acc > before
    if kept:
        save_weights_only(keras, model, path.with_name("best.keras"))
    save_weights_only(keras, model, path)  # recalibrated either way: ready to evaluate or convert
    first = state["epoch"] - count + 1
    print(f"weight average of epochs {first}-{state['epoch']} ({count}), batch norm recalibrated: {acc:.4f} "
          f"(best before {before:.4f}); " + ("best.keras is now the average" if kept else "kept best.keras"))
    return {"epochs": [first, state["epoch"]], "accuracy": round(acc, 5), "before": round(before, 5), "kept": kept}
