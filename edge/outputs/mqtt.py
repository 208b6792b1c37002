"""The MQTT output: availability, the room's state, the faces in view and one event per change, with Home
Assistant discovery, through paho-mqtt.

Topics under ``[mqtt] topic_prefix`` (default ``ferlite/<hostname>``):

    availability   "online" (retained) once connected; "offline" as the last will and on a clean stop
    state          {"expression": dominant, "faces": n}, retained, on change and at most every state_interval s
    faces          the faces in view as JSON, at most faces_hz times a second
    events         one message per face that appears, changes label or goes (the same events as /api/events)

The frame loop never waits on the network: messages go into a bounded queue that drops the oldest while the
broker is away, paho's own thread connects, reconnects with backoff and sends; a broker that is down at start
is logged and retried, never fatal.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.outputs.live import faces_of, room
from ferlite.edge.results import FrameResult
from ferlite.errors import UsageError

if TYPE_CHECKING:
    from ferlite.edge.config import MqttConfig

log = logging.getLogger(__name__)
#: paho's reconnect backoff, seconds.
RETRY_MIN_S, RETRY_MAX_S = 1, 30


def node_id() -> str:
    """This device's name in topics and discovery ids: the host name, lower case, [a-z0-9_-] only."""
    return re.sub(r"[^a-z0-9_-]", "_", socket.gethostname().lower()) or "ferlite"


def discovery_configs(m: MqttConfig, prefix: str, node: str, model: str, version: str) -> dict[str, dict]:
    """Home Assistant discovery topic -> config: the dominant expression, the face count, face present."""
    device = {"identifiers": [f"ferlite_{node}"], "name": f"ferlite {node}", "manufacturer": "ferlite",
              "model": f"expression sensor ({model})", "sw_version": version}
    common = {"state_topic": f"{prefix}/state", "availability_topic": f"{prefix}/availability",
              "payload_available": "online", "payload_not_available": "offline", "device": device}
    base = f"{m.discovery_prefix}"
    return {
        f"{base}/sensor/{node}/expression/config": {
            **common, "name": "Expression", "unique_id": f"ferlite_{node}_expression", "icon": "mdi:emoticon-outline",
            "value_template": "{{ value_json.expression }}"},
        f"{base}/sensor/{node}/faces/config": {
            **common, "name": "Faces", "unique_id": f"ferlite_{node}_faces", "icon": "mdi:account-group",
            "state_class": "measurement", "value_template": "{{ value_json.faces }}"},
        f"{base}/binary_sensor/{node}/face_present/config": {
            **common, "name": "Face present", "unique_id": f"ferlite_{node}_face_present", "device_class": "occupancy",
            "value_template": "{{ 'ON' if value_json.faces > 0 else 'OFF' }}"},
    }


def read_password(m: MqttConfig) -> str:
    """``[mqtt] password``, or the content of ``password_file``; UsageError naming the file when it cannot be read."""
    if not m.password_file:
        return m.password
    try:
        return Path(m.password_file).read_text().strip()
    except OSError as exc:
        raise UsageError(f"[mqtt] password_file = {m.password_file}: {exc.strerror or exc}") from None


