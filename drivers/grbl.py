"""GRBL host driver: character counting over pyserial, real-time control, safety.

GRBL has no line numbers, checksums or resend. The host keeps its receive
buffer full by counting the bytes of every line not yet answered (`ok` or
`error:N`) and sending the next line only while the sum fits the buffer size
GRBL reports (`$I` OPT, `Bf`), else `rx_buffer` from the config. Real-time
bytes (`?`, `!`, `~`, 0x18) bypass the buffer and are written at once, so
STOP is never behind the stream. Every refusal or alarm ends in a Paused or
JobFailed event carrying GRBL's own sentence; nothing continues "anyway".

A line answered `error:N` is never skipped silently (`line_error_policy`):
`stop` (the default) fails the job: the reader writes feed hold the moment the
error arrives (laser off: GRBL's laser mode cuts power while held), then soft
reset flushes what GRBL had queued behind the lost line. Those moves wait behind
the planner's blocks, so the hold lands first; only a planner drained faster
than the wire fills it could run one in the milliseconds before the hold.
`resend` is an explicit opt-in that REORDERS the path: GRBL has already
queued the lines sent after the lost one, so they run first and the re-sent
line runs after them (a move fired out of order, laser on); the FirmwareMessage
says how many lines it jumps. Refused again, the job fails.

The port is opened exclusively (a second program, `fabedge doctor` included,
cannot write into a running stream) and DTR is left as the OS opened it: with
HUPCL cleared it stays up across restarts, so an Arduino GRBL is never reset by
the host coming back.

Threads: a reader (parses every reply and posts events), a status poller
(`?` at `status_hz`) and one streaming thread per job.
"""

from __future__ import annotations

import collections
import termios
import threading
import time

import serial

from drivers.base import (Connected, Disconnected, DriverError, DriverEvent, EventSink, FirmwareMessage, LineAcked,
                          MachineDriver, MachineStatus, Paused, Resumed)
from drivers.grbl_codes import alarm_sentence, error_sentence
from drivers.grbl_stream import InFlight, JobStreaming, JobState
from drivers.grbl_wire import (RT_CYCLE_START, RT_HOLD, RT_RESET, RT_STATUS, Status, compact, is_banner,
                               parse_build_info, parse_status)

RESUME_GRACE_S = 0.25        # a Hold/Door report this soon after cycle start answers an older '?'


