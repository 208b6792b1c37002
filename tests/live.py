"""Helpers for the live-output tests: free ports, a real mosquitto broker, `ferlite run` in a subprocess, an
MQTT subscriber, HTTP reads. A program the tests need (mosquitto, chromium) that is missing skips the test
outside CI and fails it in CI (CI=true), where .ci/run installs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CLIP = ROOT / "edge" / "data" / "sample.mp4"
FERLITE = Path(sys.executable).with_name("ferlite")
START_TIMEOUT_S = 90


def need(program: str) -> str:
    path = shutil.which(program) or next((p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}")
                                          if os.path.exists(p)), None)
    if path:
        return path
    message = f"{program} is not installed (apt install {program}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT_S, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited with {proc.returncode} before port {port} opened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class Broker:
    """Debian's mosquitto on a free loopback port (anonymous, as mosquitto 2 allows on localhost)."""

    def __init__(self, port: int | None = None):
        self.binary = need("mosquitto")
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([self.binary, "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 20, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Subscriber:
    """A paho-mqtt client that records every message under ``topic``: (topic, payload text, retained)."""

    def __init__(self, port: int, topic: str = "#"):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def payloads(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, topic: str, predicate=lambda payload: True, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload in self.payloads(topic):
                if predicate(payload):
                    return payload
            time.sleep(0.1)
        seen = sorted({t for t, _, _ in self.messages})
        raise AssertionError(f"no message on {topic} matching after {timeout} s; topics seen: {seen}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(path: Path, **sections: dict[str, object]) -> Path:
    """A service config on the looping sample clip, logging to a file beside it; ``sections`` add keys."""
    base = {"source": {"spec": str(SAMPLE_CLIP), "loop": True}, "classifier": {"threads": 1},
            "log": {"path": str(path.parent / "log.db"), "commit_interval": 0.5}}
    for name, keys in sections.items():
        base.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in base.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def ferlite(*args: str) -> list[str]:
    return [str(FERLITE), *args] if FERLITE.exists() else [sys.executable, "-m", "ferlite", *args]


@contextmanager
def service(config: Path, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """`ferlite run --config CONFIG` in the background; stopped with SIGTERM at the end."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY")}
    with open(log, "w") as err:
        proc = subprocess.Popen(ferlite("run", "--config", str(config), *args), stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def get_json(url: str, headers: dict | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return json.loads(r.read())


def wait_for_json(url: str, predicate, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = get_json(url)
            if predicate(last):
                return last
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url}: not as expected after {timeout} s; last answer {last}")
