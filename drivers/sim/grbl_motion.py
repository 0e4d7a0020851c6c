"""The virtual GRBL's 15-block planner and steppers, in time-scaled real time.

Blocks run at their programmed feed (scaled by the feed override) one after
the other; `advance(dt)` moves machine time on by dt * time_scale and returns
the blocks that finished, in order, so the firmware can log them. Laser-on
path length and time are counted as the laser actually runs, including the
part of a block cut before a reset or an alarm. Not thread-safe: the firmware
calls it under its own lock.
"""

from __future__ import annotations

from collections import deque

from drivers.sim.grbl_gcode import Block

HOLD_DECEL_S = 0.05          # machine seconds from feed hold to standstill


class Motion:
    def __init__(self, blocks: int = 15, time_scale: float = 1.0, max_queued: int = 64):
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
        self.queue.append(block)
        if block.kind in ("motion", "dwell"):
            self.planned += 1

    def free_blocks(self) -> int:
        return self.blocks - self.planned

    def moving(self) -> bool:
        return self.hold != "done" and any(b.kind in ("motion", "dwell") for b in self.queue)

    def flush(self) -> None:
        """Drop everything planned (reset, alarm, jog cancel); the position stays where it got to."""
        self.pos = list(self.position())
        self.queue.clear()
        self.planned, self.elapsed, self.hold, self.hold_left = 0, 0.0, "", 0.0

    def flush_jog(self) -> None:
        if self.queue and self.queue[0].jog:
            self.pos = list(self.position())
        kept = [b for b in self.queue if not b.jog]
        if len(kept) != len(self.queue):
            self.elapsed = 0.0
        self.queue = deque(kept)
        self.planned = sum(1 for b in kept if b.kind in ("motion", "dwell"))

    # ---- feed hold ---------------------------------------------------------------
    def feed_hold(self) -> None:
        if self.hold == "":
            self.hold, self.hold_left = ("decel", HOLD_DECEL_S) if self.moving() else ("done", 0.0)

    def cycle_start(self) -> None:
        self.hold, self.hold_left = "", 0.0

    # ---- steppers ------------------------------------------------------------------
    def _speed_factor(self, block: Block) -> float:
        if block.kind != "motion":
            return 1.0
        return (self.rapid_ov if block.rapid else self.feed_ov) / 100.0

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
            need = (b.duration / self._speed_factor(b)) - self.elapsed
            step = min(need, dt)
            if b.laser and b.duration > 0:
                self.laser_on_s += step * self._speed_factor(b)
                self.laser_on_mm += b.length * step * self._speed_factor(b) / b.duration
            if need <= dt:
                dt -= max(need, 0.0)
                self.queue.popleft()
                self.planned -= 1
                self.elapsed = 0.0
                self.pos = list(b.target)
                done.append(b)
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
        if b is None or b.kind != "motion" or b.duration <= 0:
            return (self.pos[0], self.pos[1], self.pos[2])
        f = min(1.0, self.elapsed * self._speed_factor(b) / b.duration)
        return tuple(s + (t - s) * f for s, t in zip(b.start, b.target))  # type: ignore[return-value]

    def feed_and_power(self) -> tuple[float, float]:
        b = self.queue[0] if self.queue else None
        if b is None or b.kind != "motion" or self.hold == "done":
            return 0.0, 0.0
        f = b.feed * self._speed_factor(b)
        return f, (b.power * self.spindle_ov / 100.0 if b.laser else 0.0)
