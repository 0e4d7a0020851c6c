"""The job's life inside the Marlin driver, on its reader thread: taking lines
from the job, finishing only when the end is proven, pausing (drain, park,
record the position with M114), resuming, cancelling into a safe state, and
failing for good (controller reset, kill, silence) so that nothing more is
ever sent.

Cancel (as OctoPrint and Prusa's firmware do it): job lines stop at once
(between whole lines, so the numbered window stays exact); a numbered M108
goes out ahead of the window, because Marlin's emergency parser must see it
while the firmware sits in an M109/M190 wait with every buffer full; then the
cancel G-code (heaters and fan off by default, no moves) goes through the
window like any host command, and JobCancelled is reported once all of it is
acknowledged.

A mixin of MarlinDriver: it works on the driver's window and queues and is
never used on its own.
"""

from __future__ import annotations

import threading
from typing import Callable

from drivers import marlin_protocol as proto
from drivers.base import DriverEvent, FirmwareMessage, JobCancelled, JobFailed, JobFinished, Paused, Resumed
from drivers.marlin_window import Entry

# What a cancel leaves the printer in: hotend, bed and part fan off; nothing moves (no homing, no park).
DEFAULT_CANCEL_GCODE = ("M104 S0", "M140 S0", "M107")
BREAK_WAIT = b"M108"         # Marlin's emergency parser: ends an M109/M190 (or M0) wait as its bytes arrive
MAX_WAIT_BREAKS = 8          # M108s per cancel: one at once, more on `busy:` (a queued M109 may start later)


class Waiter:
    """A send_command caller (or an internal step) waiting for its line's `ok`."""

    def __init__(self, on_done: Callable[["Waiter"], None] | None = None) -> None:
        self.done = threading.Event()
        self.replies: list[str] = []
        self.error = ""
        self.on_done = on_done

    def finish(self, error: str = "") -> None:
        if self.done.is_set():
            return
        self.error = error
        self.done.set()
        if self.on_done:
            self.on_done(self)


