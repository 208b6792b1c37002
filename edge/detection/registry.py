"""The one registry of face detectors: name -> "module:factory", imported only when a detector is built."""

from __future__ import annotations

import importlib
import inspect

from ferlite.registry import lookup

#: Detector name (``--detector``, ``[detector] type``) -> the class or factory that builds it.
DETECTORS: dict[str, str] = {
    "yunet": "ferlite.edge.detection.detectors:YuNetDetector",
    "haar": "ferlite.edge.detection.detectors:HaarDetector",
    "blazeface": "ferlite.edge.detection.blazeface:BlazeFaceDetector",
    "blazeface-full": "ferlite.edge.detection.blazeface:FullRangeDetector",
}


def detector_factory(name: str):
    """The class (or factory) of a registered detector; an unknown name lists the valid ones."""
    module_name, _, attr = lookup(DETECTORS, name, "detector").partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create_detector(name: str, score: float = 0.0, **options):
    """Build a detector by name. ``score`` > 0 is its least face score, when it takes one (Haar does not);
    0 keeps the detector's own threshold."""
    factory = detector_factory(name)
    params = inspect.signature(factory).parameters.values()
    if score > 0 and any(p.name == "score_threshold" or p.kind is p.VAR_KEYWORD for p in params):
        options["score_threshold"] = score
    return factory(**options)
