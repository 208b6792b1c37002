"""`ferlite run` and the sd_notify protocol, against a NOTIFY_SOCKET that the test binds.

The service runs as a subprocess on recorded clips: a video file, and the same kind of clip served over
HTTP by a test server whose gate the test closes to stall the source in the middle of the real frame loop.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from fakes import write_clip
from live import free_port

from ferlite.edge.service.run import Signals, Systemd

START_TIMEOUT_S = 90  # imports and model load on a busy 2-core CI machine
WATCHDOG_USEC = 400_000  # pings expected at most every 0.2 s
MIN_PING_GAP_S = 0.1  # 0.2 s less generous receive-time jitter; a ping per frame would be 0.05 s
QUIET_S = 1.0  # no ping for this long means the frame loop has stopped
FERLITE = Path(sys.executable).with_name("ferlite")


# ------------------------------------------------------------------------------------------------ helpers


class NotifyListener:
    """Binds a unix datagram socket (a path, or '@name' for an abstract one) and records every message."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def find(self, line: str, start: int = 0) -> int | None:
        """Index of the first message at or after ``start`` that has ``line`` as one of its lines."""
        for i, (_, text) in enumerate(self.snapshot()[start:], start):
            if line in text.split("\n"):
                return i
        return None

    def wait_for(self, line: str, start: int = 0, timeout: float = START_TIMEOUT_S, proc=None) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            index = self.find(line, start)
            if index is not None:
                return index
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"ferlite exited with {proc.returncode} before {line!r}")
            time.sleep(0.02)
        raise AssertionError(f"no {line!r} within {timeout} s; got {self.snapshot()[start:]!r}")

    def ping_times(self) -> list[float]:
        return [t for t, text in self.snapshot() if "WATCHDOG=1" in text.split("\n")]

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self.sock.close()


class ClipServer:
    """Serves a clip over HTTP as an unseekable stream at about ``rate`` bytes/s. Clearing ``flowing``
    stalls it mid-stream with the connection open, as a frozen network camera would."""

    def __init__(self, data: bytes, rate: float = 400_000, chunk: int = 4096, port: int = 0):
        self.flowing = threading.Event()
        self.flowing.set()
        self._closing = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "video/x-msvideo")
                self.end_headers()
                for pos in range(0, len(data), chunk):
                    while not server.flowing.wait(0.05):
                        if server._closing.is_set():
                            return
                    if server._closing.is_set():
                        return
                    try:
                        self.wfile.write(data[pos:pos + chunk])
                    except OSError:
                        return
                    time.sleep(chunk / rate)

            def log_message(self, *args) -> None:
                pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True  # the same port again after an outage
        self._httpd = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/clip.avi"

    def close(self) -> None:
        self._closing.set()
        self.flowing.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def service_env(notify: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "STATE_DIRECTORY")}
    if notify:
        env["NOTIFY_SOCKET"] = notify
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    return env


def write_config(path: Path, spec: str, db: Path, **extra: str) -> Path:
    """A service config: the given source and log file, one interpreter thread, quick retries."""
    sections = {
        "source": {"spec": f'"{spec}"'},
        "classifier": {"threads": "1"},
        "log": {"path": f'"{db}"'},
        "service": {"status_interval": "0.5", "reconnect_delay": "0.2", "reconnect_max_delay": "0.5"},
    }
    for key, value in extra.items():
        section, name = key.split("__")
        sections.setdefault(section, {})[name] = value
    path.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in sections.items()))
    return path


def start(config: Path, log_file: Path, notify: str | None, *args: str) -> subprocess.Popen:
    command = [str(FERLITE)] if FERLITE.exists() else [sys.executable, "-m", "ferlite"]
    with open(log_file, "w") as err:
        return subprocess.Popen([*command, "run", "--config", str(config), *args], env=service_env(notify),
                                stdout=subprocess.DEVNULL, stderr=err)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def db_rows(db: Path) -> int:
    # closing(): a sqlite3 connection is freed only by the garbage collector (3.11 keeps a reference cycle),
    # and one left open would keep the service from removing its WAL file on close.
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 320x240 MJPG clip of the astronaut photo (one face)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.avi", 60, fps=15)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough (30 s at the server's pace) not to end during a test."""
    return write_clip(tmp_path_factory.mktemp("clip") / "long.avi", 600, fps=15)


