"""Fixtures for the telemetry tests: a config pointing at the test broker, a recording subscriber."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from edge import config
from edge.telemetry.client import Endpoint, Watcher
from edge.telemetry.localbroker import LocalBroker

# mosquitto started as root drops to the 'mosquitto' user, which cannot write its persistence
# file into a root-owned temp dir: sessions and retained messages would not survive a restart.
STAY_ROOT = "user root" if os.geteuid() == 0 else ""


def start_broker(workdir, extra_conf: str = "") -> LocalBroker:
    """A broker with extra config lines (TLS, in-flight limits); the `broker` fixture is tests/conftest.py's."""
    return LocalBroker(workdir=workdir, extra_conf="\n".join(x for x in (STAY_ROOT, extra_conf) if x)).start()


def make_cfg(url: str, **broker) -> config.Config:
    return config.from_dict({"machine": {"id": "mk3-1", "site": "lab-a"},
                             "broker": {"url": url, "will_delay_s": 2, "telemetry_interval_s": 0.2, **broker}})


class Recorder:
    """Subscribes to everything under fabedge/ and keeps (topic, payload, retained) in arrival order."""

    def __init__(self, url: str, topics=("fabedge/#",), **kw) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.watcher = Watcher(Endpoint.from_url(url), list(topics), self._add, **kw).start()
        assert self.watcher.connected.is_set(), "recorder could not connect"

    def _add(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._lock:
            self.messages.append((topic, payload, retained))

    def on(self, suffix: str) -> list[dict]:
        with self._lock:
            msgs = [m for m in self.messages if m[0].endswith(suffix)]
        return [json.loads(p) for _t, p, _r in msgs]

    def wait(self, cond, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    def stop(self) -> None:
        self.watcher.stop()


@pytest.fixture
def recorder(broker):
    r = Recorder(broker.url)
    yield r
    r.stop()
