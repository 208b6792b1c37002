"""Scan an expression log fast: a chunk of rows at a time, counted per track, minute and label.

SQLite's GROUP BY sorts every row it groups, which costs more than reading the row; on a year-long log
(35-40 million rows) that alone takes minutes. So each chunk of consecutive row ids is read in one
statement that returns three comma-separated strings (a packed integer per row: the time in tenths of a
second and the label's index; the track id; nothing else) and numpy does the counting. A chunk is one
short read transaction: a live service's WAL checkpoints are not held back for the whole scan, and two
threads, each with its own read-only connection, read chunks side by side (SQLite releases the GIL).
Only the standard library is imported at module level.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: Row ids per chunk: one short read transaction each, and one step of the progress bar.
CHUNK_ROWS = 500_000
#: The time unit counted in (seconds): the finest bucket. Minutes also hold every UTC offset in use.
UNIT_S = 60
#: Columns of a scan's frame before the label counts.
PIECE_COLUMNS = ("source", "track_id", "minute", "first", "last", "rows")
#: Label counted for a row whose label is neither the log's nor "uncertain".
OTHER = "other"


@dataclass(frozen=True)
class Scan:
    """What to read: the labels to count, and the range (epoch seconds, [since, until)) and source."""

    labels: tuple[str, ...]
    since: float | None = None
    until: float | None = None
    source: str | None = None

    @property
    def bits(self) -> int:
        """Bits of the packed integer that hold the label index (the all-ones value means "other")."""
        return max(4, len(self.labels).bit_length())

    def where(self, indexed: bool = False) -> tuple[str, list]:
        """The range and source conditions, and their parameters. Not ``indexed``: the unary + keeps SQLite
        on the row-id range of a chunk rather than the ts index."""
        col = "ts" if indexed else "+ts"
        terms, params = [], []
        for cond, value in ((f"{col} >= ?", self.since), (f"{col} < ?", self.until), ("source = ?", self.source)):
            if value is not None:
                terms.append(cond)
                params.append(value)
        return " AND ".join(terms) or "1", params

    def chunk_sql(self, source: bool = False) -> tuple[str, list]:
        """One chunk's statement: its parameters are the labels, then the chunk's first and end row id, then
        the returned list (plus one for the source when ``source``)."""
        where, params = self.where()
        case = " ".join(f"WHEN ? THEN {i}" for i in range(len(self.labels)))
        sql = (f"SELECT group_concat(CAST(ts * 10 AS INTEGER) * {1 << self.bits} + CASE label {case} "
               f"ELSE {(1 << self.bits) - 1} END, ','), group_concat(track_id, ','), MIN(source), MAX(source), "
               f"COUNT(*) FROM expressions WHERE id >= ? AND id < ? AND {where}")
        return sql + (" AND source = ?" if source else ""), params


def chunks(lo: int, hi: int, size: int | None = None) -> Iterator[tuple[int, int]]:
    """[start, end) row-id ranges covering lo..hi, ``size`` (CHUNK_ROWS) ids each."""
    size = size or CHUNK_ROWS
    for start in range(lo, hi + 1, size):
        yield start, min(start + size, hi + 1)


def scan_chunk(conn: sqlite3.Connection, scan: Scan, start: int, end: int) -> list[pd.DataFrame]:
    """Pieces (one row per source, track and minute) of the rows with ids in [start, end)."""
    sql, params = scan.chunk_sql()
    packed, tracks, first_source, last_source, n = conn.execute(sql, [*scan.labels, start, end, *params]).fetchone()
    if not n:
        return []
    if first_source == last_source:
        return [reduce(packed, tracks, first_source, scan)]
    where, wparams = scan.where()  # several sources in this chunk: one statement per source
    sources = [r[0] for r in conn.execute(f"SELECT DISTINCT source FROM expressions WHERE id >= ? AND id < ? "
                                          f"AND {where}", [start, end, *wparams])]
    sql, params = scan.chunk_sql(source=True)
    return [reduce(*conn.execute(sql, [*scan.labels, start, end, *params, s]).fetchone()[:2], s, scan)
            for s in sources]


def reduce(packed: str, tracks: str, source: str, scan: Scan) -> pd.DataFrame:
    """Count one source's rows of a chunk per (track, minute): first and last time, rows, rows per label."""
    import numpy as np
    import pandas as pd

    code = np.fromstring(packed, sep=",", dtype=np.int64)
    track = np.fromstring(tracks, sep=",", dtype=np.int64)
    width = 1 << scan.bits
    tenths, label = code >> scan.bits, code & (width - 1)
    minute = tenths // (10 * UNIT_S)
    order = np.argsort(((minute - minute.min()) << 40) | track, kind="stable")  # by minute, then track
    minute, track, tenths, label = minute[order], track[order], tenths[order], label[order]
    new = np.r_[True, (minute[1:] != minute[:-1]) | (track[1:] != track[:-1])]
    start = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    counts = np.bincount(group * width + label, minlength=len(start) * width).reshape(len(start), width)
    frame = pd.DataFrame({"source": source, "track_id": track[start], "minute": minute[start],
                          "first": np.minimum.reduceat(tenths, start) / 10,
                          "last": np.maximum.reduceat(tenths, start) / 10,
                          "rows": np.diff(np.r_[start, len(order)])})
    for i, name in enumerate(scan.labels):
        frame[name] = counts[:, i]
    if counts[:, -1].any():
        frame[OTHER] = counts[:, -1]
    return frame


def scan_log(connect: Callable[[], sqlite3.Connection], scan: Scan, lo: int, hi: int, *, workers: int | None = None,
             progress: bool = False) -> pd.DataFrame:
    """Every chunk of ids lo..hi through :func:`scan_chunk` (``workers`` threads, each with a connection from
    ``connect``), merged into one frame of pieces; empty when no row matches."""
    import pandas as pd
    from tqdm import tqdm

    local = threading.local()
    opened: list[sqlite3.Connection] = []
    lock = threading.Lock()

    def work(chunk: tuple[int, int]) -> list[pd.DataFrame]:
        if not hasattr(local, "conn"):
            local.conn = connect()
            with lock:
                opened.append(local.conn)
        return scan_chunk(local.conn, scan, *chunk)

    todo = list(chunks(lo, hi))
    try:
        with ThreadPoolExecutor(max_workers=workers or min(2, os.cpu_count() or 1)) as pool:
            done = tqdm(pool.map(work, todo), total=len(todo), desc="reading the log", unit="chunk",
                        disable=not progress, leave=False)
            parts = [frame for frames in done for frame in frames]
    finally:
        for conn in opened:
            conn.close()
    if not parts:
        return pd.DataFrame(columns=[*PIECE_COLUMNS, *scan.labels])
    return merge(parts, scan)


def merge(parts: list[pd.DataFrame], scan: Scan) -> pd.DataFrame:
    """One row per (source, track, minute): a piece that two chunks split is summed back together."""
    import pandas as pd

    frame = pd.concat(parts, ignore_index=True).fillna({OTHER: 0})
    labels = [c for c in frame.columns if c not in PIECE_COLUMNS]
    keys = ["source", "track_id", "minute"]
    agg = {"first": "min", "last": "max", "rows": "sum"} | {name: "sum" for name in labels}
    frame = frame.groupby(keys, sort=True, observed=True).agg(agg).reset_index()
    return frame.astype({name: "int64" for name in ["rows", *labels]})
