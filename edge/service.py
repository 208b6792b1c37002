"""Run the recognizer as a long-lived service (what the systemd unit starts).

Loads the config (packaged defaults < /etc/ferlite/config.toml or --config < --set), builds the classifier,
detector and tracker once, opens the source and logs expressions to SQLite ($STATE_DIRECTORY/expressions.db
under systemd). A camera that is missing or lost is retried with exponential backoff; after
[service] reconnect_attempts failures in a row the command exits non-zero so that systemd restarts it.

Under systemd (Type=notify) it sends READY=1 once the model is loaded and the first frame has gone through
the pipeline into the log, WATCHDOG=1 from the frame loop (only after a frame reached the log), STATUS= with
frames/s and faces, STOPPING=1 on SIGTERM (after which the log is flushed and closed), and RELOADING=1 then
READY=1 on SIGHUP, which re-reads the config and rebuilds only what changed. Outside systemd it does the
same work silently. Logs go to stderr, without timestamps when journald captures them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping

from .config import Config, add_config_arguments, load_from_args
from .errors import FerliteError, SourceError, UsageError

log = logging.getLogger(__name__)

LIVE_SOURCES = frozenset({"usb", "picamera", "stream"})
PAUSE_STEP_S = 0.1  # granularity of the reconnect wait, which a signal cuts short


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="stop after N frames (tests, replays); default: run until stopped")


# ------------------------------------------------------------------------------------------------ systemd


class Systemd:
    """sd_notify without a dependency; does nothing outside systemd.

    Reads NOTIFY_SOCKET (a path, or '@name' for an abstract socket), WATCHDOG_USEC and WATCHDOG_PID, and
    removes them from ``environ`` so that child processes do not talk to systemd in our name."""

    def __init__(self, environ: MutableMapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", "")
        usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        elif address and not address.startswith("/"):
            log.warning("NOTIFY_SOCKET=%s is not a unix socket path; not notifying systemd", address)
            address = ""
        self.address = address
        self._period: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self._period = int(usec) / 1e6
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False outside systemd or when the send failed."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # not inherited (PEP 446)
            self._sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def watchdog_period(self) -> float | None:
        """WatchdogSec= in seconds when systemd watches this process, else None."""
        return self._period

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# ------------------------------------------------------------------------------------------------ signals


class Flag:
    """A flag a signal handler sets. Unlike threading.Event it takes no lock, so the handler (which runs in
    the main thread, between any two bytecodes) cannot deadlock against the main thread's own wait/clear.
    Has the ``is_set()`` that ``edge.pipeline.run(stop=...)`` checks."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class Signals:
    """SIGTERM/SIGINT set ``stop``, SIGHUP sets ``reload``; both set ``wake``, which ends the frame loop
    and any reconnect wait. The handlers do nothing else."""

    NAMES = {signal.SIGTERM: "stop", signal.SIGINT: "stop", signal.SIGHUP: "reload"}

    def __init__(self) -> None:
        self.stop, self.reload, self.wake = Flag(), Flag(), Flag()

    def handle(self, signum: int, _frame=None) -> None:
        getattr(self, self.NAMES[signum]).set()
        self.wake.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        previous = {s: signal.signal(s, self.handle) for s in self.NAMES}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def take_reload(self) -> bool:
        """True (once) when SIGHUP arrived; re-arms the frame loop unless a stop is pending too."""
        if not self.reload.is_set():
            return False
        self.reload.clear()
        if not self.stop.is_set():
            self.wake.clear()
        return True

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a signal cut it short."""
        end = time.monotonic() + seconds
        while not self.wake.is_set() and (left := end - time.monotonic()) > 0:
            time.sleep(min(PAUSE_STEP_S, left))
        return self.wake.is_set()


# ------------------------------------------------------------------------------------------------ logging


class JournalFormatter(logging.Formatter):
    """Prefixes each line with its syslog priority (``<4>``), which journald turns into the entry's level."""

    PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITIES.get(record.levelno, 6)}>{super().format(record)}"


