"""Stitch two cnn48-w models into one cnn48-w2x network that computes their ensemble (mean logits) exactly:
block-diagonal convolutions (cross blocks zero, free to learn in a fine-tune), batch norms side by side, the
output layer's rows halved. A one-off for docs/experiments.md ("A wider network stitched from two").

    python bench/stitch.py A.keras B.keras OUT.keras
"""

from __future__ import annotations

import sys

import numpy as np


def stitched_weights(keras, layer, wa: list, wb: list) -> list:
    """The wide layer's weights from the same layer of the two models."""
    if isinstance(layer, keras.layers.Conv2D):
        k = np.zeros(layer.get_weights()[0].shape, np.float32)
        ka, kb = wa[0], wb[0]
        out_a = ka.shape[3]
        if ka.shape[2] == k.shape[2]:  # the first convolution: the one grey input is shared
            k[..., :out_a], k[..., out_a:] = ka, kb
        else:
            in_a = ka.shape[2]
            k[:, :, :in_a, :out_a], k[:, :, in_a:, out_a:] = ka, kb
        return [k]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [np.concatenate([x, y]) for x, y in zip(wa, wb)]
    if isinstance(layer, keras.layers.Dense):
        return [np.concatenate([wa[0], wb[0]]) / 2, (wa[1] + wb[1]) / 2]
    raise SystemExit(f"no rule to stitch layer {layer.name}")


def main() -> None:
    from ferlite.trainer.model import build_model, import_keras

    keras = import_keras()
    a, b = (keras.models.load_model(p, compile=False) for p in sys.argv[1:3])
    wide = build_model(a.output_shape[-1], 48, "cnn48-w2x")
    for layer in wide.layers:
        if layer.weights:
            layer.set_weights(stitched_weights(keras, layer, a.get_layer(layer.name).get_weights(),
                                               b.get_layer(layer.name).get_weights()))
    x = np.random.default_rng(0).integers(0, 256, (64, 48, 48, 1)).astype(np.float32)
    la, lb, lw = (keras.Model(m.input, m.get_layer("logits").output).predict(x, verbose=0) for m in (a, b, wide))
    print("largest |wide - mean(a, b)| in the logits of 64 random faces:", float(np.abs(lw - (la + lb) / 2).max()))
    wide.save(sys.argv[3])


if __name__ == "__main__":
    main()