class MqttSink(_Sink):
    """Publishes the live view of the frames it is given (see the module docstring)."""

    SECTION = "mqtt"

    def __init__(self, settings: MqttConfig, context: OutputContext, clock=time.monotonic):
        from ferlite import __version__

        m = self.settings = settings
        node = node_id()
        self.prefix = (m.topic_prefix or f"ferlite/{node}").rstrip("/")
        self.clock = clock
        self.queue: deque[tuple[str, str, bool]] = deque(maxlen=m.queue)
        self.dropped = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._last_state: dict | None = None
        self._pending_state: dict | None = None
        self._state_at = self._faces_at = float("-inf")
        self._had_faces = False
        self._down_since: float | None = None  # when the broker became unreachable (None: connected or trying)
        self.discovery = discovery_configs(m, self.prefix, node, context.model, __version__)
        self.client = self._client(m, node)
        self.client.connect_async(m.host, m.port, keepalive=30)
        self.client.loop_start()

    @classmethod
    def from_config(cls, settings: MqttConfig, context: OutputContext) -> MqttSink:
        return cls(settings, context)

    def _client(self, m: MqttConfig, node: str):
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=m.client_id or f"ferlite-{node}")
        password = read_password(m)
        if m.username:
            client.username_pw_set(m.username, password or None)
        if m.tls:
            client.tls_set(ca_certs=m.ca_file or None)
        client.will_set(f"{self.prefix}/availability", "offline", qos=m.qos, retain=True)
        client.reconnect_delay_set(min_delay=RETRY_MIN_S, max_delay=RETRY_MAX_S)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        return client

    # ------------------------------------------------------------------------------------ paho's thread

    def _down(self, reason: str) -> None:
        """The broker cannot be reached: logged once per outage, with what is done meanwhile."""
        if self._down_since is None and not self.closed:
            self._down_since = time.monotonic()
            log.warning("MQTT broker %s:%d %s; retrying every %d-%d s, keeping the newest %d messages",
                        self.settings.host, self.settings.port, reason, RETRY_MIN_S, RETRY_MAX_S, self.queue.maxlen)

    def _on_connect_fail(self, client, userdata) -> None:
        self._down("cannot be reached")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._down(f"refused the connection: {reason_code}")
            return
        if self._down_since is not None:
            log.info("MQTT broker %s:%d is back after %.0f s; publishing under %s/ (%d messages dropped "
                     "meanwhile)", self.settings.host, self.settings.port, time.monotonic() - self._down_since,
                     self.prefix, self.dropped)
            self._down_since = None
        else:
            log.info("MQTT connected to %s:%d; publishing under %s/", self.settings.host, self.settings.port,
                     self.prefix)
        client.publish(f"{self.prefix}/availability", "online", qos=self.settings.qos, retain=True)
        if self.settings.discovery:
            for topic, payload in self.discovery.items():
                client.publish(topic, json.dumps(payload), qos=self.settings.qos, retain=True)
        if self._last_state is not None:
            client.publish(f"{self.prefix}/state", json.dumps(self._last_state), qos=self.settings.qos, retain=True)
        self._connected.set()
        self._drain()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set():
            self._down(f"lost ({reason_code})")
        else:  # connected over TCP, but no answer to CONNECT (paho gives up after the keep-alive)
            self._down(f"did not answer ({reason_code})")
        self._connected.clear()

    # ------------------------------------------------------------------------------------ frame thread

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        now = self.clock()
        wall = time.time()
        for event in result.events:  # decided once by the tracker, on the source's clock
            self._put("events", json.dumps(event.as_dict(result.source, result.index, wall)))
        state = room(result)
        if state != self._last_state:
            self._pending_state = state
        if self._pending_state is not None and now - self._state_at >= self.settings.state_interval:
            self._put("state", json.dumps(self._pending_state), retain=True)
            self._last_state, self._pending_state, self._state_at = self._pending_state, None, now
        if (result.faces or self._had_faces) and now - self._faces_at >= 1.0 / self.settings.faces_hz:
            self._put("faces", json.dumps({"time": round(wall, 3), "faces": faces_of(result)}))
            self._faces_at, self._had_faces = now, bool(result.faces)
        if self._connected.is_set():
            self._drain()

    def drops(self) -> dict[str, int]:
        """Messages dropped from the full queue while the broker was away."""
        return {"mqtt messages": self.dropped}

    def _put(self, topic: str, payload: str, retain: bool = False) -> None:
        with self._lock:
            if len(self.queue) == self.queue.maxlen:
                self.dropped += 1
            self.queue.append((f"{self.prefix}/{topic}", payload, retain))

    def _drain(self) -> None:
        """Hand the queued messages to paho (which sends them from its thread) while connected."""
        with self._lock:
            while self.queue and self._connected.is_set():
                topic, payload, retain = self.queue[0]
                info = self.client.publish(topic, payload, qos=self.settings.qos, retain=retain)
                if info.rc != 0:  # not connected after all: keep it for the next connection
                    break
                self.queue.popleft()

    def _close(self) -> None:
        """A clean stop: "offline" (retained), then disconnect (``closed`` is already set: no warning)."""
        if self._connected.is_set():
            self._drain()
            info = self.client.publish(f"{self.prefix}/availability", "offline", qos=self.settings.qos, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
