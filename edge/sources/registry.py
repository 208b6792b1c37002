"""Frame sources: the Pi camera (in edge.picamera), USB cameras, video files, network streams and image files.

Every source is a small context-managed iterator of :class:`Frame`::

    with open_source("picamera") as source:
        for frame in source:
            ...

``open_source(spec)`` picks the source from a string the way a user types it on the command line:
``picamera``, ``0`` or ``/dev/video2``, ``rtsp://...``, ``clip.mp4``, ``photos/`` or ``"photos/*.jpg"``.
Timestamps are seconds on the source's own clock: the position in a video file (so a replay runs as fast
as it decodes and stays deterministic) and ``time.monotonic()`` since ``open()`` for live sources.
"""

from __future__ import annotations

import glob
import inspect
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2

from ferlite.edge.sources.frames import Frame, FrameSource, _bgr, _Source
from ferlite.edge.sources.imageio import read_image
from ferlite.edge.sources.listing import IMAGE_EXTENSIONS, Listing, list_folder, list_paths
from ferlite.edge.sources.picamera import PiCameraSource
from ferlite.errors import ImageReadError, SourceError, UsageError
from ferlite.redact import redact
from ferlite.tables import printable

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
PICAMERA_NAMES = frozenset({"picamera", "picam"})
#: Unreadable photos named one by one as warnings; the rest at debug level (the summary counts them all).
SHOWN_SKIPS = 3


def _fps_or_none(value: float) -> float | None:
    return float(value) if value and math.isfinite(value) and value > 0 else None


def _fourcc_text(value: float) -> str:
    code = int(value)
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00")


class _CaptureSource(_Source):
    """A source backed by one cv2.VideoCapture."""

    def __init__(self) -> None:
        super().__init__()
        self._cap = None
        self._t0 = 0.0

    def _live_frames(self, what: str, failure: str) -> Iterator[Frame]:
        """Frames of a live capture, timed by time.monotonic() since open; a failed read raises."""
        index = 0
        while self._cap is not None:
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(f"{what} {self.name}: {failure} after {index} frames")
            yield Frame(_bgr(image), time.monotonic() - self._t0, index)
            index += 1

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource(_CaptureSource):
    """A video file, decoded as fast as possible; timestamps are positions in the video."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.frame_count: int | None = None

    def _open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such video file")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.path}: cannot open as a video (not a video, or a codec OpenCV lacks)")
        self._cap = cap
        self.fps = _fps_or_none(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def _frames(self) -> Iterator[Frame]:
        index = 0
        while self._cap is not None:
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.frame_count and index < self.frame_count - 1:  # containers may count one frame more
                    log.warning("%s ended after %d of the %d frames its header announces (truncated?)",
                                self.path, index, self.frame_count)
                return
            if self.fps:
                timestamp = index / self.fps
            else:
                timestamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(_bgr(image), timestamp, index)
            index += 1


class UsbCameraSource(_CaptureSource):
    """A V4L2 camera (USB webcam, /dev/videoN). Asks for MJPG at the given size and rate with a
    one-frame buffer, and records in ``applied`` what the driver actually accepted."""

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480, fps: float = 30,
                 api_preference: int | None = None):
        super().__init__()
        self.device = device
        self.requested = {"fourcc": "MJPG", "width": int(width), "height": int(height), "fps": float(fps),
                          "buffersize": 1}
        self.api_preference = cv2.CAP_V4L2 if api_preference is None else api_preference
        self.name = f"/dev/video{device}" if isinstance(device, int) else str(device)
        self.applied: dict[str, object] = {}

    def _open(self) -> None:
        cap = cv2.VideoCapture(self.device, self.api_preference)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"camera {self.name}: cannot open it (is it plugged in, is the user in the 'video' group, "
                "is another program using it?)"
            )
        req = self.requested
        # FOURCC first: the driver picks the sizes and rates it offers from the pixel format.
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*req["fourcc"]))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, req["width"])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, req["height"])
        cap.set(cv2.CAP_PROP_FPS, req["fps"])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, req["buffersize"])
        self.applied = {
            "fourcc": _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": float(cap.get(cv2.CAP_PROP_FPS)),
            "buffersize": int(cap.get(cv2.CAP_PROP_BUFFERSIZE)),
        }
        refused = {k: v for k, v in self.applied.items() if v != req[k]}
        if refused:
            log.info("camera %s did not apply all settings: asked %s, got %s", self.name, req, self.applied)
        self._cap = cap
        self.fps = _fps_or_none(self.applied["fps"])
        self._t0 = time.monotonic()

    def _frames(self) -> Iterator[Frame]:
        return self._live_frames("camera", "read failed (unplugged?)")


class StreamSource(_CaptureSource):
    """A network stream (rtsp://, http(s)://) through OpenCV's FFmpeg backend, with a one-frame buffer."""

    def __init__(self, url: str, open_timeout: float = 10.0, read_timeout: float = 5.0):
        super().__init__()
        self.url = url
        self.timeouts_ms = (int(open_timeout * 1000), int(read_timeout * 1000))
        self.name = redact(url)  # no passwords in logs, the API or the log's rows

    def _open(self) -> None:
        open_ms, read_ms = self.timeouts_ms  # FFmpeg's own defaults block for 30 s
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms])
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"stream {self.name}: cannot open it (wrong URL, host unreachable, or auth failed)")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        self.fps = _fps_or_none(cap.get(cv2.CAP_PROP_FPS))
        self._t0 = time.monotonic()

    def _frames(self) -> Iterator[Frame]:
        return self._live_frames("stream", "ended or lost")


