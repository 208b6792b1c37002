"""Keras -> TFLite: full-integer int8 and float16, each export logged with its time, path and size.

Use ``TFLiteConverter.from_keras_model`` (``from_concrete_functions`` silently produced weightless
models that output NaN with Keras 3). The representative set for int8 is a lazy generator over
100-500 real training faces.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


#: The fewest calibration faces accepted for int8 (a small capture of your own has few; 300 is the default).
MIN_SAMPLES = 20
#: int8 calibration faces by default (fewer when the calibration split has fewer, down to MIN_SAMPLES).
DEFAULT_SAMPLES = 300


@dataclass(frozen=True)
class Int8Config:
    """Full-integer quantisation: int8 input and output, per-channel weights."""

    representative: np.ndarray  # (N, S, S, 1) uint8 faces
    per_channel: bool = True

    @classmethod
    def for_full_integer(cls, faces: np.ndarray, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Int8Config:
        import numpy as np

        if len(faces) < MIN_SAMPLES:
            raise ValueError(f"int8 calibration needs at least {MIN_SAMPLES} faces, got {len(faces)}")
        idx = np.random.default_rng(seed).choice(len(faces), size=min(samples, len(faces)), replace=False)
        return cls(faces[np.sort(idx)])

    def dataset(self):
        import numpy as np

        for face in self.representative:
            yield [face[None].astype(np.float32)]


def logged_export(fn: Callable[..., bytes]) -> Callable[..., Path]:
    """Run an exporter, write its bytes to ``out`` and log time, path and size."""

    @functools.wraps(fn)
    def wrapper(model, out: Path, *args, **kwargs) -> Path:
        t0 = time.time()
        data = fn(model, *args, **kwargs)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        log.info("%s: %s (%d bytes) in %.1f s", fn.__name__, out, len(data), time.time() - t0)
        return out

    return wrapper


def _converter(model):
    import tensorflow as tf

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _convert(conv) -> bytes:
    """Run a converter without the SavedModel export listing it prints to stdout, nor (unless -v) the
    converter's C++ logging on stderr."""
    import contextlib
    import io

    from ferlite.quiet import native_logging_silenced

    with contextlib.redirect_stdout(io.StringIO()), native_logging_silenced():
        return conv.convert()


@logged_export
def export_int8(model, config: Int8Config) -> bytes:
    import tensorflow as tf

    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = config.dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if not config.per_channel:
        conv._experimental_disable_per_channel = True
    return _convert(conv)


@logged_export
def export_float16(model) -> bytes:
    import tensorflow as tf

    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return _convert(conv)


@logged_export
def export_float32(model) -> bytes:
    return _convert(_converter(model))


#: precision -> exporter; int8 takes an Int8Config.
EXPORTERS = {"int8": export_int8, "float16": export_float16, "float32": export_float32}
