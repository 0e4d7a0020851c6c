"""The host's model of what Marlin holds: numbered lines in flight, the history
they can be re-sent from, and how many more may go out now.

Exactly-once rests on Marlin itself: it accepts line N only right after N-1,
so a numbered line can never run twice and never be skipped. Marlin's gaps are
lines that arrive *without* a valid `N` (it runs them unchecked): fragments
of lines cut by its post-error RX drain (below), and a line whose `N` a bit
error turned into something else (the driver renumbers with M110 instead of
re-sending it). Its 8-bit XOR checksum cannot see two flips of the same bit in
one line; no host can, so a link that noisy is beyond any protocol fix.
This module only decides
*how many* lines to keep in flight (enough to keep the wire busy and the
planner fed, never more than the firmware's buffers hold) and keeps the
bookkeeping of which numbers are acknowledged.

Window: every line in flight but the oldest may sit as raw bytes in the RX
buffer (Marlin reads serial only between commands, into BUFSIZE command
slots, leaving the rest in RX), so the bytes in flight behind the oldest line
must fit in RX; the line count is capped at the slots (learnt from
ADVANCED_OK's B, else configured) plus what RX can hold. Without ADVANCED_OK
an `ok` names no line, so a doubled one cannot be told apart: a margin of RX
is kept free for it.

After any line error or accounting anomaly the window closes to one line at a
time until `clean_lines` more lines have gone through cleanly (and for good
after repeated errors): a USB link is clean, a noisy one is not worth the risk.
Lines queued behind a rejected one are what Marlin's post-error RX drain cuts
into fragments, and a fragment without its line number is executed as it is;
with one line in flight there is nothing behind it to cut.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class Entry:
    """One command as the host numbered it."""
    payload: bytes                      # command without framing
    file_line: int | None = None        # job file line (1-based), None for host commands
    waiter: object | None = None        # a pending send_command / internal callback
    sync: bool = False                  # an M105 probe whose `ok T:` proves every earlier line arrived
    wire: bytes = b""                   # framed bytes as sent
    n: int = -1


@dataclass
class Window:
    rx_buffer: int = 128
    slots: int = 4
    history_size: int = 512
    clean_lines: int = 200              # one line at a time until this many lines went through cleanly
    margin: int = 0                     # RX bytes kept free (no ADVANCED_OK: for a doubled ok)
    repeated_errors: int = 3            # this many error episodes within `repeat_span` numbers...
    repeat_span: int = 200              # ...and the rest of the job goes one line at a time
    history: dict[int, Entry] = field(default_factory=dict)
    inflight: collections.deque = field(default_factory=collections.deque)   # Entry, send order
    inflight_bytes: int = 0
    next_n: int = 1                     # number the next fresh command gets
    send_n: int = 1                     # number transmitted next (< next_n while re-sending)
    acked_n: int = 0                    # every line up to here is accepted by the firmware
    learned_slots: int = 0              # from ADVANCED_OK B (B + 1 at idle)
    one_line_until: int = 0             # one line in flight until this number is acknowledged
    one_line_forever: bool = False
    _errors: collections.deque = field(default_factory=lambda: collections.deque(maxlen=8))

    def reset_numbering(self, first: int) -> None:
        """After `M110 N<first-1>`: forget everything in flight."""
        self.history.clear()
        self.inflight.clear()
        self.inflight_bytes = 0
        self.next_n = self.send_n = first
        self.acked_n = first - 1
        self.one_line_until = 0

    # ---- how much may go out -------------------------------------------------
    @property
    def line_limit(self) -> int:
        if self.one_line_forever or self.acked_n < self.one_line_until:
            return 1
        return self.max_line_limit

    @property
    def max_line_limit(self) -> int:
        """The widest the window can open."""
        return max(1, self.learned_slots or self.slots) + self.rx_buffer // 16

    def may_send(self, nbytes: int) -> bool:
        if not self.inflight:
            return True
        behind_oldest = self.inflight_bytes - len(self.inflight[0].wire) + nbytes
        return len(self.inflight) < self.line_limit and behind_oldest <= self.rx_buffer - 1 - self.margin

    def anomaly(self) -> None:
        """Something did not add up (a stray ok, a silence): one line at a time for a while."""
        self.one_line_until = max(self.one_line_until, self.acked_n + self.clean_lines)

    @property
    def resending(self) -> bool:
        return self.send_n < self.next_n

    def number(self, entry: Entry, framed: bytes) -> Entry:
        """Give a fresh command the next number and keep it for re-sending."""
        entry.n, entry.wire = self.next_n, framed
        self.history[entry.n] = entry
        self.next_n += 1
        stale = entry.n - self.history_size
        if stale in self.history:
            del self.history[stale]
        return entry

    def sent(self, entry: Entry) -> None:
        self.inflight.append(entry)
        self.inflight_bytes += len(entry.wire)
        self.send_n = entry.n + 1

    # ---- acknowledgements ----------------------------------------------------
    def ack_through(self, n: int) -> list[Entry]:
        """The firmware has accepted every line up to `n`: returns the newly acknowledged entries."""
        n = min(n, self.send_n - 1)
        done = [self.history[k] for k in range(self.acked_n + 1, n + 1) if k in self.history]
        if n > self.acked_n:
            self.acked_n = n
        while self.inflight and self.inflight[0].n <= self.acked_n:
            self.inflight_bytes -= len(self.inflight.popleft().wire)
        return done

    def oldest_inflight(self) -> Entry | None:
        return self.inflight[0] if self.inflight else None

    def learn(self, slots_free: int | None) -> None:
        if slots_free is not None:
            self.learned_slots = max(self.learned_slots, slots_free + 1)

    # ---- errors ----------------------------------------------------------------
    def rewind(self, n: int) -> int:
        """Marlin asked for line n: drop what was sent from n on (it will be rejected);
        returns how many bytes of those may still be on the wire."""
        ghosts = 0
        keep = collections.deque()
        for e in self.inflight:
            if e.n >= n:
                ghosts += len(e.wire)
            else:
                keep.append(e)
        self.inflight = keep
        self.inflight_bytes = sum(len(e.wire) for e in keep)
        self.send_n = n
        if n <= self.acked_n:                   # we counted it acknowledged (a doubled `ok`): it was not
            self.acked_n = n - 1
        self._errors.append(n)
        self.one_line_until = max(self.one_line_until, n + self.clean_lines)
        recent = [e for e in self._errors if e > n - self.repeat_span]
        if len(recent) >= self.repeated_errors:
            self.one_line_forever = True
        return ghosts
