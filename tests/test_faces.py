"""`ferlite faces` on real photos and on every kind of bad file: each gets its reason, the batch completes."""

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from ferlite.cli import main

PHOTOS = Path(__file__).parent / "data" / "photos"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, width: int, height: int, colour_type: int, rows, palette: bytes = b"") -> None:
    """A real PNG written chunk by chunk (for palette images and huge images OpenCV cannot write cheaply)."""
    comp = zlib.compressobj(1)
    body = b"".join(comp.compress(b"\x00" + row) for row in rows) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    chunks = _chunk(b"IHDR", ihdr) + (_chunk(b"PLTE", palette) if palette else b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def astronaut():
    return cv2.imread(str(PHOTOS / "skimage_astronaut.png"))


@pytest.fixture
def bad_folder(tmp_path, astronaut):
    """One file per kind of bad (or merely unusual) input, named after what it is."""
    d = tmp_path / "in"
    d.mkdir()
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    ok, jpg = cv2.imencode(".jpg", astronaut)
    ok, png = cv2.imencode(".png", astronaut)
    (d / "good.jpg").write_bytes(jpg.tobytes())
    (d / "zero_byte.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    (d / "truncated.png").write_bytes(png.tobytes()[: len(png) // 2])
    (d / "not_an_image.png").write_text("this is a text file, not a picture\n")
    cv2.imwrite(str(d / "sixteen_bit.png"), astronaut.astype(np.uint16) * 257)
    cv2.imwrite(str(d / "rgba.png"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))
    ramp = bytes(v for i in range(256) for v in (i, i, i))
    write_png(d / "palette.png", grey.shape[1], grey.shape[0], 3, (r.tobytes() for r in grey), ramp)
    zero_row = bytes(20000)
    write_png(d / "huge.png", 20000, 20000, 0, (zero_row for _ in range(20000)))
    cv2.imwrite(str(d / "no_face.jpg"), cv2.imread(str(PHOTOS / "skimage_coffee.png")))
    cv2.imwrite(str(d / "two_faces.jpg"), np.hstack([astronaut, astronaut]))
    cv2.imwrite(str(d / "tiny_face.jpg"), cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA))
    return d


EXPECTED = {  # file -> (status, reason must start with)
    "good.jpg": ("kept", "ok"),
    "zero_byte.jpg": ("skipped", "unreadable: 0-byte file"),
    "truncated.jpg": ("skipped", "unreadable: truncated JPEG"),
    "truncated.png": ("skipped", "unreadable: truncated PNG"),
    "not_an_image.png": ("skipped", "unreadable: not an image"),
    "sixteen_bit.png": ("kept", "16-bit scaled to 8-bit"),
    "rgba.png": ("kept", "alpha channel dropped"),
    "palette.png": ("kept", "palette image converted"),
    "huge.png": ("skipped", "unreadable: too large: 20000x20000"),
    "no_face.jpg": ("skipped", "no face"),
    "two_faces.jpg": ("skipped", "several faces (2) of similar size"),
    "tiny_face.jpg": ("skipped", "face too small"),
}


def test_every_bad_input_gets_its_reason_and_the_batch_completes(bad_folder, tmp_path, capsys):
    out = tmp_path / "faces"
    assert main(["faces", str(bad_folder), "--out", str(out)]) == 0
    m = pd.read_csv(out / "manifest.csv", dtype=str).set_index("src")
    assert sorted(m.index) == sorted(EXPECTED)
    for name, (status, reason) in EXPECTED.items():
        assert m.loc[name, "status"] == status, (name, m.loc[name, "reason"])
        assert m.loc[name, "reason"].startswith(reason), (name, m.loc[name, "reason"])
        assert "\n" not in m.loc[name, "reason"]
    for rel in m[m.status == "kept"].path:
        crop = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8
    summary = capsys.readouterr().out
    assert "kept 4 of 12 (33.3%)" in summary


def test_rerun_skips_what_is_done(bad_folder, tmp_path, capsys):
    out = tmp_path / "faces"
    main(["faces", str(bad_folder), "--out", str(out)])
    (bad_folder / "huge.png").unlink()
    cv2.imwrite(str(bad_folder / "later.jpg"), cv2.imread(str(PHOTOS / "messi5.jpg")))
    capsys.readouterr()
    assert main(["faces", str(bad_folder), "--out", str(out)]) == 0
    assert "11 of 12 images already processed" in capsys.readouterr().out
    m = pd.read_csv(out / "manifest.csv", dtype=str)
    assert m.src.is_unique and len(m) == 13
    assert m.set_index("src").loc["later.jpg", "status"] == "kept"


def test_keep_all_saves_every_face_and_counts_files_as_files(astronaut, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "two.jpg"), np.hstack([astronaut, astronaut]))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "out"
    assert main(["faces", str(d), "--out", str(out), "--keep", "all", "--size", "64", "--colour"]) == 0
    m = pd.read_csv(out / "manifest.csv", dtype=str)
    assert list(m[m.status == "kept"].face) == ["1", "2"]
    assert cv2.imread(str(out / m[m.status == "kept"].path.iloc[0])).shape == (64, 64, 3)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["status", "reason", "faces"]  # rows are faces here
    assert "files: 1 processed, 1 skipped" in printed  # one photo with two faces is one file


def test_labels_and_splits_carry_over_from_a_dataset(astronaut, tmp_path):
    src = tmp_path / "ds"
    (src / "images").mkdir(parents=True)
    cv2.imwrite(str(src / "images" / "a.jpg"), astronaut)
    cv2.imwrite(str(src / "images" / "b.jpg"), cv2.imread(str(PHOTOS / "skimage_chelsea.png")))
    pd.DataFrame({"path": ["images/a.jpg", "images/b.jpg"], "label": ["happy", "sad"], "split": ["train", "val"],
                  "source": "t", "subject": ["s1", "s2"], "sha256": "x", "width": 512, "height": 512}
                 ).to_csv(src / "manifest.csv", index=False)
    out = tmp_path / "out"
    assert main(["faces", str(src), "--out", str(out), "--detector", "haar"]) == 0
    m = pd.read_csv(out / "manifest.csv", dtype=str).set_index("src")
    assert m.loc["images/a.jpg", ["label", "split", "subject", "status"]].tolist() == ["happy", "train", "s1", "kept"]
    assert m.loc["images/b.jpg", "status"] == "skipped"


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["faces", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "nothing: no such file or folder" in err and "Traceback" not in err
    assert main(["faces", str(tmp_path / "*.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no images found" in capsys.readouterr().err
    (tmp_path / "x.jpg").write_bytes(b"")
    assert main(["faces", str(tmp_path), "--out", str(tmp_path / "o"), "--detector", "bogus"]) == 2
    assert "unknown detector 'bogus'" in capsys.readouterr().err


@pytest.mark.shared
def test_wild_photos_keep_rate(shared_data, tmp_path, capsys):
    """The acceptance figure: YuNet keeps at least 97% of the 2,500 wild photos."""
    images = shared_data / "wild" / "images"
    assert main(["faces", str(images), "--out", str(tmp_path / "wild")]) == 0
    m = pd.read_csv(tmp_path / "wild" / "manifest.csv")
    assert len(m) >= 2490
    assert (m.status == "kept").sum() / 2500 >= 0.97
