"""The virtual GRBL's 15-block planner and steppers, in time-scaled real time.

Blocks run one after the other on GRBL's trapezoids (grbl_profile: $120-$122
acceleration, $11 junction deviation, look-ahead over the queued blocks, the
feed and rapid overrides); `advance(dt)` moves machine time on by dt * time_scale and returns
the blocks that finished, in order, so the firmware can log them. Laser-on
path length and time are counted as the laser actually runs, including the
part of a block cut before a reset or an alarm. Not thread-safe: the firmware
calls it under its own lock.
"""

from __future__ import annotations

from collections import deque

from drivers.sim.grbl_gcode import Block
from drivers.sim.grbl_profile import distance_and_speed, limits, replan, reprofile_running, total_time

HOLD_DECEL_S = 0.05          # machine seconds from feed hold to standstill


class Motion:
    def __init__(self, settings: dict[int, float], blocks: int = 15, time_scale: float = 1.0,
                 max_queued: int = 64):
        self.settings = settings              # the live $ table: accelerations, junction deviation
        self.started: Block | None = None     # the running block: its profile is fixed
        self.starved = 0                      # times the planner ran dry and motion then resumed
        self.slowed = 0                       # cutting blocks that never reached 90 % of their feed
        self._dry = False
        self.blocks = blocks                  # planner blocks (motion and dwell)
        self.max_queued = blocks + max_queued # plus modal lines waiting their turn
        self.time_scale = time_scale
        self.queue: deque[Block] = deque()
        self.planned = 0                      # motion/dwell blocks in the queue
        self.elapsed = 0.0                    # machine s into the head block
        self.hold = ""                        # "" | "decel" | "done"
        self.hold_left = 0.0
        self.feed_ov = 100
        self.rapid_ov = 100
        self.spindle_ov = 100
        self.laser_on_mm = 0.0
        self.laser_on_s = 0.0
        self.pos = [0.0, 0.0, 0.0]

    # ---- planner ---------------------------------------------------------------
    def room(self, block: Block) -> bool:
        if block.kind in ("motion", "dwell"):
            return self.planned < self.blocks
        return len(self.queue) < self.max_queued

    def push(self, block: Block) -> None:
        if block.kind == "motion":
            planned = [b for b in self.queue if b.kind in ("motion", "dwell")]
            prev = planned[-1] if planned and planned[-1].kind == "motion" else None
            limits(block, prev, self.settings)
            if self._dry:
                self.starved += 1
            self._dry = False
        self.queue.append(block)
        if block.kind in ("motion", "dwell"):
            self.planned += 1
            self.replan()

    def nominal(self, b: Block) -> float:
        """mm/s the block aims for, with the feed or rapid override."""
        return b.feed / 60.0 * (self.rapid_ov if b.rapid else self.feed_ov) / 100.0

    def replan(self, overrides: bool = False) -> None:
        """Look-ahead over the queued blocks; the running one keeps its plan unless an override changed."""
        planned = [b for b in self.queue if b.kind in ("motion", "dwell")]
        if planned and planned[0] is self.started:
            first = planned.pop(0)
            if overrides and first.kind == "motion":
                reprofile_running(first, self.elapsed, self.nominal(first))
                self.elapsed = 0.0
            replan(planned, first.v_exit if first.kind == "motion" else 0.0, self.nominal)
        else:
            replan(planned, 0.0, self.nominal)

    def free_blocks(self) -> int:
        return self.blocks - self.planned

    def moving(self) -> bool:
        return self.hold != "done" and any(b.kind in ("motion", "dwell") for b in self.queue)

    def flush(self) -> None:
        """Drop everything planned (reset, alarm, jog cancel); the position stays where it got to."""
        self.pos = list(self.position())
        self.queue.clear()
        self.planned, self.elapsed, self.hold, self.hold_left = 0, 0.0, "", 0.0
        self.started, self._dry = None, False

    def flush_jog(self) -> None:
        if self.queue and self.queue[0].jog:
            self.pos = list(self.position())
        kept = [b for b in self.queue if not b.jog]
        if len(kept) != len(self.queue):
            self.elapsed, self.started = 0.0, None
        self.queue = deque(kept)
        self.planned = sum(1 for b in kept if b.kind in ("motion", "dwell"))

    # ---- feed hold ---------------------------------------------------------------
    def feed_hold(self) -> None:
        if self.hold == "":
            self.hold, self.hold_left = ("decel", HOLD_DECEL_S) if self.moving() else ("done", 0.0)

    def cycle_start(self) -> None:
        self.hold, self.hold_left = "", 0.0

    # ---- steppers ------------------------------------------------------------------
    def advance(self, dt_real: float) -> list[Block]:
        """Run machine time on; return the blocks (and modal lines) that completed, in order."""
        done: list[Block] = []
        dt = dt_real * self.time_scale
        while self.queue and self.queue[0].kind in ("modal", "eeprom"):
            done.append(self.queue.popleft())
        if self.hold == "done":
            return done
        if self.hold == "decel":
            if self.hold_left <= dt:
                dt, self.hold = self.hold_left, "done"
            else:
                self.hold_left -= dt
        while dt > 0 and self.queue:
            b = self.queue[0]
            if b.kind in ("modal", "eeprom"):
                done.append(self.queue.popleft())
                continue
            self.started = b
            need = total_time(b) - self.elapsed
            step = min(need, dt)
            if b.laser and b.kind == "motion":
                self.laser_on_s += step
                self.laser_on_mm += (distance_and_speed(b, self.elapsed + step)[0]
                                     - distance_and_speed(b, self.elapsed)[0])
            if need <= dt:
                dt -= max(need, 0.0)
                self.queue.popleft()
                self.planned -= 1
                self.elapsed, self.started = 0.0, None
                self.pos = list(b.target)
                if b.laser and b.kind == "motion" and b.profile[0] < 0.9 * self.nominal(b):
                    self.slowed += 1
                done.append(b)
                if not self.planned:
                    self._dry = True
            else:
                self.elapsed += dt
                dt = 0.0
        while self.queue and self.queue[0].kind in ("modal", "eeprom"):
            done.append(self.queue.popleft())
        return done

    # ---- what the status report shows --------------------------------------------------
    def current(self) -> Block | None:
        for b in self.queue:
            if b.kind in ("motion", "dwell"):
                return b
        return None

    def position(self) -> tuple[float, float, float]:
        b = self.queue[0] if self.queue else None
        if b is None or b.kind != "motion" or b.length <= 0:
            return (self.pos[0], self.pos[1], self.pos[2])
        f = min(1.0, distance_and_speed(b, self.elapsed)[0] / b.length)
        return tuple(s + (t - s) * f for s, t in zip(b.start, b.target))  # type: ignore[return-value]

    def feed_and_power(self) -> tuple[float, float]:
        """(mm/min, S) right now: M4 power follows the speed, as GRBL's laser mode does."""
        b = self.queue[0] if self.queue else None
        if b is None or b.kind != "motion" or self.hold == "done" or b is not self.started:
            return 0.0, 0.0
        v = distance_and_speed(b, self.elapsed)[1]
        if not b.laser:
            return v * 60.0, 0.0
        scale = min(1.0, v / self.nominal(b)) if b.dynamic and self.nominal(b) > 0 else 1.0
        return v * 60.0, b.power * scale * self.spindle_ov / 100.0
