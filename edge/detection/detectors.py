"""Face detectors behind one small interface (YuNet and Haar here, BlazeFace in its own module), chosen by
name from ``detection.registry``.

``detect(image)`` takes a BGR (or grey) uint8 image and returns a tuple of :class:`~ferlite.edge.results.Face`, largest
first; no face is an empty tuple. Boxes and landmarks are in the input image's pixel coordinates. ``detect(image,
score)`` lowers (or raises) the least score for that one call, where the detector has one.

What a detector sees of a frame, for ``detection.regions`` to choose the scale of its whole-frame search:
``max_side`` (the long side it scales larger images down to), ``smallest_face`` (the smallest face side, in
pixels of its input, that it finds), ``input_side`` (a model with a fixed square input scales every image to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

from ferlite.edge.results import Face
from ferlite.errors import ModelLoadError

#: YuNet (OpenCV's FaceDetectorYN) reports garbage faces (infinite boxes, score 1.0) on inputs under 64 pixels
#: wide or 33 high; smaller images are padded to this side.
YUNET_MIN_SIDE = 64
#: YuNet networks kept, one per input size (whole-frame search tiles, regions).
NETS = 4


class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray, score: float | None = None) -> tuple[Face, ...]: ...


def _fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most ``max_side``; returns (image, scale factor applied). The short
    side stays at least one pixel (a 2x10000 image becomes 640x1, not 640x0)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, scale


def _pad_to(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` with black added below and to the right until both sides are at least ``side`` (coordinates
    are unchanged)."""
    import cv2

    h, w = image.shape[:2]
    if h >= side and w >= side:
        return image
    return cv2.copyMakeBorder(image, 0, max(0, side - h), 0, max(0, side - w), cv2.BORDER_CONSTANT, value=0)


def _sorted(faces: list[Face]) -> tuple[Face, ...]:
    return tuple(sorted(faces, key=lambda f: f.area, reverse=True))


class YuNetDetector:
    """OpenCV's ``cv2.FaceDetectorYN`` with the bundled YuNet model (Apache-2.0)."""

    name = "yunet"
    #: Faces from about 10 pixels are found (at a lower score); 12 keeps most of them above 0.3.
    smallest_face = 12

    def __init__(self, model_path: str | None = None, score_threshold: float = 0.8,
                 nms_threshold: float = 0.3, max_side: int = 640):
        import cv2

        from ferlite.edge.assets import yunet_model

        self._path = str(model_path or yunet_model())
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.max_side = max_side
        self._nets: dict[tuple[int, int], Any] = {}
        try:
            self._net_for((320, 320))
        except cv2.error as exc:
            raise ModelLoadError(f"cannot load YuNet model {self._path}: {exc}") from None

    def _net_for(self, size: tuple[int, int]):
        """A network set to this input size: one per size, the last NETS sizes kept (a network takes about
        1 ms to change its input size, and a video alternates between the whole-frame search and regions)."""
        import cv2

        net = self._nets.pop(size, None)
        if net is None:
            net = cv2.FaceDetectorYN.create(self._path, "", size, self.score_threshold, self.nms_threshold, 5000)
            if len(self._nets) >= NETS:
                self._nets.pop(next(iter(self._nets)))
        self._nets[size] = net  # most recently used last
        return net

    def detect(self, image: np.ndarray, score: float | None = None) -> tuple[Face, ...]:
        import cv2
        import numpy as np

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        small, scale = _fit(image, self.max_side)
        small = _pad_to(small, YUNET_MIN_SIDE)
        net = self._net_for((small.shape[1], small.shape[0]))
        if score is not None:
            net.setScoreThreshold(score)
        try:
            _, out = net.detect(small)
        finally:
            if score is not None:
                net.setScoreThreshold(self.score_threshold)
        if out is None:
            return ()
        faces = []
        for row in out:
            if not np.isfinite(row).all():
                continue
            r = row[:14] / scale
            faces.append(Face(box=tuple(float(v) for v in r[:4]), score=float(row[14]),
                              landmarks=tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5))))
        return _sorted(faces)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (no landmarks). Needs OpenCV < 5."""

    name = "haar"
    #: The cascade's 24x24 window.
    smallest_face = 24

    def __init__(self, cascade: str | None = None, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 20, max_side: int = 640):
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelLoadError("this OpenCV has no CascadeClassifier (OpenCV 5 removed it): "
                                 "install opencv-python-headless<5 or use --detector yunet")
        path = cascade or (cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ModelLoadError(f"cannot load Haar cascade {path}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side = min_size, max_side

    def detect(self, image: np.ndarray, score: float | None = None) -> tuple[Face, ...]:
        """``score`` is ignored: the cascade has none."""
        import cv2
        import numpy as np

        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small, scale = _fit(grey, self.max_side)
        min_px = max(8, round(self.min_size * scale))
        boxes, _, weights = self._cascade.detectMultiScale3(
            small, self.scale_factor, self.min_neighbors, minSize=(min_px, min_px), outputRejectLevels=True)
        faces = [Face(box=tuple(float(v) / scale for v in b), score=float(wt))
                 for b, wt in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1))]
        return _sorted(faces)
