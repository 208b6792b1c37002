"""Read any image file into 8-bit BGR, or say in one line why it cannot be used.

``read_image(path)`` opens the file without blocking (a FIFO never hangs the batch) and refuses anything
that is not a regular file; it reads the first 64 KiB, probes the header (:mod:`ferlite.edge.imagefiles.probe`)
and refuses a format OpenCV should not decode or a size over ``max_pixels`` before reading the rest, and
never reads more than ``max_bytes``. ``decode_image(data)`` probes again, checks that the data can hold what
the header claims (truncated files, lying headers), decodes straight to 8-bit BGR (so a 16-bit RGBA file
costs no more memory than an 8-bit one) with whatever the native decoders print caught
(:mod:`ferlite.edge.imagefiles.decodelog`): a libjpeg or libpng complaint about the data becomes the reason the
image is refused, and nothing reaches the terminal. Every failure is an ImageReadError with a one-line reason.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ferlite.edge.imagefiles.decodelog import clean, native_output
from ferlite.edge.imagefiles.headers import FORMAT_NAMES, ImageInfo
from ferlite.edge.imagefiles.probe import check_data, probe
from ferlite.errors import ImageReadError

#: Images above this many pixels are refused (a 50 MP photo is ~150 MB decoded).
DEFAULT_MAX_PIXELS = 50_000_000
#: Files above this many bytes are refused (a 50 MP uncompressed 8-bit RGBA TIFF or BMP is 200 MB).
DEFAULT_MAX_BYTES = 200_000_000
#: Bytes read, and probed, before the rest of a file.
HEAD_BYTES = 1 << 16
#: libjpeg's and libpng's complaints that mean the pixels are not all in the file (the decoders fill the rest
#: with grey and go on); other warnings (extraneous bytes between markers, an odd ICC profile) are harmless.
FATAL = re.compile(r"premature end|corrupt jpeg data(?!: \d+ extraneous bytes)|crc error|incorrect data check|"
                   r"invalid (distance|code|block type|stored block|literal)|not enough image data|read error|"
                   r"decompression error", re.I)
HARMLESS = re.compile(r"extraneous bytes|Invalid SOS parameters|iCCP|sRGB|Unknown Adobe|Inconsistent progression")


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


def check_size(info: ImageInfo, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """ImageReadError when the header's size is empty or over ``max_pixels``."""
    if info.width <= 0 or info.height <= 0:
        raise ImageReadError(f"bad image size in the header ({info.width}x{info.height})")
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise ImageReadError(f"too large: {info.width}x{info.height} ({pixels / 1e6:.0f} MP) is over the "
                             f"{max_pixels / 1e6:.0f} MP limit")


def _notes(info: ImageInfo) -> str:
    notes = ["16-bit scaled to 8-bit"] * (info.depth > 8) + ["alpha channel dropped"] * info.alpha
    return "; ".join(notes + ["palette image converted to BGR"] * info.palette)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode bytes into 8-bit BGR; raises ImageReadError with a one-line reason."""
    import cv2
    import numpy as np

    if len(data) == 0:
        raise ImageReadError("0-byte file")
    info = probe(data)
    check_size(info, max_pixels)
    check_data(info, data)
    kind = FORMAT_NAMES[info.format]
    # IMREAD_COLOR: 8-bit BGR whatever the file holds (16-bit, alpha, palette, grey), EXIF orientation applied.
    with native_output() as said:
        try:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            said.append(clean(str(exc).strip().splitlines()[-1]))
            img = None
    fatal = [line for line in said if FATAL.search(line)]
    if fatal or img is None:  # the decoder's own complaint, else OpenCV's reason (logged last)
        telling = fatal or [line for line in said if not HARMLESS.search(line)]
        detail = re.sub(r"^Corrupt JPEG data: ", "", telling[-1] if telling else "")
        raise ImageReadError(f"corrupt {kind}: {detail}" if detail else f"corrupt {kind} (OpenCV could not decode it)")
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.size == 0:
        raise ImageReadError(f"corrupt {kind} (decoded to {img.dtype} {img.shape})")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageReadError(f"too large: {img.shape[1]}x{img.shape[0]}")
    return LoadedImage(np.ascontiguousarray(img), _notes(info))


def _open(path: str | Path) -> int:
    """A file descriptor for reading ``path``, opened without blocking; ImageReadError naming why not."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError("symbolic link loop (too many levels of symbolic links)") from None
        if exc.errno == errno.ENOENT:
            raise ImageReadError("broken symbolic link" if os.path.islink(path) else "file not found") from None
        if exc.errno == errno.EISDIR:
            raise ImageReadError("is a directory") from None
        raise ImageReadError(f"cannot read file: {exc.strerror or exc}") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a file"


def read_bytes(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """The bytes of an image file, read only once its first 64 KiB show a format ferlite decodes at a size
    within ``max_pixels``, and never more than ``max_bytes``; ImageReadError with a one-line reason."""
    fd = _open(path)
    try:
        size = os.fstat(fd)
        if stat.S_ISDIR(size.st_mode) or not stat.S_ISREG(size.st_mode):
            os.close(fd)
            raise ImageReadError("is a directory" if stat.S_ISDIR(size.st_mode)
                                 else f"not a regular file ({_kind(size.st_mode)})")
        with os.fdopen(fd, "rb") as f:
            head = f.read(HEAD_BYTES)
            if not head:
                raise ImageReadError("0-byte file")
            info = probe(head, partial=len(head) == HEAD_BYTES)
            if info is not None:
                check_size(info, max_pixels)
            if size.st_size > max_bytes:
                raise ImageReadError(f"too large: a {size.st_size / 1e6:.0f} MB file is over the "
                                     f"{max_bytes / 1e6:.0f} MB limit")
            data = head + f.read(max(0, size.st_size - len(head)) + 1)
            if len(data) > size.st_size:  # it grew since fstat: read on, up to the limit
                data += f.read(max_bytes + 1 - len(data))
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImageReadError(f"too large: the file is over the {max_bytes / 1e6:.0f} MB limit")
    return data


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedImage:
    """Read a file into 8-bit BGR; raises ImageReadError with a one-line reason."""
    return decode_image(read_bytes(path, max_bytes, max_pixels), max_pixels)


def reason_kind(reason: str) -> str:
    """A reason without its particulars, to count reasons by kind: ``truncated JPEG (no end-of-image marker)``
    -> ``truncated JPEG``, ``cannot read file: Permission denied`` -> ``cannot read file``."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip()
