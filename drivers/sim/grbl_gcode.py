"""The virtual GRBL's G-code interpreter: one received line -> one planner block.

It keeps GRBL's modal state (motion mode, units, distance mode, feed, spindle
and S), answers the same error numbers GRBL 1.1 does for the mistakes a
sender can make, and turns each accepted line into a Block with its length,
duration at the programmed feed and whether the laser is on while it runs.
Only what a laser job and a sender exercise is modelled; what GRBL supports
but this does not (probing, tool length offsets) is answered error:20.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_WORD = re.compile(rb"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
_COMMENT = re.compile(rb"\([^)]*\)|;.*$")

#: G-code lines GRBL writes to EEPROM (it pauses serial reception while it does).
EEPROM_G = {(10, 0), (28, 1), (30, 1)}


class GcodeFault(Exception):
    """A line GRBL rejects: `code` is the number sent back as error:N."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@dataclass
class Modal:
    """GRBL's parser state that persists between lines."""
    motion: int = 0                 # 0 1 2 3, or 80 (cancelled)
    absolute: bool = True           # G90 / G91
    inches: bool = False            # G20 / G21
    feed: float = 0.0               # mm/min
    spindle: str = "M5"             # M3 / M4 / M5
    s: float = 0.0
    pos: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    offset: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])   # G92

    def reset_program(self) -> None:
        """What M2/M30 restore (GRBL: G1 G17 G90 G94 G54, spindle and coolant off)."""
        self.motion, self.absolute, self.spindle = 1, True, "M5"
        self.offset = [0.0, 0.0, 0.0]


@dataclass
class Block:
    """One accepted line as the planner will execute it."""
    text: str                       # the line as GRBL saw it (upper case, no spaces/comments)
    kind: str                       # "motion" | "dwell" | "modal" | "eeprom"
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    length: float = 0.0             # mm along the path
    feed: float = 0.0               # mm/min while running
    duration: float = 0.0           # machine seconds at feed
    power: float = 0.0              # S while the laser is on
    laser: bool = False             # laser on during this block
    jog: bool = False
    rapid: bool = False             # G0: runs at the rapid rate (rapid override)
    dynamic: bool = False           # M4: power follows speed (GRBL laser mode)
    arc: bool = False               # G2/G3: GRBL cuts it into short segments, so no corners inside it
    # filled by grbl_profile when the block enters the planner
    unit: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel: float = 1.0              # mm/s^2 along the block
    v_junction: float = 0.0         # mm/s, largest entry speed the corner allows
    v_entry: float = 0.0
    v_exit: float = 0.0
    profile: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # peak, accel s, cruise s, decel s
    base: float = 0.0               # mm already run when the profile was last redone (an override)


def normalize(raw: bytes) -> bytes:
    """What GRBL's line reader keeps: comments and whitespace dropped, upper case."""
    line = _COMMENT.sub(b"", raw)
    return line.replace(b" ", b"").replace(b"\t", b"").upper()


def words(line: bytes) -> list[tuple[str, float]]:
    """Split into (letter, value) pairs; error:1 / error:2 like GRBL's parser."""
    out, pos = [], 0
    while pos < len(line):
        m = _WORD.match(line, pos)
        if m is None:
            if not (65 <= line[pos] <= 90):
                raise GcodeFault(1)           # expected command letter
            raise GcodeFault(2)               # bad number format
        out.append((m.group(1).decode(), float(m.group(2))))
        pos = m.end()
    return out


