"""The sources that read through one cv2.VideoCapture: video files, USB cameras and network streams."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2

from ferlite.edge.sources.frames import Frame, _bgr, _Source
from ferlite.errors import SourceError
from ferlite.redact import redact

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg"})


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
