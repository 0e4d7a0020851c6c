"""A small paho client for the command/ACL tests: connect with a username, collect what
arrives, publish and wait for the broker's answer. (edge code uses edge.telemetry.client;
tests may talk to the broker directly.)"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion


class Peer:
    def __init__(self, broker, username: str | None = None, password: str | None = None, *,
                 client_id: str | None = None, clean: bool = True, v5: bool = True) -> None:
        self.broker = broker
        self.v5 = v5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else clean)
        self.clean = clean
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, bytes, bool]] = []
        self.connack: queue.Queue = queue.Queue()
        self.acks: dict[int, Any] = {}
        self.subacks: dict[int, list] = {}
        self._cv = threading.Condition()
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, bool(m.retain)))
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe

    def _on_publish(self, client, userdata, mid, rc, props=None):
        with self._cv:
            self.acks[mid] = rc
            self._cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, rcs, props=None):
        with self._cv:
            self.subacks[mid] = list(rcs)
            self._cv.notify_all()

    def connect(self, timeout: float = 5.0):
        """Connect and return the CONNACK reason code (0 / 'Success' when accepted)."""
        kw = {}
        if self.v5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.clean else 3600
            kw = {"clean_start": self.clean, "properties": props}
        self.client.connect(self.broker.host, self.broker.port, keepalive=30, **kw)
        self.client.loop_start()
        rc = self.connack.get(timeout=timeout)
        return rc

    def ok(self) -> "Peer":
        rc = self.connect()
        assert not rc.is_failure, f"connect refused: {rc}"
        return self

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list:
        _, mid = self.client.subscribe(topic, qos)
        self._wait(lambda: mid in self.subacks, timeout)
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, timeout: float = 5.0):
        """Publish and return the PUBACK reason code (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            info.wait_for_publish(timeout)
            return None
        self._wait(lambda: info.mid in self.acks, timeout)
        return self.acks[info.mid]

    def _wait(self, cond, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no answer from the broker")
                self._cv.wait(left)

    def drain(self, settle: float = 0.3) -> list[tuple[str, bytes, bool]]:
        """Everything received until nothing more arrives for `settle` seconds."""
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=settle))
            except queue.Empty:
                return out

    def wait_for(self, topic: str, timeout: float = 5.0) -> tuple[str, bytes, bool]:
        """The next message on `topic` (others that arrive first are kept in `.seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"nothing on {topic}")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                raise TimeoutError(f"nothing on {topic}") from None
            self.seen.append(msg)
            if msg[0] == topic:
                return msg

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_as() -> str:
    """mosquitto started as root drops to user 'mosquitto', which cannot read pytest's 0700 tmp dirs."""
    return "user root\n" if os.geteuid() == 0 else ""


def mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(found).exists():
        pytest.fail("mosquitto_passwd is missing: apt-get install mosquitto (make setup)")
    return found


def make_passwd(path: Path, users: dict[str, str]) -> Path:
    first = True
    for user, password in users.items():
        subprocess.run([mosquitto_passwd(), *(["-c"] if first else []), "-b", str(path), user, password],
                       check=True, capture_output=True)
        first = False
    return path


ACL = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "fabedge.acl"


def secured_broker(workdir: Path, users: dict[str, str], acl: Path = ACL, extra: str = ""):
    """A started mosquitto with config/mosquitto/fabedge.acl and a password file for `users`."""
    from edge.telemetry.localbroker import LocalBroker
    workdir.mkdir(parents=True, exist_ok=True)
    pw = make_passwd(workdir / "passwd", users)
    conf = run_as() + f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n{extra}"
    return LocalBroker(workdir=workdir / "broker", extra_conf=conf).start()
