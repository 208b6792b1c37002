"""Process plumbing for a long-running command: systemd's notify protocol, signal flags, journal-friendly logs.

:class:`Systemd` speaks sd_notify (READY=1, STATUS=, WATCHDOG=1, STOPPING=1, RELOADING=1) in a few lines: one
datagram per message to $NOTIFY_SOCKET, no dependency. :class:`Signals` turns SIGTERM/SIGINT/SIGHUP into flags
that a frame loop polls. :func:`configure_logging` drops timestamps and adds syslog priorities when stderr is
journald's stream. Outside systemd all of it is a silent no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, MutableMapping

from ferlite.redact import redact_handlers

log = logging.getLogger(__name__)

PAUSE_STEP_S = 0.1  # granularity of the reconnect wait (Signals.pause), which a signal cuts short


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
    redact_handlers(root)
