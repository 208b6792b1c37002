"""The recognition pipeline: source -> detector -> align/crop -> classifier -> tracker -> sink.

``Pipeline.process(frame)`` handles one frame; ``run(...)`` is the loop, with a stop event, an optional
frame limit and a per-frame callback, timing every stage (decode, detect, classify, smooth, sink, total).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferlite.edge.detection.align import DEFAULT_MARGIN, align_crop
from ferlite.edge.results import FrameResult


@dataclass(frozen=True)
class PipelineOptions:
    margin: float = DEFAULT_MARGIN
    min_face: int = 24  # smallest face side, in frame pixels, that is classified
    max_faces: int = 10


class Pipeline:
    """Owns nothing it did not build: detector, classifier and tracker are passed in, built once."""

    def __init__(self, detector, classifier, tracker, options: PipelineOptions | None = None,
                 source_name: str = ""):
        self.source_name = source_name  # stamped on results that have no file path (camera, stream, video)
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker
        self.options = options or PipelineOptions()

    def process(self, frame, decode_ms: float = 0.0) -> FrameResult:
        import cv2
        from ferlite.edge.tracking import Detection

        t0 = time.perf_counter()
        image = frame.image
        if getattr(frame, "grey", None) is not None:
            faces = self.detector.detect(frame.grey)  # e.g. the Pi camera's lores Y plane
            # x and y apart: a lores stream of another aspect ratio is scaled, not cropped, by the ISP.
            faces = _rescale(faces, image.shape[1] / frame.grey.shape[1], image.shape[0] / frame.grey.shape[0])
        else:
            faces = self.detector.detect(image)
        t1 = time.perf_counter()
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        size = self.classifier.info.input_size
        detections = []
        for face in faces[: self.options.max_faces]:
            if min(face.box[2], face.box[3]) < self.options.min_face:
                continue
            crop = align_crop(grey, face, size, self.options.margin)
            probs = self.classifier.probabilities(crop)
            box = tuple(int(round(v)) for v in face.box)
            detections.append(Detection(box=box, probs=tuple(float(p) for p in probs), det_score=face.score))
        t2 = time.perf_counter()
        results = self.tracker.update(frame.timestamp, detections)
        t3 = time.perf_counter()
        timings = {"decode": decode_ms, "detect": 1e3 * (t1 - t0), "classify": 1e3 * (t2 - t1),
                   "smooth": 1e3 * (t3 - t2)}
        path = getattr(frame, "path", None)
        return FrameResult(index=frame.index, timestamp=frame.timestamp, source=path or self.source_name,
                           faces=tuple(results), labels=self.classifier.labels, timings_ms=timings, path=path)


def _rescale(faces, sx: float, sy: float):
    """Faces found on a scaled copy of the frame, in frame pixels (x by ``sx``, y by ``sy``)."""
    from ferlite.edge.detection.detectors import Face

    return tuple(Face(box=(f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy), score=f.score,
                      landmarks=tuple((x * sx, y * sy) for x, y in f.landmarks)) for f in faces)


def run(source, pipeline: Pipeline, sink, *, stop: threading.Event | None = None, max_frames: int | None = None,
        on_frame: Callable[[object, FrameResult], None] | None = None) -> int:
    """Run frames from an open ``source`` through the pipeline into ``sink``; returns the frame count.

    ``on_frame(frame, result)`` runs after the sink write (annotation, display, watchdog pings)."""
    count = 0
    frames = iter(source)
    while not (stop is not None and stop.is_set()):
        if max_frames is not None and count >= max_frames:
            break
        t0 = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            break
        decode_ms = 1e3 * (time.perf_counter() - t0)
        result = pipeline.process(frame, decode_ms)
        t1 = time.perf_counter()
        sink.write(result)
        sink_ms = 1e3 * (time.perf_counter() - t1)
        total = decode_ms + sum(v for k, v in result.timings_ms.items() if k != "decode") + sink_ms
        timings = dict(result.timings_ms, sink=sink_ms, total=total)
        result = FrameResult(**{**result.__dict__, "timings_ms": timings})
        if on_frame is not None:
            on_frame(frame, result)
        count += 1
    return count
