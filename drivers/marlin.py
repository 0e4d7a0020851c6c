"""The Marlin host driver: streams numbered, checksummed lines with a window of
lines in flight, exactly once, and reports every acknowledged job line.

One reader thread owns all protocol state; it blocks only in `select` on the
port (and a wake pipe the API uses), and it is the one that writes lines.
Other threads talk to it through an inbox, except `emergency_stop`, which
writes M112 straight to the port under the small write lock, ahead of
everything queued (Marlin's emergency parser acts on it as its bytes arrive).

Opening never resets the board: the port is opened without touching DTR/RTS
(the kernel raises them at open; dropping them would make the *next* open a
reset edge) and HUPCL is cleared so closing the port leaves them up; see
config/udev/99-fabedge.rules which does the same at plug time. So restarting
the agent never kills a print.
"""

from __future__ import annotations

import collections
import os
import queue
import select
import termios
import threading
import time
from typing import Callable

import serial

from drivers import marlin_protocol as proto
from drivers.base import (Connected, Disconnected, DriverError, DriverEvent, EventSink, FirmwareMessage, JobLines,
                          LineAcked, MachineDriver, Temperatures)
from drivers.marlin_job import DEFAULT_CANCEL_GCODE, MarlinJob, Waiter, clean
from drivers.marlin_window import Entry, Window

SETTLE_S = 0.03            # quiet time after a Resend before re-sending (follow-on errors arrive meanwhile)
MAX_LINE_BUFFER = 4096     # a firmware line longer than this is garbage: dropped


