"""Property-based tests (hypothesis) of the parsers that read what users hand ferlite: image headers and image
files (edge/imagefiles/probe.py, imageio.py), manifests (trainer/dataset.py) and --set options (edge/configfile.py).

Inputs are arbitrary bytes, arbitrary bytes after a real signature, and real small images of every format cut
short, with bits flipped, bytes overwritten, header fields set to extreme values and data appended. Whatever
the input: probing and reading raise nothing but ImageReadError (with a one-line reason), an image that is
returned is 8-bit BGR within the pixel cap, and reading allocates (as Python and numpy see it: the bytes read,
the decoded array) no more than the byte cap plus the pixel cap. A manifest is rows or a DatasetError, and names
of any bytes round-trip through one. --set options give values or problem lines, never an exception.
"""

from __future__ import annotations

import os
import tracemalloc
from dataclasses import fields

import cv2
import numpy as np
import pytest
from corpus_fuzz import FORMATS, MAGICS, encode
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ferlite.edge.config import SECTIONS
from ferlite.edge.configfile import parse_overrides
from ferlite.edge.imagefiles.headers import ImageInfo
from ferlite.edge.imagefiles.imageio import LoadedImage, read_image
from ferlite.edge.imagefiles.probe import check_data, probe
from ferlite.errors import DatasetError, ImageReadError
from ferlite.trainer import dataset

CAP_PIXELS = 96 * 96
CAP_BYTES = 1 << 15
#: Allocations of the read beyond the bytes read and the decoded image: the interpreter's own, regex, struct.
SLACK = 1 << 20
FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EXTREMES = (b"\x00\x00", b"\xff\xff", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x80\x00")


def _bases() -> dict[str, bytes]:
    rng = np.random.default_rng(14)
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (40, 30), interpolation=cv2.INTER_LINEAR)
    return {fmt: encode(img, fmt) for fmt in FORMATS}


BASES = _bases()


@st.composite
def image_bytes(draw) -> bytes:
    """Arbitrary bytes, a real signature then arbitrary bytes, or a real image damaged one to four times."""
    kind = draw(st.sampled_from(["raw", "magic", "damaged", "damaged", "damaged"]))
    if kind == "raw":
        return draw(st.binary(max_size=600))
    if kind == "magic":
        return draw(st.sampled_from(MAGICS)) + draw(st.binary(max_size=600))
    data = bytearray(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "overwrite", "append", "field"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "cut":
            del data[at:]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif op == "append":
            data += draw(st.binary(max_size=200))
        elif op == "field":  # an extreme value somewhere in the header
            value = draw(st.sampled_from(EXTREMES))
            data[at % 64:at % 64 + len(value)] = value
    return bytes(data)


@FUZZ
@given(image_bytes())
def test_probe_gives_an_info_or_an_image_read_error(data):
    for partial in (False, True):
        try:
            info = probe(data, partial=partial)
        except ImageReadError as exc:
            assert str(exc).strip() and "\n" not in str(exc)
            continue
        assert info is None and partial or isinstance(info, ImageInfo)
        if info is not None:
            try:
                check_data(info, data)
            except ImageReadError as exc:
                assert str(exc).strip() and "\n" not in str(exc)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "image.bin"


@FUZZ
@given(image_bytes())
def test_read_image_stays_within_its_caps(image_file, data):
    image_file.write_bytes(data)
    tracemalloc.start()
    try:
        try:
            result = read_image(image_file, max_pixels=CAP_PIXELS, max_bytes=CAP_BYTES)
        except ImageReadError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < CAP_BYTES + 3 * CAP_PIXELS + SLACK, f"{peak} bytes allocated for a {len(data)}-byte file"
    if isinstance(result, LoadedImage):
        h, w, c = result.image.shape
        assert h * w <= CAP_PIXELS and c == 3 and result.image.dtype == np.uint8
    else:
        assert str(result).strip() and "\n" not in str(result)
        assert len(data) <= CAP_BYTES or str(result).startswith(("too large", "not an image", "unsupported"))


def test_read_image_of_a_sparse_2_gib_file_reads_only_its_head(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(BASES["jpg"])
    os.truncate(big, 2 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match="too large: a 2147 MB file is over the 200 MB limit"):
            read_image(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.fixture(scope="module")
def manifest_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("manifest")


@FUZZ
@given(st.one_of(st.binary(max_size=3000), st.builds(lambda rest: b"path,label\n" + rest, st.binary(max_size=3000))))
@example(b"path,label\n" + b"x" * 200_000 + b",happy\n")  # a field over csv's limit
@example(b"path,label\n\x00a.jpg,happy\n\xe9.jpg,sad\n")
def test_manifest_reader_gives_rows_or_a_dataset_error(manifest_folder, content):
    (manifest_folder / dataset.MANIFEST).write_bytes(content)
    try:
        rows = dataset.read_rows(manifest_folder)
    except DatasetError as exc:
        assert str(exc).startswith(str(manifest_folder))
        return
    assert all(isinstance(k, str) and isinstance(v, str) for row in rows for k, v in row.items())


#: File names as a file system may hand them over: any bytes but NUL, '/' kept as a folder separator.
NAMES = st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b).map(os.fsdecode)


@FUZZ
@given(st.lists(NAMES, min_size=1, max_size=6))
def test_manifest_names_of_any_bytes_round_trip(manifest_folder, names):
    rows = [dict(path=n, label="happy", split="train", source="s", subject="", sha256="", width=1, height=1)
            for n in names]
    dataset.write_rows(manifest_folder, rows)
    assert [r["path"] for r in dataset.read_rows(manifest_folder)] == names
    with open(manifest_folder / dataset.MANIFEST, "rb") as f:  # names that are UTF-8 are written as UTF-8
        raw = f.read()
    assert all(n.encode("utf-8", "surrogateescape") in raw for n in names if "\r" not in n and '"' not in n)


KEYS = sorted(f"{name}.{f.name}" for name, section in SECTIONS.items() for f in fields(section))


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40),
                          st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.text(max_size=40))),
                max_size=5))
@example(["outputs.recognize=" + "[" * 5000])
@example(["detector.type='unterminated", 'classifier.model="""x"""\n[v]', "tracking.window=" + "9" * 5000])
def test_set_options_give_values_or_problems_never_exceptions(items):
    layer = parse_overrides(items)
    assert all(isinstance(p, str) and p for p in layer.problems)
    for item in items:
        name = item.partition("=")[0].strip()
        section, _, key = name.partition(".")
        assert (section, key) in layer.values or any(f"--set {item}" in p for p in layer.problems), item