@pytest.fixture
def notify_path(tmp_path_factory):
    # A short path: unix socket paths are limited to 108 bytes.
    folder = Path(f"/tmp/ferlite-notify-{uuid.uuid4().hex[:8]}")
    folder.mkdir()
    listener = NotifyListener(str(folder / "notify"))
    yield listener
    listener.close()
    (folder / "notify").unlink(missing_ok=True)
    folder.rmdir()


@pytest.fixture
def notify_abstract():
    listener = NotifyListener(f"@ferlite-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield listener
    listener.close()


# ------------------------------------------------------------------------------------------------ the notifier


def test_notifier_does_nothing_outside_systemd():
    env = {"WATCHDOG_USEC": "30000000"}
    sd = Systemd(env)
    assert not sd.enabled
    assert not sd.ready() and not sd.watchdog() and not sd.stopping() and not sd.status("x")
    assert sd.watchdog_period() == 30.0  # the variables are still read, and removed
    assert env == {}


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_notifier_sends_to_path_and_abstract_sockets_and_pops_the_variables(kind, request):
    listener = request.getfixturevalue(f"notify_{kind}")
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid()),
           "OTHER": "kept"}
    sd = Systemd(env)
    assert env == {"OTHER": "kept"}  # children must not inherit them
    assert sd.enabled and sd.watchdog_period() == 2.0
    assert sd.ready("first frame logged") and sd.watchdog() and sd.status("12.0 frames/s,\n 1 face")
    assert sd.reloading() and sd.stopping()
    listener.wait_for("STOPPING=1", timeout=5)
    texts = [text for _, text in listener.snapshot()]
    assert texts[:3] == ["READY=1\nSTATUS=first frame logged", "WATCHDOG=1", "STATUS=12.0 frames/s, 1 face"]
    assert texts[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    sd.close()


def test_watchdog_period_only_for_this_pid_and_positive_values():
    assert Systemd({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_period() is None
    assert Systemd({"WATCHDOG_USEC": "0"}).watchdog_period() is None
    assert Systemd({"WATCHDOG_USEC": "junk"}).watchdog_period() is None
    assert Systemd({"NOTIFY_SOCKET": "vsock:1:2"}).enabled is False  # not a unix socket: ignored


def test_signal_handlers_only_set_flags():
    s = Signals()
    s.handle(signal.SIGHUP)
    assert s.reload.is_set() and s.wake.is_set() and not s.stop.is_set()
    assert s.take_reload() and not s.take_reload() and not s.wake.is_set()
    t0 = time.monotonic()
    s.handle(signal.SIGTERM)
    assert s.stop.is_set() and s.pause(10) and time.monotonic() - t0 < 1
    s.handle(signal.SIGHUP)
    assert s.take_reload() and s.wake.is_set()  # a pending stop keeps the loop woken


# ------------------------------------------------------------------------------------------------ ferlite run


def test_ready_after_first_frame_pings_only_while_frames_flow_reload_and_stop(tmp_path, long_clip, notify_path):
    server = ClipServer(long_clip.read_bytes())
    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", server.url, db)
    proc = start(config, tmp_path / "stderr.log", notify_path.address)
    try:
        ready = notify_path.wait_for("READY=1", proc=proc)
        # Read at once: READY=1 means the first frame went through the pipeline into the log (its labels are
        # stored; a face's first row follows once its label has settled, [tracking] hold).
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("SELECT value FROM meta WHERE key = 'labels'").fetchone()
        assert "1 face(s) in view" in notify_path.snapshot()[ready][1]
        first_ping = notify_path.wait_for("WATCHDOG=1", proc=proc, timeout=10)
        assert first_ping >= ready  # no ping before a frame reached the log
        time.sleep(1.0)
        pings = notify_path.ping_times()
        assert len(pings) >= 3, pings
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert min(gaps) >= MIN_PING_GAP_S, gaps  # at most every WatchdogSec/2

        server.flowing.clear()  # the camera freezes: the frame loop blocks in the read
        deadline = time.monotonic() + 15
        while time.monotonic() - notify_path.ping_times()[-1] < QUIET_S:
            assert time.monotonic() < deadline, "pings went on while the source was stalled"
            time.sleep(0.05)
        stalled_count = len(notify_path.snapshot())
        time.sleep(1.5)
        assert notify_path.find("WATCHDOG=1", stalled_count) is None
        assert proc.poll() is None

        server.flowing.set()  # frames flow again: so do the pings
        notify_path.wait_for("WATCHDOG=1", stalled_count, proc=proc, timeout=15)

        write_config(config, server.url, db, detector__type='"haar"', tracking__window="3")
        before = len(notify_path.snapshot())
        proc.send_signal(signal.SIGHUP)
        reloading = notify_path.wait_for("RELOADING=1", before, proc=proc, timeout=30)
        notify_path.wait_for("READY=1", reloading + 1, proc=proc, timeout=60)
        assert stop(proc) == 0
        notify_path.wait_for("STOPPING=1", reloading, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    log = (tmp_path / "stderr.log").read_text()
    assert "reloaded the configuration: detector, tracking changed; rebuilt detector, tracker" in log, log
    assert db_rows(db) >= 1
    assert "Traceback" not in log


def test_a_reload_whose_outputs_fail_to_open_keeps_the_running_ones(tmp_path, long_clip, notify_path):
    """SIGHUP with a [log] path that cannot be opened (under a regular file): the service says so, reopens
    the running log and goes on writing it; nothing dies."""
    server = ClipServer(long_clip.read_bytes())
    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", server.url, db, log__commit_interval="0.5")
    proc = start(config, tmp_path / "stderr.log", notify_path.address)
    try:
        notify_path.wait_for("READY=1", proc=proc)
        (tmp_path / "a-file").write_text("not a folder")
        write_config(config, server.url, tmp_path / "a-file" / "expressions.db", log__commit_interval="0.5")
        before = len(notify_path.snapshot())
        proc.send_signal(signal.SIGHUP)
        reloading = notify_path.wait_for("RELOADING=1", before, proc=proc, timeout=30)
        notify_path.wait_for("READY=1", reloading + 1, proc=proc, timeout=60)
        rows = db_rows(db)
        deadline = time.monotonic() + 20
        while db_rows(db) <= rows:  # the running log goes on
            assert time.monotonic() < deadline and proc.poll() is None, "no rows after the failed reload"
            time.sleep(0.2)
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    log = (tmp_path / "stderr.log").read_text()
    assert "reload failed, keeping the running configuration: its outputs did not open" in log, log
    assert "a-file" in log and "Traceback" not in log


def test_sigterm_sends_stopping_and_flushes_the_log(tmp_path, clip, notify_abstract):
    db = tmp_path / "expressions.db"
    # One row per face per frame, committed only every hour: rows after READY reach the file only by the
    # flush on the way out.
    config = write_config(tmp_path / "config.toml", str(clip), db, source__loop="true",
                          log__commit_interval="3600.0", log__log_interval="0.0")
    proc = start(config, tmp_path / "stderr.log", notify_abstract.address)
    try:
        ready = notify_abstract.wait_for("READY=1", proc=proc)
        rows_at_ready = db_rows(db)  # 0 or 1: a face's first row waits until its label has settled
        assert notify_abstract.wait_for("WATCHDOG=1", proc=proc, timeout=10) >= ready
        deadline = time.monotonic() + 30
        while not any("frames/s" in text for _, text in notify_abstract.snapshot()[ready + 1:]):
            assert time.monotonic() < deadline and proc.poll() is None, notify_abstract.snapshot()
            time.sleep(0.05)
        assert db_rows(db) == rows_at_ready  # still in the open transaction
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    messages = [text for _, text in notify_abstract.snapshot()]
    assert "STOPPING=1" in messages[-1].split("\n")
    status = [m for m in messages if m.startswith("STATUS=") and "frames/s" in m]
    assert status and "face(s) in view" in status[0]
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists()  # checkpointed and removed on close
    with contextlib.closing(sqlite3.connect(db)) as conn:  # another connection: rows committed, file sound
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0] > rows_at_ready
    log = (tmp_path / "stderr.log").read_text()
    assert "stopped after" in log and "Traceback" not in log


def test_outside_systemd_the_same_run_works_silently(tmp_path, clip):
    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", str(clip), db)
    proc = start(config, tmp_path / "stderr.log", None, "--max-frames", "10")  # 0.67 s: the face settles
    assert proc.wait(START_TIMEOUT_S) == 0
    log = (tmp_path / "stderr.log").read_text()
    assert "notify off (not under systemd)" in log and "cannot notify" not in log
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO ferlite\.edge\.service\.run: started: ", log, re.M), log
    assert db_rows(db) >= 1


def test_outside_systemd_a_status_line_goes_to_the_terminal(tmp_path, clip):
    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", str(clip), db, source__loop="true", service__status_interval="0.2")
    proc = start(config, tmp_path / "stderr.log", None, "--max-frames", "300")
    assert proc.wait(START_TIMEOUT_S) == 0
    log = (tmp_path / "stderr.log").read_text()
    lines = re.findall(r"INFO ferlite\.edge\.service\.run: status: [\d.]+ frames/s, \d face\(s\) in view, "
                       r"(\d+) frames, (\d+) rows logged$", log, re.M)
    assert len(lines) >= 2, log  # 300 frames take well over 0.4 s
    assert [int(f) for f, _ in lines] == sorted(int(f) for f, _ in lines) and int(lines[-1][1]) >= 1


def test_logs_for_journald_have_priorities_and_no_timestamps(tmp_path, clip):
    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", str(clip), db)
    err_path = tmp_path / "stderr.log"
    command = [str(FERLITE)] if FERLITE.exists() else [sys.executable, "-m", "ferlite"]
    with open(err_path, "w") as err:
        st = os.fstat(err.fileno())  # systemd sets JOURNAL_STREAM to the device:inode of the stream it gave
        env = {**service_env(None), "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        r = subprocess.run([*command, "run", "--config", str(config), "--max-frames", "2"], env=env,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=START_TIMEOUT_S)
    assert r.returncode == 0
    lines = [line for line in err_path.read_text().splitlines() if " ferlite.edge." in line]
    assert lines[0].startswith("<6>INFO ferlite.edge.service.run: started: ")
    assert all(re.match(r"<[2-7]>[A-Z]+ ferlite\.edge\.", line) for line in lines), lines


def test_a_missing_camera_is_retried_with_backoff_then_exits_nonzero(tmp_path, notify_path):
    db = tmp_path / "expressions.db"
    unplugged = f"http://127.0.0.1:{free_port()}/camera.avi"  # a network camera that does not answer
    config = write_config(tmp_path / "config.toml", unplugged, db, service__reconnect_attempts="3")
    proc = start(config, tmp_path / "stderr.log", notify_path.address)
    assert proc.wait(START_TIMEOUT_S) == 1  # non-zero: Restart=on-failure restarts the service
    log = (tmp_path / "stderr.log").read_text()
    assert log.count("retrying in") == 2, log
    assert "retrying in 0.2 s (failure 1 of 3)" in log and "retrying in 0.4 s (failure 2 of 3)" in log
    assert "giving up so that systemd can restart the service" in log and "Traceback" not in log
    assert notify_path.find("READY=1") is None  # the start budget (60 s) is not used up
    statuses = [text for _, text in notify_path.snapshot() if text.startswith("STATUS=waiting for the camera")]
    assert len(statuses) == 2
    notify_path.wait_for("STOPPING=1", timeout=5)


def test_by_default_the_service_waits_for_a_camera_however_long_it_is_away(tmp_path, clip, notify_path):
    """reconnect_attempts = 0: no exit, the watchdog is pinged while waiting, READY after the start budget, and
    the service logs again as soon as the source is back (a network camera that starts answering)."""
    db = tmp_path / "expressions.db"
    port = free_port()
    config = write_config(tmp_path / "config.toml", f"http://127.0.0.1:{port}/clip.avi", db,
                          service__start_budget="1.0")
    proc = start(config, tmp_path / "stderr.log", notify_path.address)
    camera = None
    try:
        notify_path.wait_for("READY=1", proc=proc, timeout=60)  # ready without a camera, after the budget
        time.sleep(2)
        assert proc.poll() is None and db_rows(db) == 0
        waiting = [t for _, t in notify_path.snapshot() if t.startswith("STATUS=waiting for the camera")]
        assert waiting and notify_path.find("WATCHDOG=1") is not None
        camera = ClipServer(Path(clip).read_bytes(), port=port)  # the camera comes back
        t0 = time.monotonic()
        while db_rows(db) == 0 and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        assert db_rows(db) > 0 and time.monotonic() - t0 < 10
    finally:
        assert stop(proc) == 0
        if camera is not None:
            camera.close()
    log = (tmp_path / "stderr.log").read_text()
    outage = log.split("is back after")[0]
    assert outage.count("retrying in") == 1 and "is back after" in log and "Traceback" not in log, log


def test_a_missing_file_is_not_a_camera_that_may_come_back(tmp_path, notify_path):
    """A video file that is not there fails the start at once, with the one-line error of recognize and check."""
    missing = tmp_path / "missing.mp4"
    config = write_config(tmp_path / "config.toml", str(tmp_path / "elsewhere.avi"), tmp_path / "x.db")
    proc = start(config, tmp_path / "stderr.log", notify_path.address, "--source", str(missing))
    assert proc.wait(START_TIMEOUT_S) == 1
    err = (tmp_path / "stderr.log").read_text()
    assert f"ferlite run: error: {missing}: no such file" in err and "retrying" not in err, err
    assert notify_path.find("READY=1") is None and not (tmp_path / "x.db").exists()


# ------------------------------------------------------------------------------------------------ ferlite check


def test_check_reports_source_model_labels_backend_faces_and_speed(tmp_path, clip, capsys):
    from ferlite.cli import main

    config = write_config(tmp_path / "config.toml", str(clip), tmp_path / "expressions.db")
    assert main(["check", "--config", str(config), "--frames", "3"]) == 0
    out = capsys.readouterr().out
    for name in ("config", "model", "labels", "interpreter", "detector", "log", "source", "faces", "speed"):
        assert re.search(rf"^{name} +\S", out, re.M), (name, out)
    assert f"{clip} (video): 320x240 frames" in out and "1 in the first frame: #1 " in out
    assert "frames/s over 3 frames" in out and out.rstrip().endswith("ok: the service can run with this config")
    assert not (tmp_path / "expressions.db").exists()  # check writes nothing to the log


def test_check_prints_one_line_per_problem_and_exits_nonzero(tmp_path, capsys):
    from ferlite.cli import main

    config = write_config(tmp_path / "config.toml", str(tmp_path / "unplugged.avi"), tmp_path / "x.db",
                          classifier__model=f'"{tmp_path / "missing.tflite"}"')
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"ferlite check: model: classifier.model: {tmp_path / 'missing.tflite'}: no such model file, "
                   "and not a bundled model (default (FER+ labels), fer2013 (FER2013 labels))",
                   f"ferlite check: source: {tmp_path / 'unplugged.avi'}: no such file"]
    assert main(["check", "--config", str(config), "--set", "detector.type=nope", "--set", "tracking.window=0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("ferlite check: config: --set ") for line in err)


def test_the_log_is_private_and_check_catches_a_folder_as_log_path(tmp_path, clip, capsys):
    from ferlite.cli import main

    db = tmp_path / "expressions.db"
    config = write_config(tmp_path / "config.toml", str(clip), db)
    r = subprocess.run([*([str(FERLITE)] if FERLITE.exists() else [sys.executable, "-m", "ferlite"]), "run",
                        "--config", str(config), "--max-frames", "3"], env=service_env(None),
                       capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    assert (db.stat().st_mode & 0o777) == 0o640  # whatever the umask of whoever ran it
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["check", "--config", str(config), "--set", f"log.path={folder}"]) == 1
    assert f"ferlite check: log: {folder} is a folder: log.path must name the database file" in capsys.readouterr().err
