"""Check that the service can run here, with the same config it would use.

Validates the config (packaged defaults < /etc/ferlite/config.toml or --config < --set), loads the model
and the face detector, opens the camera or source, runs a few frames through the pipeline (nothing is
written to the expression log) and prints what it found: the source and its resolution, the model, its
labels and interpreter backend, the detector, the faces in the first frame and the measured frames/s.
When something is wrong it prints one line per problem and exits non-zero.

Run it as the service user to check permissions too (camera group, log folder):
  sudo -u ferlite /opt/ferlite/venv/bin/ferlite check
Stop the service first (sudo systemctl stop ferlite): a camera is opened by one program at a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferlite.edge.config import Config, ConfigError
from ferlite.edge.configfile import add_config_arguments, load_from_args
from ferlite.errors import FerliteError

LABEL_WIDTH = 12


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--frames", type=int, default=10, metavar="N", help="frames to time (the first is reported)")


class Report:
    """Findings go to stdout as aligned ``name  value`` lines; problems to stderr, one line each."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, FerliteError]] = []

    def line(self, name: str, value: str) -> None:
        print(f"{name:<{LABEL_WIDTH}}{value}", flush=True)

    def attempt(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()``, or None with the FerliteError recorded as a problem of ``name``."""
        try:
            return build()
        except FerliteError as exc:
            self.problems.append((name, exc))
            return None

    def exit_code(self) -> int:
        for name, exc in self.problems:
            lines = str(exc).splitlines() or [type(exc).__name__]
            if isinstance(exc, ConfigError):
                for line in lines:
                    print(f"ferlite check: config: {line}", file=sys.stderr)
            else:
                print(f"ferlite check: {name}: {' '.join(s.strip() for s in lines)}", file=sys.stderr)
        if not self.problems:
            print("ok: the service can run with this config")
            return 0
        return max(exc.exit_code for _, exc in self.problems)


def _log_folder(config: Config) -> tuple[str, str | None]:
    """(description, problem) for the expression log's folder, without creating anything."""
    path = config.log.resolve_path()
    if path.is_dir():
        return str(path), f"{path} is a folder: log.path must name the database file, e.g. {path / 'expressions.db'}"
    if not config.log.path and not os.environ.get("STATE_DIRECTORY"):
        return (f"{path} here; under the systemd unit $STATE_DIRECTORY/expressions.db "
                "(/var/lib/ferlite/expressions.db)"), None
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("/"))
    if not os.access(folder, os.W_OK | os.X_OK):
        return str(path), f"{folder} is not writable by uid {os.getuid()}: the log cannot be created"
    return f"{path} (folder writable)", None


