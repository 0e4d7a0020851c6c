"""Safety of the Marlin stream: resets, kills, emergency stop, pause/cancel,
silent firmware and host restarts, all through pyserial on a real pty."""

from __future__ import annotations

import os
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

import pytest

from drivers.base import DriverError, JobCancelled, JobFailed, JobFinished, Paused, Resumed, Temperatures
from drivers.marlin import MarlinDriver
from drivers.sim.marlin import VirtualMarlin
from marlin_helpers import Recorder, curve_job, job_commands, wait_for

ROOT = Path(__file__).resolve().parents[2]


def slow_job(n: int, length: float = 2.0, feed: int = 600) -> list[tuple[int, bytes]]:
    """Moves long enough that the planner, not the link, sets the pace."""
    return [(i + 1, f"G1 X{10 + (i % 2) * length:.1f} Y{10 + i * 0.01:.2f} F{feed}".encode()) for i in range(n)]


def assert_quiet_after(sim: VirtualMarlin, seconds: float = 0.8) -> None:
    time.sleep(0.05)
    before = sim.pty.bytes_in
    time.sleep(seconds)
    assert sim.pty.bytes_in == before, "the host kept sending after the job stopped"


def test_marlin_reset_mid_job_stops_with_controller_reset(rig):
    sim, drv, rec = rig(faults="reset-at=120")
    job = curve_job(250)
    start = len(sim.executed)
    drv.start_job(job)
    end = rec.wait_end()
    assert isinstance(end, JobFailed) and end.reason == "controller reset"
    assert sim.boots == 2
    assert_quiet_after(sim)
    assert sim.executed[sim.boot_marks[-1]:] == []                  # nothing ran after the reset
    ran = job_commands(sim.executed[:sim.boot_marks[-1]], start)
    assert 0 < len(ran) < len(job) and ran == [c.decode() for _, c in job[:len(ran)]]
    assert end.last_acked_line <= job[len(ran) - 1][0]
    with pytest.raises(DriverError, match="controller reset"):
        drv.start_job(job)


def test_marlin_reset_is_caught_even_when_its_start_line_is_lost(rig):
    sim, drv, rec = rig(faults="reset-at=90")
    send = sim.pty.send
    sim.pty.send = lambda data, now, latency=True: None if data == b"start\n" else send(data, now, latency)
    drv.start_job(curve_job(250))
    end = rec.wait_end()
    assert isinstance(end, JobFailed) and end.reason.startswith("controller reset")
    assert drv.stats["resends"] == 0                                  # it never re-sent old lines
    assert_quiet_after(sim)
    assert job_commands(sim.executed[sim.boot_marks[-1]:]) == []     # the job was not replayed


def test_marlin_thermal_runaway_fails_with_the_firmwares_words(rig):
    sim, drv, rec = rig(faults="runaway-at=20")
    drv.start_job(slow_job(400))
    end = rec.wait_end()
    assert isinstance(end, JobFailed)
    assert "Thermal Runaway, system stopped! Heater_ID: 0" in end.reason
    assert sim.halted
    assert_quiet_after(sim, 0.5)


def test_marlin_m112_reaches_the_firmware_within_50ms_with_every_buffer_full(rig):
    sim, drv, rec = rig(time_scale=1.0, driver_kwargs={"clean_lines": 0, "timeout_s": 5.0})
    drv.start_job(slow_job(200, length=50.0, feed=600))            # 5 s per move: everything backs up
    assert wait_for(lambda: sim.buffers_full() and len(sim.rx) > 0, timeout=10)
    t0 = time.monotonic()
    drv.emergency_stop()
    assert wait_for(lambda: sim.estop_at is not None, timeout=1)
    latency = sim.estop_at - t0
    assert latency < 0.050, f"M112 took {latency * 1000:.1f} ms"
    end = rec.wait_end(5)
    assert isinstance(end, JobFailed) and "emergency stop" in end.reason
    assert sim.halted and sim.planner.planned == 0


def test_marlin_pause_parks_and_resume_restores(rig):
    park, restore = ["G91", "G1 Z5 F600", "G90"], ["G91", "G1 Z-5 F600", "G90"]
    sim, drv, rec = rig(driver_kwargs={"park_gcode": park, "restore_gcode": restore})
    job = curve_job(300)
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 60, timeout=10)
    drv.pause()
    assert wait_for(lambda: rec.of(Paused), timeout=5)
    paused = rec.of(Paused)[0]
    assert paused.reason == "operator" and len(paused.position) == 4
    acked_at_pause = len(rec.acked)
    time.sleep(0.2)
    assert len(rec.acked) == acked_at_pause                         # nothing of the job while paused
    drv.resume()
    end = rec.wait_end()
    assert isinstance(end, JobFinished) and rec.of(Resumed)
    ran = job_commands(sim.executed, start)
    i = ran.index("G1 Z5 F600")
    assert ran[i - 1:i + 2] == park and ran[i + 2] == "G91" and ran[i + 3] == "G1 Z-5 F600"
    assert [c for c in ran if c not in park + restore] == [c.decode() for _, c in job]


