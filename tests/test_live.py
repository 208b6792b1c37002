"""Live outputs for real: `ferlite run` on a recorded clip serves HTTP (kiosk page, MJPEG, JSON, SSE) and
publishes to Debian's mosquitto; headless Chromium renders the kiosk page."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from live import (
    ROOT,
    Broker,
    Subscriber,
    ferlite,
    free_port,
    get_json,
    need,
    service,
    wait_for_json,
    wait_for_port,
    write_config,
)

LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "uncertain"}
ARTEFACTS = ROOT / "runs" / "test-artefacts"


@pytest.fixture()
def http_service(tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"127.0.0.1:{port}"})
    with service(config, tmp_path / "service.log") as proc:
        wait_for_port(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        wait_for_json(f"{base}/api/status", lambda s: s["frames"] > 30)
        yield base, tmp_path


def read_mjpeg(url: str, frames: int) -> list[np.ndarray]:
    """The first ``frames`` JPEG parts of a multipart/x-mixed-replace stream, decoded by OpenCV."""
    images = []
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(images) < frames:
            line = r.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                r.readline()  # the blank line after the part's headers
                images.append(cv2.imdecode(np.frombuffer(r.read(length), np.uint8), cv2.IMREAD_COLOR))
    return images


def read_sse(url: str, count: int, timeout: float = 60) -> list[tuple[str, dict]]:
    """The first ``count`` server-sent events (name, data), parsed as they arrive."""
    events, name, deadline = [], "message", time.monotonic() + timeout
    with urllib.request.urlopen(url, timeout=timeout) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        while len(events) < count and time.monotonic() < deadline:
            line = r.readline().decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                name = "message"
    return events


def test_http_api_stream_and_events(http_service):
    base, tmp_path = http_service
    status = get_json(f"{base}/api/status")
    assert {"version", "uptime_s", "source", "model", "detector", "fps", "faces_now", "last_error"} <= set(status)
    assert status["detector"] == "yunet" and status["fps"] > 0 and status["source"].endswith("sample.mp4")
    faces = wait_for_json(f"{base}/api/faces", lambda f: len(f["faces"]) == 2)["faces"]
    assert {f["label"] for f in faces} <= LABELS and all(len(f["box"]) == 4 for f in faces)
    assert all(abs(sum(f["probs"].values()) - 1) < 0.01 for f in faces)
    images = read_mjpeg(f"{base}/stream.mjpg", 3)
    assert all(image is not None and image.shape == (480, 640, 3) for image in images)
    events = read_sse(f"{base}/api/events", 6)  # the clip loops: faces appear again and again
    assert events[0][0] == "status"
    kinds = {name for name, _ in events[1:]}
    assert kinds <= {"appeared", "label", "gone"} and "appeared" in kinds | {"label"}
    assert all(data["label"] in LABELS and data["track_id"] >= 1 for name, data in events[1:])
    history = wait_for_json(f"{base}/api/history?bucket=minute", lambda h: h["rows"])
    counted = sum(sum(row["counts"].values()) for row in history["rows"])
    assert counted > 0 and set(history["labels"]) <= LABELS
    assert wait_for_json(f"{base}/api/history?since=1h&bucket=hour", lambda h: h["rows"])["bucket"] == 3600
    page = urllib.request.urlopen(f"{base}/", timeout=10).read().decode()
    assert "<title>ferlite</title>" in page and "http://" not in page and "https://" not in page


def test_kiosk_page_in_headless_chromium(http_service):
    chromium = need("chromium")
    base, tmp_path = http_service
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--timeout=5000"]
    dom = subprocess.run([*flags, "--dump-dom", f"{base}/"], capture_output=True, text=True, timeout=120).stdout
    assert 'class="face"' in dom, dom[-2000:]
    shown = {label for label in LABELS if f'class="label {label}">{label}<' in dom}
    assert shown and shown <= LABELS
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "kiosk.png"
    subprocess.run([*flags, "--window-size=1280,720", f"--screenshot={shot}", f"{base}/"], capture_output=True,
                   timeout=120, check=True)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (720, 1280)


def test_a_token_is_required_off_loopback(tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"0.0.0.0:{port}"})
    r = subprocess.run(ferlite("run", "--config", str(config), "--max-frames", "1"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "http.token" in r.stderr and "not loopback" in r.stderr, r.stderr
    check = subprocess.run(ferlite("check", "--config", str(config), "--set", "http.token=s3cret-s3cret-s3cret"),
                           capture_output=True, text=True, timeout=120)
    assert f"http://0.0.0.0:{port}/ (token set" in check.stdout, check.stdout + check.stderr
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"0.0.0.0:{port}",
                                                          "token": "s3cret-s3cret-s3cret"})
    with service(config, tmp_path / "service.log") as proc:
        wait_for_port(port, proc=proc)
        url = f"http://127.0.0.1:{port}/api/status"
        with pytest.raises(urllib.error.HTTPError) as refused:
            get_json(url)
        assert refused.value.code == 401
        assert get_json(url, {"Authorization": "Bearer s3cret-s3cret-s3cret"})["version"]
        assert get_json(url + "?token=s3cret-s3cret-s3cret")["version"]


def test_stream_off_leaves_labels_only(tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"127.0.0.1:{port}",
                                                          "stream": False})
    with service(config, tmp_path / "service.log") as proc:
        wait_for_port(port, proc=proc)
        with pytest.raises(urllib.error.HTTPError) as off:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10)
        assert off.value.code == 404
        status = wait_for_json(f"http://127.0.0.1:{port}/api/status", lambda s: s["faces_now"] > 0)
        assert status["stream"] is False


def test_blurred_faces_cannot_be_read():
    from ferlite.edge.outputs.media import blur_faces
    from ferlite.edge.results import FaceResult, FrameResult

    image = cv2.imread(str(ROOT / "edge" / "data" / "sample.jpg"))
    h, w = image.shape[:2]
    box = (w // 4, h // 4, w // 2, h // 2)
    face = FaceResult(1, box, "happy", 0.9, (0.9, 0.1), "happy", 0.9)
    out = blur_faces(image, FrameResult(0, 0.0, "x", (face,), ("happy", "sad")))
    x, y, bw, bh = box

    def sharpness(img):
        return cv2.Laplacian(cv2.cvtColor(img[y:y + bh, x:x + bw], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()

    assert sharpness(out) < 0.1 * sharpness(image)
    assert np.array_equal(out[:y], image[:y])  # outside the face: untouched


# ------------------------------------------------------------------------------------------------ MQTT


def mqtt_config(tmp_path: Path, port: int, name: str, **extra) -> Path:
    keys = {"enabled": True, "port": port, "topic_prefix": f"ferlite/{name}", "client_id": f"ferlite-{name}",
            "state_interval": 0.5, **extra}
    return write_config(tmp_path / f"{name}.toml", mqtt=keys, log={"path": str(tmp_path / f"{name}.db")})


def configs_node(sub: Subscriber) -> str:
    """The node id in the discovery topics seen so far (this machine's host name)."""
    return next(t.split("/")[2] for t, _, _ in sub.messages if t.startswith("ha/"))


def test_mqtt_availability_state_faces_events_and_discovery(tmp_path):
    broker = Broker().start()
    sub = Subscriber(broker.port)
    try:
        config = mqtt_config(tmp_path, broker.port, "kiosk1", discovery_prefix="ha")
        with service(config, tmp_path / "service.log") as proc:
            sub.wait_for("ferlite/kiosk1/availability", lambda p: p == "online")
            state = json.loads(sub.wait_for("ferlite/kiosk1/state", lambda p: json.loads(p)["faces"] == 2))
            assert state["expression"] in LABELS
            faces = json.loads(sub.wait_for("ferlite/kiosk1/faces"))["faces"]
            assert faces and {f["label"] for f in faces} <= LABELS
            event = json.loads(sub.wait_for("ferlite/kiosk1/events"))
            assert event["type"] in ("appeared", "label", "gone") and event["label"] in LABELS
            late = Subscriber(broker.port, "ha/#")  # a subscriber that comes later gets the retained configs
            late.wait_for("ha/binary_sensor/" + configs_node(sub) + "/face_present/config")
            configs = {t: json.loads(p) for t, p, retained in late.messages if retained}
            late.close()
            assert {t.split("/")[1] for t in configs} == {"sensor", "binary_sensor"} and len(configs) == 3
            for payload in configs.values():
                assert payload["availability_topic"] == "ferlite/kiosk1/availability"
                assert payload["state_topic"] == "ferlite/kiosk1/state" and payload["device"]["identifiers"]
            proc.send_signal(signal.SIGKILL)  # no clean stop: the broker sends the last will
            proc.wait(10)
            sub.wait_for("ferlite/kiosk1/availability", lambda p: p == "offline", timeout=30)
    finally:
        sub.close()
        broker.stop()


def test_broker_down_is_not_fatal_and_two_devices_share_a_broker(tmp_path):
    broker = Broker()
    http_port = free_port()
    one = mqtt_config(tmp_path, broker.port, "dev1")
    with open(one, "a") as f:
        f.write(f'[http]\nenabled = true\nlisten = "127.0.0.1:{http_port}"\n')
    two = mqtt_config(tmp_path, broker.port, "dev2")
    status = f"http://127.0.0.1:{http_port}/api/status"
    try:  # the broker outlives the services, so their last outage is the test's own
        with service(one, tmp_path / "dev1.log") as proc1, service(two, tmp_path / "dev2.log"):
            wait_for_port(http_port, proc=proc1)  # the broker is not there yet: the service runs anyway
            before = wait_for_json(status, lambda s: s["frames"] > 100)
            assert proc1.poll() is None
            broker.start()
            fleet = subprocess.Popen([sys.executable, str(ROOT / "docs" / "examples" / "fleet_subscriber.py"),
                                      "--port", str(broker.port), "--db", str(tmp_path / "fleet.db"), "--seconds", "8"],
                                     stdout=subprocess.PIPE, text=True)
            sub = Subscriber(broker.port)
            try:
                for dev in ("dev1", "dev2"):
                    sub.wait_for(f"ferlite/{dev}/availability", lambda p: p == "online")
                    sub.wait_for(f"ferlite/{dev}/events")
                fleet_out = fleet.communicate(timeout=60)[0]  # docs/live-outputs.md: one table, both devices
                assert "dev1: " in fleet_out and "dev2: " in fleet_out, fleet_out
                broker.stop()  # the broker goes away mid-run ...
                time.sleep(3)
                down = get_json(status)
                broker.start()  # ... and comes back: both reconnect and go on
                sub.close()
                sub = Subscriber(broker.port)
                for dev in ("dev1", "dev2"):
                    sub.wait_for(f"ferlite/{dev}/faces", timeout=60)
            finally:
                sub.close()
    finally:
        broker.stop()
    assert down["fps"] > 0.6 * before["fps"], (before["fps"], down["fps"])
    lines = [line for line in (tmp_path / "dev1.log").read_text().splitlines() if "MQTT" in line]
    warnings = [line for line in lines if "WARNING" in line]  # once when down at start, once when lost
    assert len(warnings) == 2 and all("retrying every 1-30 s" in line for line in warnings), lines
    assert "cannot be reached" in warnings[0] and "lost" in warnings[1], lines
    assert sum("is back after" in line for line in lines) == 2, lines  # after each outage


def test_password_file_and_missing_file_error(tmp_path):
    config = write_config(tmp_path / "c.toml", mqtt={"enabled": True, "username": "u",
                                                     "password_file": str(tmp_path / "nope")})
    r = subprocess.run(ferlite("run", "--config", str(config), "--max-frames", "1"), capture_output=True, text=True,
                       timeout=120, env={**os.environ, "CI": ""})
    assert r.returncode == 2 and "password_file" in r.stderr and "Traceback" not in r.stderr


def test_recognize_serve_is_a_live_demo_until_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen(ferlite("recognize", str(ROOT / "edge" / "data" / "sample.mp4"), "--serve", "--out",
                                    str(tmp_path / "out"), "--set", f"http.listen=127.0.0.1:{port}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # Ctrl-C reaches it even when the tests run as a background job (SIGINT ignored there)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_port(port, proc=proc)
        status = wait_for_json(f"http://127.0.0.1:{port}/api/status", lambda s: s["frames"] > 10)
        assert status["fps"] < 30  # the clip plays at its own 15 frames/s, not as fast as it decodes
        ended = wait_for_json(f"http://127.0.0.1:{port}/api/status", lambda s: s["ended"], timeout=30)
        assert proc.poll() is None  # the page stays up after the clip ended
        assert ended["frames"] == 90 and ended["faces_now"] == 0 and ended["fps"] == 0
        faces = get_json(f"http://127.0.0.1:{port}/api/faces")
        assert faces["labels"] and faces["faces"] == []  # not the faces of the last frame, as if still there
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10) as r:
            body = r.read()  # the last frame, once, then the stream ends: a still, never a broken picture
        jpeg = body[body.index(b"\r\n\r\n") + 4:body.rindex(b"\r\n")]
        assert body.count(b"--ferliteframe") == 1
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "still serving http://127.0.0.1" in out and "90 frame(s)" in out


def test_recognize_serve_stopped_by_sigterm_keeps_its_results(tmp_path):
    """systemd and `timeout` stop with SIGTERM: the csv has a row per face counted, the video is whole, and the
    summary is printed, as after Ctrl-C."""
    port, out = free_port(), tmp_path / "out"
    proc = subprocess.Popen(ferlite("recognize", str(ROOT / "edge" / "data" / "sample.mp4"), "--serve", "--out",
                                    str(out), "--set", f"http.listen=127.0.0.1:{port}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc=proc)
        wait_for_json(f"http://127.0.0.1:{port}/api/status", lambda s: s["frames"] > 30)
    finally:
        proc.send_signal(signal.SIGTERM)  # mid-clip
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = re.search(r"^(\d+) frame\(s\), (\d+) face\(s\)", stdout, re.M)
    assert summary and "stopped" in err and "Traceback" not in err, stdout + err
    frames, faces = int(summary.group(1)), int(summary.group(2))
    assert 30 < frames < 90 and faces > 0
    with open(out / "results.csv") as f:
        assert len(f.read().splitlines()) - 1 == faces  # every row written and flushed
    cap = cv2.VideoCapture(str(next(out.glob("sample.*"))))  # the annotated video (webm, or mp4)
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    cap.release()
    assert decoded == frames  # finalised: every frame written reads back
