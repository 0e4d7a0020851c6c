"""Laser rules against a virtual GRBL's real `$$` answer and the real toolpath parser/planner."""

from __future__ import annotations

import math

import pytest

from drivers.base import JobFinished
from edge import config
from edge.laser import LaserRefused, check, parse_settings, read_settings
from edge.toolpath import load
from grbl_helpers import FIXTURES, job_lines

VECTOR = FIXTURES / "laser_vector_plate.gcode"


def laser_cfg(**limits):
    return config.default().replace(machine={"kind": "laser"}, serial={"protocol": "grbl"},
                                    motion={"planner": "grbl"}, limits=limits or {})


def test_settings_come_from_the_controller(rig):
    sim, drv, rec = rig()
    settings = read_settings(drv)
    assert settings[32] == 1 and settings[30] == 1000 and settings[110] == 6000
    assert parse_settings(["$11=0.010", "ok", "[MSG:x]"]) == {11: 0.01}


def test_vector_job_passes_and_reports_cost(rig):
    sim, drv, rec = rig(time_scale=200.0)
    report = check(load(VECTOR), laser_cfg(), read_settings(drv))
    assert report.power_mode == "M4" and report.warnings == []
    assert report.max_power == 1000 and report.power_limit == 1000
    outline = 80 + 50 + math.pi * 10 / 2 + 70 + 60
    per_pass = outline + 2 * math.pi * 8 + 2 * math.pi * 5 + 2 * 30 + 2 * 4
    assert report.laser_on_mm == pytest.approx(3 * per_pass, rel=5e-3)
    assert 0 < report.laser_on_s < report.cut_time_s
    # the virtual controller cuts the same path at the same feed
    drv.start_job(job_lines(VECTOR))
    rec.wait(JobFinished, 60)
    assert report.laser_on_mm == pytest.approx(sim.laser_on_mm, rel=5e-3)
    assert report.laser_on_s == pytest.approx(sim.laser_on_s, rel=0.05)
    t = report.telemetry()
    assert t["laser_on_mm"] == round(report.laser_on_mm, 3) and t["laser_on_h"] > 0


def test_refused_without_laser_mode_and_told_how_to_fix(rig):
    sim, drv, rec = rig()
    drv.send_command("$32=0")
    with pytest.raises(LaserRefused, match=r"\$32=0.*send `\$32=1`"):
        check(load(VECTOR), laser_cfg(), read_settings(drv))
    with pytest.raises(LaserRefused, match="missing"):
        check(load(VECTOR), laser_cfg(), {})


def test_power_above_config_or_controller_limit_is_refused(rig):
    sim, drv, rec = rig()
    with pytest.raises(LaserRefused, match=r"laser_vector_plate.gcode:\d+: S900 is above limits.max_laser_power = 850"):
        check(load(VECTOR), laser_cfg(max_laser_power=850.0), read_settings(drv))
    drv.send_command("$30=500")
    with pytest.raises(LaserRefused, match=r":9: S800 is above the controller's \$30"):
        check(load(VECTOR), laser_cfg(), read_settings(drv))


def test_z_outside_range_and_m3_are_reported(tmp_path):
    f = tmp_path / "z.gcode"
    f.write_text("G21\nG90\nM3 S300\nG1 X10 F600\nG0 Z30\nG1 X20\nM5\n")
    cfg = laser_cfg().replace(volume={"z": [0.0, 20.0]})
    with pytest.raises(LaserRefused, match=r"z.gcode:5: Z30 is outside the configured Z range \[0, 20\]"):
        check(load(f), cfg, {32: 1, 30: 1000})
    f.write_text("G21\nG90\nM3 S300\nG1 X10 F600\nG0 Z5\nG1 X20\nM5\n")
    report = check(load(f), cfg, {32: 1, 30: 1000})
    assert report.power_mode == "M3" and "M3 constant power" in report.warnings[0]
    assert report.laser_on_mm == pytest.approx(20.0, abs=0.01)


def test_preflight_asks_the_controller(rig):
    from edge.laser import preflight

    sim, drv, rec = rig()
    assert preflight(drv, load(VECTOR), laser_cfg()).power_mode == "M4"
    drv.send_command("$32=0")
    with pytest.raises(LaserRefused, match=r"send `\$32=1`"):
        preflight(drv, load(VECTOR), laser_cfg())


def test_a_job_does_not_start_on_a_controller_in_alarm(rig):
    from drivers.base import DriverError

    sim, drv, rec = rig()
    sim.trigger_alarm(1)
    import time
    time.sleep(0.5)                                         # the next status poll sees Alarm
    with pytest.raises(DriverError, match=r"in alarm.*\$X"):
        drv.start_job(job_lines(VECTOR))


def test_partial_laser_time_and_lifetime_wear_counter(tmp_path):
    from edge.laser import WearCounter, laser_use_until

    tp = load(VECTOR)
    report = check(tp, laser_cfg(), {32: 1, 30: 1000})
    assert laser_use_until(tp, 0) == (0.0, 0.0)
    whole = laser_use_until(tp, tp.lines)
    assert whole == (pytest.approx(report.laser_on_s), pytest.approx(report.laser_on_mm))
    half, half_mm = laser_use_until(tp, 28)                      # stopped after the first pass (lines 7-27)
    assert 0 < half < report.laser_on_s
    assert half_mm == pytest.approx(report.laser_on_mm / 3, rel=1e-3)
    wear = WearCounter(tmp_path / "state" / "laser-wear.json")
    wear.add(report.laser_on_s, report.laser_on_mm)
    totals = wear.add(half, 10.0)
    assert totals["jobs"] == 2 and totals["laser_on_s"] == pytest.approx(report.laser_on_s + half)
    assert WearCounter(tmp_path / "state" / "laser-wear.json").totals()["laser_on_mm"] == \
        pytest.approx(report.laser_on_mm + 10.0)
    (tmp_path / "state" / "laser-wear.json").write_text("{broken")
    with pytest.raises(Exception, match="laser-wear.json: unreadable"):
        wear.totals()
