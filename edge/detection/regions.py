"""Detect faces near where they were: a whole-frame search every few frames, and in between a detection only
in a small square region around each face of the previous frame.

On video and cameras faces move little from one frame to the next, so most frames need the detector to look
at a few small regions instead of the whole frame (a 160x160 region has a twelfth of the pixels of a 640x480
frame). A face that enters the picture is found at the next whole-frame search, at most ``every - 1`` frames
late. Never use this on unrelated photos.

The whole-frame search itself runs at the smallest scale ``detector.min_face`` allows (:func:`search_scale`:
YuNet finds faces of about 12 pixels, so a 24-pixel minimum allows a 320x240 search of a 640x480 frame, a
quarter of the pixels) with a low score bar. Its faces that pass the detector's own score are kept as found;
each weaker candidate, and each face followed from the last frame that the search did not find so, is looked
for in its region at full resolution, with the detector's own score. A whole-frame search then costs about a
quarter of one at full resolution plus a region or two, so no frame takes much longer than the others.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ferlite.edge.config import DetectorConfig
from ferlite.edge.results import Face
from ferlite.edge.tracking import iou

if TYPE_CHECKING:
    import numpy as np

    from ferlite.edge.detection.detectors import FaceDetector

#: Least score of a candidate in a scaled-down whole-frame search: each candidate is looked at again in its
#: region at full resolution with the detector's own score, so a low bar here costs a region search at most.
#: On the sample clip at 320x240, YuNet scores its turned face 0.2 to 0.6; what else scores over 0.2 there is
#: mostly a box around both faces, which holds a face already found and is skipped.
CANDIDATE_SCORE = 0.2
#: A candidate with this fraction of its box on a face already found in its region is that face.
SAME_FACE_OVERLAP = 0.2


def search_scale(detector, size: tuple[int, int], min_face: int) -> tuple[float, bool]:
    """(scale, refine): the scale at which to search a whole ``size`` (w, h) frame for faces of ``min_face``
    pixels and more, and whether faces found there must be looked at again at full resolution (they must when
    the detector would have seen the frame at a larger scale). A detector with a fixed input (BlazeFace)
    scales every image to it, so its search scale is its input's and needs no second look."""
    long = max(size)
    side = getattr(detector, "input_side", None)
    if side:
        return min(1.0, side / long), False
    limit = getattr(detector, "max_side", 0)
    cap = min(1.0, limit / long) if limit else 1.0
    smallest = getattr(detector, "smallest_face", None)
    scale = min(cap, smallest / min_face) if smallest else cap
    return scale, scale < cap


def search_size(detector, size: tuple[int, int], min_face: int) -> tuple[int, int] | None:
    """The (w, h), both even, of the whole-frame search of a ``size`` frame (e.g. the Pi camera's lores
    stream); None when that is the frame itself."""
    scale, _ = search_scale(detector, size, min_face)
    if scale >= 1.0:
        return None
    return tuple(max(2, 2 * round(s * scale / 2)) for s in size)