class MarlinDriver(MarlinJob, MachineDriver):
    """A Marlin printer on a serial port (real, or the virtual one on a pty)."""

    def __init__(self, port: str, baud: int = 115200, on_event: EventSink | None = None, *,
                 rx_buffer: int = 128, command_slots: int = 4, timeout_s: float = 10.0,
                 park_gcode: tuple[str, ...] | list[str] = (), restore_gcode: tuple[str, ...] | list[str] = (),
                 cancel_gcode: tuple[str, ...] | list[str] = DEFAULT_CANCEL_GCODE,
                 max_line_length: int = 96, probe_attempts: int = 2, autoreport_s: int = 2,
                 clean_lines: int = 200) -> None:
        self.port, self.baud = port, baud
        self.on_event: EventSink = on_event or (lambda e: None)
        self.timeout_s = timeout_s
        self.park_gcode = [g.encode() for g in park_gcode]
        self.restore_gcode = [g.encode() for g in restore_gcode]
        self.cancel_gcode = [_host_line(g, "cancel_gcode") for g in cancel_gcode]
        self.max_line_length = max_line_length
        self.probe_attempts = probe_attempts
        self.autoreport_s = autoreport_s
        self.win = Window(rx_buffer=rx_buffer, slots=command_slots, clean_lines=clean_lines,
                          margin=min(40, rx_buffer // 3))
        self.stats = collections.Counter()
        self.capabilities: dict[str, object] = {}
        self.firmware = ""
        self.advanced_ok = False
        self.planner_free: int | None = None
        self._ser: serial.Serial | None = None
        self._wlock = threading.Lock()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread: threading.Thread | None = None
        self._closing = False
        self._connected = False
        self._first_n = 0
        self._dead = ""
        # reader-thread state
        self._hostq: collections.deque[Entry] = collections.deque()
        self._fresh: Entry | None = None
        self._job: object | None = None
        self._job_state = "idle"        # idle running pausing paused cancelling
        self._job_exhausted = False
        self._job_last_n = 0
        self._job_acked = 0
        self._job_last_line = 0
        self._reported_n = 0
        self._pause_reason = ""
        self._position: tuple[float, ...] = ()
        self._finish_probe: Entry | None = None
        self._expect_resend_ok = False
        self._unknown_before_ok = False
        self._settle_until = 0.0
        self._recover_n = 0
        self._last_progress = time.monotonic()
        self._probes = 0
        self._force_send = False
        self._busy = False
        self._wait_breaks = 0           # M108s sent for the current cancel
        self._break_acked = 0           # acked_n when the last one went out
        self._cancel_queued = False     # cancel_gcode handed to the host queue

    # ---- public API --------------------------------------------------------------
    def open(self, timeout: float = 10.0) -> Connected:
        ser = serial.Serial()
        ser.port, ser.baudrate, ser.timeout, ser.write_timeout = self.port, self.baud, 0, 2.0
        ser.exclusive = True                 # a second host on the same printer would interleave lines
        try:
            ser.open()
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"cannot open {self.port}: {exc}") from None
        _keep_dtr_on_close(ser.fileno())
        ser.reset_input_buffer()
        self._ser = ser
        self._thread = threading.Thread(target=self._run, name="marlin-reader", daemon=True)
        self._thread.start()
        try:
            self._handshake(time.monotonic() + timeout, timeout)
        except DriverError:
            self.close()
            raise
        self._connected = True
        self._first_n = self.win.next_n           # lines before this were the handshake: never asked again
        event = Connected(firmware=self.firmware or "Marlin", capabilities=dict(self.capabilities))
        self.on_event(event)
        return event

    def _handshake(self, deadline: float, timeout: float) -> None:
        """Framed M110 N0 (repeated while the board may still be booting), M115, M155 when offered."""
        while True:
            self._call(lambda: self._restart_numbering())
            try:
                self._command(b"M110 N0", min(1.0, max(0.1, deadline - time.monotonic())))
                break
            except DriverError:
                if time.monotonic() >= deadline:
                    raise DriverError(f"no answer from a Marlin printer on {self.port} within {timeout:.0f} s") from None
        m115 = self.send_command("M115", timeout=max(1.0, deadline - time.monotonic()))
        self.firmware, self.capabilities = proto.capabilities(m115)
        if self.capabilities.get("AUTOREPORT_TEMP") and self.autoreport_s:
            self.send_command(f"M155 S{self.autoreport_s}", timeout=5.0)

    def start_job(self, lines: JobLines, total_lines: int | None = None) -> None:
        if self._dead:
            raise DriverError(f"the printer cannot take a job: {self._dead}")
        if self._job_state != "idle":
            raise DriverError("a job is already streaming")
        self._busy = True
        self._call(lambda: self._begin_job(iter(lines)))

    def pause(self, reason: str = "operator") -> None:
        self._call(lambda: self._do_pause(reason, park=True))

    def resume(self) -> None:
        self._call(self._do_resume)

    def cancel(self) -> None:
        """Stop feeding the job, break any heat wait (M108), then send cancel_gcode (heaters off)."""
        self._call(self._do_cancel)

    def emergency_stop(self) -> None:
        """M112 ahead of everything queued, straight to the port (the newline ends any partial line)."""
        ser = self._ser
        if ser is not None:
            try:
                with self._wlock:
                    ser.write(b"\nM112\n")
                    ser.flush()
            except (serial.SerialException, OSError) as exc:
                reason = f"emergency stop could not be sent: {exc}"
                self._call(lambda: self._fail(reason))
                raise DriverError(f"M112 could not be written to {self.port}: {exc}") from None
        self.stats["estop"] += 1
        self._call(lambda: self._fail("emergency stop (M112)"))

    def send_command(self, line: str, timeout: float = 10.0) -> list[str]:
        payload = clean(line.encode())
        if not payload:
            raise DriverError(f"nothing to send in {line!r}")
        return self._command(payload, timeout)

    def close(self) -> None:
        self._closing = True
        self._wake()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        if self._ser is not None:
            self._ser.close()
            self._ser = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def busy(self) -> bool:
        return self._busy

    # ---- plumbing between threads ------------------------------------------------
    def _call(self, fn: Callable[[], None]) -> None:
        self._inbox.put(fn)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _command(self, payload: bytes, timeout: float) -> list[str]:
        if self._dead:
            raise DriverError(f"the printer cannot take commands: {self._dead}")
        waiter = Waiter()
        self._call(lambda: self._hostq.append(Entry(payload, waiter=waiter)))
        if not waiter.done.wait(timeout):
            raise DriverError(f"no answer to {payload.decode(errors='replace')} within {timeout:.1f} s")
        if waiter.error:
            raise DriverError(waiter.error)
        return waiter.replies

    def _emit(self, event: DriverEvent) -> None:
        try:
            self.on_event(event)
        except Exception:            # a faulty receiver must not kill the stream
            self.stats["event_errors"] += 1

    def _write(self, data: bytes) -> None:
        """One syscall for the usual case; when the port is full, wait for room as long as the
        printer may be silent (timeout_s): a loaded host must not fail a job that a slow
        reader would have taken (the port is non-blocking: pyserial opens it O_NONBLOCK)."""
        with self._wlock:
            fd, view, deadline = self._ser.fileno(), memoryview(data), 0.0
            while view:
                try:
                    view = view[os.write(fd, view):]
                    continue
                except BlockingIOError:
                    pass
                now = time.monotonic()
                deadline = deadline or now + self.timeout_s
                if now >= deadline:
                    raise serial.SerialTimeoutException(
                        f"the printer took no bytes for {self.timeout_s:g} s (serial.timeout_s)")
                select.select([], [fd], [], min(0.1, deadline - now))

    # ---- the reader thread ---------------------------------------------------------
    def _run(self) -> None:
        buf = bytearray()
        ser = self._ser
        fd = ser.fileno()
        while not self._closing:
            timeout = 0.01 if self._settle_until else 0.1
            try:
                ready = select.select([fd, self._wake_r], [], [], timeout)[0]
                if self._wake_r in ready:
                    os.read(self._wake_r, 512)
                data = os.read(fd, 65536) if fd in ready else b""     # pyserial's port, one syscall
                if fd in ready and not data:
                    raise serial.SerialException("the device reports data but has none (unplugged?)")
            except (serial.SerialException, OSError, TypeError, ValueError) as exc:
                if not self._closing:
                    self._fail(f"the serial link to the printer broke: {exc}")
                    self._emit(Disconnected(reason=str(exc)))
                return
            try:
                self._step(buf, data)
            except Exception as exc:          # a bug here must stop the job loudly, never stall it silently
                self._fail(f"the Marlin driver failed: {exc!r}")
                raise

    def _step(self, buf: bytearray, data: bytes) -> None:
        """One turn of the reader: API requests, firmware lines, timers, then send what fits."""
        now = time.monotonic()
        while True:
            try:
                self._inbox.get_nowait()()
            except queue.Empty:
                break
        if data:
            buf += data
            while True:
                idx = buf.find(b"\n")
                if idx < 0:
                    break
                line = bytes(buf[:idx]).decode("latin-1").strip()
                del buf[:idx + 1]
                if line:
                    self._on_line(line, now)
            if len(buf) > MAX_LINE_BUFFER:
                buf.clear()
                self.stats["garbage"] += 1
        self._tick(now)
        self._pump()

    def _restart_numbering(self) -> None:
        self.win.reset_numbering(0)
        self._reported_n = -1
        self._hostq.clear()
        self._fresh = None

    # ---- replies ------------------------------------------------------------------------
    def _on_line(self, text: str, now: float) -> None:
        r = proto.classify(text)
        kind = r.kind
        if kind == proto.OK:
            self._on_ok(r, now)
        elif kind == proto.RESEND:
            self._on_resend(r.n, now)
        elif kind == proto.LINE_ERROR:
            self.stats["line_errors"] += 1
        elif kind == proto.BUSY:
            self._last_progress = now
            self._on_busy()
        elif kind == proto.FATAL:
            self._fail(f"printer halted: {text}")
        elif kind == proto.START:
            if self._connected:
                self._fail("controller reset")
        elif kind == proto.TEMPS:
            self._emit(Temperatures(r.temps))
        elif kind == proto.ACTION:
            self._on_action(r.text)
        else:
            if kind == proto.POSITION:
                self._position = proto.parse_position(text)
            oldest = self.win.oldest_inflight()
            if oldest is not None and isinstance(oldest.waiter, Waiter):
                oldest.waiter.replies.append(text)
            if text.startswith(("echo:", "Error:", "!!", "Warning")):
                self._emit(FirmwareMessage(text))
                if text.startswith("echo:Unknown command"):
                    self._unknown_before_ok = True    # the next `ok` closes a command that did nothing

    def _on_ok(self, r: proto.Reply, now: float) -> None:
        win = self.win
        self._last_progress = now
        self._probes = 0
        unknown, self._unknown_before_ok = self._unknown_before_ok, False
        if r.temps is not None:                       # M105's own `ok T:...`: proves its line arrived
            self._emit(Temperatures(r.temps))
            probe = next((e for e in win.inflight if e.payload.startswith(b"M105")), None)
            if probe is None:
                self.stats["extra_ok"] += 1
                return
            if isinstance(probe.waiter, Waiter):
                probe.waiter.replies.append(r.text)
            self._acked(win.ack_through(probe.n))
            return
        if r.n is not None and r.planner_free is not None and not self.advanced_ok:
            self.advanced_ok = True
            win.margin = 0                            # every ok names its line: nothing to guard against
        if self.advanced_ok:
            win.learn(r.slots_free)
            if r.planner_free is not None:
                self.planner_free = r.planner_free    # P: free planner blocks, for status and diagnosis
        if self._expect_resend_ok and r.n is None:
            self._expect_resend_ok = False            # the `ok` that closes a Resend acknowledges nothing
            return
        self._expect_resend_ok = False
        if r.n is not None:
            if r.n <= win.acked_n or r.n >= win.send_n:
                self.stats["extra_ok"] += 1           # doubled or stray: clamped
                return
            self._acked(win.ack_through(r.n))
            return
        oldest = win.oldest_inflight()
        if self.advanced_ok and r.planner_free is not None and oldest is not None and not unknown:
            return self._unnumbered_ran(oldest)
        if oldest is None or oldest.sync or self.advanced_ok:
            self.stats["extra_ok"] += 1               # more oks than lines in flight: clamped
            win.anomaly()
            return
        self._acked(win.ack_through(oldest.n))

    def _unnumbered_ran(self, oldest: Entry) -> None:
        """`ok P.. B..` without N: Marlin ran a line without a line number, which only our oldest line
        in flight can be, its `N` corrupted on the way (Marlin runs such a line unchecked). It ran: count
        it done, and from now on "re-send line k" means `N<k> M110 N<k>` (set the line number, run
        nothing), which is right whenever Marlin asks for k, since it then still stands at k-1."""
        win = self.win
        self.stats["unnumbered_ok"] += 1
        win.anomaly()
        if oldest.sync:
            return
        alone = len(win.inflight) == 1 and not win.resending
        oldest.wire = proto.frame(oldest.n, b"M110 N%d" % oldest.n)
        self._acked(win.ack_through(oldest.n))
        if alone:
            self._write(oldest.wire)              # nothing behind it: renumber now (its ok is clamped)

    def _acked(self, entries: list[Entry]) -> None:
        for e in entries:
            if e.n <= self._reported_n:
                continue
            self._reported_n = e.n
            if e.file_line is not None:
                self._job_acked += 1
                self._job_last_line = e.file_line
                self._emit(LineAcked(line=e.file_line, acked=self._job_acked))
            if isinstance(e.waiter, Waiter):
                e.waiter.finish()

    def _on_resend(self, n: int, now: float) -> None:
        win = self.win
        self._expect_resend_ok = True
        self._last_progress = now
        self._probes = 0
        if self._settle_until and n >= self._recover_n:
            self._settle_until = now + SETTLE_S      # a follow-on error for a line sent before the rewind
            self.stats["follow_on_errors"] += 1
            return
        if n >= win.next_n:
            self.stats["stray_resend"] += 1          # asks for a line never sent: nothing to re-send
            return
        behind = win.acked_n - n
        renumber = n in win.history and b" M110 " in win.history[n].wire
        # plain oks can run ahead of the firmware by what an ok storm popped: at most a window or two
        slack = 0 if self.advanced_ok else 2 * win.max_line_limit + 8
        if (behind >= 0 and not renumber and behind >= slack) or (self._connected and n < self._first_n):
            # Marlin asked again for a line it had acknowledged: it lost its place, i.e. it restarted
            # (its `start` may have been cut into another line). Re-sending would replay the job.
            self._fail(f"controller reset (the printer asked for line {n} after acknowledging {win.acked_n})")
            return
        if n not in win.history:
            self._fail(f"the printer asked again for line {n}, which is no longer kept")
            return
        self.stats["resends"] += 1
        ghost_bytes = win.rewind(n)
        self._recover_n = n
        self._settle_until = now + SETTLE_S + ghost_bytes * 10.0 / self.baud

    # ---- timers ---------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        if self._settle_until and now >= self._settle_until:
            self._settle_until = 0.0
        win = self.win
        if self._dead or not win.inflight:
            self._last_progress = now
            return
        if now - self._last_progress < self.timeout_s:
            return
        self._probes += 1
        self._last_progress = now
        if self._probes > self.probe_attempts:
            self._fail(f"the printer stopped answering (nothing for {self.timeout_s * self._probes:.1f} s)")
            return
        self.stats["probes"] += 1
        win.anomaly()
        if win.resending:
            self._force_send = True               # the line it is missing is the best probe
            return
        probe = win.number(Entry(b"M105", sync=True), proto.frame(win.next_n, b"M105"))
        self._write(probe.wire)                   # outside the window: the window may be full of lost oks
        win.sent(probe)

    # ---- sending ---------------------------------------------------------------------------
    def _pump(self) -> None:
        win = self.win
        while not self._dead and not self._settle_until and self._ser is not None:
            if win.resending:
                entry = win.history.get(win.send_n)
                if entry is None:
                    self._fail(f"line {win.send_n} must be re-sent but is no longer kept")
                    return
            else:
                entry = self._next_fresh()
                if entry is None:
                    break
            framed = entry.wire if win.resending else proto.frame(win.next_n, entry.payload)
            if not (win.may_send(len(framed)) or self._force_send):
                break
            self._force_send = False
            if not win.resending:
                self._fresh = None
                if len(framed) - 1 > self.max_line_length:
                    self._fail(f"line {entry.file_line or '?'} is too long for the firmware "
                               f"({len(framed) - 1} bytes framed, at most {self.max_line_length})")
                    return
                win.number(entry, framed)
            self._write(entry.wire)
            win.sent(entry)
            self.stats["lines_sent"] += 1
        self._check_job_progress()

    def _next_fresh(self) -> Entry | None:
        if self._fresh is not None:
            return self._fresh
        if self._hostq:
            self._fresh = self._hostq.popleft()
        elif self._job_state == "running" and not self._job_exhausted:
            self._fresh = self._next_job_line()
        return self._fresh


def _host_line(text: str, what: str) -> bytes:
    """One command the host sends on its own: no comment, no line break, no framing of its own."""
    payload = clean(text.encode())
    if not payload or any(c in payload for c in b"\r\n*") or payload[:1] in (b"N", b"n"):
        raise DriverError(f"{what}: {text!r} is not one plain G-code command")
    return payload


def _keep_dtr_on_close(fd: int) -> None:
    """Clear HUPCL so closing the port does not drop DTR (the next open would reset the board)."""
    try:
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        pass
