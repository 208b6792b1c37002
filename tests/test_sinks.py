"""Tests of edge/sinks.py on real files: csv columns, the SQLite log's pragmas, volume control, commit
batching, retention, survival of a SIGKILL mid-stream, and the size of a day's log."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from ferlite.edge.config import LogConfig
from ferlite.edge.outputs.base import ResultSink
from ferlite.edge.outputs.files import CsvSink, ListSink
from ferlite.edge.outputs.registry import SINKS, create_sink
from ferlite.edge.outputs.sqlite import JOURNAL_SIZE_LIMIT, SqliteSink
from ferlite.edge.results import Detection, FaceEvent, FaceResult, FrameResult
from ferlite.edge.tracking import Tracker
from ferlite.errors import UsageError

LABELS = ("happy", "sad", "neutral")
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
DAY = 86_400.0
FPS = 5
#: A day's expression log with the default settings must stay well under this (bytes).
MAX_BYTES_PER_DAY = 50e6
REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def face(track_id: int = 1, label: str = "happy", box=(10, 20, 64, 64), labels=LABELS) -> FaceResult:
    probs = tuple(0.8 if name == label else 0.2 / (len(labels) - 1) for name in labels)
    return FaceResult(track_id, box, label, 0.8, probs, raw_label=label, det_score=0.9)


def frame(index: int, *faces: FaceResult, labels=LABELS, source: str = "cam0") -> FrameResult:
    """A frame in which each of ``faces`` has just appeared (the tracker's event, which gives it a row)."""
    events = tuple(FaceEvent("appeared", f.track_id, f.label, "", f.confidence, index / FPS) for f in faces)
    return FrameResult(index, index / FPS, source, tuple(faces), labels, {"total": 12.5}, events=events)


def tracked(tracker: Tracker, index: int, t: float, *detections: Detection, source: str = "cam0") -> FrameResult:
    """One frame through the real tracker, with its events, as the pipeline makes it."""
    faces, events = tracker.step(t, detections)
    return FrameResult(index, t, source, faces, tracker.labels, events=events)


def det(label: str = "happy", box=(10, 20, 64, 64)) -> Detection:
    return Detection(box, tuple(0.8 if name == label else 0.1 for name in LABELS), 0.9)


def count(db: Path) -> int:
    """Rows visible to a second, independent connection (committed rows only)."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        return conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0]


# --------------------------------------------------------------------------------------------- registry


def test_registry_and_create_sink(tmp_path):
    assert {"sqlite", "csv", "json", "list", "annotated", "crops", "window", "console", "http", "mqtt"} == set(SINKS)
    with create_sink("list") as sink:
        assert isinstance(sink, ListSink) and isinstance(sink, ResultSink)
    with create_sink("csv", path=tmp_path / "r.csv") as sink:
        assert isinstance(sink, ResultSink)
    with create_sink("sqlite", path=tmp_path / "r.db", commit_interval=5) as sink:
        assert isinstance(sink, ResultSink) and sink.commit_interval == 5.0


class SectionProbe:
    """A sink of one's own that names a section: it is built from that section alone."""

    SECTION = "mqtt"

    def __init__(self, section, context):
        self.section, self.context = section, context

    @classmethod
    def from_config(cls, section, context):
        return cls(section, context)

    def write(self, result, frame=None):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def test_each_output_is_built_from_its_own_section_and_the_run_context(tmp_path, monkeypatch):
    import types

    from ferlite.edge.config import Config
    from ferlite.edge.outputs.base import OutputContext
    from ferlite.edge.outputs.registry import open_outputs

    monkeypatch.setitem(sys.modules, "probe_outputs", types.SimpleNamespace(Probe=SectionProbe))
    config = Config().replace(outputs={"csv": "c.csv"}, log={"path": str(tmp_path / "x.db")},
                              detector={"type": "haar"}, classifier={"model": "fer2013"}, mqtt={"port": 1884})
    with open_outputs(["sqlite", "csv", "probe_outputs:Probe"], config, OutputContext(tmp_path)) as outputs:
        log, table, probe = outputs.sinks
        assert log.path == tmp_path / "x.db" and table.path == tmp_path / "c.csv"
        assert probe.section is config.mqtt
        assert (probe.context.outputs, probe.context.detector, probe.context.model, probe.context.log) == (
            ("sqlite", "csv", "probe_outputs:Probe"), "haar", "fer2013", tmp_path / "x.db")


def test_unknown_sink_lists_the_valid_names():
    with pytest.raises(UsageError, match="unknown output 'sqlit'.*did you mean 'sqlite'.*sqlite, csv, json, list"):
        create_sink("sqlit")


def test_unknown_option_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="sink 'sqlite'.*commit_every"):
        create_sink("sqlite", path=tmp_path / "r.db", commit_every=5)
    assert not (tmp_path / "r.db").exists()


