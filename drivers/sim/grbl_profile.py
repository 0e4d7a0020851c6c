"""GRBL's motion model for the virtual controller: acceleration, junction speed, look-ahead.

Each motion block gets GRBL's limits: acceleration along its direction from
$120-$122, a nominal speed from F (or the $110-$112 rapid rate) and the
override, and a maximum entry speed from the junction-deviation formula ($11)
with the block before it (zero into an empty planner). `replan` runs GRBL's
backward/forward passes over the queued blocks so the machine can always stop
at the end of what it has; the block already running keeps its profile. A
starved planner therefore makes the machine slow down and stop, as a real one.
"""

from __future__ import annotations

import math
from typing import Sequence

from drivers.sim.grbl_gcode import Block

MIN_JUNCTION_SPEED = 0.0     # mm/s, GRBL's MINIMUM_JUNCTION_SPEED


def limits(block: Block, prev: Block | None, settings: dict[int, float]) -> None:
    """Fill block.unit, block.accel and block.v_junction (prev: the motion block queued before it, if any)."""
    delta = [t - s for s, t in zip(block.start, block.target)]
    dist = math.sqrt(sum(d * d for d in delta))
    acc = [settings.get(120, 1000.0), settings.get(121, 1000.0), settings.get(122, 100.0)]
    unit = tuple(d / dist for d in delta) if dist > 0 else (0.0, 0.0, 0.0)
    block.unit = unit                              # an arc's chord (a full circle has none: a 90-degree corner)
    if block.arc or dist <= 0:
        block.accel = min(acc[0], acc[1])
    else:
        block.accel = min(a / abs(u) for a, u in zip(acc, unit) if abs(u) > 1e-12)
    if prev is None:
        block.v_junction = MIN_JUNCTION_SPEED
        return
    cos_theta = -sum(a * b for a, b in zip(prev.unit, unit))
    if cos_theta > 0.999999:                       # a full reversal
        block.v_junction = MIN_JUNCTION_SPEED
    elif cos_theta < -0.999999:                    # straight on
        block.v_junction = math.inf
    else:
        sin_half = math.sqrt(0.5 * (1.0 - cos_theta))
        v2 = block.accel * settings.get(11, 0.010) * sin_half / (1.0 - sin_half)
        block.v_junction = math.sqrt(max(MIN_JUNCTION_SPEED ** 2, v2))


def replan(blocks: Sequence[Block], entry: float, nominal) -> None:
    """Entry/exit speeds and trapezoids for `blocks` (not yet running); `entry` is fixed (0 or the running
    block's exit). `nominal(block)` gives its nominal speed in mm/s with the overrides applied."""
    n = len(blocks)
    if not n:
        return
    e = [0.0] * (n + 1)
    e[0] = entry
    for i in range(n - 1, 0, -1):                  # backward: able to stop at the end of the queue
        b, before = blocks[i], blocks[i - 1]
        if b.kind != "motion" or before.kind != "motion":
            e[i] = 0.0
            continue
        e[i] = min(b.v_junction, nominal(b), nominal(before), math.sqrt(e[i + 1] ** 2 + 2 * b.accel * b.length))
    for i in range(n):                             # forward: able to reach it from the entry
        b = blocks[i]
        if b.kind != "motion":
            e[i + 1] = 0.0
            continue
        e[i + 1] = min(e[i + 1], math.sqrt(e[i] ** 2 + 2 * b.accel * b.length))
    for i, b in enumerate(blocks):
        if b.kind == "motion":
            b.v_entry, b.v_exit = e[i], e[i + 1]
            b.profile = trapezoid(b.length, e[i], e[i + 1], nominal(b), b.accel)


def trapezoid(length: float, v0: float, v1: float, vn: float, a: float) -> tuple[float, float, float, float]:
    """(peak speed, accelerate s, cruise s, decelerate s) of one block."""
    if length <= 0:
        return (0.0, 0.0, 0.0, 0.0)
    vp = min(vn, math.sqrt(max(0.0, (2 * a * length + v0 * v0 + v1 * v1) / 2)))
    vp = max(vp, v0, v1, 1e-9)
    da, dd = (vp * vp - v0 * v0) / (2 * a), (vp * vp - v1 * v1) / (2 * a)
    cruise = max(0.0, length - da - dd)
    return (vp, (vp - v0) / a, cruise / vp, (vp - v1) / a)


def total_time(b: Block) -> float:
    if b.kind != "motion":
        return b.duration
    _, ta, tc, td = b.profile
    return ta + tc + td


def distance_and_speed(b: Block, t: float) -> tuple[float, float]:
    """Distance along the block and speed (mm, mm/s) t seconds into it."""
    vp, ta, tc, td = b.profile
    v0, a = b.v_entry, b.accel
    if t <= ta:
        return b.base + v0 * t + a * t * t / 2, v0 + a * t
    da = (vp * vp - v0 * v0) / (2 * a)
    if t <= ta + tc:
        return b.base + da + vp * (t - ta), vp
    tau = min(t - ta - tc, td)
    return min(b.length, b.base + da + vp * tc + vp * tau - a * tau * tau / 2), max(0.0, vp - a * tau)


def reprofile_running(b: Block, elapsed: float, nominal: float) -> None:
    """An override changed while b runs: the rest of it gets a new trapezoid from where it is now."""
    done, v = distance_and_speed(b, elapsed)
    b.base, b.v_entry = done, v
    b.profile = trapezoid(b.length - done, v, min(b.v_exit, max(nominal, v)), nominal, b.accel)
