"""A link keeps working when its socket's descriptor is above 1023 (select() would crash there)."""

from __future__ import annotations

import os
import resource

from conftest import make_cfg
from edge.telemetry.service import Telemetry


def test_link_works_with_descriptors_above_1024(broker, recorder, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fillers = []
    try:
        while True:               # push the next descriptors past select()'s FD_SETSIZE
            r, w = os.pipe()
            fillers += [r, w]
            if w > 1100:
                break
        t = Telemetry(make_cfg(broker.url), tmp_path / "spool.db", on_command=lambda p, r: None,
                      backoff_max_s=1.0)
        t.start()
        try:
            ids = [t.event("job.started", {"job_id": f"j{i}"}) for i in range(3)]
            assert recorder.wait(lambda: len(recorder.on("/evt/job.started")) == 3)
            assert [e["id"] for e in recorder.on("/evt/job.started")] == ids
        finally:
            t.stop()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
