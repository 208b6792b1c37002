"""RegionDetector: whole-frame YuNet every N frames, regions around the last faces in between, on the
bundled clip (two faces moving over a background) and on photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlite.cli import main
from ferlite.edge.build import lores_size
from ferlite.edge.configfile import load
from ferlite.edge.detection.regions import RegionDetector, for_stream, search_scale
from ferlite.edge.detection.registry import create_detector
from ferlite.edge.tracking import iou

SAMPLE_CLIP = Path(__file__).parents[1] / "edge" / "data" / "sample.mp4"
PHOTOS = Path(__file__).parent / "data" / "photos"
#: A region's box against the whole-frame box of the same face: YuNet's box shifts a little with scale.
MIN_IOU = 0.75


@pytest.fixture(scope="module")
def frames():
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    out = []
    while len(out) < 45:
        ok, image = cap.read()
        assert ok, f"cannot read {SAMPLE_CLIP}"
        out.append(image)
    cap.release()
    return out


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


def test_regions_find_every_face_the_whole_frame_finds(frames, yunet):
    regions = RegionDetector(create_detector("yunet"), every=5)
    for i, image in enumerate(frames):
        whole = yunet.detect(image)
        found = regions.detect(image)
        # Regions may keep a face the whole frame scores under the threshold (the turned one, in a few
        # frames), never more faces than the clip's two.
        assert len(whole) <= len(found) <= 2, (i, [f.box for f in found], [f.box for f in whole])
        for face in whole:
            best = max(iou(face.box, f.box) for f in found)
            assert best >= MIN_IOU, (i, face.box, best)
            nearest = max(found, key=lambda f: iou(face.box, f.box))
            eye_shift = np.abs(np.subtract(nearest.landmarks[:2], face.landmarks[:2])).max()
            assert eye_shift < 0.1 * face.box[2], (i, eye_shift)  # landmarks map back to the frame
    assert regions.full_frames == len(frames) // 5


def test_a_new_face_is_found_at_the_next_whole_frame(frames):
    regions = RegionDetector(create_detector("yunet"), every=5)
    blank = np.zeros_like(frames[0])
    seen = [len(regions.detect(image)) for image in [blank, blank, frames[0], frames[1], frames[2], frames[3]]]
    # frames 0 and 1 find nothing; with no face to follow frame 2 searches the whole frame and finds both faces
    assert seen == [0, 0, 2, 2, 2, 2]
    regions = RegionDetector(create_detector("yunet"), every=5)
    first = frames[0].copy()
    first[:, 320:] = 0  # only the left face in the first frame
    seen = [len(regions.detect(image)) for image in [first, *frames[1:6]]]
    assert seen == [1, 1, 1, 1, 1, 2]  # the second face appears at frame 5, the next whole-frame search


def test_a_new_frame_size_gets_a_whole_frame_search(frames):
    regions = RegionDetector(create_detector("yunet"), every=100)
    regions.detect(frames[0])
    framed = cv2.copyMakeBorder(frames[1], 0, 40, 0, 0, cv2.BORDER_CONSTANT, value=0)  # 640x520
    assert regions.detect(frames[1]) and regions.full_frames == 1  # same size: regions
    assert len(regions.detect(framed)) == 2 and regions.full_frames == 2


def test_photos_always_get_the_whole_frame(yunet):
    assert for_stream(yunet, 5, "images") is yunet
    assert for_stream(yunet, 1, "video", coarse=False) is yunet
    assert isinstance(for_stream(yunet, 1, "video"), RegionDetector)  # every frame whole, at the search scale
    assert isinstance(for_stream(yunet, 5, "usb"), RegionDetector)
    with pytest.raises(ValueError, match="at least 1"):
        RegionDetector(yunet, every=0)


def test_bench_compares_every_frame_with_regions(tmp_path, capsys):
    stem = tmp_path / "bench"
    assert main(["bench", "--detectors", "yunet", "--detect-every", "1,5", "--frames", "20", "--out", str(stem)]) == 0
    table = stem.with_suffix(".md").read_text()
    frames, stages = table.split("### Stages")[0], table.split("### Stages")[1].split("###")[0]
    rows = [line for line in frames.splitlines() if line.startswith("| yunet")]
    assert [r.split("|")[2].strip() for r in rows] == ["1", "5"], table
    assert "| total med | total p90 | total p99 | total max | p90/med | max/med |" in frames, frames
    assert "| search mean | search % | regions mean | regions % | classify mean |" in stages, stages
    assert main(["bench", "--detect-every", "0"]) == 2
    assert "--detect-every 0: detector.every = 0: must be >= 1" in capsys.readouterr().err
    assert main(["bench", "--coarse", "maybe"]) == 2
    assert "--coarse 'maybe': give true or false" in capsys.readouterr().err


def test_grey_frames_as_the_pi_lores_plane(frames, yunet):
    """The Pi camera feeds the detector the lores stream's Y plane: a 2-D grey frame."""
    regions = RegionDetector(create_detector("yunet"), every=5)
    for image in frames[:6]:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        whole = yunet.detect(grey)
        found = regions.detect(grey)
        assert len(found) >= len(whole) >= 1
        assert all(max(iou(w.box, f.box) for f in found) >= MIN_IOU for w in whole)
    assert regions.full_frames == 2


