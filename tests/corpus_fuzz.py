"""The malformed half of tests/corpus.py: small valid images of every format ferlite decodes, and what is
done to them (cut short, bits flipped, header fields set to extreme values, random bytes after a magic).

Every function takes a seeded ``random.Random`` and returns ``(name, data, expect, reason)`` tuples:
``expect`` is ``skipped`` (``reason`` is how the reason must start, or '' for any reason), or ``any`` where
the damage may leave a decodable image (a flipped bit in a pixel is not an error anyone can see).
"""

from __future__ import annotations

import random
import struct
import zlib

import cv2
import numpy as np

#: Encodings of a small picture in every format ferlite decodes: name -> (extension, OpenCV parameters).
FORMATS = {
    "jpg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85]),
    "progressive": (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "png": (".png", []),
    "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "webp_lossless": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
    "bmp": (".bmp", []),
    "tif": (".tif", []),
    "ppm": (".ppm", []),
    "pgm": (".pgm", []),
    "pbm": (".pbm", []),
    "pam": (".pam", []),
    "gif": (".gif", []),
    "tif_raw": (".tif", [cv2.IMWRITE_TIFF_COMPRESSION, 1]),
}
GREY = {"pgm", "pbm"}


def encode(image: np.ndarray, fmt: str) -> bytes:
    """``image`` (BGR) in format ``fmt`` of FORMATS."""
    ext, params = FORMATS[fmt]
    if fmt in GREY:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, buf = cv2.imencode(ext, image, params)
    assert ok, fmt
    return buf.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, depth: int, colour: int, rows: list[bytes], extra: bytes = b"") -> bytes:
    """A PNG written chunk by chunk, for any bit depth and colour type (and sizes OpenCV would not write)."""
    body = zlib.compress(b"".join(b"\x00" + r for r in rows), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", body)
            + png_chunk(b"IEND", b""))


def gif_local_palette(image: np.ndarray) -> bytes:
    """A GIF whose palette is the image's own (local) instead of the screen's (global): no global table."""
    gif = encode(image, "gif")
    flags = gif[10]
    size = 3 << ((flags & 7) + 1)
    table, rest = gif[13:13 + size], bytearray(gif[13 + size:])
    i = 0
    while rest[i] == 0x21:  # extensions before the image
        i += 2
        while rest[i]:
            i += 1 + rest[i]
        i += 1
    rest[i + 9] |= 0x80 | (flags & 7)
    return gif[:10] + bytes([flags & 0x7F]) + gif[11:13] + bytes(rest[:i + 10]) + table + bytes(rest[i + 10:])


def truncations(rng: random.Random, fmt: str, data: bytes, cuts: int) -> list[tuple]:
    """``data`` cut short at ``cuts`` places: inside the header, in the pixel data, just before the end."""
    ends = sorted({1, 2, 5, 9, 17, 30, len(data) - 1, len(data) - 2}
                  | {rng.randrange(8, len(data) - 1) for _ in range(cuts)})
    out = []
    for end in ends[:cuts]:
        loose = fmt == "gif" and end >= len(data) - 2  # a GIF without its trailer still holds its image
        out.append((f"cut{end}", data[:end], "any" if loose else "skipped", ""))
    return out


def bit_flips(rng: random.Random, data: bytes, count: int) -> list[tuple]:
    """``data`` with 1 to 16 bits flipped, half of the time within its first 64 bytes (the header)."""
    out = []
    for k in range(count):
        b = bytearray(data)
        span = min(64, len(b)) if k % 2 else len(b)
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(span)] ^= 1 << rng.randrange(8)
        out.append((f"flip{k}", bytes(b), "any", ""))
    return out


def _jpeg_sof(data: bytes) -> int:
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return i


