"""The HTTP output: a kiosk page, the annotated MJPEG stream, and a JSON and server-sent-events API.

Served by aiohttp (with aiohttp-sse for the event stream) from its own thread and event loop, so the frame loop
never waits on a client: ``write`` only updates the live view, hands the tracker's events to the loop and, when a
stream client is connected and a frame is due, hands the frame to the encoder's thread (one frame waits at most:
a newer one replaces it, counted in ``drops``). Routes (see README, "Live outputs"):

    /                 the kiosk page (no external assets)      /stream.mjpg    the annotated stream
    /api/status       version, uptime, source, model, ...      /api/faces      the faces in view
    /api/events       server-sent events: appeared, label, gone
    /api/history      counts per expression per bucket, from the SQLite log (?since=&until=&bucket=)
    /report           the `ferlite report` page of the last day (needs the report extra; reportpage.py)

Any client must send ``[http] token`` (``Authorization: Bearer ...`` or ``?token=``) when one is set; a token
is required to listen off loopback (the config refuses it otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.outputs.guard import ClientFaults, ConnectionGuard, Throttle, guarded_site, loop_exception_handler
from ferlite.edge.outputs.live import LiveView
from ferlite.edge.outputs.reportpage import ReportPage
from ferlite.edge.results import FrameResult
from ferlite.errors import UsageError
from ferlite.redact import redact

if TYPE_CHECKING:
    from ferlite.edge.config import HttpConfig

log = logging.getLogger(__name__)
#: Server-sent events kept per client while it is slow (the oldest are dropped).
CLIENT_QUEUE = 256


class LastError(logging.Handler):
    """Keeps the last warning or error logged by ferlite, for /api/status."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text, self.time = "", 0.0

    def emit(self, record: logging.LogRecord) -> None:
        self.text, self.time = redact(record.getMessage()), record.created


