"""The Raspberry Pi camera as a frame source, through picamera2 (libcamera).

picamera2 is imported when the camera is opened, not with this module, so the rest of the package runs on
machines without it; a missing picamera2 is a SourceError that says how to install it. ``edge.sources``
finds this source by name (``open_source("picamera")``) and imports this module on first use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ferlite.edge.sources.frames import Frame, _bgr, _Source
from ferlite.errors import SourceError

PICAMERA2_MISSING = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages"
)


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise SourceError(PICAMERA2_MISSING) from exc
    return Picamera2


class PiCameraSource(_Source):
    """The Raspberry Pi camera through picamera2. ``main`` (RGB888, which is B,G,R bytes: OpenCV's
    order) is the image; the ISP also scales a YUV420 ``lores`` stream whose Y plane is ``Frame.grey``,
    at the detector's input size. Both arrays come from the same sensor frame."""

    def __init__(self, size: tuple[int, int] = (640, 480), lores: tuple[int, int] | None = (320, 240),
                 fps: float = 30, camera_num: int = 0, picamera2_cls=None):
        super().__init__()
        self.size = tuple(size)
        self.lores = tuple(lores) if lores else None
        self.fps = float(fps)
        self.camera_num = camera_num
        self.name = f"picamera{camera_num}"
        self._cls = picamera2_cls
        self._cam = None
        self._t0 = 0.0

    def _open(self) -> None:
        cls = self._cls or _import_picamera2()
        cameras = cls.global_camera_info()
        if not cameras:
            raise SourceError("no camera found by libcamera: check the ribbon cable and `rpicam-hello --list-cameras`")
        if self.camera_num >= len(cameras):
            raise SourceError(f"no camera {self.camera_num}: libcamera found {len(cameras)}")
        cam = cls(self.camera_num)
        try:
            streams = {"main": {"format": "RGB888", "size": self.size}}
            if self.lores:
                streams["lores"] = {"format": "YUV420", "size": self.lores}
            config = cam.create_video_configuration(**streams, buffer_count=4, queue=False,
                                                    controls={"FrameRate": self.fps})
            cam.configure(config)
            cam.start()
        except RuntimeError as exc:
            cam.close()
            raise SourceError(f"{self.name}: cannot configure {self.size} main / {self.lores} lores: {exc}") from exc
        self._cam = cam
        self._t0 = time.monotonic()

    def _close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()

    def _frames(self) -> Iterator[Frame]:
        index = 0
        while self._cam is not None:
            req = self._cam.capture_request()
            try:
                main = req.make_array("main")
                lo = req.make_array("lores") if self.lores else None
            finally:
                req.release()
            grey = None
            if lo is not None:
                w, h = self.lores
                grey = np.ascontiguousarray(lo[:h, :w])  # Y plane of the strided YUV420 buffer
            yield Frame(_bgr(main), time.monotonic() - self._t0, index, grey=grey)
            index += 1
