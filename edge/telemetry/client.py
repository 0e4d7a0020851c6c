"""The MQTT connection: the only module that imports paho.

`Link` keeps one connection to the region's broker alive on its own thread:
MQTT v5 (falling back to 3.1.1 when the broker refuses v5), TLS and
username/password from `cfg.broker`, a last will set afresh for every
connection, reconnect with capped exponential backoff. Each connection gets a
new paho client, so nothing paho queued for a dead connection is re-sent behind
our back: the owner (the telemetry service) re-sends from its spool, in order.

All network work and all callbacks run on the link's thread, driven by paho's
external-loop API (select on the socket plus a wake-up pipe). Other threads
only call `wake()`; the owner publishes from its `tick()` hook.

`Watcher` is a plain subscriber for the fleet view and tests.
"""

from __future__ import annotations

import logging
import os
import random
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import FabedgeError
from edge.telemetry.endpoint import Endpoint

__all__ = ["Endpoint", "Link", "LinkOwner", "Watcher", "Will", "probe", "MQTT_V5", "MQTT_V311"]

log = logging.getLogger("fabedge.mqtt")

MQTT_V5 = "5"
MQTT_V311 = "3.1.1"


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    delay_s: int = 0


class LinkOwner(Protocol):
    """What the link calls, always on the link's own thread."""

    def make_will(self) -> Will | None: ...
    def link_up(self, link: "Link", receive_max: int) -> None: ...
    def link_down(self) -> None: ...
    def message(self, topic: str, payload: bytes, retained: bool) -> None: ...
    def acked(self, mid: int, ok: bool) -> None: ...
    def subscribed(self, mid: int, ok: bool) -> None: ...
    def tick(self, link: "Link") -> None: ...


def _fd(obj: Any) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


def _ready(read: list[Any], write: list[Any], timeout: float) -> tuple[list[Any], list[Any]]:
    """select() without its 1024-descriptor ceiling (a fleet simulator runs many links in one process)."""
    poller = select.poll()
    masks: dict[int, int] = {}
    for obj in read:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | select.POLLIN
    for obj in write:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | select.POLLOUT
    for fd, mask in masks.items():
        poller.register(fd, mask)
    events = dict(poller.poll(max(0, int(timeout * 1000))))
    gone = select.POLLERR | select.POLLHUP | select.POLLNVAL
    return ([o for o in read if events.get(_fd(o), 0) & (select.POLLIN | gone)],
            [o for o in write if events.get(_fd(o), 0) & (select.POLLOUT | gone)])


def _new_paho(endpoint: Endpoint, client_id: str, v5: bool) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                         clean_session=None if v5 else True, reconnect_on_failure=False)
    client.suppress_exceptions = True   # a bug in a handler is logged, never kills the link
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set(ca_certs=endpoint.ca_file or None, certfile=endpoint.cert_file or None,
                       keyfile=endpoint.key_file or None)
    return client


