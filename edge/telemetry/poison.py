"""Finds a spooled message that the broker answers by dropping the connection.

Some brokers (mosquitto 2.0, for example) disconnect a client that publishes
where its ACL forbids instead of refusing the one message. Sent in order, that
message would then block every later one forever. The guard watches which
spool row was the oldest still unacknowledged whenever a connection dies soon
after it started: after `strikes` such deaths on the same row it is sent alone,
and if the connection dies again with only that row in flight it is named
poison, so the caller can set it aside (quarantine, not delete) and go on.
A broker outage does not count: those connections never reach CONNACK.
"""

from __future__ import annotations

import time
from typing import Iterable


class PoisonGuard:
    def __init__(self, strikes: int = 3, quick_s: float = 5.0) -> None:
        self.strikes = strikes
        self.quick_s = quick_s
        self.suspect: int | None = None
        self._count = 0
        self._connected_at = 0.0

    @property
    def isolating(self) -> bool:
        """Send the suspect alone (window of one) on this connection."""
        return self.suspect is not None and self._count >= self.strikes

    def connected(self, now: float | None = None) -> None:
        self._connected_at = time.monotonic() if now is None else now

    def acked(self, row: int) -> None:
        if row == self.suspect:
            self.suspect, self._count = None, 0

    def dropped(self, inflight: Iterable[int], now: float | None = None) -> int | None:
        """The connection died with these rows unacknowledged; returns a row to quarantine, or None."""
        now = time.monotonic() if now is None else now
        rows = list(inflight)
        if not rows or now - self._connected_at > self.quick_s:
            self.suspect, self._count = None, 0
            return None
        oldest = min(rows)
        if oldest != self.suspect:
            self.suspect, self._count = oldest, 1
            return None
        if self.isolating and rows == [oldest]:
            self.suspect, self._count = None, 0
            return oldest
        self._count += 1
        return None
