"""Image headers: the format and size of an image from its bytes, before anything is decoded.

``probe(data)`` knows every format OpenCV's ``imdecode`` reads, by the signatures OpenCV checks. The formats
ferlite decodes (JPEG, PNG, GIF, BMP, WebP, TIFF, PNM and PAM) give an :class:`ImageInfo` with the size from
the header; the others (JPEG 2000, AVIF/HEIF, JPEG XL, OpenEXR, Radiance HDR, PFM, Sun raster) are refused,
because their decoders allocate more than the header says or give floating-point pixels, and anything else
is "not an image". Nothing else is ever handed to OpenCV, so the size limit guards every decode.

``check_data(info, data)`` then rejects files whose header claims more than the data holds: truncated
files (no JPEG end-of-image marker, no PNG IEND chunk, a RIFF or TIFF strip that ends past the end of the
file) and headers that lie (a 7000x7000 JPEG header over 20 KB of data: every 8x8 block of a Huffman-coded
JPEG costs at least one bit, and deflate expands at most 1032 times). Data after the end marker (the video
of a phone's motion photo, a trailer) is allowed. Every problem is an ImageReadError with a one-line reason.
"""

from __future__ import annotations

import re
import struct

from ferlite.edge.imagefiles.headers import FORMAT_NAMES, ImageInfo, ShortHeader, lying, unpack
from ferlite.edge.imagefiles.rawformats import RAW_CHECKS, RAW_PROBES
from ferlite.errors import ImageReadError

#: Signatures of formats OpenCV reads but ferlite refuses, and why.
REFUSED = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"), (b"\xff\x0a", "JPEG XL"),
    (b"\x76\x2f\x31\x01", "OpenEXR"), (b"#?RGBE", "Radiance HDR"), (b"#?RADIANCE", "Radiance HDR"),
    (b"\x59\xa6\x6a\x95", "Sun raster"), (b"PF", "PFM"), (b"Pf", "PFM"),
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Deflate's largest expansion (zlib's figure is 1032:1), with room to spare.
DEFLATE_MAX_RATIO = 1100
#: Huffman-coded SOF markers (baseline, extended, progressive, lossless; plain and differential).
HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})
ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: A marker inside entropy-coded data: 0xFF not followed by a stuffed 0x00, a restart marker or more fill.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def signature(data: bytes) -> str | None:
    """The format of ``data`` from its first bytes: a name ferlite decodes, or None for anything else
    (ImageReadError names a refused format)."""
    if data[:8] == PNG_SIGNATURE:
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if re.match(rb"P[1-6]\s", data[:3]):
        return "pnm"
    if re.match(rb"P7\s", data[:3]):
        return "pam"
    if data[4:8] == b"ftyp":
        raise ImageReadError("unsupported format: AVIF/HEIF (convert it to JPEG or PNG)")
    for magic, name in REFUSED:
        if data.startswith(magic):
            raise ImageReadError(f"unsupported format: {name} (convert it to JPEG or PNG)")
    return None


def probe(data: bytes, partial: bool = False) -> ImageInfo | None:
    """Format and size from the header; ImageReadError when the header is unusable or the format is not one
    ferlite decodes. With ``partial`` (``data`` is only the start of a file), None when the header goes on
    past it."""
    fmt = signature(data)
    if fmt is None:
        raise ImageReadError("not an image (unrecognised file format)")
    try:
        return _PROBES[fmt](data)
    except ShortHeader:
        if partial:
            return None
        raise ImageReadError(f"truncated {FORMAT_NAMES[fmt]} (the file ends inside its header)") from None


def check_data(info: ImageInfo, data: bytes) -> None:
    """ImageReadError when ``data`` cannot hold the image ``info`` describes (see the module docstring)."""
    check = _CHECKS.get(info.format)
    if check is None:
        return
    try:
        check(info, data)
    except ShortHeader:
        raise ImageReadError(f"truncated {FORMAT_NAMES[info.format]} (the file ends inside a header)") from None


# ------------------------------------------------------------------------------------------------ JPEG

def _jpeg_next(data: bytes, i: int) -> tuple[int, int]:
    """(marker, offset of its 0xFF) of the next marker at or after ``i``, skipping fill and stray bytes."""
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= len(data):
            raise ShortHeader
        if data[i + 1] not in (0xFF, 0x00):
            return data[i + 1], i
        i += 1


def _segment_end(data: bytes, at: int) -> int:
    (length,) = unpack(">H", data, at + 2)
    if length < 2:
        raise ImageReadError("corrupt JPEG (a segment length under 2)")
    return at + 2 + length


def _jpeg_info(data: bytes) -> ImageInfo:
    i = 2
    while True:
        marker, at = _jpeg_next(data, i)
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            i = at + 2
            continue
        if marker in (0xD9, 0xDA):
            raise ImageReadError("corrupt JPEG (no frame header before the image data)")
        if marker in HUFFMAN_SOF or marker in ARITHMETIC_SOF:
            depth, height, width, comps = unpack(">BHHB", data, at + 4)
            if comps == 0:
                raise ImageReadError("corrupt JPEG (a frame header with no components)")
            return ImageInfo("jpeg", width, height, depth=depth)
        i = _segment_end(data, at)


