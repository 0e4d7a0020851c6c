"""The virtual Marlin's physical side: a planner of BLOCK_BUFFER_SIZE moves that
executes in (time-scaled) real time, and heaters that warm towards their targets.

Timing only has to be plausible (trapezoids from feedrate and acceleration,
a crude junction speed), because what the tests and the benchmark watch is
whether the host keeps this planner fed, not the exact print time.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

JERK_MM_S = 8.0          # speed kept through a sharp corner
HEAT_RATE_C_S = 3.0      # hotend warms this fast (bed: a third of it)
AMBIENT_C = 21.0


def trapezoid_time(distance: float, feed: float, accel: float, v_edge: float) -> float:
    """Seconds to move `distance` at cruise `feed`, starting and ending at `v_edge`."""
    if distance <= 0.0:
        return 0.0
    v_edge = min(v_edge, feed)
    ramp = (feed * feed - v_edge * v_edge) / (2.0 * accel)       # distance to reach feed
    if 2.0 * ramp <= distance:
        return 2.0 * (feed - v_edge) / accel + (distance - 2.0 * ramp) / feed
    v_peak = math.sqrt(v_edge * v_edge + accel * distance)       # triangle profile
    return 2.0 * (v_peak - v_edge) / accel


@dataclass
class Planner:
    """A ring of planned moves; each block finishes at a real (monotonic) time."""

    size: int = 16
    accel: float = 1000.0
    time_scale: float = 1.0
    blocks: collections.deque = field(default_factory=collections.deque)   # end times
    underruns: int = 0            # a move arrived to an empty planner after earlier moves drained
    stall_underruns: int = 0      # ...while the simulator itself had been descheduled (not the host's doing)
    excused: bool = False         # set by the simulator for a tick in which it woke late
    _drained_after_move: bool = False
    _drain_excused: bool = False
    _last_dir: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _last_feed: float = 0.0
    machine_seconds: float = 0.0

    @property
    def planned(self) -> int:
        return len(self.blocks)

    def free(self) -> int:
        """Marlin's P: BLOCK_BUFFER_SIZE - movesplanned() - 1."""
        return max(0, self.size - len(self.blocks) - 1)

    def full(self) -> bool:
        return len(self.blocks) >= self.size - 1

    def advance(self, now: float) -> None:
        """Retire finished blocks."""
        blocks = self.blocks
        while blocks and blocks[0] <= now:
            blocks.popleft()
            if not blocks:
                self._drained_after_move = True
                self._drain_excused = self.excused

    def next_end(self) -> float | None:
        return self.blocks[0] if self.blocks else None

    def add_move(self, now: float, delta: tuple[float, float, float, float], feed_mm_s: float) -> None:
        """Plan a straight move of (dx, dy, dz, de) at `feed_mm_s`."""
        dx, dy, dz, de = delta
        dist = math.sqrt(dx * dx + dy * dy + dz * dz) or abs(de)
        if dist <= 0.0:
            return
        feed = max(0.1, feed_mm_s)
        unit = (dx / dist, dy / dist, dz / dist)
        if self.blocks:
            cos_t = sum(a * b for a, b in zip(unit, self._last_dir))
            v_edge = max(JERK_MM_S, min(feed, self._last_feed) * max(0.0, cos_t))
        else:
            v_edge = JERK_MM_S
            if self._drained_after_move:
                if self.excused or self._drain_excused:
                    self.stall_underruns += 1
                else:
                    self.underruns += 1
        self._drained_after_move = False
        seconds = trapezoid_time(dist, feed, self.accel, v_edge)
        self.machine_seconds += seconds
        start = self.blocks[-1] if self.blocks else now
        self.blocks.append(start + seconds / self.time_scale)
        self._last_dir, self._last_feed = unit, feed

    def pause_accounting(self) -> None:
        """A dwell, heat-up or homing empties the planner on purpose: not an underrun."""
        self._drained_after_move = False

    def clear(self) -> None:
        """Quick stop (M410) or reset: drop every planned move."""
        self.blocks.clear()
        self._drained_after_move = False


@dataclass
class Heater:
    name: str
    rate_c_s: float
    current: float = AMBIENT_C
    target: float = 0.0

    def step(self, dt_machine: float) -> None:
        goal = self.target if self.target > 0 else AMBIENT_C
        step = self.rate_c_s * dt_machine
        if abs(goal - self.current) <= step:
            self.current = goal
        else:
            self.current += step if goal > self.current else -step

    def reached(self) -> bool:
        return self.target <= 0 or abs(self.current - self.target) <= 1.0


class Thermal:
    """Hotend and bed with a linear warm-up; reports in Marlin's M105 format."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.hotend = Heater("T", HEAT_RATE_C_S)
        self.bed = Heater("B", HEAT_RATE_C_S / 3.0)
        self._last = None

    def update(self, now: float) -> None:
        if self._last is not None:
            dt = (now - self._last) * self.time_scale
            self.hotend.step(dt)
            self.bed.step(dt)
        self._last = now

    def report(self) -> str:
        h, b = self.hotend, self.bed
        return (f"T:{h.current:.2f} /{h.target:.2f} B:{b.current:.2f} /{b.target:.2f} "
                f"@:{127 if h.current < h.target else 0} B@:{127 if b.current < b.target else 0}")