class GrblDriver(JobStreaming, MachineDriver):
    """A GRBL 1.1 / grblHAL controller. Options: rx_buffer, status_hz, line_error_policy, timeout_s."""

    def __init__(self, port: str, baud: int, on_event: EventSink, *, rx_buffer: int = 128,
                 status_hz: float = 5.0, line_error_policy: str = "stop", timeout_s: float = 10.0,
                 **_other: object):
        if line_error_policy not in ("resend", "stop"):
            raise DriverError(f"line_error_policy {line_error_policy!r}: use 'stop' (safe) or 'resend' "
                              "(re-sends a lost line after those GRBL already queued: out of order)")
        self.port, self.baud, self._on_event = port, baud, on_event
        self.rx_size = max(16, rx_buffer - 1)          # GRBL keeps one byte of RX_BUFFER_SIZE free
        self.status_interval = 1.0 / max(0.2, status_hz)
        self.policy = line_error_policy
        self.timeout_s = timeout_s
        self.status: Status | None = None
        self.status_seq = 0
        self._ser: serial.Serial | None = None
        self._wlock = threading.Lock()
        self._cond = threading.Condition(threading.RLock())
        self._cmd_lock = threading.Lock()
        self._inflight: collections.deque[InFlight] = collections.deque()
        self._inflight_bytes = 0
        self._job: JobState | None = None
        self._job_thread: threading.Thread | None = None
        self._expect_banner = False
        self._open = False
        self._last_rx = time.monotonic()
        self._threads: list[threading.Thread] = []
        self.max_inflight_bytes = 0                    # for tests and benchmarks

    # ---- port ------------------------------------------------------------------------------
    def open(self, timeout: float = 10.0) -> Connected:
        ser = serial.Serial()
        ser.port, ser.baudrate, ser.timeout, ser.write_timeout = self.port, self.baud, 0.05, 5.0
        ser.exclusive = True            # nobody else (doctor, a second agent) may write into a running stream
        try:                            # DTR stays as opened: a low-then-high DTR resets an Arduino GRBL
            ser.open()
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"cannot open {self.port}: {exc} (is another program, e.g. a second fabedge "
                              "or `fabedge doctor`, using the port?)") from None
        try:
            attrs = termios.tcgetattr(ser.fileno())
            attrs[2] &= ~termios.HUPCL                  # closing must not drop DTR (a reset on next open)
            termios.tcsetattr(ser.fileno(), termios.TCSANOW, attrs)
        except termios.error as exc:
            ser.close()
            raise DriverError(f"cannot configure {self.port}: {exc}") from None
        self._ser, self._open, self._last_rx = ser, True, time.monotonic()
        for name, target in (("reader", self._read_loop), ("status", self._poll_loop)):
            t = threading.Thread(target=target, name=f"grbl-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + timeout
        info: dict[str, object] = {}
        for attempt in range(3):                        # a boot banner racing the first $I flushes it: ask again
            try:
                info = parse_build_info(self.send_command("$I", timeout=max(0.1, deadline - time.monotonic())))
                break
            except DriverError as exc:
                if "controller reset" in str(exc) and attempt < 2:
                    continue
                if "error:" not in str(exc):            # a busy controller answers error:8; silence is fatal
                    self.close()
                    raise DriverError(f"no answer from a GRBL controller on {self.port} "
                                      f"within {timeout:.0f} s") from None
                break
        if isinstance(info.get("rx_buffer"), int):
            self.rx_size = int(info["rx_buffer"]) - 1
        self._write(RT_STATUS)
        while self.status is None and time.monotonic() < deadline:
            with self._cond:
                self._cond.wait(0.05)
        info["rx_buffer"] = self.rx_size + 1
        return self._emit(Connected(f"Grbl {info.get('version', '?')}", info))  # type: ignore[return-value]

    def close(self) -> None:
        with self._cond:
            if self._job and not self._job.outcome:      # a half-streamed job must not keep cutting
                self._write(RT_HOLD)
                self._finish(self._job, "cancelled", "port closed", halt=True)
        job_thread = self._job_thread
        if job_thread is not None and job_thread is not threading.current_thread():
            job_thread.join(timeout=5)                  # let it stop the machine and report
        self._open = False
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads.clear()
        if self._ser is not None:
            self._ser.close()
            self._ser = None

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._job is not None and not self._job.outcome

    # ---- writing -------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        ser = self._ser
        if ser is None:
            raise DriverError("the port is closed")
        with self._wlock:
            try:
                ser.write(data)
            except (serial.SerialException, OSError) as exc:
                raise DriverError(f"writing to {self.port} failed: {exc}") from None

    def _emit(self, event: DriverEvent) -> DriverEvent:
        try:
            self._on_event(event)
        except Exception as exc:  # a broken receiver must not kill the reader thread
            print(f"grbl driver: event receiver failed on {event!r}: {exc}")
        return event

    # ---- commands outside a job ---------------------------------------------------------------------
    def send_command(self, line: str, timeout: float = 10.0) -> list[str]:
        """Send one line and return GRBL's answer lines (without the `ok`); error:N raises DriverError."""
        data = compact(line.encode("ascii"))
        with self._cmd_lock:
            sent = InFlight(0, data, reply=[], done=threading.Event())
            with self._cond:
                if self._job is not None and not self._job.outcome:
                    raise DriverError(f"{line!r}: a job is streaming; commands wait until it ends")
                if not self._cond.wait_for(lambda: not self._inflight, timeout):
                    raise DriverError(f"{line!r}: the controller did not drain its buffer")
                self._send_batch([sent])
            if not sent.done.wait(timeout):
                with self._cond:
                    if sent in self._inflight:
                        self._inflight.remove(sent)
                        self._inflight_bytes -= sent.size
                raise DriverError(f"{line!r}: no answer from the controller within {timeout:.0f} s")
            if sent.error:
                raise DriverError(f"{line!r}: {error_sentence(sent.error) if sent.error > 0 else 'controller reset'}")
            return list(sent.reply or [])

    # ---- the reader ------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        buf = b""
        while self._open and self._ser is not None:
            try:
                chunk = self._ser.read(self._ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                if self._open:
                    self._lost(f"serial port failed: {exc}")
                return
            if not chunk:
                continue
            self._last_rx = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode("ascii", "replace").strip()
                if text:
                    self._handle(text)

    def _handle(self, text: str) -> None:
        if text == "ok":
            self._reply(0)
        elif text.startswith("error:"):
            self._reply(int(text[6:]) if text[6:].isdigit() else 999)
        elif text.startswith("<"):
            self._on_status(text)
        elif text.startswith("ALARM:"):
            self._on_alarm(int(text[6:]) if text[6:].isdigit() else 0)
        elif is_banner(text):
            self._on_banner(text)
        else:
            with self._cond:
                head = self._inflight[0] if self._inflight else None
                if head is not None and head.reply is not None:
                    head.reply.append(text)
                    return
            self._emit(FirmwareMessage(text))

    def _reply(self, error: int) -> None:
        with self._cond:
            if not self._inflight:
                return                                   # an answer to a line a reset already flushed
            sent = self._inflight.popleft()
            self._inflight_bytes -= sent.size
            self._cond.notify_all()
            if sent.done is not None:
                sent.error = error
                sent.done.set()
                return
            job = self._job
            if job is None or job.outcome:
                return
            if not error:
                job.acked += 1
                job.last_acked = max(job.last_acked, sent.line)
                self._emit(LineAcked(sent.line, job.acked))
                return
            why = f"line {sent.line} ({sent.data.decode('ascii', 'replace')}): {error_sentence(error)}"
            if self.policy == "resend" and not sent.resent:
                job.ahead.appendleft((sent.line, sent.data, True))
                jumped = sum(1 for s in self._inflight if s.done is None)
                self._emit(FirmwareMessage(f"{why}; re-sending the line once, out of order: after the "
                                           f"{jumped} lines GRBL had already queued behind it"))
            else:
                self._hold_now()
                again = " (again after re-sending it)" if sent.resent else ""
                self._finish(job, "failed", why + again, halt=True)

    def _hold_now(self) -> None:
        """Feed hold from the reader the moment a job must stop: the queued moves stop (laser off) now."""
        try:
            self._write(RT_HOLD)
        except DriverError:
            pass                                        # the port is gone: _lost reports it

    def _on_status(self, text: str) -> None:
        st = parse_status(text)
        if st is None:
            self._emit(FirmwareMessage(f"unreadable status report: {text}"))
            return
        with self._cond:
            self.status, self.status_seq = st, self.status_seq + 1
            if st.rx_free > self.rx_size and not self._inflight and st.state == "Idle":
                self.rx_size = st.rx_free               # grblHAL and friends: bigger than configured
            job = self._job
            self._cond.notify_all()
        self._emit(MachineStatus(st.state, st.position, st.feed, st.power))
        if job is None or job.outcome:
            return
        stale = time.monotonic() - job.resumed_at < RESUME_GRACE_S
        if st.state.startswith("Door") and st.state != "Door:3" and job.paused != "door" and not stale:
            with self._cond:
                job.paused = "door"
            self._emit(Paused("door", st.position))
        elif st.state.startswith("Hold") and not job.paused and not stale:
            with self._cond:
                job.paused = "firmware: feed hold"
            self._emit(Paused("firmware: feed hold", st.position))
        elif st.state == "Alarm":
            with self._cond:
                self._finish(job, "failed", "the controller is in alarm")

    def _on_alarm(self, code: int) -> None:
        sentence = alarm_sentence(code)
        with self._cond:
            job = self._job
            if job is not None and not job.outcome:
                self._finish(job, "failed", sentence)
                return
        self._emit(FirmwareMessage(sentence))

    def _on_banner(self, text: str) -> None:
        with self._cond:
            for sent in self._inflight:                 # GRBL flushed its buffer: no answers will come
                if sent.done is not None:
                    sent.error = -1
                    sent.done.set()
            self._inflight.clear()
            self._inflight_bytes = 0
            expected, self._expect_banner = self._expect_banner, False
            job = self._job
            if job is not None and not job.outcome and not expected:
                self._finish(job, "failed", "controller reset")
            self._cond.notify_all()
        self._emit(FirmwareMessage(text))

    def _lost(self, reason: str) -> None:
        with self._cond:
            if self._job is not None and not self._job.outcome:
                self._finish(self._job, "failed", reason)

    def _poll_loop(self) -> None:
        """Ask for a status report at status_hz; a controller silent for timeout_s is reported lost."""
        silent = False
        while self._open:
            try:
                self._write(RT_STATUS)
            except DriverError as exc:
                self._lost(str(exc))
                return
            with self._cond:
                self._cond.wait_for(lambda: not self._open, self.status_interval)
            quiet = time.monotonic() - self._last_rx
            if quiet > self.timeout_s and not silent:
                silent = True
                why = f"the controller has not answered for {quiet:.0f} s (cable, power or a crashed board)"
                self._lost(why)
                self._emit(Disconnected(why))
            elif quiet <= self.timeout_s:
                silent = False

    # ---- operator ---------------------------------------------------------------------------------------
    def pause(self, reason: str = "operator") -> None:
        with self._cond:
            job = self._job
            if job is None or job.outcome or job.paused:
                return
            job.paused = reason
            self._write(RT_HOLD)
        self._emit(Paused(reason, self.status.position if self.status else ()))

    def resume(self) -> None:
        """Cycle start; GRBL ignores it while the door is still open (the next status pauses again)."""
        with self._cond:
            job = self._job
            if job is None or job.outcome or not job.paused:
                return
            job.paused, job.resumed_at = "", time.monotonic()
            self._write(RT_CYCLE_START)
            self._cond.notify_all()
        self._emit(Resumed())

    def cancel(self) -> None:
        with self._cond:
            job = self._job
            if job is None or job.outcome:
                return
            self._write(RT_HOLD)
            self._finish(job, "cancelled", "cancelled", halt=True)

    def emergency_stop(self) -> None:
        """Feed hold then soft reset, written at once from any thread, ahead of the stream."""
        self._expect_banner = True                      # plain store: no lock stands before the write
        self._write(RT_HOLD + RT_RESET)
        with self._cond:
            job = self._job
            if job is not None and not job.outcome:
                self._finish(job, "failed", "emergency stop: feed hold and soft reset sent")
