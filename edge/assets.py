"""Paths of the models shipped inside the package (no downloads, ever)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ferlite.errors import ModelLoadError

YUNET = "face_detection_yunet_2023mar.onnx"
CLASSIFIER_INT8 = "ferlite_cnn48_w_ferplus_int8.tflite"
CLASSIFIER_KERAS = "ferlite_cnn48_w_ferplus.keras"
#: The bundled int8 classifiers, by the name ``--model`` and the config's ``classifier.model`` take, and the
#: label convention each was trained to: ``default`` reads faces as FER+'s ten annotators do (their majority
#: label); ``fer2013`` keeps FER2013's original single labels, for comparison with the FER2013 literature.
CLASSIFIERS = {"default": CLASSIFIER_INT8, "fer2013": "ferlite_cnn48_w_fer2013_int8.tflite"}
#: Label convention of each bundled classifier, as help texts and the model card name it.
CONVENTIONS = {"default": "FER+ labels", "fer2013": "FER2013 labels"}
#: The Keras models they were converted from, for fine-tuning (``ferlite train --init default|fer2013``).
KERAS_CLASSIFIERS = {"default": CLASSIFIER_KERAS, "fer2013": "ferlite_cnn48_w_fer2013.keras"}


def bundled_names() -> str:
    """The bundled classifiers' names with their label conventions, for help texts and errors."""
    return ", ".join(f"{name} ({CONVENTIONS[name]})" for name in CLASSIFIERS)


def model_path(name: str) -> Path:
    path = Path(str(resources.files("ferlite.edge") / "models" / name))
    if not path.exists():
        raise ModelLoadError(f"bundled model {name} is missing from {path.parent}; reinstall ferlite")
    return path


def yunet_model() -> Path:
    return model_path(YUNET)


def bundled_tflite_model() -> Path:
    return model_path(CLASSIFIER_INT8)


def classifier_model(spec: str | Path | None = None) -> Path:
    """The classifier a ``--model`` value means: the default when empty, a file when one exists at that
    path, else a bundled classifier by name (``default``, ``fer2013``)."""
    if not spec:
        return bundled_tflite_model()
    path = Path(spec)
    if path.exists():
        return path
    if str(spec) in CLASSIFIERS:
        return model_path(CLASSIFIERS[str(spec)])
    raise ModelLoadError(f"{spec}: no such model file, and not a bundled model ({bundled_names()})")


def bundled_keras_model(name: str = "default") -> Path:
    return model_path(KERAS_CLASSIFIERS[name])
