"""What the live outputs (HTTP, MQTT) tell the world, derived from the frame results: the faces in view, the
room's dominant expression, recent shares, frames/s. The events (a face appeared, changed label, is gone) are
not decided here: the tracker decides them once, on the source's clock, and they come with each FrameResult.

A :class:`LiveView` is fed every FrameResult by the HTTP output, in the frame loop's thread; it only counts
(no I/O), so the frame loop never waits on it. Only the standard library is imported here.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

from ferlite.edge.results import UNCERTAIN, FrameResult

#: Seconds of frames over which frames/s is measured.
FPS_WINDOW_S = 5.0


def dominant(labels: list[str]) -> str:
    """The room's expression: the most common sure label of the faces in view, else "uncertain", else "none"."""
    sure = [label for label in labels if label != UNCERTAIN]
    if sure:
        return Counter(sure).most_common(1)[0][0]
    return UNCERTAIN if labels else "none"


def faces_of(result: FrameResult | None) -> list[dict[str, Any]]:
    """The faces of a frame: id, box, label, confidence, best guess and probabilities."""
    if result is None:
        return []
    return [{"track_id": f.track_id, "box": list(f.box), "label": f.label, "best_guess": result.top_label(f),
             "confidence": round(f.confidence, 4),
             "probs": dict(zip(result.labels, (round(p, 4) for p in f.probs)))} for f in result.faces]


def room(result: FrameResult | None) -> dict[str, Any]:
    """The room: dominant expression and number of faces in view."""
    labels = [f.label for f in result.faces] if result else []
    return {"expression": dominant(labels), "faces": len(labels)}


class LiveView:
    """The HTTP output's view of one source, updated once per frame (see the module docstring)."""

    def __init__(self, history_s: float = 600.0, clock=time.time):
        self.history_s, self.clock = history_s, clock
        self.started = clock()
        self.result: FrameResult | None = None
        self.frames = 0
        self._frame_times: deque[float] = deque()
        self._history: deque[tuple[float, Counter]] = deque()  # one entry per second: labels seen

    def update(self, result: FrameResult) -> None:
        """Take one frame's result."""
        now = self.clock()
        self.result, self.frames = result, self.frames + 1
        self._frame_times.append(now)
        while self._frame_times and now - self._frame_times[0] > FPS_WINDOW_S:
            self._frame_times.popleft()
        self._remember(now, [f.label for f in result.faces])

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
        return faces_of(self.result)

    def state(self) -> dict[str, Any]:
        return room(self.result)

    def shares(self, minutes: float | None = None) -> dict[str, float]:
        """Share of each label among the faces seen over the last ``minutes`` (default: all kept)."""
        since = self.clock() - (minutes * 60 if minutes else self.history_s)
        total: Counter = Counter()
        for second, counts in tuple(self._history):  # read from the HTTP thread while frames append
            if second >= since:
                total.update(counts)
        n = sum(total.values())
        return {label: round(count / n, 4) for label, count in total.most_common()} if n else {}
