"""How long `ferlite report` takes on a year-long expression log of one device at the default logging rate.

    python bench/report_bench.py [--days 365] [--runs 3] [--out runs/bench/report]

Generates (once; reused while --days matches) a log with the service's own schema, about 14 MB a day as the
service writes at 5 faces/s (``ferlite.edge.logbook.synth``: one kiosk camera, visitors through the day, a row
per face per second, the tracker's ids restarting with the service every 30 days). Then times the `ferlite
report` command (a subprocess, imports included): the whole log with the page cache emptied for the file first
(cold: the first read after copying a log off a device), then warm (median of --runs), the last day, and the
whole log by day.
Prints a table and writes it to OUT/report_bench.md. The generated log stays under OUT (runs/ is not committed).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferlite.edge.logbook.synth import write_synthetic_log  # noqa: E402


def log_days(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'synthetic_days'").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def drop_cache(path: Path) -> None:
    """Evict the file from the page cache (no root needed), so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def time_report(db: Path, out: Path, args: list[str], cold: bool = False) -> float:
    if cold:
        drop_cache(db)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ferlite", "report", str(db), "--out", str(out), *args],
                       capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"ferlite report failed ({r.returncode}): {r.stderr.strip()}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=3, help="warm runs per case (the median is reported)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "report")
    args = ap.parse_args()
    db = args.out / f"year{args.days}.db"
    if log_days(db) != args.days:
        t = time.perf_counter()
        write_synthetic_log(db, args.days, progress=True)
        print(f"generated {db} in {time.perf_counter() - t:.0f} s")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows, last = conn.execute("SELECT COUNT(*), MAX(ts) FROM expressions").fetchone()
    size = db.stat().st_size
    day_before = datetime.fromtimestamp(last - 86400).isoformat(sep=" ", timespec="seconds")
    cases = [("whole log, by hour, cold cache", ["--bucket", "hour"], True),
             ("whole log, by hour", ["--bucket", "hour"], False),
             ("whole log, by day", ["--bucket", "day"], False),
             ("last day, by hour", ["--bucket", "hour", "--since", day_before], False)]
    lines = [f"`python bench/report_bench.py --days {args.days}`: {rows:,} rows, {size / 1e9:.2f} GB "
             f"({size / 1e6 / args.days:.1f} MB/day) over {args.days} days; {os.cpu_count()} CPU cores", "",
             "| case | runs | seconds (median) | min | max |", "|---|---|---|---|---|"]
    for name, extra, cold in cases:
        times = [time_report(db, args.out / "out", extra, cold) for _ in range(1 if cold else args.runs)]
        median = statistics.median(times)
        lines.append(f"| {name} | {len(times)} | {median:.1f} | {min(times):.1f} | {max(times):.1f} |")
        print(lines[-1], flush=True)
    (args.out / "report_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {args.out / 'report_bench.md'}")


if __name__ == "__main__":
    main()
