"""The motion planner: estimated seconds per line, the way the firmware will move.

`plan(tp, motion)` fills `tp.line_time` (float32, one value per line). The
machine's limits come from the config's [motion] section; the file's own
M201/M203/M204/M205 (and RepRapFirmware's M566, GRBL's $110-$122/$11) replace
them from their line on, as the firmware would. Waits (G4 P ms / S s) are
counted; heat-up waits (M109/M190) and homing (G28) drain the planner but add
no time, since it cannot be known (the parser flags them LF_DWELL).

Printers use classic jerk when `motion.junction_deviation == 0` — the model of
Prusa firmware and of PrusaSlicer's "normal mode" estimate, which this matches
within about 1 % — and Marlin 2's junction deviation otherwise. Lasers use GRBL's
model (`motion.planner == "grbl"`). The numeric work is in plan_kernel (numba).
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from edge.config import MotionSection
from edge.toolpath import plan_kernel as K
from edge.toolpath.model import L_DOLLAR, L_G, L_M, LF_DWELL, LF_SETTINGS, SF_RAPID, Toolpath

_WORD = re.compile(rb"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))")
_GRBL_SETTING = re.compile(rb"^\$(\d+)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+))")


def params_from_motion(motion: MotionSection) -> np.ndarray:
    """The kernel's parameter vector for the configured machine."""
    p = np.zeros(K.NPARAM)
    p[K.P_VMAX:K.P_VMAX + 4] = motion.max_feedrate
    p[K.P_AMAX:K.P_AMAX + 4] = motion.max_acceleration
    p[K.P_ACC] = motion.acceleration
    p[K.P_RACC] = motion.retract_acceleration
    p[K.P_TACC] = motion.travel_acceleration
    p[K.P_JD] = motion.junction_deviation
    p[K.P_JERK:K.P_JERK + 4] = motion.jerk
    p[K.P_VMIN] = motion.min_feedrate
    p[K.P_VMIN_T] = motion.min_travel_feedrate
    return p


def _mode(motion: MotionSection) -> int:
    if motion.planner == "grbl":
        return K.MODE_GRBL
    return K.MODE_JERK if motion.junction_deviation == 0.0 else K.MODE_JD


def _words(text: bytes) -> dict[str, float]:
    """Parameter letters of one command line, comments removed."""
    text = re.sub(rb"\([^)]*\)", b"", text.split(b";", 1)[0]).upper()
    out: dict[str, float] = {}
    for m in _WORD.finditer(text):
        out.setdefault(m.group(1).decode(), float(m.group(2)))
    return out


def _apply_setting(p: np.ndarray, letter: int, code: int, text: bytes) -> bool:
    """Change p as the firmware would for this line; False when nothing relevant changed."""
    if letter == L_DOLLAR:
        m = _GRBL_SETTING.match(text.strip())
        if not m:
            return False
        num, val = int(m.group(1)), float(m.group(2))
        if 110 <= num <= 112:
            p[K.P_VMAX + num - 110] = val / 60.0
        elif 120 <= num <= 122:
            p[K.P_AMAX + num - 120] = val
        elif num == 11:
            p[K.P_JD] = val
        else:
            return False
        return True
    if letter != L_M:
        return False
    w = _words(text)
    # a zero or negative limit would stall the machine model (division by zero): the
    # firmware's own bounds checks reject such values, so the planner ignores them too
    for key in [k for k, v in w.items() if v <= 0.0 and not (code == 205 and k in "XYZESTJB")]:
        del w[key]
    axes = "XYZE"
    if code == 201:                                   # max acceleration per axis
        for i, a in enumerate(axes):
            if a in w:
                p[K.P_AMAX + i] = w[a]
    elif code == 203:                                 # max feedrate per axis, mm/s
        for i, a in enumerate(axes):
            if a in w:
                p[K.P_VMAX + i] = w[a]
    elif code == 204:
        if "S" in w:                                  # legacy: printing and travel
            p[K.P_ACC] = p[K.P_TACC] = w["S"]
            if "T" in w:
                p[K.P_RACC] = w["T"]
        else:
            if "P" in w:
                p[K.P_ACC] = w["P"]
            if "R" in w:
                p[K.P_RACC] = w["R"]
            if "T" in w:
                p[K.P_TACC] = w["T"]
    elif code == 205:                                 # jerk, minimum feedrates, junction deviation
        if "X" in w:
            p[K.P_JERK] = p[K.P_JERK + 1] = w["X"]
        for i, a in enumerate(axes):
            if a in w and a != "X":
                p[K.P_JERK + i] = w[a]
        if "S" in w:
            p[K.P_VMIN] = w["S"]
        if "T" in w:
            p[K.P_VMIN_T] = w["T"]
        if "J" in w:
            p[K.P_JD] = w["J"]
    elif code == 566:                                 # RepRapFirmware jerk, mm/min
        for i, a in enumerate(axes):
            if a in w:
                p[K.P_JERK + i] = w[a] / 60.0
    else:
        return False
    return True


