"""A virtual Marlin 2.1 printer on a pseudo-terminal, for tests, benchmarks and the demo.

It is faithful where hosts go wrong: bytes arrive at the baud rate into an RX
buffer of `rx_size` bytes that loses what overflows; serial input is only parsed
between commands, into BUFSIZE command slots; line numbers and checksums are
checked with Marlin's exact error strings, and after an error the RX buffer is
drained (so a half-received line becomes a fragment, as on real boards); moves
wait for room in a BLOCK_BUFFER_SIZE planner that runs in time-scaled real time;
the emergency parser acts on M112 / M108 / M410 as their bytes arrive, whatever
the buffers hold. Every executed command is logged (framing stripped, in
execution order; an `Unknown command` does nothing and is not logged) so tests
can prove "each line exactly once, in order".

In-process: `VirtualMarlin(...).start()` returns the device path; `.stop()`.
From a shell: `fabedge sim marlin [--baud B] [--advanced-ok] [--faults SPEC]
[--log FILE] [--time-scale K]` prints the device path and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import sys
import threading
import time
from typing import Callable

from drivers.sim.marlin_faults import BitFlipper, Faults, FaultSpecError
from drivers.sim.marlin_gcode import GcodeExecutor
from drivers.sim.marlin_machine import Planner, Thermal
from drivers.sim.pty import PacedPty

FIRMWARE = "Marlin 2.1.2.1"
ERR_CHECKSUM = "checksum mismatch, Last Line: "
ERR_LINE_NO = "Line Number is not Last Line Number+1, Last Line: "
ERR_NO_CHECKSUM = "No Checksum with line number, Last Line: "
ERR_KILLED = "Error:Printer halted. kill() called!"
ERR_RUNAWAY = "Error:Thermal Runaway, system stopped! Heater_ID: 0"
KEEPALIVE_S = 2.0
BOOT_S = 0.3                       # bootloader + setup(): bytes arriving meanwhile are lost
STALL_S = 0.02                     # waking this much later than planned counts as a simulator stall

_EMERGENCY = re.compile(rb"^\s*(?:N-?\d+\s*)?(M112|M108|M410)(?![0-9.])", re.I)
_DIGITS = re.compile(r"\s*([+-]?\d+)")


def _strtol(text: str) -> int:
    """C strtol as Marlin uses it: leading digits, 0 when there are none."""
    m = _DIGITS.match(text)
    return int(m.group(1)) if m else 0


def strip_framing(cmd: str) -> str:
    """`N12 G1 X5*71` -> `G1 X5`."""
    cmd = cmd.strip()
    if cmd[:1] in ("N", "n"):
        m = re.match(r"[Nn]-?\d*\s*", cmd)
        cmd = cmd[m.end():]
    star = cmd.find("*")
    if star >= 0:
        cmd = cmd[:star]
    return cmd.strip()


class VirtualMarlin:
    """The firmware: one thread driving the master side of a real pty."""

    def __init__(self, baud: int = 115200, *, rx_size: int = 128, bufsize: int = 4,
                 block_buffer: int = 16, advanced_ok: bool = False, faults: Faults | str | None = None,
                 time_scale: float = 1.0, latency_s: float = 0.0, log_path: str | None = None,
                 keep_executed: bool = True, max_cmd_size: int = 96, accel: float = 1000.0) -> None:
        self.baud = baud
        self.rx_size = rx_size
        self.bufsize = bufsize
        self.advanced_ok = advanced_ok
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.time_scale = time_scale
        self.max_cmd_size = max_cmd_size
        self.rng = random.Random(self.faults.seed)
        self.flipper = BitFlipper(self.faults.ber, self.rng)
        self.pty = PacedPty(baud, latency_s)
        self.planner = Planner(size=block_buffer, accel=accel, time_scale=time_scale)
        self.thermal = Thermal(time_scale)
        self.gcode = GcodeExecutor(self)
        self.executed: list[str] = []
        self._keep = keep_executed
        self._log = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
        # observations for tests and benchmarks
        self.boots = 0
        self.boot_marks: list[int] = []     # len(executed) at each boot
        self.estop_at: float | None = None
        self.halted = ""                # why the printer is dead ("" while alive)
        self.errors_sent = 0
        self.rx_lost = 0
        self.lines_received = 0
        # serial state
        self.rx = bytearray()
        self._line = bytearray()
        self._in_comment = False
        self._ep_line = bytearray()
        self.last_n = 0
        self.queue: collections.deque[tuple[str, int | None]] = collections.deque()
        self._waiter: Callable[[float], bool] | None = None
        self._wait_poll: float | None = None
        self._busy_next = 0.0
        self.autoreport_s = 0.0
        self._report_next = 0.0
        self._boot_at = 0.0
        self._booted_until = 0.0
        self._reset_done = False
        self._runaway_done = False
        self._injected: collections.deque[bytes] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.path = self.pty.path

    # ---- life cycle -----------------------------------------------------------
    def start(self) -> str:
        """Boot the printer in its own thread; returns the pty path a host opens."""
        self._boot(time.monotonic(), first=True)
        self._thread = threading.Thread(target=self._run, name="virtual-marlin", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread:
            self._thread.join(5)
        self.pty.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._log:
            self._log.close()

    def __enter__(self) -> "VirtualMarlin":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def say(self, text: str | bytes) -> None:
        """Make the firmware print a line (tests: //action: lines, garbage). Thread-safe."""
        data = text if isinstance(text, bytes) else text.encode()
        self._injected.append(data if data.endswith(b"\n") else data + b"\n")
        os.write(self._wake_w, b"x")

    @property
    def underruns(self) -> int:
        return self.planner.underruns

    def buffers_full(self) -> bool:
        """Every command slot taken and the planner full (what the M112 test waits for)."""
        return len(self.queue) >= self.bufsize and self.planner.full()

    # ---- output ---------------------------------------------------------------
    def send(self, line: str, now: float | None = None) -> None:
        self.pty.send(line.encode("latin-1") + b"\n", time.monotonic() if now is None else now)

    def _ok(self, now: float, n: int | None) -> None:
        f = self.faults
        if f.lost_ok and self.rng.random() < f.lost_ok:
            return
        if self.advanced_ok:
            text = "ok" + (f" N{n}" if n is not None else "") + f" P{self.planner.free()} B{self.bufsize - len(self.queue)}"
        else:
            text = "ok"
        self.send(text, now)
        if f.double_ok and self.rng.random() < f.double_ok:
            self.send(text, now)
        if f.ok_storm and self.rng.random() < f.ok_storm:
            for _ in range(5):
                self.send("ok", now)
        if f.garbage and self.rng.random() < f.garbage:
            junk = bytes(self.rng.choice([*range(1, 10), *range(11, 13), *range(14, 256)]) for _ in range(12))
            self.pty.send(junk + b"\n", now)

    # ---- the loop -------------------------------------------------------------
    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            # Woken much later than planned (the box is loaded): an empty planner now is not the host's doing.
            self.planner.excused = now - deadline > STALL_S
            self._tick(now)
            deadline = self._deadline(now)
            self.pty.wait(deadline, self._wake_r)
            try:
                os.read(self._wake_r, 64)
            except BlockingIOError:
                pass

    def _tick(self, now: float) -> None:
        pty = self.pty
        pty.receive(now)
        while self._injected:
            pty.send(self._injected.popleft(), now, latency=False)
        self.planner.advance(now)
        self.thermal.update(now)
        if not self.halted:
            self._faults_due(now)
        while True:                     # a line at a time: Marlin's loop is fast next to a byte time
            data = pty.arrived(now, b"\n")
            if data:
                self._on_bytes(data, now)
            if not self.halted and now >= self._booted_until:
                self._main_loop(now)
            if not data:
                break
        if not self.halted and now >= self._booted_until:
            self._keepalive(now)
        pty.pump(now)

    def _deadline(self, now: float) -> float:
        times = [now + 0.5]
        for t in (self.pty.next_event(), self.planner.next_end(), self._wait_poll):
            if t is not None:
                times.append(t)
        if self._waiter is not None:
            times.append(self._busy_next)
        if self.autoreport_s and not self.halted:
            times.append(self._report_next)
        if self.faults.runaway_at and not self._runaway_done:
            times.append(self._boot_at + self.faults.runaway_at / self.time_scale)
        if self._booted_until > now:
            times.append(self._booted_until)
        return max(now, min(times))

    # ---- bytes from the host ----------------------------------------------------
    def _on_bytes(self, data: bytes, now: float) -> None:
        data = self.flipper.apply(data)
        if now < self._booted_until:
            return                                          # still in the bootloader
        self._emergency_parser(data, now)
        if self.halted:
            return
        space = self.rx_size - 1 - len(self.rx)             # a ring buffer holds size-1 bytes
        if len(data) > space:
            self.rx_lost += len(data) - max(space, 0)
            data = data[:max(space, 0)]
        self.rx += data

    def _emergency_parser(self, data: bytes, now: float) -> None:
        """Marlin's EMERGENCY_PARSER: sees every byte as it arrives, before the RX buffer."""
        start = 0
        while True:
            idx = data.find(b"\n", start)
            part = data[start:] if idx < 0 else data[start:idx]
            if len(self._ep_line) < 24:
                self._ep_line += part[:24]
            if idx < 0:
                return
            m = _EMERGENCY.match(bytes(self._ep_line))
            self._ep_line.clear()
            start = idx + 1
            if m and not self.halted:
                code = m.group(1).upper()
                if code == b"M112":
                    self.estop_at = now
                    self.kill(now)
                elif code == b"M108":
                    self.gcode.cancel_wait()
                elif code == b"M410":
                    self.planner.clear()

    def kill(self, now: float, reason: str | None = None) -> None:
        """kill(): heaters off, motion dropped, firmware halted until reset."""
        if reason:
            self.send(reason, now)
        self.send(ERR_KILLED, now)
        self.halted = reason or "kill"
        self.planner.clear()
        self.queue.clear()
        self.rx.clear()
        self._waiter = None
        self.thermal.hotend.target = self.thermal.bed.target = 0.0
        self.autoreport_s = 0.0

    # ---- faults ---------------------------------------------------------------
    def _faults_due(self, now: float) -> None:
        f = self.faults
        if f.runaway_at and not self._runaway_done and (now - self._boot_at) * self.time_scale >= f.runaway_at:
            self._runaway_done = True
            self.kill(now, ERR_RUNAWAY)

    def _boot(self, now: float, first: bool = False) -> None:
        """Power-on or reset: forget everything, print `start`."""
        self.boots += 1
        self.boot_marks.append(len(self.executed))
        self.rx.clear()
        self._line.clear()
        self._in_comment = False
        self.queue.clear()
        self._waiter = None
        self._wait_poll = None
        self.planner.clear()
        self.thermal.hotend.target = self.thermal.bed.target = 0.0
        self.autoreport_s = 0.0
        self.last_n = 0
        self.halted = ""
        self.gcode.reset()
        self._boot_at = now
        self._booted_until = now if first else now + BOOT_S / max(1.0, self.time_scale)
        if not first:
            self.pty.discard_io()
        at = self._booted_until
        for line in ("start", f"echo:{FIRMWARE}", "echo: Last Updated: 2023-06-01 | Author: (fabedge sim)",
                     "echo:Compiled: Nov 22 2026"):
            self.pty.send(line.encode() + b"\n", at, latency=False)

    # ---- Marlin's loop(): parse commands, then process one ---------------------
    def _main_loop(self, now: float) -> None:
        while not self.halted:
            if self._waiter is not None:
                if not self._waiter(now):
                    return                                   # blocked: serial is not read meanwhile
                self._finish_head(now)
            self._get_serial_commands(now)
            if not self.queue or self.halted:
                return
            cmd, n = self.queue[0]
            waiter = self.gcode.execute(cmd, now)
            if self.gcode.executed:
                self._log_executed(cmd)
            if self.halted or not self.queue:
                return
            if waiter is None:
                self._finish_head(now)
            else:
                self._waiter = waiter
                self._busy_next = now + KEEPALIVE_S / self.time_scale

    def _finish_head(self, now: float) -> None:
        self._waiter = None
        self._wait_poll = None
        if not self.queue:
            return
        cmd, n = self.queue[0]
        if not self.gcode.skip_ok:
            self._ok(now, n)
        self.gcode.skip_ok = False
        self.queue.popleft()

    def _keepalive(self, now: float) -> None:
        if self._waiter is not None and now >= self._busy_next:
            self.send("echo:busy: processing", now)
            self._busy_next = now + KEEPALIVE_S / self.time_scale
        if self.autoreport_s and now >= self._report_next:
            self.send(" " + self.thermal.report(), now)
            self._report_next = now + max(0.1, self.autoreport_s / self.time_scale)

    def _log_executed(self, cmd: str) -> None:
        if self._keep:
            self.executed.append(cmd)
        if self._log:
            self._log.write(cmd + "\n")

    def _get_serial_commands(self, now: float) -> None:
        rx = self.rx
        while len(self.queue) < self.bufsize and rx and not self.halted:
            nl, cr = rx.find(b"\n"), rx.find(b"\r")
            idx = nl if cr < 0 else cr if nl < 0 else min(nl, cr)
            chunk = bytes(rx) if idx < 0 else bytes(rx[:idx])
            del rx[:len(chunk) + (0 if idx < 0 else 1)]
            self._stream_chars(chunk)
            if idx < 0:
                return
            line = self._line.decode("latin-1")
            self._line.clear()
            self._in_comment = False
            self._line_done(line, now)

    def _stream_chars(self, chunk: bytes) -> None:
        if self._in_comment:
            return
        semi = chunk.find(b";")
        if semi >= 0:
            chunk = chunk[:semi]
            self._in_comment = True
        room = self.max_cmd_size - 1 - len(self._line)
        if room > 0:
            self._line += chunk[:room]

    def _line_done(self, line: str, now: float) -> None:
        cmd = line.lstrip(" ")
        if not cmd.strip():
            return
        self.lines_received += 1
        n: int | None = None
        if cmd[0] == "N":
            is_m110 = "M110" in cmd
            npos = cmd
            if is_m110:
                n2 = cmd.find("N", 4)
                if n2 >= 0:
                    npos = cmd[n2:]
            n = _strtol(npos[1:])
            if n != self.last_n + 1 and not is_m110:
                return self._line_error(ERR_LINE_NO, now)
            star = cmd.rfind("*")
            if star < 0:
                return self._line_error(ERR_NO_CHECKSUM, now)
            checksum = 0
            for ch in cmd[:star].encode("latin-1"):
                checksum ^= ch
            if _strtol(cmd[star + 1:]) != checksum:
                return self._line_error(ERR_CHECKSUM, now)
            f = self.faults
            if f.resend_no_ok and not is_m110 and self.rng.random() < f.resend_no_ok:
                return self._line_error(ERR_CHECKSUM, now, ok=False)
            if f.reset_at and not self._reset_done and n == f.reset_at:
                self._reset_done = True
                return self._boot(now)
            self.last_n = n
        self.queue.append((strip_framing(cmd), n))

    def _line_error(self, message: str, now: float, ok: bool = True) -> None:
        """gcode_line_error(): report, drain RX, ask for the next expected line."""
        self.errors_sent += 1
        self.send(f"Error:{message}{self.last_n}", now)
        self.rx.clear()
        self._line.clear()
        self._in_comment = False
        self.send(f"Resend: {self.last_n + 1}", now)
        if ok:
            self.send("ok", now)


def main(argv: list[str] | None = None) -> int:
    """`fabedge sim marlin ...`: print the device path and run until Ctrl-C."""
    p = argparse.ArgumentParser(prog="fabedge sim marlin", description="a virtual Marlin 2.1 printer on a pty")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--advanced-ok", action="store_true", help="answer `ok N<line> P<planner> B<slots>`")
    p.add_argument("--faults", default="", help="e.g. ber=1e-4,lost-ok=0.01,double-ok=0.01,resend-no-ok=0.01,"
                   "reset-at=500,runaway-at=60,seed=3")
    p.add_argument("--log", help="append every executed command to this file, one per line")
    p.add_argument("--time-scale", type=float, default=1.0, help="run the machine K times faster")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each reply")
    p.add_argument("--rx", type=int, default=128, help="RX_BUFFER_SIZE, bytes")
    p.add_argument("--bufsize", type=int, default=4, help="BUFSIZE, command slots")
    p.add_argument("--blocks", type=int, default=16, help="BLOCK_BUFFER_SIZE, planner moves")
    args = p.parse_args(argv)
    if args.time_scale <= 0 or args.baud <= 0 or args.rx < 16 or args.bufsize < 1 or args.blocks < 2:
        p.error("--time-scale and --baud must be positive, --rx >= 16, --bufsize >= 1, --blocks >= 2")
    try:
        faults = Faults.parse(args.faults)
    except FaultSpecError as exc:
        p.error(str(exc))
    sim = VirtualMarlin(args.baud, rx_size=args.rx, bufsize=args.bufsize, block_buffer=args.blocks,
                        advanced_ok=args.advanced_ok, faults=faults, time_scale=args.time_scale,
                        latency_s=args.latency_ms / 1000.0, log_path=args.log, keep_executed=False)
    path = sim.start()
    print(path, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
