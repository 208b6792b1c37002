"""Outputs that need the frame's pixels: annotated photos or video, face crops, and a live window."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlite.edge.display import gui_problem
from ferlite.edge.outputs.base import LIVE_KINDS, OutputContext, _Sink
from ferlite.edge.results import UNCERTAIN, FrameResult, top_k
from ferlite.errors import UsageError
from ferlite.tables import printable

if TYPE_CHECKING:
    import numpy as np


log = logging.getLogger(__name__)

COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 250),
           "sad": (200, 120, 40), "surprise": (230, 200, 40), "neutral": (200, 200, 200),
           "contempt": (120, 120, 40), "uncertain": (128, 128, 128)}


#: Annotated video of a video file: WebM/VP8, which every current browser plays; MPEG-4 Part 2 (mp4v, which
#: browsers do not play) only when this OpenCV cannot write VP8, with a warning.
VIDEO_FORMATS = (("VP80", ".webm"), ("mp4v", ".mp4"))
FONT_SCALE = 0.5
PAD = 3


def label_text(face, labels) -> str:
    """``#1 happy 0.94``; an uncertain face keeps its best guess: ``#2 uncertain (sad 0.43)``."""
    if face.label == UNCERTAIN:
        best, p = top_k(face.probs, labels, 1)[0]
        return f"#{face.track_id} {UNCERTAIN} ({best} {p:.2f})"
    return f"#{face.track_id} {face.label} {face.confidence:.2f}"


def place_labels(boxes, sizes, shape) -> list[tuple[int, int]]:
    """Top-left corners for label rectangles of ``sizes`` (w, h), one per box, inside the image and overlapping
    no other label: above its box if free, else below it, else moved down in steps until free (faces in
    order of their top edge)."""
    height, width = shape[:2]
    placed: list[tuple[int, int, int, int]] = []
    corners: list[tuple[int, int]] = [(0, 0)] * len(boxes)
    for i in sorted(range(len(boxes)), key=lambda k: (boxes[k][1], boxes[k][0])):
        x, y, w, h = boxes[i]
        lw, lh = sizes[i]
        lx = min(max(0, x), max(0, width - lw))
        tries = [y - lh, y + h] + [y - lh + step * (lh + 1) for step in range(1, 4 * len(boxes) + 4)]
        for ly in tries:
            ly = min(max(0, ly), max(0, height - lh))
            if all(lx + lw <= px or px + pw <= lx or ly + lh <= py or py + ph <= ly for px, py, pw, ph in placed):
                break
        placed.append((lx, ly, lw, lh))
        corners[i] = (lx, ly)
    return corners


def annotate(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` with each face's box and a label (track id, label and confidence, or "uncertain"
    with the best guess) drawn on it; labels never overlap each other. An uncertain face's box has its best
    guess's colour, drawn thinner, under a grey label."""
    import cv2

    out = image.copy()
    texts = [label_text(f, result.labels) for f in result.faces]
    sizes = []
    for text in texts:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)
        sizes.append((tw + 2 * PAD, th + base + 2 * PAD))
    corners = place_labels([f.box for f in result.faces], sizes, out.shape)
    for f, text, (lw, lh), (lx, ly) in zip(result.faces, texts, sizes, corners):
        x, y, w, h = f.box
        uncertain = f.label == UNCERTAIN
        colour = COLOURS.get(result.top_label(f) if uncertain else f.label, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 1 if uncertain else 2)
        cv2.rectangle(out, (lx, ly), (lx + lw - 1, ly + lh - 1), COLOURS[UNCERTAIN] if uncertain else colour, -1)
        cv2.putText(out, text, (lx + PAD, ly + lh - PAD - 3), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE,
                    (255, 255, 255) if uncertain else (0, 0, 0), 1, cv2.LINE_AA)
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
    (``<stem>.webm``, VP8, which browsers play; ``<stem>.mp4`` only where OpenCV cannot write VP8); cameras
    and streams get nothing saved."""

    def __init__(self, dir: str | Path, kind: str = "images", source: str = "", fps: float | None = None):
        self.dir, self.kind, self.fps = Path(dir), kind, fps or 30.0
        self.stem = Path(source).stem or "video"
        self.video_path = self.dir / f"{self.stem}{VIDEO_FORMATS[0][1]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer = None
        self.written: set[str] = set()

    @classmethod
    def from_config(cls, section: None, context: OutputContext) -> AnnotatedSink:
        return cls(context.dir, context.kind, context.source, context.fps)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        if frame is None or self.kind in LIVE_KINDS:
            return
        drawn = annotate(frame.image, result)
        if self.kind == "images":
            self._save_photo(drawn, self._image_name(result))
            return
        if self.writer is None:
            self.writer = self._open_video(drawn.shape)
        self.writer.write(drawn)

    def _open_video(self, shape):
        """The first of VIDEO_FORMATS this OpenCV can write (OpenCV's FFmpeg notices about the tag muted)."""
        import cv2

        from ferlite.quiet import native_logging_silenced

        h, w = shape[:2]
        for fourcc, suffix in VIDEO_FORMATS:
            self.video_path = self.dir / f"{self.stem}{suffix}"
            with native_logging_silenced():
                writer = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if writer.isOpened():
                if fourcc != VIDEO_FORMATS[0][0]:
                    log.warning("this OpenCV cannot write WebM/VP8: the annotated video is %s (MPEG-4 Part 2), "
                                "which browsers do not play", self.video_path.name)
                return writer
            self.video_path.unlink(missing_ok=True)
        raise UsageError(f"OpenCV cannot write a video here ({self.video_path.parent})")

    def _save_photo(self, image: np.ndarray, name: str) -> None:
        """Encode in the photo's own format, or as PNG (``name.png``) where that format cannot hold it (a JPEG over
        65,500 pixels wide, a GIF, a PGM of a colour image); written by Python, so names that are not UTF-8 work."""
        import cv2

        from ferlite.edge.imagefiles.decodelog import native_output

        for ext, target in ((Path(name).suffix.lower(), name), (".png", f"{name}.png")):
            with native_output():  # OpenCV's complaint about a format that cannot hold the image
                try:
                    ok, buf = cv2.imencode(ext, image)
                except cv2.error:
                    ok = False
            if ok:
                (self.dir / target).write_bytes(buf.tobytes())
                return
        log.warning("could not save an annotated copy of %s", printable(name))

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
    def from_config(cls, section: None, context: OutputContext) -> CropsSink:
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
