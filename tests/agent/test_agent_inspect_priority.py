"""The inspection worker yields to streaming: lower CPU priority, first to go under memory pressure."""

from __future__ import annotations

import os
import time

from edge import config
from edge.agent_inspect import InspectionProcess


def test_inspection_worker_runs_niced_and_oom_first(tmp_path):
    worker = InspectionProcess(config.default(), tmp_path / "overlays", lambda _e: None).start()
    try:
        pid = worker.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            adj = int(open(f"/proc/{pid}/oom_score_adj").read())
            if adj == 800:
                break
            time.sleep(0.05)
        assert adj == 800
        assert os.getpriority(os.PRIO_PROCESS, pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10 or \
            os.getpriority(os.PRIO_PROCESS, pid) == 19
    finally:
        worker.close()


def test_a_killed_worker_answers_every_owed_check_with_an_error(tmp_path):
    got = []
    worker = InspectionProcess(config.default(), tmp_path / "overlays", got.append).start()
    try:
        assert worker.submit("bed_clear", "job-1") and worker.alive
        worker.proc.kill()                 # killed before it could answer (it is still importing)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e.kind, e.job_id, e.verdict) for e in got] == [("bed_clear", "job-1", "error")]
        assert "worker stopped" in got[0].reasons[0] and not worker.alive
        assert not worker.submit("bed_clear", "job-2")
    finally:
        worker.close()
