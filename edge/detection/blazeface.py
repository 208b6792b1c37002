"""MediaPipe's BlazeFace face detectors (bundled TFLite models, Apache-2.0): short and full range.

The pre- and post-processing follow MediaPipe's face_detection_short_range and face_detection_full_range
graphs: letterbox to a square, RGB in [-1, 1], one invoke, decode the SSD anchors, sigmoid scores,
weighted NMS, undo the letterbox. The short-range model (128x128) is made for faces within about 2 m of
the camera (a face at least an eighth of the frame's long side, ~16 px of the model input); the
full-range model (192x192, one 48x48 anchor grid) also finds small, far faces, at about 2.5x the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ferlite.edge.results import Face

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: its bundled file and MediaPipe's anchor and score options for it."""

    name: str
    file: str
    input_size: int  # the model's square input side, in pixels
    strides: tuple[int, ...]  # ssd_anchors strides, one per layer
    anchors_per_layer: int  # 2 with MediaPipe's interpolated_scale_aspect_ratio 1.0, 1 with 0.0
    score_threshold: float  # MediaPipe's min_score_thresh for the variant


SHORT_RANGE = BlazeFaceModel("blazeface", "blazeface_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5)
FULL_RANGE = BlazeFaceModel("blazeface-full", "blazeface_full_range_sparse.tflite", 192, (4,), 1, 0.6)
ANCHOR_OFFSET = 0.5
#: Raw scores are clipped to +-this before the sigmoid (MediaPipe's score_clipping_thresh).
SCORE_CLIP = 100.0
NUM_KEYPOINTS = 6
#: MediaPipe's keypoint order: 0 and 1 are the eyes, 2 nose tip, 3 mouth centre, 4 and 5 ear tragions.
#: Its keypoint 0 is the eye on the image's *left*, i.e. the subject's right eye on an unmirrored photo,
#: which is the (right eye, left eye) order Face.eyes wants; checked on skimage_astronaut.png.
KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5)


