"""A deterministic corpus of malformed and unusual files plus 50 good photos, for the bad-files tests.

``make_corpus(folder, seed)`` writes it and returns a :class:`Corpus`: every entry with what must become of
it. The 50 good photos are re-encodings of tests/data/photos and edge/data/sample.jpg (JPEG, progressive JPEG,
PNG, WebP, BMP, TIFF, PPM, grey, 16-bit, alpha, a phone's motion photo with its video after the JPEG, a PNG
with a trailer). The rest (tests/corpus_fuzz.py for the fuzzing) holds: zero-byte files, non-images with image
names, formats ferlite refuses, truncations and bit flips of every format, header fields set to extremes
(lying sizes, huge sizes, odd depths), a sparse 2 GiB file of zeros and one with a JPEG header, extreme aspect
ratios, odd channels and bit depths, trailing data, wrong extensions, names that are not UTF-8 or hold commas,
quotes and newlines, symbolic link loops, a broken link, a FIFO, a directory named like a photo, a file nobody
may read, and files that are not images by name (ignored). About 20 MB on disk (the 2 GiB files are sparse).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from corpus_fuzz import (
    FORMATS,
    bit_flips,
    encode,
    gif_local_palette,
    jpeg_headers,
    magic_noise,
    other_headers,
    png_bytes,
    png_chunk,
    png_headers,
    truncations,
    webp_headers,
)

TESTS = Path(__file__).resolve().parent
SOURCES = sorted((TESTS / "data" / "photos").glob("*.[jp][pn]g")) + [TESTS.parent / "edge" / "data" / "sample.jpg"]
GOOD_VARIANTS = ("jpg", "progressive", "png", "webp", "bmp", "tif", "ppm", "motion", "trailer_png", "grey",
                 "png16", "rgba")
SEED = 14


@dataclass(frozen=True)
class Entry:
    """One corpus entry: its name in the folder, and ``expect``: processed, skipped (``reason`` is how the
    reason must start, '' for any), ignored (not an image by name), or any (processed or skipped)."""

    name: str
    expect: str
    reason: str = ""
    good: bool = False


@dataclass
class Corpus:
    folder: Path
    entries: list[Entry] = field(default_factory=list)

    def add(self, name: str | bytes, data: bytes | None, expect: str, reason: str = "", good: bool = False) -> Path:
        name = os.fsdecode(name)
        path = self.folder / name
        if data is not None:
            path.write_bytes(data)
        self.entries.append(Entry(name, expect, reason, good))
        return path

    def named(self, expect: str) -> dict[str, Entry]:
        return {e.name: e for e in self.entries if e.expect == expect}

    @property
    def good(self) -> list[Entry]:
        return [e for e in self.entries if e.good]


def _photos(side: int = 320) -> list[np.ndarray]:
    out = []
    for path in SOURCES:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = side / max(img.shape[:2])
        out.append(cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA))
    return out


def _good(image: np.ndarray, variant: str, rng: random.Random) -> tuple[str, bytes]:
    """(extension, bytes) of a good photo in one of GOOD_VARIANTS."""
    if variant in FORMATS:
        return FORMATS[variant][0], encode(image, variant)
    if variant == "motion":  # a phone's motion photo: the video follows the JPEG's end-of-image marker
        video = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + rng.randbytes(30000)
        return ".jpg", encode(image, "jpg") + video
    if variant == "trailer_png":
        return ".png", encode(image, "png") + b"trailer" + rng.randbytes(500)
    if variant == "grey":
        return ".jpg", cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))[1].tobytes()
    if variant == "png16":
        return ".png", cv2.imencode(".png", image.astype(np.uint16) * 257)[1].tobytes()
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 200
    return ".png", cv2.imencode(".png", rgba)[1].tobytes()


def add_good(corpus: Corpus, rng: random.Random, count: int = 50) -> None:
    photos = _photos()
    for i in range(count):
        variant = GOOD_VARIANTS[i % len(GOOD_VARIANTS)]
        k = (i * 5 + i // len(GOOD_VARIANTS)) % len(photos)
        ext, data = _good(photos[k], variant, rng)
        corpus.add(f"good_{i:02d}_{SOURCES[k].stem}_{variant}{ext}", data, "processed", good=True)


def add_fuzzed(corpus: Corpus, rng: random.Random) -> None:
    """Truncations and bit flips of every format at two sizes, and header fields set to extremes."""
    photo = _photos(160)[0]
    for size in ((64, 48), (160, 120)):
        small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        for fmt, (ext, _) in FORMATS.items():
            data = encode(small, fmt)
            for what, bad, expect, reason in truncations(rng, fmt, data, 16) + bit_flips(rng, data, 16):
                corpus.add(f"{fmt}_{size[0]}_{what}{ext}", bad, expect, reason)
    small = cv2.resize(photo, (64, 48), interpolation=cv2.INTER_AREA)
    exts = {"sof": ".jpg", "ihdr": ".png", "webp": ".webp", "bmp": ".bmp", "gif": ".gif", "ppm": ".ppm",
            "pam": ".pam", "tif": ".tif"}
    found = jpeg_headers(encode(small, "jpg")) + png_headers(small) + webp_headers() + other_headers(small)
    for what, bad, expect, reason in found:
        corpus.add(f"hdr_{what}{exts[what.split('_')[0].rstrip('0123456789x-')]}", bad, expect, reason)
    for what, bad, expect, reason in magic_noise(rng, 60):
        corpus.add(f"{what}.jpg", bad, expect, reason)


def add_unusual(corpus: Corpus, rng: random.Random) -> None:
    """Valid images that are odd: extreme aspect ratios, depths, channels, trailing data, wrong extensions."""
    img = _photos(96)[1]
    for h, w, ext in ((2, 10000, ".png"), (10000, 2, ".png"), (1, 20000, ".png"), (49000, 1, ".png"),
                      (1, 1, ".png"), (3, 3, ".jpg"), (1, 20000, ".jpg"), (2, 10000, ".bmp"), (1, 5000, ".webp")):
        flat = np.full((h, w, 3), 127, np.uint8)
        corpus.add(f"aspect_{w}x{h}{ext}", cv2.imencode(ext, flat)[1].tobytes(), "processed")
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    ga = [bytes(np.dstack([r, np.full_like(r, 255)]).ravel()) for r in grey]
    odd = {"grey_alpha.png": png_bytes(w, h, 8, 4, ga),
           "one_bit.png": png_bytes(w, h, 1, 0, [np.packbits(r > 127).tobytes() for r in grey]),
           "palette_trns.png": png_bytes(w, h, 8, 3, [bytes(r // 16) for r in grey],
                                         png_chunk(b"PLTE", bytes(range(48))) + png_chunk(b"tRNS", b"\x00" * 4)),
           "grey16.png": cv2.imencode(".png", grey.astype(np.uint16) * 257)[1].tobytes(),
           "rgb16.tif": cv2.imencode(".tif", img.astype(np.uint16) * 257)[1].tobytes(),
           "grey16.pgm": cv2.imencode(".pgm", grey.astype(np.uint16) * 257)[1].tobytes(),
           "rgba.pam": cv2.imencode(".pam", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA),
                                    [cv2.IMWRITE_PAM_TUPLETYPE, cv2.IMWRITE_PAM_FORMAT_RGB_ALPHA])[1].tobytes(),
           "bgra.bmp": cv2.imencode(".bmp", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))[1].tobytes(),
           "grey.bmp": cv2.imencode(".bmp", grey)[1].tobytes(),
           "rgba.webp": cv2.imencode(".webp", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))[1].tobytes(),
           "bitmap.pbm": cv2.imencode(".pbm", grey)[1].tobytes(), "raw.tif": encode(img, "tif_raw"),
           "float.tif": cv2.imencode(".tif", img.astype(np.float32) / 255)[1].tobytes(),
           "local_palette.gif": gif_local_palette(img)}
    for name, data in odd.items():
        corpus.add(f"odd_{name}", data, "any" if name == "float.tif" else "processed")
    for fmt in ("jpg", "png", "webp", "gif", "bmp", "tif", "ppm", "progressive"):
        data = encode(img, fmt) + rng.randbytes(rng.choice((1, 100, 20000)))
        corpus.add(f"trailing_{fmt}{FORMATS[fmt][0]}", data, "processed")
    corpus.add("trailing_second_jpeg.jpg", encode(img, "jpg") * 2, "processed")
    jpg = encode(img, "jpg")  # 190 KB of ICC-profile segments before the frame header: past the first 64 KiB read
    app2 = b"".join(b"\xff\xe2" + (65000).to_bytes(2, "big") + b"ICC_PROFILE\x00" + rng.randbytes(64986)
                    for _ in range(3))
    corpus.add("big_app_segments.jpg", jpg[:2] + app2 + jpg[2:], "processed")
    for fmt, ext in (("png", ".jpg"), ("jpg", ".png"), ("webp", ".bmp"), ("bmp", ".tif"), ("gif", ".webp"),
                     ("tif", ".jpeg"), ("ppm", ".gif"), ("pam", ".png")):
        corpus.add(f"wrong_ext_{fmt}{ext}", encode(img, fmt), "processed")


def add_special(corpus: Corpus, rng: random.Random) -> None:
    """Zero bytes, non-images, refused formats, huge files, odd names, links, a FIFO, a folder, ignored files."""
    img = _photos(96)[2]
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tif", ".ppm", ".gif"):
        corpus.add(f"zero{ext}", b"", "skipped", "0-byte file")
    texts = {"text": b"just some notes\n", "html": b"<html><body>hi</body></html>", "pdf": b"%PDF-1.4\n%\xe2\xe3",
             "zip": b"PK\x03\x04" + rng.randbytes(100), "elf": b"\x7fELF" + rng.randbytes(60),
             "random": rng.randbytes(4096), "zeros": bytes(4096), "ones": b"\xff" * 4096}
    for what, data in texts.items():
        for ext in (".jpg", ".png", ".tiff"):
            corpus.add(f"notimage_{what}{ext}", data, "skipped", "not an image")
    for ext in (".jp2", ".hdr", ".pfm", ".ras", ".avif"):
        x = img.astype(np.float32) / 255 if ext in (".hdr", ".pfm") else img
        data = cv2.imencode(ext, x)[1].tobytes()
        corpus.add(f"refused{ext.replace('.', '_')}.jpg", data, "skipped", "unsupported format")
    huge = corpus.add("zeros_2GiB.jpg", None, "skipped", "not an image")
    os.truncate(os.open(huge, os.O_CREAT | os.O_WRONLY, 0o644), 2 << 30)
    head = corpus.add("jpeg_header_2GiB.jpg", encode(img, "jpg"), "skipped", "too large")
    os.truncate(head, 2 << 30)
    good = encode(img, "jpg")
    for name in (b"caf\xe9_latin1.jpg", b"\xff\xfe_bad_utf8.png", "comma,name.jpg", 'quote"name.jpg',
                 "new\nline.jpg", "émoji_😀.jpg", "space name.jpg"):
        corpus.add(name, good, "processed")
    corpus.add(b"caf\xe9_truncated.jpg", good[:300], "skipped", "truncated JPEG")
    add_links_and_odd_files(corpus, good)


def add_links_and_odd_files(corpus: Corpus, good: bytes) -> None:
    folder = corpus.folder
    os.symlink("loop_b.jpg", folder / "loop_a.jpg")
    os.symlink("loop_a.jpg", folder / "loop_b.jpg")
    os.symlink("loop_self.jpg", folder / "loop_self.jpg")
    os.symlink("no_such_file.jpg", folder / "broken_link.jpg")
    for name in ("loop_a.jpg", "loop_b.jpg", "loop_self.jpg"):
        corpus.add(name, None, "skipped", "symbolic link loop")
    corpus.add("broken_link.jpg", None, "skipped", "broken symbolic link")
    target = corpus.add("link_target_photo.jpg", good, "processed")
    os.symlink(target.name, folder / "link_to_photo.jpg")
    corpus.add("link_to_photo.jpg", None, "processed")
    os.mkfifo(folder / "fifo.jpg")
    corpus.add("fifo.jpg", None, "skipped", "not a regular file")
    (folder / "folder.jpg").mkdir()
    corpus.add("folder.jpg", None, "skipped", "is a directory")
    locked = corpus.add("unreadable.jpg", good, "processed" if os.geteuid() == 0 else "skipped",
                        "" if os.geteuid() == 0 else "cannot read file: Permission denied")
    locked.chmod(0)
    for name in ("notes.txt", "README", "clip.mp4", "data.csv.bak", ".hidden"):
        corpus.add(name, b"not a photo\n", "ignored")
    os.mkfifo(folder / "pipe")
    corpus.add("pipe", None, "ignored")
    (folder / "subfolder").mkdir()
    corpus.add("subfolder", None, "ignored")


def make_corpus(folder: Path, seed: int = SEED) -> Corpus:
    """Write the corpus into ``folder`` (created); the same seed writes the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    corpus = Corpus(folder)
    add_good(corpus, rng)
    add_fuzzed(corpus, rng)
    add_unusual(corpus, rng)
    add_special(corpus, rng)
    return corpus
