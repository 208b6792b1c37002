"""Every typed, immutable result of the device pipeline, in the order a frame produces them, and their table form.

    Face          a detector's find: box, score, landmarks              (detection/)
    Prediction    the classifier's answer for one face crop             (classification/)
    Detection     a face and its prediction, before tracking            (pipeline.py -> tracking.py)
    FaceResult    one tracked face in one frame, smoothed               (tracking.py)
    FaceEvent     a face appeared, changed its label, or is gone        (tracking.py)
    FrameResult   all faces and events of one frame, with stage timings (pipeline.py -> outputs/)

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

UNCERTAIN = "uncertain"
#: Pipeline stages timed per frame, in order; "total" is everything before the outputs see the result.
STAGES = ("decode", "detect", "classify", "smooth", "total")

Box = tuple[int, int, int, int]


def top_k(probs: Sequence[float], labels: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable (label, probability) pairs, most probable first."""
    order = sorted(range(len(probs)), key=lambda i: probs[i], reverse=True)
    return [(labels[i], float(probs[i])) for i in order[:k]]


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, w, h), score, and landmarks when the detector gives them
    (YuNet: right eye, left eye, nose tip, right and left mouth corners, as seen by the subject)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """(right eye, left eye) in image coordinates, or None without landmarks."""
        return (self.landmarks[0], self.landmarks[1]) if len(self.landmarks) >= 2 else None

    def scaled(self, sx: float, sy: float) -> Face:
        """This face on an image scaled by ``sx`` in x and ``sy`` in y."""
        x, y, w, h = self.box
        return Face(box=(x * sx, y * sy, w * sx, h * sy), score=self.score,
                    landmarks=tuple((px * sx, py * sy) for px, py in self.landmarks))


@dataclass(frozen=True)
class Prediction:
    """The classifier's probabilities for one face crop, in ``labels`` order."""

    label: str
    confidence: float
    probs: tuple[float, ...]
    labels: tuple[str, ...]

    @classmethod
    def of(cls, probs: Sequence[float], labels: Sequence[str]) -> Prediction:
        probs = tuple(float(p) for p in probs)
        best = max(range(len(probs)), key=probs.__getitem__)
        return cls(labels[best], probs[best], probs, tuple(labels))

    def top_k(self, k: int = 3) -> list[tuple[str, float]]:
        return top_k(self.probs, self.labels, k)


@dataclass(frozen=True)
class Detection:
    """One face of one frame, before tracking: box (x, y, w, h), probabilities in labels order, and the
    detector's score. ``probs`` may be any sequence (a numpy array too); it is stored as a tuple of floats."""

    box: Box
    probs: tuple[float, ...]
    det_score: float = 0.0

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"Detection.box must be (x, y, w, h), got {self.box!r}")
        object.__setattr__(self, "box", tuple(int(v) for v in self.box))
        object.__setattr__(self, "probs", tuple(float(p) for p in self.probs))
        object.__setattr__(self, "det_score", float(self.det_score))

    @classmethod
    def of(cls, face: Face, prediction: Prediction) -> Detection:
        return cls(box=tuple(int(round(v)) for v in face.box), probs=prediction.probs, det_score=face.score)


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame: its track, box, smoothed label and probabilities."""

    track_id: int
    box: Box  # x, y, w, h in frame pixels
    label: str  # smoothed top-1, or "uncertain" when its probability is under the threshold
    confidence: float  # smoothed top-1 probability
    probs: tuple[float, ...]  # smoothed probabilities, in FrameResult.labels order
    raw_label: str = ""  # this frame's own top-1, before smoothing
    det_score: float = 0.0
    settled: bool = True  # False during a new track's first [tracking] hold seconds, while its label settles
    since: float = 0.0  # source seconds at which the track's label settled or last changed (its last event)


#: The kinds of FaceEvent, in the order a track has them.
EVENT_KINDS = ("appeared", "label", "gone")


@dataclass(frozen=True)
class FaceEvent:
    """What changed for one track in one frame, decided once by the tracker on the source's clock: ``appeared``
    (its label has settled: the face counts from now), ``label`` (the label it shows changed; ``previous`` is the
    old one) or ``gone`` (not seen for longer than ``[tracking] max_age``, or its source restarted). A track that
    goes before its label settles has no event at all. The SQLite log, HTTP/SSE and MQTT all report these."""

    kind: str
    track_id: int
    label: str
    previous: str
    confidence: float
    timestamp: float  # seconds on the source's clock (the frame's)

    def as_dict(self, source: str, frame: int, now: float) -> dict:
        """The event as the live outputs send it: ``time`` is the wall clock (epoch seconds) when sent."""
        return {"type": self.kind, "track_id": self.track_id, "label": self.label, "previous": self.previous,
                "confidence": round(self.confidence, 4), "time": round(now, 3),
                "timestamp": round(self.timestamp, 3), "frame": frame, "source": source}


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float  # seconds on the source's clock
    source: str  # image path, or the video / camera name
    faces: tuple[FaceResult, ...]
    labels: tuple[str, ...]
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    path: str | None = None  # set for image sources
    events: tuple[FaceEvent, ...] = ()  # what changed in this frame (the tracker's), in order

    def top_label(self, face: FaceResult) -> str:
        """The face's most probable label after smoothing, even when it is "uncertain"."""
        return top_k(face.probs, self.labels, 1)[0][0]

    def top_k(self, face: FaceResult, k: int = 3) -> list[tuple[str, float]]:
        return top_k(face.probs, self.labels, k)


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
