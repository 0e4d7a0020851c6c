"""Planner tests: hand-computed trapezoids and junctions on synthetic toolpaths,
GRBL mode, in-file settings and waits, and PrusaSlicer's own estimates."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from edge.config import MotionSection
from edge.toolpath import plan_kernel as K
from edge.toolpath.model import LF_DWELL, LF_MOVE, LF_SENDABLE, SF_EXTRUDE, SF_RAPID, SF_TRAVEL, Toolpath
from edge.toolpath.parse import load
from edge.toolpath.plan import plan, prusa_normal_estimate

SLICER = Path(__file__).resolve().parents[1] / "fixtures" / "slicer"

# An Original Prusa i3 MK3S as its firmware ships (normal mode), classic jerk.
MK3S = MotionSection(max_feedrate=[200.0, 200.0, 12.0, 120.0], max_acceleration=[1000.0, 1000.0, 200.0, 5000.0],
                     acceleration=1250.0, retract_acceleration=1250.0, travel_acceleration=1250.0,
                     junction_deviation=0.0, jerk=[8.0, 8.0, 0.4, 4.5])


def motion(**kw) -> MotionSection:
    base = dict(max_feedrate=[500.0, 500.0, 50.0, 100.0], max_acceleration=[10000.0, 10000.0, 10000.0, 10000.0],
                acceleration=1000.0, retract_acceleration=1000.0, travel_acceleration=1000.0,
                junction_deviation=0.0, jerk=[8.0, 8.0, 8.0, 8.0])
    base.update(kw)
    return MotionSection(**base)


def toolpath(moves: list[tuple], start=(0.0, 0.0, 0.0)) -> Toolpath:
    """One line per move: (x, y, z, de, f_mm_s[, flags])."""
    n = len(moves)
    col = list(zip(*[(m + (SF_TRAVEL if m[3] == 0 else SF_EXTRUDE,))[:6] for m in moves]))
    f32 = lambda i: np.asarray(col[i], np.float32)  # noqa: E731
    return Toolpath(
        path="<synthetic>", size=0, offset=np.arange(n, dtype=np.int64), letter=np.full(n, ord("G"), np.uint8),
        code=np.ones(n, np.int16), sub=np.zeros(n, np.uint8),
        line_flags=np.full(n, LF_SENDABLE | LF_MOVE, np.uint16), layer=np.zeros(n, np.int32),
        line_time=np.zeros(n, np.float32), seg_line=np.arange(n, dtype=np.int32),
        seg_x=f32(0), seg_y=f32(1), seg_z=f32(2), seg_de=f32(3), seg_f=f32(4),
        seg_power=np.zeros(n, np.float32), seg_flags=np.asarray(col[5], np.uint8), start=start)


def trapezoid_time(d: float, v: float, a: float, v0: float, v1: float) -> float:
    """Textbook time of one move: accelerate v0 -> v, cruise, decelerate v -> v1 (or a triangle)."""
    da, dd = (v * v - v0 * v0) / (2 * a), (v * v - v1 * v1) / (2 * a)
    if da + dd <= d:
        return (v - v0) / a + (d - da - dd) / v + (v - v1) / a
    vp = math.sqrt((2 * a * d + v0 * v0 + v1 * v1) / 2)
    return (vp - v0) / a + (vp - v1) / a


def test_single_move_trapezoid_matches_hand_computation():
    tp = toolpath([(100.0, 0, 0, 0, 100.0)])
    plan(tp, motion())
    # starts and ends at the jerk-safe speed 8 mm/s: 2*(100-8)/1000 + (100 - 9.936)/100
    assert tp.total_time() == pytest.approx(0.184 + 0.90064, rel=1e-5)
    assert tp.line_time[0] == pytest.approx(trapezoid_time(100, 100, 1000, 8, 8), rel=1e-5)


def test_move_too_short_to_cruise_is_a_triangle():
    tp = toolpath([(2.0, 0, 0, 0, 100.0)])
    plan(tp, motion())
    peak = math.sqrt(64 + 1000 * 2.0)  # meets the braking curve at mid-length
    assert tp.total_time() == pytest.approx(2 * (peak - 8) / 1000, rel=1e-5)
    assert peak < 100


def test_collinear_moves_keep_speed_through_the_junction():
    tp = toolpath([(50.0, 0, 0, 0, 100.0), (100.0, 0, 0, 0, 100.0)])
    plan(tp, motion())
    assert tp.total_time() == pytest.approx(trapezoid_time(100, 100, 1000, 8, 8), rel=1e-5)
    assert tp.line_time[1] == pytest.approx(tp.line_time[0], rel=1e-5)   # mirror images: accelerate / brake


def test_right_angle_corner_slows_to_jerk_speed():
    tp = toolpath([(100.0, 0, 0, 0, 100.0), (100.0, 100.0, 0, 0, 100.0)])
    plan(tp, motion())
    one = trapezoid_time(100, 100, 1000, 8, 8)
    assert tp.total_time() == pytest.approx(2 * one, rel=1e-5)


def test_gentle_corner_is_faster_than_a_right_angle():
    gentle = toolpath([(100.0, 0, 0, 0, 100.0), (200.0, 5.0, 0, 0, 100.0)])
    sharp = toolpath([(100.0, 0, 0, 0, 100.0), (100.0, 100.0, 0, 0, 100.0)])
    plan(gentle, motion())
    plan(sharp, motion())
    # the gentle corner (2.9 degrees) keeps speed: X changes by 0.1 mm/s, Y by 5 mm/s < jerk
    assert gentle.total_time() == pytest.approx(trapezoid_time(100 + math.hypot(100, 5), 100, 1000, 8, 8), rel=2e-3)
    assert gentle.total_time() < sharp.total_time() - 0.05


def test_junction_deviation_corner_speed():
    jd = 0.02
    tp = toolpath([(100.0, 0, 0, 0, 100.0), (100.0, 100.0, 0, 0, 100.0)])
    plan(tp, motion(junction_deviation=jd))
    s = math.sqrt(0.5)  # sin(theta/2) for a right angle
    vj = math.sqrt(1000 * jd * s / (1 - s))
    v0 = K.MIN_PLANNER_SPEED
    expect = trapezoid_time(100, 100, 1000, v0, vj) + trapezoid_time(100, 100, 1000, vj, v0)
    assert tp.total_time() == pytest.approx(expect, rel=1e-5)


def test_axis_limits_cap_feedrate_and_acceleration():
    # Z move asked at 100 mm/s on an axis limited to 10 mm/s and 100 mm/s^2
    tp = toolpath([(0, 0, 20.0, 0, 100.0)])
    plan(tp, motion(max_feedrate=[500.0, 500.0, 10.0, 100.0], max_acceleration=[1e4, 1e4, 100.0, 1e4],
                    jerk=[8.0, 8.0, 0.4, 8.0]))
    assert tp.total_time() == pytest.approx(trapezoid_time(20, 10, 100, 0.4, 0.4), rel=1e-5)


def test_retract_uses_retract_acceleration_and_e_limits():
    tp = toolpath([(0, 0, 0, -5.0, 200.0)])
    plan(tp, motion(retract_acceleration=500.0, max_feedrate=[500.0, 500.0, 50.0, 40.0], jerk=[8.0, 8.0, 8.0, 2.0]))
    assert tp.total_time() == pytest.approx(trapezoid_time(5, 40, 500, 2, 2), rel=1e-5)


def test_travel_acceleration_applies_to_moves_without_extrusion():
    travel = toolpath([(100.0, 0, 0, 0, 100.0)])
    printing = toolpath([(100.0, 0, 0, 1.0, 100.0)])
    m = motion(acceleration=500.0, travel_acceleration=2000.0)
    plan(travel, m)
    plan(printing, m)
    assert travel.total_time() == pytest.approx(trapezoid_time(100, 100, 2000, 8, 8), rel=1e-5)
    assert printing.total_time() == pytest.approx(trapezoid_time(100, 100, 500, 8, 8), rel=1e-5)


def test_minimum_feedrate_is_enforced():
    tp = toolpath([(10.0, 0, 0, 0.5, 1.0)])
    plan(tp, motion(min_feedrate=5.0))
    assert tp.total_time() == pytest.approx(10.0 / 5.0, rel=0.02)


def test_long_runs_through_the_lookahead_window_lose_nothing():
    # 1000 collinear 0.5 mm moves (several windows) take as long as one 500 mm move
    moves = [(0.5 * (i + 1), 0, 0, 0, 100.0) for i in range(1000)]
    tp = toolpath(moves)
    plan(tp, motion())
    assert len(moves) > 3 * K.REFRESH
    assert tp.total_time() == pytest.approx(trapezoid_time(500, 100, 1000, 8, 8), rel=1e-4)
    assert np.all(tp.line_time > 0)


def test_grbl_rapid_runs_at_max_rate_with_per_axis_acceleration():
    m = motion(planner="grbl", max_feedrate=[100.0, 50.0, 10.0, 1.0], max_acceleration=[1000.0, 250.0, 100.0, 1.0],
               junction_deviation=0.01)
    tp = toolpath([(0.0, 40.0, 0, 0, 10.0, SF_RAPID)])
    plan(tp, m)
    # G0 along Y ignores F: Y's own 50 mm/s and 250 mm/s^2, from and to rest
    assert tp.total_time() == pytest.approx(trapezoid_time(40, 50, 250, 0.05, 0.05), rel=1e-4)
    diag = toolpath([(30.0, 40.0, 0, 0, 1000.0)])
    plan(diag, m)
    # the diagonal is limited by Y: rate 50/0.8, acceleration 250/0.8
    assert diag.total_time() == pytest.approx(trapezoid_time(50, 62.5, 312.5, 0.05, 0.05), rel=1e-4)


def test_grbl_ignores_extrusion_and_uses_junction_deviation():
    m = motion(planner="grbl", junction_deviation=0.01, max_acceleration=[1000.0, 1000.0, 100.0, 1.0])
    tp = toolpath([(50.0, 0, 0, 3.0, 50.0), (50.0, 50.0, 0, 3.0, 50.0)])
    plan(tp, m)
    s = math.sqrt(0.5)
    jacc = 1000.0 / s   # junction vector at 45 degrees: each axis carries 1/sqrt(2)
    vj = math.sqrt(jacc * 0.01 * s / (1 - s))
    v0 = K.MIN_PLANNER_SPEED
    expect = trapezoid_time(50, 50, 1000, v0, vj) + trapezoid_time(50, 50, 1000, vj, v0)
    assert tp.total_time() == pytest.approx(expect, rel=1e-4)


def _gcode(tmp_path: Path, text: str) -> Toolpath:
    p = tmp_path / "t.gcode"
    p.write_text(text)
    return load(p)


def test_settings_in_the_file_apply_from_their_line_on(tmp_path):
    base = "G90\nM83\nG1 X100 F6000\nG1 X0\n"
    plain = _gcode(tmp_path, base)
    plan(plain, motion())
    slow = _gcode(tmp_path, "G90\nM83\nG1 X100 F6000\nM204 P200 T200\nG1 X0\n")
    plan(slow, motion())
    one = trapezoid_time(100, 100, 1000, 8, 8)
    assert plain.total_time() == pytest.approx(2 * one, rel=1e-4)
    assert slow.line_time[2] == pytest.approx(one, rel=1e-4)       # before the M204
    assert slow.line_time[4] == pytest.approx(trapezoid_time(100, 100, 200, 8, 8), rel=1e-4)
    capped = _gcode(tmp_path, "G90\nM203 X20\nM205 X4 Y4\nG1 X100 F6000\n")
    plan(capped, motion())
    assert capped.total_time() == pytest.approx(trapezoid_time(100, 20, 1000, 4, 4), rel=1e-4)


def test_waits_add_dwell_time_and_heat_waits_add_none(tmp_path):
    tp = _gcode(tmp_path, "G90\nM109 S200\nG4 P500\nG1 X100 F6000\nG4 S2\nM190 S60\n")
    plan(tp, motion())
    assert tp.line_flags[1] & LF_DWELL and tp.line_flags[5] & LF_DWELL   # flagged for the streamer
    assert tp.line_time[1] == 0.0
    assert tp.line_time[2] == pytest.approx(0.5)
    assert tp.line_time[4] == pytest.approx(2.0)
    assert tp.line_time[5] == 0.0
    assert tp.total_time() == pytest.approx(2.5 + trapezoid_time(100, 100, 1000, 8, 8), rel=1e-5)


PRUSA = sorted(SLICER.glob("prusa_*.gcode"))


def test_there_are_prusaslicer_fixtures():
    assert len(PRUSA) >= 3


@pytest.mark.parametrize("path", PRUSA, ids=[p.stem for p in PRUSA])
def test_estimate_matches_prusaslicer_within_one_percent(path):
    ref = prusa_normal_estimate(path.read_bytes())
    assert ref and ref > 60
    tp = load(path)
    plan(tp, MK3S)   # the file's own M201/M203/M204/M205 replace these from their line on
    err = (tp.total_time() - ref) / ref
    assert abs(err) < 0.01, f"{path.name}: planned {tp.total_time():.1f} s, PrusaSlicer {ref:.0f} s ({err:+.2%})"
    assert np.all(tp.line_time >= 0)


def test_machine_limits_in_the_file_matter():
    # prusa_torus.gcode carries faster Marlin 2 limits than MK3S: ignoring them changes the time a lot
    path = SLICER / "prusa_torus.gcode"
    tp = load(path)
    plan(tp, MK3S)
    with_file = tp.total_time()
    tp.line_flags[:] &= ~np.uint16(1 << 11)   # pretend no settings lines (LF_SETTINGS)
    plan(tp, MK3S)
    assert tp.total_time() > with_file * 1.02


def test_junction_deviation_mode_plans_real_files_plausibly():
    tp = load(SLICER / "prusa_screw_x3.gcode")
    ref = prusa_normal_estimate((SLICER / "prusa_screw_x3.gcode").read_bytes())
    plan(tp, dataclasses.replace(MK3S, junction_deviation=0.013))
    assert 0.8 * ref < tp.total_time() < 1.25 * ref


def test_laser_fixtures_plan_in_grbl_mode():
    m = MotionSection(planner="grbl", max_feedrate=[100.0, 100.0, 10.0, 1.0],
                      max_acceleration=[1000.0, 1000.0, 100.0, 1.0], junction_deviation=0.01)
    for name in ("laser_vector_plate.gcode", "laser_raster_disc.gcode"):
        tp = load(SLICER / name)
        plan(tp, m)
        cut_mm = 0.0
        pos = np.array(tp.start)
        for i in range(len(tp.seg_x)):
            nxt = np.array([tp.seg_x[i], tp.seg_y[i], tp.seg_z[i]], np.float64)
            cut_mm += float(np.linalg.norm(nxt - pos))
            pos = nxt
        # never faster than the whole path at the maximum rate
        assert tp.total_time() > cut_mm / 100.0


def test_slices_planned_apart_add_up_to_one_pass():
    from edge.toolpath.plan import _mode, events, params_from_motion
    from edge.toolpath.model import SF_RAPID
    tp = load(SLICER / "prusa_bunny.gcode")
    plan(tp, MK3S)
    whole = tp.line_time.copy()
    n = len(tp.seg_line)
    cuts = [0] + [int(np.searchsorted(tp.seg_line, tp.seg_line[n * k // 11])) for k in range(1, 11)] + [n]
    assert n > 10 * 5000
    sliced = np.zeros(tp.lines, np.float32)
    args = (tp.seg_line, tp.seg_x, tp.seg_y, tp.seg_z, tp.seg_de, tp.seg_f, tp.seg_flags,
            np.asarray(tp.start, np.float64), *events(tp, MK3S), params_from_motion(MK3S), _mode(MK3S), SF_RAPID)
    for lo, hi in zip(cuts[:-1], cuts[1:]):   # each slice warms up on WARM segments and looks AHEAD
        K.plan_range(*args, lo, hi, sliced)
    assert float(sliced.sum(dtype=np.float64)) == pytest.approx(float(whole.sum(dtype=np.float64)), rel=1e-5)
    assert np.abs(sliced - whole).max() < 0.02
    assert np.count_nonzero(sliced != whole) < 0.01 * tp.lines


def test_legacy_m204_s_sets_printing_and_travel_acceleration(tmp_path):
    tp = _gcode(tmp_path, "G90\nM83\nM204 S250 T900\nG1 X100 F6000\nG1 X0 E1\nG1 E-1 F6000\n")
    plan(tp, motion(max_feedrate=[500.0, 500.0, 50.0, 100.0]))
    assert tp.line_time[3] == pytest.approx(trapezoid_time(100, 100, 250, 8, 8), rel=1e-4)   # travel
    assert tp.line_time[4] == pytest.approx(trapezoid_time(100, 100, 250, 8, 8), rel=1e-4)   # printing
    assert tp.line_time[5] == pytest.approx(trapezoid_time(1, 100, 900, 8, 8), rel=1e-4)     # retract: T


def test_prusaslicer_estimate_line_is_read_with_days():
    text = b"; filament used [mm] = 1.0\n; estimated printing time (normal mode) = 1d 13h 32m 49s\n"
    assert prusa_normal_estimate(text) == 86400 + 13 * 3600 + 32 * 60 + 49
    assert prusa_normal_estimate(b"; nothing here\n") is None


def test_zero_limits_in_a_file_are_ignored_and_waits_without_moves_count(tmp_path):
    tp = _gcode(tmp_path, "M204 S0 P0\nM201 X0\nM203 X0\nG1 X10 F600\n")
    plan(tp, motion())
    assert tp.total_time() == pytest.approx(trapezoid_time(10, 10, 1000, 8, 8), rel=1e-4)
    only_wait = _gcode(tmp_path, "; no moves\nG4 S3\n")
    plan(only_wait, motion())
    assert len(only_wait.seg_x) == 0 and only_wait.total_time() == pytest.approx(3.0)


def test_trapezoid_time_never_goes_negative_when_exit_exceeds_cruise():
    # exit above cruise (the next block is faster): accelerate to cruise, then cruise to the end
    t = K.trapezoid_time(10.0, 1000.0, 0.0, 10.0, 50.0)
    assert t == pytest.approx(10.0 / 1000.0 + (10.0 - 0.05) / 10.0)
    assert K.trapezoid_time(10.0, 1000.0, 20.0, 10.0, 0.0) == pytest.approx(10.0 / 1000 + (10.0 - 0.05) / 10.0)
