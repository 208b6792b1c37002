"""Run the recognizer as a long-lived service (what the systemd unit starts).

Loads the config (packaged defaults < /etc/ferlite/config.toml or --config < --set), builds the classifier,
detector and tracker once (ferlite.edge.build), opens the source and sends each frame's results to the
outputs of [outputs] run: by default the SQLite log ($STATE_DIRECTORY/expressions.db under systemd). A video
or image file that is not there fails the start at once ("no such file"). A camera or stream
that is missing or lost is retried with exponential backoff for as long as it takes (the watchdog is pinged
and STATUS= says "waiting for the camera"; [service] reconnect_attempts > 0 exits non-zero after that many
failures in a row instead, for systemd to restart it). Without a first frame after [service] start_budget
seconds, READY=1 is sent anyway, so a camera that is absent at boot does not fail the start.

Under systemd (Type=notify) it sends READY=1 once the model is loaded and the first frame has gone through the
pipeline into the log (its labels are stored; a face gets its first row once its label has settled),
WATCHDOG=1 from the frame loop (only after a frame reached the log), STATUS= with frames/s and faces,
STOPPING=1 on SIGTERM (after which the log is flushed and closed), and RELOADING=1 then READY=1 on SIGHUP,
which re-reads the config and rebuilds only what changed. Outside systemd the status line is logged instead,
every [service] status_interval seconds. Logs go to stderr, without timestamps when journald captures them."""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

from ferlite.edge.build import PipelineParts, make_source, source_kind_of
from ferlite.edge.config import Config
from ferlite.edge.configfile import add_config_arguments, load_from_args
from ferlite.edge.outputs.base import LIVE_KINDS
from ferlite.edge.service.daemon import Signals, Systemd, configure_logging
from ferlite.errors import FerliteError, SourceError, UsageError
from ferlite.redact import redact

log = logging.getLogger(__name__)

def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="stop after N frames (tests, replays); default: run until stopped")


def check_source_spec(config: Config) -> None:
    """A file that is not there is not a camera that may come back: SourceError ("no such file") at once, rather
    than retries for ever. Cameras and streams (picamera, /dev/videoN, rtsp://...) are retried when missing."""
    from ferlite.edge.sources.registry import source_kind

    source_kind(config.source.spec)


# ------------------------------------------------------------------------------------------------ the service


