"""`ferlite capture` end to end on recorded clips, through the real CLI."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import frame_index, write_clip

from ferlite.cli import main
from ferlite.errors import UsageError
from ferlite.trainer import capture

FPS = 15
COUNTDOWN_S = 1.0
INTERVAL_S = 0.5
COUNT = 3
OPTIONS = ["--expressions", "happy,surprise", "--count", str(COUNT), "--countdown", str(COUNTDOWN_S),
           "--interval", str(INTERVAL_S), "--subject", "alice", "--no-window"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.avi", 8 * FPS, fps=FPS)


def run_capture(source: Path, out: Path, *extra: str) -> int:
    return main(["capture", "--source", str(source), "--out", str(out), *OPTIONS, *extra])


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_capture_end_to_end(clip, tmp_path, capsys):
    out = tmp_path / "kiosk"
    assert run_capture(clip, out) == 0
    rows = read_manifest(out)
    assert [r["label"] for r in rows] == ["happy"] * COUNT + ["surprise"] * COUNT
    for r in rows:
        assert (r["subject"], r["split"], r["source"]) == ("alice", "train", "capture")
        assert r["path"].startswith(f"images/capture/alice/{r['label']}/alice_{r['label']}_")
        data = (out / r["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
        image = cv2.imread(str(out / r["path"]))
        assert (int(r["width"]), int(r["height"])) == (image.shape[1], image.shape[0]) == (320, 240)

    # Which clip frame each saved image is, read from the index blocks painted into the clip.
    index = [frame_index(cv2.imread(str(out / r["path"]))) for r in rows]
    happy, surprise = index[:COUNT], index[COUNT:]
    assert happy[0] >= COUNTDOWN_S * FPS  # the countdown ran first, on the clip's clock
    assert surprise[0] >= happy[-1] + COUNTDOWN_S * FPS  # a fresh countdown for the next expression
    for saved in (happy, surprise):
        gaps = [b - a for a, b in zip(saved, saved[1:])]
        assert all(g >= INTERVAL_S * FPS for g in gaps), gaps

    printed = capsys.readouterr().out
    assert "show: happy" in printed and "show: surprise" in printed
    assert re.search(r"^happy\s+3\s+3$", printed, re.M) and re.search(r"^total\s+6\s+6$", printed, re.M)
    assert "saved 6 images of alice" in printed


def test_second_run_appends(clip, tmp_path):
    out = tmp_path / "kiosk"
    assert run_capture(clip, out) == 0
    first = {r["path"]: r["sha256"] for r in read_manifest(out)}
    assert run_capture(clip, out, "--split", "val") == 0
    rows = read_manifest(out)
    assert len(rows) == 4 * COUNT
    assert len({r["path"] for r in rows}) == len(rows)
    assert [r["split"] for r in rows] == ["train"] * 2 * COUNT + ["val"] * 2 * COUNT
    assert sorted(p.name for p in (out / "images/capture/alice/happy").iterdir()) == [
        f"alice_happy_{n:04d}.jpg" for n in range(1, 2 * COUNT + 1)
    ]
    for path, sha in first.items():  # the first run's files were not overwritten
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == sha


def test_short_clip_is_an_error_and_keeps_what_was_saved(tmp_path, capsys):
    short = write_clip(tmp_path / "short.avi", 4 * FPS, fps=FPS)  # surprise gets 2 of its 3 frames
    out = tmp_path / "kiosk"
    assert run_capture(short, out) == 1
    err = capsys.readouterr().err
    assert "2 of 3 frames of 'surprise'" in err
    assert "These options need about 4.0 s of video" in err and "shorter --countdown, --interval or --count" in err
    rows = read_manifest(out)
    assert [r["label"] for r in rows] == ["happy"] * COUNT + ["surprise"] * 2
    assert all((out / r["path"]).is_file() for r in rows)


def test_the_bundled_sample_clip_is_too_short_for_the_defaults_and_says_so(tmp_path, capsys):
    out = tmp_path / "kiosk"
    assert main(["capture", "--source", str(Path(__file__).parents[1] / "edge/data/sample.mp4"), "--subject", "alice",
                 "--expressions", "happy,surprise,neutral", "--out", str(out), "--no-window"]) == 1
    err = capsys.readouterr().err
    assert "These options need about 26.1 s of video" in err  # 3 x (3 s + 19 x 0.3 s); the clip lasts 6 s
    assert len(read_manifest(out)) == 9  # frames 45, 50, ..., 85 of 90 (15 frames/s): saved, and kept


def test_bogus_expression_is_a_usage_error(clip, tmp_path, capsys):
    out = tmp_path / "kiosk"
    assert main(["capture", "--source", str(clip), "--out", str(out), "--subject", "alice",
                 "--expressions", "happy,bogus", "--no-window"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert not out.exists()


def test_bad_subject_and_missing_source(clip, tmp_path, capsys):
    out = tmp_path / "kiosk"
    assert main(["capture", "--source", str(clip), "--out", str(out), "--subject", "../x", "--no-window"]) == 2
    assert "--subject" in capsys.readouterr().err
    assert main(["capture", "--source", str(tmp_path / "gone.avi"), "--out", str(out), "--subject", "bob",
                 "--no-window"]) == 1
    assert "gone.avi: no such file" in capsys.readouterr().err
    assert not out.exists()


def test_window_choice(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert capture.use_window("auto") is False
    assert capture.use_window(False) is False
    with pytest.raises(UsageError, match="display"):
        capture.use_window(True)


def test_a_frame_jpeg_cannot_hold_is_skipped_and_capture_goes_on(tmp_path, capsys, caplog):
    """From a folder of photos, one 70000 pixels wide (over JPEG's 65,500): a warning with the reason, and the
    capture saves the next photo instead (issue 14)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    face = cv2.imread(str(Path(__file__).parent / "data" / "photos" / "skimage_astronaut.png"))
    for name in ("a.png", "c.png", "d.png"):
        cv2.imwrite(str(photos / name), face)
    cv2.imwrite(str(photos / "b.png"), np.full((1, 70000, 3), 127, np.uint8))
    out = tmp_path / "data"
    assert main(["capture", "--source", str(photos), "--out", str(out), "--expressions", "happy", "--count", "3",
                 "--countdown", "0", "--interval", "0.5", "--subject", "bob", "--no-window"]) == 0
    assert len(read_manifest(out)) == 3
    assert "frame 1 not saved: OpenCV could not encode a (1, 70000, 3) frame as JPEG" in caplog.text
    assert "Maximum supported image dimension is 65500 pixels" in caplog.text
    assert "saved 3 images of bob" in capsys.readouterr().out
