"""Outputs that need the frame's pixels: annotated photos or video, face crops, and a live window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlite.edge.display import gui_problem
from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.results import FrameResult
from ferlite.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from ferlite.edge.config import Config

COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 250),
           "sad": (200, 120, 40), "surprise": (230, 200, 40), "neutral": (200, 200, 200),
           "contempt": (120, 120, 40), "uncertain": (128, 128, 128)}


def annotate(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` with each face's box, track id, label and confidence drawn on it."""
    import cv2

    out = image.copy()
    for f in result.faces:
        x, y, w, h = f.box
        colour = COLOURS.get(f.label, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{f.track_id} {f.label} {f.confidence:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (x, max(0, y - th - 6)), (x + tw + 4, y), colour, -1)
        cv2.putText(out, text, (x + 2, max(th, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def blur_faces(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` with every face box blurred beyond recognition (for a stream that leaves the device)."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    for f in result.faces:
        x, y, bw, bh = f.box
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 > x0 and y1 > y0:
            region = out[y0:y1, x0:x1]
            small = cv2.resize(region, (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12)), interpolation=cv2.INTER_AREA)
            out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return out


class AnnotatedSink(_Sink):
    """Annotated copies of photos (their own names, under ``dir``), or an annotated video of a video file
    (``<stem>.mp4``); cameras and streams get nothing saved."""

    def __init__(self, dir: str | Path, kind: str = "images", source: str = "", fps: float | None = None):
        self.dir, self.kind, self.fps = Path(dir), kind, fps or 30.0
        self.video_path = self.dir / f"{Path(source).stem or 'video'}.mp4"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer = None
        self.written: set[str] = set()

    @classmethod
    def from_config(cls, config: Config, context: OutputContext) -> AnnotatedSink:
        return cls(context.dir, context.kind, context.source, context.fps)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        import cv2

        self._check_open()
        if frame is None or self.kind in ("usb", "picamera", "stream"):
            return
        drawn = annotate(frame.image, result)
        if self.kind == "images":
            cv2.imwrite(str(self.dir / self._image_name(result)), drawn)
            return
        if self.writer is None:
            h, w = drawn.shape[:2]
            self.writer = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self.writer.write(drawn)

    def _image_name(self, result: FrameResult) -> str:
        """The photo's own name; ``name_<index>.ext`` when an earlier photo (e.g. from another folder of
        the same glob) already took it, so no annotated copy overwrites another."""
        path = Path(result.path or f"{result.index}.jpg")
        name = path.name
        if name in self.written:
            name = f"{path.stem}_{result.index}{path.suffix}"
        self.written.add(name)
        return name

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class CropsSink(_Sink):
    """Each face's box, uncropped by alignment, as ``dir/crops/<frame>_t<track>_<label>.jpg``."""

    def __init__(self, dir: str | Path):
        self.dir = Path(dir) / "crops"
        self.dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, config: Config, context: OutputContext) -> CropsSink:
        return cls(context.dir)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        import cv2

        self._check_open()
        if frame is None:
            return
        for f in result.faces:
            x, y, w, h = f.box
            crop = frame.image[max(0, y): y + h, max(0, x): x + w]
            if crop.size:
                cv2.imwrite(str(self.dir / f"{result.index:06d}_t{f.track_id}_{f.label}.jpg"), crop)


class WindowSink(_Sink):
    """The annotated frames in a live window; q or Esc in it stops the run (as Ctrl-C does)."""

    def __init__(self, title: str = "ferlite"):
        problem = gui_problem()
        if problem:
            raise UsageError(f"the live window (--show, or 'window' in [outputs]) {problem}")
        self.title = title

    def write(self, result: FrameResult, frame: Any = None) -> None:
        import cv2

        self._check_open()
        if frame is None:
            return
        cv2.imshow(self.title, annotate(frame.image, result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def _close(self) -> None:
        import cv2

        cv2.destroyAllWindows()
