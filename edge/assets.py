"""Paths of the models shipped inside the package (no downloads, ever)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import ModelLoadError

YUNET = "face_detection_yunet_2023mar.onnx"
CLASSIFIER_INT8 = "ferlite_cnn48_int8.tflite"
CLASSIFIER_KERAS = "ferlite_cnn48.keras"


def model_path(name: str) -> Path:
    path = Path(str(resources.files("edge") / "models" / name))
    if not path.exists():
        raise ModelLoadError(f"bundled model {name} is missing from {path.parent}; reinstall ferlite")
    return path


def yunet_model() -> Path:
    return model_path(YUNET)


def bundled_tflite_model() -> Path:
    return model_path(CLASSIFIER_INT8)


def bundled_keras_model() -> Path:
    return model_path(CLASSIFIER_KERAS)