class Service:
    """The frame loop with its lifecycle: readiness, watchdog, status, reconnects, reload and stop."""

    def __init__(self, load_config: Callable[[], Config], sd: Systemd, signals: Signals,
                 max_frames: int | None = None):
        self.load_config, self.sd, self.signals, self.max_frames = load_config, sd, signals, max_frames
        self.config = load_config()
        check_source_spec(self.config)
        self.parts = PipelineParts(self.config, source_kind_of(self.config.source.spec))
        self.sink = make_outputs(self.config)
        self.source = self.frames = None
        self.kind = ""
        self.failures = 0  # source failures in a row
        self.ended = self.looping = False
        self.ready_pending = True
        self.total = self.source_frames = self.window_frames = self.faces_in_view = 0
        now = time.monotonic()
        self.last_ping, self.last_status, self.started = float("-inf"), now, now

    # ---------------------------------------------------------------------------------------- loop

    def serve(self) -> int:
        """Run until stopped, the frame limit, or the end of a non-looping file; returns the exit code."""
        log.info("started: %s; outputs %s; notify %s", self._describe(), describe_outputs(self.sink),
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
            log.info("stopped after %d frames; %s", self.total, describe_outputs(self.sink, final=True))
        return 0

    def _step(self) -> None:
        """Open the source if needed (after a backoff wait when it failed), then run frames until a signal,
        the frame limit, the end of the source or a source error."""
        if self.frames is None:
            if self.failures:
                if self._wait(self.config.service.backoff(self.failures)):
                    return
            try:
                self._open_source()
            except SourceError as exc:
                self._source_failed(str(exc))
                return
        from ferlite.edge.pipeline import run as run_pipeline

        try:
            run_pipeline(self.frames, self.parts.pipeline, self.sink, stop=self.signals.wake,
                         max_frames=self._remaining(), on_frame=self._on_frame)
        except SourceError as exc:
            self._source_failed(str(exc))
            return
        if self.signals.wake.is_set() or self._limit_reached():
            return
        name = self.source.name
        if self.kind in LIVE_KINDS:
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
        if attempts and self.failures >= attempts:
            raise SourceError(f"{reason} ({self.failures} failure(s) in a row; giving up so that systemd "
                              "can restart the service)")
        delay = self.config.service.backoff(self.failures)
        of = f" of {attempts}" if attempts else ""
        level = logging.WARNING if self.failures == 1 or attempts else logging.DEBUG  # once per outage
        log.log(level, "%s; retrying in %.1f s (failure %d%s)", reason, delay, self.failures, of)
        text = f"waiting for the camera, retrying in {delay:.1f} s: {reason}"
        if self.ready_pending and time.monotonic() - self.started >= self.config.service.start_budget:
            self.ready_pending = False  # the camera may take hours: do not fail the start for it
            self.sd.ready(text)
            log.info("ready without a camera (after %.0f s): %s", self.config.service.start_budget, reason)
        self.sd.status(text)
        self._ping()

    def _wait(self, seconds: float) -> bool:
        """Sleep between retries, pinging the watchdog meanwhile; True when a signal cut it short."""
        period = self.sd.watchdog_period()
        step = period * self.config.service.watchdog_fraction if period else seconds
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.signals.pause(min(step, left)):
                return True
            self._ping()
        return False

    def _ping(self) -> None:
        """WATCHDOG=1, at most every [service] watchdog_fraction of WatchdogSec: from the frame loop after a frame
        reached the outputs, and between the retries of a lost camera (each bounded by the source's timeouts)."""
        now = time.monotonic()
        period = self.sd.watchdog_period()
        if period is not None and now - self.last_ping >= period * self.config.service.watchdog_fraction:
            self.sd.watchdog()
            self.last_ping = now

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
        if self.failures and not self.looping:
            log.info("%s is back after %d failed attempt(s)", self.source.name, self.failures)
        self.failures = 0
        if self.ready_pending:
            self.ready_pending = False
            self.sink.flush()  # the first frame is in the log for good before we say we are ready
            h, w = frame.image.shape[:2]
            text = f"running: {self.source.name} {w}x{h}, {self.faces_in_view} face(s) in view"
            self.sd.ready(text)
            log.info("ready: %s", text)
        self._ping()
        if now - self.last_status >= self.config.service.status_interval:
            fps = self.window_frames / max(now - self.last_status, 1e-9)
            text = (f"{fps:.1f} frames/s, {self.faces_in_view} face(s) in view, {self.total} frames"
                    + describe_rows(self.sink))
            self.sd.status(text)
            if not self.sd.enabled:  # outside systemd the same line goes to the terminal ([service] status_interval)
                log.info("status: %s", text)
            self.last_status, self.window_frames = now, 0

    # ---------------------------------------------------------------------------------------- reload

    def _reload(self) -> None:
        """SIGHUP: re-read the config and rebuild what changed; a bad config keeps the running one."""
        self.sd.reloading()
        try:
            config = self.load_config()
            check_source_spec(config)
            parts = PipelineParts(config, source_kind_of(config.source.spec), self.parts)
            log_db = log_sink(self.sink)
            labels = log_db.labels if log_db is not None else None
            if "log" not in config.changed(self.config) and labels and labels != parts.classifier.labels:
                raise UsageError(f"the new model's labels {list(parts.classifier.labels)} differ from those in "
                                 f"{log_db.path} {list(labels)}: set [log] path to another file too")
        except FerliteError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            self.sd.status("reload failed: " + str(exc).splitlines()[0])
        else:
            changed = config.changed(self.config)
            if {"log", "outputs", "http", "mqtt"} & set(changed) and not self._reopen_outputs(config):
                self.ready_pending = True
                return
            if "source" in changed:
                self._close_source()
            self.config, self.parts = config, parts
            if self.source is not None:
                parts.pipeline.source_name = self.source.name
            log.info("reloaded the configuration: %s changed; rebuilt %s", ", ".join(changed) or "nothing",
                     ", ".join(parts.rebuilt) or "nothing")
        self.ready_pending = True  # READY=1 again after the next frame has reached the log

    def _reopen_outputs(self, config: Config) -> bool:
        """Swap the outputs for those of ``config`` (an HTTP port or a log file can be taken only once, so the
        running ones close first); when the new ones fail to open, reopen the running ones and return False."""
        self.sink.close()
        try:
            self.sink = make_outputs(config)
            return True
        except (FerliteError, OSError) as exc:
            log.error("reload failed, keeping the running configuration: its outputs did not open: %s", exc)
            self.sd.status("reload failed: " + str(exc).splitlines()[0])
            self.sink = make_outputs(self.config)
            return False

    def _describe(self) -> str:
        c = self.parts.classifier
        return (f"source {redact(self.config.source.spec)}, detector {self.config.detector.type}, model "
                f"{c.model_path.name} ({c.backend}, {self.config.classifier.threads} thread(s))")


def make_outputs(config: Config):
    """The outputs of [outputs] run; files go under [outputs] dir, else $STATE_DIRECTORY or the working directory."""
    from pathlib import Path

    from ferlite.edge.config import state_dir
    from ferlite.edge.outputs.base import OutputContext
    from ferlite.edge.outputs.registry import open_outputs

    folder = state_dir() / Path(config.outputs.dir).expanduser()
    context = OutputContext(dir=folder, source=config.source.spec, kind=source_kind_of(config.source.spec))
    return open_outputs(config.run_outputs(), config, context)


def log_sink(sink):
    """The SQLite log among the outputs, or None."""
    from ferlite.edge.outputs.sqlite import SqliteSink

    return sink.find(SqliteSink)


def describe_rows(sink) -> str:
    """The log's part of STATUS=, and what the outputs dropped rather than hold the frame loop up."""
    dropped = {name: n for name, n in sink.drops().items() if n}
    drops = ("; dropped " + ", ".join(f"{n} {name}" for name, n in dropped.items())) if dropped else ""
    db = log_sink(sink)
    if db is None:
        return drops
    if db.degraded:
        return (f", LOG NOT WRITABLE ({db.degraded}): {db.pending_rows} rows held in memory, {db.committed_rows} "
                f"logged{drops}")
    return f", {db.committed_rows + db.pending_rows} rows logged{drops}"


def describe_outputs(sink, final: bool = False) -> str:
    db = log_sink(sink)
    names = ", ".join(type(s).__name__ for s in sink.sinks)
    if db is None:
        return names
    if not final:
        return f"{names}; log {db.path}"
    lost = f"; {db.dropped_rows} rows lost while the log was not writable" if db.dropped_rows else ""
    return f"{db.committed_rows} rows logged to {db.path}{lost}"


def run(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames {args.max_frames}: must be >= 1")
    configure_logging()
    os.umask(0o027)  # the log (and anything else written) is 0640, whoever runs it: faces are personal data
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