def _run_frames(report: Report, config: Config, pipeline, n_frames: int) -> None:
    """Open the source, time ``n_frames`` through the pipeline into a ListSink, report the first one."""
    from ferlite.edge.build import make_source
    from ferlite.edge.outputs.files import ListSink
    from ferlite.edge.pipeline import run as run_pipeline

    made = report.attempt("source", lambda: make_source(config))
    if made is None or report.attempt("source", lambda: made[0].open() or True) is None:
        return
    source, kind = made
    sink, times, shapes, totals = ListSink(), [], [], []

    def on_frame(frame, result) -> None:
        times.append(time.perf_counter())
        shapes.append(frame.image.shape)
        totals.append(result.timings_ms.get("total", 0.0))

    pipeline.source_name = source.name
    with source:
        report.attempt("source", lambda: run_pipeline(source, pipeline, sink, max_frames=n_frames, on_frame=on_frame))
    if not sink.results:
        if not any(name == "source" for name, _ in report.problems):
            report.problems.append(("source", FerliteError(f"{source.name}: gave no frame")))
        return
    h, w = shapes[0][:2]
    applied = getattr(source, "applied", None)
    asked = f" (asked {applied['width']}x{applied['height']} at {applied['fps']:g} fps)" if applied else ""
    report.line("source", f"{source.name} ({kind}): {w}x{h} frames{asked}")
    first = sink.results[0]
    faces = ", ".join(f"#{f.track_id} {f.label} {f.confidence:.2f} at {f.box}" for f in first.faces)
    report.line("faces", f"{len(first.faces)} in the first frame" + (f": {faces}" if faces else ""))
    if len(times) > 1:
        fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
        med = sorted(totals)[len(totals) // 2]
        report.line("speed", f"{fps:.1f} frames/s over {len(times)} frames ({med:.1f} ms per frame, median)")


def _pipeline(report: Report, config: Config):
    """Model and detector (each reported), and the PipelineParts around them; None if either failed."""
    from ferlite.edge.build import PipelineParts, make_classifier, make_detector, source_kind_of

    c = config.classifier
    classifier = report.attempt("model", lambda: make_classifier(config))
    if classifier is not None:
        info = classifier.info
        report.line("model", f"{classifier.model_path} ({info.precision}, {info.input_size}x{info.input_size} "
                    f"{info.pixel_format}, {info.views} view(s) per face)")
        report.line("labels", ", ".join(classifier.labels))
        flip = ", flip" if classifier.flip else ", flip skipped (the model holds the mirror view)" \
            if classifier.flip_skipped else ""
        report.line("interpreter", f"{classifier.backend}, {c.threads} thread(s){flip}")
    d = config.detector
    kind = source_kind_of(config.source.spec)
    detector = report.attempt("detector", lambda: make_detector(config, kind))
    if detector is not None:
        score = f"score >= {d.score:g}" if d.score else "its own score threshold"
        report.line("detector", f"{d.type} ({score}, faces >= {d.min_face} px)")
    if classifier is None or detector is None:
        return None
    return PipelineParts(config, kind, classifier=classifier, detector=detector)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        print("ferlite check: --frames must be >= 1", file=sys.stderr)
        return 2
    report = Report()
    config = report.attempt("config", lambda: load_from_args(args))
    if config is None:
        return report.exit_code()
    report.line("config", " < ".join(config.origin))
    parts = _pipeline(report, config)
    log_text, problem = _log_folder(config)
    report.line("log", log_text)
    if problem:
        report.problems.append(("log", FerliteError(problem)))
    report.line("outputs", ", ".join(config.run_outputs()))
    if "http" in config.run_outputs():
        h = config.http
        report.line("http", f"http://{h.listen}/ ({'token set' if h.token else 'no token: loopback only'}"
                    f"{', stream off' if not h.stream else ''}{', faces blurred' if h.blur_faces else ''})")
        held = report.attempt("http", lambda: _can_listen(h.listen))
        if held:
            report.line("", held)
    if "mqtt" in config.run_outputs():
        m = config.mqtt
        report.line("mqtt", f"{m.host}:{m.port}{' (TLS)' if m.tls else ''}, qos {m.qos}"
                    f"{', Home Assistant discovery' if m.discovery else ''}")
        report.attempt("mqtt", lambda: _broker_reachable(config))
    if parts is not None:
        _run_frames(report, config, parts.pipeline, args.frames)
    else:
        opened = report.attempt("source", lambda: _open_only(config))
        if opened:
            report.line("source", opened)
    return report.exit_code()


def _can_listen(listen: str) -> str | None:
    """Bind [http] listen as the service would (and let it go): a port in use or an address not on this
    machine is a problem here, as `run` would refuse it. A port that a running ``ferlite run`` holds is not
    (restarting the service hands it over: install.sh checks the new config while the old one serves); that is
    returned as a note."""
    import errno
    import socket

    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(infos[0][4])
    except OSError as exc:
        holder = _listener(int(port)) if exc.errno == errno.EADDRINUSE else None
        if holder and _is_ferlite_run(holder[1]):
            return f"port {port} is held by the running service (pid {holder[0]}); a restart hands it over"
        raise FerliteError(f"[http] listen = {listen}: cannot serve there: {exc.strerror or exc}"
                           f"{' (is the service running? stop it first)' if 'in use' in str(exc) else ''}") from None
    return None


def _is_ferlite_run(argv: list[str]) -> bool:
    """``ferlite run ...`` or ``python -m ferlite run ...``, as the unit and a user start it."""
    names = [Path(a).name for a in argv]
    return "run" in argv and ("ferlite" in names[:2] or "ferlite" in argv[2:3] and "-m" in argv[1:2])


def _listener(port: int) -> tuple[int, list[str]] | None:
    """(pid, command line) of the process listening on TCP ``port``, from /proc; None where that cannot be
    seen (another user's process, unless root; not Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:   # 0A: LISTEN
                inodes.add(f"socket:[{f[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd") if inodes else ():
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                argv = (fd_dir.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
                return int(fd_dir.parent.name), [a for a in argv if a]
        except OSError:
            continue
    return None


def _broker_reachable(config: Config) -> None:
    """The password file read, the broker's name resolved and its port answering TCP, within a few seconds."""
    import socket

    from ferlite.edge.outputs.mqtt import RETRY_MAX_S, read_password

    m = config.mqtt
    read_password(m)
    where = f"[mqtt] host = {m.host}, port = {m.port}"
    try:
        socket.create_connection((m.host, m.port), timeout=5).close()
    except socket.gaierror as exc:
        raise FerliteError(f"{where}: cannot resolve {m.host!r} ({exc.strerror}); `run` would retry every "
                           f"{RETRY_MAX_S} s at most and publish nothing meanwhile") from None
    except OSError as exc:
        raise FerliteError(f"{where}: the broker cannot be reached ({exc.strerror or 'no answer in 5 s'}); `run` "
                           f"would retry every {RETRY_MAX_S} s at most and publish nothing meanwhile") from None


def _open_only(config: Config) -> str:
    """Without a model or detector: at least say whether the source opens."""
    from ferlite.edge.build import make_source

    source, kind = make_source(config)
    with source:
        return f"{source.name} ({kind}) opens"
