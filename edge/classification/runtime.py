"""The one place that picks a TFLite interpreter: ai-edge-litert, then tflite-runtime, then TensorFlow."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from pathlib import Path

from ferlite.errors import ModelLoadError

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


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what native code writes to fd 2 (e.g. LiteRT's 'Created TensorFlow Lite XNNPACK delegate')."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def load_interpreter(path: str | Path, num_threads: int = 1, prefer: str | None = None):
    """Build and allocate an interpreter once (never per frame); returns (interpreter, backend name)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    cls, backend = interpreter_class(prefer)
    try:
        with quiet_native_stderr():
            interp = cls(model_path=str(path), num_threads=num_threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{path}: not a loadable TFLite model ({backend}): {exc}") from None
    log.debug("loaded %s with %s, %d thread(s)", path, backend, num_threads)
    return interp, backend
