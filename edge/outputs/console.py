"""The console output: a line per photo or live frame, a progress bar for a video file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ferlite.edge.outputs.base import LIVE_KINDS, OutputContext, _Sink
from ferlite.edge.results import FrameResult
from ferlite.tables import printable


def frame_line(result: FrameResult) -> str:
    """``photo.jpg: #1 happy 0.91  (58.6 ms)``: the frame's faces and its time before the outputs."""
    faces = "  ".join(f"#{f.track_id} {f.label} {f.confidence:.2f}" for f in result.faces) or "no face"
    where = printable(Path(result.path).name) if result.path else f"frame {result.index}"
    return f"{where}: {faces}  ({result.timings_ms.get('total', 0):.1f} ms)"


class ConsoleSink(_Sink):
    """Prints :func:`frame_line` for photos and live sources; shows a progress bar (on stderr) for a video file."""

    def __init__(self, kind: str = "images", frame_count: int | None = None, source: str = ""):
        self.kind = kind
        self.bar = None
        if kind not in LIVE_KINDS and kind != "images":
            from tqdm import tqdm

            self.bar = tqdm(total=frame_count, desc=Path(source).name or "video", unit="frame", leave=False,
                            file=sys.stderr, disable=None)

    @classmethod
    def from_config(cls, section: None, context: OutputContext) -> ConsoleSink:
        return cls(context.kind, context.frame_count, context.source)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        if self.bar is not None:
            self.bar.update(1)
        else:
            print(frame_line(result), flush=True)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
