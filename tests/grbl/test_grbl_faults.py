"""Faults mid-job: line errors per policy, door, alarm, controller reset, STOP latency."""

from __future__ import annotations

import re
import time

import pytest

from drivers.base import (FirmwareMessage, JobCancelled, JobFailed, JobFinished, LineAcked, Paused, Resumed)
from grbl_helpers import FIXTURES, expected, job_lines

RASTER = FIXTURES / "laser_raster_disc.gcode"


def settled(sim, quiet: float = 0.3, timeout: float = 10.0) -> int:
    """Bytes the sim has received once nothing more arrived for `quiet` s (what was on the wire landed)."""
    deadline = time.monotonic() + timeout
    seen = sim.bytes_received
    while time.monotonic() < deadline:
        time.sleep(quiet)
        if sim.bytes_received == seen:
            return seen
        seen = sim.bytes_received
    raise AssertionError("bytes kept arriving")
VECTOR = FIXTURES / "laser_vector_plate.gcode"


@pytest.mark.parametrize("fault", ["drop", "corrupt"])
def test_line_error_resend_policy_runs_the_line_after_those_grbl_had_queued(rig, fault):
    """The opt-in `resend` reorders: the lines already in GRBL's buffer run first, then the lost one."""
    lines = job_lines(RASTER)[:400]
    sim, drv, rec = rig({"line_error_policy": "resend"}, faults=f"{fault}@120", time_scale=100.0)
    drv.start_job(lines)
    rec.wait(JobFinished, timeout=60)
    assert [code for _, code, _ in sim.errors] == [1]           # GRBL answered error:1 once
    note = [e.text for e in rec.of(FirmwareMessage) if "re-sending" in e.text]
    assert len(note) == 1 and f"line {lines[119][0]} " in note[0] and "Expected command letter" in note[0]
    jumped = int(re.search(r"after the (\d+) lines GRBL had already queued", note[0]).group(1))
    assert jumped > 0                                           # character counting keeps lines queued behind it
    want = expected(lines)
    assert list(sim.executed) == want[:119] + want[120:120 + jumped] + [want[119]] + want[120 + jumped:]


@pytest.mark.parametrize("policy, path, lost, time_scale", [
    ({}, VECTOR, 30, 20.0),
    ({"line_error_policy": "stop"}, VECTOR, 30, 20.0),
    ({}, RASTER, 150, 5.0),                                     # near real time: the planner is ahead of the wire
], ids=["vector-default", "vector-explicit", "raster-default"])
def test_line_error_stop_policy_fails_the_job_and_runs_a_prefix_only(rig, policy, path, lost, time_scale):
    """The default: feed hold at once, then reset; what GRBL queued behind the lost line never runs."""
    lines = job_lines(path)
    sim, drv, rec = rig(policy, faults=f"drop@{lost}", time_scale=time_scale)
    assert drv.policy == "stop"
    drv.start_job(lines)
    failed = rec.wait(JobFailed, timeout=30)
    assert failed.reason.startswith(f"line {lines[lost - 1][0]} ")
    assert "error:1 Expected command letter" in failed.reason
    assert failed.last_acked_line < lines[lost - 1][0]          # nothing after the lost line was answered ok...
    time.sleep(0.3)
    executed = list(sim.executed)
    assert executed == expected(lines)[:len(executed)]          # ...nor run: the log is a prefix of the file
    assert len(executed) <= lost - 1                             # the lost line itself never ran
    assert sim.state() in ("Idle", "Alarm") and sim.motion.feed_and_power()[1] == 0   # laser off
    assert not drv.busy and not rec.of(JobFinished)


def test_door_pauses_and_nothing_is_sent_until_resumed(rig):
    lines = job_lines(VECTOR)
    sim, drv, rec = rig(faults="door@0.3", time_scale=50.0)
    drv.start_job(lines)
    paused = rec.wait(Paused, timeout=10)
    assert paused.reason == "door"
    before = settled(sim)                                     # lines already on the wire land
    time.sleep(1.0)
    assert sim.bytes_received == before                      # nothing sent while the door is open
    assert sim.state().startswith("Door")
    sim.close_door()
    time.sleep(0.4)
    assert sim.bytes_received == before and not rec.of(Resumed)   # closing the door is not a resume
    drv.resume()
    rec.wait(JobFinished, timeout=60)
    assert list(sim.executed) == expected(lines)


