"""The routes of the HTTP output (ferlite.edge.outputs.http): the kiosk page, the MJPEG stream, the API."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from functools import partial
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from ferlite.edge.config import is_loopback
from ferlite.errors import UsageError

if TYPE_CHECKING:
    from ferlite.edge.outputs.http import HttpSink

BOUNDARY = "ferliteframe"
#: Share of [http] max_clients that long-lived streams (server-sent events, MJPEG) may hold: the rest is always
#: free for requests, so an authorised client is served however many pages and streams are open.
STREAM_SHARE = 0.75


def streams_full(sink: HttpSink) -> web.Response | None:
    """A 503 when the open streams hold their share of the connections, else None."""
    limit = max(1, int(sink.settings.max_clients * STREAM_SHARE))
    if sink.stream_clients + len(sink._queues) < limit:
        return None
    sink.refused_streams += 1
    response = web.json_response({"error": f"too many open streams ({limit}: three quarters of [http] "
                                           "max_clients); try again later"}, status=503)
    response.force_close()
    return response


def make_app(sink: HttpSink) -> web.Application:
    middlewares = [_loopback_host] if is_loopback(sink.host) else []
    if sink.settings.token:
        middlewares.append(_auth(sink.settings.token))
    app = web.Application(middlewares=middlewares)
    page = (resources.files("ferlite.edge") / "outputs" / "web" / "kiosk.html").read_bytes()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def status(request: web.Request) -> web.Response:
        return web.json_response(sink.status())

    async def faces(request: web.Request) -> web.Response:
        return web.Response(text=sink.faces_json(), content_type="application/json")

    app.add_routes([web.get("/", index), web.get("/api/status", status), web.get("/api/faces", faces),
                    web.get("/api/events", partial(events, sink)), web.get("/stream.mjpg", partial(stream, sink)),
                    web.get("/api/history", partial(history, sink)), web.get("/report", partial(report, sink))])
    return app


@web.middleware
async def _loopback_host(request: web.Request, handler):
    """On loopback, only requests addressed to a loopback name: a web page whose own name a DNS server pointed
    at 127.0.0.1 (DNS rebinding) must not read the API from a browser on this machine."""
    host = request.headers.get("Host", "")
    if host and not is_loopback(_host_name(host)):
        response = web.json_response({"error": "this server answers only requests to a loopback address "
                                               "(127.0.0.1, localhost, [::1])"}, status=421)
        response.force_close()
        return response
    return await handler(request)


def _host_name(host: str) -> str:
    """The name in a Host header: ``[::1]:8080`` -> ``::1``, ``localhost:8080`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.partition(":")[0] if host.count(":") == 1 else host


def _auth(token: str):
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler):
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            response = web.json_response({"error": "a token is required: Authorization: Bearer TOKEN, or "
                                                   "?token=TOKEN"}, status=401)
            response.force_close()  # the connection's place goes to the next client
            return response
        return await handler(request)

    return check


async def stream(sink: HttpSink, request: web.Request) -> web.StreamResponse:
    """multipart/x-mixed-replace: one JPEG part per frame, at most [http] stream_fps."""
    if not sink.settings.stream:
        return web.json_response({"error": "the picture is off ([http] stream = false)"}, status=404)
    if (full := streams_full(sink)) is not None:
        return full
    response = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                           "Cache-Control": "no-cache, no-store"})
    sink.stream_clients += 1  # counted before the first await: streams_full sees every stream
    try:
        await response.prepare(request)
        while True:  # after the source ended: its last frame, once
            jpeg = sink.jpeg if sink.ended else await sink.next_jpeg()
            if not jpeg:
                break
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            await response.write(head + jpeg + b"\r\n")
            if sink.ended:
                break
    except (ConnectionError, asyncio.CancelledError):  # the client left: nothing to log
        pass
    finally:
        sink.stream_clients -= 1
    return response


async def events(sink: HttpSink, request: web.Request) -> web.StreamResponse:
    """Server-sent events: one per face that appears, changes label or goes (``event: appeared|label|gone``)."""
    from aiohttp_sse import sse_response

    if (full := streams_full(sink)) is not None:
        return full
    queue = sink.subscribe()
    sse = None
    try:
        async with sse_response(request, ping_interval=10) as sse:
            await sse.send(json.dumps(sink.status()), event="status")
            while sse.is_connected():
                event = await queue.get()
                if event is None:
                    break
                await sse.send(json.dumps(event), event=event["type"])
    except ConnectionError:  # the client left (a kiosk page reloaded): nothing to log
        pass
    finally:
        sink.unsubscribe(queue)
    return sse if sse is not None else web.Response(status=499)


async def history(sink: HttpSink, request: web.Request) -> web.Response:
    from ferlite.edge.logbook.history import bucket_seconds, limit_count
    from ferlite.edge.logbook.history import history as read_history
    from ferlite.times import parse_time

    if sink.log_path is None:
        return web.json_response({"error": "no expression log: add \"sqlite\" to [outputs] run"}, status=404)
    q, now = request.query, time.time()
    try:
        since, until = parse_time(q.get("since"), now), parse_time(q.get("until"), now)
        since, until = now - 86400 if since is None else since, now if until is None else until
        bucket, limit = bucket_seconds(q.get("bucket")), limit_count(q.get("limit"))
        data = await asyncio.get_running_loop().run_in_executor(None, read_history, sink.log_path, since, until,
                                                                  bucket, limit)
    except UsageError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(data)


async def report(sink: HttpSink, request: web.Request) -> web.Response:
    """The `ferlite report` page of the last day (edge/outputs/reportpage.py: one render a minute at most, in a
    process of its own); 501 saying what to install where the report extra is missing."""
    if sink.report_page is None:
        return web.json_response({"error": "no expression log: add \"sqlite\" to [outputs] run"}, status=404)
    status, content_type, body = await sink.report_page.get()
    return web.Response(status=status, body=body, content_type=content_type, charset="utf-8")
