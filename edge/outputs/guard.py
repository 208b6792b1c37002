"""What keeps the HTTP output (ferlite.edge.outputs.http) standing on a hostile network: a bound on open
connections, a deadline for each request's headers, and logs that say a thing once, in one line, counted.

:class:`ConnectionGuard` wraps aiohttp's protocol factory. Every connection must send a complete request head
within ``header_timeout`` seconds of connecting (or of its previous request), else it is closed: idle and
slowloris sockets cost a file descriptor for seconds, not for ever. At most ``max_clients`` connections are open;
one more closes the oldest connection that has not yet sent a complete request head (a client that did, such
as an authorised event stream, keeps its place), or, when every open connection is busy, is answered 503. The
bound keeps the process well under its file-descriptor limit, so the camera, the log and the model can always
open files.

:class:`Throttle` turns what clients cause (a malformed request, a client that left mid-answer, a failed accept)
into at most one line per kind per minute, without traceback, with the count of those it held back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("ferlite.edge.outputs.http")

#: Seconds between two log lines of the same kind of client fault.
THROTTLE_S = 60.0
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 17\r\n\r\ntoo many clients\n"
HEAD_END = b"\r\n\r\n"


class Throttle:
    """At most one log line per ``key`` every ``period`` seconds; the next one says how many were held back."""

    def __init__(self, logger: logging.Logger = log, period: float = THROTTLE_S, clock=time.monotonic):
        self.logger, self.period, self.clock = logger, period, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, key: str, level: int, message: str) -> bool:
        """Log ``message`` unless a line of ``key`` went out less than ``period`` ago; True when logged."""
        now = self.clock()
        if now - self._last.get(key, float("-inf")) < self.period:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        held = self._held.pop(key, 0)
        self._last[key] = now
        more = f" ({held} more like it in the last {self.period:.0f} s)" if held else ""
        self.logger.log(level, "%s%s", message, more)
        return True


class ClientFaults(logging.Filter):
    """On aiohttp's server logger: a client's fault (a malformed request, a client gone mid-answer) becomes one
    line without traceback, throttled; the record itself is dropped."""

    def __init__(self, throttle: Throttle):
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        exc = record.exc_info[1] if record.exc_info else None
        what = f"{type(exc).__name__}: {exc}" if exc is not None else record.getMessage()
        first = " ".join(str(what).split())[:200]
        self.throttle(f"server:{type(exc).__name__}", logging.INFO, f"HTTP: {record.getMessage()}: {first}")
        return False


def loop_exception_handler(throttle: Throttle):
    """The event loop's handler: a failed accept (out of file descriptors) and any other error in the server's
    loop become one throttled line each, without traceback."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = context.get("message", "error")
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        throttle(f"loop:{message}:{type(exc).__name__}", logging.WARNING, f"HTTP: {message}{detail}")

    return handle


class ConnectionGuard:
    """The protocol factory handed to ``loop.create_server``: wraps each of aiohttp's handlers (see the module
    docstring)."""

    def __init__(self, factory, max_clients: int, header_timeout: float, throttle: Throttle):
        self.factory, self.max_clients, self.header_timeout = factory, max_clients, header_timeout
        self.throttle = throttle
        self.open: set[GuardedProtocol] = set()
        self.waiting: dict[GuardedProtocol, None] = {}  # no complete request head yet, oldest first
        self.refused = self.evicted = self.timed_out = 0

    def __call__(self) -> GuardedProtocol:
        return GuardedProtocol(self)

    def admit(self, conn: GuardedProtocol) -> bool:
        """Make room for ``conn``; False when every open connection is busy (it is answered 503)."""
        if len(self.open) >= self.max_clients:
            if not self.waiting:
                self.refused += 1
                self.throttle("full", logging.WARNING, f"HTTP: {self.max_clients} clients connected "
                              "([http] max_clients), all busy: answering 503 to new ones")
                return False
            oldest = next(iter(self.waiting))
            self.evicted += 1
            self.throttle("evict", logging.WARNING, f"HTTP: {self.max_clients} clients connected "
                          "([http] max_clients): closing the oldest that sent no request")
            oldest.drop()
        self.open.add(conn)
        return True

    def forget(self, conn: GuardedProtocol) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)


class GuardedProtocol(asyncio.Protocol):
    """One connection: aiohttp's handler inside, with a deadline for each request head."""

    def __init__(self, guard: ConnectionGuard):
        self.guard = guard
        self.inner = None
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        if not self.guard.admit(self):
            transport.write(REFUSED)
            transport.close()
            return
        self.inner = self.guard.factory()
        self.inner.connection_made(transport)
        self._await_head()

    def _await_head(self) -> None:
        if self._timer is None:
            self.guard.waiting[self] = None
            self._timer = asyncio.get_running_loop().call_later(self.guard.header_timeout, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self.guard.timed_out += 1
        self.drop()

    def drop(self) -> None:
        self.guard.forget(self)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        seen = self._tail + data
        end = seen.rfind(HEAD_END)
        if end >= 0 and end + len(HEAD_END) == len(seen):  # the head is complete, nothing after it
            self.guard.waiting.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        else:
            self._await_head()
        self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.forget(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.inner is not None:
            self.inner.connection_lost(exc)
            self.inner = None


def guarded_site(runner, host: str, port: int, guard: ConnectionGuard):
    """An aiohttp site listening on ``host:port`` through ``guard`` (started, stopped and cleaned up by the
    runner like a TCPSite)."""
    from aiohttp import web

    class GuardedSite(web.BaseSite):
        @property
        def name(self) -> str:
            return f"http://{host}:{port}"

        async def start(self) -> None:
            await super().start()
            self._server = await asyncio.get_running_loop().create_server(guard, host, port, reuse_address=True,
                                                                          backlog=self._backlog)

    return GuardedSite(runner)