class ImageSource(_Source):
    """Still images: one file, a folder (sorted, not recursive) or a glob pattern; timestamps are the frame
    index. Every entry named like an image is read; one that cannot be used is skipped with a warning and kept
    in ``skipped`` as (path, one-line reason). Other entries are ignored, counted by kind in ``ignored``
    (edge.sources.listing)."""

    def __init__(self, spec: str | Path):
        super().__init__()
        self.spec = str(spec)
        self.name = self.spec
        self.files: list[Path] = []
        self.ignored: Counter = Counter()
        self.skipped: list[tuple[str, str]] = []

    def _open(self) -> None:
        p = Path(self.spec)
        if p.is_dir():
            listing = list_folder(p)
        elif p.is_file():
            listing = Listing([p])
        else:
            listing = list_paths(sorted(glob.glob(self.spec, recursive=True)))
        if not listing.files:
            raise SourceError(f"{self.spec}: no image files found")
        self.files, self.ignored, self.skipped = listing.files, listing.ignored, []

    def _frames(self) -> Iterator[Frame]:
        """The readable images; a single named file that cannot be read, or a folder or glob none of whose
        images can be, is a SourceError (not an empty run)."""
        index = 0
        for path in self.files:
            try:
                loaded = read_image(path)
            except ImageReadError as exc:
                if Path(self.spec).is_file():
                    raise SourceError(f"{path}: {exc}") from None
                if len(self.skipped) == SHOWN_SKIPS:
                    log.warning("further unreadable files are counted in the summary, not shown (-v shows them)")
                shown = len(self.skipped) < SHOWN_SKIPS
                log.log(logging.WARNING if shown else logging.DEBUG, "skipped %s: %s", printable(path), exc)
                self.skipped.append((str(path), str(exc)))
                continue
            yield Frame(loaded.image, float(index), index, path=str(path))
            index += 1
        if index == 0:
            raise SourceError(f"{self.spec}: none of its {len(self.files)} image file(s) could be read")


SOURCES = {"video": VideoFileSource, "usb": UsbCameraSource, "picamera": PiCameraSource,
           "images": ImageSource, "stream": StreamSource}

ACCEPTED = (
    "'picamera' (Raspberry Pi camera), a camera index or /dev/videoN (USB camera), "
    "an rtsp:// or http(s):// URL, a video file (" + " ".join(sorted(VIDEO_EXTENSIONS)) + "), "
    "an image file, a folder of images or a glob pattern"
)


def source_kind(spec: str) -> str:
    """The SOURCES key for a spec as typed by a user; SourceError when it matches none."""
    s = str(spec).strip()
    if s.lower() in PICAMERA_NAMES:
        return "picamera"
    if s.isdigit() or re.fullmatch(r"/dev/video\d+", s):
        return "usb"
    if s.lower().startswith(STREAM_SCHEMES):
        return "stream"
    p = Path(s)
    if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    if p.is_dir() or (p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        return "images"
    if any(c in s for c in "*?[") and glob.glob(s, recursive=True):
        return "images"
    if p.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS and not p.exists():
        raise SourceError(f"{s}: no such file")
    raise SourceError(f"{s!r} is not a source I know. Accepted: {ACCEPTED}")


def _options_of(cls) -> set[str]:
    """Keyword options of a source class, less the spec-derived first argument."""
    return set(inspect.signature(cls.__init__).parameters) - {"self", "path", "spec", "url", "device"}


def open_source(spec: str, **options) -> FrameSource:
    """Build (not yet open) the source for ``spec``; use it as a context manager.

    ``options`` are constructor arguments (``width``, ``fps``, ``size``, ``lores``, ``api_preference``,
    ``picamera2_cls``...). An option that the chosen source does not take but another does (``fps`` for a
    video file) is ignored; an option that no source takes is a UsageError.
    """
    known = set().union(*(_options_of(c) for c in SOURCES.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown source option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    kind = source_kind(spec)
    cls = SOURCES[kind]
    accepted = _options_of(cls)
    kwargs = {k: v for k, v in options.items() if k in accepted}
    ignored = sorted(set(options) - accepted)
    if ignored:
        log.debug("%s source ignores option(s) %s", kind, ", ".join(ignored))
    s = str(spec).strip()
    if kind == "usb":
        return cls(int(s) if s.isdigit() else s, **kwargs)
    if kind == "picamera":
        return cls(**kwargs)
    return cls(s, **kwargs)