def test_list_sink_keeps_results_and_refuses_writes_after_close():
    sink = ListSink()
    with sink:
        sink.write(frame(0, face()))
        sink.write(frame(1))
    assert [r.index for r in sink.results] == [0, 1]
    with pytest.raises(ValueError, match="closed"):
        sink.write(frame(2))
    sink.close()  # twice is fine


# --------------------------------------------------------------------------------------------- csv


def test_csv_columns_and_rows(tmp_path):
    path = tmp_path / "out" / "deeper" / "results.csv"
    with CsvSink(path) as sink:
        sink.write(frame(0, face(1, "happy", (1, 2, 3, 4)), face(2, "sad", (50, 60, 70, 80))))
        sink.write(frame(1))  # no face: no row
        sink.write(frame(2, face(1, "neutral")))
        sink.flush()
        assert len(pd.read_csv(path)) == 3  # flush() makes the rows readable while open
    df = pd.read_csv(path, keep_default_na=False)
    assert list(df.columns) == ["source", "path", "frame", "timestamp", "track_id", "x", "y", "w", "h", "label",
                                "confidence", "raw_label", "det_score", "p_happy", "p_sad", "p_neutral"]
    assert df["frame"].tolist() == [0, 0, 2]
    assert df["track_id"].tolist() == [1, 2, 1]
    assert df["label"].tolist() == ["happy", "sad", "neutral"]
    assert df.loc[1, ["x", "y", "w", "h"]].tolist() == [50, 60, 70, 80]
    assert df["timestamp"].tolist() == [0.0, 0.0, 0.4]
    assert df.loc[0, "p_happy"] == pytest.approx(0.8) and df.loc[0, "p_sad"] == pytest.approx(0.1)


def test_csv_without_faces_is_an_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    with CsvSink(path) as sink:
        sink.write(frame(0))
    assert path.read_bytes() == b""


def test_csv_rejects_other_labels_mid_file(tmp_path):
    with CsvSink(tmp_path / "r.csv") as sink:
        sink.write(frame(0, face()))
        with pytest.raises(ValueError, match="columns"):
            sink.write(frame(1, face(labels=FER_LABELS, label="fear"), labels=FER_LABELS))


# --------------------------------------------------------------------------------------------- sqlite


def test_sqlite_pragmas_schema_and_meta(tmp_path):
    db = tmp_path / "state" / "expressions.db"
    with SqliteSink(db, clock=FakeClock()) as sink:
        assert sink.pragmas() == {"journal_mode": "wal", "synchronous": 1, "journal_size_limit": JOURNAL_SIZE_LIMIT}
        sink.write(frame(7, face(3, "sad", (5, 6, 70, 80)), source="picamera2"))
        assert sink.labels == LABELS
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert json.loads(conn.execute("SELECT value FROM meta WHERE key = 'labels'").fetchone()[0]) == list(LABELS)
        indexes = [r[1] for r in conn.execute("PRAGMA index_list(expressions)")]
        assert "expressions_ts" in indexes
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM expressions").fetchone())
    assert row["ts"] == T0 and row["source"] == "picamera2" and row["frame"] == 7 and row["track_id"] == 3
    assert (row["label"], row["confidence"]) == ("sad", 0.8)
    assert (row["x"], row["y"], row["w"], row["h"]) == (5, 6, 70, 80)
    assert json.loads(row["probs"]) == [0.1, 0.8, 0.1]


def test_sqlite_refuses_a_database_of_other_labels(tmp_path):
    db = tmp_path / "r.db"
    with SqliteSink(db) as sink:
        sink.write(frame(0, face()))
    with SqliteSink(db) as sink, pytest.raises(UsageError, match="holds labels"):
        sink.write(frame(0, face(labels=FER_LABELS, label="fear"), labels=FER_LABELS))


def test_sqlite_unopenable_path_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(UsageError, match="cannot open the results database"):
        SqliteSink(tmp_path / "file" / "r.db")


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"commit_interval": -1}, "commit_interval"),
    ({"log_interval": float("nan")}, "log_interval"),
    ({"retention_days": 0}, "retention_days"),
    ({"retention_days": "30"}, "retention_days"),
])
def test_sqlite_argument_validation(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        SqliteSink(tmp_path / "r.db", **kwargs)


def test_rows_only_on_label_change_or_log_interval(tmp_path):
    clock = FakeClock()
    db = tmp_path / "r.db"
    tracker = Tracker(LABELS, window=1, hold=0, margin=0)
    with SqliteSink(db, log_interval=1.0, clock=clock) as sink:
        for i in range(10 * FPS):  # 10 s at 5 frames/s, one track; its label changes to sad at 9.4 s
            clock.t = T0 + i / FPS
            sink.write(tracked(tracker, i, i / FPS, det("sad" if i >= 47 else "happy")))
        rows = sink.row_count()
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT frame, label, ts - ? FROM expressions ORDER BY id", (T0,)).fetchall()
    print(f"10 s at {FPS} frames/s, one track: {rows} rows instead of {10 * FPS}")
    assert rows == 11
    assert [r[0] for r in logged] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 47]  # once a second ...
    assert logged[-1][1:] == ("sad", pytest.approx(9.4))  # ... and at once on a change (0.4 s after the last)


