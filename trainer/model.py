"""The ferlite expression classifier: a compact VGG-style CNN for 48x48 grey faces.

Preprocessing lives inside the model (a Rescaling layer), so the device feeds raw grey pixels
(0..255) and never has to guess. Augmentation stays outside (it breaks the TFLite export).
"""

from __future__ import annotations

import os
from pathlib import Path


def import_keras():
    """Import Keras with the environment this CPU needs; call before any TensorFlow import.

    TensorFlow 2.20/2.21 crash while training on AVX-512 CPUs in oneDNN's 1x1 stride-2 convolution;
    capping oneDNN at AVX2 fixes it at no speed cost.
    """
    from ferlite.quiet import native_logging_silenced

    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    with native_logging_silenced():  # TensorFlow's C++ notices and warnings (TF_CPP_MIN_LOG_LEVEL=3), unless -v
        import keras

    return keras


#: Named architectures: stage widths and convolutions per stage.
ARCHITECTURES = {
    # One convolution at full resolution (where a conv costs most), two per stage after it:
    # 661k parameters, ~56M multiply-adds, ~72 s per FER2013 epoch on 2 CPU cores at batch 128.
    "cnn48": dict(widths=(32, 48, 96, 192), convs=(1, 2, 2, 2)),
    # Wider last two stages: 878k parameters (~0.9 MB as int8), ~68M multiply-adds (+21%). The default since
    # 150 distilled epochs on a GPU: one view of it beats ten views of cnn48 (model card).
    "cnn48-w": dict(widths=(32, 48, 112, 224), convs=(1, 2, 2, 2)),
    "cnn48-s": dict(widths=(16, 24, 48, 96), convs=(1, 2, 2, 2)),
    # The same convolutions, but the head keeps where things are on the face: pool to 3x3, flatten,
    # a 128-unit hidden layer. +221k parameters, +0.2M multiply-adds.
    "cnn48-fc": dict(widths=(32, 48, 96, 192), convs=(1, 2, 2, 2), hidden=128),
    "tiny": dict(widths=(4, 8), convs=(1, 1)),
}


def model_name(arch: str) -> str:
    return f"ferlite_{arch.replace('-', '_')}"


def saved_arch(path) -> str | None:
    """The architecture of a .keras file saved by ferlite train (read from its config, no TensorFlow)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            name = json.loads(z.read("config.json"))["config"]["name"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return next((a for a in ARCHITECTURES if model_name(a) == name), None)


def build_model(num_classes: int, input_size: int = 48, arch: str = "cnn48-w", dropout: float = 0.3):
    """A Keras model taking (input_size, input_size, 1) raw grey pixels and returning class probabilities."""
    keras = import_keras()
    from keras import layers

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    n_stages = len(spec["widths"])
    for s, (width, convs) in enumerate(zip(spec["widths"], spec["convs"])):
        for c in range(convs):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{s + 1}_{c + 1}")(x)
            x = layers.BatchNormalization(name=f"bn{s + 1}_{c + 1}")(x)
            x = layers.ReLU(name=f"relu{s + 1}_{c + 1}")(x)
        if s < n_stages - 1:
            x = layers.MaxPooling2D(name=f"pool{s + 1}")(x)
    if spec.get("hidden"):
        x = layers.MaxPooling2D(name=f"pool{n_stages}")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="dropout_fc")(x)
        x = layers.Dense(spec["hidden"], name="fc")(x)
        x = layers.ReLU(name="relu_fc")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name=model_name(arch))


def save_weights_only(keras, model, path) -> None:
    """Save ``model`` as a .keras file without its optimizer's state (a third of the size of a checkpoint to
    resume from): for best.keras, which is evaluated, converted and fine-tuned from but never resumed."""
    copy = keras.Model.from_config(model.get_config())  # never compiled (clone_model keeps the optimizer)
    copy.set_weights(model.get_weights())
    save_atomic(copy, path)


def save_atomic(model, path) -> None:
    """``model.save(path)`` through a temporary file renamed over ``path``: a run killed while saving (a
    deadline's SIGKILL) leaves the previous file whole, never half a zip."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
