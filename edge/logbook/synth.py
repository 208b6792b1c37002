"""A synthetic expression log, written with the service's own schema: for benchmarks, demos and notebooks.

One kiosk camera ("picamera"): visitors arrive through the day (busier 8:00-20:00 local time, a few at night),
each a track with a row per second (``log_interval = 1``: twice the rows of the default 2 s) for a dwell of
about a minute (log-normal, 1 s to 30 min), showing one main expression with the classifier disagreeing now
and then or unsure ("uncertain"); the tracker's ids restart with the service every 30 days. That is about 14
MB a day, as the service writes at 5 faces/s. numpy is imported inside the functions."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from ferlite.edge.outputs.sqlite import INSERT, SCHEMA, SCHEMA_VERSION

#: The bundled model's seven labels (FER2013's).
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: A visitor's main expression: mostly neutral and happy, as at a kiosk.
MOOD = (0.05, 0.01, 0.02, 0.33, 0.08, 0.06, 0.45)
#: Visitors arriving per hour of the day (local time).
ARRIVALS = (4, 3, 2, 2, 2, 4, 10, 40, 110, 130, 140, 150, 160, 150, 140, 140, 150, 140, 120, 100, 50, 20, 10, 6)
MEAN_DWELL_S = 60.0
#: Share of rows whose label is not the visitor's main expression (another one, or uncertain).
NOISE = 0.25
RESTART_DAYS = 30
FPS = 5


def probs_pool(rng, per_label: int = 64) -> list[list[str]]:
    """JSON probability lists as the sink writes them, a pool per label (the last one: uncertain)."""
    import numpy as np

    pool = []
    for k in range(len(LABELS) + 1):
        strings = []
        for _ in range(per_label):
            p = rng.dirichlet(np.ones(len(LABELS)))
            top = k if k < len(LABELS) else int(rng.integers(len(LABELS)))
            p[top] += rng.uniform(1.0, 6.0) if k < len(LABELS) else 0.3
            p = p / p.sum()
            strings.append(json.dumps([round(float(v), 4) for v in p], separators=(",", ":")))
        pool.append(strings)
    return pool


def day_rows(rng, day_start: float, first_id: int, pool, source: str = "picamera") -> tuple[list[tuple], int]:
    """One day's rows (the sink's INSERT order of columns), in time order, and the next track id."""
    import numpy as np

    starts = np.concatenate([day_start + h * 3600 + rng.uniform(0, 3600, n)
                             for h, n in enumerate(rng.poisson(np.array(ARRIVALS, dtype=float)))])
    starts.sort()
    dwell = np.clip(rng.lognormal(np.log(MEAN_DWELL_S) - 0.5, 1.0, len(starts)), 1, 1800).astype(int)
    mood = rng.choice(len(LABELS), len(starts), p=np.array(MOOD))
    track = np.repeat(np.arange(first_id, first_id + len(starts)), dwell)
    ts = np.repeat(starts, dwell) + np.concatenate([np.arange(d) for d in dwell]) + rng.uniform(0, 0.2, len(track))
    label = np.repeat(mood, dwell)
    noisy = rng.random(len(track)) < NOISE
    label[noisy] = rng.integers(0, len(LABELS) + 1, noisy.sum())
    conf = np.where(label == len(LABELS), rng.uniform(0.3, 0.45, len(track)), rng.uniform(0.45, 0.99, len(track)))
    order = np.argsort(ts, kind="stable")
    ts, track, label, conf = ts[order], track[order], label[order], conf[order].round(4)
    boxes = rng.integers(40, 400, (len(ts), 4))
    pick = rng.integers(0, len(pool[0]), len(ts))
    names = [*LABELS, "uncertain"]
    frames = ((ts - day_start) * FPS).astype(int)
    rows = list(zip(ts.tolist(), [source] * len(ts), frames.tolist(), track.tolist(),
                    [names[i] for i in label.tolist()], conf.tolist(), *boxes.T.tolist(),
                    [pool[i][j] for i, j in zip(label.tolist(), pick.tolist())]))
    return rows, first_id + len(starts)


def write_synthetic_log(path: str | Path, days: int, seed: int = 0, end: float | None = None,
                        progress: bool = False) -> Path:
    """Write ``days`` days ending at ``end`` (epoch seconds; default: today's local midnight) to a new log at
    ``path`` (replaced if it exists), in WAL mode as the device leaves it. Returns the path."""
    import numpy as np
    from tqdm import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    pool = probs_pool(rng)
    end = end or datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # fast to write; WAL at the end
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('labels', ?), ('schema', ?), ('synthetic_days', ?)",
                     (json.dumps(list(LABELS)), str(SCHEMA_VERSION), str(days)))
        next_id = 1
        for d in tqdm(range(days), desc="writing a synthetic log", unit="day", disable=not progress):
            if d % RESTART_DAYS == 0:
                next_id = 1  # the service restarted: the tracker counts from 1 again
            rows, next_id = day_rows(rng, end - (days - d) * 86400, next_id, pool)
            rows = [r for r in rows if r[0] < end] if d == days - 1 else rows  # visits at midnight end there
            conn.execute("BEGIN")
            conn.executemany(INSERT, rows)
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return path
