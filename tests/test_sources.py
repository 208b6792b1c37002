"""Frame sources on real inputs: recorded clips, image folders, and the fake picamera2."""

from __future__ import annotations

import itertools
import logging
import sys

import cv2
import numpy as np
import pytest
from fakes import clip_frames, frame_index, write_clip
from fakes.picamera2 import Picamera2, make_picamera2

from ferlite.edge.sources.capture import StreamSource, UsbCameraSource, VideoFileSource
from ferlite.edge.sources.frames import FrameSource
from ferlite.edge.sources.images import ImageSource
from ferlite.edge.sources.picamera import PiCameraSource
from ferlite.edge.sources.registry import SOURCES, open_source
from ferlite.errors import SourceError, UsageError

FPS = 15
N_FRAMES = 30
#: Grey levels of the lores Y plane vs a limited-range conversion of BGR2GRAY (rounding only).
GREY_TOLERANCE = 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.avi", N_FRAMES, fps=FPS)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    frames = clip_frames(3, (320, 240))
    cv2.imwrite(str(folder / "a.png"), frames[0])
    cv2.imwrite(str(folder / "b.jpg"), frames[1])
    (folder / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cv2.imwrite(str(folder / "d.png"), frames[2])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_video_file_frames_and_timestamps(clip):
    with VideoFileSource(clip) as source:
        assert isinstance(source, FrameSource)
        assert source.fps == FPS
        frames = list(source)
    assert len(frames) == N_FRAMES
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)])
    assert [frame_index(f.image) for f in frames] == list(range(N_FRAMES))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].grey is None and frames[0].path is None


def test_video_file_errors_name_the_file(tmp_path):
    with pytest.raises(SourceError, match="missing.mp4"):
        VideoFileSource(tmp_path / "missing.mp4").open()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match="bad.mp4"):
        VideoFileSource(bad).open()


def test_usb_camera_on_recorded_mjpg(clip):
    source = UsbCameraSource(str(clip), width=320, height=240, fps=FPS, api_preference=cv2.CAP_ANY)
    with source:
        frames = list(itertools.islice(source, 10))
    assert source.applied["fourcc"] == "MJPG"
    assert (source.applied["width"], source.applied["height"]) == (320, 240)
    assert source.applied["fps"] == FPS
    assert set(source.applied) == {"fourcc", "width", "height", "fps", "buffersize"}
    assert [frame_index(f.image) for f in frames] == list(range(10))
    times = [f.timestamp for f in frames]
    assert times[0] >= 0 and times == sorted(times)


def test_usb_camera_failed_read_raises(clip):
    with UsbCameraSource(str(clip), api_preference=cv2.CAP_ANY) as source:
        with pytest.raises(SourceError, match=rf"read failed \(unplugged\?\) after {N_FRAMES} frames"):
            for _ in source:
                pass


def test_usb_camera_missing_device():
    with pytest.raises(SourceError, match="/dev/video99"):
        UsbCameraSource(99).open()


def test_stream_source_reads_through_ffmpeg(clip):
    with StreamSource(str(clip)) as source:
        frames = list(itertools.islice(source, 5))
        assert [frame_index(f.image) for f in frames] == list(range(5))
        with pytest.raises(SourceError, match="ended"):
            for _ in source:
                pass


def test_picamera_frames_and_lores_grey():
    frames_in = clip_frames(8, (640, 480))
    cls = make_picamera2(frames_in)
    source = PiCameraSource(size=(640, 480), lores=(200, 150), fps=30, picamera2_cls=cls)
    with source:
        (cam,) = cls.instances
        frames = []
        for frame in itertools.islice(source, 12):
            assert cam.outstanding_requests == 0
            frames.append(frame)
    assert cam.closed and not cam.started
    config = cam.camera_config
    assert config["main"] == {"format": "RGB888", "size": (640, 480)}
    assert config["lores"] == {"format": "YUV420", "size": (200, 150)}
    assert (config["buffer_count"], config["queue"], config["controls"]["FrameRate"]) == (4, False, 30.0)
    assert [frame_index(f.image) for f in frames] == [i % 8 for i in range(12)]
    for frame in frames:
        assert frame.image.shape == (480, 640, 3)
        assert frame.grey.shape == (150, 200) and frame.grey.flags["C_CONTIGUOUS"]
        small = cv2.resize(frame.image, (200, 150), interpolation=cv2.INTER_AREA)
        assert np.array_equal(frame.grey, cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420)[:150])
        # The Y plane is limited ("video") range, as the Pi's Rec709/SMPTE170M lores stream is.
        video_range = 16 + cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) * (219 / 255)
        assert np.abs(frame.grey - video_range).max() <= GREY_TOLERANCE
    times = [f.timestamp for f in frames]
    assert times == sorted(times)


def test_picamera_no_camera():
    cls = make_picamera2(cameras=())
    with pytest.raises(SourceError, match="no camera"):
        PiCameraSource(picamera2_cls=cls).open()
    assert cls.instances == []


def test_picamera_bad_configuration_is_a_source_error():
    cls = make_picamera2()
    with pytest.raises(SourceError, match="may not exceed main"):
        PiCameraSource(size=(320, 240), lores=(640, 480), picamera2_cls=cls).open()
    assert cls.instances[0].closed


def test_picamera_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    with pytest.raises(SourceError, match="sudo apt install python3-picamera2"):
        PiCameraSource().open()


