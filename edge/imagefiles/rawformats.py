"""Header parsers of the formats that store many pixels per byte of header: TIFF, PNM (PBM, PGM, PPM) and PAM.

Each ``*_info`` gives the :class:`ImageInfo` of a header and each ``*_check`` rejects data too short for the
size the header claims: a TIFF strip or tile that ends past the end of the file, uncompressed strips that
add up to less than the pixels need, PNM or PAM pixel data shorter than width x height samples.
"""

from __future__ import annotations

import re
import struct

from ferlite.edge.imagefiles.headers import ImageInfo, ShortHeader, lying, unpack
from ferlite.errors import ImageReadError

#: TIFF field types: size in bytes and struct code of the integer ones.
TIFF_TYPES = {1: (1, "B"), 3: (2, "H"), 4: (4, "I"), 6: (1, "b"), 8: (2, "h"), 9: (4, "i"), 13: (4, "I"),
              16: (8, "Q"), 17: (8, "q"), 18: (8, "Q")}
#: Most entries in one IFD, and most values of one tag (a 50 MP image in one-row strips has 7,000).
MAX_TIFF_ENTRIES = 4096
MAX_TIFF_VALUES = 1 << 20
_PNM_NUMBER = re.compile(rb"(?:\s|#[^\n\r]*)*(\d{1,10})(?=\s|#)")
_PNM_UNFINISHED = re.compile(rb"(?:\s|#[^\n\r]*)*\d{0,10}")


class _Ifd:
    """The first image file directory of a TIFF (or BigTIFF): tag -> (type, count, value field offset)."""

    def __init__(self, data: bytes):
        self.data = data
        self.order = "<" if data[:2] == b"II" else ">"
        big = data[2:4] in (b"+\x00", b"\x00+")
        count_fmt, entry_fmt, self.inline = ("Q", "HHQ", 8) if big else ("H", "HHI", 4)
        (offset,) = unpack(self.order + ("Q" if big else "I"), data, 8 if big else 4)
        (n,) = unpack(self.order + count_fmt, data, offset)
        if not 0 < n <= MAX_TIFF_ENTRIES:
            raise ImageReadError(f"corrupt TIFF (a directory of {n} entries)")
        size = struct.calcsize(self.order + entry_fmt) + self.inline
        first = offset + struct.calcsize(count_fmt)
        unpack(f"{size * n}s", data, first)
        self.entries = {}
        for k in range(n):
            at = first + k * size
            tag, kind, count = unpack(self.order + entry_fmt, data, at)
            self.entries.setdefault(tag, (kind, count, at + size - self.inline))

    def values(self, tag: int, default: list[int] | None = None) -> list[int]:
        """The integer values of ``tag``; ``default`` when absent (ImageReadError when there is none)."""
        if tag not in self.entries:
            if default is None:
                raise ImageReadError(f"corrupt TIFF (no tag {tag})")
            return default
        kind, count, field = self.entries[tag]
        if kind not in TIFF_TYPES or not 0 < count <= MAX_TIFF_VALUES:
            raise ImageReadError(f"corrupt TIFF (tag {tag} has {count} values of type {kind})")
        size, code = TIFF_TYPES[kind]
        at = field
        if count * size > self.inline:
            (at,) = unpack(self.order + ("Q" if self.inline == 8 else "I"), self.data, field)
        return list(unpack(f"{self.order}{count}{code}", self.data, at))


def _tiff_info(data: bytes) -> ImageInfo:
    ifd = _Ifd(data)
    width, height = ifd.values(256)[0], ifd.values(257)[0]
    bits, samples = ifd.values(258, [1])[0], ifd.values(277, [1])[0]
    extra = 338 in ifd.entries or samples in (2, 4) and ifd.values(262, [2])[0] != 5
    return ImageInfo("tiff", width, height, palette=ifd.values(262, [1])[0] == 3, depth=bits, alpha=extra)


