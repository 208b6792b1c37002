"""Memory of the kiosk screen's browser candidates on the live kiosk page: cog (WPE WebKit) and Chromium.

    python bench/kiosk_browsers.py                  # writes runs/kiosk_browsers/browsers.md

`ferlite run` serves the kiosk page of the looping sample clip on loopback; each browser opens it off-screen
(cog --platform=headless, chromium --headless=new: the same engines the kiosk unit runs under cage) for
--seconds, and the proportional set size (PSS, /proc/PID/smaps_rollup) of all its processes is sampled every
2 s after --warmup. PSS counts shared libraries once across a browser's processes, which RSS would count per
process. The table gives the median and the largest sample per browser.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree(pid: int) -> list[int]:
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def pss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("Pss:")), 0)
    return total / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browsers(url: str, profile: str) -> dict[str, list[str]]:
    return {"cog 0.16 (WPE WebKit)": ["cog", "--platform=headless", url],
            "chromium": ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--kiosk",
                         f"--user-data-dir={profile}", "--window-size=1280,720", url]}


def measure(cmd: list[str], seconds: float, warmup: float) -> list[float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    samples, t0 = [], time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            time.sleep(2)
            if proc.poll() is not None:
                raise SystemExit(f"{cmd[0]} exited ({proc.returncode})")
            if time.monotonic() - t0 >= warmup:
                samples.append(pss_mb(proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    return samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=20.0)
    p.add_argument("--out", type=Path, default=Path("runs/kiosk_browsers"))
    args = p.parse_args()
    port = free_port()
    logdir = tempfile.TemporaryDirectory()
    server = subprocess.Popen([sys.executable, "-m", "ferlite", "run", "--source", str(ROOT / "edge/data/sample.mp4"),
                               "--set", "source.loop=true", "--set", "http.enabled=true",
                               "--set", f"http.listen=127.0.0.1:{port}",
                               "--set", f"log.path={logdir.name}/expressions.db"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/?kiosk=1"
    rows = []
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(url.replace("?kiosk=1", "api/status"), timeout=2)
                break
            except OSError:
                time.sleep(1)
        with tempfile.TemporaryDirectory() as profile:
            for name, cmd in browsers(url, profile).items():
                if shutil.which(cmd[0]) is None:
                    rows.append(f"| {name} | not installed | | |")
                    continue
                s = measure(cmd, args.seconds, args.warmup)
                rows.append(f"| {name} | {statistics.median(s):.0f} | {max(s):.0f} | {len(s)} |")
    finally:
        server.terminate()
        server.wait(timeout=30)
        logdir.cleanup()
    table = "\n".join(["| browser | PSS median (MB) | PSS max (MB) | samples |", "|---|---:|---:|---:|", *rows])
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "browsers.md").write_text(f"`python bench/kiosk_browsers.py` ({os.uname().machine}, the kiosk page "
                                          f"of the looping sample clip)\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
