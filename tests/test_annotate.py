"""Annotated output a person can read: labels never overlap, "uncertain" shows the best guess, and the annotated
video is WebM/VP8, which browsers play. On the bundled sample clip, whose two faces pass close to each other."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlite.cli import main
from ferlite.edge.outputs.media import FONT_SCALE, PAD, annotate, label_text, place_labels
from ferlite.edge.results import UNCERTAIN, FaceResult, FrameResult

SAMPLE_CLIP = Path(__file__).resolve().parents[1] / "edge" / "data" / "sample.mp4"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def label_rects(result: FrameResult, shape) -> list[tuple[int, int, int, int]]:
    sizes = []
    for face in result.faces:
        (tw, th), base = cv2.getTextSize(label_text(face, result.labels), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)
        sizes.append((tw + 2 * PAD, th + base + 2 * PAD))
    corners = place_labels([f.box for f in result.faces], sizes, shape)
    return [(x, y, w, h) for (x, y), (w, h) in zip(corners, sizes)]


def overlap(a, b) -> bool:
    return not (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1])


@pytest.fixture(scope="module")
def clip_results():
    from ferlite.edge.build import replay

    return replay(SAMPLE_CLIP)


def test_labels_never_overlap_on_the_sample_clip(clip_results):
    shape = (480, 640)
    close = 0
    for result in clip_results:
        rects = label_rects(result, shape)
        for a, b in itertools.combinations(rects, 2):
            assert not overlap(a, b), (result.index, rects)
        assert all(0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 for x, y, w, h in rects)
        if len(rects) == 2:
            above = [f.box[1] - r[1] - r[3] for f, r in zip(result.faces, rects)]
            close += any(gap < 0 for gap in above)  # one label had to leave its place above the box
    assert close >= 3  # the faces do pass close enough for the plain layout to collide


def test_crowded_faces_get_separate_labels():
    faces = tuple(FaceResult(i + 1, (10 + 40 * i, 100 + (i % 2) * 5, 40, 40), "happy", 0.9, (0.0,) * 3 + (0.9,) +
                             (0.0,) * 3) for i in range(6))
    result = FrameResult(0, 0.0, "x", faces, LABELS)
    rects = label_rects(result, (240, 320))
    assert not any(overlap(a, b) for a, b in itertools.combinations(rects, 2))


def test_uncertain_keeps_its_best_guess():
    probs = (0.05, 0.0, 0.12, 0.1, 0.43, 0.05, 0.25)
    face = FaceResult(2, (60, 60, 80, 80), UNCERTAIN, 0.43, probs, raw_label="neutral")
    result = FrameResult(0, 0.0, "x", (face,), LABELS)
    assert label_text(face, LABELS) == "#2 uncertain (sad 0.43)"
    drawn = annotate(np.zeros((200, 200, 3), np.uint8), result)
    (x, y, w, h), = label_rects(result, drawn.shape)
    assert tuple(drawn[y + 1, x + 1]) == (128, 128, 128)  # grey label ...
    assert tuple(drawn[60, 100]) == (200, 120, 40)  # ... on a box in the colour of its best guess, sad


def test_the_annotated_video_is_webm_vp8(tmp_path):
    out = tmp_path / "out"
    assert main(["recognize", str(SAMPLE_CLIP), "--max-frames", "10", "--out", str(out)]) == 0
    video = out / "sample.webm"
    cap = cv2.VideoCapture(str(video))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 10 and fourcc.upper() == "VP80"
    assert video.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # the EBML header of a Matroska/WebM file
