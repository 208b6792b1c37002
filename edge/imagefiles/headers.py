"""What every header parser shares: the :class:`ImageInfo` a header gives, and reading fields safely.

A parser that runs out of data raises :class:`ShortHeader` (``probe`` turns it into "truncated ..." or, for
the first bytes of a file that goes on, into "read more"); any other problem is an ImageReadError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ferlite.errors import ImageReadError

#: How reasons name each format ferlite decodes.
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "bmp": "BMP", "webp": "WebP", "tiff": "TIFF",
                "pnm": "PNM", "pam": "PAM"}


@dataclass(frozen=True)
class ImageInfo:
    """What a header says: format, size, and what decoding to 8-bit BGR will convert."""

    format: str
    width: int
    height: int
    palette: bool = False
    depth: int = 8  # bits per sample
    alpha: bool = False


class ShortHeader(Exception):
    """The data ended inside a header."""


def unpack(fmt: str, data: bytes, at: int) -> tuple:
    """``struct.unpack`` of ``fmt`` at offset ``at``; ShortHeader when ``data`` ends first."""
    end = at + struct.calcsize(fmt)
    if at < 0 or end > len(data):
        raise ShortHeader
    return struct.unpack(fmt, data[at:end])


def lying(info: ImageInfo, nbytes: int) -> ImageReadError:
    """The error for a header that claims more pixels than ``nbytes`` of data can hold."""
    return ImageReadError(f"corrupt {FORMAT_NAMES[info.format]}: {nbytes} bytes of image data cannot hold "
                          f"{info.width}x{info.height} (the header claims more than the file has)")
