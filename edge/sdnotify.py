"""Tell systemd (Type=notify) that the agent is up and its loop is alive.

READY=1 once the agent is running, STATUS= lines for `systemctl status`, and
WATCHDOG=1 sent from the event loop itself, at half of WATCHDOG_USEC, only
while the loop is healthy: a stuck loop stops petting and systemd restarts it.
The protocol is one datagram on $NOTIFY_SOCKET; no dependency needed.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """A no-op outside systemd (no NOTIFY_SOCKET)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        if self.address.startswith("@"):               # abstract namespace
            self.address = "\0" + self.address[1:]
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 1e6 / 2 if wanted else 0.0
        self._last_pet = 0.0
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)       # a full socket must never stall the event loop

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError:
            return False     # systemd gone or socket full: never break the agent over it

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self, healthy: bool = True) -> bool:
        """Call from the loop each turn; pets systemd at most every half interval, only if healthy."""
        if not healthy or not self.watchdog_interval:
            return False
        now = time.monotonic()
        if now - self._last_pet < self.watchdog_interval:
            return False
        self._last_pet = now
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
