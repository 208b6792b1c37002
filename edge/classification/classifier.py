"""The expression classifier on the device: one TFLite model, loaded once, one verb."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ferlite.edge.classification.modelinfo import ModelInfo
from ferlite.edge.results import Prediction

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class ExpressionClassifier:
    """``classify(face)`` takes a face crop (grey or BGR, any size; resized to the model's input) and
    returns a :class:`Prediction`. ``flip=True`` averages the face and its mirror image (two invokes), unless
    the model already classifies the mirror image itself (its sidecar's ``views`` >= 2):
    then flipping would double the time for the same output, so it is skipped (``flip_skipped``)."""

    def __init__(self, model_path: str | Path | None = None, *, num_threads: int = 1, flip: bool = False,
                 backend: str | None = None):
        from ferlite.edge.assets import classifier_model
        from ferlite.edge.classification.runtime import load_interpreter

        self.model_path = classifier_model(model_path)
        self.info = ModelInfo.for_model(self.model_path)
        self._interp, self.backend = load_interpreter(self.model_path, num_threads, prefer=backend)
        self.flip_skipped = flip and self.info.views >= 2
        self.flip = flip and not self.flip_skipped
        if self.flip_skipped:
            log.info("%s holds %d views of each face, its mirror image among them: flip skipped",
                     self.model_path.name, self.info.views)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = inp["dtype"]
        self._in_q = inp["quantization"]
        self._out_q = out["quantization"]
        self.input_shape = tuple(inp["shape"])

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    def _preprocess(self, face: np.ndarray) -> np.ndarray:
        import cv2
        import numpy as np

        size = self.info.input_size
        if face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        if face.shape != (size, size):
            interp = cv2.INTER_AREA if face.shape[0] > size else cv2.INTER_LINEAR
            face = cv2.resize(face, (size, size), interpolation=interp)
        x = face.astype(np.float32)[None, :, :, None]
        scale, zero = self._in_q
        if np.issubdtype(self._in_dtype, np.integer) and scale:
            info = np.iinfo(self._in_dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self._in_dtype)
        return x.astype(self._in_dtype)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """The model's output for one input tensor, dequantized to float; the mean of its rows when the model
        returns several views of the face (its mirror image, shifted copies)."""
        import numpy as np

        self._interp.set_tensor(self._in_index, x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out_index)
        scale, zero = self._out_q
        if np.issubdtype(y.dtype, np.integer) and scale:
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32).mean(axis=0)

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """Class probabilities (in ``labels`` order) for one face."""
        x = self._preprocess(face)
        y = self._invoke(x)
        if self.flip:
            y = (y + self._invoke(x[:, :, ::-1, :].copy())) / 2
        return softmax(y / self.info.temperature) if self.info.output == "logits" else y

    def classify(self, face: np.ndarray) -> Prediction:
        return Prediction.of(self.probabilities(face), self.labels)


def softmax(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
