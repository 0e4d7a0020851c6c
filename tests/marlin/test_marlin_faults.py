"""Exactly once, in order, under every injected fault: the virtual Marlin's
executed log must equal the job's commands, whatever the link does."""

from __future__ import annotations

import pytest

from drivers.base import JobFinished
from marlin_helpers import curve_job, job_commands

ALL = "ber=1e-4,lost-ok=0.01,double-ok=0.01,resend-no-ok=0.01"

CASES = [
    ("ber=1e-4,seed=5", True),            # bit errors: checksum / line-number errors, RX drains, resends
    ("ber=1e-4,seed=6", False),
    ("lost-ok=0.03,seed=2", True),
    ("lost-ok=0.03,seed=2", False),       # without ADVANCED_OK: silence -> M105 probe resyncs
    ("double-ok=0.05,seed=3", True),
    ("double-ok=0.05,seed=3", False),     # plain oks cannot be told apart: RX margin + anomaly fallback
    ("resend-no-ok=0.03,seed=4", True),
    ("resend-no-ok=0.03,seed=4", False),
    (ALL + ",seed=7", True),
    (ALL + ",seed=7", False),
]


@pytest.mark.parametrize("faults,advanced", CASES)
def test_marlin_fault_executes_each_line_once_in_order(rig, faults, advanced):
    sim, drv, rec = rig(faults=faults, advanced_ok=advanced)
    job = curve_job(250)
    start = len(sim.executed)
    drv.start_job(job)
    end = rec.wait_end(60)
    assert isinstance(end, JobFinished), end
    assert end.lines == len(job)
    assert job_commands(sim.executed, start) == [c.decode() for _, c in job]
    assert rec.acked == [line for line, _ in job]          # progress: each job line once, in order


def test_marlin_faults_really_happened(rig):
    """The fault injection is not a no-op: errors, resends and clamped oks all occur."""
    sim, drv, rec = rig(faults=ALL + ",ok-storm=0.02,seed=7", advanced_ok=False)
    job = curve_job(250)
    start = len(sim.executed)
    drv.start_job(job)
    assert isinstance(rec.wait_end(60), JobFinished)
    assert sim.errors_sent > 0 and sim.flipper.flips > 0
    assert drv.stats["resends"] > 0 and drv.stats["extra_ok"] > 0
    assert job_commands(sim.executed, start) == [c.decode() for _, c in job]


def test_marlin_garbage_and_ok_storms_never_run_a_line_twice(rig):
    sim, drv, rec = rig(faults="ok-storm=0.1,garbage=0.1,seed=9", advanced_ok=True)
    job = curve_job(200)
    start = len(sim.executed)
    drv.start_job(job)
    for i in range(20):                                  # unsolicited firmware chatter as well
        sim.say(b"ok\xff\xfe garbage \x00" if i % 2 else "ok")
    assert isinstance(rec.wait_end(60), JobFinished)
    executed = job_commands(sim.executed, start)
    assert executed == [c.decode() for _, c in job]
    assert len(set(executed)) == len(executed)           # every command of this job is distinct
    assert drv.stats["extra_ok"] > 0


def test_marlin_plain_ok_storm_without_advanced_ok(rig):
    sim, drv, rec = rig(faults="ok-storm=0.05,garbage=0.05,seed=11", advanced_ok=False)
    job = curve_job(200)
    start = len(sim.executed)
    drv.start_job(job)
    assert isinstance(rec.wait_end(60), JobFinished)
    assert job_commands(sim.executed, start) == [c.decode() for _, c in job]


@pytest.mark.parametrize("rx_buffer", [128, 24])                 # a full window, and one line at a time
def test_marlin_line_whose_n_was_corrupted_runs_once(rig, rx_buffer):
    """A bit flip turning `N` into `n` makes Marlin run the line without checking it (and answer
    `ok` without N); re-sending it would run it twice, so the host renumbers instead."""
    sim, drv, rec = rig(driver_kwargs={"rx_buffer": rx_buffer})
    job = curve_job(120)
    target = job[60][1].decode()
    line_done = sim._line_done
    hit = []

    def n_flipped(line: str, now: float) -> None:          # the wire flipped bit 5 of this line's `N`
        if not hit and target in line and line.startswith("N"):
            hit.append(line)
            line = "n" + line[1:]
        line_done(line, now)

    sim._line_done = n_flipped
    start = len(sim.executed)
    drv.start_job(job)
    assert isinstance(rec.wait_end(), JobFinished)
    assert hit and drv.stats["unnumbered_ok"] == 1
    assert job_commands(sim.executed, start) == [c.decode() for _, c in job]
