"""Frame sources by kind: the Pi camera (edge.sources.picamera), USB cameras, video files and network streams
(edge.sources.capture) and image files (edge.sources.images).

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
import re
from pathlib import Path

from ferlite.edge.sources.capture import VIDEO_EXTENSIONS, StreamSource, UsbCameraSource, VideoFileSource
from ferlite.edge.sources.frames import FrameSource
from ferlite.edge.sources.images import ImageSource
from ferlite.edge.sources.listing import IMAGE_EXTENSIONS
from ferlite.edge.sources.picamera import PiCameraSource
from ferlite.errors import SourceError, UsageError

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
PICAMERA_NAMES = frozenset({"picamera", "picam"})

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
