"""The HTTP output's API on a real log: a one-day synthetic log written with the service's schema, served by
the HTTP output on loopback (no pipeline), read with a real client. /api/history answers bad parameters with a
400 that says what is wrong, never a 500 or a non-standard JSON token; /report renders one page at a time."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from live import free_port

from ferlite.edge.configfile import load
from ferlite.edge.logbook.synth import write_synthetic_log
from ferlite.edge.outputs.base import OutputContext
from ferlite.edge.outputs.http import HttpSink


@pytest.fixture(scope="module")
def day_log(tmp_path_factory):
    return write_synthetic_log(tmp_path_factory.mktemp("log") / "expressions.db", days=1, end=time.time())


@pytest.fixture()
def server(day_log, tmp_path):
    port = free_port()
    config = load(overrides=[f"http.listen=127.0.0.1:{port}", f"log.path={day_log}"], system_path="/nonexistent")
    with HttpSink(config, OutputContext(tmp_path, "picamera", "picamera", outputs=("sqlite", "http"))):
        yield f"http://127.0.0.1:{port}"


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
