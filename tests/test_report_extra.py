"""A device serves /report without TensorFlow: ``pip install '.[edge,report]'`` into a fresh venv, then the
service on the sample clip with its web page on, and its /report and /api/history read over loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "edge" / "data" / "sample.mp4"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, wait_s: float = 120) -> tuple[int, str]:
    """Status and body of a GET, retried while the server is not listening yet."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> Path:
    """A venv with ferlite[edge,report] installed from this checkout (not editable), as on a device."""
    venv = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"{ROOT}[edge,report]"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return venv


def test_the_report_extra_serves_report_without_tensorflow(device_venv, tmp_path):
    python = str(device_venv / "bin" / "python")
    probe = ("import importlib.util as u; "
             "print([m for m in ('tensorflow', 'keras', 'pandas', 'matplotlib') if u.find_spec(m)])")
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert found.stdout.strip() == "['pandas', 'matplotlib']"

    port, db = free_port(), tmp_path / "expressions.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[source]\nspec = "{SAMPLE}"\nloop = true\n[classifier]\nthreads = 1\n'
                      f'[log]\npath = "{db}"\ncommit_interval = 0.0\nlog_interval = 0.0\n'
                      f'[http]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY")}
    proc = subprocess.Popen([str(device_venv / "bin" / "ferlite"), "run", "--config", str(config)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until the log has rows in it
            status, body = fetch(f"http://127.0.0.1:{port}/api/history?bucket=hour")
            if status == 200 and json.loads(body)["rows"]:
                break
            assert proc.poll() is None and time.monotonic() < deadline, (status, body)
            time.sleep(0.5)
        history = json.loads(body)
        assert sum(sum(row["counts"].values()) for row in history["rows"]) > 0
        status, page = fetch(f"http://127.0.0.1:{port}/report")
        assert status == 200, page
        assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
