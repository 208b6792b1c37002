"""The device's expression log: one SQLite file, SD-card friendly, written off the frame loop.

WAL + ``synchronous=NORMAL``, commits batched every ``commit_interval`` seconds, a row per track when the tracker
says it appeared or changed label and then every ``log_interval`` seconds of the source's clock (not per frame),
and old rows deleted after ``retention_days``. The frame thread only turns a frame's faces into rows and appends
them to a bounded queue (the oldest dropped, and counted, when it is full); the log's own thread commits them, in
chunks, oldest first, so a slow or full disk never holds a frame up. Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferlite.edge.config import LogConfig
from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.results import FaceResult, FrameResult
from ferlite.errors import UsageError

log = logging.getLogger(__name__)

#: WAL file size kept after a checkpoint (bytes); the WAL is reused from its start, not grown.
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
#: Seconds between retention deletes after the one done on open.
RETENTION_CHECK_S = 3600.0
#: Rows held in memory while the log cannot be written (a full or read-only disk); the oldest are dropped.
HOLD_ROWS = 20_000
#: Rows per transaction: the oldest first; after a failure the chunk halves (down to the second figure), so
#: whatever space a full disk gets back is used.
CHUNK_ROWS = (500, 8)
#: Seconds before retrying a failed commit (or open), doubling per failure up to the second figure.
RETRY_S = (1.0, 60.0)
#: Decimal places stored for probabilities and confidence (4 keeps the json list short).
PROB_DIGITS = 4
#: The log's layout version, stored as meta 'schema'; readers (``ferlite report``) refuse a newer one.
SCHEMA_VERSION = 1
#: errno values, SQLite result codes (READONLY, IOERR, FULL) and messages of a disk that may take writes later.
TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT}
TRANSIENT_CODES = {8, 10, 13}
TRANSIENT_TEXT = ("disk is full", "readonly", "disk i/o error")

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


def _transient(exc: BaseException) -> bool:
    """Whether an error opening or writing the log may pass by itself (a full, read-only or failing disk)."""
    if isinstance(exc, OSError) or not isinstance(exc, sqlite3.Error):
        return getattr(exc, "errno", None) in TRANSIENT_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in TRANSIENT_CODES) or any(t in str(exc).lower() for t in TRANSIENT_TEXT)


def due(face: FaceResult, result: FrameResult, previous: float | None, log_interval: float) -> bool:
    """Volume control: whether a face gets a row in this frame. Its label must have settled; then a row when the
    tracker reports it (appeared, label changed), and every ``log_interval`` seconds of the source's clock after
    that (0: every frame). ``previous`` is the source's previous frame time."""
    if not face.settled:
        return False
    if log_interval == 0 or any(e.track_id == face.track_id and e.kind != "gone" for e in result.events):
        return True
    t = result.timestamp
    if previous is None or previous >= t:
        return False
    return math.floor((t - face.since) / log_interval) > math.floor((previous - face.since) / log_interval)


