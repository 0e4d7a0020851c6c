"""The agent's running job: panel presses, driver events, progress, bed clear.

START is the only way a job begins (a real press on this machine's panel);
STOP is handled twice: `stop_now()` pauses the driver straight from the
button's thread, and the StopPressed event then records the pause. Progress
(the last acknowledged line and its layer) is persisted in batches (every
0.5 s and on each layer change), so an interrupted job knows where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from drivers.base import (Connected, Disconnected, FirmwareMessage, JobCancelled, JobFailed, JobFinished,
                          LineAcked, MachineStatus, Paused, Resumed, Temperatures)
from edge.events import BedCleared, PauseToggled, StartPressed, StopHeld, StopPressed
from edge.jobs import FINISHED, Job
from edge.stream import stop_feeding

log = logging.getLogger("fabedge.agent")


@dataclass
class Progress:
    """Where the running job is; only the loop touches it."""
    job_id: str
    analysis: Any                     # of the job file: layers, ETA
    resume_pre: int = 0
    resume_base: int = 0
    line: int = 0                     # job-file line last acknowledged
    layer: int = -1
    saved_line: int = -1
    saved_layer: int = -1
    first_layer_end: int = 0
    first_layer_seen: bool = False
    started: float = 0.0

    def original_line(self, streamed: int) -> int:
        if not self.resume_base:
            return streamed
        return max(self.resume_base - 1, streamed - self.resume_pre + self.resume_base - 1)


def sendable_count(analysis: Any) -> int | None:
    tp = getattr(analysis, "toolpath", None)
    if tp is None:
        return None
    from edge.toolpath.model import LF_SENDABLE
    return int(np.count_nonzero(tp.line_flags & LF_SENDABLE))


class RunMixin:
    """Part of Agent: see edge/agent.py."""

    def init_run(self) -> None:
        self.stream_analyses: dict[str, Any] = {}
        self.prog: Progress | None = None
        self._hook_paused = False

    def run_handlers(self) -> dict[type, Callable[[Any], None]]:
        return {StartPressed: self.on_start, PauseToggled: self.on_pause_toggle, StopPressed: self.on_stop,
                StopHeld: self.on_stop_held, BedCleared: self.on_bed_cleared, LineAcked: self.on_line_acked,
                Paused: self.on_driver_paused, Resumed: self.on_driver_resumed, JobFinished: self.on_finished,
                JobFailed: self.on_failed, JobCancelled: self.on_driver_cancelled,
                Temperatures: self.on_temps, MachineStatus: self.on_status, Disconnected: self.on_disconnected,
                FirmwareMessage: self.on_firmware_message, Connected: lambda e: None}

    # ---- STOP from the button's thread --------------------------------------------
    def stop_now(self) -> None:
        """Stop feeding at once (called by the panel, not the loop): the one bypass of the queue."""
        if stop_feeding(self.driver, "operator"):
            self._hook_paused = True

    # ---- panel -----------------------------------------------------------------------
    def on_start(self, event: StartPressed) -> None:
        job = self.store.active()
        if job is None or job.state != "armed":
            log.info("START pressed with the machine %s: nothing to start", self.store.machine_state())
            return
        if not self.driver_ok:
            self.refuse_start(job, "the machine is not connected")
            return
        if job.kind == "laser":
            self.laser_preflight(job)        # the controller is asked first; it begins from there
            return
        if self.bed_check_wanted(job):
            self.request_bed_check(job, override=event.held_s >= self.cfg.panel.override_hold_s)
            return
        self.begin(job)

    def refuse_start(self, job: Job, reason: str) -> None:
        self.alert = True
        if self.telemetry is not None:
            self.telemetry.event("error", {"job_id": job.id, "message": f"START refused: {reason}"})
        self.show_leds()

    def begin(self, job: Job, extra: dict[str, Any] | None = None) -> None:
        """Start streaming an armed job: persisted as running before the first byte goes out."""
        analysis = self.stream_analyses.get(job.id) if job.resume_path else self.analyses.get(job.id)
        if analysis is None or job.id not in self.analyses:
            self.refuse_start(job, "the job's analysis is not loaded yet; press START again")
            self.reanalyse(job)
            return
        if self.driver is not None and self.driver.busy:   # still finishing a cancel (M108, heaters off)
            self.refuse_start(job, "the machine is still finishing the last cancel; press START again")
            return
        from edge.toolpath import command_lines
        job = self.store.transition(job.id, "running")
        fl = getattr(self.analyses.get(job.id), "first_layer", None) or (0, 0)
        self.prog = Progress(job.id, self.analyses.get(job.id), job.resume_pre, job.resume_base,
                             line=job.acked_line, layer=job.layer, first_layer_end=int(fl[1] or 0),
                             first_layer_seen=bool(job.resume_path), started=time.monotonic())
        self.alert = False
        self._hook_paused = False
        try:
            self.driver.start_job(command_lines(analysis.toolpath), sendable_count(analysis))
        except Exception as exc:
            job = self.store.transition(job.id, "failed", error=f"could not start: {exc}")
            self.end_progress(job)
            self.announce(job, "job.failed", {"reason": job.error})
            return
        self.announce(job, "job.started", {"est_s": job.est_s, "resumed_from_line": job.resume_base or None,
                                           **(extra or {})})

    def on_pause_toggle(self, event: PauseToggled) -> None:
        job = self.store.active()
        if job is None:
            return
        if job.state == "running":
            self.pause_job("operator")
        elif job.state == "paused":
            self.resume_job()

    def pause_job(self, by: str) -> bool:
        job = self.store.active()
        if job is None or job.state != "running":
            return False
        if not self._hook_paused and self.driver is not None and self.driver.busy:
            self.driver.pause(by)
        self._hook_paused = False
        self.flush_progress()
        job = self.store.transition(job.id, "paused")
        self.announce(job, "job.paused", {"by": by, "line": self.prog.line if self.prog else job.acked_line})
        return True

    def resume_job(self) -> None:
        job = self.store.active()
        if job is None or job.state != "paused" or self.driver is None:
            return
        job = self.store.transition(job.id, "running")
        self.driver.resume()
        self.announce(job, "job.resumed", {"by": "operator"})

    def on_stop(self, event: StopPressed) -> None:
        job = self.store.active()
        if job is not None and job.state == "running":
            self.pause_job("operator (STOP)")
        elif job is not None and job.state == "armed" and (self.withdraw_start() | self.withdraw_laser_start()):
            self.refuse_start(job, "STOP pressed while the pre-start check ran: START withdrawn")
        self._hook_paused = False

    def on_stop_held(self, event: StopHeld) -> None:
        job = self.store.active()
        if job is not None and job.state in ("armed", "running", "paused", "interrupted"):
            self.cancel_job(job.id, "operator (STOP held)")

    def on_bed_cleared(self, event: BedCleared) -> None:
        job = self.store.active()
        if job is None or not (job.state in FINISHED or job.state == "interrupted"):
            log.info("BED CLEAR with the machine %s: nothing to clear", self.store.machine_state())
            return
        # Only a finished job can have made good parts; the operator confirms which.
        outcome = event.outcome if job.state == "done" else "rejected"
        job = self.store.close_job(job.id, outcome)
        self.send_outcome(job)
        self.alert = False
        self.analyses.pop(job.id, None)
        self.stream_analyses.pop(job.id, None)
        self.refresh_state()
        self.publish_birth()           # counters changed
        self.maybe_arm()

    def send_outcome(self, job: Job) -> None:
        """Exactly one part.outcome per job: a stable event id, and a mark once it is spooled."""
        if self.telemetry is None:
            return
        self.telemetry.event("part.outcome", {"job_id": job.id, "design": job.design, "parts": job.parts,
                                              "outcome": job.outcome, "job_state": job.state},
                             event_id=f"part-{self.cfg.machine.site}-{self.cfg.machine.id}-{job.id}")
        self.store.outcome_sent(job.id)

    # ---- driver events ---------------------------------------------------------------
    def on_line_acked(self, event: LineAcked) -> None:
        p = self.prog
        if p is None:
            return
        p.line = p.original_line(event.line)
        layer_of = getattr(p.analysis, "layer_of", None)
        layer = int(layer_of(p.line)) if layer_of is not None else -1
        if layer != p.layer:
            p.layer = layer
            self.flush_progress()
        if not p.first_layer_seen and p.first_layer_end and p.line >= p.first_layer_end:
            p.first_layer_seen = True
            self.flush_progress()
            self.on_first_layer_done(p.job_id)

    def flush_progress(self) -> None:
        p = self.prog
        if p is not None and (p.line, p.layer) != (p.saved_line, p.saved_layer):
            self.store.progress(p.job_id, p.line, p.layer)
            p.saved_line, p.saved_layer = p.line, p.layer

    def end_progress(self, job: Job) -> None:
        if self.prog is not None and self.prog.job_id == job.id:
            self.flush_progress()
            self.laser_job_ended(job, self.prog.line)
            self.prog = None

    def progress_fields(self, job: Job) -> dict[str, Any]:
        p = self.prog if self.prog is not None and self.prog.job_id == job.id else None
        line, layer = (p.line, p.layer) if p else (job.acked_line, job.layer)
        analysis = p.analysis if p else self.analyses.get(job.id)
        out: dict[str, Any] = {"line": line, "layer": layer}
        eta = getattr(analysis, "eta_s", None)
        if eta is not None and line <= 0:
            out["eta_s"] = round(job.est_s, 1)
        elif eta is not None:
            remaining = float(eta(line))
            out["eta_s"] = round(remaining, 1)
            if job.est_s > 0:
                out["progress"] = round(100.0 * max(0.0, 1.0 - remaining / job.est_s), 1)
        if "progress" not in out and job.lines:
            out["progress"] = round(100.0 * line / job.lines, 1)
        if job.state == "done":
            out["progress"] = 100.0
        if p is not None:
            out["elapsed_s"] = round(time.monotonic() - p.started, 1)
        return out

    def _job_in(self, *states: str) -> Job | None:
        job = self.store.active()
        return job if job is not None and job.state in states else None

    def on_driver_paused(self, event: Paused) -> None:
        job = self._job_in("running")
        if job is not None:
            self.flush_progress()
            job = self.store.transition(job.id, "paused")
            self.announce(job, "job.paused", {"by": event.reason, "line": job.acked_line})

    def on_driver_resumed(self, event: Resumed) -> None:
        job = self._job_in("paused")
        if job is not None:
            job = self.store.transition(job.id, "running")
            self.announce(job, "job.resumed", {"by": "machine"})

    def on_finished(self, event: JobFinished) -> None:
        job = self._job_in("running", "paused")
        if job is None:
            return
        if self.prog is not None and job.lines:
            self.prog.line = max(self.prog.line, job.lines)
        self.end_progress(job)
        job = self.store.transition(job.id, "done")
        self.announce(job, "job.done", {"lines_sent": event.lines})
        self.on_job_done(job)

    def on_failed(self, event: JobFailed) -> None:
        job = self._job_in("running", "paused")
        if job is None:
            return
        self.end_progress(job)
        job = self.store.transition(job.id, "failed", error=event.reason)
        self.alert = True
        self.announce(job, "job.failed", {"reason": event.reason, "acked_line": job.acked_line,
                                          "layer": job.layer})

    def on_driver_cancelled(self, event: JobCancelled) -> None:
        job = self._job_in("running", "paused")
        if job is not None:
            self.end_progress(job)
            job = self.store.transition(job.id, "cancelled", error="cancelled by the machine")
            self.announce(job, "job.cancelled", {"by": "machine"})

    def on_disconnected(self, event: Disconnected) -> None:
        self.driver_ok = False
        job = self._job_in("running", "paused")
        if job is not None:
            self.end_progress(job)
            job = self.store.transition(job.id, "failed", error=f"machine link lost: {event.reason}")
            self.announce(job, "job.failed", {"reason": job.error})
        self.fault(f"machine: {event.reason}")

    def on_temps(self, event: Temperatures) -> None:
        self.temps.update(event.readings)

    def on_status(self, event: MachineStatus) -> None:
        if event.position:
            self.position = tuple(event.position)
        self.machine_status = {"state": event.state, "feed": event.feed, "power": event.power}

    def on_firmware_message(self, event: FirmwareMessage) -> None:
        log.debug("firmware: %s", event.text)
