"""Re-estimate batch-norm statistics on clean training faces once training is over.

While training, each batch-norm layer's moving mean and variance follow augmented batches: random erasing
fills up to 30% of half the faces with noise, contrast and brightness are jittered. The device sees clean
faces. With the weights fixed, recomputing those statistics as plain averages over the clean training faces
and their mirror images (the flip-averaged model sees both) lifted PublicTest accuracy by 0.4 to 1.0 points
flip-averaged on four full runs of 45-60 epochs; on a 90-epoch run it lost 0.1 point, which is why the result is
kept only when it is not worse (MODEL_CARD.md). Only Training faces are used: nothing of the validation
split reaches the statistics.
"""

from __future__ import annotations

import numpy as np


def batchnorm_layers(keras, model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_bn(keras, model, images: np.ndarray, batch: int = 256, seed: int = 0, desc: str = "") -> int:
    """Set every batch-norm layer's moving statistics to the mean of its batch statistics over ``images``
    (N, H, W, 1 raw pixels) and their mirror images, in a seeded random order. Returns the number of layers.
    ``desc`` labels a progress bar (a few minutes on FER2013's 57k faces and mirrors); none when empty."""
    from tqdm import tqdm

    layers = batchnorm_layers(keras, model)
    if not layers or len(images) == 0:
        return 0
    n = len(images)
    order = np.random.default_rng(seed).permutation(2 * n)
    momenta = [layer.momentum for layer in layers]
    try:
        starts = range(0, 2 * n, batch)
        for k, start in enumerate(tqdm(starts, desc=desc, unit="batch", disable=not desc, leave=False)):
            idx = order[start:start + batch]
            x = images[idx % n].astype(np.float32)
            mirrored = idx >= n
            x[mirrored] = x[mirrored, :, ::-1]
            for layer in layers:
                # moving = momentum * moving + (1 - momentum) * batch: with momentum k/(k+1) after k batches
                # the moving value is the running mean of the k+1 batch statistics.
                layer.momentum = k / (k + 1)
            model(x, training=True)
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
    return len(layers)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    probs = model.predict(x.astype(np.float32), batch_size=256, verbose=0)
    return float((probs.argmax(1) == y).mean())


def recalibrate_run(keras, run_dir, state: dict, train_x: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                    seed: int = 0) -> dict:
    """Recalibrate the run's best and last models on ``train_x``; the one with the higher validation accuracy
    becomes best.keras when it is at least as good as the best before (``state["best_from"]`` is dropped when
    an epoch replaces an earlier weight average). Returns what was done (for state.json)."""
    best_label = state.get("best_from") or f"epoch {state['best_epoch']}"  # an earlier weight average, or an epoch
    candidates = [("best.keras", state["best_epoch"], best_label)]
    if (state["epoch"] != state["best_epoch"] or "best_from" in state) and (run_dir / "last.keras").exists():
        candidates.append(("last.keras", state["epoch"], f"epoch {state['epoch']}"))
    before = float(state["best"])
    tried = []
    for name, epoch, label in candidates:
        model = keras.models.load_model(run_dir / name)
        recalibrate_bn(keras, model, train_x, seed=seed, desc=f"recalibrate batch norm, {name} ({label})")
        tried.append((accuracy(model, val_x, val_y), epoch, label, model))
    after, epoch, label, model = max(tried, key=lambda t: t[0])
    kept = after >= before
    if kept:
        from ferlite.trainer.model import save_weights_only

        save_weights_only(keras, model, run_dir / "best.keras")
        if label != best_label:
            state.pop("best_from", None)  # an epoch replaced the earlier average
    print(f"batch-norm recalibrated on {len(train_x)} clean training faces and their mirrors: "
          + ", ".join(f"{lab} {a:.4f}" for a, _, lab, _ in tried)
          + f" (best before {before:.4f} at {best_label}); "
          + (f"best.keras is now {label}, recalibrated" if kept else "kept best.keras as it was"))
    return {"before": before, "after": after, "epoch": epoch, "kept": kept,
            "candidates": {lab.removeprefix("epoch "): round(a, 5) for a, _, lab, _ in tried}}
