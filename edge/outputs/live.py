"""What the live outputs (HTTP, MQTT) tell the world, derived from the frame results: the faces in view, one
event per face that appears (once its label has settled), changes label or goes, the room's dominant
expression, recent shares, frames/s.

A :class:`LiveState` is fed every FrameResult by its output, in the frame loop's thread; it only counts and
compares (no I/O), so the frame loop never waits on it. Only the standard library is imported here.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from ferlite.edge.results import UNCERTAIN, FrameResult

#: Seconds of frames over which frames/s is measured.
FPS_WINDOW_S = 5.0


@dataclass(frozen=True)
class Event:
    """A face appeared, changed its label, or is gone (not seen for longer than the tracker keeps it)."""

    type: str  # "appeared", "label" or "gone"
    track_id: int
    label: str
    previous: str
    confidence: float
    time: float  # wall-clock epoch seconds
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "track_id": self.track_id, "label": self.label, "previous": self.previous,
                "confidence": round(self.confidence, 4), "time": round(self.time, 3), "source": self.source}


def dominant(labels: list[str]) -> str:
    """The room's expression: the most common sure label of the faces in view, else "uncertain", else "none"."""
    sure = [label for label in labels if label != UNCERTAIN]
    if sure:
        return Counter(sure).most_common(1)[0][0]
    return UNCERTAIN if labels else "none"


class LiveState:
    """The live view of one source, updated once per frame (see the module docstring)."""

    def __init__(self, gone_after: float = 1.0, history_s: float = 600.0, clock=time.time):
        self.gone_after, self.history_s, self.clock = gone_after, history_s, clock
        self.started = clock()
        self.result: FrameResult | None = None
        self.frames = 0
        self._tracks: dict[int, tuple[str, float, float]] = {}  # id -> (label, confidence, last seen)
        self._frame_times: deque[float] = deque()
        self._history: deque[tuple[float, Counter]] = deque()  # one entry per second: labels seen

    def update(self, result: FrameResult) -> list[Event]:
        """Take one frame's result; returns the events it caused, in order."""
        now = self.clock()
        self.result, self.frames = result, self.frames + 1
        self._frame_times.append(now)
        while self._frame_times and now - self._frame_times[0] > FPS_WINDOW_S:
            self._frame_times.popleft()
        events = []
        for face in (f for f in result.faces if f.settled):  # a new face counts once its label has settled
            old = self._tracks.get(face.track_id)
            if old is None:
                events.append(self._event("appeared", face.track_id, face.label, "", face.confidence, now))
            elif old[0] != face.label:
                events.append(self._event("label", face.track_id, face.label, old[0], face.confidence, now))
            self._tracks[face.track_id] = (face.label, face.confidence, now)
        for track_id, (label, confidence, seen) in list(self._tracks.items()):
            if now - seen > self.gone_after:
                del self._tracks[track_id]
                events.append(self._event("gone", track_id, label, label, confidence, now))
        self._remember(now, [f.label for f in result.faces])
        return events

    def _event(self, kind: str, track_id: int, label: str, previous: str, confidence: float, now: float) -> Event:
        return Event(kind, track_id, label, previous, confidence, now, self.result.source if self.result else "")

    def _remember(self, now: float, labels: list[str]) -> None:
        second = int(now)
        if not self._history or self._history[-1][0] != second:
            self._history.append((second, Counter(labels)))  # the first frame of each second stands for it
        while self._history and now - self._history[0][0] > self.history_s:
            self._history.popleft()

    @property
    def fps(self) -> float:
        times = self._frame_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def faces(self) -> list[dict[str, Any]]:
        """The faces of the last frame: id, box, label, confidence, best guess and probabilities."""
        r = self.result
        if r is None:
            return []
        return [{"track_id": f.track_id, "box": list(f.box), "label": f.label, "best_guess": r.top_label(f),
                 "confidence": round(f.confidence, 4), "probs": dict(zip(r.labels, (round(p, 4) for p in f.probs)))}
                for f in r.faces]

    def state(self) -> dict[str, Any]:
        """The room: dominant expression and number of faces in view."""
        labels = [f.label for f in self.result.faces] if self.result else []
        return {"expression": dominant(labels), "faces": len(labels)}

    def shares(self, minutes: float | None = None) -> dict[str, float]:
        """Share of each label among the faces seen over the last ``minutes`` (default: all kept)."""
        since = self.clock() - (minutes * 60 if minutes else self.history_s)
        total: Counter = Counter()
        for second, counts in tuple(self._history):  # read from the HTTP thread while frames append
            if second >= since:
                total.update(counts)
        n = sum(total.values())
        return {label: round(count / n, 4) for label, count in total.most_common()} if n else {}
