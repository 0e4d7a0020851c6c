"""The GRBL driver's job half: character-counted streaming, EEPROM lines alone, the end of a job.

A mixin of GrblDriver (drivers/grbl.py owns the port, the reader and the
operator calls). One thread per job runs `_stream`: it sends the next lines
while their bytes fit what GRBL has not yet answered, lines that write EEPROM
or need Idle only when nothing else is in flight, and reports exactly one of
JobFinished / JobFailed / JobCancelled at the end.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from drivers.base import DriverError, JobCancelled, JobFailed, JobFinished, JobLines
from drivers.grbl_wire import REALTIME_IN_TEXT, RT_HOLD, RT_RESET, RT_STATUS, compact, needs_idle, writes_eeprom


@dataclass
class InFlight:
    """A line GRBL has not answered yet: its bytes still occupy GRBL's receive buffer."""
    line: int                      # file line (0 for commands outside a job)
    data: bytes                    # without the newline
    resent: bool = False
    reply: list[str] | None = None  # collects the answer of send_command
    done: threading.Event | None = None
    error: int = 0

    @property
    def size(self) -> int:
        return len(self.data) + 1


@dataclass
class JobState:
    lines: JobLines
    ahead: collections.deque = field(default_factory=collections.deque)  # (line, data, resent) next to send
    acked: int = 0
    last_acked: int = 0
    outcome: str = ""              # "" running | "finished" | "failed" | "cancelled"
    reason: str = ""
    halt: bool = False             # stop the machine (feed hold + reset) before reporting
    paused: str = ""               # reason while paused
    resumed_at: float = 0.0        # status reports asked for before a resume may still show Hold/Door


class JobStreaming:
    """Job streaming for GrblDriver; relies on its _cond, _inflight, _write, _emit and status."""

    def start_job(self, lines: JobLines, total_lines: int | None = None) -> None:
        with self._cond:
            if self._job is not None and not self._job.outcome:
                raise DriverError("a job is already streaming")
            if self._ser is None:
                raise DriverError("the port is not open")
            if self.status is not None and self.status.state == "Alarm":
                raise DriverError("the controller is in alarm: check the machine, then unlock it ($X) or home "
                                  "it ($H) before starting a job")
            self._job = JobState(iter(lines))
            self._job_thread = threading.Thread(target=self._stream, args=(self._job,), name="grbl-stream",
                                                daemon=True)
            self._job_thread.start()

    def _finish(self, job: JobState, outcome: str, reason: str = "", halt: bool = False) -> None:
        """Mark the job's end (under self._cond); the streaming thread reports it."""
        if not job.outcome:
            job.outcome, job.reason, job.halt = outcome, reason, halt
            self._cond.notify_all()

    def _next(self, job: JobState) -> tuple[int, bytes, bool] | None:
        if not job.ahead:
            item = next(job.lines, None)             # type: ignore[call-overload]
            if item is None:
                return None
            job.ahead.append((item[0], compact(item[1]), False))
        return job.ahead[0]

    def _stream(self, job: JobState) -> None:
        try:
            self._stream_lines(job)
        except DriverError as exc:
            with self._cond:
                self._finish(job, "failed", str(exc))
        self._report_end(job)

    def _unsendable(self, line: int, data: bytes) -> str:
        bad = [b for b in data if b in REALTIME_IN_TEXT or b < 0x20]
        if bad:
            return f"line {line} contains byte 0x{bad[0]:02x}, which GRBL takes as a real-time command"
        if len(data) + 1 > self.rx_size:
            return f"line {line} is {len(data) + 1} bytes, more than the controller's {self.rx_size}-byte buffer"
        return ""

    def _stream_lines(self, job: JobState) -> None:
        c = self._cond
        while True:
            with c:
                item = self._next(job)
                if item is None:
                    break
                line, data, resent = item
                problem = self._unsendable(line, data)
                if problem:
                    self._finish(job, "failed", problem)
                    return
                alone = writes_eeprom(data) or needs_idle(data)
                c.wait_for(lambda: job.outcome or (not job.paused and (
                    not self._inflight if alone else self._inflight_bytes + len(data) + 1 <= self.rx_size)))
                if job.outcome:
                    return
                if job.ahead[0] != item:
                    continue                                 # a re-send jumped the queue meanwhile
            if needs_idle(data) and not self._wait_idle(job):
                return
            with c:
                if job.outcome or job.paused or job.ahead[0] != item:
                    continue
                batch = [InFlight(*job.ahead.popleft())]
                if not alone:
                    self._fill(job, batch)
                self._send_batch(batch)
                if alone:                                   # nothing may follow until GRBL has written EEPROM
                    c.wait_for(lambda: job.outcome or not self._inflight)
        with c:                                             # all sent: wait for the answers, then for Idle
            c.wait_for(lambda: job.outcome or (not self._inflight and not job.ahead))
            if job.ahead and not job.outcome:
                return self._stream_lines(job)               # a last line came back for re-sending
        self._wait_idle(job)
        with c:
            self._finish(job, "finished")

    def _fill(self, job: JobState, batch: list[InFlight]) -> None:
        """Add the following plain lines that also fit, so one write carries them all."""
        room = self.rx_size - self._inflight_bytes - batch[0].size
        while True:
            nxt = self._next(job)
            if nxt is None or len(nxt[1]) + 1 > room or self._unsendable(nxt[0], nxt[1]) \
                    or writes_eeprom(nxt[1]) or needs_idle(nxt[1]):
                return
            batch.append(InFlight(*job.ahead.popleft()))
            room -= batch[-1].size

    def _send_batch(self, batch: list[InFlight]) -> None:
        """Register then write lines (under self._cond): their bytes count until GRBL answers each."""
        for sent in batch:
            self._inflight.append(sent)
            self._inflight_bytes += sent.size
        self.max_inflight_bytes = max(self.max_inflight_bytes, self._inflight_bytes)
        self._write(b"".join(sent.data + b"\n" for sent in batch))

    def _wait_idle(self, job: JobState) -> bool:
        """Wait until GRBL reports Idle (planner drained); False if the job ended meanwhile. One status
        request of its own (an answer newer than the last ok), then the poller's, at status_hz."""
        self._write(RT_STATUS)
        with self._cond:
            seq = self.status_seq
            while True:
                self._cond.wait_for(lambda: job.outcome or self.status_seq > seq, 1.0 + self.status_interval)
                if job.outcome:
                    return False
                if self.status_seq > seq and self.status is not None and self.status.state == "Idle" \
                        and not job.paused:
                    return True
                seq = self.status_seq

    def _report_end(self, job: JobState) -> None:
        if job.halt:
            self._halt()
        if job.outcome == "finished":
            self._emit(JobFinished(job.acked))
        elif job.outcome == "cancelled":
            self._emit(JobCancelled(job.last_acked))
        else:
            self._emit(JobFailed(job.reason, job.last_acked))

    def _halt(self) -> None:
        """Feed hold, wait until motion stopped (position kept), then soft reset to flush the planner."""
        try:
            self._write(RT_HOLD)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and self._open:
                with self._cond:
                    seq = self.status_seq
                self._write(RT_STATUS)
                with self._cond:
                    self._cond.wait_for(lambda: self.status_seq > seq, 0.2)
                    st = self.status.state if self.status else ""
                if st in ("Hold:0", "Idle", "Alarm") or st.startswith("Door:"):
                    break
            with self._cond:
                self._expect_banner = True
            self._write(RT_RESET)
        except DriverError:
            pass
