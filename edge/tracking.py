"""A light multi-face tracker with per-track smoothing of the expression probabilities.

Each frame's detections (box, probabilities, detector score) are matched to the live tracks by
greedy IoU, highest overlap first. A detection that matches no track starts a new one (ids count up
from 1 and are never reused); a track not seen for more than ``max_age`` seconds of the source's
clock expires. A track's candidate label is the argmax of the mean of its last ``window`` probability
vectors, or :data:`~edge.results.UNCERTAIN` when that mean's top probability is under ``threshold``.

Hysteresis keeps the reported label from flickering between two close candidates: a label the track already
shows is kept while its smoothed probability stays within ``margin`` of the threshold and of the top one, and
a different candidate replaces it only once it has been the candidate for ``hold`` seconds of the source's
clock. A new track's label settles first: during its first ``hold`` seconds it follows the candidate at once
(a cold window is one frame's guess) and its results say ``settled=False``, so the log waits for a label that
means something.

The tracker also decides, once for every output, what changed: ``step`` returns the faces and the frame's
:class:`~edge.results.FaceEvent` s, all on the source's clock: ``appeared`` when a track's label settles,
``label`` when the label it shows changes, ``gone`` when a track that had appeared expires (or the source
restarts)::

    tracker = Tracker(labels, window=3)
    faces, events = tracker.step(frame.timestamp, [Detection(box, probs, score), ...])

Pure Python and the standard library only; one tracker per source, used from one thread.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ferlite.edge.config import TrackingConfig
from ferlite.edge.results import UNCERTAIN, Box, Detection, FaceEvent, FaceResult


@dataclass
class _Track:
    """Mutable state of one live track; never leaves this module."""

    track_id: int
    box: Box
    last_seen: float
    first_seen: float
    history: deque[tuple[float, ...]] = field(default_factory=deque)
    shown: str = ""  # the label reported now ("" before the first frame)
    pending: str = ""  # a different candidate waiting out ``hold``, and since when
    pending_since: float = 0.0
    reported: str = ""  # the label of the track's last event ("" before it appeared)
    since: float = 0.0  # when that event was
    confidence: float = 0.0  # the last frame's smoothed confidence


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0.0 when either is empty."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def _check_fraction(name: str, value: float, *, low_open: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (0.0 < value if low_open else 0.0 <= value) and value <= 1.0
    if not ok:
        bound = "0 < {} <= 1" if low_open else "0 <= {} <= 1"
        raise ValueError(f"{name} must be a number with {bound.format(name)}, got {value!r}")
    return float(value)


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise ValueError(f"labels must be a non-empty sequence of non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {labels!r}")
    return labels


class Tracker:
    """Greedy-IoU multi-face tracker with per-track probability smoothing (see the module docstring).

    :param labels: class names, in the order of every ``Detection.probs``.
    :param iou_threshold: least IoU (0 < t <= 1) for a detection to continue a track.
    :param max_age: seconds (source clock) a track survives unseen; longer and it expires.
    :param window: number of recent probability vectors averaged per track; 1 turns smoothing off.
    :param threshold: smoothed top-1 probability under which the label is ``"uncertain"``.
    :param hold: seconds (source clock) a new candidate label must last before the track reports it; 0 = at once.
    :param margin: the label a track shows is kept while its smoothed probability is at least
        ``threshold - margin`` and within ``margin`` of the top one; 0 = no probability hysteresis.
    """

    def __init__(self, labels: Sequence[str], *, iou_threshold: float = 0.3, max_age: float = TrackingConfig.max_age,
                 window: int = TrackingConfig.window, threshold: float = TrackingConfig.threshold,
                 hold: float = TrackingConfig.hold, margin: float = TrackingConfig.margin):
        self.labels = _check_labels(labels)
        self.iou_threshold = _check_fraction("iou_threshold", iou_threshold, low_open=True)
        self.threshold = _check_fraction("threshold", threshold, low_open=False)
        self.margin = _check_fraction("margin", margin, low_open=False)
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 <= hold < float("inf"):
            raise ValueError(f"hold must be a finite number of seconds >= 0, got {hold!r}")
        self.hold = float(hold)
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age >= 0 \
                or not math.isfinite(max_age):
            raise ValueError(f"max_age must be a finite number of seconds >= 0, got {max_age!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        self.max_age = float(max_age)
        self.window = window
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._last_timestamp: float | None = None
        self._events: list[FaceEvent] = []

    @property
    def live_tracks(self) -> tuple[int, ...]:
        """Ids of the tracks alive after the last update, oldest first."""
        return tuple(self._tracks)

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so old ids are never reused); those that had appeared get
        a ``gone`` event with the next ``step``."""
        for track in list(self._tracks.values()):
            self._gone(track, self._last_timestamp or 0.0)
        self._tracks.clear()
        self._last_timestamp = None

    def update(self, timestamp: float, detections: Sequence[Detection]) -> tuple[FaceResult, ...]:
        """Track one frame's detections; returns one FaceResult per detection, in input order (``step`` without
        the events)."""
        return self.step(timestamp, detections)[0]

    def step(self, timestamp: float, detections: Sequence[Detection]
             ) -> tuple[tuple[FaceResult, ...], tuple[FaceEvent, ...]]:
        """Track one frame's detections; returns one FaceResult per detection, in input order, and the frame's
        events (those of tracks gone first, then appeared and label changes in input order).

        A timestamp earlier than the previous one (a looping video, a restarted source) resets the
        tracker first, since ages can no longer be measured."""
        for det in detections:
            if len(det.probs) != len(self.labels):
                raise ValueError(f"Detection.probs has {len(det.probs)} values for {len(self.labels)} labels "
                                 f"{self.labels}: {det.probs!r}")
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            self.reset()
        self._last_timestamp = timestamp
        self._expire(timestamp)
        matches = self._match(detections)
        results = []
        for index, det in enumerate(detections):
            track = matches.get(index) or self._new_track(det.box, timestamp)
            track.box = det.box
            track.last_seen = timestamp
            track.history.append(det.probs)
            results.append(self._result(track, det, timestamp))
        events, self._events = tuple(self._events), []
        return tuple(results), events

    def _expire(self, now: float) -> None:
        for track in [t for t in self._tracks.values() if now - t.last_seen > self.max_age]:
            del self._tracks[track.track_id]
            self._gone(track, now)

    def _gone(self, track: _Track, now: float) -> None:
        if track.reported:
            self._events.append(FaceEvent("gone", track.track_id, track.reported, track.reported, track.confidence,
                                          now))

    def _report(self, track: _Track, label: str, timestamp: float) -> None:
        """The track's event for this frame, if any: it appeared (its label settled) or its label changed."""
        if track.reported == label or not self._settled(track, timestamp):
            return
        kind = "label" if track.reported else "appeared"
        self._events.append(FaceEvent(kind, track.track_id, label, track.reported, track.confidence, timestamp))
        track.reported, track.since = label, timestamp

    def _match(self, detections: Sequence[Detection]) -> dict[int, _Track]:
        """Greedy assignment: detection index -> track, taking the highest IoU pairs first."""
        pairs = []
        for index, det in enumerate(detections):
            for track in self._tracks.values():
                overlap = iou(det.box, track.box)
                if overlap > 0.0 and overlap >= self.iou_threshold:
                    pairs.append((-overlap, index, track.track_id))
        pairs.sort()
        matched: dict[int, _Track] = {}
        used: set[int] = set()
        for _, index, track_id in pairs:
            if index not in matched and track_id not in used:
                matched[index] = self._tracks[track_id]
                used.add(track_id)
        return matched

    def _new_track(self, box: Box, timestamp: float) -> _Track:
        track = _Track(self._next_id, box, timestamp, timestamp, deque(maxlen=self.window))
        self._tracks[track.track_id] = track
        self._next_id += 1
        return track

    def _candidate(self, track: _Track, smoothed: tuple[float, ...]) -> str:
        """This frame's label before the time hold: the smoothed top label (or uncertain), except that the
        label shown is kept while it stays within ``margin`` of the threshold and of the top probability."""
        top = _argmax(smoothed)
        candidate = self.labels[top] if smoothed[top] >= self.threshold else UNCERTAIN
        if track.shown and track.shown != UNCERTAIN and candidate != track.shown:
            p_shown = smoothed[self.labels.index(track.shown)]
            if p_shown >= self.threshold - self.margin and p_shown >= smoothed[top] - self.margin:
                return track.shown
        return candidate

    def _decide(self, track: _Track, candidate: str, timestamp: float) -> str:
        """The label to report: a candidate other than the one shown takes over after ``hold`` seconds, except
        while the track is settling (its first ``hold`` seconds), when the candidate is shown at once."""
        if not self._settled(track, timestamp) or candidate == track.shown:
            track.shown, track.pending = candidate, ""
        elif candidate != track.pending:
            track.pending, track.pending_since = candidate, timestamp
        if track.pending and timestamp - track.pending_since >= self.hold:
            track.shown, track.pending = track.pending, ""
        return track.shown

    def _settled(self, track: _Track, timestamp: float) -> bool:
        return timestamp - track.first_seen >= self.hold

    def _result(self, track: _Track, det: Detection, timestamp: float) -> FaceResult:
        n = len(track.history)
        smoothed = tuple(sum(column) / n for column in zip(*track.history))
        label = self._decide(track, self._candidate(track, smoothed), timestamp)
        confidence = smoothed[_argmax(smoothed)] if label == UNCERTAIN else smoothed[self.labels.index(label)]
        track.confidence = confidence
        self._report(track, label, timestamp)
        return FaceResult(track_id=track.track_id, box=det.box, label=label, confidence=confidence,
                          probs=smoothed, raw_label=self.labels[_argmax(det.probs)], det_score=det.det_score,
                          settled=self._settled(track, timestamp), since=track.since)
