"""Camera checks wired into the job lifecycle, run in their own process.

Bed clear before START is accepted (occupied: refuse, red LED, event; a START
held `panel.override_hold_s` overrides), first layer when its last line is
acknowledged (fail: pause or alert per `inspection.first_layer_fail_action`),
cut quality after a laser job. OpenCV work never runs in the agent's loop or
even its process (it would starve the serial thread of the GIL): a worker
process takes requests from a bounded queue and a small thread posts its
verdicts back as InspectionDone events. Overlays stay on disk and are
referenced by path and sha256.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing as mp
import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable

from edge.events import InspectionDone
from edge.jobs import Job

log = logging.getLogger("fabedge.agent")
REQUEST_QUEUE = 2


def reference_path(cfg: Any) -> Path:
    return Path(cfg.camera.reference or Path(cfg.paths.state_dir) / "bed-reference.png")


def run_check(kind: str, cfg: Any, gcode_path: str, overlay_dir: str) -> dict[str, Any]:
    """Grab a frame and run one check; every failure is an `error` verdict with its sentence."""
    from drivers.camera import grab_frame
    import edge.inspect as inspect
    from vision.images import read_image

    try:
        # Opened per check (three per job at most): a stale buffered frame is never judged,
        # and the device is free between checks.
        frame = grab_frame(cfg.camera.source, cfg.camera.width, cfg.camera.height)
        ref = reference_path(cfg)
        reference = read_image(ref) if ref.exists() else None
        toolpath = None
        if kind in ("first_layer", "cut") and gcode_path:
            from edge.toolpath import analyze
            toolpath = analyze(gcode_path, cfg).toolpath     # with its layers: the first layer is known
        check = {"bed_clear": inspect.bed_clear, "first_layer": inspect.first_layer, "cut": inspect.cut}[kind]
        v = check(frame, reference, toolpath, cfg, overlay_dir=overlay_dir)
        d = v.to_dict()
        return {"verdict": d["verdict"], "reasons": d["reasons"], "details": d["details"],
                "overlay_path": d.get("overlay_path") or "", "overlay_sha256": d.get("overlay_sha256") or ""}
    except Exception as exc:          # a camera or vision error is a verdict, never a crash
        return {"verdict": "error", "reasons": [str(exc) or type(exc).__name__], "details": {}}


def _yield_to_streaming() -> None:
    """Lower this process's CPU weight (nice) and make it the first the kernel's OOM killer takes,
    so vision never starves the streaming thread nor costs the agent its memory."""
    try:
        os.nice(10)
    except OSError as exc:            # e.g. a sandbox that filters setpriority: say so, go on
        log.warning("inspection worker could not lower its CPU priority: %s", exc)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:   # raising it needs no privilege
            f.write("800")
    except OSError as exc:
        log.warning("inspection worker could not raise its OOM score: %s", exc)


def _worker_main(cfg: Any, overlay_dir: str, requests: Any, results: Any) -> None:
    """The inspection process: one request at a time, plain dicts back."""
    _yield_to_streaming()
    while True:
        req = requests.get()
        if req is None:
            break
        kind, job_id, path = req
        results.put({"kind": kind, "job_id": job_id, **run_check(kind, cfg, path, overlay_dir)})


class InspectionProcess:
    """One worker process with a bounded request queue; results are posted as events."""

    def __init__(self, cfg: Any, overlay_dir: Path, post: Callable[[Any], None]) -> None:
        ctx = mp.get_context("spawn")     # never fork a process that has threads
        self.requests = ctx.Queue(REQUEST_QUEUE)
        self.results = ctx.Queue(16)
        overlay_dir.mkdir(parents=True, exist_ok=True)
        self.proc = ctx.Process(target=_worker_main, args=(cfg, str(overlay_dir), self.requests, self.results),
                                name="fabedge-inspect", daemon=True)
        self.post = post
        self._reader = threading.Thread(target=self._read, name="inspect-results", daemon=True)
        self._closed = False
        self._lock = threading.Lock()
        self._outstanding: list[tuple[str, str]] = []     # (kind, job_id) submitted, not yet answered

    @property
    def alive(self) -> bool:
        return not self._closed and self.proc.is_alive()

    def start(self) -> "InspectionProcess":
        self.proc.start()
        self._reader.start()
        return self

    def submit(self, kind: str, job_id: str, path: str = "") -> bool:
        """False when the worker is busy (the queue is full) or gone."""
        if not self.proc.is_alive():
            return False
        with self._lock:
            try:
                self.requests.put_nowait((kind, job_id, path))
            except queue.Full:
                return False
            self._outstanding.append((kind, job_id))
        return True

    def _read(self) -> None:
        while not self._closed:
            try:
                r = self.results.get(timeout=0.5)
            except queue.Empty:
                if not self.proc.is_alive() and not self._closed:
                    self._worker_died()
                    break
                continue
            except (EOFError, OSError):
                break
            with self._lock:
                if (r["kind"], r["job_id"]) in self._outstanding:
                    self._outstanding.remove((r["kind"], r["job_id"]))
            self.post(InspectionDone(r["kind"], r["job_id"], r["verdict"], tuple(r.get("reasons", ())),
                                     r.get("details", {}), r.get("overlay_path", ""), r.get("overlay_sha256", "")))

    def _worker_died(self) -> None:
        """The worker is gone (the OOM killer picks it first): every check it still owed is
        answered with an error, so nothing waits for it forever (a START waiting on the bed)."""
        with self._lock:
            owed, self._outstanding = self._outstanding, []
        why = f"the inspection worker stopped (exit code {self.proc.exitcode})"
        log.error("%s with %d check(s) unanswered", why, len(owed))
        for kind, job_id in owed:
            self.post(InspectionDone(kind, job_id, "error", (why,), {}, "", ""))

    def close(self) -> None:
        self._closed = True
        try:
            self.requests.put_nowait(None)
        except queue.Full:
            pass
        self.proc.join(timeout=3)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=2)


class InspectMixin:
    """Part of Agent: see edge/agent.py."""

    def init_inspect(self) -> None:
        self.inspector: InspectionProcess | None = None
        self.pending_start: tuple[str, bool] | None = None

    def inspect_handlers(self) -> dict[type, Callable[[Any], None]]:
        return {InspectionDone: self.on_inspection_done}

    def inspection_available(self) -> bool:
        return self.cfg.camera.source != "none" and importlib.util.find_spec("edge.inspect") is not None

    def start_inspection(self) -> None:
        if self.inspection_available() and any((self.cfg.inspection.bed_clear, self.cfg.inspection.first_layer,
                                               self.cfg.inspection.cut)):
            self.inspector = InspectionProcess(self.cfg, self.state_dir / "inspections", self.post).start()

    def stop_inspection(self) -> None:
        if self.inspector is not None:
            self.inspector.close()
            self.inspector = None

    def bed_check_wanted(self, job: Job) -> bool:
        # a laser's bed holds the sheet to cut: the empty-bed check is for printers
        return self.inspector is not None and self.cfg.inspection.bed_clear and job.kind == "printer"

    def request_bed_check(self, job: Job, override: bool) -> None:
        if self.pending_start is not None:
            return                         # a check is already under way for this START
        if not self.inspector.alive:       # died (e.g. out of memory): a fresh one for this check
            self.stop_inspection()
            self.start_inspection()
        if not self.inspector.submit("bed_clear", job.id, ""):
            if override:
                self.begin(job, {"bed_check": "skipped (camera busy), START held to override"})
            else:
                self.refuse_start(job, "the camera check is busy; press START again")
            return
        self.pending_start = (job.id, override)

    def on_first_layer_done(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if self.inspector is not None and self.cfg.inspection.first_layer and job is not None \
                and job.kind == "printer":
            self.inspector.submit("first_layer", job.id, job.path)

    def on_job_done(self, job: Job) -> None:
        if self.inspector is not None and self.cfg.inspection.cut and job.kind == "laser":
            self.inspector.submit("cut", job.id, job.path)

    def on_inspection_done(self, ev: InspectionDone) -> None:
        job = self.store.get(ev.job_id)
        if self.telemetry is not None:
            self.telemetry.event(f"inspect.{ev.kind}", {
                "job_id": ev.job_id, "design": job.design if job else "", "verdict": ev.verdict,
                "reasons": list(ev.reasons), "details": ev.details, "overlay_path": ev.overlay_path,
                "overlay_sha256": ev.overlay_sha256})
        if ev.kind == "bed_clear":
            self._bed_verdict(ev)
        elif ev.kind == "first_layer" and ev.verdict == "fail":
            self.alert = True
            if self.cfg.inspection.first_layer_fail_action == "pause":
                self.pause_job("first layer check failed")
            self.show_leds()
        elif ev.kind == "cut" and ev.verdict in ("fail", "error"):
            self.alert = True
            self.show_leds()

    def withdraw_start(self) -> bool:
        """STOP while START waits on the bed check: the start is withdrawn; the verdict that
        comes later starts nothing. True when there was one."""
        if self.pending_start is None:
            return False
        self.pending_start = None
        return True

    def _bed_verdict(self, ev: InspectionDone) -> None:
        pending, self.pending_start = self.pending_start, None
        job = self.store.active()
        if pending is None or job is None or job.id != pending[0] or job.state != "armed":
            return
        override = pending[1]
        if ev.verdict == "clear":
            self.begin(job, {"bed_check": "clear"})
        elif override:
            self.begin(job, {"bed_check": f"{ev.verdict}, overridden by a long START hold"})
        else:
            why = "; ".join(ev.reasons) or ev.verdict
            self.refuse_start(job, f"the bed is not clear ({why}); clear it, or hold START "
                              f"{self.cfg.panel.override_hold_s:g} s to override")