def test_the_interval_runs_on_the_source_clock_per_track_and_zero_logs_everything(tmp_path):
    clock = FakeClock()  # the wall clock stands still: only the source's clock moves
    tracker = Tracker(LABELS, window=1, hold=0, margin=0)
    with SqliteSink(tmp_path / "a.db", log_interval=1.0, clock=clock) as sink:
        sink.write(tracked(tracker, 0, 0.0, det()))
        sink.write(tracked(tracker, 1, 0.6, det(), det(box=(200, 0, 60, 60))))  # a new track is logged at once
        sink.write(tracked(tracker, 2, 1.2, det(), det(box=(200, 0, 60, 60))))  # track 1's second is up
        sink.write(tracked(tracker, 3, 1.5, det(), det(box=(200, 0, 60, 60))))  # neither's
        sink.write(tracked(tracker, 4, 1.7, det(), det(box=(200, 0, 60, 60))))  # track 2's (appeared at 0.6)
        sink.flush()
        with sqlite3.connect(tmp_path / "a.db") as conn:
            assert conn.execute("SELECT frame, track_id FROM expressions").fetchall() == [
                (0, 1), (1, 2), (2, 1), (4, 2)]
    with SqliteSink(tmp_path / "b.db", log_interval=0, clock=clock) as sink:
        for i in range(10):
            sink.write(frame(i, face(1), face(2)))
        assert sink.row_count() == 20


def test_a_track_is_logged_once_its_label_has_settled(tmp_path):
    """The real tracker and log: a new face's first, one-frame guess (uncertain) never reaches the log; its
    first row is the label it settled on, 0.3 s later."""
    clock = FakeClock()
    tracker = Tracker(LABELS, window=5, threshold=0.45, hold=0.3, margin=0.05)
    probs = [(0.30, 0.43, 0.27)] + [(0.25, 0.48, 0.27)] * 14
    with SqliteSink(tmp_path / "s.db", log_interval=2.0, clock=clock) as sink:
        for i, p in enumerate(probs):  # 1 s at 15 frames/s
            clock.t = T0 + i / 15
            sink.write(tracked(tracker, i, i / 15, Detection((0, 0, 50, 50), p)))
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT frame, label FROM expressions").fetchall() == [(5, "sad")]


def test_commits_are_batched(tmp_path):
    clock = FakeClock()
    db = tmp_path / "r.db"
    sink = SqliteSink(db, commit_interval=10.0, log_interval=0, clock=clock)
    for i in range(5):  # t = 1 .. 5 s after open: under commit_interval
        clock.t = T0 + 1 + i
        sink.write(frame(i, face()))
    assert sink.row_count() == 5 and sink.pending_rows == 5
    assert count(db) == 0  # not visible to another connection yet
    clock.t = T0 + 10.0
    sink.write(frame(5, face()))  # 10 s since the last commit (the open): the log's thread commits
    assert sink.wait_written(10)
    assert count(db) == 6 and sink.committed_rows == 6 and sink.pending_rows == 0
    clock.t = T0 + 12.0
    sink.write(frame(6, face()))
    sink.write(frame(7))  # a frame without faces still checks the interval
    assert count(db) == 6
    sink.flush()
    assert count(db) == 7
    clock.t = T0 + 13.0
    sink.write(frame(8, face()))
    assert count(db) == 7
    sink.close()
    assert count(db) == 8
    with pytest.raises(ValueError, match="closed"):
        sink.write(frame(9, face()))


def test_retention_on_open_and_hourly(tmp_path):
    db = tmp_path / "r.db"
    clock = FakeClock(T0)
    with SqliteSink(db, log_interval=0, retention_days=30, clock=clock) as sink:
        sink.write(frame(0, face(1), face(2)))  # ts = day 0
        clock.t = T0 + 5 * DAY + 600
        sink.write(frame(1, face(1)))  # ts = day 5 + 10 min
        clock.t = T0 + 20 * DAY
        sink.write(frame(2, face(1)))  # ts = day 20
    assert count(db) == 4

    clock.t = T0 + 35 * DAY  # cut-off: day 5
    with SqliteSink(db, log_interval=0, retention_days=30, clock=clock) as sink:
        assert sink.row_count() == 2  # the day-0 rows went on open
        clock.t = T0 + 35 * DAY + 1800  # cut-off: day 5 + 30 min, but the last delete was half an hour ago
        sink.write(frame(3))
        assert sink.row_count() == 2
        clock.t = T0 + 35 * DAY + 3600  # an hour since open: the day-5 row goes
        sink.write(frame(4))
        assert sink.wait_written(10) and sink.row_count() == 1
    assert count(db) == 1

    clock.t = T0 + 1000 * DAY
    with SqliteSink(db, retention_days=None, clock=clock) as sink:
        assert sink.row_count() == 1  # None keeps everything