class Link:
    """One MQTT connection at a time, kept up by a background thread.

    `publish()` and `subscribe()` may only be called from the owner's hooks
    (they run on the link thread); `wake()`, `start()` and `stop()` from anywhere.
    """

    def __init__(self, endpoint: Endpoint, client_id: str, owner: LinkOwner, *, window: int = 1000,
                 backoff_min_s: float = 0.5, backoff_max_s: float = 30.0, tick_s: float = 0.2,
                 connect_timeout_s: float = 10.0, coalesce_s: float = 0.002) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.owner = owner
        self.window = window
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.tick_s = tick_s
        self.connect_timeout_s = connect_timeout_s
        self.coalesce_s = coalesce_s
        self.protocol_in_use: str | None = None
        self._v5_next = endpoint.protocol != MQTT_V311
        self._client: mqtt.Client | None = None
        self._up = False
        self._announced = False          # link_up() was called for the current connection
        self._stop = threading.Event()
        self._abrupt = False
        self._final: Callable[["Link"], None] | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # ---- any thread -------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._up

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fabedge-mqtt", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except (BlockingIOError, OSError):
            pass   # already awake (buffer full) or closed

    def stop(self, final: Callable[["Link"], None] | None = None, abrupt: bool = False,
             timeout: float = 15.0) -> None:
        """Stop the thread. `final(link)` runs on it first while still connected (e.g. publish
        "offline" and wait for its PUBACK); `abrupt` drops the TCP connection without DISCONNECT,
        so the broker publishes the will."""
        self._final, self._abrupt = final, abrupt
        self._stop.set()
        self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None
        for s in (self._wake_r, self._wake_w):
            s.close()

    # ---- link thread only -------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Queue one PUBLISH; returns its message id (None when not connected)."""
        client = self._client
        if client is None or not self._up:
            return None
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def subscribe(self, topic: str, qos: int = 1) -> int | None:
        """Send SUBSCRIBE; the owner's `subscribed(mid, ok)` runs when the SUBACK arrives."""
        if self._client is None or not self._up:
            return None
        rc, mid = self._client.subscribe(topic, qos=qos)
        return mid if rc == mqtt.MQTT_ERR_SUCCESS else None

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Keep the network going (from a hook) until `done()` or the timeout; for stop()."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or self._client is None or not self._up:
                return done()
            self._io(self._client, min(left, 0.05))
        return True

    def _run(self) -> None:
        delay = self.backoff_min_s
        while not self._stop.is_set():
            ok = False
            try:
                ok = self._session()
            except Exception:   # never let the link thread die: log and reconnect
                log.exception("MQTT link error")
            finally:
                self._teardown()
            if self._stop.is_set():
                break
            delay = self.backoff_min_s if ok else min(delay * 2, self.backoff_max_s)
            self._idle(delay * random.uniform(0.8, 1.2))

    def _idle(self, seconds: float) -> None:
        """Wait out a backoff while still giving the owner its ticks (offline spooling)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            _ready([self._wake_r], [], min(left, self.tick_s))
            self._drain_wake()
            self._tick()

    def _tick(self) -> None:
        try:
            self.owner.tick(self)
        except Exception:
            log.exception("telemetry tick failed")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _session(self) -> bool:
        """One connection from connect to loss; True when it reached CONNACK."""
        v5 = self._v5_next
        client = _new_paho(self.endpoint, self.client_id, v5)
        self._client = client
        state: dict[str, Any] = {"connack": None, "receive_max": self.window}

        def on_connect(_c, _u, _flags, reason, props) -> None:
            state["connack"] = not reason.is_failure
            state["reason"] = str(reason)
            rm = getattr(props, "ReceiveMaximum", None) if props is not None else None
            if rm:
                state["receive_max"] = int(rm)

        def on_disconnect(_c, _u, _flags, reason, _props) -> None:
            if self._up and not self._stop.is_set():
                log.warning("MQTT connection lost: %s", reason)
            self._up = False

        def on_message(_c, _u, msg) -> None:
            try:
                self.owner.message(msg.topic, bytes(msg.payload), bool(msg.retain))
            except Exception:
                log.exception("handling a message on %r failed", getattr(msg, "topic", "?"))

        def on_publish(_c, _u, mid, reason, _props) -> None:
            try:
                self.owner.acked(mid, not reason.is_failure)
            except Exception:
                log.exception("PUBACK handling failed")

        def on_subscribe(_c, _u, mid, reasons, _props) -> None:
            try:
                self.owner.subscribed(mid, not any(r.is_failure for r in reasons))
            except Exception:
                log.exception("SUBACK handling failed")

        client.on_subscribe = on_subscribe
        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        client.on_message, client.on_publish = on_message, on_publish
        client.max_inflight_messages_set(max(1, self.window))
        client.max_queued_messages_set(0)
        client.connect_timeout = self.connect_timeout_s

        will = self.owner.make_will()
        props = None
        if will is not None:
            will_props = None
            if v5 and will.delay_s:
                will_props = Properties(PacketTypes.WILLMESSAGE)
                will_props.WillDelayInterval = int(will.delay_s)
            client.will_set(will.topic, will.payload, qos=1, retain=True, properties=will_props)
        if v5:
            props = Properties(PacketTypes.CONNECT)
            # The session must outlive the will delay, or the broker sends the will at once.
            props.SessionExpiryInterval = int(will.delay_s) if will is not None else 0
        try:
            if v5:
                client.connect(self.endpoint.host, self.endpoint.port, keepalive=self.endpoint.keepalive_s,
                               clean_start=True, properties=props)
            else:
                client.connect(self.endpoint.host, self.endpoint.port, keepalive=self.endpoint.keepalive_s)
        except OSError as exc:
            log.info("MQTT connect to %s:%s failed: %s", self.endpoint.host, self.endpoint.port, exc)
            return False
        deadline = time.monotonic() + self.connect_timeout_s
        while state["connack"] is None and not self._stop.is_set() and time.monotonic() < deadline:
            if not self._io(client, 0.1):
                break
        if not state["connack"]:
            if self.endpoint.protocol == "auto" and self.protocol_in_use is None:
                self._v5_next = not v5   # a 3.1.1-only broker refuses or drops a v5 CONNECT
            log.info("MQTT broker did not accept the connection (%s, %s)", "v5" if v5 else "v3.1.1",
                     state.get("reason", "no CONNACK"))
            return False
        self.protocol_in_use = MQTT_V5 if v5 else MQTT_V311
        self._up = self._announced = True
        self.owner.link_up(self, min(self.window, state["receive_max"]))
        while self._up and not self._stop.is_set():
            self._tick()
            if not self._io(client, self.tick_s):
                break
        if self._stop.is_set() and self._up:
            if self._final is not None and not self._abrupt:
                try:
                    self._final(self)
                except Exception:
                    log.exception("final publish before stop failed")
            if self._abrupt:
                sock = client.socket()
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            else:
                client.disconnect()
                self._io(client, 0.1)
        return True

    def _io(self, client: mqtt.Client, timeout: float) -> bool:
        """One round of select + paho read/write/keepalive; False once the socket is gone."""
        sock = client.socket()
        if sock is None:
            self._up = False
            return False
        if getattr(sock, "pending", None) and sock.pending():
            timeout = 0.0   # TLS already holds decrypted bytes
        wlist = [sock] if client.want_write() else []
        try:
            readable, writable = _ready([sock, self._wake_r], wlist, timeout)
        except (OSError, ValueError):
            self._up = False
            return False
        if self._wake_r in readable:
            self._drain_wake()
            if self.coalesce_s and sock not in readable:
                time.sleep(self.coalesce_s)   # let a burst of events gather: one read and send per batch
        rc = mqtt.MQTT_ERR_SUCCESS
        if sock in readable or (getattr(sock, "pending", None) and sock.pending()):
            rc = client.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS and (writable or client.want_write()):
            rc = client.loop_write()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = client.loop_misc()
        if rc != mqtt.MQTT_ERR_SUCCESS or client.socket() is None:
            self._up = False
            return False
        return True

    def _teardown(self) -> None:
        was_up, self._announced, self._up = self._announced, False, False
        client, self._client = self._client, None
        if client is not None:
            try:
                sock = client.socket()
                if sock is not None:
                    sock.close()
            except OSError:
                pass
        if was_up:
            try:
                self.owner.link_down()
            except Exception:
                log.exception("disconnect handling failed")


class Watcher:
    """A plain subscriber (fleet view, tests): paho's own network thread, auto-reconnect.

    `on_message(topic, payload, retained)` runs on paho's thread; exceptions in it
    are logged and dropped so a bad message never stops the watch.
    """

    def __init__(self, endpoint: Endpoint, topics: list[str], on_message: Callable[[str, bytes, bool], None],
                 *, client_id: str = "", persistent: bool = False, qos: int = 1) -> None:
        self.topics, self.qos = topics, qos
        self._on_message = on_message
        self.connected = threading.Event()
        client_id = client_id or f"fabedge-watch-{os.getpid()}-{random.randrange(1 << 30)}"
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv311, clean_session=not persistent)
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self._client.tls_set(ca_certs=endpoint.ca_file or None, certfile=endpoint.cert_file or None,
                                 keyfile=endpoint.key_file or None)
        self._client.reconnect_delay_set(0.2, 2.0)
        self._client.max_inflight_messages_set(1000)
        self._client.on_connect = self._connected
        self._client.on_disconnect = lambda *_a: self.connected.clear()
        self._client.on_message = self._message
        self._endpoint = endpoint

    def _connected(self, client, _u, _flags, reason, _props) -> None:
        if reason.is_failure:
            return
        for t in self.topics:
            client.subscribe(t, qos=self.qos)
        self.connected.set()

    def _message(self, _c, _u, msg) -> None:
        try:
            self._on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:
            log.exception("watcher: handling %r failed", getattr(msg, "topic", "?"))

    def start(self, wait_s: float = 10.0) -> "Watcher":
        """Connect (retrying in the background) and subscribe; waits up to `wait_s` for the first CONNACK."""
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=self._endpoint.keepalive_s)
        self._client.loop_start()
        self.connected.wait(wait_s)
        return self

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, wait_s: float = 5.0) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(wait_s)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def probe(cfg: Any, timeout: float = 5.0) -> str:
    """Connect once with the machine's broker settings (TLS, credentials, protocol) and disconnect.

    For `fabedge doctor`. Uses its own client id, so a running agent's session (and its will) is
    untouched. Returns the protocol that worked; raises FabedgeError saying why it failed.
    """
    endpoint = Endpoint.from_config(cfg.broker, cfg.machine.id)
    reasons = []
    for v5 in ((True, False) if endpoint.protocol == "auto" else (endpoint.protocol == MQTT_V5,)):
        client = _new_paho(endpoint, f"fabedge-probe-{cfg.machine.id}-{os.getpid()}", v5)
        result: dict[str, Any] = {}
        client.on_connect = lambda _c, _u, _f, reason, _p: result.setdefault("reason", reason)
        client.connect_timeout = timeout
        try:
            client.connect(endpoint.host, endpoint.port, keepalive=max(5, int(timeout) + 5))
        except OSError as exc:
            raise FabedgeError(f"cannot connect to {endpoint.host}:{endpoint.port}: {exc}") from None
        deadline = time.monotonic() + timeout
        while "reason" not in result and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
        reason = result.get("reason")
        if reason is not None and not reason.is_failure:
            client.disconnect()
            return MQTT_V5 if v5 else MQTT_V311
        client.disconnect()
        reasons.append(f"{'MQTT 5' if v5 else 'MQTT 3.1.1'}: {reason or 'no answer'}")
    raise FabedgeError("the broker refused the connection (" + "; ".join(reasons) + ")")
