"""A cancelled print leaves the printer safe: job lines stop between whole lines,
a heat wait is broken with M108 (emergency parser), and the cancel G-code
(heaters and fan off) runs last; all through pyserial on a real pty."""

from __future__ import annotations

import pytest

from drivers.base import DriverError, JobCancelled
from drivers.marlin import MarlinDriver
from drivers.marlin_job import DEFAULT_CANCEL_GCODE
from marlin_helpers import curve_job, job_commands, wait_for

SAFE = list(DEFAULT_CANCEL_GCODE)


def split_at_cancel(ran: list[str], job: list[tuple[int, bytes]]) -> tuple[list[str], list[str]]:
    """(what ran of the job, what ran after it): the job part must be an exact prefix of the file."""
    cmds = [c.decode() for _, c in job]
    k = 0
    while k < len(ran) and k < len(cmds) and ran[k] == cmds[k]:
        k += 1
    return ran[:k], ran[k:]


def assert_safe_tail(sim, start: int, job, cancel=SAFE) -> list[str]:
    ran = job_commands(sim.executed, start)
    done, tail = split_at_cancel(ran, job)
    assert len(done) < len(job), "the whole job ran: the cancel came too late to prove anything"
    assert "M108" in tail
    assert [c for c in tail if c != "M108"] == cancel, tail      # no job line after the cancel point
    assert ran[-len(cancel):] == cancel                            # the log ends with the cancel sequence
    assert sim.thermal.hotend.target == 0.0 and sim.thermal.bed.target == 0.0
    return done


def test_marlin_cancel_mid_job_ends_with_heaters_off(rig):
    sim, drv, rec = rig()
    job = [(1, b"M104 S200"), (2, b"M140 S60")] + [(n + 3, c) for n, c in curve_job(400, feed=600)]
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 40, timeout=10)
    drv.cancel()
    end = rec.wait_end()
    assert isinstance(end, JobCancelled)
    done = assert_safe_tail(sim, start, job)
    assert end.last_acked_line == job[len(done) - 1][0]
    sent = sim.pty.bytes_in
    assert wait_for(lambda: False, timeout=0.3) is False and sim.pty.bytes_in == sent   # nothing after
    assert not drv.busy and not sim.halted


@pytest.mark.parametrize("advanced_ok", [True, False])
def test_marlin_cancel_breaks_an_m109_wait(rig, advanced_ok):
    sim, drv, rec = rig(time_scale=10.0, advanced_ok=advanced_ok)   # 250 C: ~76 s machine time, 7.6 s here
    job = [(1, b"M140 S60"), (2, b"M109 S250")] + [(n + 3, c) for n, c in curve_job(100)]
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: sim._waiter is not None and "M109 S250" in sim.executed[start:], timeout=10)
    drv.cancel()
    end = rec.wait_end(timeout=20)
    assert isinstance(end, JobCancelled)
    assert sim.thermal.hotend.current < 240.0, "the host waited for the heat-up instead of breaking it"
    done = assert_safe_tail(sim, start, job)
    assert "M109 S250" in done


def test_marlin_cancel_breaks_a_wait_queued_behind_a_dwell(rig):
    sim, drv, rec = rig(time_scale=10.0)
    job = [(1, b"G4 S10"), (2, b"M109 S250")] + [(n + 3, c) for n, c in curve_job(60)]
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: sim._waiter is not None and "G4 S10" in sim.executed[start:], timeout=10)
    drv.cancel()                                          # the M108 lands during G4; M109 starts after it
    end = rec.wait_end(timeout=20)
    assert isinstance(end, JobCancelled)
    assert sim.thermal.hotend.current < 240.0
    assert drv.stats["wait_breaks"] >= 2                  # `busy:` from the new wait brought a second M108
    assert_safe_tail(sim, start, job)


def test_marlin_cancel_gcode_is_configurable_and_checked(rig):
    mine = ["M104 S0", "M140 S0", "M106 S0", "M84"]
    sim, drv, rec = rig(driver_kwargs={"cancel_gcode": mine})
    job = curve_job(300, feed=600)
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 30, timeout=10)
    drv.cancel()
    assert isinstance(rec.wait_end(), JobCancelled)
    assert_safe_tail(sim, start, job, cancel=mine)
    for bad in (["M104 S0\nG28"], [""], ["N5 M104 S0*12"]):
        with pytest.raises(DriverError, match="cancel_gcode"):
            MarlinDriver("/dev/null", cancel_gcode=bad)


def test_marlin_cancel_gcode_config_refuses_unsafe_sequences():
    from edge import config
    from edge.errors import ConfigError

    assert tuple(config.default().stream.cancel_gcode) == DEFAULT_CANCEL_GCODE     # config and driver agree
    ok = config.from_dict({"stream": {"cancel_gcode": ["M104 S0", "M140 S0", "M107", "M84"]}}, "lab.toml")
    assert ok.stream.cancel_gcode[-1] == "M84"
    refused = {
        "G28": "moves, homes", "G1X5": "moves, homes", "M109 S0": "waits", "M500": "forbidden",
        "M104 S200": "switch heaters off", "M107 ; fan": "one plain G-code command", "": "one plain",
    }
    for line, why in refused.items():
        lines = ["M104 S0", "M140 S0", line] if not line.startswith("M104") else [line, "M140 S0"]
        with pytest.raises(ConfigError, match=f"lab.toml: stream.cancel_gcode\\[\\d\\] = .*{why}"):
            config.from_dict({"stream": {"cancel_gcode": lines}}, "lab.toml")
    with pytest.raises(ConfigError, match="must switch the hotend and the bed off"):
        config.from_dict({"stream": {"cancel_gcode": ["M107"]}}, "lab.toml")


@pytest.mark.parametrize("advanced_ok", [True, False])
def test_marlin_cancel_on_a_noisy_link_stays_exactly_once(rig, advanced_ok):
    """The M108 sent past the window and the cancel G-code ride the same resend machinery."""
    sim, drv, rec = rig(faults="ber=1e-4,lost-ok=0.01,double-ok=0.01,resend-no-ok=0.005,seed=5",
                        advanced_ok=advanced_ok)
    job = [(1, b"M104 S200")] + [(n + 1, c) for n, c in curve_job(400, feed=1200)]
    start = len(sim.executed)
    drv.start_job(job)
    assert wait_for(lambda: len(rec.acked) >= 60, timeout=20)
    drv.cancel()
    assert isinstance(rec.wait_end(), JobCancelled)
    assert_safe_tail(sim, start, job)