def test_fake_rejects_rgb_lores_on_vc4():
    with Picamera2() as cam:
        config = cam.create_video_configuration(main={"format": "RGB888", "size": (640, 480)},
                                                lores={"format": "RGB888", "size": (320, 240)})
        with pytest.raises(RuntimeError, match="lores stream must be YUV"):
            cam.configure(config)
    pisp = make_picamera2(platform="pisp")
    with pisp() as cam:
        cam.configure(cam.create_video_configuration(lores={"format": "RGB888", "size": (320, 240)}))


def test_fake_yuv420_layout_and_request_rules():
    bgr = clip_frames(1, (640, 480))[0]
    cls = make_picamera2([bgr])
    with cls() as cam:
        cam.configure(cam.create_video_configuration(main={"format": "RGB888", "size": (640, 480)},
                                                     lores={"format": "YUV420", "size": (200, 150)},
                                                     buffer_count=2))
        cam.start()
        req = cam.capture_request()
        lores, main = req.make_array("lores"), req.make_array("main")
        req.release()
        with pytest.raises(RuntimeError, match="after release"):
            req.make_array("main")
        held = [cam.capture_request(), cam.capture_request()]
        with pytest.raises(RuntimeError, match="unreleased"):
            cam.capture_request()
        for r in held:
            r.release()
        assert cam.outstanding_requests == 0
        assert cam.capture_array("main").shape == (480, 640, 3)
    assert np.array_equal(main, bgr)
    assert lores.shape == (225, 256)  # (h * 3/2, stride padded to 64)
    small = cv2.resize(bgr, (200, 150), interpolation=cv2.INTER_AREA)
    assert np.array_equal(lores[:150, :200], cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420)[:150])
    assert not lores[:150, 200:].any()


def test_image_source_skips_unreadable(image_folder, caplog):
    caplog.set_level(logging.WARNING, logger="ferlite.edge.sources.images")
    with ImageSource(image_folder) as source:
        frames = list(source)
    assert [f.path.rsplit("/", 1)[-1] for f in frames] == ["a.png", "b.jpg", "d.png"]
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0]
    assert [f.index for f in frames] == [0, 1, 2]
    assert frame_index(frames[2].image) == 2
    assert "c_broken.jpg" in caplog.text


def test_many_unreadable_photos_are_named_a_few_times_then_counted(tmp_path, caplog):
    from ferlite.edge.sources.images import SHOWN_SKIPS

    caplog.set_level(logging.DEBUG, logger="ferlite.edge.sources.images")
    cv2.imwrite(str(tmp_path / "good.png"), np.zeros((8, 8, 3), np.uint8))
    for i in range(10):
        (tmp_path / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with ImageSource(tmp_path) as source:
        assert len(list(source)) == 1 and len(source.skipped) == 10
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == SHOWN_SKIPS + 1 and "further unreadable files" in warned[-1]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 10 - SHOWN_SKIPS  # -v shows every one


def test_image_source_file_glob_and_empty(image_folder, tmp_path):
    assert len(list(ImageSource(image_folder / "a.png"))) == 1
    assert [f.path.rsplit("/", 1)[-1] for f in ImageSource(str(image_folder / "*.png"))] == ["a.png", "d.png"]
    with pytest.raises(SourceError, match="no image files"):
        ImageSource(tmp_path / "nothing-*.png").open()


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("picamera", "picamera"), ("picam", "picamera"), ("0", "usb"), ("/dev/video2", "usb"),
     ("rtsp://user:secret@cam.local/stream", "stream"), ("http://cam.local/video.mjpg", "stream"),
     ("https://cam.local/live", "stream")],
)
def test_open_source_dispatch_live(spec, kind):
    source = open_source(spec)
    assert type(source) is SOURCES[kind]
    assert "secret" not in source.name


def test_open_source_dispatch_files(clip, image_folder):
    assert type(open_source(str(clip))) is VideoFileSource
    assert type(open_source(str(image_folder))) is ImageSource
    assert type(open_source(str(image_folder / "a.png"))) is ImageSource
    assert type(open_source(str(image_folder / "*.png"))) is ImageSource
    assert open_source("0").device == 0
    assert open_source("/dev/video2").device == "/dev/video2"


def test_open_source_options(clip):
    assert open_source("0", width=320, height=240).requested["width"] == 320
    assert type(open_source(str(clip), fps=30, width=320)) is VideoFileSource  # camera options ignored
    cls = make_picamera2()
    with open_source("picamera", picamera2_cls=cls, lores=(160, 120)) as source:
        assert next(iter(source)).grey.shape == (120, 160)
    with pytest.raises(UsageError, match="resolution"):
        open_source("0", resolution=(1, 2))


def test_open_source_unknown(tmp_path):
    with pytest.raises(SourceError, match="picamera.*rtsp://.*video file"):
        open_source("nonsense")
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))


def test_fd2_is_swapped_by_one_thread_at_a_time():
    """An image decode (decodelog) and a silenced TensorFlow call (ferlite.quiet) in two threads: the second
    waits for the first to give fd 2 back, so stderr ends where it started (it could end on a closed file)."""
    import os
    import threading

    from ferlite.edge.imagefiles.decodelog import native_output
    from ferlite.quiet import native_logging_silenced

    before = os.fstat(2)
    inside, release = threading.Event(), threading.Event()

    def decode():
        with native_output():
            inside.set()
            release.wait(5)

    def silenced():
        with native_logging_silenced():
            pass

    first = threading.Thread(target=decode)
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=silenced)
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for the decode to give fd 2 back
    release.set()
    first.join(5)
    second.join(5)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
