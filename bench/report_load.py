"""/report under load: the service's frames/s and memory while clients keep asking for the report page.

    python bench/report_load.py                  # 20 clients, 15 s windows, alternating quiet and loaded, twice

`ferlite run` on the looping sample clip with the SQLite log and the HTTP output; its log is first filled with
a synthetic day (ferlite.edge.logbook.synth), so that the page has a day to render. Windows alternate: quiet
(no client), then --clients threads each asking /report again a second after each answer. For each window: the median
of the frames/s that /api/status reports (sampled every second), the service's resident memory at most, and
its renders. Prints a table and writes it (markdown) under runs/bench/ (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def get(url: str, timeout: float = 180) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def window(base: str, pid: int, seconds: float, clients: int) -> dict:
    stop, answers = threading.Event(), []

    def client() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # the clients stand for other machines
        while not stop.is_set():
            answers.append(len(get(f"{base}/report")))
            stop.wait(1.0)  # a page asked again every second by each client

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    fps, rss, t0 = [], [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        fps.append(json.loads(get(f"{base}/api/status"))["fps"])
        rss.append(rss_mb(pid))
    stop.set()
    for t in threads:
        t.join(180)
    return {"clients": clients, "fps": statistics.median(fps[len(fps) // 3:]), "rss": max(rss),
            "answers": len(answers)}


def main() -> None:
    from live import free_port, wait_for_port

    from ferlite.edge.logbook.synth import write_synthetic_log

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=15.0, help="length of each window")
    p.add_argument("--rounds", type=int, default=2, help="quiet and loaded windows, alternating")
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = write_synthetic_log(Path(tmp) / "log.db", days=1, end=time.time())
        port = free_port()
        cmd = [sys.executable, "-m", "ferlite", "run", "--source", str(ROOT / "edge" / "data" / "sample.mp4"),
               "--set", "source.loop=true", "--set", f"log.path={db}", "--set", "http.enabled=true",
               "--set", f"http.listen=127.0.0.1:{port}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "run.log", "w"))
        try:
            wait_for_port(port, proc=proc)
            base = f"http://127.0.0.1:{port}"
            time.sleep(5)
            for _ in range(args.rounds):
                rows += [window(base, proc.pid, args.seconds, 0), window(base, proc.pid, args.seconds, args.clients)]
        finally:
            proc.terminate()
            proc.wait(30)
    quiet = statistics.median(r["fps"] for r in rows if not r["clients"])
    lines = ["| window | clients | frames/s (median) | vs quiet | RSS at most (MB) | /report answers |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {r['clients']} | {r['fps']:.1f} | {r['fps'] / quiet:.0%} | {r['rss']:.0f} | "
              f"{r['answers']} |" for i, r in enumerate(rows)]
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report_load.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
