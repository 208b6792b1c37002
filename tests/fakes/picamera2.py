"""A fake of the parts of picamera2 that ferlite uses, faithful to its signatures and rules.

picamera2 comes from the Raspberry Pi apt repository and cannot be installed here, so tests use this.
Mirrored from raspberrypi/picamera2 (see /work/shared/notes/pi-and-systemd.md, section 3):

* ``Picamera2(camera_num=0)``, ``Picamera2.global_camera_info()`` (a list of dicts, empty with no camera),
  context manager, ``configure``/``start``/``stop``/``close``.
* ``create_video_configuration(...)`` with the real defaults (main XBGR8888 1280x720, lores YUV420 at the
  main size when given, ``FrameDurationLimits`` 33333 us).
* VC4 (Pi 0-4): ``RuntimeError("lores stream must be YUV")``; lores may not be larger than main.
* ``capture_request()`` -> a request with ``make_array(name)``, ``get_metadata()``, ``release()``; a
  released request cannot be used. Array layouts: RGB888 is B,G,R bytes; BGR888 is R,G,B; XRGB8888 is
  B,G,R,255; XBGR8888 is R,G,B,255; YUV420 is I420 of shape (h*3/2, stride), Y plane in ``[:h, :w]``,
  with the stride padded to a multiple of 64 like the hardware. Y is limited ("video") range 16-235,
  like the Pi's Rec709/SMPTE170M lores stream, not the full range of cv2.COLOR_BGR2GRAY.

Where real picamera2 would block (every buffer held by unreleased requests) the fake raises, so a leak
fails a test instead of hanging it. Frames come from a video file or a list of BGR images, looped forever
like a camera; the "ISP" scales each one to every stream's size.

Use :func:`make_picamera2` to get a class bound to given frames and cameras.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DEFAULT_CAMERAS = ({"Model": "imx708", "Location": 2, "Rotation": 180,
                    "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a", "Num": 0},)
YUV_FORMATS = frozenset({"YUV420", "YVU420", "NV12", "NV21", "YUYV", "YVYU", "UYVY", "VYUY"})
STRIDE_ALIGN = 64


def _stride(width: int) -> int:
    return -(-width // STRIDE_ALIGN) * STRIDE_ALIGN


def _load_frames(frames) -> list[np.ndarray]:
    if frames is None:
        h, w = 480, 640
        ramp = np.linspace(0, 255, w, dtype=np.uint8)
        return [np.dstack([np.roll(ramp, 8 * i)[None, :].repeat(h, 0)] * 3) for i in range(8)]
    if isinstance(frames, (str, Path)):
        cap = cv2.VideoCapture(str(frames))
        out = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            out.append(img)
        cap.release()
        if not out:
            raise RuntimeError(f"fake picamera2: no frames in {frames}")
        return out
    out = [np.asarray(f, np.uint8) for f in frames]
    if not out or any(f.ndim != 3 or f.shape[2] != 3 for f in out):
        raise ValueError("fake picamera2: frames must be a non-empty list of HxWx3 BGR images")
    return out


def yuv420_buffer(bgr: np.ndarray) -> np.ndarray:
    """A BGR image as picamera2 returns a YUV420 stream: I420 planes with padded rows, shape (h*3/2, stride)."""
    h, w = bgr.shape[:2]
    if w % 2 or h % 2:
        raise RuntimeError(f"YUV420 needs even dimensions, got {w}x{h}")
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).ravel()
    stride = _stride(w)
    y = np.zeros((h, stride), np.uint8)
    y[:, :w] = i420[: w * h].reshape(h, w)
    chroma = []
    for k in range(2):
        plane = i420[w * h + k * (w * h // 4) : w * h + (k + 1) * (w * h // 4)].reshape(h // 2, w // 2)
        padded = np.zeros((h // 2, stride // 2), np.uint8)
        padded[:, : w // 2] = plane
        chroma.append(padded.ravel())
    return np.concatenate([y.ravel(), *chroma]).reshape(h * 3 // 2, stride)


def _render(bgr: np.ndarray, stream: dict) -> np.ndarray:
    w, h = stream["size"]
    img = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA) if bgr.shape[:2] != (h, w) else bgr.copy()
    fmt = stream["format"]
    if fmt == "RGB888":
        return img
    if fmt == "BGR888":
        return np.ascontiguousarray(img[:, :, ::-1])
    if fmt in ("XRGB8888", "XBGR8888"):
        px = img if fmt == "XRGB8888" else img[:, :, ::-1]
        return np.dstack([px, np.full((h, w), 255, np.uint8)])
    if fmt == "YUV420":
        return yuv420_buffer(img)
    raise RuntimeError(f"fake picamera2: format {fmt} is not simulated")


class CompletedRequest:
    """A captured request: arrays from one sensor frame, valid until ``release()``."""

    def __init__(self, picam2: Picamera2, frame: np.ndarray, metadata: dict):
        self.picam2 = picam2
        self._frame = frame
        self._metadata = metadata
        self._released = False

    def _check(self) -> None:
        if self._released:
            raise RuntimeError("request used after release()")

    def make_array(self, name: str) -> np.ndarray:
        self._check()
        stream = self.picam2.camera_config.get(name)
        if stream is None:
            raise KeyError(f"no stream named {name!r} in the configuration")
        return _render(self._frame, stream)

    def get_metadata(self) -> dict:
        self._check()
        return dict(self._metadata)

    def release(self) -> None:
        self._check()
        self._released = True
        self.picam2._outstanding -= 1


class Picamera2:
    """Fake ``picamera2.Picamera2``. Subclass with :func:`make_picamera2` to choose frames and cameras."""

    cameras: tuple[dict, ...] = DEFAULT_CAMERAS
    frames = None  # a video path, a list of BGR images, or None for a moving ramp
    platform = "vc4"  # "vc4" (Pi 0-4) enforces YUV lores; "pisp" (Pi 5) does not
    instances: list[Picamera2] = []

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [dict(c) for c in Picamera2.cameras]

    def __init__(self, camera_num: int = 0):
        if camera_num >= len(self.global_camera_info()):
            raise IndexError("list index out of range")
        self.camera_num = camera_num
        self.camera_config: dict | None = None
        self.started = False
        self.closed = False
        self.frame_number = 0
        self._outstanding = 0
        self._frames = _load_frames(type(self).frames)
        type(self).instances.append(self)

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def outstanding_requests(self) -> int:
        return self._outstanding

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,  # noqa: B006
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,  # noqa: B006
                                   sensor={}, use_case="video") -> dict:  # noqa: B006
        main = {"format": "XBGR8888", "size": (1280, 720), **main}
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"], **lores}
        controls = {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333), **controls}
        return {"use_case": use_case, "transform": transform, "colour_space": colour_space,
                "buffer_count": buffer_count, "queue": queue, "main": main, "lores": lores, "raw": dict(raw),
                "controls": controls, "sensor": dict(sensor), "display": display,
                "encode": encode}

    def create_preview_configuration(self, main={}, lores=None, buffer_count=4, controls={},  # noqa: B006
                                     queue=True) -> dict:  # noqa: B006
        main = {"format": "XBGR8888", "size": (640, 480), **main}
        return self.create_video_configuration(main=main, lores=lores, buffer_count=buffer_count,
                                               controls=controls, queue=queue, use_case="preview")

    def configure(self, config: dict) -> None:
        if self.closed:
            raise RuntimeError("Camera is closed")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main, lores = config["main"], config.get("lores")
        if lores is not None:
            if self.platform == "vc4" and lores["format"] not in YUV_FORMATS:
                raise RuntimeError("lores stream must be YUV")
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        if config.get("buffer_count", 1) < 1:
            raise RuntimeError("buffer_count must be at least 1")
        self.camera_config = config

    def start(self) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.closed = True

    def _frame_duration_us(self) -> float:
        controls = self.camera_config["controls"]
        if "FrameRate" in controls:
            return 1e6 / controls["FrameRate"]
        return float(controls["FrameDurationLimits"][0])

    def capture_request(self, flush=False) -> CompletedRequest:
        if not self.started:
            raise RuntimeError("Camera is not running")
        if self._outstanding >= self.camera_config["buffer_count"]:
            raise RuntimeError(f"all {self._outstanding} buffers are held by unreleased requests")
        frame = self._frames[self.frame_number % len(self._frames)]
        duration = self._frame_duration_us()
        metadata = {"SensorTimestamp": int(self.frame_number * duration * 1000), "FrameDuration": int(duration)}
        self.frame_number += 1
        self._outstanding += 1
        return CompletedRequest(self, frame, metadata)

    def capture_array(self, name: str = "main") -> np.ndarray:
        request = self.capture_request()
        try:
            return request.make_array(name)
        finally:
            request.release()


def make_picamera2(frames=None, cameras=DEFAULT_CAMERAS, platform: str = "vc4") -> type[Picamera2]:
    """A Picamera2 class whose cameras show ``frames`` (video path or list of BGR images)."""
    camera_list = tuple(dict(c) for c in cameras)

    class FakePicamera2(Picamera2):
        @staticmethod
        def global_camera_info() -> list[dict]:
            return [dict(c) for c in camera_list]

    FakePicamera2.cameras = camera_list
    FakePicamera2.frames = frames
    FakePicamera2.platform = platform
    FakePicamera2.instances = []
    return FakePicamera2
