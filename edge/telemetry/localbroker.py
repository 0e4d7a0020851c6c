"""A private mosquitto on a free loopback port: for `fabedge demo`, tests and benchmarks.

Starts the real broker binary with a generated config, waits until it accepts
connections, and can be stopped, killed (to simulate an outage) and started
again on the same port with the same persistence file.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import FabedgeError

INSTALL_HINT = "mosquitto is not installed: run 'sudo apt-get install mosquitto' (or 'make setup')"


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often off PATH)."""
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)
    if not found:
        raise FabedgeError(INSTALL_HINT)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """One mosquitto process; `extra_conf` lines are appended to its config (ACLs, bridges...)."""

    def __init__(self, port: int | None = None, workdir: str | Path | None = None,
                 extra_conf: str = "", persistence: bool = True) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fabedge-broker-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra_conf = extra_conf
        self.persistence = persistence
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_conf(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            # As root mosquitto drops to the 'mosquitto' user, which cannot write our private
            # workdir: persistence would be silently lost across stop()/start().
            "user root" if os.geteuid() == 0 and "user " not in self.extra_conf else "",
            "allow_anonymous true" if "allow_anonymous" not in self.extra_conf else "",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.log_path}",
            self.extra_conf,
        ]
        conf.write_text("\n".join(line for line in lines if line) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> "LocalBroker":
        if self.proc and self.proc.poll() is None:
            return self
        conf = self._write_conf()
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                raise FabedgeError(f"mosquitto exited at start (code {self.proc.returncode}): {err or log}".strip())
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise FabedgeError(f"mosquitto did not accept connections on {self.host}:{self.port} within {timeout} s")

    def wait_saved(self, timeout: float = 10.0) -> None:
        """Wait until the broker has written its persistence file after this call (its autosave
        runs when more than `autosave_interval` whole seconds have passed, so up to ~2 s): what
        the broker holds now (sessions, subscriptions) then survives a kill()."""
        db = self.workdir / "mosquitto.db"
        since = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if db.stat().st_mtime > since:
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise FabedgeError(f"mosquitto did not save {db} within {timeout} s (persistence off?)")

    def stop(self) -> None:
        """Clean shutdown (SIGTERM): the broker saves its persistence file."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Outage: SIGKILL, as when the region's server or the link dies."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> "LocalBroker":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