def test_marlin_cancel_sends_nothing_more(rig):
    sim, drv, rec = rig()
    job = slow_job(300)
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 30, timeout=10)
    drv.cancel()
    end = rec.wait_end()
    assert isinstance(end, JobCancelled)
    assert_quiet_after(sim, 0.3)
    ran = job_commands(sim.executed, start)
    assert ran[-3:] == ["M104 S0", "M140 S0", "M107"]        # the cancel G-code (see test_marlin_cancel_safe)
    ran = [c for c in ran[:-3] if c != "M108"]
    assert 30 <= len(ran) < len(job) and ran == [c.decode() for _, c in job[:len(ran)]]
    assert end.last_acked_line == job[len(ran) - 1][0]


def test_marlin_action_pause_and_resume_from_the_firmware(rig):
    sim, drv, rec = rig()
    job = curve_job(300)
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 40, timeout=10)
    sim.say("//action:paused")
    assert wait_for(lambda: rec.of(Paused), timeout=5)
    assert "//action:paused" in rec.of(Paused)[0].reason
    sim.say("//action:resumed")
    assert isinstance(rec.wait_end(), JobFinished)
    assert job_commands(sim.executed, start) == [c.decode() for _, c in job]


def test_marlin_busy_extends_timeouts_and_temperatures_are_reported(rig):
    sim, drv, rec = rig()
    job = [(1, b"M104 S200"), (2, b"G1 X5 F3000"), (3, b"G4 S60"), (4, b"G1 X6")]  # 60 s dwell = 1.2 s here
    drv.start_job(job)
    assert isinstance(rec.wait_end(), JobFinished)
    assert drv.stats["probes"] == 0                                  # `busy:` kept the link alive
    temps = rec.of(Temperatures)
    assert temps and any(t.readings.get("T0", (0, 0))[1] == 200.0 for t in temps)


def test_marlin_silent_firmware_is_probed_then_fails_clearly(rig):
    sim, drv, rec = rig(driver_kwargs={"probe_attempts": 2})
    drv.start_job(slow_job(300))
    assert wait_for(lambda: len(rec.acked) >= 20, timeout=10)
    sim.halted = "frozen for the test"                              # alive on the port, answering nothing
    end = rec.wait_end(10)
    assert isinstance(end, JobFailed) and "stopped answering" in end.reason
    assert drv.stats["probes"] == 2


def test_marlin_open_without_firmware_fails_clearly():
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        drv = MarlinDriver(os.ttyname(slave), 115200, Recorder())
        t0 = time.monotonic()
        with pytest.raises(DriverError, match="no answer from a Marlin printer"):
            drv.open(timeout=1.0)
        assert time.monotonic() - t0 < 3
    finally:
        os.close(master)
        os.close(slave)


def test_marlin_overlong_line_fails_before_sending_it(rig):
    sim, drv, rec = rig()
    job = [(1, b"G1 X1"), (2, b"M117 " + b"x" * 120)]
    drv.start_job(job)
    end = rec.wait_end()
    assert isinstance(end, JobFailed) and "line 2 is too long" in end.reason


HOST_PART_ONE = """
import sys, time
sys.path.insert(0, {root!r})
from drivers.marlin import MarlinDriver
from drivers.base import JobFinished
done = []
d = MarlinDriver({path!r}, 115200, lambda e: done.append(e) if isinstance(e, JobFinished) else None)
d.open(timeout=5)
d.send_command("M104 S200")
d.start_job([(i + 1, ("G1 X%d Y5 F6000" % (i % 40)).encode()) for i in range(100)])
while not done:
    time.sleep(0.01)
print("part one done", flush=True)
"""


def test_marlin_host_process_restart_does_not_reset_the_printer():
    sim = VirtualMarlin(time_scale=50.0, advanced_ok=True)
    path = sim.start()
    try:
        out = subprocess.run([sys.executable, "-c", HOST_PART_ONE.format(root=str(ROOT), path=path)],
                             capture_output=True, text=True, timeout=60)
        assert "part one done" in out.stdout, out.stderr
        assert not termios.tcgetattr(sim.pty.slave_fd)[2] & termios.HUPCL   # closing kept DTR up
        rec = Recorder()
        drv = MarlinDriver(path, 115200, rec, timeout_s=0.25)
        drv.open(timeout=5)                                          # the second host process
        try:
            assert sim.boots == 1 and not sim.halted                 # no `start`: the printer kept running
            assert any("/200.00" in r for r in drv.send_command("M105"))   # and kept its state
            start = len(sim.executed)
            part_two = [(i + 101, f"G1 X{i % 40} Y6".encode()) for i in range(50)]
            drv.start_job(part_two)
            assert isinstance(rec.wait_end(), JobFinished)
            assert job_commands(sim.executed, start) == [c.decode() for _, c in part_two]
        finally:
            drv.close()
        first = job_commands(sim.executed)
        assert [c for c in first if c.startswith("G1 X") and c.endswith("F6000")] == \
            [f"G1 X{i % 40} Y5 F6000" for i in range(100)]
    finally:
        sim.stop()
