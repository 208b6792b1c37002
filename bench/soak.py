"""Soak: `ferlite run` on the looping sample clip for a while, its resident memory sampled.

    python bench/soak.py --minutes 10            # what docs/service.md quotes; .ci/run adds --max-growth 5
    python bench/soak.py --minutes 1440          # 24 hours (on a Pi: run it inside tmux, or as a unit)

Samples VmRSS of the service every --every seconds. Resident memory swings by about 20 MB as the clip loops
(the decoder's buffers come and go with each reopening), so single samples say little; a leak raises the
floor. Growth is the lowest sample of the last --window seconds minus the lowest of the first --window
seconds after --warmup. Prints a table and writes it (markdown and csv) under runs/soak/ (or --out).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the first counted sample")
    p.add_argument("--window", type=float, default=60.0, help="seconds whose lowest sample is the floor")
    p.add_argument("--clip", default=str(ROOT / "edge" / "data" / "sample.mp4"))
    p.add_argument("--out", type=Path, default=Path("runs/soak"))
    p.add_argument("--max-growth", type=float, default=None, metavar="MB",
                   help="exit 1 when the growth after warm-up is larger (CI: 5)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "ferlite", "run", "--source", args.clip, "--set", "source.loop=true",
               "--set", f"log.path={tmp}/soak.db"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "soak.log", "w"))
        samples, t0 = [], time.monotonic()
        try:
            while time.monotonic() - t0 < args.minutes * 60:
                time.sleep(args.every)
                if proc.poll() is not None:
                    sys.exit(f"the service exited with {proc.returncode}: {(Path(tmp) / 'soak.log').read_text()}")
                samples.append((round(time.monotonic() - t0, 1), rss_mb(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(30)
        log = (Path(tmp) / "soak.log").read_text()
    counted = [s for s in samples if s[0] >= args.warmup]
    end = counted[-1][0]
    first = min(m for t, m in counted if t < args.warmup + args.window)
    last = min(m for t, m in counted if t > end - args.window)
    peak = max(m for _, m in counted)
    rows = [("minutes", f"{args.minutes:g}"), ("samples after warm-up", len(counted)),
            (f"floor RSS, first {args.window:g} s after warm-up (MB)", f"{first:.1f}"),
            (f"floor RSS, last {args.window:g} s (MB)", f"{last:.1f}"),
            ("growth of the floor (MB)", f"{last - first:+.1f}"), ("peak after warm-up (MB)", f"{peak:.1f}"),
            ("rows logged", log.strip().splitlines()[-1].split("; ")[-1] if log.strip() else "?")]
    args.out.mkdir(parents=True, exist_ok=True)
    md = ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    (args.out / "soak.md").write_text("\n".join(md) + "\n")
    with open(args.out / "soak_samples.csv", "w", newline="") as f:
        csv.writer(f).writerows([("seconds", "rss_mb"), *samples])
    print("\n".join(md))
    print(f"wrote {args.out / 'soak.md'}; os {os.uname().machine}")
    if args.max_growth is not None and last - first > args.max_growth:
        sys.exit(f"soak: the resident-memory floor grew {last - first:.1f} MB after warm-up "
                 f"(limit {args.max_growth:g} MB)")


if __name__ == "__main__":
    main()
