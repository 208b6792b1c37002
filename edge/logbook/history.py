"""Counts per expression per time bucket, straight from the SQLite log (read-only, no pandas: the device's
`/api/history`). Only the standard library is imported here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ferlite.errors import UsageError

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
#: The largest bucket in seconds (a year) and the most buckets an answer holds.
MAX_BUCKET, MAX_LIMIT = 366 * 86400, 100_000


def bucket_seconds(text: str | None) -> int:
    if not text:
        return BUCKETS["minute"]
    if text in BUCKETS:
        return BUCKETS[text]
    if len(text) <= 9 and text.isascii() and text.isdigit() and 0 < int(text) <= MAX_BUCKET:
        return int(text)
    raise UsageError(f"bucket {_shown(text)}: minute, hour, day or a number of seconds from 1 to {MAX_BUCKET}")


def limit_count(text: str | None) -> int:
    """The most buckets an answer holds (?limit=): 1 to MAX_LIMIT, MAX_LIMIT when not given."""
    if not text:
        return MAX_LIMIT
    if len(text) <= 9 and text.isascii() and text.isdigit() and 0 < int(text) <= MAX_LIMIT:
        return int(text)
    raise UsageError(f"limit {_shown(text)}: a number of buckets from 1 to {MAX_LIMIT}")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def history(db: Path, since: float, until: float, bucket: int, limit: int = MAX_LIMIT) -> dict:
    """``{"bucket": seconds, "labels": [...], "rows": [{"start": epoch, "counts": {label: n}}]}`` for
    ``since <= ts < until``, oldest first; rows are log rows (a row per track per change or interval). At most
    ``limit`` buckets, the newest; ``truncated`` says whether older ones were left out."""
    if not Path(db).is_file():
        raise UsageError(f"{db}: no expression log yet")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out: dict[int, dict[str, int]] = {}
    truncated = False
    try:
        rows = conn.execute("SELECT CAST(ts / ? AS INTEGER) * ?, label, COUNT(*) FROM expressions "
                            "WHERE ts >= ? AND ts < ? GROUP BY 1, 2 ORDER BY 1 DESC",
                            (bucket, bucket, since, until))
        for start, label, count in rows:
            if int(start) not in out and len(out) == limit:
                truncated = True
                break
            out.setdefault(int(start), {})[label] = count
    finally:
        conn.close()
    labels = sorted({label for counts in out.values() for label in counts})
    return {"bucket": bucket, "since": since, "until": until, "limit": limit, "truncated": truncated,
            "labels": labels, "rows": [{"start": start, "counts": out[start]} for start in sorted(out)]}
