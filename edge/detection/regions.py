"""Detect faces near where they were: a full-frame detection every few frames, and in between a
detection only in a small square region around each face of the previous frame.

On video and cameras faces move little from one frame to the next, so most frames need the detector
to look at a few small regions instead of the whole frame (a 160x160 region has a twelfth of the pixels
of a 640x480 frame). A face that enters the picture is found at the next full-frame
detection, at most ``every - 1`` frames late. Never use this on unrelated photos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferlite.edge.config import DetectorConfig
from ferlite.edge.results import Face
from ferlite.edge.tracking import iou

if TYPE_CHECKING:
    import numpy as np

    from ferlite.edge.detection.detectors import FaceDetector


class RegionDetector:
    """Wraps a detector (YuNet, BlazeFace...) for video: full frame every ``every`` frames, regions between.

    Each region is a square ``expand`` times the face's longer side, centred on the face, scaled so its
    side is at most ``side`` pixels (the face is then about ``side / expand`` pixels, comfortably above
    any detector's smallest face) and padded at the frame's border. A frame whose size changes, or with
    no face in the previous frame, gets a full-frame detection.
    """

    def __init__(self, detector: FaceDetector, every: int = DetectorConfig.every, expand: float = 2.0, side: int = 160):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.inner = detector
        self.name = detector.name
        self.every, self.expand, self.side = every, expand, side
        self._count = 0
        self._last: tuple[Face, ...] = ()
        self._shape: tuple[int, ...] | None = None
        self.full_frames = 0  # how many frames were searched whole

    def detect(self, image: np.ndarray) -> tuple[Face, ...]:
        full = (self._count % self.every == 0 or not self._last or image.shape != self._shape)
        self._count += 1
        self._shape = image.shape
        if full:
            self.full_frames += 1
            faces = self.inner.detect(image)
        else:
            faces = self._in_regions(image)
        self._last = faces
        return faces

    def _in_regions(self, image: np.ndarray) -> tuple[Face, ...]:
        import cv2

        h, w = image.shape[:2]
        found: list[Face] = []
        for prev in self._last:
            x, y, bw, bh = prev.box
            half = self.expand * max(bw, bh) / 2
            cx, cy = x + bw / 2, y + bh / 2
            x0, y0 = int(round(cx - half)), int(round(cy - half))
            n = max(1, int(round(2 * half)))
            crop = image[max(0, y0):min(h, y0 + n), max(0, x0):min(w, x0 + n)]
            if crop.size == 0:
                continue
            pads = (max(0, -y0), max(0, y0 + n - h), max(0, -x0), max(0, x0 + n - w))
            if any(pads):
                crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_CONSTANT, value=0)
            scale = min(1.0, self.side / n)
            if scale < 1.0:
                s = max(1, int(round(n * scale)))
                crop = cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA)
                scale = s / n
            faces = self.inner.detect(crop)
            if faces:  # the region's own face is the one nearest its centre (a neighbour may show too)
                mid = crop.shape[1] / 2
                own = min(faces, key=lambda f: abs(f.box[0] + f.box[2] / 2 - mid) + abs(f.box[1] + f.box[3] / 2 - mid))
                found.append(_to_frame(own, x0, y0, scale))
        kept: list[Face] = []
        for f in sorted(found, key=lambda f: f.score, reverse=True):
            if all(iou(f.box, k.box) < 0.5 for k in kept):  # two regions that found the same face
                kept.append(f)
        return tuple(sorted(kept, key=lambda f: f.area, reverse=True))


def _to_frame(face: Face, x0: int, y0: int, scale: float) -> Face:
    """A face found in a region (offset ``x0, y0`` in the frame, scaled by ``scale``), in frame pixels."""
    x, y, w, h = face.box
    return Face(box=(x / scale + x0, y / scale + y0, w / scale, h / scale), score=face.score,
                landmarks=tuple((px / scale + x0, py / scale + y0) for px, py in face.landmarks))


def for_stream(detector: FaceDetector, every: int, kind: str) -> FaceDetector:
    """The detector to use on a source of ``kind`` (edge.sources.source_kind): wrapped in a RegionDetector
    for video, cameras and streams when ``every`` > 1; as it is for photos, which are unrelated."""
    return RegionDetector(detector, every) if every > 1 and kind != "images" else detector
