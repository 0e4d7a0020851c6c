"""Whole laser jobs through GrblDriver, pyserial and a pty: every line executed once, in order."""

from __future__ import annotations

import math

import pytest

from drivers.base import Connected, JobFinished, LineAcked, MachineStatus
from grbl_helpers import FIXTURES, expected, job_lines


@pytest.mark.parametrize("name", ["laser_vector_plate.gcode", "laser_raster_disc.gcode"])
def test_executed_log_equals_file_in_order(rig, name):
    lines = job_lines(FIXTURES / name)
    sim, drv, rec = rig(time_scale=100.0)
    drv.start_job(lines, total_lines=len(lines))
    done = rec.wait(JobFinished, timeout=60)
    assert done.lines == len(lines)
    assert list(sim.executed) == expected(lines)
    assert list(sim.errors) == [] and sim.overflow_bytes == 0
    acked = [e.line for e in rec.of(LineAcked)]
    assert acked == [n for n, _ in lines]                       # acknowledged in file order, each once
    assert 0 < drv.max_inflight_bytes <= 127                    # counted against GRBL's 127 usable bytes
    assert sim.state() == "Idle"                                # finished means the planner drained
    assert rec.of(MachineStatus)


def test_vector_laser_on_path_matches_geometry(rig):
    """The plate outline, two R-form half circles, an I/J circle and a slot, 3 passes (laser on for cuts only)."""
    lines = job_lines(FIXTURES / "laser_vector_plate.gcode")
    sim, drv, rec = rig(time_scale=200.0)
    drv.start_job(lines)
    rec.wait(JobFinished, timeout=60)
    outline = 80 + 50 + math.pi * 10 / 2 + 70 + 60
    per_pass = outline + 2 * math.pi * 8 + 2 * math.pi * 5 + 2 * 30 + 2 * 4
    assert sim.laser_on_mm == pytest.approx(3 * per_pass, rel=1e-3)


def test_rx_size_is_read_from_the_controller(rig):
    """grblHAL's 1023-byte buffer: the driver learns it from $I and keeps more in flight."""
    lines = job_lines(FIXTURES / "laser_raster_disc.gcode")
    sim, drv, rec = rig(rx_buffer=1023, time_scale=100.0)
    assert rec.of(Connected)[0].capabilities["rx_buffer"] == 1024
    drv.start_job(lines)
    rec.wait(JobFinished, timeout=60)
    assert list(sim.executed) == expected(lines)
    assert 127 < drv.max_inflight_bytes <= 1023
    assert sim.overflow_bytes == 0


def test_status_reports_become_machine_status(rig):
    sim, drv, rec = rig(time_scale=1.0, driver_kwargs={"status_hz": 5.0})
    drv.start_job([(1, b"G1 X20 F600 M4 S400")])
    import time
    time.sleep(0.7)
    running = [e for e in rec.of(MachineStatus) if e.state == "Run"]
    assert running, rec.of(MachineStatus)
    st = running[-1]
    assert st.feed == 600 and st.power == 400
    assert 0 < st.position[0] < 20
    drv.cancel()