class SqliteSink(_Sink):
    """The device's expression log, one SQLite file (see the module docstring and ``systemd/README.md``).

    :param path: database file; parent folders are created. Use ``$STATE_DIRECTORY`` under systemd.
    :param commit_interval: seconds between commits; rows wait in memory until then, so a power cut loses at
        most this much (the database itself stays consistent). When a commit fails (a full or read-only disk)
        the sink degrades instead of failing: it keeps the newest ``HOLD_ROWS`` rows in memory, warns once,
        retries with backoff and writes them, oldest first and in chunks, as the disk takes them again;
        ``degraded`` says why meanwhile. A new log that cannot be created on such a disk waits the same way.
    :param log_interval: a track gets a row when the tracker reports it (appeared, label changed), then at most
        once per this many seconds of the source's clock. 0 logs every settled face of every frame.
    :param retention_days: rows older than this are deleted on open and then hourly; None keeps everything.
    :param clock: wall-clock seconds, used for ``ts`` and the commit and retention intervals; injectable for tests.
    """

    SECTION = "log"

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
        self._previous: dict[str, float] = {}  # source -> its previous frame's time
        self._held: deque[tuple] = deque()  # rows not committed yet, oldest first (the writer takes from the left)
        self._lock = threading.Condition()  # guards _held, the counters and the writer's requests
        self._db = threading.Lock()  # held by the log's thread while it uses the connection
        self._labels_stored = False
        self.committed_rows = 0  # rows committed by this sink since it was opened
        self.dropped_rows = 0  # rows lost because the log could not be written for too long
        self.degraded = ""  # why the log cannot be written now ("" when it can)
        self._failures, self._retry_at, self._chunk = 0, 0.0, CHUNK_ROWS[0]
        self._asked, self._done, self._force, self._stopping = 0, 0, False, False  # the log's thread's requests
        now = clock()
        self._last_commit, self._last_retention = now, now
        self._retention_at: float | None = None  # a retention delete asked of the log's thread
        self._conn = self._open_or_wait(now)
        if self._conn is not None:
            self._delete_expired(now)
        self._writer = threading.Thread(target=self._write_loop, name="ferlite-log", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------------------------------ opening

    def _open_or_wait(self, now: float) -> sqlite3.Connection | None:
        """The connection; None, degraded, when the disk cannot take a new log now (the writer retries)."""
        try:
            return self._connect()
        except (OSError, sqlite3.Error) as exc:
            if not _transient(exc):
                raise UsageError(f"cannot open the results database {self.path}: {exc}") from exc
            self._failed(now, exc, opening=True)
            return None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)  # the writer uses it
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            schema = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key = 'labels'").fetchone()
        except BaseException:
            conn.close()
            raise
        if not schema.isdigit() or int(schema) > SCHEMA_VERSION:
            conn.close()
            raise UsageError(f"{self.path}: log schema {schema} is newer than this ferlite writes "
                             f"({SCHEMA_VERSION}): upgrade ferlite or use another database file")
        if mode.lower() != "wal":
            log.warning("%s: journal_mode is %r, not 'wal' (file system without shared memory?)", self.path, mode)
        if row is not None:
            stored = tuple(json.loads(row[0]))
            if self._labels not in (None, stored):  # a log created late, by the log's thread
                conn.close()
                raise UsageError(self._labels_error(stored, self._labels))
            self._labels, self._labels_stored = stored, True
        return conn

    def pragmas(self) -> dict[str, object]:
        """The connection's journal_mode, synchronous (0 off, 1 normal, 2 full) and journal_size_limit."""
        self._check_open()
        with self._db:
            return {name: self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "synchronous", "journal_size_limit")}

    @property
    def labels(self) -> tuple[str, ...] | None:  # what the stored probs follow (None before the first write)
        return self._labels

    @property
    def pending_rows(self) -> int:  # rows waiting for the next commit (or for the disk to take them again)
        return len(self._held)

    def row_count(self) -> int:
        """Rows in the table, this sink's uncommitted ones included."""
        self._check_open()
        with self._db, self._lock:
            stored = self._conn.execute("SELECT COUNT(*) FROM expressions").fetchone()[0] if self._conn else 0
            return stored + len(self._held)

    def drops(self) -> dict[str, int]:  # rows lost: the disk too slow, full or read-only for too long
        return {"log rows": self.dropped_rows}

    # ------------------------------------------------------------------------------------------ frame thread

    @classmethod
    def from_config(cls, c: LogConfig, context: OutputContext) -> SqliteSink:
        return cls(c.resolve_path(), commit_interval=c.commit_interval, log_interval=c.log_interval,
                   retention_days=c.retention_days or None)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        """Queue the rows of the faces that are due (see :func:`due`), then ask the log's thread to commit if
        ``commit_interval`` has passed (and to apply retention if an hour has). Never waits on the disk."""
        self._check_open()
        now = self._clock()
        if result.faces:
            self._check_labels(result.labels)
        previous = self._previous.get(result.source)
        rows = [self._row(now, result, f) for f in result.faces if due(f, result, previous, self.log_interval)]
        self._previous[result.source] = result.timestamp
        with self._lock:
            self._held.extend(rows)
            self._trim()
            if now - self._last_retention >= RETENTION_CHECK_S:
                self._last_retention = self._retention_at = now
                self._ask()
            if now - self._last_commit >= self.commit_interval:
                self._last_commit = now
                self._ask()

    def _check_labels(self, labels: tuple[str, ...]) -> None:
        if self._labels is None:
            self._labels = tuple(labels)  # stored with the first commit
        elif tuple(labels) != self._labels:
            raise UsageError(self._labels_error(self._labels, labels))

    def _labels_error(self, stored, labels) -> str:
        return f"the results database {self.path} holds labels {list(stored)}, but this model has {list(labels)}: " \
            "use another database file (or move this one away)"

    @staticmethod
    def _row(now: float, result: FrameResult, face: FaceResult) -> tuple:
        x, y, w, h = face.box
        probs = json.dumps([round(p, PROB_DIGITS) for p in face.probs], separators=(",", ":"))
        return (now, result.source, result.index, face.track_id, face.label,
                round(face.confidence, PROB_DIGITS), x, y, w, h, probs)

    def _trim(self) -> None:  # drop the oldest rows beyond HOLD_ROWS (with the lock held)
        while len(self._held) > HOLD_ROWS:
            self._held.popleft()
            self.dropped_rows += 1

    def _ask(self, force: bool = False) -> int:  # with the lock held; returns the request's number
        self._asked += 1
        self._force = self._force or force
        self._lock.notify_all()
        return self._asked

    def wait_written(self, timeout: float | None = None) -> bool:
        """Wait until the log's thread has served every commit asked for so far; False on timeout."""
        with self._lock:
            asked = self._asked
            return self._lock.wait_for(lambda: self._done >= asked or not self._writer.is_alive(), timeout)

    # ------------------------------------------------------------------------------------------ the log's thread

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._asked > self._done or self._stopping)
                if self._asked == self._done and self._stopping:
                    return
                asked, force, self._force = self._asked, self._force, False
                retention, self._retention_at = self._retention_at, None
            now = self._clock()
            if force:
                self._retry_at = 0.0  # flush (at readiness, on close) tries now, whatever the backoff
            if not (self.degraded and now < self._retry_at):
                try:
                    self._serve(now, retention)
                except Exception:  # a bug must not stop the log's thread (and with it every flush)
                    log.exception("%s: the log's writer failed", self.path)
            with self._lock:
                self._done = asked
                self._lock.notify_all()

    def _serve(self, now: float, retention: float | None) -> None:
        if self._conn is None:
            try:
                with self._db:
                    self._conn = self._connect()
            except (OSError, sqlite3.Error, UsageError) as exc:
                self._failed(now, exc, opening=True)
                return
            log.info("%s: created the log", self.path)
        if retention is not None:
            with self._db:
                self._delete_expired(retention)
        self._commit(now)

    def _commit(self, now: float) -> None:
        """Write the held rows, oldest first, a chunk per transaction; on a full or read-only disk keep the rest
        and retry later. A failed chunk is tried again after a checkpoint (which frees the WAL's old pages) and
        then in halves, so that what little space came back is used too."""
        written, checkpointed = 0, False
        while self._held or (not self._labels_stored and self._labels is not None):
            try:
                written += self._write_chunk()
            except sqlite3.Error as exc:
                if not checkpointed:
                    checkpointed = True
                    with self._db, contextlib.suppress(sqlite3.Error):
                        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                elif self._chunk > CHUNK_ROWS[1]:
                    self._chunk //= 2
                else:
                    self._failed(now, exc)
                    return
                continue
            self._chunk = min(CHUNK_ROWS[0], 2 * self._chunk)
        if self.degraded:
            log.warning("%s: writable again; wrote the %d rows held meanwhile (%d dropped)", self.path, written,
                        self.dropped_rows)
            self.degraded, self._failures = "", 0

    def _write_chunk(self) -> int:
        """One transaction of the oldest held rows (and the labels, the first time); on failure they are held
        again. The database lock makes row_count exact: a row is held or stored, never neither."""
        with self._db:
            with self._lock:
                rows = [self._held.popleft() for _ in range(min(self._chunk, len(self._held)))]
            try:
                self._conn.execute("BEGIN")
                if not self._labels_stored and self._labels is not None:
                    self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('labels', ?)",
                                       (json.dumps(list(self._labels)),))
                self._conn.executemany(INSERT, rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                with self._lock:
                    self._held.extendleft(reversed(rows))
                    self._trim()
                raise
            self._labels_stored = self._labels is not None
            self.committed_rows += len(rows)
            return len(rows)

    def _failed(self, now: float, exc: BaseException, opening: bool = False) -> None:
        self._failures += 1
        delay = min(RETRY_S[0] * 2 ** (self._failures - 1), RETRY_S[1])
        self._retry_at = now + delay
        if not self.degraded:
            what = "create" if opening else "write"
            log.warning("%s: cannot %s the log (%s); keeping the newest %d rows in memory and retrying",
                        self.path, what, exc, HOLD_ROWS)
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

    # ------------------------------------------------------------------------------------------ flush, close

    def _flush(self) -> None:  # commit everything held now (whatever the backoff) and wait for it
        with self._lock:
            asked = self._ask(force=True)
            self._lock.wait_for(lambda: self._done >= asked or not self._writer.is_alive())

    def _close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._writer.join()
        if self._held:
            self.dropped_rows += len(self._held)
            log.error("%s: %d rows could not be written (%s) and are lost", self.path, len(self._held),
                      self.degraded)
            self._held.clear()
        if self._conn is not None:
            self._conn.close()