class Interpreter:
    """Turns lines into blocks; `settings` is the live `$` table (read for rates and laser mode)."""

    def __init__(self, settings: dict[int, float]):
        self.settings = settings
        self.modal = Modal()

    def execute(self, line: bytes, jog: bool = False) -> Block:
        text = line.decode("ascii", "replace")
        ws = words(line)
        gcodes, mcodes, vals = [], [], {}
        for letter, value in ws:
            if letter == "G":
                gcodes.append(value)
            elif letter == "M":
                mcodes.append(value)
            elif letter == "N":
                continue
            else:
                if letter in vals:
                    raise GcodeFault(25)      # repeated word
                vals[letter] = value
        m = self.modal
        motion, eeprom, dwell, absolute, g53 = None, False, False, m.absolute, False
        for g in gcodes:
            code, sub = int(g), round((g - int(g)) * 10)
            if jog and code in (0, 1, 2, 3, 4, 10, 28, 30, 92):
                raise GcodeFault(16)
            if code in (0, 1, 2, 3, 80) and sub == 0:
                if motion is not None:
                    raise GcodeFault(21)
                motion = code
            elif code == 4:
                dwell = True
            elif (code, sub) in EEPROM_G:
                eeprom = True
            elif code in (90, 91) and sub == 0:
                absolute = code == 90
            elif code in (20, 21):
                m.inches = code == 20
            elif code == 92 and sub == 0:
                pass
            elif code == 53:
                g53 = True
            elif (code in (17, 18, 19, 40, 49, 54, 55, 56, 57, 58, 59, 61, 93, 94) and sub == 0) or \
                    (code == 91 and sub == 1) or (code in (28, 30) and sub == 0):
                pass
            else:
                raise GcodeFault(20)          # unsupported command
        for mc in mcodes:
            code = int(mc)
            if code in (3, 4, 5):
                m.spindle = f"M{code}"
            elif code in (2, 30):
                m.reset_program()
            elif code not in (0, 1, 7, 8, 9):
                raise GcodeFault(20)
        unit = 25.4 if m.inches else 1.0
        if "F" in vals:
            if vals["F"] < 0:
                raise GcodeFault(4)
            m.feed = vals["F"] * unit
        if "S" in vals:
            if vals["S"] < 0:
                raise GcodeFault(4)
            m.s = vals["S"]
        if not jog:
            m.absolute = absolute
        if motion is not None and not jog:
            m.motion = motion
        axes = [vals.get(a) for a in "XYZ"]
        has_axes = any(v is not None for v in axes)
        if dwell:
            if "P" not in vals:
                raise GcodeFault(28)
            return Block(text, "dwell", tuple(m.pos), tuple(m.pos), duration=max(0.0, vals["P"]))
        if any(int(g) == 92 and round((g - int(g)) * 10) == 0 for g in gcodes):
            for i, v in enumerate(axes):
                if v is not None:
                    m.offset[i] = m.pos[i] - v * unit
            return Block(text, "modal", tuple(m.pos), tuple(m.pos))
        if eeprom:
            return Block(text, "eeprom", tuple(m.pos), tuple(m.pos))
        if not has_axes:
            if "I" in vals or "J" in vals or "R" in vals:
                raise GcodeFault(36 if motion is None else 26)
            return Block(text, "modal", tuple(m.pos), tuple(m.pos))
        mode = 1 if jog else m.motion
        if mode == 80:
            raise GcodeFault(31)
        start = tuple(m.pos)
        target = []
        for i, v in enumerate(axes):
            if v is None:
                target.append(m.pos[i])
            elif absolute or g53:
                target.append(v * unit + (0.0 if g53 else m.offset[i]))
            else:
                target.append(m.pos[i] + v * unit)
        target_t = (target[0], target[1], target[2])
        length = self._length(mode, start, target_t, vals, unit)
        rates = [self.settings.get(110, 5000.0), self.settings.get(111, 5000.0), self.settings.get(112, 500.0)]
        moved = [abs(target_t[i] - start[i]) > 1e-9 for i in range(3)]
        max_rate = min([r for r, mv in zip(rates, moved) if mv] or [rates[0]])
        if mode == 0:
            feed = max_rate
        else:
            feed = (vals["F"] * unit) if jog and "F" in vals else m.feed
            if feed <= 0:
                raise GcodeFault(22)          # undefined feed rate
            feed = min(feed, max_rate)
        laser_mode = self.settings.get(32, 0) == 1
        power = min(m.s, self.settings.get(30, 1000.0))
        on = m.spindle in ("M3", "M4") and power > 0 and not jog and (mode != 0 or not laser_mode)
        m.pos = list(target_t)
        return Block(text, "motion", start, target_t, length=length, feed=feed,
                     duration=length / feed * 60.0 if feed > 0 else 0.0,
                     power=power if on else 0.0, laser=on, jog=jog, rapid=mode == 0,
                     dynamic=m.spindle == "M4", arc=mode in (2, 3))

    @staticmethod
    def _length(mode: int, start, target, vals: dict[str, float], unit: float) -> float:
        chord = math.dist(start, target)
        if mode not in (2, 3):
            return chord
        dx, dy = target[0] - start[0], target[1] - start[1]
        if "R" in vals:
            r = abs(vals["R"] * unit)
            half = math.hypot(dx, dy) / 2
            if r < half - 1e-6 or r == 0:
                raise GcodeFault(33)
            angle = 2 * math.asin(min(1.0, half / r))
            if vals["R"] < 0:
                angle = 2 * math.pi - angle
            return r * angle
        if "I" not in vals and "J" not in vals:
            raise GcodeFault(35)
        cx, cy = start[0] + vals.get("I", 0.0) * unit, start[1] + vals.get("J", 0.0) * unit
        r = math.hypot(start[0] - cx, start[1] - cy)
        a0 = math.atan2(start[1] - cy, start[0] - cx)
        a1 = math.atan2(target[1] - cy, target[0] - cx)
        sweep = a1 - a0
        if mode == 2:                          # clockwise: negative sweep
            if sweep >= -1e-9:
                sweep -= 2 * math.pi
        elif sweep <= 1e-9:
            sweep += 2 * math.pi
        return math.hypot(abs(sweep) * r, target[2] - start[2])