def _tiff_check(info: ImageInfo, data: bytes) -> None:
    ifd = _Ifd(data)
    tiled = 324 in ifd.entries
    offsets, counts = ifd.values(324 if tiled else 273), ifd.values(325 if tiled else 279)
    if len(offsets) != len(counts):
        raise ImageReadError(f"corrupt TIFF ({len(offsets)} strip offsets, {len(counts)} byte counts)")
    end = max(o + c for o, c in zip(offsets, counts))
    if end > len(data):
        raise ImageReadError(f"truncated TIFF (image data runs to byte {end}, the file has {len(data)})")
    if ifd.values(259, [1])[0] == 1:  # uncompressed
        samples = ifd.values(277, [1])[0]
        need = info.width * info.height * samples * max(1, info.depth) // 8
        if sum(counts) < need:
            raise lying(info, sum(counts))


def _pnm_tokens(data: bytes, count: int) -> tuple[list[int], int]:
    """The first ``count`` header numbers after the magic, and the offset of the pixel data."""
    numbers, i = [], 2
    while len(numbers) < count:
        m = _PNM_NUMBER.match(data, i)
        if m is None:
            if _PNM_UNFINISHED.fullmatch(data, i):  # the data ends inside the header (no copy of a big file)
                raise ShortHeader
            raise ImageReadError("corrupt PNM (a header value that is not a number)")
        numbers.append(int(m.group(1)))
        i = m.end()
    if i >= len(data):
        raise ShortHeader
    return numbers, i + 1


def _pnm_info(data: bytes) -> ImageInfo:
    kind = data[1] - ord("0")
    bitmap = kind in (1, 4)
    numbers, _ = _pnm_tokens(data, 2 if bitmap else 3)
    maxval = 1 if bitmap else numbers[2]
    if not 0 < maxval < 65536:
        raise ImageReadError(f"corrupt PNM (maximum value {maxval})")
    return ImageInfo("pnm", numbers[0], numbers[1], depth=16 if maxval > 255 else 8)


def _pnm_check(info: ImageInfo, data: bytes) -> None:
    kind = data[1] - ord("0")
    _, start = _pnm_tokens(data, 2 if kind in (1, 4) else 3)
    samples = info.width * info.height * (3 if kind in (3, 6) else 1)
    need = {1: samples, 2: 2 * samples - 1, 3: 2 * samples - 1, 4: -(-info.width // 8) * info.height,
            5: samples * info.depth // 8, 6: samples * info.depth // 8}[kind]
    if len(data) - start < need:
        raise lying(info, len(data) - start)


def _pam_header(data: bytes) -> tuple[dict[str, int], int]:
    end = re.search(rb"(?m)^ENDHDR[ \t\r]*\n", data[:8192])
    if end is None:
        raise ShortHeader if len(data) < 8192 else ImageReadError("corrupt PAM (no ENDHDR)")
    fields = {k.decode(): int(v) for k, v in re.findall(rb"(?m)^(WIDTH|HEIGHT|DEPTH|MAXVAL)[ \t]+(\d{1,10})",
                                                     data[:end.start()])}
    if set(fields) != {"WIDTH", "HEIGHT", "DEPTH", "MAXVAL"} or not 0 < fields["MAXVAL"] < 65536:
        raise ImageReadError("corrupt PAM (WIDTH, HEIGHT, DEPTH and MAXVAL needed)")
    return fields, end.end()


def _pam_info(data: bytes) -> ImageInfo:
    f, _ = _pam_header(data)
    return ImageInfo("pam", f["WIDTH"], f["HEIGHT"], depth=16 if f["MAXVAL"] > 255 else 8,
                     alpha=f["DEPTH"] in (2, 4))


def _pam_check(info: ImageInfo, data: bytes) -> None:
    f, start = _pam_header(data)
    need = info.width * info.height * f["DEPTH"] * info.depth // 8
    if len(data) - start < need:
        raise lying(info, len(data) - start)


RAW_PROBES = {"tiff": _tiff_info, "pnm": _pnm_info, "pam": _pam_info}
RAW_CHECKS = {"tiff": _tiff_check, "pnm": _pnm_check, "pam": _pam_check}
