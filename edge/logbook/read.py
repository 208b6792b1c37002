"""Read the device's expression log (``edge/outputs/sqlite.py``) read-only, aggregated in SQL.

The log has a row per track every log_interval seconds (2 by default) or per change of label: a year of one
busy device is tens of millions of rows and gigabytes. :func:`load_log` never pulls those rows into Python: it
reads the columns it needs (ts, source, track_id, label) of the rows in the range asked for, in chunks of
consecutive row ids, and lets SQLite count them per track, minute and label. What comes back is one row per
track per minute, small enough for pandas whatever the size of the log, and all that ``ferlite report`` needs.

The database is opened read-only (``mode=ro``) and each chunk is a short read transaction of its own, so
reading the live log of a running service neither blocks it nor holds back its WAL checkpoints.
Only the standard library is imported at module level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ferlite.edge.logbook.scan import CHUNK_ROWS, PIECE_COLUMNS, Scan, scan_log
from ferlite.edge.outputs.sqlite import SCHEMA_VERSION
from ferlite.edge.results import UNCERTAIN
from ferlite.errors import DatasetError, MissingFileError, UsageError
from ferlite.times import parse_time, zone

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Show a progress bar when the range spans more chunks than this.
PROGRESS_MIN_CHUNKS = 2


class EmptyRange(DatasetError):
    """The log holds no rows in the range (or of the source) asked for."""


@dataclass(frozen=True)
class LogInfo:
    """What a ferlite log holds: its labels (the model's, then "uncertain"), schema and time span."""

    path: Path
    labels: tuple[str, ...]
    schema: int
    rows: int  # an upper bound: the span of row ids (rows deleted by retention leave gaps)
    first_id: int | None
    last_id: int | None


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a log read-only; a missing file or one that is not SQLite is a one-line error. Where nothing can be
    written beside the file (a device's card mounted read-only), SQLite cannot set up the shared memory a WAL
    database needs, so the file is read as it stands (``immutable``), without rows still in its -wal file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        return _open(path, "mode=ro")
    except sqlite3.OperationalError as exc:
        try:
            conn = _open(path, "immutable=1")
        except sqlite3.DatabaseError:
            raise DatasetError(f"{path}: not a ferlite log (cannot read it as SQLite: {exc})") from None
        wal = Path(f"{path}-wal")
        if wal.is_file() and wal.stat().st_size and str(path) not in _warned:
            _warned.add(str(path))
            log.warning("%s: read where nothing can be written: the rows still in %s are left out", path, wal.name)
        return conn
    except sqlite3.DatabaseError as exc:
        raise DatasetError(f"{path}: not a ferlite log (cannot read it as SQLite: {exc})") from None


_warned: set[str] = set()


def _open(path: Path, options: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{options}", uri=True, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only=1")
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def inspect(conn: sqlite3.Connection, path: str | Path) -> LogInfo:
    """Check that ``conn`` holds a ferlite log this code can read; DatasetError in one line if not."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = {"expressions", "meta"} - tables
    if missing:
        raise DatasetError(f"{path}: not a ferlite log (no {' or '.join(sorted(missing))} table)")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if "labels" not in meta:
        raise DatasetError(f"{path}: not a ferlite log (no labels in its meta table)")
    schema = meta.get("schema", "1")  # logs written before the schema was stored are version 1
    if not schema.isdigit() or int(schema) > SCHEMA_VERSION:
        raise DatasetError(f"{path}: log schema {schema} is newer than this ferlite reads ({SCHEMA_VERSION}): "
                           "upgrade ferlite")
    try:
        labels = tuple(json.loads(meta["labels"]))
    except ValueError:
        raise DatasetError(f"{path}: not a ferlite log (meta 'labels' is not a json list)") from None
    # two statements: one aggregate each is a look-up at either end of the table, two together a full scan
    lo = conn.execute("SELECT MIN(id) FROM expressions").fetchone()[0]
    hi = conn.execute("SELECT MAX(id) FROM expressions").fetchone()[0]
    rows = 0 if lo is None else hi - lo + 1
    return LogInfo(Path(path), (*labels, UNCERTAIN), int(schema), rows, lo, hi)


def id_range(conn: sqlite3.Connection, info: LogInfo, scan: Scan) -> tuple[int | None, int | None]:
    """(first id, last id) of the rows in the scan's time range: from the ts index when a range is given."""
    if scan.since is None and scan.until is None:
        return info.first_id, info.last_id
    where, params = Scan(scan.labels, scan.since, scan.until).where(indexed=True)
    return conn.execute(f"SELECT MIN(id), MAX(id) FROM expressions WHERE {where}", params).fetchone()


def load_log(path: str | Path, since=None, until=None, source: str | None = None, *, tz: str | None = None,
             progress: bool | None = None) -> pd.DataFrame:
    """The log's rows in [since, until) (and of ``source``), counted per track, minute and label.

    One row per (source, track_id, minute): ``minute`` (UTC epoch minutes), ``first`` and ``last`` (epoch
    seconds, to 0.1 s, of the track's first and last row in that minute), ``rows``, then a count column per
    label (the log's labels, "uncertain", and "other" if a row has another label). ``since``/``until`` take
    epoch seconds, datetimes or --since strings; ``progress`` None shows a bar when the range is large.
    ``attrs`` holds path, labels, since, until and source. DatasetError when the range holds no rows.
    """
    start_s, end_s = parse_time(since, tz=tz), parse_time(until, tz=tz)
    if start_s is not None and end_s is not None and start_s >= end_s:
        raise UsageError("--since must be earlier than --until")
    with contextlib.closing(connect(path)) as conn:
        info = inspect(conn, path)
        scan = Scan(info.labels, start_s, end_s, source)
        lo, hi = id_range(conn, info, scan)
    if progress is None:
        progress = lo is not None and (hi - lo) // CHUNK_ROWS >= PROGRESS_MIN_CHUNKS
    df = scan_log(lambda: connect(path), scan, lo, hi, progress=progress) if lo is not None else None
    if df is None or df.empty:
        raise EmptyRange(empty_range_message(path, start_s, end_s, source, info))
    df.attrs.update(path=str(path), since=start_s, until=end_s, source=source,
                    labels=[c for c in df.columns if c not in PIECE_COLUMNS])
    return df


def empty_range_message(path, since: float | None, until: float | None, source: str | None, info: LogInfo) -> str:
    """'no rows ...' naming the range asked for and the span the log holds."""
    asked = " ".join(p for p in (f"since {_stamp(since)}" if since is not None else "",
                                 f"until {_stamp(until)}" if until is not None else "",
                                 f"from source {source!r}" if source is not None else "") if p)
    if info.first_id is None:
        return f"{path}: the log has no rows yet"
    with contextlib.closing(connect(path)) as conn:  # one aggregate a statement: one look-up in the ts index each
        first = conn.execute("SELECT MIN(ts) FROM expressions").fetchone()[0]
        last = conn.execute("SELECT MAX(ts) FROM expressions").fetchone()[0]
    return f"{path}: no rows {asked or 'at all'} (the log holds {_stamp(first)} to {_stamp(last)})"


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def read_rows(path: str | Path, since=None, until=None, source: str | None = None,
              columns: tuple[str, ...] = ("ts", "source", "track_id", "label", "confidence"),
              limit: int | None = 100_000, tz: str | None = None) -> pd.DataFrame:
    """The raw rows of a (small) range, oldest first, ``ts`` as local datetimes: for looking at a log, not
    for a year of it (``limit`` rows at most; None for all). ``probs`` comes back as lists."""
    import pandas as pd

    allowed = ("id", "ts", "source", "frame", "track_id", "label", "confidence", "x", "y", "w", "h", "probs")
    bad = [c for c in columns if c not in allowed]
    if bad:
        raise UsageError(f"unknown column(s) {', '.join(bad)}; the log has {', '.join(allowed)}")
    where, params = Scan((), parse_time(since, tz=tz), parse_time(until, tz=tz), source).where(indexed=True)
    sql = f"SELECT {', '.join(columns)} FROM expressions WHERE {where} ORDER BY ts"
    sql += "" if limit is None else f" LIMIT {int(limit)}"
    with contextlib.closing(connect(path)) as conn:
        inspect(conn, path)
        df = pd.read_sql_query(sql, conn, params=params)
    if "ts" in df:
        df["ts"] = local_times(df["ts"], tz)
    if "probs" in df:
        df["probs"] = df["probs"].map(json.loads)
    return df


def local_times(epoch_s, tz: str | None = None) -> pd.Series:
    """Naive local datetimes of epoch seconds: in ``tz``, or in this machine's time zone (DST included)."""
    import numpy as np
    import pandas as pd

    s = pd.Series(epoch_s, dtype="float64")
    if tz:
        zone(tz)
        return pd.to_datetime(s, unit="s", utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    quarter = np.floor(s.to_numpy() / 900).astype("int64")  # every UTC offset in use is a multiple of 15 min
    uniq, inverse = np.unique(quarter, return_inverse=True)
    offsets = np.array([time.localtime(int(q) * 900).tm_gmtoff for q in uniq], dtype="float64")
    return pd.Series(pd.to_datetime(s.to_numpy() + offsets[inverse], unit="s"), index=s.index)


def timedelta_text(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h', '12 d': a duration for summaries."""
    td = timedelta(seconds=seconds)
    if td < timedelta(minutes=2):
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if td < timedelta(hours=2):
        return f"{seconds / 60:.0f} min"
    if td < timedelta(days=2):
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"
