"""Laser jobs in the agent: the controller is asked before START is accepted, wear is counted after.

After START on a laser job a worker asks the controller for its settings
(`$$`, a blocking round trip) and runs `edge.laser.check`: laser mode ($32=1),
power within `limits.max_laser_power` and `$30`, Z in range. Only a passing
check lets the job begin; a refusal lights red and tells the region why. When
the job ends, however it ends, the laser-on time and path up to the last
acknowledged line are added to the machine's lifetime wear counter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.events import AgentEvent
from edge.jobs import Job

log = logging.getLogger("fabedge.agent")


@dataclass(frozen=True)
class LaserChecked(AgentEvent):
    job_id: str
    error: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    toolpath: Any = field(default=None, compare=False, repr=False)   # planned with GRBL's model


class LaserMixin:
    """Part of Agent: see edge/agent.py."""

    def init_laser(self) -> None:
        self.laser_toolpaths: dict[str, Any] = {}
        self._laser_checking: set[str] = set()
        self.laser_used: dict[str, dict[str, Any]] = {}     # job id -> laser use, until announced

    def laser_handlers(self) -> dict[type, Callable[[Any], None]]:
        return {LaserChecked: self.on_laser_checked}

    def laser_preflight(self, job: Job) -> None:
        """Ask the controller in a worker; the answer comes back as LaserChecked."""
        if job.id in self._laser_checking:
            return
        self._laser_checking.add(job.id)
        driver, cfg = self.driver, self.cfg

        def work() -> None:
            from edge.laser import preflight
            from edge.toolpath import analyze
            try:
                tp = analyze(job.path, cfg).toolpath
                report = preflight(driver, tp, cfg)
                self.post(LaserChecked(job.id, report=report.telemetry(), toolpath=tp))
            except Exception as exc:    # LaserRefused names file, line and the fix
                self.post(LaserChecked(job.id, error=str(exc)))
        self._spawn(work, f"laser-check:{job.id}")

    def withdraw_laser_start(self) -> bool:
        """STOP while START waits on the controller check: that answer starts nothing."""
        had = bool(self._laser_checking)
        self._laser_checking.clear()
        return had

    def on_laser_checked(self, event: LaserChecked) -> None:
        if event.job_id not in self._laser_checking:
            return                       # STOP withdrew this START while the check ran
        self._laser_checking.discard(event.job_id)
        job = self.store.active()
        if job is None or job.id != event.job_id or job.state != "armed":
            return
        if event.error:
            self.refuse_start(job, event.error)
            return
        self.laser_toolpaths[job.id] = event.toolpath
        self.begin(job, {"laser": event.report})

    def laser_job_ended(self, job: Job, last_line: int) -> None:
        """Count the tube's wear for what really ran (atomic file; the loop owns it)."""
        tp = self.laser_toolpaths.pop(job.id, None)
        if tp is None:
            return
        from edge.laser import WearCounter, laser_use_until
        seconds, mm = laser_use_until(tp, last_line)
        # what really ran, for this job's job.done / job.failed / job.cancelled (see announce)
        self.laser_used[job.id] = {"laser_on_s": round(seconds, 3), "laser_on_mm": round(mm, 3),
                                   "last_line": last_line}
        totals = WearCounter(self.state_dir / "laser-wear.json").add(seconds, mm)
        self.laser_wear = totals
        self.publish_birth()
