"""What travels with a model: labels, input size and pixel format, in a sidecar JSON next to the file
(``model.tflite`` -> ``model.json``), so the runtime reads them instead of hard-coding them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ferlite.errors import ModelLoadError

OUTPUTS = ("probs", "logits")


@dataclass(frozen=True)
class ModelInfo:
    labels: tuple[str, ...]
    input_size: int = 48
    #: "grey": one channel of raw 0..255 pixels; normalisation happens inside the model.
    pixel_format: str = "grey"
    arch: str = ""
    precision: str = "float32"
    #: "logits": the device applies softmax in float (ferlite's own int8 models: TFLite's int8 softmax
    #: rounds differently on arm64 and x86); "probs": the model ends in its own softmax.
    output: str = "probs"
    #: output rows per face: 2 when flip averaging is built into the model (the face and its mirror image),
    #: 10 with shifted copies of both too (``ferlite convert --mirror --shift``); the device averages the rows.
    views: int = 1
    #: logits are divided by this before the softmax: fitted on the validation split by ``ferlite convert``
    #: (converters/calibrate.py), so that probabilities, and the tracker's ``uncertain`` threshold, mean
    #: what they say whichever model is loaded.
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    #: the ferlite version that wrote the sidecar (``ferlite --version``; a bundled model's is the release it
    #: ships in); '' in sidecars written before it was recorded.
    ferlite: str = ""

    @staticmethod
    def sidecar(model_path: str | Path) -> Path:
        return Path(model_path).with_suffix(".json")

    @classmethod
    def for_model(cls, model_path: str | Path) -> ModelInfo:
        path = cls.sidecar(model_path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: the model's sidecar (labels, input size) is missing") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path}: unreadable model sidecar: {exc}") from None
        known = set(cls.__dataclass_fields__)
        try:
            info = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelLoadError(f"{path}: bad model sidecar: {exc}") from None
        if not info.labels:
            raise ModelLoadError(f"{path}: no labels")
        if not isinstance(info.temperature, (int, float)) or not 0.05 <= info.temperature <= 20:
            raise ModelLoadError(f"{path}: temperature {info.temperature!r} is not a number in 0.05..20")
        if info.output not in OUTPUTS:
            raise ModelLoadError(f"{path}: output {info.output!r} is not one of {', '.join(OUTPUTS)}")
        return cls(**{**asdict(info), "labels": tuple(info.labels)})

    def write(self, model_path: str | Path) -> Path:
        """Write the sidecar, stamped with this ferlite's version."""
        from ferlite import __version__

        path = self.sidecar(model_path)
        data = {**asdict(self), "labels": list(self.labels), "ferlite": __version__}
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path
