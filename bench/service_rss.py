"""Peak resident memory of the service (`ferlite run`) with the HTTP and MQTT outputs and a stream client.

    python bench/service_rss.py [CLIP] [--frames 600] [--rounds 3] [--out runs/service_rss]

Starts mosquitto on a free loopback port, then `/usr/bin/time -v ferlite run` on the clip (looped) with
the SQLite log, [http] enabled on another free loopback port and [mqtt] enabled, for --frames frames, while
one client reads /stream.mjpg throughout (as a kiosk page would); reads "Maximum resident set size". Also
runs the service with the log alone. Each configuration --rounds times, taking turns; prints the medians and
writes a table (OUT.md).
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_stream(url: str, stop: threading.Event) -> None:
    """Read the MJPEG stream until ``stop``, reconnecting while the service starts."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                while not stop.is_set() and r.read(65536):
                    pass
        except OSError:
            time.sleep(0.2)


def run_service(clip: str, frames: int, live: bool, broker_port: int, tmp: Path) -> float:
    """Peak RSS (MB) of one `ferlite run`."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "ferlite", "run", "--source", clip,
           "--max-frames", str(frames), "--set", "source.loop=true", "--set", f"log.path={tmp / 'log.db'}"]
    stop = threading.Event()
    if live:
        port = free_port()
        cmd += ["--set", "http.enabled=true", "--set", f"http.listen=127.0.0.1:{port}",
                "--set", "mqtt.enabled=true", "--set", "mqtt.host=127.0.0.1", "--set", f"mqtt.port={broker_port}"]
        threading.Thread(target=read_stream, args=(f"http://127.0.0.1:{port}/stream.mjpg", stop), daemon=True).start()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    finally:
        stop.set()
    if r.returncode:
        raise SystemExit(f"ferlite run failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default=str(ROOT / "edge" / "data" / "sample.mp4"))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "service_rss")
    args = ap.parse_args()
    if not shutil.which("mosquitto"):
        raise SystemExit("mosquitto is not installed (apt install mosquitto)")
    port = free_port()
    broker = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[str, list[float]] = {"sqlite": [], "sqlite + http (one stream client) + mqtt": []}
    try:
        time.sleep(0.5)
        for _ in range(args.rounds):
            for name in peaks:
                with tempfile.TemporaryDirectory() as tmp:
                    peaks[name].append(run_service(args.clip, args.frames, "http" in name, port, Path(tmp)))
                print(name, f"{peaks[name][-1]:.1f} MB", flush=True)
    finally:
        broker.terminate()
        broker.wait(10)
    md = [f"`ferlite run` on {Path(args.clip).name}, {args.frames} frames, {args.rounds} rounds taking turns; "
          "peak RSS from /usr/bin/time -v", "", "| outputs | peak RSS MB (median) | min | max |", "|---|---|---|---|"]
    md += [f"| {k} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} |" for k, v in peaks.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
