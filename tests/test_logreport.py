"""`ferlite report`: a log written by `ferlite run` on the sample clip, read back into the printed table, csv
files, png plots and one self-contained html page, with every figure checked against the log's own rows;
the live log read while the service writes it; chunked reading; the one-line errors."""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="ferlite report needs the report extra (pandas, matplotlib)")
pytest.importorskip("matplotlib", reason="ferlite report needs the report extra (pandas, matplotlib)")

from ferlite.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "edge" / "data" / "sample.mp4"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
PNG = b"\x89PNG\r\n\x1a\n"
OUTPUTS = ["labels.csv", "buckets.csv", "shares.csv", "tracks.csv", "heatmap.csv",
           "shares.png", "faces.png", "heatmap.png", "dwell.png", "report.html"]


def service(config: Path, *args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY")}
    return subprocess.Popen([sys.executable, "-m", "ferlite", "run", "--config", str(config), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def write_config(folder: Path, db: Path, http: str = "") -> Path:
    """The sample clip, looped; a row per face per frame (log_interval 0), committed at once; the web page
    on ``http`` (host:port) if given."""
    config = folder / "config.toml"
    config.write_text(f'[source]\nspec = "{SAMPLE}"\nloop = true\n[classifier]\nthreads = 1\n'
                      f'[log]\npath = "{db}"\ncommit_interval = 0.0\nlog_interval = 0.0\n'
                      + (f'[http]\nenabled = true\nlisten = "{http}"\n' if http else ""))
    return config


def sql(db: Path, query: str, *params) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(query, params).fetchall()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def service_log(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("device")
    db = folder / "expressions.db"
    proc = service(write_config(folder, db), "--max-frames", "120")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    return db


def test_report_figures_match_the_logs_own_rows(service_log, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(service_log), "--out", str(out), "--bucket", "minute"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^label +rows +share +faces$", printed, re.M), printed
    assert f"report: {out / 'report.html'}" in printed
    assert all((out / name).is_file() for name in OUTPUTS)

    total = sql(service_log, "SELECT COUNT(*) FROM expressions")[0][0]
    per_label = dict(sql(service_log, "SELECT label, COUNT(*) FROM expressions GROUP BY label"))
    labels = {r["label"]: r for r in read_csv(out / "labels.csv")}
    assert total > 100 and len(per_label) >= 2
    assert {k: int(r["rows"]) for k, r in labels.items() if int(r["rows"])} == {**per_label, "total": total}
    assert re.search(rf"^total +{total} +100\.0%", printed, re.M)

    # per minute bucket: rows per label and faces seen, against SQL's own grouping in local time
    minute = "strftime('%Y-%m-%d %H:%M:00', ts, 'unixepoch', 'localtime')"
    expected = {(b, label): n for b, label, n in
                sql(service_log, f"SELECT {minute} AS b, label, COUNT(*) FROM expressions GROUP BY b, label")}
    faces = dict(sql(service_log, f"SELECT {minute} AS b, COUNT(DISTINCT track_id) FROM expressions GROUP BY b"))
    buckets = read_csv(out / "buckets.csv")
    got = {(r["bucket"], label): int(r[label]) for r in buckets for label in per_label if int(r[label])}
    assert got == expected
    assert {r["bucket"]: int(r["faces"]) for r in buckets if int(r["rows"])} == faces

    # per face (track): rows, dwell and dominant expression
    tracks = {int(r["track_id"]): r for r in read_csv(out / "tracks.csv")}
    assert set(tracks) == {t for (t,) in sql(service_log, "SELECT DISTINCT track_id FROM expressions")}
    for track_id, r in tracks.items():
        counts = dict(sql(service_log, "SELECT label, COUNT(*) FROM expressions WHERE track_id = ? GROUP BY label",
                          track_id))
        first, last = sql(service_log, "SELECT MIN(ts), MAX(ts) FROM expressions WHERE track_id = ?", track_id)[0]
        assert int(r["rows"]) == sum(counts.values())
        assert counts[r["dominant"]] == max(counts.values())
        assert float(r["dwell_s"]) == pytest.approx(last - first, abs=0.11)  # times are kept to 0.1 s


def test_plots_are_pngs_and_the_html_page_is_self_contained(service_log, tmp_path, capsys):
    import cv2
    import numpy as np

    out = tmp_path / "report"
    assert main(["report", str(service_log), "--out", str(out)]) == 0
    for name in ("shares", "faces", "heatmap", "dwell"):
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "<link" not in page and "<script" not in page and "@import" not in page and "url(" not in page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == 4
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_python_api_is_the_commands_and_render_html_is_pure(service_log, tmp_path):
    from ferlite.edge.logbook.read import load_log, read_rows
    from ferlite.edge.logbook.report import render_html, report_html, summarize

    before = service_log.stat().st_mtime_ns, service_log.read_bytes()
    df = load_log(service_log)
    report = summarize(df, "hour")
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 4
    assert report.rows == sql(service_log, "SELECT COUNT(*) FROM expressions")[0][0] == len(read_rows(service_log))
    assert (service_log.stat().st_mtime_ns, service_log.read_bytes()) == before  # read-only
    # the service's web page serves report_html(log, "24h") at /report; a day without rows is a short page
    assert report_html(service_log, "24h").count("data:image/png;base64,") == 4
    assert "no rows since 2099-01-01 00:00:00" in report_html(service_log, "2099-01-01")
    # cheap to import: a web server may import it on every start without pandas or matplotlib
    code = ("import sys, ferlite.edge.logbook.report; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, wait_s: float = 30) -> str:
    """The body of a GET, retried while the server is not listening yet."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read().decode()
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_live_log_is_read_while_the_service_writes_it(tmp_path):
    """Two reports and the web page's /report (the last day, linked from the kiosk page) while the service
    logs; it goes on logging and stops cleanly."""
    pytest.importorskip("aiohttp", reason="the web page needs aiohttp (the edge extra)")
    db, port = tmp_path / "live.db", free_port()
    proc = service(write_config(tmp_path, db, http=f"127.0.0.1:{port}"))
    try:
        deadline = time.monotonic() + 120
        while not (db.exists() and sql(db, "SELECT name FROM sqlite_master WHERE name = 'meta'")
                   and sql(db, "SELECT COUNT(*) FROM expressions")[0][0] >= 20):
            assert proc.poll() is None and time.monotonic() < deadline, "the service logged nothing"
            time.sleep(0.2)
        for i in range(2):
            assert main(["report", str(db), "--out", str(tmp_path / f"report{i}")]) == 0
        page = fetch(f"http://127.0.0.1:{port}/report")
        assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 4
        assert 'href="report"' in fetch(f"http://127.0.0.1:{port}/")
        seen = sum(int(r["rows"]) for r in read_csv(tmp_path / "report1" / "labels.csv") if r["label"] != "total")
        deadline = time.monotonic() + 60
        while sql(db, "SELECT COUNT(*) FROM expressions")[0][0] <= seen:  # the service goes on logging
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]


def synthetic_log(path: Path, rows: list[tuple]) -> Path:
    """A log with the service's schema holding (ts, source, track_id, label) rows."""
    from ferlite.edge.outputs.sqlite import INSERT, SCHEMA

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('labels', ?), ('schema', '1')", (json.dumps(LABELS),))
        conn.executemany(INSERT, [(ts, src, 0, track, label, 0.9, 0, 0, 10, 10, "[]")
                                  for ts, src, track, label in rows])
        conn.commit()
    return path


def test_chunks_sources_restarted_ids_and_other_labels(tmp_path, monkeypatch):
    from ferlite.edge.logbook import scan as logscan
    from ferlite.edge.logbook.read import load_log
    from ferlite.edge.logbook.report import summarize

    t0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    rows = [(t0 + i, "cam0", 1, "happy" if i % 3 else "sad") for i in range(100)]  # 100 s, face 1 of cam0
    rows += [(t0 + i + 0.5, "cam1", 1, "neutral") for i in range(30)]  # the same id from another camera
    rows += [(t0 + 400 + i, "cam0", 1, "contempt") for i in range(10)]  # restarted service: id 1 again, later
    rows += [(t0 + 500, "cam0", 2, "uncertain")]
    db = synthetic_log(tmp_path / "log.db", sorted(rows))
    whole = load_log(db)
    monkeypatch.setattr(logscan, "CHUNK_ROWS", 7)  # chunks split pieces and hold several sources
    chunked = load_log(db)
    assert chunked.equals(whole)
    report = summarize(chunked, "minute", tz="UTC")
    assert report.totals.to_dict() == {**dict.fromkeys(LABELS, 0), "happy": 66, "sad": 34, "neutral": 30,
                                       "uncertain": 1, "other": 10}
    faces = report.tracks.sort_values(["source", "start"])
    assert faces[["source", "track_id", "rows", "dominant"]].values.tolist() == [
        ["cam0", 1, 100, "happy"], ["cam0", 1, 10, "other"], ["cam0", 2, 1, "uncertain"], ["cam1", 1, 30, "neutral"]]
    assert faces["dwell_s"].tolist() == [99.0, 9.0, 0.0, 29.0]
    assert str(report.counts.index[0]) == "2023-11-14 22:13:00" and report.faces.iloc[0] == 2
    assert load_log(db, source="cam1")["rows"].sum() == 30
    assert load_log(db, since=t0 + 400, until=t0 + 405)["rows"].sum() == 5
    india = summarize(load_log(db), "minute", tz="Asia/Kolkata")  # UTC+5:30: buckets are local times
    assert str(india.counts.index[0]) == "2023-11-15 03:43:00" and india.rows == report.rows


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a file system mounted read-only, as a device's card mounted to pull its log (needs root)."""
    folder = tmp_path / "card"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_log_on_a_read_only_mount_is_read_without_its_wal(read_only_folder, tmp_path, caplog):
    from ferlite.edge.logbook.read import load_log

    db = synthetic_log(tmp_path / "log.db", [(1_700_000_000.0 + i, "cam0", 1, "happy") for i in range(50)])
    writer = sqlite3.connect(db)  # rows committed to the WAL but not yet checkpointed into the file
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.executemany("INSERT INTO expressions (ts, source, frame, track_id, label, confidence, probs) "
                       "VALUES (?, 'cam0', 0, 2, 'sad', 0.9, '[]')", [(1_700_000_100.0 + i,) for i in range(7)])
    writer.commit()
    for suffix in ("", "-wal"):
        shutil.copy(f"{db}{suffix}", read_only_folder / f"log.db{suffix}")
    writer.close()
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_folder)], check=True)
    with caplog.at_level("WARNING"):
        df = load_log(read_only_folder / "log.db")
    assert df["rows"].sum() == 50 and "the rows still in log.db-wal are left out" in caplog.text


def test_times_parse_as_dates_times_and_ages():
    from datetime import datetime, timezone

    from ferlite.errors import UsageError
    from ferlite.times import parse_time

    now = datetime(2025, 3, 10, 15, 30, tzinfo=timezone.utc).timestamp()
    assert parse_time("24h", now) == now - 86400
    assert parse_time("7d", now) == now - 7 * 86400 and parse_time("30m", now) == now - 1800
    assert parse_time("2025-01-31", tz="UTC") == datetime(2025, 1, 31, tzinfo=timezone.utc).timestamp()
    assert parse_time("2025-01-31 14:00", tz="UTC") == datetime(2025, 1, 31, 14, tzinfo=timezone.utc).timestamp()
    assert parse_time("9:15", now, tz="UTC") == datetime(2025, 3, 10, 9, 15, tzinfo=timezone.utc).timestamp()
    assert parse_time("2025-01-31T14:00+01:00") == datetime(2025, 1, 31, 13, tzinfo=timezone.utc).timestamp()
    assert parse_time("1741620600") == parse_time("1741620600.0") == 1741620600.0  # epoch seconds (/api/history)
    for bad in ("yesterday", "25:00", "7x"):
        with pytest.raises(UsageError, match="expected a date"):
            parse_time(bad, now)


def test_the_sink_stores_its_schema_and_refuses_a_newer_one(tmp_path):
    from ferlite.edge.outputs.sqlite import SCHEMA_VERSION, SqliteSink
    from ferlite.errors import UsageError

    db = tmp_path / "log.db"
    SqliteSink(db).close()
    assert sql(db, "SELECT value FROM meta WHERE key = 'schema'") == [(str(SCHEMA_VERSION),)]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
        conn.commit()
    with pytest.raises(UsageError, match="newer"):
        SqliteSink(db)


def _bad_logs(folder: Path, good: Path) -> dict[str, Path]:
    (folder / "notes.txt").write_text("not a database\n" * 100)
    (folder / "empty.db").write_bytes(b"")
    other = folder / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE things (x)")
    nolabels, newer = folder / "nolabels.db", folder / "newer.db"
    for path, update in ((nolabels, "DELETE FROM meta WHERE key = 'labels'"),
                         (newer, "UPDATE meta SET value = '99' WHERE key = 'schema'")):
        shutil.copy(good, path)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(update)
            conn.commit()
    return {"notes.txt": folder / "notes.txt", "empty.db": folder / "empty.db", "other.db": other,
            "nolabels.db": nolabels, "newer.db": newer}


@pytest.mark.parametrize(("name", "args", "code", "message"), [
    ("notes.txt", [], 1, r"notes\.txt: not a ferlite log \(cannot read it as SQLite: file is not a database\)"),
    ("empty.db", [], 1, r"empty\.db: not a ferlite log \(no expressions or meta table\)"),
    ("other.db", [], 1, r"other\.db: not a ferlite log \(no expressions or meta table\)"),
    ("nolabels.db", [], 1, r"nolabels\.db: not a ferlite log \(no labels in its meta table\)"),
    ("newer.db", [], 1, r"newer\.db: log schema 99 is newer than this ferlite reads \(1\): upgrade ferlite"),
    ("good", ["--since", "2099-01-01"], 1, r"expressions\.db: no rows since 2099-01-01 00:00:00 \(the log holds "),
    ("good", ["--source", "nowhere"], 1, r"no rows from source 'nowhere'"),
    ("good", ["--since", "last tuesday"], 2, r"'last tuesday': expected a date \(2025-01-31\)"),
    ("missing.db", [], 1, r"missing\.db: no such file"),  # as from every command (ferlite.errors.EXIT_CODES)
])
def test_bad_input_is_a_one_line_error(service_log, tmp_path, capsys, name, args, code, message):
    path = service_log if name == "good" else _bad_logs(tmp_path, service_log).get(name, tmp_path / name)
    assert main(["report", str(path), "--out", str(tmp_path / "out"), *args]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ferlite report: error: "), err
    assert re.search(message, err), err


def test_html_counts_are_integers_and_a_tie_is_named_not_given_to_the_first_label(tmp_path):
    from ferlite.edge.logbook.read import load_log
    from ferlite.edge.logbook.report import label_table, render_html, summarize, summary_text

    t0 = 1_700_000_000.0
    rows = [(t0 + i, "cam0", 1, "sad" if i % 2 else "happy") for i in range(10)]  # 5 happy, 5 sad: a tie
    rows += [(t0 + 200 + i, "cam0", 2, "happy") for i in range(62)]
    report = summarize(load_log(synthetic_log(tmp_path / "log.db", sorted(rows))), "hour", tz="UTC")
    assert report.tracks.sort_values("start")["dominant"].tolist() == ["happy=sad", "happy"]
    table = label_table(report)
    assert table.loc["happy", "faces"] == 1 and table.loc["sad", "faces"] == 0 and table.loc["tie", "faces"] == 1
    assert table.loc["total", "faces"] == 2
    page = render_html(report, pngs={})
    labels, buckets, faces = (re.findall(r"<td>([^<]*)</td>", t) for t in re.findall(r"<table>.*?</table>", page))
    assert labels[labels.index("happy"):][:4] == ["happy", "67", "93.1%", "1"], labels  # not 67.0 and 1.0
    assert labels[labels.index("tie"):][:4] == ["tie", "0", "0.0%", "1"], labels
    assert buckets[1:4] == ["72", "2", "happy"], buckets
    assert "happy=sad" in faces and "62" in faces and "10" in faces
    assert re.search(r"^happy +67 +93\.1% +1$", summary_text(report), re.M), summary_text(report)
