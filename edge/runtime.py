"""The one place that picks a TFLite interpreter: ai-edge-litert, then tflite-runtime, then TensorFlow."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from .errors import ModelLoadError

log = logging.getLogger(__name__)

#: (module, package to pip install), in order of preference. TensorFlow last: the device never needs it.
BACKENDS = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),
)


def interpreter_class(prefer: str | None = None):
    """The Interpreter class of the first importable backend (or of ``prefer``); returns (class, module)."""
    for module, _package in BACKENDS:
        if prefer and not module.startswith(prefer):
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        return mod.Interpreter, module.split(".")[0]
    names = ", ".join(p for _, p in BACKENDS if not prefer or p.replace("-", "_").startswith(prefer))
    raise ModelLoadError(f"no TFLite interpreter is installed: pip install ai-edge-litert (tried {names})")


def load_interpreter(path: str | Path, num_threads: int = 1, prefer: str | None = None):
    """Build and allocate an interpreter once (never per frame); returns (interpreter, backend name)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    cls, backend = interpreter_class(prefer)
    try:
        interp = cls(model_path=str(path), num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{path}: not a loadable TFLite model ({backend}): {exc}") from None
    log.debug("loaded %s with %s, %d thread(s)", path, backend, num_threads)
    return interp, backend
