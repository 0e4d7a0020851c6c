"""Helpers for the region tests: a region key on disk, a campaign database, a counting subscriber,
and the `fabedge` command line as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
HEADBAND = HERE / "headband.gcode"
VISOR = HERE / "visor.gcode"
KEY_ID = "region-test"


def fabedge(*args: str, **kw: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "edge", *args], cwd=str(ROOT), env=env, **kw)


def fabedge_out(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=timeout)


def region_key(folder: Path) -> tuple[Any, Path, Path]:
    """A fresh Ed25519 region key: (key, private key file, public key file)."""
    from edge.telemetry import signing
    folder.mkdir(parents=True, exist_ok=True)
    key = signing.generate_private_key()
    priv = signing.save_private_key(key, folder / f"{KEY_ID}.key")
    pub = folder / f"{KEY_ID}.pub"
    pub.write_text(signing.public_key_b64(key) + "\n")
    return key, priv, pub


class RegionEar:
    """The region's independent witness: a persistent QoS 1 subscriber counting events by id."""

    def __init__(self, url: str, client_id: str = "region-ear") -> None:
        from edge.telemetry.client import Watcher
        from edge.telemetry.endpoint import Endpoint
        self.lock = threading.Lock()
        self.events: dict[str, tuple[str, dict, float]] = {}    # event id -> (topic, message, received)
        self.copies = 0
        self.watcher = Watcher(Endpoint.from_url(url), ["fabedge/v1/+/+/evt/#"], self._on, client_id=client_id,
                               persistent=True)

    def _on(self, topic: str, payload: bytes, _retained: bool) -> None:
        msg = json.loads(payload)
        with self.lock:
            self.copies += 1
            self.events.setdefault(msg["id"], (topic, msg, time.time()))

    def start(self) -> "RegionEar":
        self.watcher.start(wait_s=10)
        return self

    def stop(self) -> None:
        self.watcher.stop()

    def of(self, type_: str) -> list[dict]:
        with self.lock:
            return [m for t, m, _ in self.events.values() if t.endswith("/evt/" + type_)]


def wait_for(cond: Any, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(every)