class RegionDetector:
    """Wraps a detector (YuNet, BlazeFace...) for video: whole frame every ``every`` frames, regions between.

    Each region is a square ``expand`` times the face's longer side, centred on the face, scaled to ``side``
    pixels (the face is then about ``side / expand`` pixels, comfortably above any detector's smallest face)
    and padded at the frame's border. A frame whose size changes, or with
    no face in the previous frame, gets a whole-frame search, scaled down (``coarse``, :func:`search_scale`).
    ``timings`` holds the last frame's milliseconds in the whole-frame search and in the regions.
    """

    def __init__(self, detector: FaceDetector, every: int = DetectorConfig.every, expand: float = 2.0,
                 side: int = 160, *, min_face: int = DetectorConfig.min_face, coarse: bool = DetectorConfig.coarse):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.inner = detector
        self.name = detector.name
        self.every, self.expand, self.side = every, expand, side
        self.min_face, self.coarse = min_face, coarse
        self._count = 0
        self._last: tuple[Face, ...] = ()
        self._shape: tuple[int, ...] | None = None
        self.full_frames = 0  # how many frames were searched whole
        self.timings = {"search": 0.0, "regions": 0.0}
        self.clock = time.perf_counter  # what ``timings`` are measured with (edge.pipeline.Pipeline.clock)

    def search_size(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """The size of the whole-frame search of ``size`` frames (None: the frame itself)."""
        return search_size(self.inner, size, self.min_face) if self.coarse else None

    def detect(self, image: np.ndarray, small: np.ndarray | None = None) -> tuple[Face, ...]:
        """Faces in ``image``; ``small``, when given, is the same frame already at the search size (the Pi
        camera's lores plane), used for the whole-frame search instead of scaling ``image`` down."""
        full = (self._count % self.every == 0 or not self._last or image.shape != self._shape)
        self._count += 1
        self._shape = image.shape
        self.timings = {"search": 0.0, "regions": 0.0}
        t0 = self.clock()
        if full:
            self.full_frames += 1
            faces = self._whole(image, small)
        else:
            faces = self._dedupe(self._in_regions(image, self._last))
        self.timings["regions"] = 1e3 * (self.clock() - t0) - self.timings["search"]
        self._last = faces
        return faces

    def _whole(self, image: np.ndarray, small: np.ndarray | None) -> tuple[Face, ...]:
        """The whole-frame search. Scaled down, its faces with the detector's own score are taken as found; a
        face followed from the last frame that it does not find so, and each weaker candidate that is not one
        of those faces, is looked for in its region at full resolution."""
        t0 = self.clock()
        h, w = image.shape[:2]
        scale, refine = search_scale(self.inner, (w, h), self.min_face) if self.coarse else (1.0, False)
        src = image if small is None else small
        size = search_size(self.inner, (w, h), self.min_face) if scale < 1.0 else (w, h)
        if abs(size[0] - src.shape[1]) > 2 or abs(size[1] - src.shape[0]) > 2:  # not already that size
            src = _resize(src, size)
        sx, sy = w / src.shape[1], h / src.shape[0]
        found = self.inner.detect(src, CANDIDATE_SCORE) if refine else self.inner.detect(src)
        found = [f.scaled(sx, sy) for f in found]
        self.timings["search"] = 1e3 * (self.clock() - t0)
        if not refine:
            return self._dedupe(found)
        bar = getattr(self.inner, "score_threshold", 1.0)
        sure = [f for f in found if f.score >= bar]
        known = sure + self._in_regions(image, [p for p in self._last if not _same(p, sure)])
        new = self._in_regions(image, [f for f in found if f.score < bar and not _same(f, known)])
        return self._dedupe(known + [f for f in new if not _same(f, known)])

    def _in_regions(self, image: np.ndarray, around: tuple[Face, ...] | list[Face]) -> list[Face]:
        """The face found in the region around each of ``around`` (none where the region holds none)."""
        import cv2

        h, w = image.shape[:2]
        found: list[Face] = []
        for prev in around:
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
            scale = self.side / n  # always one size: a detector keeps a network per input size
            if n != self.side:
                crop = cv2.resize(crop, (self.side, self.side),
                                  interpolation=cv2.INTER_AREA if n > self.side else cv2.INTER_LINEAR)
            faces = self.inner.detect(crop)
            if faces:  # the region's own face is the one nearest its centre (a neighbour may show too)
                mid = crop.shape[1] / 2
                own = min(faces, key=lambda f: abs(f.box[0] + f.box[2] / 2 - mid) + abs(f.box[1] + f.box[3] / 2 - mid))
                found.append(_to_frame(own, x0, y0, scale))
        return found

    @staticmethod
    def _dedupe(found: list[Face]) -> tuple[Face, ...]:
        """One face where two regions found the same one (the higher score kept), largest first."""
        kept: list[Face] = []
        for f in sorted(found, key=lambda f: f.score, reverse=True):
            if all(iou(f.box, k.box) < 0.5 for k in kept):
                kept.append(f)
        return tuple(sorted(kept, key=lambda f: f.area, reverse=True))


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _same(face: Face, known: list[Face]) -> bool:
    """Whether ``face`` is one of ``known``: a candidate around, inside or partly over a face already found (a
    fifth of its box on it) is not a new face; a scaled-down search reports such boxes beside real faces."""
    return any(_holds(face, k) or _holds(k, face) or _overlap(face, k) >= SAME_FACE_OVERLAP for k in known)


def _overlap(face: Face, other: Face) -> float:
    """The fraction of ``face``'s box that lies on ``other``'s."""
    x, y, w, h = face.box
    ox, oy, ow, oh = other.box
    inter = max(0.0, min(x + w, ox + ow) - max(x, ox)) * max(0.0, min(y + h, oy + oh) - max(y, oy))
    return inter / max(w * h, 1e-9)


def _holds(outer: Face, face: Face) -> bool:
    """Whether ``face``'s centre lies in ``outer``'s box."""
    x, y, w, h = outer.box
    cx, cy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
    return x <= cx <= x + w and y <= cy <= y + h


def _to_frame(face: Face, x0: int, y0: int, scale: float) -> Face:
    """A face found in a region (offset ``x0, y0`` in the frame, scaled by ``scale``), in frame pixels."""
    x, y, w, h = face.box
    return Face(box=(x / scale + x0, y / scale + y0, w / scale, h / scale), score=face.score,
                landmarks=tuple((px / scale + x0, py / scale + y0) for px, py in face.landmarks))


def for_stream(detector: FaceDetector, every: int, kind: str, *, min_face: int = DetectorConfig.min_face,
               coarse: bool = DetectorConfig.coarse) -> FaceDetector:
    """The detector to use on a source of ``kind`` (edge.sources.source_kind): wrapped in a RegionDetector for
    video, cameras and streams (``every`` = 1 searches every frame whole, scaled down when ``coarse``); as it
    is for photos, which are unrelated."""
    if kind == "images" or (every == 1 and not coarse):
        return detector
    return RegionDetector(detector, every, min_face=min_face, coarse=coarse)