def test_alarm_fails_the_job_with_grbls_sentence(rig):
    lines = job_lines(VECTOR)
    sim, drv, rec = rig(faults="alarm@0.3:1", time_scale=20.0)
    drv.start_job(lines)
    failed = rec.wait(JobFailed, timeout=10)
    assert failed.reason.startswith("ALARM:1 Hard limit triggered.")
    assert not rec.of(JobFinished)
    assert len(sim.executed) < len(lines)


def test_unexpected_controller_reset_fails_the_job(rig):
    lines = job_lines(RASTER)[:300]
    sim, drv, rec = rig(faults="reset@150", time_scale=100.0)
    drv.start_job(lines)
    failed = rec.wait(JobFailed, timeout=30)
    assert failed.reason == "controller reset"
    time.sleep(0.2)
    assert sim.lines_received < 160                          # nothing more of the job was sent


@pytest.mark.parametrize("action", ["emergency_stop", "pause", "cancel"])
def test_realtime_bytes_reach_the_controller_within_50ms_with_a_full_buffer(rig, action):
    lines = job_lines(VECTOR) * 3
    sim, drv, rec = rig(time_scale=1.0)
    drv.start_job(lines)
    deadline = time.monotonic() + 10
    while sim.rx_used < 100 and time.monotonic() < deadline:   # planner full, receive buffer filling
        time.sleep(0.01)
    assert sim.rx_used >= 100
    t0 = time.monotonic()
    getattr(drv, action)()
    wanted = {"emergency_stop": [ord("!"), 0x18], "pause": [ord("!")], "cancel": [ord("!")]}[action]
    time.sleep(0.1)
    for byte in wanted:
        arrivals = [t for b, t in list(sim.rt_log) if b == byte and t >= t0]
        assert arrivals, f"0x{byte:02x} never arrived"
        assert arrivals[0] - t0 < 0.050
    if action == "emergency_stop":
        assert "emergency stop" in rec.wait(JobFailed, 5).reason
        assert sim.resets == 1 and sim.rx_used == 0
    elif action == "pause":
        assert rec.wait(Paused, 5).reason == "operator"
        time.sleep(0.2)
        assert sim.state() == "Hold:0"
        drv.cancel()
        rec.wait(JobCancelled, 5)
    else:
        rec.wait(JobCancelled, 5)
        assert sim.alarm is None                              # held first, then reset: position kept
    time.sleep(0.2)
    n = len(sim.executed)
    time.sleep(0.3)
    assert len(sim.executed) == n and sim.state() in ("Idle", "Alarm")


def test_lines_after_the_window_never_reach_a_stopped_job(rig):
    lines = job_lines(VECTOR) * 3
    sim, drv, rec = rig(time_scale=1.0)
    drv.start_job(lines)
    rec.wait(LineAcked, 5)
    drv.emergency_stop()
    rec.wait(JobFailed, 5)
    got = settled(sim)                                        # what was already on the wire lands
    done = len(sim.executed)
    time.sleep(0.5)
    assert sim.bytes_received == got and len(sim.executed) == done
    assert done < len(lines)


def test_a_silent_controller_fails_the_job_and_reports_disconnected(rig):
    from drivers.base import Disconnected

    lines = job_lines(VECTOR)
    sim, drv, rec = rig({"timeout_s": 0.6}, faults="hang@0.2", time_scale=20.0)
    drv.start_job(lines)
    failed = rec.wait(JobFailed, timeout=10)
    assert "has not answered" in failed.reason
    assert "has not answered" in rec.wait(Disconnected, 5).reason


def test_resume_with_the_door_still_open_pauses_again(rig):
    lines = job_lines(VECTOR)
    sim, drv, rec = rig(faults="door@0.3", time_scale=50.0)
    drv.start_job(lines)
    rec.wait(Paused, timeout=10)
    time.sleep(0.3)                                           # the head has stopped (Door:1)
    where = sim.motion.position()
    drv.resume()                                              # GRBL ignores cycle start while the door is open
    deadline = time.monotonic() + 5
    while len(rec.of(Paused)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.reason for p in rec.of(Paused)] == ["door", "door"]
    assert sim.state().startswith("Door") and sim.motion.position() == where   # nothing moved
    sim.close_door()
    drv.resume()
    rec.wait(JobFinished, timeout=60)
    assert list(sim.executed) == expected(lines)
