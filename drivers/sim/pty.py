"""The virtual firmware's end of a serial link: a pseudo-terminal whose bytes
travel at the configured baud rate.

A pty moves bytes instantly; a real UART moves one byte per 10 bit-times. The
firmware simulators (Marlin, GRBL) own the master side through `PacedPty`: what
the host writes is read at once but *arrives* byte by byte at wire pace
(`arrived(now)`), and what the firmware says leaves at wire pace after an
optional reply latency (`send`, `pump`). The simulators run one loop that
sleeps in `wait(deadline)` until the host writes or the next timed thing is due.

The slave side stays open in the simulator too, so a host that closes and
reopens the port (an agent restart) finds the same running firmware and the
master never sees a hang-up.
"""

from __future__ import annotations

import collections
import errno
import os
import select
import time
import tty

OUTPUT_LIMIT = 64 * 1024     # bytes the firmware may have waiting to go out before old ones are dropped


class WireQueue:
    """Bytes queued on one direction of the wire, each with the time it completes transmission."""

    def __init__(self, baud: int) -> None:
        self.byte_time = 10.0 / baud
        self._chunks: collections.deque[list] = collections.deque()   # [start_time, bytes, taken]
        self._free_at = 0.0
        self.pending = 0

    def put(self, data: bytes, now: float) -> None:
        start = max(now, self._free_at)
        self._free_at = start + len(data) * self.byte_time
        self._chunks.append([start, data, 0])
        self.pending += len(data)

    def due(self, now: float, upto: bytes | None = None) -> bytes:
        """The bytes whose last bit has arrived by `now`, in order; with `upto`, stop after
        the first such byte (so a firmware can act on each line before the next arrives)."""
        out = []
        while self._chunks:
            chunk = self._chunks[0]
            start, data, taken = chunk
            n = min(len(data), int((now - start) / self.byte_time + 1e-9))
            if upto is not None and n > taken:
                idx = data.find(upto, taken, n)
                if idx >= 0:
                    n = idx + 1
                    out.append(data[taken:n])
                    self.pending -= n - taken
                    chunk[2] = n
                    if n == len(data):
                        self._chunks.popleft()
                    break
            if n > taken:
                out.append(data[taken:n])
                self.pending -= n - taken
                chunk[2] = n
            if n < len(data):
                break
            self._chunks.popleft()
        return b"".join(out)

    def next_due(self) -> float | None:
        """When the next byte completes, or None if nothing is queued."""
        if not self._chunks:
            return None
        start, _data, taken = self._chunks[0]
        return start + (taken + 1) * self.byte_time

    def next_line_due(self, coarse_s: float = 0.005) -> float | None:
        """When the next end of line completes (bytes without one: `coarse_s` after the next byte).

        Waking once per line instead of once per byte keeps the simulator cheap;
        a firmware only acts on whole lines anyway (the emergency parser too).
        """
        for start, data, taken in self._chunks:
            for eol in (b"\n", b"\r"):
                idx = data.find(eol, taken)
                if idx >= 0:
                    return start + (idx + 1) * self.byte_time
        first = self.next_due()
        return None if first is None else first + coarse_s

    def clear(self) -> None:
        self._chunks.clear()
        self.pending = 0


class PacedPty:
    """Master side of a pty with baud-rate pacing in both directions and reply latency."""

    def __init__(self, baud: int = 115200, latency_s: float = 0.0) -> None:
        self.baud = baud
        self.latency_s = latency_s
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.inbound = WireQueue(baud)      # host -> firmware
        self.outbound = WireQueue(baud)     # firmware -> host
        self._unwritten = bytearray()       # due but not yet accepted by the pty
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def slave_fd(self) -> int:
        """The simulator's own descriptor of the host's side (to inspect its termios flags)."""
        return self._slave

    # ---- host -> firmware ------------------------------------------------------
    def receive(self, now: float) -> None:
        """Take what the host has written so far onto the inbound wire."""
        while True:
            try:
                data = os.read(self.master, 4096)
            except BlockingIOError:
                return
            except OSError as exc:          # EIO: no slave open (cannot happen while we hold one)
                if exc.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            self.bytes_in += len(data)
            self.inbound.put(data, now)

    def arrived(self, now: float, upto: bytes | None = None) -> bytes:
        """Bytes that have fully arrived at the firmware's UART by `now` (with `upto`: only
        up to and including the first such byte, e.g. b"\n" for one line at a time)."""
        return self.inbound.due(now, upto)

    # ---- firmware -> host ------------------------------------------------------
    def send(self, data: bytes, now: float, latency: bool = True) -> None:
        """Queue a reply; it starts after the reply latency and leaves at wire pace."""
        if self.outbound.pending + len(self._unwritten) > OUTPUT_LIMIT:
            return                          # nobody is reading: a real UART would lose it too
        self.outbound.put(data, now + (self.latency_s if latency else 0.0))

    def pump(self, now: float) -> None:
        """Hand the pty every outbound byte that has finished transmission."""
        self._unwritten += self.outbound.due(now)
        if self._unwritten:
            try:
                n = os.write(self.master, self._unwritten)
                self.bytes_out += n
                del self._unwritten[:n]
            except BlockingIOError:
                if len(self._unwritten) > OUTPUT_LIMIT:
                    del self._unwritten[:len(self._unwritten) - OUTPUT_LIMIT]

    def next_event(self) -> float | None:
        """The earliest time a byte arrives or leaves."""
        times = [t for t in (self.inbound.next_line_due(), self.outbound.next_line_due()) if t is not None]
        if self._unwritten:
            times.append(time.monotonic() + 0.002)
        return min(times) if times else None

    def discard_io(self) -> None:
        """Forget everything on the wire in both directions (a board reset)."""
        self.inbound.clear()
        self.outbound.clear()
        self._unwritten.clear()

    def wait(self, deadline: float | None, wake_fd: int | None = None) -> None:
        """Sleep until the host writes, `wake_fd` is readable, or `deadline` (monotonic) passes."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        fds = [self.master] + ([wake_fd] if wake_fd is not None else [])
        select.select(fds, [], [], timeout)

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
