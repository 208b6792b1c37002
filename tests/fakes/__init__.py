"""Test doubles and recorded inputs.

``fakes.picamera2`` is a fake of the picamera2 API. The helpers here write short real video clips
whose frames carry their own index in a strip of black/white blocks, which survives MJPG and JPEG
compression, so a test can tell which frame of a clip a saved image came from.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TESTS = Path(__file__).resolve().parent.parent
ASTRONAUT = TESTS / "data" / "photos" / "skimage_astronaut.png"

INDEX_BITS = 10
_BLOCK = 16  # block side in pixels; a 320-pixel-wide frame holds the 10 blocks with gaps


def base_image(size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A face picture at ``size`` (w, h): the astronaut photo when the repo has it, else a drawn face."""
    w, h = size
    if ASTRONAUT.is_file():
        img = cv2.imread(str(ASTRONAUT), cv2.IMREAD_COLOR)
        if img is not None:
            return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = np.linspace(40, 200, w, dtype=np.uint8)[None, :, None]
    c = (w // 2, h // 2)
    cv2.ellipse(img, c, (w // 6, h // 4), 0, 0, 360, (120, 160, 220), -1)
    for dx in (-w // 14, w // 14):
        cv2.circle(img, (c[0] + dx, c[1] - h // 14), max(2, w // 60), (30, 30, 30), -1)
    cv2.ellipse(img, (c[0], c[1] + h // 10), (w // 16, h // 30), 0, 0, 180, (40, 40, 120), 3)
    return img


def indexed_frame(base: np.ndarray, index: int) -> np.ndarray:
    """A copy of ``base`` with ``index`` written as INDEX_BITS blocks along the bottom edge."""
    img = base.copy()
    h = img.shape[0]
    for bit in range(INDEX_BITS):
        x = 4 + bit * (_BLOCK + 4)
        value = 255 if (index >> bit) & 1 else 0
        img[h - _BLOCK - 4 : h - 4, x : x + _BLOCK] = value
    return img


def frame_index(image: np.ndarray) -> int:
    """Read back the index written by :func:`indexed_frame` (after lossy compression too)."""
    h = image.shape[0]
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    index = 0
    for bit in range(INDEX_BITS):
        x = 4 + bit * (_BLOCK + 4)
        centre = grey[h - _BLOCK : h - 8, x + 4 : x + _BLOCK - 4]
        if centre.mean() > 127:
            index |= 1 << bit
    return index


def clip_frames(n_frames: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    base = base_image(size)
    return [indexed_frame(base, i) for i in range(n_frames)]


def write_clip(path: str | Path, n_frames: int, fps: float = 15, size: tuple[int, int] = (320, 240),
               fourcc: str = "MJPG") -> Path:
    """Write an AVI clip of ``n_frames`` indexed frames; returns its path."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path} with fourcc {fourcc}")
    try:
        for frame in clip_frames(n_frames, size):
            writer.write(frame)
    finally:
        writer.release()
    return path