def ssd_anchors(input_size: int = SHORT_RANGE.input_size, strides: tuple[int, ...] = SHORT_RANGE.strides,
                per_layer: int = SHORT_RANGE.anchors_per_layer, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], shape (N, 2), in the model's output order.

    With one aspect ratio (1.0) and ``fixed_anchor_size``, every layer gives ``per_layer`` anchors of size
    1x1 per cell; consecutive layers with the same stride share one feature map. Short range: stride 8
    gives 16x16x2 = 512 anchors and the three stride-16 layers 8x8x6 = 384, 896 in all; full range: one
    stride-4 layer, 48x48x1 = 2304.
    """
    anchors = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = per_layer * (j - i)
        side = -(-input_size // strides[i])  # ceil
        ys, xs = np.mgrid[0:side, 0:side]
        centres = np.stack([(xs + offset) / side, (ys + offset) / side], axis=-1).reshape(-1, 1, 2)
        anchors.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(anchors).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted mean of
    the candidates overlapping the best one by more than ``threshold`` IoU; its score is the best score.
    ``boxes`` are (x1, y1, x2, y2); returns [(box, score, points)], best first."""
    order = np.argsort(-scores)
    boxes, scores, points = boxes[order], scores[order], points[order]
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    remaining = np.arange(len(scores))
    kept = []
    while remaining.size:
        best = remaining[0]
        lt = np.maximum(boxes[best, :2], boxes[remaining, :2])
        rb = np.minimum(boxes[best, 2:], boxes[remaining, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(areas[best] + areas[remaining] - inter, 1e-9)
        group = remaining[iou > threshold]
        group = group if group.size else remaining[:1]
        w = scores[group] / scores[group].sum()
        kept.append((w @ boxes[group], float(scores[best]), np.tensordot(w, points[group], axes=1)))
        remaining = remaining[iou <= threshold]
    return kept


class BlazeFaceDetector:
    """A MediaPipe BlazeFace model (short range by default) through the TFLite runtime (no TensorFlow).

    Landmarks: right eye, left eye (as seen by the subject), nose tip, mouth centre, right and left ear
    tragion. Boxes are square-ish and tighter than YuNet's (brow to chin).
    """

    #: Every image is scaled to the model's input: a whole-frame search at this side loses nothing.
    input_side = SHORT_RANGE.input_size

    def __init__(self, model_path: str | Path | None = None, score_threshold: float | None = None,
                 nms_threshold: float = 0.3, num_threads: int = 1, variant: BlazeFaceModel = SHORT_RANGE):
        from ferlite.edge.assets import model_path as bundled
        from ferlite.edge.classification.runtime import load_interpreter
        from ferlite.errors import ModelLoadError

        path = model_path or bundled(variant.file)
        self.name, self.size = variant.name, variant.input_size
        self.input_side = variant.input_size
        self._interp, self.backend = load_interpreter(path, num_threads)
        inp = self._interp.get_input_details()[0]
        self._anchors = ssd_anchors(variant.input_size, variant.strides, variant.anchors_per_layer)
        n = len(self._anchors)
        # Outputs by shape: the names differ between variants (regressors/classificators, Identity/Identity_1).
        outs = {tuple(d["shape"]): d["index"] for d in self._interp.get_output_details()}
        size = variant.input_size
        if (tuple(inp["shape"]) != (1, size, size, 3) or inp["dtype"] != np.float32
                or set(outs) != {(1, n, 4 + 2 * NUM_KEYPOINTS), (1, n, 1)}):
            raise ModelLoadError(f"{path}: not a {variant.name} model (float32 1x{size}x{size}x3 input, "
                                 f"1x{n}x16 box and 1x{n}x1 score outputs expected)")
        self._input = inp["index"]
        self._regressors = outs[(1, n, 4 + 2 * NUM_KEYPOINTS)]
        self._scores = outs[(1, n, 1)]
        self._tensor = np.empty((1, size, size, 3), np.float32)
        self.score_threshold = variant.score_threshold if score_threshold is None else score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, image: np.ndarray, score: float | None = None) -> tuple[Face, ...]:
        pad, scale = self._preprocess(image)
        self._interp.set_tensor(self._input, self._tensor)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._regressors)[0]
        logits = self._interp.get_tensor(self._scores)[0, :, 0]
        return self._postprocess(raw, logits, pad, scale, self.score_threshold if score is None else score)

    def _preprocess(self, image: np.ndarray) -> tuple[tuple[float, float], float]:
        """Letterbox into the square [-1, 1] RGB input tensor; returns ((pad x, pad y), scale)
        in model pixels, with scale = model pixels per image pixel."""
        import cv2

        h, w = image.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, (nw, nh), interpolation=interp)
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB)
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        t = self._tensor[0]
        t.fill(-1.0)  # black padding, as MediaPipe's zero border after normalisation
        t[py:py + nh, px:px + nw] = small * np.float32(1 / 127.5) - np.float32(1.0)
        return (px, py), scale

    def _postprocess(self, raw: np.ndarray, logits: np.ndarray, pad: tuple[float, float],
                     scale: float, threshold: float) -> tuple[Face, ...]:
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
        keep = scores >= threshold
        if not keep.any():
            return ()
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep] * self.size
        # Offsets are in model pixels (x_scale = w_scale = input size with unit anchors), x before y.
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2)[:, KEYPOINT_ORDER] + anchors[:, None, :]
        offset = np.asarray(pad, np.float32)
        faces = []
        for box, score, pts in weighted_nms(boxes, scores, points, self.nms_threshold):
            x1, y1 = (box[:2] - offset) / scale
            x2, y2 = (box[2:] - offset) / scale
            landmarks = (pts - offset) / scale
            faces.append(Face(box=(float(x1), float(y1), float(x2 - x1), float(y2 - y1)), score=score,
                              landmarks=tuple((float(x), float(y)) for x, y in landmarks)))
        return tuple(sorted(faces, key=lambda f: f.area, reverse=True))


class FullRangeDetector(BlazeFaceDetector):
    """BlazeFace full range (``--detector blazeface-full``): small, far faces."""

    input_side = FULL_RANGE.input_size

    def __init__(self, model_path: str | Path | None = None, score_threshold: float | None = None,
                 nms_threshold: float = 0.3, num_threads: int = 1):
        super().__init__(model_path, score_threshold, nms_threshold, num_threads, FULL_RANGE)
