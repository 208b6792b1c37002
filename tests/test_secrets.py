"""No secret in any output: a run on a camera URL with a password and an HTTP token, then every output of it
(the service's log lines, the API, the event stream, the expression log, `ferlite check`, `ferlite report`)
is searched for the two secrets. The password shows as ``***``; the token not at all."""

from __future__ import annotations

import http.server
import json
import socketserver
import sqlite3
import subprocess
import threading
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from live import SAMPLE_CLIP, ferlite, free_port, service, wait_for_json, wait_for_port, write_config

PASSWORD = "PW-sekr1t-9f3a"
TOKEN = "TK-9f3a7c2e1b5d4a6f8e0c"


def mjpeg_avi(path: Path) -> bytes:
    """The sample clip as MJPG in AVI, which FFmpeg reads from an unseekable HTTP stream."""
    import cv2

    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    while (frame := cap.read()[1]) is not None:
        out.write(frame)
    cap.release()
    out.release()
    return path.read_bytes()


@pytest.fixture()
def camera(tmp_path):
    """The sample clip served over HTTP, as a network camera would (it ignores the credentials)."""
    data = mjpeg_avi(tmp_path / "cam.avi")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

        def log_message(self, *args) -> None:
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://viewer:{PASSWORD}@127.0.0.1:{server.server_address[1]}/cam.avi"
    finally:
        server.shutdown()
        server.server_close()


def read(url: str, limit: int | None = None) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        if limit is None:
            return r.read().decode()
        return b"".join(r.readline() for _ in range(limit)).decode()


def dump(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return "\n".join(conn.iterdump())


def test_no_password_or_token_in_any_output(tmp_path, camera):
    port = free_port()
    db = tmp_path / "log.db"
    config = write_config(tmp_path / "config.toml", source={"spec": camera, "loop": False},
                          http={"enabled": True, "listen": f"127.0.0.1:{port}", "token": TOKEN})
    outputs: dict[str, str] = {}
    with service(config, tmp_path / "service.log") as proc:
        wait_for_port(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        wait_for_json(f"{base}/api/status?token={TOKEN}", lambda s: s["frames"] > 30)
        outputs["status"] = read(f"{base}/api/status")
        outputs["events"] = read(f"{base}/api/events", limit=2)
        outputs["faces"] = read(f"{base}/api/faces")
        outputs["history"] = wait_for_json(f"{base}/api/history?token={TOKEN}", lambda h: h["rows"]) and \
            read(f"{base}/api/history")
    outputs["service log"] = (tmp_path / "service.log").read_text()
    outputs["expression log"] = dump(db)
    check = subprocess.run(ferlite("check", "--config", str(config), "--frames", "3"), capture_output=True, text=True,
                           timeout=180)
    outputs["check"] = check.stdout + check.stderr
    bad = subprocess.run(ferlite("check", "--config", str(config), "--set", "http.listen=0.0.0.0:9",
                                 "--set", f"http.token={TOKEN[:8]}"), capture_output=True, text=True, timeout=180)
    outputs["check, short token"] = bad.stdout + bad.stderr
    report = subprocess.run(ferlite("report", str(db), "--out", str(tmp_path / "report")), capture_output=True,
                            text=True, timeout=300)
    outputs["report"] = report.stdout + report.stderr + "".join(
        p.read_text() for p in (tmp_path / "report").glob("*.csv")) + (tmp_path / "report" / "report.html").read_text()
    for name, text in outputs.items():
        for secret in (PASSWORD, TOKEN, TOKEN[:8]):
            assert secret not in text, f"{secret} in {name}: {text[:3000]}"
    assert "viewer:***@127.0.0.1" in json.loads(outputs["status"])["source"]
    assert "viewer:***@" in outputs["service log"] and "viewer:***@" in outputs["check"]
    assert check.returncode == 0, outputs["check"]
    assert bad.returncode == 2 and "http.token = (hidden): must be at least 16 characters" in bad.stderr, bad.stderr
