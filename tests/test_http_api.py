"""The HTTP output's API on a real log: a one-day synthetic log written with the service's schema, served by
the HTTP output on loopback (no pipeline), read with a real client. /api/history answers bad parameters with a
400 that says what is wrong, never a 500 or a non-standard JSON token; /report renders one page at a time."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live import ROOT, free_port

from ferlite.edge.configfile import load
from ferlite.edge.logbook.synth import write_synthetic_log
from ferlite.edge.outputs.base import OutputContext
from ferlite.edge.outputs.http import HttpSink


@pytest.fixture(scope="module")
def day_log(tmp_path_factory):
    return write_synthetic_log(tmp_path_factory.mktemp("log") / "expressions.db", days=1, end=time.time())


@pytest.fixture()
def served(day_log, tmp_path):
    port = free_port()
    config = load(overrides=[f"http.listen=127.0.0.1:{port}", f"log.path={day_log}"], system_path="/nonexistent")
    context = OutputContext(tmp_path, "picamera", "picamera", outputs=("sqlite", "http"), log=day_log)
    with HttpSink(config.http, context) as sink:
        yield f"http://127.0.0.1:{port}", sink


@pytest.fixture()
def server(served):
    return served[0]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def history(base: str, **query) -> tuple[int, str]:
    return get(f"{base}/api/history?{urllib.parse.urlencode(query)}")


@pytest.mark.parametrize("query, says", [
    ({"since": "0001-01-01"}, "out of range"),
    ({"until": "9999-12-31 23:59:59.999"}, ""),  # the last moment that can be stored: fine
    ({"since": "9" * 400}, "out of range"),
    ({"since": "9" * 300 + "d"}, "out of range"),
    ({"bucket": "9" * 400}, "bucket"),
    ({"bucket": "²"}, "bucket"),
    ({"bucket": "١٢"}, "bucket"),
    ({"bucket": "minute\u00e9"}, "bucket"),
    ({"bucket": "0"}, "bucket"),
    ({"limit": "0"}, "limit"),
    ({"limit": "9" * 400}, "limit"),
    ({"limit": "-3"}, "limit"),
])
def test_bad_history_parameters_get_a_clear_400(server, query, says):
    status, body = history(server, **query)
    if not says:
        assert status == 200, body
        return
    assert status == 400, body
    error = json.loads(body)["error"]
    assert says in error and len(error) < 200, error  # a 400-character value is not echoed whole


def test_history_is_standard_json_and_honours_limit(server):
    status, body = history(server, since="1970-01-02", until="9999-12-31", bucket="minute")
    assert status == 200 and "Infinity" not in body and "NaN" not in body
    everything = json.loads(body, parse_constant=lambda name: pytest.fail(f"non-standard JSON: {name}"))
    assert len(everything["rows"]) > 100 and not everything["truncated"]
    status, body = history(server, since="1970-01-02", until="9999-12-31", bucket="minute", limit="10")
    limited = json.loads(body)
    assert status == 200 and limited["limit"] == 10 and limited["truncated"]
    assert limited["rows"] == everything["rows"][-10:]  # the newest ten buckets, oldest first


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def peak_mb(command: list[str]) -> float:
    """The peak resident memory of a command's own process (VmHWM, read until it exits: ru_maxrss would count
    this process's memory, which the child's had before its exec)."""
    proc, peak = subprocess.Popen(command, stdout=subprocess.DEVNULL), 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError, AttributeError):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
        time.sleep(0.02)
    assert proc.returncode == 0
    return peak


def memory_high_mb() -> float:
    """MemoryHigh of the shipped unit, in MB."""
    found = re.search(r"^MemoryHigh=(\d+)M", (ROOT / "systemd" / "ferlite.service").read_text(), re.M)
    assert found, "systemd/ferlite.service states MemoryHigh in M"
    return float(found.group(1))


def test_report_renders_once_a_minute_in_a_process_of_its_own(served):
    base, sink = served
    before = rss_mb()
    with ThreadPoolExecutor(20) as pool:  # 20 clients at once: one render, the others wait for it
        answers = list(pool.map(lambda _: get(f"{base}/report"), range(20)))
    again = get(f"{base}/report")  # within the minute: the same page, not rendered again
    grown = rss_mb() - before
    render_peak = peak_mb([sys.executable, "-m", "ferlite.edge.logbook.page", str(sink.log_path)])
    print(f"\n/report x21: {sink.report_page.renders} render(s); the service grew {grown:.0f} MB, the render's "
          f"process peaks at {render_peak:.0f} MB (MemoryHigh {memory_high_mb():.0f} MB)")
    assert {status for status, _ in answers} == {200}
    assert len({page for _, page in answers}) == 1 and again == answers[0]
    assert answers[0][1].startswith("<!DOCTYPE html>") and answers[0][1].count("data:image/png;base64,") == 4
    assert sink.report_page.renders == 1
    assert grown < 30  # pandas and matplotlib were never loaded here
    assert render_peak < memory_high_mb() / 2  # beside a service of ~150 MB


def test_report_without_its_libraries_says_what_to_install(served, tmp_path, monkeypatch):
    base, sink = served
    missing = tmp_path / "without-pandas"
    missing.mkdir()
    (missing / "pandas.py").write_text("raise ModuleNotFoundError(\"No module named 'pandas'\", name='pandas')\n")
    monkeypatch.setenv("PYTHONPATH", str(missing))  # the render's process finds no pandas, as on an [edge] device
    status, body = get(f"{base}/report")
    assert status == 501, body
    assert "pip install 'ferlite[report]'" in body and "pandas" in body and "Traceback" not in body


def test_the_render_goes_on_where_its_priority_cannot_be_lowered(day_log, monkeypatch, capsys):
    """Under the shipped unit, SystemCallFilter=~@resources refuses setpriority (EPERM): the page still renders."""
    import os

    from ferlite.edge.logbook import page

    def refused(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    assert page.main([str(day_log)]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")
