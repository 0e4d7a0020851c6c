"""The virtual GRBL's serial wire: bytes paced at the baud rate in both directions.

A mixin of VirtualGrbl. A pty moves bytes instantly; a UART moves one byte per
10 bit-times. What the host writes is read at once but handed to the firmware
only when it would have arrived (a backlog keeps the wire busy, so the
simulator's own scheduling delays are not charged to the link); what the
firmware says leaves after `reply_latency` and at wire pace.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import termios
import time

OUT_LIMIT = 4096             # reply lines waiting to go out


class PacedLink:
    """`_emit` (queue reply lines), `_write_loop` and `_read_loop` threads; `_receive` is the firmware's."""

    # ---- output ----------------------------------------------------------------------------
    def _emit(self, gen: int, *lines: str) -> None:
        """Queue reply lines unless a reset happened since the request (gen) arrived."""
        if gen != self._gen or self.hung:
            return
        data = "".join(f"{ln}\r\n" for ln in lines).encode("ascii")
        with self._out_cond:
            if len(self._out) >= OUT_LIMIT:               # a host that never reads: drop the oldest, stay bounded
                self._out.popleft()
            self._out.append((time.monotonic() + self.reply_latency, data))
            self._out_cond.notify()

    def _write_loop(self) -> None:
        tx_clock = 0.0
        while self._running:
            with self._out_cond:
                while self._running and not self._out:
                    self._out_cond.wait(0.1)
                if not self._running:
                    return
                due = self._out[0][0]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self._out_cond:
                now = time.monotonic()
                chunk = []
                while self._out and self._out[0][0] <= now:
                    chunk.append(self._out.popleft()[1])
            data = b"".join(chunk)
            if not data:
                continue
            try:
                os.write(self.master, data)
            except OSError:
                return
            tx_clock = max(tx_clock, time.monotonic()) + len(data) * self.byte_time
            pause = tx_clock - time.monotonic()
            if pause > 0.0005:
                time.sleep(pause)

    # ---- input: baud pacing, receive buffer, real-time bytes -----------------------------------
    def _read_loop(self) -> None:
        backlog = False       # bytes were still waiting after the last read: the wire never paused
        pending = array.array("i", [0])
        while self._running:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.master, 32)
                fcntl.ioctl(self.master, termios.FIONREAD, pending)
            except OSError:
                return
            now = time.monotonic()
            start = self._rx_clock if backlog else max(self._rx_clock, now)
            backlog = pending[0] > 0
            self._rx_clock = start + len(data) * self.byte_time
            delay = self._rx_clock - time.monotonic()
            if delay > 0.0002:
                time.sleep(delay)
            with self._lock:
                self._receive(data)
