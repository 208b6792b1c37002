"""Typed, immutable results of the recognition pipeline, and their table form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

UNCERTAIN = "uncertain"
#: Pipeline stages timed per frame, in order.
STAGES = ("decode", "detect", "classify", "smooth", "sink", "total")


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame: its track, box, smoothed label and probabilities."""

    track_id: int
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    label: str  # smoothed top-1, or "uncertain" when its probability is under the threshold
    confidence: float  # smoothed top-1 probability
    probs: tuple[float, ...]  # smoothed probabilities, in FrameResult.labels order
    raw_label: str = ""  # this frame's own top-1, before smoothing
    det_score: float = 0.0


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float  # seconds on the source's clock
    source: str  # image path, or the video / camera name
    faces: tuple[FaceResult, ...]
    labels: tuple[str, ...]
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    path: str | None = None  # set for image sources


def face_rows(result: FrameResult) -> list[dict]:
    """One dict per face: the columns of the results csv."""
    rows = []
    for f in result.faces:
        x, y, w, h = f.box
        row = {"source": result.source, "path": result.path or "", "frame": result.index,
               "timestamp": round(result.timestamp, 3), "track_id": f.track_id,
               "x": x, "y": y, "w": w, "h": h, "label": f.label, "confidence": round(f.confidence, 4),
               "raw_label": f.raw_label, "det_score": round(f.det_score, 3)}
        row.update({f"p_{name}": round(p, 4) for name, p in zip(result.labels, f.probs)})
        rows.append(row)
    return rows


def to_dataframe(results: Iterable[FrameResult]):
    """All faces of all frames as a pandas DataFrame (one row per face)."""
    import pandas as pd

    return pd.DataFrame([row for r in results for row in face_rows(r)])
