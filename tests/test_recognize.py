"""`ferlite recognize` end to end: every source kind, the output files, errors, tracking and smoothing.

Real model, real detectors, real files: the bundled classifier (which may be replaced by a better one
with the same labels, so no test depends on its accuracy), YuNet, the bundled sample photo and clip,
the photos under tests/data/photos, a recorded MJPG AVI for the USB camera, and the fake picamera2 fed
with the sample clip's frames. The CLI is driven in-process through ``ferlite.cli.main``; live sources
whose CLI spec cannot work here (``0`` opens /dev/video0 with V4L2) go through the pipeline API.
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import pytest
from fakes.picamera2 import make_picamera2

from ferlite.cli import main
from ferlite.edge.build import lores_size
from ferlite.edge.classification.classifier import ExpressionClassifier
from ferlite.edge.configfile import load
from ferlite.edge.detection.regions import RegionDetector
from ferlite.edge.detection.registry import create_detector
from ferlite.edge.outputs.files import ListSink
from ferlite.edge.pipeline import Pipeline, run
from ferlite.edge.results import UNCERTAIN, to_dataframe
from ferlite.edge.sources.capture import UsbCameraSource, VideoFileSource
from ferlite.edge.sources.picamera import PiCameraSource
from ferlite.edge.tracking import Tracker, iou

EDGE_DATA = Path(__file__).resolve().parents[1] / "edge" / "data"
SAMPLE_JPG = EDGE_DATA / "sample.jpg"
SAMPLE_CLIP = EDGE_DATA / "sample.mp4"
SAMPLE_TRUTH = EDGE_DATA / "sample.truth.csv"
PHOTOS = Path(__file__).parent / "data" / "photos"
WITH_FACE = ("skimage_astronaut.png", "skimage_camera.png", "messi5.jpg")  # one face each (test_detectors)
WITHOUT_FACE = ("skimage_chelsea.png", "skimage_coffee.png")

CLIP_FRAMES = 90
CLIP_FPS = 15.0
#: Columns every results csv row has, besides one p_<label> column per class.
REQUIRED_COLUMNS = ("path", "frame", "track_id", "x", "y", "w", "h", "label", "confidence")
#: A row's probabilities (int8 outputs in steps of 1/256, rounded to 4 places) sum to 1 within this.
PROB_SUM_TOLERANCE = 0.02
#: The csv's confidence is the top smoothed probability, both rounded to 4 places.
ROUNDING = 1e-3
#: Least IoU of a detected (or lores-mapped) face box with its ground-truth face box.
MIN_IOU = 0.5
#: Least share of the frames in which a ground-truth face is detected that carry its main track id.
MIN_TRACK_STABILITY = 0.95
#: Share of the clip's frames in which the astronaut (large, frontal) must be found.
MIN_ASTRONAUT_RECALL = 0.9
#: The truth csv holds the box of each pasted patch (head and margin), not of the face. A face box lies
#: at a fixed place in its patch: the photo's face box (tests/test_detectors.py WITH_FACE) less the
#: cutout origin, times the cutout scale (bench/make_clip.py) -> (dx, dy, w, h) inside the patch.
FACE_IN_PATCH = {
    1: (178 - 150, 63 - 30, 90, 113),  # astronaut: cutout at (150, 30), scale 1.0
    2: ((196 - 170) * 1.1, (113 - 80) * 1.1, 61 * 1.1, 81 * 1.1),  # camera man: cutout at (170, 80), scale 1.1
}
USB_FRAMES = 20


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def classifier():
    return ExpressionClassifier()


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


@pytest.fixture(scope="module")
def truth() -> dict[int, dict[int, tuple[float, float, float, float]]]:
    """frame -> {face: face box (x, y, w, h)} from the clip's patch boxes."""
    boxes: dict[int, dict[int, tuple]] = defaultdict(dict)
    with SAMPLE_TRUTH.open(newline="") as f:
        for row in csv.DictReader(f):
            face = int(row["face"])
            dx, dy, w, h = FACE_IN_PATCH[face]
            boxes[int(row["frame"])][face] = (int(row["x"]) + dx, int(row["y"]) + dy, w, h)
    assert len(boxes) == CLIP_FRAMES
    return dict(boxes)


