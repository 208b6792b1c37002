"""The recognition pipeline: source -> detector -> align/crop -> classifier -> tracker -> outputs.

``Pipeline.process(frame)`` handles one frame and returns its complete :class:`FrameResult` (every stage timed:
decode, detect, classify, smooth, and their total); ``run(...)`` is the loop, with a stop event, an optional
frame limit and a per-frame hook, handing each frame and its result to the outputs. ``ferlite.edge.build``
makes a Pipeline from the config.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferlite.edge.config import ClassifierConfig, DetectorConfig
from ferlite.edge.detection.align import align_crop
from ferlite.edge.results import Detection, FrameResult


@dataclass(frozen=True)
class PipelineOptions:
    """The pipeline's own settings; ferlite.edge.build fills them from the config (defaults: the config's)."""

    margin: float = ClassifierConfig.margin  # crop margin around each face box, per side
    min_face: int = DetectorConfig.min_face  # smallest face side, in frame pixels, that is classified
    max_faces: int = DetectorConfig.max_faces  # most faces classified per frame, the largest first


class Pipeline:
    """Owns nothing it did not build: detector, classifier and tracker are passed in, built once."""

    def __init__(self, detector, classifier, tracker, options: PipelineOptions | None = None, source_name: str = ""):
        self.source_name = source_name  # stamped on results that have no file path (camera, stream, video)
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker
        self.options = options or PipelineOptions()
        #: What the stages are timed with: wall-clock time; a benchmark may set the thread's CPU time.
        self.clock = time.perf_counter

    def process(self, frame, decode_ms: float = 0.0) -> FrameResult:
        t0 = self.clock()
        image, small = frame.image, getattr(frame, "grey", None)  # e.g. the Pi camera's lores Y plane
        if small is None:
            faces = self.detector.detect(image)
        elif hasattr(self.detector, "search_size"):  # a region search: the lores plane for whole-frame searches
            faces = self.detector.detect(image, small)
        else:
            faces = self.detector.detect(small)
            # x and y apart: a lores stream of another aspect ratio is scaled, not cropped, by the ISP.
            sx, sy = image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]
            faces = tuple(f.scaled(sx, sy) for f in faces)
        t1 = self.clock()
        size = self.classifier.info.input_size
        detections = []
        for face in faces[: self.options.max_faces]:
            if min(face.box[2], face.box[3]) < self.options.min_face:
                continue  # each crop is made grey on its own: the frame is never converted whole
            prediction = self.classifier.classify(align_crop(image, face, size, self.options.margin))
            detections.append(Detection.of(face, prediction))
        t2 = self.clock()
        results, events = self.tracker.step(frame.timestamp, detections)
        t3 = self.clock()
        timings = {"decode": decode_ms, "detect": 1e3 * (t1 - t0), "classify": 1e3 * (t2 - t1),
                   "smooth": 1e3 * (t3 - t2)}
        timings["total"] = sum(timings.values())
        path = getattr(frame, "path", None)
        return FrameResult(index=frame.index, timestamp=frame.timestamp, source=path or self.source_name,
                           faces=results, labels=self.classifier.labels, timings_ms=timings, path=path,
                           events=events)


def run(source, pipeline: Pipeline, sink, *, stop: threading.Event | None = None, max_frames: int | None = None,
        on_frame: Callable[[object, FrameResult], None] | None = None) -> int:
    """Run frames from an open ``source`` through the pipeline into ``sink`` (``sink.write(result, frame)``);
    returns the frame count. ``on_frame(frame, result)`` runs after the sink (readiness, watchdog pings)."""
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
        result = pipeline.process(frame, 1e3 * (time.perf_counter() - t0))
        sink.write(result, frame)
        if on_frame is not None:
            on_frame(frame, result)
        count += 1
    return count