def jpeg_headers(data: bytes) -> list[tuple]:
    """The frame header's size set to extremes: empty, lying (7000x7000 over a few KB), too large, tiny."""
    at = _jpeg_sof(data)
    out = []
    for w, h, expect, reason in ((0, 48, "skipped", "bad image size"), (64, 0, "skipped", "bad image size"),
                                 (7000, 7000, "skipped", "corrupt JPEG"), (65535, 65535, "skipped", "too large"),
                                 (8000, 6250, "skipped", "corrupt JPEG"), (1, 1, "any", ""), (2, 9000, "any", ""),
                                 (3000, 2000, "skipped", "corrupt JPEG")):
        b = bytearray(data)
        b[at + 5:at + 9] = struct.pack(">HH", h, w)
        out.append((f"sof{w}x{h}", bytes(b), expect, reason))
    b = bytearray(data)
    b[at + 9] = 0  # no components
    out.append(("sof_nocomp", bytes(b), "skipped", "corrupt JPEG"))
    b[at + 9], b[at + 4] = 3, 16  # 16-bit samples in a baseline frame
    out.append(("sof_depth16", bytes(b), "any", ""))
    return out


def png_headers(image: np.ndarray) -> list[tuple]:
    """IHDR fields set to extremes, with valid CRCs: sizes, bit depths and colour types PNG does not have."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    rows = [r.tobytes() for r in grey]
    h, w = grey.shape
    out = []
    for cw, ch, expect, reason in ((0, h, "skipped", "bad image size"), (w, 0, "skipped", "bad image size"),
                                   (100000, 100000, "skipped", "too large"), (7000, 7000, "skipped", "corrupt PNG"),
                                   (0xFFFFFFFF, 1, "skipped", "too large"), (1, 1, "any", ""),
                                   (w, h * 50, "skipped", "")):
        out.append((f"ihdr{cw}x{ch}", png_bytes(cw, ch, 8, 0, rows), expect, reason))
    for depth, colour in ((3, 0), (16, 3), (8, 5), (1, 2), (0, 0), (255, 6)):
        out.append((f"ihdr_d{depth}c{colour}", png_bytes(w, h, depth, colour, rows), "skipped", ""))
    return out


def webp_headers() -> list[tuple]:
    """Hand-made WebP headers: the 38-byte file that claims 16383x16383, a VP8X canvas of 2^24, empty sizes."""
    def riff(chunk: bytes, payload: bytes, pad: int = 0) -> bytes:
        body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload + b"\x00" * pad
        return b"RIFF" + struct.pack("<I", len(body)) + body

    vp8 = b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 16383, 16383) + b"\x00" * 8
    vp8x = bytes([0x10, 0, 0, 0]) + (0xFFFFFF).to_bytes(3, "little") * 2
    return [
        ("webp_16383", riff(b"VP8 ", vp8), "skipped", "too large"),
        ("webp_vp8x_2p24", riff(b"VP8X", vp8x), "skipped", "too large"),
        ("webp_vp8l_16384", riff(b"VP8L", b"\x2f" + struct.pack("<I", 0x0FFFFFFF) + b"\x00" * 8), "skipped",
         "too large"),
        ("webp_vp8_0x0", riff(b"VP8 ", b"\x10\x02\x00\x9d\x01\x2a\x00\x00\x00\x00" + b"\x00" * 8), "skipped",
         "bad image size"),
        ("webp_unknown_chunk", riff(b"ABCD", b"\x00" * 16), "skipped", "corrupt WebP"),
        ("webp_riff_short", riff(b"VP8 ", vp8)[:30], "skipped", ""),
    ]


def other_headers(image: np.ndarray) -> list[tuple]:
    """BMP, GIF, PNM, PAM and TIFF headers with extreme sizes, depths and values."""
    bmp = bytearray(encode(image, "bmp"))
    out = []
    for w, h, expect, reason in ((0, 48, "skipped", "bad image size"), (7000, 7000, "skipped", "truncated BMP"),
                                 (0x7FFFFFFF, 1, "skipped", "too large"), (64, -0x80000000, "skipped", "too large"),
                                 (-64, 48, "skipped", "bad image size"), (64, -48, "any", "")):
        b = bytearray(bmp)
        b[18:26] = struct.pack("<ii", w, h)
        out.append((f"bmp{w}x{h}", bytes(b), expect, reason))
    for bits in (0, 64, 7):
        b = bytearray(bmp)
        b[28:30] = struct.pack("<H", bits)
        out.append((f"bmp_bits{bits}", bytes(b), "any", ""))
    gif = bytearray(encode(image, "gif"))
    for w, h, expect, reason in ((65535, 65535, "skipped", "too large"), (0, 0, "skipped", "bad image size"),
                                 (8, 8, "skipped", "corrupt GIF")):
        b = bytearray(gif)
        b[6:10] = struct.pack("<HH", w, h)
        out.append((f"gif{w}x{h}", bytes(b), expect, reason))
    h, w = image.shape[:2]
    ppm_data = encode(image, "ppm").split(b"\n", 3)[3]
    for header, expect, reason in ((b"P6\n7000 7000\n255\n", "skipped", "corrupt PNM"),
                                   (b"P6\n99999999 99999999\n255\n", "skipped", "too large"),
                                   (b"P6\n0 0\n255\n", "skipped", "bad image size"),
                                   (b"P6\n%d %d\n0\n" % (w, h), "skipped", "corrupt PNM"),
                                   (b"P6\n%d %d\n70000\n" % (w, h), "skipped", "corrupt PNM"),
                                   (b"P6\n%d %d\n65535\n" % (w, h), "skipped", "corrupt PNM"),
                                   (b"P6\n# a comment\n%d %d\n255\n" % (w, h), "any", ""),
                                   (b"P6\n-5 10\n255\n", "skipped", "corrupt PNM"),
                                   (b"P6\n123456789012345 1\n255\n", "skipped", "corrupt PNM")):
        out.append((f"ppm_{len(out)}", header + ppm_data, expect, reason))
    pam = b"P7\nWIDTH %d\nHEIGHT %d\nDEPTH %d\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"
    out += [("pam_lying", pam % (7000, 7000, 3) + ppm_data, "skipped", "corrupt PAM"),
            ("pam_depth0", pam % (w, h, 0) + ppm_data, "any", ""),
            ("pam_noend", (pam % (w, h, 3)).replace(b"ENDHDR", b"ENDHDX") + ppm_data, "skipped", "")]
    return out + tiff_headers(image)


def tiff_headers(image: np.ndarray) -> list[tuple]:
    """TIFF directory entries (width, length, strip offsets) set to extremes, and a directory past the end."""
    data = encode(image, "tif_raw")
    (ifd,) = struct.unpack("<I", data[4:8])
    (n,) = struct.unpack("<H", data[ifd:ifd + 2])
    entries = {struct.unpack("<H", data[ifd + 2 + 12 * k:ifd + 4 + 12 * k])[0]: ifd + 2 + 12 * k for k in range(n)}

    def patched(tag: int, value: int, base: bytes = data) -> bytes:
        """The tag's first value set to ``value`` (in place: inline, or where the entry points)."""
        b = bytearray(base)
        at = entries[tag]
        kind, count = struct.unpack("<HI", data[at + 2:at + 8])
        code, size = ("<H", 2) if kind == 3 else ("<I", 4)
        where = at + 8 if count * size <= 4 else struct.unpack("<I", data[at + 8:at + 12])[0]
        b[where:where + size] = struct.pack(code, min(value, (1 << 8 * size) - 1))
        return bytes(b)

    out = [("tif_w0", patched(256, 0), "skipped", "bad image size"),
           ("tif_w7000", patched(256, 7000), "skipped", ""),
           ("tif_huge", patched(257, 1 << 31, patched(256, 1 << 31)), "skipped", "too large"),
           ("tif_strip_past_end", patched(273, 1 << 30), "skipped", "truncated TIFF"),
           ("tif_ifd_past_end", data[:4] + struct.pack("<I", 1 << 30) + data[8:], "skipped", "truncated TIFF"),
           ("tif_spp255", patched(277, 255), "any", "")]
    b = bytearray(data)
    b[ifd:ifd + 2] = struct.pack("<H", 65535)
    out.append(("tif_65535_entries", bytes(b), "skipped", "corrupt TIFF"))
    return out


MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x00\x01\x00\x00WEBPVP8 ", b"II*\x00",
          b"MM\x00*", b"P5\n", b"P7\n", b"II+\x00")


def magic_noise(rng: random.Random, count: int) -> list[tuple]:
    """A real signature followed by random bytes."""
    out = []
    for k in range(count):
        magic = MAGICS[k % len(MAGICS)]
        noise = bytes(rng.getrandbits(8) for _ in range(rng.choice((4, 20, 200, 3000))))
        out.append((f"noise{k}", magic + noise, "any", ""))
    return out
