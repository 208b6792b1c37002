"""Counts per expression per time bucket, straight from the SQLite log (read-only, no pandas: the device's
`/api/history`). Only the standard library is imported here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ferlite.errors import UsageError

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}


def bucket_seconds(text: str | None) -> int:
    if not text:
        return BUCKETS["minute"]
    if text in BUCKETS:
        return BUCKETS[text]
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise UsageError(f"bucket {text!r}: minute, hour, day or a number of seconds")


def history(db: Path, since: float, until: float, bucket: int) -> dict:
    """``{"bucket": seconds, "labels": [...], "rows": [{"start": epoch, "counts": {label: n}}]}`` for
    ``since <= ts < until``, oldest first; rows are log rows (a row per track per change or interval)."""
    if not Path(db).is_file():
        raise UsageError(f"{db}: no expression log yet")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT CAST(ts / ? AS INTEGER) * ?, label, COUNT(*) FROM expressions "
                            "WHERE ts >= ? AND ts < ? GROUP BY 1, 2 ORDER BY 1", (bucket, bucket, since, until))
        out: dict[int, dict[str, int]] = {}
        for start, label, count in rows:
            out.setdefault(int(start), {})[label] = count
    finally:
        conn.close()
    labels = sorted({label for counts in out.values() for label in counts})
    return {"bucket": bucket, "since": since, "until": until, "labels": labels,
            "rows": [{"start": start, "counts": counts} for start, counts in out.items()]}
