"""A virtual GRBL 1.1h laser controller on a real pseudo-terminal.

Hosts talk to it through pyserial exactly as to a USB GRBL board: bytes are
paced at the baud rate, land in a receive buffer of `rx_buffer` bytes that
loses what overflows it, real-time bytes (? ! ~ 0x18 0x84 0x85 0x90-0x9D) are
picked out of the stream at once, and lines go through GRBL's parser into a
15-block planner that runs in time-scaled real time (grbl_motion). Every
executed line is logged in order (`.executed`, `--log FILE`) with the laser-on
path length, so tests prove "each line executed exactly once, in order".

    sim = VirtualGrbl(time_scale=50).start()   # -> pty path, e.g. /dev/pts/7
    ...; sim.stop(); sim.executed

`fabedge sim grbl [--baud B] [--rx-buffer N] [--faults SPEC] [--log FILE] [--time-scale K]`
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tty
from collections import deque
from typing import IO

from drivers.sim import grbl_faults
from drivers.sim.grbl_gcode import Block, GcodeFault, Interpreter, normalize
from drivers.sim.grbl_link import PacedLink
from drivers.sim.grbl_motion import Motion
from drivers.sim.grbl_settings import BANNER, DEFAULTS
from drivers.sim.grbl_system import SystemCommands

LINE_MAX = 80                 # GRBL's LINE_BUFFER_SIZE: longer lines are error:11
_RT = bytes(b"?!~\x18") + bytes(range(0x80, 0x100))
_EOL = (10, 13)


class VirtualGrbl(PacedLink, SystemCommands):
    """GRBL 1.1h on a pty. All state lives under one lock; four small threads move bytes and time."""

    def __init__(self, baud: int = 115200, rx_buffer: int = 127, blocks: int = 15,
                 time_scale: float = 1.0, faults: str = "", log_path: str | None = None,
                 reply_latency: float = 0.0, eeprom_write_s: float = 0.02,
                 settings: dict[int, float] | None = None, max_log: int = 1_000_000):
        self.baud = baud
        self.byte_time = 10.0 / baud
        self.rx_size = rx_buffer
        self.reply_latency = reply_latency
        self.eeprom_write_s = eeprom_write_s
        self.settings = dict(DEFAULTS if settings is None else {**DEFAULTS, **settings})
        self.faults = grbl_faults.parse(faults)
        self.motion = Motion(self.settings, blocks=blocks, time_scale=time_scale)
        self.interp = Interpreter(self.settings)
        self._lock = threading.Condition(threading.RLock())
        self._rx = bytearray()
        self._out: deque[tuple[float, bytes]] = deque()
        self._out_cond = threading.Condition(threading.Lock())
        self._gen = 0
        self._running = False
        self._threads: list[threading.Thread] = []
        self._log_path = log_path
        self._log: IO[str] | None = None
        self._rx_clock = 0.0
        self._t_first: float | None = None
        # observable state ---------------------------------------------------------
        self.executed: deque[str] = deque(maxlen=max_log)   # every executed line, in order
        self.rt_log: deque[tuple[int, float]] = deque(maxlen=10000)  # (real-time byte, monotonic arrival)
        self.errors: deque[tuple[int, int, str]] = deque(maxlen=10000)  # (G-code line no., code, text)
        self.overflow_bytes = 0                             # lost to a full receive buffer
        self.eeprom_overlap_bytes = 0                       # arrived (and lost) during an EEPROM write
        self.resets = 0
        self.lines_received = 0
        self.bytes_received = 0                             # non-real-time bytes that reached the sim
        self.alarm: int | None = None
        self.door: str | None = None                        # None | "open" | "closed" (waiting for ~)
        self.check_mode = False
        self.hung = False                                   # a frozen board: reads nothing, says nothing
        self._restore_until = 0.0
        self._home_until = 0.0
        self._eeprom_until = 0.0
        self.master = self.slave = -1
        self.path = ""

    # ---- life cycle -------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty, print the boot banner, start the threads; returns the port path."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)             # no echo, no CR/LF translation (as a USB CDC port)
        self.path = os.ttyname(self.slave)
        if self._log_path:
            self._log = open(self._log_path, "w", encoding="ascii", buffering=1 << 16)
        self._running = True
        os.write(self.master, f"\r\n{BANNER}\r\n".encode())   # at boot, before any host can open the port
        for name, target in (("rx", self._read_loop), ("protocol", self._protocol_loop),
                             ("stepper", self._stepper_loop), ("tx", self._write_loop)):
            t = threading.Thread(target=target, name=f"vgrbl-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self.path

    def stop(self) -> None:
        self._running = False
        with self._lock:
            self._lock.notify_all()
        with self._out_cond:
            self._out_cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        if self._log:
            self._log.write(f"; laser-on path {self.laser_on_mm:.3f} mm, {self.laser_on_s:.3f} s\n")
            self._log.close()
            self._log = None

    def __enter__(self) -> "VirtualGrbl":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests look at / do -------------------------------------------------------
    @property
    def laser_on_mm(self) -> float:
        return self.motion.laser_on_mm

    @property
    def laser_on_s(self) -> float:
        """Machine seconds with the laser on (not scaled by time_scale)."""
        return self.motion.laser_on_s

    @property
    def rx_used(self) -> int:
        with self._lock:
            return len(self._rx)

    def open_door(self) -> None:
        with self._lock:
            self._door_open()

    def close_door(self) -> None:
        with self._lock:
            if self.door == "open":
                self.door = "closed"

    def trigger_alarm(self, code: int = 1) -> None:
        with self._lock:
            self._alarm(code)

    def state(self) -> str:
        with self._lock:
            return self._state_name()

    # ---- input: receive buffer and real-time bytes (wire pacing is in grbl_link) ----------------------
    def _receive(self, data: bytes) -> None:
        if self.hung:
            return
        now = time.monotonic()
        self.bytes_received += len(data.translate(None, _RT))
        if len(data.translate(None, _RT)) == len(data) and now >= self._eeprom_until:
            room = self.rx_size - len(self._rx)
            self._rx += data[:room]
            self.overflow_bytes += max(0, len(data) - room)
        else:
            for b in data:
                if b in _RT:
                    self._realtime(b)
                elif now < self._eeprom_until:
                    self.eeprom_overlap_bytes += 1      # GRBL's serial interrupt is off while it writes EEPROM
                elif len(self._rx) >= self.rx_size:
                    self.overflow_bytes += 1
                else:
                    self._rx.append(b)
        self._lock.notify_all()

    def _realtime(self, b: int) -> None:
        self.rt_log.append((b, time.monotonic()))
        m = self.motion
        if b == 0x18:
            self._reset(soft=True)
        elif b == ord("?"):
            self._emit(self._gen, self._status())
        elif b == ord("!"):
            cur = m.current()
            if cur is not None and cur.jog:
                m.flush_jog()
            elif self.alarm is None and self.door is None:
                m.feed_hold()
        elif b == ord("~"):
            if self.door == "closed" and self._restore_until == 0.0:
                self._restore_until = time.monotonic() + 0.2 / m.time_scale
            elif self.door is None and m.hold:
                m.cycle_start()
        elif b == 0x84:
            self._door_open()
        elif b == 0x85:
            m.flush_jog()
        elif 0x90 <= b <= 0x94:
            m.feed_ov = 100 if b == 0x90 else max(10, min(200, m.feed_ov + {0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}[b]))
        elif 0x95 <= b <= 0x97:
            m.rapid_ov = {0x95: 100, 0x96: 50, 0x97: 25}[b]
        elif 0x99 <= b <= 0x9D:
            step = {0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}
            m.spindle_ov = 100 if b == 0x99 else max(10, min(200, m.spindle_ov + step[b]))
        if 0x90 <= b <= 0x97:
            m.replan(overrides=True)

    # ---- state changes ---------------------------------------------------------------------------
    def _door_open(self) -> None:
        self.door = "open"
        self._restore_until = 0.0
        self.motion.feed_hold()

    def _alarm(self, code: int) -> None:
        self.motion.flush()
        self.alarm = code
        self._emit(self._gen, f"ALARM:{code}")
        if code in (1, 2):
            self._emit(self._gen, "[MSG:Reset to continue]")
        self._lock.notify_all()

    def _reset(self, soft: bool) -> None:
        """Soft reset (0x18), or a reboot (fault): flush, banner; moving -> ALARM:3."""
        moving = self.motion.current() is not None and self.motion.hold != "done"
        if soft and moving:
            self._emit(self._gen, "ALARM:3")
        self._gen += 1
        self.resets += 1
        self._rx.clear()
        self.motion.flush()
        self.motion.feed_ov = self.motion.rapid_ov = self.motion.spindle_ov = 100
        self.interp = Interpreter(self.settings)
        self.interp.modal.pos = list(self.motion.pos)
        self.check_mode = False
        self._restore_until = self._home_until = 0.0
        if soft:
            if moving:
                self.alarm = 3
        else:
            self.alarm, self.door = None, None
            self.motion.pos = [0.0, 0.0, 0.0]
            self.interp.modal.pos = [0.0, 0.0, 0.0]
        if self.door == "open":
            self.motion.feed_hold()
        self._emit(self._gen, "", BANNER)
        if self.alarm is not None:
            self._emit(self._gen, "[MSG:'$H'|'$X' to unlock]")
        self._lock.notify_all()

    def _state_name(self) -> str:
        now = time.monotonic()
        if self.alarm is not None:
            return "Alarm"
        if now < self._home_until:
            return "Home"
        m = self.motion
        if self.door is not None:
            if self._restore_until:
                return "Door:3"
            if self.door == "open":
                return "Door:2" if m.hold == "decel" else "Door:1"
            return "Door:0"
        if self.check_mode:
            return "Check"
        if m.hold == "decel":
            return "Hold:1"
        if m.hold == "done":
            return "Hold:0"
        cur = m.current()
        if cur is None:
            return "Idle"
        return "Jog" if cur.jog else "Run"

    def _status(self) -> str:
        m = self.motion
        x, y, z = m.position()
        feed, power = m.feed_and_power()
        pins = "|Pn:D" if self.door == "open" else ""
        return (f"<{self._state_name()}|MPos:{x:.3f},{y:.3f},{z:.3f}|Bf:{m.free_blocks()},"
                f"{self.rx_size - len(self._rx)}|FS:{feed:.0f},{power:.0f}{pins}"
                f"|Ov:{m.feed_ov},{m.rapid_ov},{m.spindle_ov}>")

    # ---- time: steppers, door restore, timed faults ----------------------------------------------
    def _stepper_loop(self) -> None:
        last = time.monotonic()
        while self._running:
            time.sleep(0.001 if self.motion.queue else 0.004)
            now = time.monotonic()
            with self._lock:
                for b in self.motion.advance(now - last):
                    self._executed(b)
                self._timed_faults(now)
                if self._restore_until and now >= self._restore_until:
                    self._restore_until, self.door = 0.0, None
                    self.motion.cycle_start()
                self._lock.notify_all()
            last = now

    def _executed(self, b: Block) -> None:
        self.executed.append(b.text)
        if self._log:
            self._log.write(b.text + "\n")

    def _timed_faults(self, now: float) -> None:
        if self._t_first is None:
            return
        t = now - self._t_first
        for f in self.faults:
            if f.kind == "door" and not f.fired and t >= f.at:
                f.fired = True
                self._door_open()
            elif f.kind == "door" and f.fired and f.arg and t >= f.at + f.arg and self.door == "open":
                f.arg = 0.0
                self.door = "closed"
            elif f.kind == "hang" and not f.fired and t >= f.at:
                f.fired = True
                self.hung = True
            elif f.kind == "alarm" and not f.fired and t >= f.at:
                f.fired = True
                self._alarm(int(f.arg))

    # ---- the protocol loop: one line at a time, like GRBL's main loop --------------------------------
    def _protocol_loop(self) -> None:
        while self._running:
            with self._lock:
                while self._running and not any(c in self._rx for c in _EOL):
                    self._lock.wait(0.1)
                if not self._running:
                    return
                end = min(i for i in (self._rx.find(b"\n"), self._rx.find(b"\r")) if i >= 0)
                raw = bytes(self._rx[:end])
                del self._rx[:end + 1]
                gen = self._gen
                try:
                    self._line(raw, gen)
                except GcodeFault as exc:
                    self.errors.append((self.lines_received, exc.code, raw.decode("ascii", "replace")))
                    self._emit(gen, f"error:{exc.code}")

    def _line(self, raw: bytes, gen: int) -> None:
        line = normalize(raw)
        if line.startswith(b"$"):
            self._system(line.decode("ascii", "replace"), gen)
            return
        if not line and not raw.strip():
            self._emit(gen, "ok")
            return
        self.lines_received += 1
        if self._t_first is None:
            self._t_first = time.monotonic()
        for f in self.faults:
            if f.line == self.lines_received and not f.fired:
                f.fired = True
                if f.kind == "reset":
                    self._reset(soft=False)
                    return
                # the wire lost / garbled the line's first byte: GRBL sees a number or junk first
                line = line[1:] if f.kind == "drop" else bytes([line[0] ^ 0x80]) + line[1:]
        if len(line) >= LINE_MAX:
            raise GcodeFault(11)
        if self.alarm is not None or self._state_name() == "Jog":
            raise GcodeFault(9)                         # G-code is locked out in alarm and while jogging
        block = self.interp.execute(line)
        if self.check_mode:
            self._emit(gen, "ok")
            return
        if block.kind == "eeprom":
            self._eeprom_write(gen)
        if not self._wait_room(block, gen):
            return
        self.motion.push(block)
        self._emit(gen, "ok")

    def _wait_room(self, block: Block, gen: int) -> bool:
        """Block like plan_buffer_line() until the planner has room; False if a reset intervened."""
        while not self.motion.room(block):
            self._lock.wait(0.01)
            if gen != self._gen or not self._running or self.alarm is not None:
                return False
        return True

    def _eeprom_write(self, gen: int) -> None:
        """GRBL syncs the planner, then writes EEPROM with its serial receive interrupt off."""
        while self.motion.queue and gen == self._gen and self._running and self.alarm is None:
            self._lock.wait(0.01)
        self._eeprom_until = time.monotonic() + self.eeprom_write_s
        while time.monotonic() < self._eeprom_until and self._running:
            self._lock.wait(self._eeprom_until - time.monotonic())


def main(argv: list[str] | None = None) -> int:
    """`fabedge sim grbl ...` (see grbl_cli)."""
    from drivers.sim.grbl_cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