class MarlinJob:
    """Job state machine: idle -> running -> (pausing -> parking -> paused -> running) -> idle."""

    def _on_action(self, action: str) -> None:
        self._emit(FirmwareMessage("//action:" + action))
        word = action.split()[0].lower() if action else ""
        if word == "pause":
            self._do_pause("firmware: //action:pause", park=True)
        elif word == "paused":
            self._do_pause("firmware: //action:paused", park=False)
        elif word in ("resume", "resumed"):
            self._do_resume(restore=word == "resume")
        elif word == "cancel":
            self._do_cancel()

    def _next_job_line(self) -> Entry | None:
        for line_no, raw in self._job:
            payload = clean(raw)
            if payload:
                return Entry(payload, file_line=int(line_no))
        self._job_exhausted = True
        self._job_last_n = self.win.next_n - 1
        return None

    # ---- the job's life ------------------------------------------------------------------------
    def _begin_job(self, lines) -> None:
        if self._dead:
            self._busy = False
            return
        self._job = lines
        self._job_state = "running"
        self._job_exhausted = False
        self._job_acked = 0
        self._job_last_line = 0
        self._finish_probe = None

    def _check_job_progress(self) -> None:
        win, state = self.win, self._job_state
        if state == "running" and self._job_exhausted and win.acked_n >= self._job_last_n and not win.resending:
            if self.advanced_ok:
                return self._end_job(JobFinished(lines=self._job_acked))
            if self._finish_probe is None:            # plain `ok`s can double: prove the end with M105's `ok T:`
                self._finish_probe = Entry(b"M105", sync=True)
                self._hostq.append(self._finish_probe)
                self._pump()
            elif self._finish_probe.n > 0 and win.acked_n >= self._finish_probe.n:
                self._end_job(JobFinished(lines=self._job_acked))
        elif state == "pausing" and not win.inflight and not win.resending and not self._hostq:
            self._job_state = "parking"
            step = Waiter(on_done=lambda w: self._parked())
            for g in self.park_gcode:
                self._hostq.append(Entry(g))
            self._hostq.append(Entry(b"M114", waiter=step))
            self._pump()
        elif state == "cancelling" and not win.resending and not self._job_inflight():
            if not self._cancel_queued:                # every job line is in: the cancel G-code goes last
                self._cancel_queued = True
                self._hostq.extend(Entry(g) for g in self.cancel_gcode)
                self._pump()
            elif not win.inflight and not self._hostq and self._fresh is None:
                self._end_job(JobCancelled(last_acked_line=self._job_last_line))

    def _job_inflight(self) -> bool:
        return any(e.file_line is not None for e in self.win.inflight)

    def _parked(self) -> None:
        if self._job_state == "parking" and not self._dead:
            self._job_state = "paused"
            self._emit(Paused(reason=self._pause_reason, position=self._position))

    def _do_pause(self, reason: str, park: bool) -> None:
        if self._job_state != "running":
            return
        self._pause_reason = reason
        if park:
            self._job_state = "pausing"
            self._check_job_progress()
        else:
            self._job_state = "paused"
            self._emit(Paused(reason=reason))

    def _do_resume(self, restore: bool = True) -> None:
        if self._job_state not in ("paused", "pausing", "parking"):
            return
        if restore and self._job_state != "pausing":
            for g in self.restore_gcode:
                self._hostq.append(Entry(g))
        self._job_state = "running"
        self._emit(Resumed())

    def _do_cancel(self) -> None:
        if self._job_state in ("idle", "cancelling") or self._dead:
            return
        self._job_state = "cancelling"
        self._fresh = None if (self._fresh and self._fresh.file_line is not None) else self._fresh
        self._cancel_queued = False
        self._wait_breaks = 0
        self._break_wait()
        self._pump()

    def _break_wait(self) -> None:
        """Send a numbered M108 now, past the window: a firmware blocked in a heat wait reads no
        serial, so a windowed line would wait for the heat-up it is meant to end. Its bytes reach
        the emergency parser even when RX is full; a part RX drops is re-sent on Marlin's Resend."""
        win = self.win
        if self._dead or self._ser is None or self._wait_breaks >= MAX_WAIT_BREAKS:
            return
        self._wait_breaks += 1
        self._break_acked = win.acked_n
        self.stats["wait_breaks"] += 1
        if win.resending or self._settle_until:
            self._hostq.appendleft(Entry(BREAK_WAIT))     # a rewind is under way: numbers must stay in order
            return
        entry = win.number(Entry(BREAK_WAIT), proto.frame(win.next_n, BREAK_WAIT))
        self._write(entry.wire)
        win.sent(entry)
        self.stats["lines_sent"] += 1

    def _on_busy(self) -> None:
        """`busy:` while job lines are still in the firmware after a cancel: if it moved on since the
        last M108 (a queued M109 started after it), break the new wait too; a long G4 or G28 that
        merely goes on asks for nothing more."""
        if self._job_state == "cancelling" and self._job_inflight() and self.win.acked_n > self._break_acked:
            self._break_wait()

    def _end_job(self, event: DriverEvent) -> None:
        self._job_state = "idle"
        self._job = None
        self._busy = False
        self._emit(event)

    def _fail(self, reason: str) -> None:
        """The printer can no longer be trusted with this job: send nothing more, say why once."""
        if self._dead:
            return
        self._dead = reason
        self._settle_until = 0.0
        for e in list(self.win.inflight) + list(self._hostq) + ([self._fresh] if self._fresh else []):
            if isinstance(e.waiter, Waiter) and not e.waiter.done.is_set():
                e.waiter.finish(reason)
        self._hostq.clear()
        self._fresh = None
        if self._job_state != "idle":
            self._end_job(JobFailed(reason=reason, last_acked_line=self._job_last_line))
        else:
            self._emit(FirmwareMessage(reason))


def clean(raw: bytes) -> bytes:
    """What is sent of a file line: no comment, no surrounding blanks (blank -> nothing)."""
    semi = raw.find(b";")
    if semi >= 0:
        raw = raw[:semi]
    return raw.strip()