def _dwell_seconds(letter: int, code: int, text: bytes) -> float:
    if letter == L_G and code == 4:
        w = _words(text)
        return w.get("S", 0.0) + w.get("P", 0.0) / 1000.0
    return 0.0


class EventLog:
    """The settings and wait events of a file, collected in line order (in one go or chunk
    by chunk as the parser finishes lines), as the arrays plan_kernel.plan_range reads."""

    def __init__(self, motion: MotionSection) -> None:
        self.p = params_from_motion(motion)
        self.lines: list[int] = []
        self.kinds: list[int] = []
        self.dwell: list[float] = []
        self.rows: list[np.ndarray] = []

    def scan(self, line_flags: np.ndarray, letter: np.ndarray, code: np.ndarray, a: int, b: int,
             line_bytes: Callable[[int], bytes]) -> None:
        """Add the events of lines [a, b)."""
        step = 1 << 20   # in slices: no temporary the size of the file's line count
        p = self.p
        for lo in range(a, b, step):
            hi = min(b, lo + step)
            for i in (np.flatnonzero(line_flags[lo:hi] & (LF_SETTINGS | LF_DWELL)) + lo).tolist():
                let, cod, flags = int(letter[i]), int(code[i]), int(line_flags[i])
                text = line_bytes(i)
                if flags & LF_SETTINGS and _apply_setting(p, let, cod, text):
                    self._add(i, K.EV_SETTINGS, 0.0)
                if flags & LF_DWELL:
                    self._add(i, K.EV_WAIT, _dwell_seconds(let, cod, text))

    def _add(self, line: int, kind: int, dwell: float) -> None:
        self.lines.append(line)
        self.kinds.append(kind)
        self.dwell.append(dwell)
        self.rows.append(self.p.copy())

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.rows:
            return (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0), np.zeros((0, K.NPARAM)))
        return (np.asarray(self.lines, np.int64), np.asarray(self.kinds, np.int8),
                np.asarray(self.dwell, np.float64), np.vstack(self.rows))


def events(tp: Toolpath, motion: MotionSection) -> tuple[np.ndarray, ...]:
    """Settings and wait events of the file, in line order, for the kernel."""
    log = EventLog(motion)
    log.scan(tp.line_flags, tp.letter, tp.code, 0, tp.lines, tp.line_bytes)
    return log.arrays()


def plan(tp: Toolpath, motion: MotionSection) -> None:
    """Fill tp.line_time with the planned seconds of every line (in place)."""
    tp.line_time = np.zeros(tp.lines, np.float32)   # fresh zero pages: only lines with time become resident
    ev_line, ev_kind, ev_dwell, ev_param = events(tp, motion)
    K.plan_range(tp.seg_line, tp.seg_x, tp.seg_y, tp.seg_z, tp.seg_de, tp.seg_f, tp.seg_flags,
                 np.asarray(tp.start, np.float64), ev_line, ev_kind, ev_dwell, ev_param,
                 params_from_motion(motion), _mode(motion), SF_RAPID, 0, len(tp.seg_line), tp.line_time)


def prusa_normal_estimate(text_tail: bytes) -> float | None:
    """Seconds of PrusaSlicer's `; estimated printing time (normal mode) = 1d 2h 3m 4s`, if present."""
    m = re.search(rb"estimated printing time \(normal mode\) = ([^\r\n]+)", text_tail)
    if not m:
        return None
    total = 0.0
    for num, unit in re.findall(rb"(\d+)([dhms])", m.group(1)):
        total += int(num) * {b"d": 86400, b"h": 3600, b"m": 60, b"s": 1}[unit]
    return total
