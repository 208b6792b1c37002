"""MediaPipe's BlazeFace short-range face detector (bundled TFLite model, Apache-2.0).

The pre- and post-processing follow MediaPipe's face_detection_short_range graph: letterbox to a
square, 128x128 RGB in [-1, 1], one invoke, decode 896 SSD anchors, sigmoid scores, weighted NMS,
undo the letterbox. The model is made for faces within about 2 m of the camera (a face at least
an eighth of the frame's long side, ~16 px of the model input); small, far faces are missed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .detectors import Face

if TYPE_CHECKING:
    from pathlib import Path

#: The model's square input side, in pixels.
INPUT_SIZE = 128
#: MediaPipe's ssd_anchors options for face_detection_short_range: one feature map per stride.
STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
#: Raw scores are clipped to +-this before the sigmoid (MediaPipe's score_clipping_thresh).
SCORE_CLIP = 100.0
NUM_KEYPOINTS = 6
#: MediaPipe's keypoint order: 0 and 1 are the eyes, 2 nose tip, 3 mouth centre, 4 and 5 ear tragions.
#: Its keypoint 0 is the eye on the image's *left*, i.e. the subject's right eye on an unmirrored photo,
#: which is the (right eye, left eye) order Face.eyes wants; checked on skimage_astronaut.png.
KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5)


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES,
                offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], shape (N, 2), in the model's output order.

    With one aspect ratio (1.0), an interpolated scale and ``fixed_anchor_size``, every layer gives two
    anchors of size 1x1 per cell; consecutive layers with the same stride share one feature map, so
    stride 8 gives 16x16x2 = 512 anchors and the three stride-16 layers 8x8x6 = 384, 896 in all.
    """
    anchors = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
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
    """MediaPipe's BlazeFace short-range model through the TFLite runtime (no TensorFlow).

    Landmarks: right eye, left eye (as seen by the subject), nose tip, mouth centre, right and left ear
    tragion. Boxes are square-ish and tighter than YuNet's (brow to chin).
    """

    name = "blazeface"

    def __init__(self, model_path: str | Path | None = None, score_threshold: float = 0.5,
                 nms_threshold: float = 0.3, num_threads: int = 1):
        from .assets import blazeface_model
        from .errors import ModelLoadError
        from .runtime import load_interpreter

        path = model_path or blazeface_model()
        self._interp, self.backend = load_interpreter(path, num_threads)
        inp = self._interp.get_input_details()[0]
        outs = {d["name"]: d for d in self._interp.get_output_details()}
        self._anchors = ssd_anchors()
        n = len(self._anchors)
        if (tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or inp["dtype"] != np.float32
                or set(outs) != {"regressors", "classificators"}
                or tuple(outs["regressors"]["shape"]) != (1, n, 4 + 2 * NUM_KEYPOINTS)):
            raise ModelLoadError(f"{path}: not a BlazeFace short-range model (float32 1x128x128x3 input, "
                                 f"regressors 1x{n}x16 and classificators outputs expected)")
        self._input = inp["index"]
        self._regressors = outs["regressors"]["index"]
        self._scores = outs["classificators"]["index"]
        self._tensor = np.empty((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    def detect(self, image: np.ndarray) -> tuple[Face, ...]:
        pad, scale = self._preprocess(image)
        self._interp.set_tensor(self._input, self._tensor)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._regressors)[0]
        logits = self._interp.get_tensor(self._scores)[0, :, 0]
        return self._postprocess(raw, logits, pad, scale)

    def _preprocess(self, image: np.ndarray) -> tuple[tuple[float, float], float]:
        """Letterbox into the 128x128 [-1, 1] RGB input tensor; returns ((pad x, pad y), scale)
        in model pixels, with scale = model pixels per image pixel."""
        import cv2

        h, w = image.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, (nw, nh), interpolation=interp)
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB)
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        t = self._tensor[0]
        t.fill(-1.0)  # black padding, as MediaPipe's zero border after normalisation
        t[py:py + nh, px:px + nw] = small * np.float32(1 / 127.5) - np.float32(1.0)
        return (px, py), scale

    def _postprocess(self, raw: np.ndarray, logits: np.ndarray, pad: tuple[float, float],
                     scale: float) -> tuple[Face, ...]:
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
        keep = scores >= self.score_threshold
        if not keep.any():
            return ()
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep] * INPUT_SIZE
        # Offsets are in model pixels (x_scale = w_scale = 128 with unit anchors), x before y.
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
