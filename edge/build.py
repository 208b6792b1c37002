"""The one pipeline factory: every part of the device pipeline, made from one validated Config.

`ferlite run`, `ferlite check`, `ferlite recognize` and `ferlite bench` all build their pipeline here, so a
key means the same thing everywhere. ``PipelineParts(config, kind)`` makes the classifier, the detector (inside
a region search on video and cameras), the tracker and the Pipeline around them; given the previous parts (a
reloaded service config), it rebuilds only what changed. ``make_source`` builds the configured frame source.
"""

from __future__ import annotations

from typing import Any

from ferlite.edge.config import Config
from ferlite.errors import SourceError


def source_kind_of(spec: str) -> str:
    """The source's kind (edge.sources.registry.source_kind); "video" for one not there yet (a camera to be
    plugged in, whose retries report it)."""
    from ferlite.edge.sources.registry import source_kind

    try:
        return source_kind(spec)
    except SourceError:
        return "video"


def make_source(config: Config, spec: str | None = None):
    """The configured source (``spec`` overrides ``source.spec``), built, not opened; returns (source, kind)."""
    from ferlite.edge.sources.registry import open_source, source_kind

    c = config.source
    spec = c.spec if spec is None else spec
    kind = source_kind(spec)
    return open_source(spec, width=c.width, height=c.height, fps=c.fps, size=(c.width, c.height),
                       lores=lores_size(config), open_timeout=c.open_timeout, read_timeout=c.read_timeout), kind


def lores_size(config: Config) -> tuple[int, int] | None:
    """The Pi camera's low-resolution stream: the size of the detector's whole-frame search of a
    source.width x source.height frame (None, no lores stream, when that is the frame itself)."""
    from ferlite.edge.detection.regions import search_size
    from ferlite.edge.detection.registry import detector_factory

    d, c = config.detector, config.source
    return search_size(detector_factory(d.type), (c.width, c.height), d.min_face) if d.coarse else None


def make_detector(config: Config, kind: str):
    """The configured detector, inside a region search for video, cameras and streams (detector.every > 1)."""
    from ferlite.edge.detection.regions import for_stream
    from ferlite.edge.detection.registry import create_detector

    d = config.detector
    return for_stream(create_detector(d.type, score=d.score), d.every, kind, min_face=d.min_face, coarse=d.coarse)


def make_classifier(config: Config):
    from ferlite.edge.classification.classifier import ExpressionClassifier
    from ferlite.errors import ModelLoadError

    c = config.classifier
    try:
        return ExpressionClassifier(c.model or None, num_threads=c.threads, flip=c.flip)
    except ModelLoadError as exc:
        raise ModelLoadError(f"classifier.model: {exc}") from None


def make_tracker(config: Config, labels, kind: str):
    """The tracker; photos are unrelated to each other, so they get no smoothing and no track memory."""
    from ferlite.edge.tracking import Tracker

    t = config.tracking
    if kind == "images":
        return Tracker(labels, window=1, threshold=t.threshold, max_age=0.0, hold=0.0, margin=0.0)
    return Tracker(labels, window=t.window, threshold=t.threshold, max_age=t.max_age, hold=t.hold, margin=t.margin)


class PipelineParts:
    """Classifier, detector, tracker and the pipeline around them, for a source of ``kind``. Given
    ``previous`` parts, only those whose config changed are rebuilt (``rebuilt`` names them); a classifier or
    detector already made from this config (by make_classifier, make_detector) may be handed in."""

    def __init__(self, config: Config, kind: str = "video", previous: PipelineParts | None = None, *,
                 classifier=None, detector=None):
        import cv2

        from ferlite.edge.pipeline import Pipeline, PipelineOptions

        cv2.setNumThreads(config.classifier.threads)  # OpenCV's detectors get the interpreter's thread budget
        old = previous.config if previous is not None and previous.kind == kind else None
        self.config, self.kind = config, kind
        self.rebuilt: list[str] = []
        self.classifier = classifier or self._reuse(previous, old, "classifier", lambda: make_classifier(config))
        self.detector = detector or self._reuse(previous, old, "detector", lambda: make_detector(config, kind))
        tracking_same = old is not None and old.tracking == config.tracking and "classifier" not in self.rebuilt
        self.tracker = previous.tracker if tracking_same else make_tracker(config, self.classifier.labels, kind)
        if not tracking_same:
            self.rebuilt.append("tracker")
        d, c = config.detector, config.classifier
        self.options = PipelineOptions(margin=c.margin, min_face=d.min_face, max_faces=d.max_faces)
        self.pipeline = Pipeline(self.detector, self.classifier, self.tracker, self.options)

    def _reuse(self, previous, old: Config | None, section: str, build) -> Any:
        if old is not None and getattr(old, section) == getattr(self.config, section):
            return getattr(previous, section)
        self.rebuilt.append(section)
        return build()

    def settings(self) -> dict[str, Any]:
        """What the pipeline really runs with, read back from the built parts (for tests and `ferlite check`)."""
        det = getattr(self.detector, "inner", self.detector)
        return {"detector": det.name, "score": getattr(det, "score_threshold", None),
                "every": getattr(self.detector, "every", 1), "coarse": getattr(self.detector, "coarse", False),
                "min_face": self.options.min_face,
                "max_faces": self.options.max_faces, "margin": self.options.margin,
                "model": str(self.classifier.model_path), "threads": self.config.classifier.threads,
                "flip": self.classifier.flip, "window": self.tracker.window, "threshold": self.tracker.threshold,
                "max_age": self.tracker.max_age}


def replay(clip, overrides=(), *, sink=None, max_frames: int | None = None) -> list:
    """A clip (or any source spec) through the pipeline as `ferlite run` builds it, from the packaged defaults
    with ``overrides`` ("section.key=value", as --set takes them; /etc/ferlite is not read); returns every
    frame's FrameResult. ``sink`` (an output, or a MultiSink) is given each result and frame too. Tests,
    benchmarks and the docs' examples share it::

        results = replay("edge/data/sample.mp4", ["tracking.hold=0"])
    """
    from ferlite.edge.configfile import load
    from ferlite.edge.outputs.base import MultiSink
    from ferlite.edge.outputs.files import ListSink
    from ferlite.edge.pipeline import run

    config = load(overrides=[f"source.spec={clip}", *overrides], system_path="/nonexistent")
    parts = PipelineParts(config, source_kind_of(config.source.spec))
    source, _ = make_source(config)
    kept = ListSink()
    with source:
        parts.pipeline.source_name = source.name
        run(source, parts.pipeline, MultiSink([kept, *([sink] if sink is not None else [])]), max_frames=max_frames)
    return kept.results