@pytest.fixture(scope="module")
def mjpg_clip(tmp_path_factory) -> Path:
    """The first USB_FRAMES frames of the sample clip as an MJPG AVI: what a USB webcam sends."""
    path = tmp_path_factory.mktemp("mjpg") / "clip.avi"
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, (640, 480))
    try:
        for _ in range(USB_FRAMES):
            ok, image = cap.read()
            assert ok
            writer.write(image)
    finally:
        writer.release()
        cap.release()
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run in tmp (the default output folder is runs/recognize under the cwd), headless, no DEBUG."""
    monkeypatch.chdir(tmp_path)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "DEBUG"):
        monkeypatch.delenv(name, raising=False)


def recognize(*argv: str) -> int:
    return main(["recognize", *map(str, argv)])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check_rows(rows: list[dict[str, str]], labels: tuple[str, ...]) -> None:
    """Columns, labels and probabilities of results csv rows (or of json / DataFrame records)."""
    assert rows
    prob_columns = [f"p_{name}" for name in labels]
    for row in rows:
        missing = [c for c in (*REQUIRED_COLUMNS, *prob_columns) if c not in row]
        assert not missing, f"missing columns {missing} in {sorted(row)}"
        assert sorted(k for k in row if k.startswith("p_")) == sorted(prob_columns)
        probs = {name: float(row[f"p_{name}"]) for name in labels}
        assert sum(probs.values()) == pytest.approx(1.0, abs=PROB_SUM_TOLERANCE)
        assert float(row["confidence"]) == pytest.approx(max(probs.values()), abs=ROUNDING)
        assert row["label"] in (*labels, UNCERTAIN)
        if row["label"] != UNCERTAIN:
            assert probs[row["label"]] == pytest.approx(max(probs.values()), abs=ROUNDING)
        assert int(row["w"]) > 0 and int(row["h"]) > 0


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot read back {path}"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def run_pipeline(source, detector, classifier, *, window: int = 5, max_frames: int | None = None) -> ListSink:
    sink = ListSink()
    tracker = Tracker(classifier.labels, window=window)
    with source:
        run(source, Pipeline(detector, classifier, tracker, source_name=source.name), sink, max_frames=max_frames)
    return sink


def match_truth(box, faces: dict[int, tuple]) -> tuple[int | None, float]:
    """The ground-truth face a box overlaps most, and that IoU (None when under MIN_IOU)."""
    face, ref = max(faces.items(), key=lambda kv: iou(box, kv[1]))
    overlap = iou(box, ref)
    return (face if overlap >= MIN_IOU else None), overlap


class RecordingDetector:
    """The real detector, noting the shape of every image it is given."""

    def __init__(self, detector):
        self.detector, self.name, self.shapes = detector, detector.name, []
        self.smallest_face, self.max_side = detector.smallest_face, detector.max_side

    def detect(self, image, score=None):
        self.shapes.append(image.shape)
        return self.detector.detect(image, score)


# ---------------------------------------------------------------------------------------------- sources


def test_default_source_is_the_bundled_photo(tmp_path, capsys, classifier):
    out = tmp_path / "out"
    assert recognize("--out", out) == 0
    rows = read_rows(out / "results.csv")
    assert len(rows) == 1
    check_rows(rows, classifier.labels)
    assert Path(rows[0]["path"]).name == "sample.jpg" and rows[0]["frame"] == "0"
    annotated = cv2.imread(str(out / "sample.jpg"))
    assert annotated is not None and annotated.shape == cv2.imread(str(SAMPLE_JPG)).shape
    assert "1 frame(s), 1 face(s)" in capsys.readouterr().out


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in WITH_FACE + WITHOUT_FACE:
        shutil.copy(PHOTOS / name, folder / name)
    return folder


@pytest.mark.parametrize("as_glob", [False, True], ids=["folder", "glob"])
def test_folder_and_glob_of_photos(photo_folder, tmp_path, classifier, as_glob):
    spec = str(photo_folder / "*.png") if as_glob else str(photo_folder)  # the glob is quoted: no shell
    expected = sorted(p.name for p in (photo_folder.glob("*.png") if as_glob else photo_folder.iterdir()))
    out = tmp_path / "out"
    assert recognize(spec, "--out", out) == 0
    rows = read_rows(out / "results.csv")
    check_rows(rows, classifier.labels)
    per_photo = Counter(Path(r["path"]).name for r in rows)
    assert per_photo == {name: 1 for name in expected if name in WITH_FACE}
    assert sorted(p.name for p in out.iterdir() if p.name != "results.csv") == expected
    for name in expected:
        assert cv2.imread(str(out / name)).shape == cv2.imread(str(photo_folder / name)).shape


def test_same_names_from_two_folders_do_not_overwrite(tmp_path, classifier):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(PHOTOS / WITH_FACE[0], tmp_path / sub / WITH_FACE[0])
    out = tmp_path / "out"
    assert recognize(str(tmp_path / "*" / WITH_FACE[0]), "--out", out) == 0
    rows = read_rows(out / "results.csv")
    assert sorted(Path(r["path"]).parent.name for r in rows) == ["a", "b"]
    stem, suffix = Path(WITH_FACE[0]).stem, Path(WITH_FACE[0]).suffix
    assert sorted(p.name for p in out.iterdir()) == sorted([WITH_FACE[0], f"{stem}_1{suffix}", "results.csv"])


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """`ferlite recognize sample.mp4` once for the module, with --csv elsewhere and --json."""
    tmp = tmp_path_factory.mktemp("video")
    out, csv_path, json_path = tmp / "out", tmp / "elsewhere" / "faces.csv", tmp / "faces.json"
    code = recognize(SAMPLE_CLIP, "--out", out, "--csv", csv_path, "--json", json_path)
    return code, out, csv_path, json_path


def test_video_file(clip_run, classifier):
    code, out, csv_path, json_path = clip_run
    assert code == 0
    assert not (out / "results.csv").exists(), "--csv must replace OUT/results.csv"
    rows = read_rows(csv_path)
    check_rows(rows, classifier.labels)
    frames = Counter(int(r["frame"]) for r in rows)
    assert set(frames) <= set(range(CLIP_FRAMES)) and max(frames.values()) <= 2  # two faces in the clip
    assert len(frames) >= MIN_ASTRONAUT_RECALL * CLIP_FRAMES
    assert all(r["path"] == "" and Path(r["source"]) == SAMPLE_CLIP for r in rows)
    assert count_frames(out / "sample.webm") == CLIP_FRAMES  # WebM/VP8: browsers play it
    records = json.loads(json_path.read_text())
    assert isinstance(records, list) and len(records) == len(rows)
    check_rows(records, classifier.labels)
    assert [(r["frame"], r["track_id"]) for r in records] == [(int(r["frame"]), int(r["track_id"])) for r in rows]


def test_usb_camera_on_recorded_mjpg(mjpg_clip, yunet, classifier, truth):
    # The CLI opens "0" as /dev/video0 with cv2.CAP_V4L2; here the same source reads a recorded MJPG stream.
    source = UsbCameraSource(str(mjpg_clip), api_preference=cv2.CAP_ANY)
    sink = run_pipeline(source, yunet, classifier, max_frames=USB_FRAMES)
    assert source.applied["fourcc"] == "MJPG"
    assert len(sink.results) == USB_FRAMES
    assert [r.index for r in sink.results] == list(range(USB_FRAMES))
    assert all(r.source == str(mjpg_clip) and r.path is None for r in sink.results)
    faces = [(r.index, f) for r in sink.results for f in r.faces]
    assert len(faces) >= USB_FRAMES  # the astronaut in every frame, the camera man in most
    for index, face in faces:
        assert match_truth(face.box, truth[index])[0] is not None, (index, face.box)
        assert face.label in (*classifier.labels, UNCERTAIN) and face.raw_label in classifier.labels
        assert len(face.probs) == len(classifier.labels)


@pytest.mark.parametrize("lores", [(480, 360), (480, 270)], ids=["lores-4:3", "lores-16:9"])
def test_picamera_lores_faces_map_to_main_frame(yunet, classifier, truth, lores):
    cls = make_picamera2(str(SAMPLE_CLIP))
    detector = RecordingDetector(yunet)
    source = PiCameraSource(size=(640, 480), lores=lores, picamera2_cls=cls)
    sink = run_pipeline(source, detector, classifier, max_frames=CLIP_FRAMES)
    (cam,) = cls.instances
    assert cam.camera_config["lores"] == {"format": "YUV420", "size": lores}
    assert cam.closed and cam.outstanding_requests == 0
    assert set(detector.shapes) == {(lores[1], lores[0])}, "faces must be detected on the lores grey plane"
    found: dict[int, int] = Counter()
    for r in sink.results:
        for f in r.faces:
            face, overlap = match_truth(f.box, truth[r.index])
            assert face is not None, f"frame {r.index}: box {f.box} IoU {overlap:.2f} with the truth (lores {lores})"
            found[face] += 1
    assert set(found) == {1, 2}
    assert found[1] >= MIN_ASTRONAUT_RECALL * CLIP_FRAMES


def test_picamera_lores_is_the_whole_frame_search(yunet, classifier, truth):
    """At the default settings the lores stream is the size of the detector's whole-frame search (320x240 for
    640x480 and 24-pixel faces); the regions around each face are cut from the main image."""
    config = load(system_path="/nonexistent")
    cls = make_picamera2(str(SAMPLE_CLIP))
    source = PiCameraSource(size=(640, 480), lores=lores_size(config), picamera2_cls=cls)
    recorded = RecordingDetector(yunet)
    regions = RegionDetector(recorded, every=config.detector.every, min_face=config.detector.min_face)
    sink = run_pipeline(source, regions, classifier, max_frames=CLIP_FRAMES)
    # Whole-frame searches on the grey lores plane, 320x240; regions cut from the BGR main image, 160x160.
    assert recorded.shapes.count((240, 320)) == regions.full_frames >= CLIP_FRAMES // config.detector.every
    assert set(recorded.shapes) == {(240, 320), (160, 160, 3)}
    found: dict[int, int] = Counter()
    for r in sink.results:
        for f in r.faces:
            face, overlap = match_truth(f.box, truth[r.index])
            assert face is not None, f"frame {r.index}: box {f.box} IoU {overlap:.2f} with the truth"
            found[face] += 1
    assert set(found) == {1, 2}
    assert found[1] >= MIN_ASTRONAUT_RECALL * CLIP_FRAMES


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the client hangs up after --max-frames: a broken pipe here is expected


@pytest.fixture
def http_clip(mjpg_clip):
    """The MJPG AVI served over http from 127.0.0.1 (an mp4 would need Range requests for its index)."""
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(mjpg_clip.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{mjpg_clip.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_stream(http_clip, tmp_path, capsys, classifier):
    cap = cv2.VideoCapture(http_clip)
    opened = cap.isOpened()
    cap.release()
    if not opened:
        ffmpeg = [line.strip() for line in cv2.getBuildInformation().splitlines() if "FFMPEG" in line]
        pytest.skip(f"OpenCV's FFmpeg backend cannot open {http_clip} here ({'; '.join(ffmpeg) or 'no FFMPEG'})")
    out = tmp_path / "out"
    assert recognize(http_clip, "--max-frames", 10, "--no-save", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "10 frame(s)" in printed
    assert [line.split(":")[0] for line in printed.splitlines()[:10]] == [f"frame {i}" for i in range(10)]
    rows = read_rows(out / "results.csv")
    check_rows(rows, classifier.labels)
    assert {int(r["frame"]) for r in rows} == set(range(10))
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]

    # A stream that ends mid-run finishes normally: summary printed, JSON written.
    assert recognize(http_clip, "--no-save", "--out", tmp_path / "all", "--json", tmp_path / "all.json") == 0
    captured = capsys.readouterr()
    assert "source ended" in captured.err and "frame(s)" in captured.out
    assert len(json.loads((tmp_path / "all.json").read_text())) == len(read_rows(tmp_path / "all" / "results.csv"))


# ---------------------------------------------------------------------------------------------- options


def test_max_frames_and_save_crops(tmp_path, classifier):
    out = tmp_path / "out"
    assert recognize(SAMPLE_CLIP, "--max-frames", 5, "--save-crops", "--out", out) == 0
    rows = read_rows(out / "results.csv")
    check_rows(rows, classifier.labels)
    assert {int(r["frame"]) for r in rows} <= set(range(5))
    assert count_frames(out / "sample.webm") == 5
    crops = sorted(p.name for p in (out / "crops").iterdir())
    assert crops == sorted(f"{int(r['frame']):06d}_t{r['track_id']}_{r['label']}.jpg" for r in rows)
    for r in rows:
        crop = cv2.imread(str(out / "crops" / f"{int(r['frame']):06d}_t{r['track_id']}_{r['label']}.jpg"))
        assert crop is not None and crop.shape[:2] == (int(r["h"]), int(r["w"]))


def test_no_save_writes_only_the_results(tmp_path, photo_folder):
    for spec in (SAMPLE_CLIP, photo_folder):
        out = tmp_path / f"out-{Path(spec).name}"
        assert recognize(spec, "--max-frames", 3, "--no-save", "--out", out) == 0
        assert sorted(p.name for p in out.iterdir()) == ["results.csv"]


def test_haar_detector(tmp_path, classifier):
    out = tmp_path / "out"
    assert recognize("--detector", "haar", "--out", out) == 0
    rows = read_rows(out / "results.csv")
    assert len(rows) == 1
    check_rows(rows, classifier.labels)


def test_bad_detector_is_a_one_line_usage_error(tmp_path, capsys):
    assert recognize("--detector", "yunett", "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith('ferlite recognize: error: --detector yunett: detector.type = "yunett": unknown detector')
    assert "did you mean 'yunet'" in err and "haar" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["missing.mp4", "missing.jpg"])
def test_missing_source_is_a_clear_error(tmp_path, capsys, name):
    missing = tmp_path / name
    assert recognize(missing, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ferlite recognize: error: ")
    assert f"{missing}: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [("--max-age", "-1"), ("--threads", "0"), ("--max-frames", "0"),
                                    ("--window", "0"), ("--threshold", "1.5")])
def test_bad_option_values_are_one_line_usage_errors(tmp_path, capsys, option):
    assert recognize(SAMPLE_CLIP, *option, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ferlite recognize: error: ")
    assert f"{option[0]} {option[1]}" in err and "Traceback" not in err


def one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("ferlite recognize: error: ") and "Traceback" not in err, err
    return err


def test_a_named_file_that_is_not_an_image_is_an_error(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    assert recognize(bad, "--out", tmp_path / "out") == 1
    assert f"{bad}: not an image" in one_line_error(capsys.readouterr().err)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_text("nope")
    assert recognize(folder, "--out", tmp_path / "out2") == 1
    assert f"{folder}: none of its 2 image file(s) could be read" in capsys.readouterr().err


def test_an_unquoted_glob_gets_a_hint(tmp_path, capsys):
    photos = sorted(str(p) for p in PHOTOS.glob("*.jpg"))  # what the shell passes for photos/*.jpg
    assert recognize(*photos, "--out", tmp_path / "out") == 2
    err = one_line_error(capsys.readouterr().err)
    assert f"{len(photos)} sources given" in err and "quote it ('photos/*.jpg')" in err


def test_show_without_a_gui_is_a_one_line_error(tmp_path, capsys):
    assert recognize(SAMPLE_JPG, "--show", "--out", tmp_path / "out") == 2
    assert "the live window (--show" in one_line_error(capsys.readouterr().err)


def test_default_output_folder_is_numbered_under_the_cwd(tmp_path):
    assert recognize("--no-save") == 0
    assert recognize("--no-save") == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "recognize").iterdir()) == ["exp", "exp2"]


# ---------------------------------------------------------------------------------------------- no TensorFlow


def test_edge_path_never_imports_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"  # any `import tensorflow` now raises ImportError
        "sys.modules['keras'] = None\n"
        "from ferlite.cli import main\n"
        f"code = main(['recognize', {str(SAMPLE_CLIP)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "real = sorted(m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras'))\n"
        "print('REAL', real, sys.modules['tensorflow'], sys.modules['keras'])\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "REAL [] None None" in r.stdout
    assert f"{CLIP_FRAMES} frame(s)" in r.stdout


# ---------------------------------------------------------------------------------------------- tracking


@pytest.fixture(scope="module")
def clip_results(yunet, classifier) -> dict[int, ListSink]:
    """The sample clip through the pipeline API, smoothed over 5 frames and not smoothed (window 1)."""
    return {w: run_pipeline(VideoFileSource(SAMPLE_CLIP), yunet, classifier, window=w) for w in (5, 1)}


def label_changes_per_second(results) -> dict[int, float]:
    """Per track: changes of the reported label between its consecutive frames, per second of the track."""
    seen: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for r in results:
        for f in r.faces:
            seen[f.track_id].append((r.timestamp, f.label))
    rates = {}
    for track_id, points in seen.items():
        changes = sum(a[1] != b[1] for a, b in zip(points, points[1:]))
        seconds = max(points[-1][0] - points[0][0], 1.0 / CLIP_FPS)
        rates[track_id] = changes / seconds
    return rates


def test_track_ids_are_stable(clip_results, truth, record_property):
    ids: dict[int, Counter] = defaultdict(Counter)
    for r in clip_results[5].results:
        for f in r.faces:
            face, overlap = match_truth(f.box, truth[r.index])
            assert face is not None, f"frame {r.index}: box {f.box} IoU {overlap:.2f} with the truth"
            ids[face][f.track_id] += 1
    assert set(ids) == {1, 2}
    main_ids = {face: counts.most_common(1)[0][0] for face, counts in ids.items()}
    assert main_ids[1] != main_ids[2]
    stability = {face: counts[main_ids[face]] / sum(counts.values()) for face, counts in ids.items()}
    record_property("track_stability", stability)
    print(f"\ntrack-id stability (share of a face's detected frames on its main track): {stability}; "
          f"frames detected: { {face: sum(c.values()) for face, c in ids.items()} }")
    assert min(stability.values()) >= MIN_TRACK_STABILITY, ids


def test_smoothing_gives_no_more_label_changes(clip_results, record_property):
    smoothed = label_changes_per_second(clip_results[5].results)
    raw = label_changes_per_second(clip_results[1].results)
    total = {w: sum(label_changes_per_second(s.results).values()) for w, s in clip_results.items()}
    record_property("label_changes_per_s_window5", smoothed)
    record_property("label_changes_per_s_window1", raw)
    print(f"\nlabel changes per second per track: window 5 {smoothed}, window 1 (no smoothing) {raw}")
    assert set(smoothed) == set(raw)
    assert total[5] <= total[1]
    for track_id in smoothed:
        assert smoothed[track_id] <= raw[track_id], (track_id, smoothed, raw)


# ---------------------------------------------------------------------------------------------- Python API


def test_to_dataframe_has_a_row_per_face(clip_results, classifier):
    results = clip_results[5].results
    df = to_dataframe(results)
    assert len(df) == sum(len(r.faces) for r in results) > 0
    check_rows(df.to_dict("records"), classifier.labels)
    assert list(df["frame"]) == [r.index for r in results for _ in r.faces]
    assert list(df["track_id"]) == [f.track_id for r in results for f in r.faces]