def _jpeg_check(info: ImageInfo, data: bytes) -> None:
    i, scanned, huffman = 2, 0, True
    while True:
        try:
            marker, at = _jpeg_next(data, i)
        except ShortHeader:
            raise ImageReadError("truncated JPEG (no end-of-image marker)") from None
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            i = at + 2
            continue
        huffman = huffman and marker not in ARITHMETIC_SOF
        i = _segment_end(data, at)
        if marker == 0xDA:  # the entropy-coded data runs to the next marker that is not a restart
            end = _SCAN_END.search(data, i)
            if end is None:
                raise ImageReadError("truncated JPEG (no end-of-image marker)")
            scanned += end.start() - i
            i = end.start()
    blocks = -(-info.width // 8) * -(-info.height // 8)
    if scanned == 0:
        raise ImageReadError("corrupt JPEG (no image data)")
    if huffman and scanned * 8 < blocks:
        raise lying(info, scanned)


# ------------------------------------------------------------------------------------------------ PNG

def _png_info(data: bytes) -> ImageInfo:
    if data[12:16] != b"IHDR" and len(data) >= 16:
        raise ImageReadError("corrupt PNG (no IHDR header)")
    width, height, depth, colour = unpack(">IIBB", data, 16)
    return ImageInfo("png", width, height, palette=colour == 3, depth=depth, alpha=colour in (4, 6))


def _png_check(info: ImageInfo, data: bytes) -> None:
    i, idat = 8, 0
    while True:
        if i + 8 > len(data):
            raise ImageReadError("truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        if length > 0x7FFFFFFF:
            raise ImageReadError("corrupt PNG (a chunk length over 2^31)")
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            idat += length
        i += 12 + length
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(unpack(">B", data, 25)[0], 4)
    raw = info.height * (1 + -(-info.width * channels * info.depth // 8))
    if idat * DEFLATE_MAX_RATIO < raw:
        raise lying(info, idat)


# ------------------------------------------------------------------------------------------------ GIF, BMP, WebP

def _gif_info(data: bytes) -> ImageInfo:
    width, height = unpack("<HH", data, 6)
    return ImageInfo("gif", width, height, palette=True)


def _gif_check(info: ImageInfo, data: bytes) -> None:
    """The blocks up to the end of the first image's data: it must fit in the screen and be complete."""
    (flags,) = unpack("<B", data, 10)
    i = 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)  # after the global colour table
    while True:
        (kind,) = unpack("<B", data, i)
        if kind == 0x21:  # extension: label, then sub-blocks
            i = _gif_sub_blocks(data, i + 2)
        elif kind == 0x2C:
            left, top, width, height, local = unpack("<HHHHB", data, i + 1)
            if left + width > info.width or top + height > info.height:
                raise ImageReadError(f"corrupt GIF (a {width}x{height} frame outside the {info.width}x"
                                     f"{info.height} screen)")
            i += 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0)
            _gif_sub_blocks(data, i + 1)
            return
        else:
            raise ImageReadError("corrupt GIF (no image before the end)")


def _gif_sub_blocks(data: bytes, i: int) -> int:
    while True:
        (size,) = unpack("<B", data, i)
        i += 1 + size
        if size == 0:
            return i


def _bmp_info(data: bytes) -> ImageInfo:
    (header,) = unpack("<I", data, 14)
    if header == 12:
        width, height, _planes, bits = unpack("<HHHH", data, 18)
    elif header >= 40:
        width, height, _planes, bits = unpack("<iiHH", data, 18)
    else:
        raise ImageReadError(f"corrupt BMP (an info header of {header} bytes)")
    return ImageInfo("bmp", width, abs(height), palette=bits <= 8, alpha=bits == 32)


def _bmp_check(info: ImageInfo, data: bytes) -> None:
    (offset,) = unpack("<I", data, 10)
    (header,) = unpack("<I", data, 14)
    bits = unpack("<H", data, 24 if header == 12 else 28)[0]
    compression = unpack("<I", data, 30)[0] if header >= 40 else 0
    if compression in (0, 3, 6):  # uncompressed rows (bit fields too)
        stride = (info.width * bits + 31) // 32 * 4
        if offset + stride * info.height > len(data):
            raise ImageReadError(f"truncated BMP ({info.width}x{info.height} needs "
                                 f"{offset + stride * info.height} bytes, the file has {len(data)})")


def _webp_info(data: bytes) -> ImageInfo:
    kind, _size = unpack("<4sI", data, 12)
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a" and len(data) >= 26:
            raise ImageReadError("corrupt WebP (no VP8 start code)")
        width, height = unpack("<HH", data, 26)
        return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        tag, bits = unpack("<BI", data, 20)
        if tag != 0x2F:
            raise ImageReadError("corrupt WebP (no VP8L signature)")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, alpha=bool(bits >> 28 & 1))
    if kind == b"VP8X":
        flags, w0, w1, h0, h1 = unpack("<B3xHBHB", data, 20)
        return ImageInfo("webp", 1 + w0 + (w1 << 16), 1 + h0 + (h1 << 16), alpha=bool(flags & 0x10))
    raise ImageReadError(f"corrupt WebP (unknown chunk {kind.decode('latin-1')!r})")


def _webp_check(info: ImageInfo, data: bytes) -> None:
    (size,) = unpack("<I", data, 4)
    if size + 8 > len(data):
        raise ImageReadError(f"truncated WebP (RIFF size {size + 8} bytes, the file has {len(data)})")


_PROBES = {"jpeg": _jpeg_info, "png": _png_info, "gif": _gif_info, "bmp": _bmp_info, "webp": _webp_info,
           **RAW_PROBES}
_CHECKS = {"jpeg": _jpeg_check, "png": _png_check, "gif": _gif_check, "bmp": _bmp_check, "webp": _webp_check,
           **RAW_CHECKS}
