"""What every frame source yields and shares: :class:`Frame`, the :class:`FrameSource` protocol and the
base class of the sources in edge.sources and edge.picamera."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame. ``image`` is BGR uint8 HxWx3; ``grey`` is a detector-size grey plane when the source
    has one for free (the Pi camera's lores Y plane); ``path`` is the file an image source read."""

    image: np.ndarray
    timestamp: float
    index: int
    grey: np.ndarray | None = None
    path: str | None = None


@runtime_checkable
class FrameSource(Protocol):
    name: str
    fps: float | None

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc) -> None: ...

    def __iter__(self) -> Iterator[Frame]: ...


class _Source:
    """Shared plumbing: idempotent open, context manager, iteration opens on demand."""

    name: str = ""
    fps: float | None = None

    def __init__(self) -> None:
        self._opened = False

    def open(self) -> None:
        if not self._opened:
            self._open()
            self._opened = True

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._close()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        self.open()
        return self._frames()

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