class Shapes:
    """The real detector, noting the shape of every image it is given."""

    def __init__(self, detector):
        self.inner, self.shapes = detector, []
        self.name, self.smallest_face, self.max_side = detector.name, detector.smallest_face, detector.max_side

    def detect(self, image, score=None):
        self.shapes.append(image.shape[:2])
        return self.inner.detect(image, score)


def test_the_whole_frame_is_searched_at_the_scale_min_face_allows(frames, yunet):
    """640x480 with 24-pixel faces: a 320x240 search, each face then found again in its region, so boxes and
    landmarks are the full resolution's; with min_face 12 the search is the whole 640x480 frame."""
    recorded = Shapes(yunet)
    regions = RegionDetector(recorded, every=5, min_face=24)
    for i, image in enumerate(frames[:10]):
        found = regions.detect(image)
        for face in yunet.detect(image):
            nearest = max(found, key=lambda f: iou(face.box, f.box))
            assert iou(face.box, nearest.box) >= MIN_IOU, (i, face.box, nearest.box)
            eye_shift = np.abs(np.subtract(nearest.landmarks[:2], face.landmarks[:2])).max()
            assert eye_shift < 0.1 * face.box[2], (i, eye_shift)
    # Frames 0 and 5 are searched whole at 320x240; the rest of the calls are regions, all 160x160.
    assert [shape for shape in recorded.shapes if shape != (160, 160)] == [(240, 320), (240, 320)]
    recorded.shapes.clear()
    RegionDetector(recorded, every=5, min_face=12).detect(frames[0])
    assert recorded.shapes[0] == (480, 640)


def test_search_scale_per_detector(yunet):
    assert search_scale(yunet, (640, 480), 24) == (0.5, True)
    assert search_scale(yunet, (640, 480), 12) == (1.0, False)
    assert search_scale(yunet, (1280, 960), 24) == (0.5, False)  # YuNet scales it to 640 anyway
    assert search_scale(create_detector("blazeface"), (640, 480), 24) == (0.2, False)  # its 128x128 input
    assert search_scale(create_detector("haar"), (640, 480), 24) == (1.0, False)  # its 24x24 window


def test_the_pi_camera_lores_stream_is_the_search_size():
    config = load(system_path="/nonexistent")
    assert lores_size(config) == (320, 240)
    assert lores_size(config.replace(detector={"min_face": 48})) == (160, 120)
    assert lores_size(config.replace(detector={"type": "blazeface"})) == (128, 96)
    assert lores_size(config.replace(detector={"type": "haar"})) is None
    assert lores_size(config.replace(detector={"coarse": False})) is None