# --------------------------------------------------------------------------------------------- crash

CHILD = """
import sys, time
from ferlite.edge.results import FaceResult, FrameResult
from ferlite.edge.outputs.sqlite import SqliteSink

labels = ("happy", "sad", "neutral")
sink = SqliteSink(sys.argv[1], commit_interval=0.05, log_interval=0)
reported = 0
i = 0
while True:
    faces = tuple(FaceResult(t, (10 * t, 20, 64, 64), labels[(i // 7 + t) % 3], 0.8, (0.8, 0.1, 0.1))
                  for t in (1, 2))
    sink.write(FrameResult(i, i / 5, "crash", faces, labels))
    if sink.committed_rows != reported:  # a COMMIT has returned: report rows and the last frame in it (2 a frame)
        reported = sink.committed_rows
        print(reported, reported // 2 - 1, flush=True)
    i += 1
    time.sleep(0.001)
"""


def test_sigkill_mid_stream_loses_no_committed_row(tmp_path):
    db = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    guard = threading.Timer(60, proc.kill)  # never hang the test run
    guard.start()
    try:
        reports = []
        while len(reports) < 20:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"child exited early (rc={proc.wait()}): {proc.stderr.read()}")
            reports.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        reports += proc.stdout.readlines()  # lines printed before the kill
    finally:
        guard.cancel()
        proc.stdout.close()
        proc.stderr.close()
    committed, last_frame = (int(v) for v in reports[-1].split())

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0]
        frames = conn.execute("SELECT COUNT(DISTINCT frame) FROM expressions WHERE frame <= ?",
                              (last_frame,)).fetchone()[0]
    print(f"killed after {len(reports)} reported commits: {committed} rows reported committed, {rows} in the file")
    assert rows >= committed
    assert frames == last_frame + 1  # every frame up to the last reported commit is there


# --------------------------------------------------------------------------------------------- size


def simulate(db: Path, seconds: int, *, log_interval: float = LogConfig.log_interval, seed: int = 0) -> int:
    """``seconds`` of one person at 5 frames/s (5 faces/s) through Tracker -> SqliteSink with the default
    commit and retention settings: the true expression changes every 5-60 s, the classifier is noisy."""
    rng = random.Random(seed)
    clock = FakeClock()
    tracker = Tracker(FER_LABELS)
    with SqliteSink(db, log_interval=log_interval, clock=clock) as sink:
        true, next_change = 3, 0.0
        for i in range(seconds * FPS):
            t = i / FPS
            clock.t = T0 + t
            if t >= next_change:
                true, next_change = rng.randrange(len(FER_LABELS)), t + rng.uniform(5, 60)
            noise = [rng.random() for _ in FER_LABELS]
            noise[true] += 2.0 * rng.random() + 0.5
            probs = [v / sum(noise) for v in noise]
            box = (300 + rng.randint(-3, 3), 200 + rng.randint(-3, 3), 120, 120)
            sink.write(tracked(tracker, i, t, Detection(box, probs, 0.9), source="picamera2"))
        return sink.row_count()


def test_a_day_of_logging_stays_well_under_50_mb(tmp_path, capsys):
    seconds = 2 * 3600  # two hours at 5 faces/s, extrapolated to a day
    empty = tmp_path / "empty.db"
    SqliteSink(empty).close()
    results = {}
    default = f"default (log_interval={LogConfig.log_interval:g} s)"
    for name, log_interval in ((default, LogConfig.log_interval), ("every face (log_interval=0)", 0.0)):
        db = tmp_path / f"{log_interval}.db"
        rows = simulate(db, seconds, log_interval=log_interval)
        assert not Path(f"{db}-wal").exists()  # checkpointed on close: the size below is all of it
        bytes_per_row = (db.stat().st_size - empty.stat().st_size) / rows
        rows_per_day = rows * DAY / seconds
        results[name] = bytes_per_row * rows_per_day
        with capsys.disabled():
            print(f"\n[size] {name}: {rows} rows in {seconds / 3600:g} h at {FPS} faces/s, "
                  f"{bytes_per_row:.1f} bytes/row, {rows_per_day:,.0f} rows/day -> "
                  f"{results[name] / 1e6:.1f} MB/day (x30 days retention = {30 * results[name] / 1e9:.2f} GB)")
    assert results[default] < MAX_BYTES_PER_DAY / 3  # "well under" 50 MB
