"""Read any image file into 8-bit BGR, or say in one line why it cannot be used.

The header is checked before decoding so that a 20000x20000 file is refused without allocating
1.2 GB, and truncated JPEG/PNG files are caught (OpenCV would decode them with a grey tail).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ferlite.errors import ImageReadError

#: Images above this many pixels are refused (a 50 MP photo is ~150 MB decoded).
DEFAULT_MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    palette: bool = False


@dataclass(frozen=True)
class LoadedImage:
    """An 8-bit BGR image and a note on any conversion made to get it ('' when none)."""

    image: np.ndarray
    note: str = ""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _png_info(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageReadError("truncated PNG (no IHDR header)")
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    return ImageInfo("png", width, height, palette=colour == 3)


def _jpeg_info(data: bytes) -> ImageInfo:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (seglen,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and i + 9 <= n:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return ImageInfo("jpeg", width, height)
        i += 2 + seglen
    raise ImageReadError("truncated JPEG (no frame header)")


def probe(data: bytes) -> ImageInfo | None:
    """Format and size from the header, or None for formats we do not parse (OpenCV may still read them)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_info(data)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_info(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return ImageInfo("gif", width, height, palette=True)
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return ImageInfo("bmp", abs(width), abs(height))
    return None


def _check_complete(info: ImageInfo | None, data: bytes) -> None:
    if info is None:
        return
    if info.format == "jpeg" and b"\xff\xd9" not in data[-4096:]:
        raise ImageReadError("truncated JPEG (no end-of-image marker)")
    if info.format == "png" and b"IEND" not in data[-64:]:
        raise ImageReadError("truncated PNG (no IEND chunk)")


def _to_bgr8(img: np.ndarray, info: ImageInfo | None) -> LoadedImage:
    import cv2
    import numpy as np

    notes = []
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
        notes.append("16-bit scaled to 8-bit")
    elif img.dtype != np.uint8:
        raise ImageReadError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        notes.append("alpha channel dropped")
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if info is not None and info.palette:
        notes.append("palette image converted to BGR")
    return LoadedImage(np.ascontiguousarray(img), "; ".join(notes))


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode bytes into 8-bit BGR; raises ImageReadError with a one-line reason."""
    import cv2
    import numpy as np

    if len(data) == 0:
        raise ImageReadError("0-byte file")
    info = probe(data)
    if info is not None:
        if info.width <= 0 or info.height <= 0:
            raise ImageReadError(f"bad image size {info.width}x{info.height} in the header")
        pixels = info.width * info.height
        if pixels > max_pixels:
            raise ImageReadError(
                f"too large: {info.width}x{info.height} ({pixels / 1e6:.0f} MP) is over the "
                f"{max_pixels / 1e6:.0f} MP limit"
            )
    _check_complete(info, data)
    buf = np.frombuffer(data, np.uint8)
    # JPEG is always 8-bit: IMREAD_COLOR also applies the EXIF orientation.
    flags = cv2.IMREAD_COLOR if info is not None and info.format == "jpeg" else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageReadError(f"OpenCV could not decode it: {str(exc).strip().splitlines()[-1]}") from None
    if img is None:
        if info is None:
            raise ImageReadError("not an image (unrecognised file format)")
        raise ImageReadError(f"corrupt {info.format.upper()} (OpenCV could not decode it)")
    if img.size == 0:
        raise ImageReadError("empty image")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageReadError(f"too large: {img.shape[1]}x{img.shape[0]}")
    return _to_bgr8(img, info)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read a file into 8-bit BGR; raises ImageReadError with a one-line reason."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ImageReadError("is a directory") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror or exc}") from None
    return decode_image(data, max_pixels)
