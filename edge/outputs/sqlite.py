"""The device's expression log: one SQLite file, SD-card friendly.

WAL + ``synchronous=NORMAL``, commits batched every ``commit_interval`` seconds, a row per track only when its
label changes or every ``log_interval`` seconds (not per frame), and old rows deleted after ``retention_days``.
Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlite.edge.config import LogConfig
from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.results import FaceResult, FrameResult
from ferlite.errors import UsageError

if TYPE_CHECKING:
    from ferlite.edge.config import Config

log = logging.getLogger(__name__)

#: WAL file size kept after a checkpoint (bytes); the WAL is reused from its start, not grown.
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
#: Seconds between retention deletes after the one done on open.
RETENTION_CHECK_S = 3600.0
#: A track's volume-control state is forgotten after this many seconds unseen (and at least log_interval).
TRACK_FORGET_S = 60.0
#: Rows held in memory while the log cannot be written (a full or read-only disk); the oldest are dropped.
HOLD_ROWS = 20_000
#: Seconds before retrying a failed commit, doubling per failure up to the second figure.
RETRY_S = (1.0, 60.0)
#: Decimal places stored for probabilities and confidence (4 keeps the json list short).
PROB_DIGITS = 4
#: The log's layout version, stored as meta 'schema'; readers (``ferlite report``) refuse a newer one.
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS expressions (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,           -- wall-clock epoch seconds (the sink's clock)
    source TEXT NOT NULL,
    frame INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    confidence REAL NOT NULL,   -- smoothed top-1 probability
    x INTEGER, y INTEGER, w INTEGER, h INTEGER,
    probs TEXT NOT NULL         -- json list, in the order of meta 'labels'
);
CREATE INDEX IF NOT EXISTS expressions_ts ON expressions (ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
INSERT = ("INSERT INTO expressions (ts, source, frame, track_id, label, confidence, x, y, w, h, probs) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _positive_or_zero(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


class SqliteSink(_Sink):
    """The device's expression log, one SQLite file (see the module docstring and ``systemd/README.md``).

    :param path: database file; parent folders are created. Use ``$STATE_DIRECTORY`` under systemd.
    :param commit_interval: seconds between commits; rows wait in memory until then, so a power cut loses at
        most this much (the database itself stays consistent). When a commit fails (a full or read-only disk)
        the sink degrades instead of failing: it keeps the newest ``HOLD_ROWS`` rows in memory, warns once,
        retries with backoff, and writes them when the disk takes them again; ``degraded`` says why meanwhile.
    :param log_interval: a track gets a row when its label changes, else at most once per this many seconds.
        0 logs every face of every frame. A face whose label is still settling (``FaceResult.settled`` False:
        a new track's first ``[tracking] hold`` seconds) gets no row yet.
    :param retention_days: rows older than this are deleted on open and then hourly; None keeps everything.
    :param clock: wall-clock seconds, used for ``ts`` and every interval; injectable for tests.
    """

    def __init__(self, path: str | Path, *, commit_interval: float = 10.0, log_interval: float = LogConfig.log_interval,
                 retention_days: float | None = 30, clock: Callable[[], float] = time.time):
        self.commit_interval = _positive_or_zero("commit_interval", commit_interval)
        self.log_interval = _positive_or_zero("log_interval", log_interval)
        if retention_days is not None and (isinstance(retention_days, bool)
                                           or not isinstance(retention_days, (int, float))
                                           or not 0 < retention_days < float("inf")):
            raise ValueError(f"retention_days must be a number > 0 or None, got {retention_days!r}")
        self.retention_days = retention_days
        self.path = Path(path)
        self._clock = clock
        self._labels: tuple[str, ...] | None = None
        self._tracks: dict[tuple[str, int], tuple[str, float, float]] = {}  # -> (label, last row, last seen)
        self._held: deque[tuple] = deque(maxlen=HOLD_ROWS)  # rows not committed yet
        self._labels_stored = False
        self.committed_rows = 0  # rows committed by this sink since it was opened
        self.dropped_rows = 0  # rows lost because the log could not be written for too long
        self.degraded = ""  # why the log cannot be written now ("" when it can)
        self._failures, self._retry_at = 0, 0.0
        self._conn = self._connect()
        now = clock()
        self._last_commit = now
        self._last_retention = now
        self._delete_expired(now)

    # ------------------------------------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)  # transactions are managed here
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            schema = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key = 'labels'").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the results database {self.path}: {exc}") from exc
        if not schema.isdigit() or int(schema) > SCHEMA_VERSION:
            conn.close()
            raise UsageError(f"{self.path}: log schema {schema} is newer than this ferlite writes "
                             f"({SCHEMA_VERSION}): upgrade ferlite or use another database file")
        if mode.lower() != "wal":
            log.warning("%s: journal_mode is %r, not 'wal' (file system without shared memory?)", self.path, mode)
        if row is not None:
            self._labels, self._labels_stored = tuple(json.loads(row[0])), True
        return conn

    def pragmas(self) -> dict[str, object]:
        """The connection's journal_mode, synchronous (0 off, 1 normal, 2 full) and journal_size_limit."""
        self._check_open()
        return {name: self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "journal_size_limit")}

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The labels the stored ``probs`` lists follow (None until the first write to a new database)."""
        return self._labels

    @property
    def pending_rows(self) -> int:
        """Rows waiting for the next commit (or for the disk to take them again)."""
        return len(self._held)

    def row_count(self) -> int:
        """Rows in the table, this sink's uncommitted ones included."""
        self._check_open()
        return self._conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0] + len(self._held)

    # ------------------------------------------------------------------------------------------ writing

    @classmethod
    def from_config(cls, config: Config, context: OutputContext) -> SqliteSink:
        c = config.log
        return cls(c.resolve_path(), commit_interval=c.commit_interval, log_interval=c.log_interval,
                   retention_days=c.retention_days or None)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        """Log the faces that are due (new track, label change, or ``log_interval`` elapsed), then
        commit if ``commit_interval`` has passed and apply retention if an hour has."""
        self._check_open()
        now = self._clock()
        if result.faces:
            self._check_labels(result.labels)
        for face in result.faces:
            if self._due(now, result.source, face):
                if len(self._held) == self._held.maxlen:
                    self.dropped_rows += 1
                self._held.append(self._row(now, result, face))
        if now - self._last_retention >= RETENTION_CHECK_S:
            self._last_retention = now
            self._delete_expired(now)
        if now - self._last_commit >= self.commit_interval:
            self._commit(now)

    def _check_labels(self, labels: tuple[str, ...]) -> None:
        if self._labels is None:
            self._labels = tuple(labels)  # stored with the first commit
        elif tuple(labels) != self._labels:
            raise UsageError(f"the results database {self.path} holds labels {list(self._labels)}, but this "
                             f"model has {list(labels)}: use another database file (or move this one away)")

    def _due(self, now: float, source: str, face: FaceResult) -> bool:
        """Volume control: whether this face gets a row now; updates the track's state."""
        if not face.settled:  # a new track's label is still settling (its first [tracking] hold seconds)
            return False
        key = (source, face.track_id)
        state = self._tracks.get(key)
        if state is None or state[0] != face.label or now - state[1] >= self.log_interval:
            self._tracks[key] = (face.label, now, now)
            return True
        self._tracks[key] = (state[0], state[1], now)
        return False

    @staticmethod
    def _row(now: float, result: FrameResult, face: FaceResult) -> tuple:
        x, y, w, h = face.box
        probs = json.dumps([round(p, PROB_DIGITS) for p in face.probs], separators=(",", ":"))
        return (now, result.source, result.index, face.track_id, face.label,
                round(face.confidence, PROB_DIGITS), x, y, w, h, probs)

    def _commit(self, now: float) -> None:
        """Write the held rows in one transaction; on a full or read-only disk keep them and retry later."""
        self._last_commit = now
        forget = max(TRACK_FORGET_S, self.log_interval)
        self._tracks = {k: s for k, s in self._tracks.items() if now - s[2] <= forget}
        if (not self._held and self._labels_stored) or (self.degraded and now < self._retry_at):
            return
        rows = list(self._held)
        try:
            self._conn.execute("BEGIN")
            if not self._labels_stored and self._labels is not None:
                self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('labels', ?)",
                                   (json.dumps(list(self._labels)),))
            self._conn.executemany(INSERT, rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(now, exc)
            return
        self._labels_stored = self._labels is not None
        for _ in rows:
            self._held.popleft()
        self.committed_rows += len(rows)
        if self.degraded:
            log.warning("%s: writable again; wrote the %d rows held meanwhile (%d dropped)", self.path, len(rows),
                        self.dropped_rows)
            self.degraded, self._failures = "", 0

    def _failed(self, now: float, exc: sqlite3.Error) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        self._failures += 1
        delay = min(RETRY_S[0] * 2 ** (self._failures - 1), RETRY_S[1])
        self._retry_at = now + delay
        if not self.degraded:
            log.warning("%s: cannot write the log (%s); keeping the newest %d rows in memory and retrying",
                        self.path, exc, HOLD_ROWS)
        self.degraded = str(exc)

    def _delete_expired(self, now: float) -> None:
        if self.retention_days is None:
            return
        try:
            cur = self._conn.execute("DELETE FROM expressions WHERE ts < ?", (now - self.retention_days * 86400,))
        except sqlite3.Error as exc:  # a full disk: the next hourly check tries again
            log.debug("%s: retention delete failed: %s", self.path, exc)
            return
        if cur.rowcount > 0:
            log.info("%s: deleted %d rows older than %g days", self.path, cur.rowcount, self.retention_days)

    def _flush(self) -> None:
        self._retry_at = 0.0  # flush (at readiness, on close) tries now, whatever the backoff
        self._commit(self._clock())

    def _close(self) -> None:
        if self._held:
            self.dropped_rows += len(self._held)
            log.error("%s: %d rows could not be written (%s) and are lost", self.path, len(self._held),
                      self.degraded)
            self._held.clear()
        self._conn.close()
