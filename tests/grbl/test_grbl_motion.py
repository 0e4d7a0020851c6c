"""The virtual GRBL's planner, run deterministically (no threads, no clock): GRBL's motion model."""

from __future__ import annotations

import pytest

from drivers.sim.grbl_gcode import Interpreter
from drivers.sim.grbl_motion import Motion
from drivers.sim.grbl_settings import DEFAULTS

DT = 0.0005


def run(lines: list[bytes], settings: dict | None = None, feed_gap: float = 0.0) -> tuple[float, Motion, list]:
    """Machine seconds to run the lines; feed_gap seconds pass between queueing one line and the next."""
    st = {**DEFAULTS, 120: 1000.0, 121: 1000.0, 11: 0.01, **(settings or {})}
    interp, motion = Interpreter(st), Motion(st, time_scale=1.0)
    t, done, speeds = 0.0, [], []
    for line in lines:
        motion.push(interp.execute(line))
        waited = 0.0
        while waited < feed_gap:
            done += motion.advance(DT)
            t, waited = t + DT, waited + DT
            speeds.append(motion.feed_and_power()[0] / 60)
    while motion.queue:
        done += motion.advance(DT)
        t += DT
        speeds.append(motion.feed_and_power()[0] / 60)
        assert t < 100
    return t, motion, speeds


def test_a_straight_move_is_a_trapezoid():
    t, m, speeds = run([b"G1X100F6000"])                       # 100 mm/s, 1000 mm/s^2: 0.1 + 0.9 + 0.1 s
    assert t == pytest.approx(1.1, abs=0.002)
    assert max(speeds) == pytest.approx(100.0, abs=0.5)


def test_collinear_blocks_do_not_stop_but_a_corner_slows_down():
    straight, _, _ = run([b"G1X50F6000", b"X100"])
    corner, _, speeds = run([b"G1X50F6000", b"Y50"])
    assert straight == pytest.approx(1.1, abs=0.003)            # full speed through the joint
    assert corner > 1.15                                          # slowed for the 90-degree corner
    mid = speeds[int(0.58 / DT)]
    assert 0 < mid < 50                                           # ...but not to a stop (junction deviation)


def test_a_starved_planner_stops_between_blocks():
    fed, m1, fed_speeds = run([b"G1X10F6000", b"X20", b"X30"])
    _, m2, starved_speeds = run([b"G1X10F6000", b"X20", b"X30"], feed_gap=0.3)
    assert m1.starved == 0 and m2.starved == 2
    assert fed == pytest.approx(0.4, abs=0.002)                  # one trapezoid over 30 mm
    assert min(fed_speeds[int(0.11 / DT):int(0.29 / DT)]) == pytest.approx(100, abs=0.5)
    assert starved_speeds[int(0.25 / DT)] == 0                   # stopped, waiting for the next line


def test_m4_power_follows_speed_m3_does_not():
    st = {**DEFAULTS}
    for mode, expect_scaled in ((b"M4", True), (b"M3", False)):
        interp, motion = Interpreter(st), Motion(st)
        motion.push(interp.execute(b"G1X100F6000" + mode + b"S1000"))
        motion.advance(0.02)                                     # accelerating: 20 of 100 mm/s
        feed, power = motion.feed_and_power()
        assert feed == pytest.approx(1200, rel=0.05)
        assert power == (pytest.approx(200, rel=0.05) if expect_scaled else 1000)