class HttpSink(_Sink):
    """Serves the live view of the frames it is given (see the module docstring)."""

    SECTION = "http"

    def __init__(self, settings: HttpConfig, context: OutputContext):
        from ferlite import __version__

        h = self.settings = settings
        self.state = LiveView(history_s=h.history_minutes * 60)
        self.info = {"version": __version__, "source": context.source, "detector": context.detector,
                     "model": context.model, "stream": h.stream,
                     "keeps_pictures": any(o in ("annotated", "crops") for o in context.outputs)}
        self.log_path = context.log
        self.report_page = ReportPage(self.log_path) if self.log_path is not None else None
        self.host, _, port = h.listen.rpartition(":")
        self.host, self.port = self.host.strip("[]"), int(port)
        self.jpeg, self.stream_clients, self._last_jpeg = b"", 0, 0.0
        self.dropped_frames = 0  # frames due for the stream that a newer one replaced before they were encoded
        self.refused_streams = 0  # event or picture streams answered 503 (routes.STREAM_SHARE)
        self._to_encode: tuple | None = None
        self._last_frame: tuple | None = None  # (image, result) of the newest frame, for the still after the end
        self.ended = False  # the source ended (recognize --serve): no faces, the stream is the last frame
        self._encoder_wake = threading.Condition()
        self._peers: tuple = ()  # the run's other outputs, for their drop counts in /api/status
        self._queues: set[asyncio.Queue] = set()
        self.last_error = LastError()
        self.client_log = logging.getLogger("ferlite.edge.outputs.http.clients")  # aiohttp's, for client faults
        self.client_log.filters = [ClientFaults(Throttle())]
        self.guard: ConnectionGuard | None = None
        logging.getLogger("ferlite").addHandler(self.last_error)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="ferlite-http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            self._release()
            raise UsageError(f"[http] listen = {h.listen}: cannot serve there: {self._failure}")
        self._encoder = threading.Thread(target=self._encode_loop, name="ferlite-jpeg", daemon=True)
        self._encoder.start()
        log.info("serving http://%s:%d/", self.host, self.port)

    @classmethod
    def from_config(cls, settings: HttpConfig, context: OutputContext) -> HttpSink:
        return cls(settings, context)

    # ------------------------------------------------------------------------------------ frame thread

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        self.state.update(result)
        if result.events:  # decided once by the tracker, on the source's clock
            wall = time.time()
            events = [e.as_dict(result.source, result.index, wall) for e in result.events]
            self._loop.call_soon_threadsafe(self._broadcast, events)
        if self.settings.stream and frame is not None:
            self._last_frame = (frame.image, result)
        now = time.monotonic()
        due = now - self._last_jpeg >= 1.0 / self.settings.stream_fps
        if self.settings.stream and self.stream_clients and frame is not None and due:
            self._last_jpeg = now
            with self._encoder_wake:
                if self._to_encode is not None:
                    self.dropped_frames += 1  # the encoder is behind: the older frame is never sent
                self._to_encode = (frame.image, result)
                self._encoder_wake.notify()

    def _encode_loop(self) -> None:
        """The encoder's thread: the newest frame handed over, annotated and encoded, to the stream's clients."""
        while True:
            with self._encoder_wake:
                self._encoder_wake.wait_for(lambda: self._to_encode is not None or self.closed)
                if self.closed:
                    return
                (image, result), self._to_encode = self._to_encode, None
            jpeg = self.encode(image, result)
            if not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._new_jpeg, jpeg)

    def source_ended(self) -> None:
        """The source ended but the page stays up (recognize --serve): no faces in view any more, and the picture
        is the last frame, as a still (never a picture that does not load)."""
        self.ended = True
        if self.state.result is not None:
            self.state.result = dataclasses.replace(self.state.result, faces=(), events=())
        if self._last_frame is not None:
            jpeg = self.encode(*self._last_frame)
            self._last_frame = None
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._new_jpeg, jpeg)

    def bind(self, peers) -> None:
        """Told the run's outputs (by the registry), to show their drops in /api/status."""
        self._peers = tuple(p for p in peers if p is not self)

    def drops(self) -> dict[str, int]:
        """Stream frames an encoder that fell behind never sent."""
        return {"stream frames": self.dropped_frames}

    def encode(self, image, result: FrameResult) -> bytes:
        """The annotated frame as JPEG, faces blurred when [http] blur_faces is set."""
        import cv2

        from ferlite.edge.outputs.media import annotate, blur_faces

        if self.settings.blur_faces:
            image = blur_faces(image, result)
        ok, data = cv2.imencode(".jpg", annotate(image, result), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return data.tobytes() if ok else b""

    def _close(self) -> None:
        with self._encoder_wake:
            self._encoder_wake.notify()
        self._encoder.join(timeout=10)
        if not self._loop.is_closed():  # running, or about to run: stop() is queued either way
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._release()

    def _release(self) -> None:
        logging.getLogger("ferlite").removeHandler(self.last_error)

    # ------------------------------------------------------------------------------------ server thread

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = None
        try:
            from aiohttp import web

            from ferlite.edge.outputs.routes import make_app

            throttle = Throttle()
            self._loop.set_exception_handler(loop_exception_handler(throttle))
            runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=1.0, logger=self.client_log,
                                   keepalive_timeout=self.settings.header_timeout)
            self._loop.run_until_complete(runner.setup())
            self.guard = ConnectionGuard(runner.server, self.settings.max_clients, self.settings.header_timeout,
                                         throttle)
            self._loop.run_until_complete(guarded_site(runner, self.host, self.port, self.guard).start())
        except BaseException as exc:  # a port in use, aiohttp missing: __init__ reports it, nothing hangs
            self._failure = exc
            if runner is not None:
                self._loop.run_until_complete(runner.cleanup())
            self._loop.close()
            self._started.set()
            return
        self._new_frame = asyncio.Event()
        self._started.set()
        self._loop.run_forever()
        for queue in self._queues:
            queue.put_nowait(None)  # ends every event stream
        self._new_frame.set()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def _new_jpeg(self, jpeg: bytes) -> None:
        self.jpeg = jpeg
        event, self._new_frame = self._new_frame, asyncio.Event()
        event.set()

    async def next_jpeg(self) -> bytes:
        """The next encoded frame (waits for it); b"" when the server is closing."""
        await self._new_frame.wait()
        return b"" if self.closed else self.jpeg

    def _broadcast(self, events: list[dict]) -> None:
        for queue in self._queues:
            for event in events:
                if queue.full():
                    queue.get_nowait()  # a slow client loses the oldest events, not the frame loop's time
                queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(CLIENT_QUEUE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._queues.discard(queue)

    def status(self) -> dict[str, Any]:
        s = self.state
        error = {"text": self.last_error.text, "time": round(self.last_error.time, 3)} if self.last_error.text \
            else None
        return {**self.info, "uptime_s": round(time.time() - s.started, 1), "frames": s.frames,
                "fps": 0.0 if self.ended else round(s.fps, 2), "ended": self.ended,
                "faces_now": len(s.result.faces) if s.result else 0,
                "state": s.state(), "shares": s.shares(self.settings.history_minutes), "last_error": error,
                "dropped": self.all_drops(),
                "streams": {"open": self.stream_clients + len(self._queues), "refused": self.refused_streams}}

    def all_drops(self) -> dict[str, int]:
        """Work the outputs dropped rather than hold the frame loop up: log rows, stream frames, MQTT messages."""
        drops = dict(self.drops())
        for peer in self._peers:
            drops.update(getattr(peer, "drops", dict)())
        return drops

    def faces_json(self) -> str:
        return json.dumps({"faces": self.state.faces(), "labels": list(self.state.result.labels)
                           if self.state.result else []})