def stderr_is_journal(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether stderr is the journald stream systemd connected (JOURNAL_STREAM=device:inode matches)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


def configure_logging() -> None:
    """Under journald: no timestamps (journald adds them) and syslog priorities; else timestamps."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    if stderr_is_journal():
        formatter: logging.Formatter = JournalFormatter("%(levelname)s %(name)s: %(message)s")
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in root.handlers:
        handler.setFormatter(formatter)


# ------------------------------------------------------------------------------------------------ building


def make_detector(config: Config):
    """The configured detector, given the score threshold when it takes one."""
    import inspect

    from .detectors import DETECTORS, create_detector

    params = inspect.signature(DETECTORS[config.detector.type]).parameters.values()
    takes_score = any(p.name == "score_threshold" or p.kind is p.VAR_KEYWORD for p in params)
    return create_detector(config.detector.type, **({"score_threshold": config.detector.score} if takes_score else {}))


def make_source(config: Config):
    """The configured source, built (not opened); returns (source, kind)."""
    from .sources import open_source, source_kind

    c = config.source
    kind = source_kind(c.spec)
    return open_source(c.spec, width=c.width, height=c.height, fps=c.fps, size=(c.width, c.height)), kind


def make_sink(config: Config):
    from .sinks import SqliteSink

    c = config.log
    return SqliteSink(c.resolve_path(), commit_interval=c.commit_interval, log_interval=c.log_interval,
                      retention_days=c.retention_days or None)


class Parts:
    """Classifier, detector, tracker and the pipeline around them: built once, and on reload only the
    parts whose config section changed are rebuilt."""

    def __init__(self, config: Config, previous: Parts | None = None):
        from .classifier import ExpressionClassifier
        from .pipeline import Pipeline, PipelineOptions
        from .tracking import Tracker

        old = previous.config if previous else None
        self.config = config
        self.rebuilt: list[str] = []
        if old is None or old.classifier != config.classifier:
            c = config.classifier
            self.classifier = ExpressionClassifier(c.model or None, num_threads=c.threads, flip=c.flip)
            self.rebuilt.append("classifier")
        else:
            self.classifier = previous.classifier
        if old is None or old.detector.type != config.detector.type or old.detector.score != config.detector.score:
            self.detector = make_detector(config)
            self.rebuilt.append("detector")
        else:
            self.detector = previous.detector
        if "classifier" in self.rebuilt or old.tracking != config.tracking:
            t = config.tracking
            self.tracker = Tracker(self.classifier.labels, window=t.window, threshold=t.threshold, max_age=t.max_age)
            self.rebuilt.append("tracker")
        else:
            self.tracker = previous.tracker
        self.pipeline = Pipeline(self.detector, self.classifier, self.tracker,
                                 PipelineOptions(min_face=config.detector.min_face))


# ------------------------------------------------------------------------------------------------ the service


class Service:
    """The frame loop with its lifecycle: readiness, watchdog, status, reconnects, reload and stop."""

    def __init__(self, load_config: Callable[[], Config], sd: Systemd, signals: Signals,
                 max_frames: int | None = None):
        self.load_config, self.sd, self.signals, self.max_frames = load_config, sd, signals, max_frames
        self.config = load_config()
        self.parts = Parts(self.config)
        self.sink = make_sink(self.config)
        self.source = self.frames = None
        self.kind = ""
        self.failures = 0  # source failures in a row
        self.ended = self.looping = False
        self.ready_pending = True
        self.total = self.source_frames = self.window_frames = self.faces_in_view = 0
        now = time.monotonic()
        self.last_ping, self.last_status = float("-inf"), now

    # ---------------------------------------------------------------------------------------- loop

    def serve(self) -> int:
        """Run until stopped, the frame limit, or the end of a non-looping file; returns the exit code."""
        log.info("started: %s; log %s; notify %s", self._describe(), self.sink.path,
                 "on" if self.sd.enabled else "off (not under systemd)")
        try:
            while not self.signals.stop.is_set() and not self.ended and not self._limit_reached():
                if self.signals.take_reload():
                    self._reload()
                else:
                    self._step()
        finally:
            self.sd.stopping()
            self._close_source()
            self.sink.close()
            log.info("stopped after %d frames; %d rows logged to %s", self.total, self.sink.committed_rows,
                     self.sink.path)
        return 0

    def _step(self) -> None:
        """Open the source if needed (after a backoff wait when it failed), then run frames until a signal,
        the frame limit, the end of the source or a source error."""
        if self.frames is None:
            if self.failures:
                delay = self.config.service.backoff(self.failures)
                if self.signals.pause(delay):
                    return
            try:
                self._open_source()
            except SourceError as exc:
                self._source_failed(str(exc))
                return
        from .pipeline import run as run_pipeline

        try:
            run_pipeline(self.frames, self.parts.pipeline, self.sink, stop=self.signals.wake,
                         max_frames=self._remaining(), on_frame=self._on_frame)
        except SourceError as exc:
            self._source_failed(str(exc))
            return
        if self.signals.wake.is_set() or self._limit_reached():
            return
        name = self.source.name
        if self.kind in LIVE_SOURCES:
            self._source_failed(f"{name}: the source ended")
        elif self.source_frames == 0:
            self._source_failed(f"{name}: no frames")
        elif self.config.source.loop:
            log.debug("%s ended after %d frames; starting it again ([source] loop)", name, self.source_frames)
            self._close_source()
            self.looping = True
        else:
            log.info("%s ended after %d frames", name, self.source_frames)
            self.ended = True

    def _open_source(self) -> None:
        source, self.kind = make_source(self.config)
        source.open()
        self.source, self.frames, self.source_frames = source, iter(source), 0
        self.parts.pipeline.source_name = source.name
        log.log(logging.DEBUG if self.looping else logging.INFO, "opened %s (%s)", source.name, self.kind)
        self.looping = False

    def _close_source(self) -> None:
        source, self.source, self.frames = self.source, None, None
        if source is not None:
            source.close()

    def _source_failed(self, reason: str) -> None:
        self._close_source()
        self.failures += 1
        attempts = self.config.service.reconnect_attempts
        if self.failures >= attempts:
            raise SourceError(f"{reason} ({self.failures} failure(s) in a row; giving up so that systemd "
                              "can restart the service)")
        delay = self.config.service.backoff(self.failures)
        log.warning("%s; retrying in %.1f s (failure %d of %d)", reason, delay, self.failures, attempts)
        self.sd.status(f"source problem, retrying in {delay:.1f} s: {reason}")

    def _remaining(self) -> int | None:
        return None if self.max_frames is None else max(0, self.max_frames - self.total)

    def _limit_reached(self) -> bool:
        return self.max_frames is not None and self.total >= self.max_frames

    # ---------------------------------------------------------------------------------------- per frame

    def _on_frame(self, frame, result) -> None:
        """After each frame reached the sink: readiness, watchdog pings and status, rate-limited."""
        now = time.monotonic()
        self.total += 1
        self.source_frames += 1
        self.window_frames += 1
        self.faces_in_view = len(result.faces)
        self.failures = 0
        if self.ready_pending:
            self.ready_pending = False
            self.sink.flush()  # the first frame is in the log for good before we say we are ready
            h, w = frame.image.shape[:2]
            text = f"running: {self.source.name} {w}x{h}, {self.faces_in_view} face(s) in view"
            self.sd.ready(text)
            log.info("ready: %s", text)
        period = self.sd.watchdog_period()
        if period is not None and now - self.last_ping >= period * self.config.service.watchdog_fraction:
            self.sd.watchdog()
            self.last_ping = now
        if now - self.last_status >= self.config.service.status_interval:
            fps = self.window_frames / max(now - self.last_status, 1e-9)
            rows = self.sink.committed_rows + self.sink.pending_rows
            self.sd.status(f"{fps:.1f} frames/s, {self.faces_in_view} face(s) in view, {self.total} frames, "
                           f"{rows} rows logged")
            self.last_status, self.window_frames = now, 0

    # ---------------------------------------------------------------------------------------- reload

    def _reload(self) -> None:
        """SIGHUP: re-read the config and rebuild what changed; a bad config keeps the running one."""
        self.sd.reloading()
        try:
            config = self.load_config()
            parts = Parts(config, self.parts)
            labels = self.sink.labels
            if "log" not in config.changed(self.config) and labels and labels != parts.classifier.labels:
                raise UsageError(f"the new model's labels {list(parts.classifier.labels)} differ from those in "
                                 f"{self.sink.path} {list(labels)}: set [log] path to another file too")
        except FerliteError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            self.sd.status("reload failed: " + str(exc).splitlines()[0])
        else:
            changed = config.changed(self.config)
            if "source" in changed:
                self._close_source()
            if "log" in changed:
                self.sink.close()
                self.sink = make_sink(config)
            self.config, self.parts = config, parts
            if self.source is not None:
                parts.pipeline.source_name = self.source.name
            log.info("reloaded the configuration: %s changed; rebuilt %s", ", ".join(changed) or "nothing",
                     ", ".join(parts.rebuilt) or "nothing")
        self.ready_pending = True  # READY=1 again after the next frame has reached the log

    def _describe(self) -> str:
        c = self.parts.classifier
        return (f"source {self.config.source.spec}, detector {self.config.detector.type}, model "
                f"{c.model_path.name} ({c.backend}, {self.config.classifier.threads} thread(s))")


def run(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames {args.max_frames}: must be >= 1")
    configure_logging()
    sd = Systemd()
    signals = Signals()
    try:
        with signals.installed():
            service = Service(lambda: load_from_args(args), sd, signals, max_frames=args.max_frames)
            return service.serve()
    except FerliteError as exc:
        sd.status("failed: " + str(exc).splitlines()[0])
        raise
    finally:
        sd.close()
