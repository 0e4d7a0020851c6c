"""The agent's job sources and region commands: offer, folder, inbox -> staged -> armed.

Downloads, copies and analyses run in worker threads and come back as
JobPrepared events; only the loop writes the store. A job that fails its checks
is recorded as rejected (it never reaches armed) and the region is told the
line and the reason. A staged job is armed (amber blinks) as soon as the
machine is free; nothing here ever starts a machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from types import SimpleNamespace
from pathlib import Path
from typing import Any, Callable

from edge.events import CommandReceived, InboxRequest, JobPrepared, LocalFileFound, ResumePrepared
from edge.jobs import FINISHED, Job, JobStateError
from edge.atomicfile import fsync_dir, write_atomic
from edge.watchfolder import FolderWatcher

log = logging.getLogger("fabedge.agent")
MAX_FINDINGS = 5


def analysis_meta(analysis: Any) -> dict[str, Any]:
    return {"lines": int(getattr(analysis, "lines", 0) or 0), "layers": int(getattr(analysis, "layers", 0) or 0),
            "est_s": float(getattr(analysis, "estimated_time_s", 0.0) or 0.0),
            "kind": str(getattr(analysis, "kind", "printer") or "printer")}


def finding_text(f: Any) -> str:
    msg = str(getattr(f, "message", f))
    line = getattr(f, "line", None)
    return msg if msg.startswith("line ") or line is None else f"line {line}: {msg}"


def finding_text_dict(e: dict[str, Any]) -> str:
    msg, line = str(e.get("message", "")), e.get("line")
    return msg if msg.startswith("line ") or line is None else f"line {line}: {msg}"


def copy_hashed(src: Path, dest: Path) -> str:
    """Copy `src` to `dest` atomically (temp + fsync + rename); returns the sha256."""
    h = hashlib.sha256()
    tmp = dest.with_name(f".{dest.name}.tmp")
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        for chunk in iter(lambda: fi.read(1 << 20), b""):
            h.update(chunk)
            fo.write(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    return h.hexdigest()


class JobsMixin:
    """Part of Agent: see edge/agent.py."""

    def init_jobs(self) -> None:
        self.analyses: dict[str, Any] = {}
        self.interrupted_at_start: list[Job] = []
        self.watchers: list[FolderWatcher] = []
        self.gate: Any = None
        self._preparing: set[str] = set()

    def job_handlers(self) -> dict[type, Callable[[Any], None]]:
        return {JobPrepared: self.on_job_prepared, LocalFileFound: self.on_local_file,
                InboxRequest: self.on_inbox, CommandReceived: self.on_command,
                ResumePrepared: self.on_resume_prepared}

    # ---- sources ---------------------------------------------------------------
    def start_sources(self) -> None:
        try:
            from edge.telemetry.commands import CommandGate
            self.gate = CommandGate(self.cfg, self.state_dir / "commands.db")
        except ImportError:
            log.warning("signed commands are not available in this build: region commands are refused")
        inbox = FolderWatcher(self.inbox_dir, lambda p: self.post(self._inbox_event(p)), suffixes=(".json",),
                              interval=0.25)
        self.watchers.append(inbox.start())
        if self.cfg.paths.watch_dir:
            watch = FolderWatcher(self.cfg.paths.watch_dir, lambda p: self.post(LocalFileFound(str(p))),
                                  seen_path=self.state_dir / "watch-seen.json")
            self.watchers.append(watch.start())

    def stop_sources(self) -> None:
        for w in self.watchers:
            w.stop()
        self.watchers.clear()

    def _inbox_event(self, path: Path) -> InboxRequest:
        try:
            req = json.loads(path.read_text())
            return InboxRequest(str(req.get("action", "")), dict(req.get("args", {})), str(path))
        except (OSError, ValueError, AttributeError) as exc:
            return InboxRequest("invalid", {"error": str(exc)}, str(path))

    def on_local_file(self, event: LocalFileFound) -> None:
        path = Path(event.path)
        self.prepare_file(path, "folder", {"name": path.name, "design": path.stem, "parts": 1})

    def on_inbox(self, event: InboxRequest) -> None:
        """A `fabedge job ...` request: acted on, then its file removed (answered in the log)."""
        a = event.args
        try:
            if event.action == "add":
                src = Path(a["file"])
                meta = {"name": a.get("name") or src.name, "design": a.get("design") or src.stem,
                        "parts": int(a.get("parts") or 1)}
                job_id = str(a.get("job_id") or "")
                if job_id and self.store.get(job_id) is not None:
                    raise JobStateError(f"job {job_id} already exists")
                self.prepare_file(src, "cli", meta, job_id=job_id, remove_source=True)
            elif event.action == "cancel":
                self.cancel_job(self.store.find(str(a["job_id"])).id, "operator (fabedge job cancel)")
            elif event.action == "resume":
                self.request_resume(self.store.find(str(a["job_id"])).id, a.get("layer"))
            else:
                log.warning("inbox %s: unknown request %r %s", event.request_path, event.action, a)
        except Exception as exc:
            log.warning("inbox %s: %s", event.request_path, exc)
            self._answer_inbox(event.request_path, str(exc))
        finally:
            try:
                os.unlink(event.request_path)
            except OSError:
                pass

    def _answer_inbox(self, request_path: str, error: str) -> None:
        out = Path(request_path).with_suffix(".err")
        write_atomic(out, error.encode())

    # ---- preparation (workers) ------------------------------------------------------
    def prepare_file(self, src: Path, source: str, meta: dict[str, Any], job_id: str = "",
                     remove_source: bool = False) -> None:
        """Copy + hash + analyse `src` in a worker; the result comes back as JobPrepared."""
        job_id = job_id or f"{source}-{uuid.uuid4().hex[:10]}"
        dest = self.jobs_dir / f"{job_id}.gcode"
        cfg = self.cfg

        def work() -> None:
            try:
                sha = copy_hashed(src, dest)
                if remove_source:
                    src.unlink(missing_ok=True)
                from edge.toolpath import analyze
                analysis = analyze(dest, cfg)
            except Exception as exc:
                self.post(JobPrepared(job_id, source, meta=meta, error_code="unreadable",
                                      error=f"{src}: {exc}"))
                return
            self.post(self._prepared(job_id, source, dest, sha, meta, analysis))
        self._spawn(work, f"prepare:{job_id}")

    def _prepared(self, job_id: str, source: str, path: Path, sha: str, meta: dict[str, Any],
                  analysis: Any, cmd_id: str = "") -> JobPrepared:
        meta = {**meta, **analysis_meta(analysis)}
        if getattr(analysis, "ok", False):
            return JobPrepared(job_id, source, str(path), sha, meta, cmd_id, analysis=analysis)
        errors = list(getattr(analysis, "errors", []))[:MAX_FINDINGS]
        texts = tuple((int(getattr(e, "line", 0) or 0), finding_text(e)) for e in errors)
        return JobPrepared(job_id, source, str(path), sha, meta, cmd_id, error_code="checks_failed",
                           error="; ".join(t for _, t in texts) or "the file failed its checks", findings=texts)

    def _spawn(self, fn: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()] + [t]
        t.start()

    def on_job_prepared(self, event: JobPrepared) -> None:
        self._preparing.discard(event.job_id)
        existing = self.store.get(event.job_id)
        if existing is not None:       # re-analysis of a job from before a restart
            if event.analysis is not None and not event.error:
                self.analyses[event.job_id] = event.analysis
                if "resume_toolpath" in event.meta:
                    self.stream_analyses[event.job_id] = SimpleNamespace(toolpath=event.meta["resume_toolpath"])
            elif event.error:
                log.warning("job %s cannot be read again: %s", event.job_id, event.error)
            self.maybe_arm()
            return
        fields = {k: event.meta[k] for k in ("name", "design", "parts", "lines", "layers", "est_s", "kind")
                  if k in event.meta}
        if event.error:
            if event.source != "mqtt":
                self.alert = True        # a local job refused: tell the person at the machine (red)
            job = self.store.add(event.job_id, source=event.source, state="rejected", path=event.path,
                                 sha256=event.sha256, cmd_id=event.cmd_id, error=event.error, **fields)
            self.announce(job, "job.rejected", {"code": event.error_code, "reason": event.error,
                                                "findings": [{"line": ln, "message": m} for ln, m in event.findings]})
            self.answer_command(event.cmd_id, "rejected", code=event.error_code, reason=event.error,
                                job_id=event.job_id,
                                errors=[{"line": ln or None, "message": m} for ln, m in event.findings])
            return
        job = self.store.add(event.job_id, source=event.source, path=event.path, sha256=event.sha256,
                             cmd_id=event.cmd_id, **fields)
        self.analyses[job.id] = event.analysis
        self.announce(job, "job.staged", {"lines": job.lines, "layers": job.layers, "est_s": job.est_s,
                                          "sha256": job.sha256})
        self.answer_command(event.cmd_id, "done", job_id=job.id, state="staged")
        self.maybe_arm()

    def resume_queue_after_start(self) -> None:
        job = self.store.active()
        if job is not None and job.state == "armed":
            self.reanalyse(job)          # armed before the restart: load it again before START
        self.maybe_arm()

    def maybe_arm(self) -> None:
        """Arm the oldest staged job when the machine is free and connected (its analysis loaded):
        the amber blink tells the operator START will be taken, so it never blinks before then."""
        if self.store.active() is not None or self.store.get_meta("fault") or not self.driver_ok:
            return
        job = self.store.next_staged()
        if job is None:
            return
        if job.id not in self.analyses:
            self.reanalyse(job)
            return
        job = self.store.transition(job.id, "armed")
        self.announce(job, "job.armed", {"est_s": job.est_s})

    def reanalyse(self, job: Job) -> None:
        """After a restart: the analysis is rebuilt from the stored file (never trusted stale)."""
        if job.id in self._preparing:
            return
        self._preparing.add(job.id)
        cfg = self.cfg

        def work() -> None:
            try:
                from edge.toolpath import analyze, load
                analysis = analyze(job.path, cfg)
                meta = {}
                if job.resume_path:     # an armed resume: what streams is the resume file
                    meta["resume_toolpath"] = load(job.resume_path, max_line_length=cfg.limits.max_line_length)
                self.post(JobPrepared(job.id, job.source, job.path, job.sha256, meta=meta, analysis=analysis))
            except Exception as exc:
                self.post(JobPrepared(job.id, job.source, error_code="unreadable", error=str(exc)))
        self._spawn(work, f"reanalyse:{job.id}")

    # ---- region commands ---------------------------------------------------------------
    def on_mqtt_command(self, raw: bytes, retained: bool) -> None:     # paho's thread
        self.post(CommandReceived(bytes(raw), bool(retained)))

    def answer_command(self, cmd_id: str, status: str, **fields: Any) -> None:
        if not cmd_id or self.telemetry is None:
            return
        try:
            from edge.telemetry.commands import response
            payload = response(cmd_id, status, **fields)
        except ImportError:
            payload = {"id": cmd_id, "status": status, **fields}
        self.telemetry.command_result(payload)
        if status in ("done", "failed", "rejected") and self.gate is not None:
            self.gate.record(cmd_id, payload)

    def on_command(self, event: CommandReceived) -> None:
        """received -> rejected | accepted -> running -> done | failed: every command is answered."""
        if self.gate is None:
            return
        from edge.telemetry.commands import CommandRejected, Replayed, parse_envelope
        cmd_id = None
        if len(event.raw) <= self.cfg.broker.max_payload_kb * 1024:
            try:
                cmd_id = parse_envelope(event.raw)["id"]
            except CommandRejected:
                pass
        self.answer_command_status(cmd_id, "received")
        try:
            cmd = self.gate.check(event.raw, event.retained, self.store.machine_state())
        except (Replayed, CommandRejected) as rej:
            # A replay is answered with its earlier result (in `earlier`) and never run again.
            if self.telemetry is not None:
                self.telemetry.command_result(rej.response())
            log.warning("command %s rejected: %s: %s", cmd_id, rej.code, rej.message)
            return
        self.answer_command_status(cmd.id, "accepted", op=cmd.op)
        self.run_command(cmd)

    def answer_command_status(self, cmd_id: str | None, status: str, **fields: Any) -> None:
        if self.telemetry is None:
            return
        from edge.telemetry.commands import response
        self.telemetry.command_result(response(cmd_id, status, **fields))

    def run_command(self, cmd: Any) -> None:
        op, args = cmd.op, dict(cmd.args or {})
        if op == "job.offer":
            self.answer_command_status(cmd.id, "running")
            self.fetch_offer(cmd.id, args)
        elif op == "job.cancel":
            job = self.store.get(str(args.get("job_id", "")))
            if job is None or job.closed or job.state in FINISHED:
                self.answer_command(cmd.id, "failed", code="bad_args",
                                    reason=f"no open job {args.get('job_id')!r} on this machine")
                return
            self.cancel_job(job.id, "region")
            self.answer_command(cmd.id, "done", job_id=job.id, state=self.store.get(job.id).state)
        elif op == "job.pause":
            ok = self.pause_job("region")
            self.answer_command(cmd.id, "done" if ok else "failed",
                                **({} if ok else {"code": "wrong_state", "reason": "no job is running"}))
        elif op == "job.resume":
            # Continuing moves the machine: only a person at the machine does that (PAUSE/RESUME).
            self.answer_command(cmd.id, "rejected", code="not_allowed",
                                reason="a paused job is resumed only by the operator's RESUME press on the machine")
        elif op == "telemetry.rate":
            self.telemetry.set_telemetry_interval(float(args.get("interval_s", self.cfg.broker.telemetry_interval_s)))
            self.answer_command(cmd.id, "done")
        elif op == "resync":
            self.publish_birth()
            self.refresh_state(force=True)
            self.answer_command(cmd.id, "done")
        else:
            self.answer_command(cmd.id, "rejected", code="bad_args", reason=f"unknown operation {op!r}")

    def fetch_offer(self, cmd_id: str, args: dict[str, Any]) -> None:
        """Download, verify and analyse an offered job in a worker (fetch_job blocks)."""
        from edge.telemetry.commands import CommandRejected
        from edge.telemetry.joboffer import fetch_job
        job_id = str(args.get("job_id") or f"mqtt-{uuid.uuid4().hex[:10]}")
        meta = {"name": str(args.get("name") or job_id), "design": str(args.get("design") or ""),
                "parts": int(args.get("parts") or 1)}
        if self.store.get(job_id) is not None:
            self.answer_command(cmd_id, "rejected", code="bad_args", reason=f"job {job_id} is already known here")
            return
        cfg, dest = self.cfg, self.jobs_dir

        def work() -> None:
            try:
                staged = fetch_job(args, dest, cfg, cmd_id=cmd_id)
            except CommandRejected as rej:
                errors = rej.details.get("errors") or []
                findings = tuple((int(e.get("line") or 0), finding_text_dict(e)) for e in errors[:MAX_FINDINGS])
                self.post(JobPrepared(job_id, "mqtt", meta=meta, cmd_id=cmd_id, error_code=rej.code,
                                      error=rej.message, findings=findings))
                return
            except Exception as exc:
                self.post(JobPrepared(job_id, "mqtt", meta=meta, cmd_id=cmd_id, error_code="download_failed",
                                      error=str(exc)))
                return
            meta2 = {"name": staged.name, "design": staged.design, "parts": staged.parts}
            self.post(self._prepared(job_id, "mqtt", Path(staged.path), staged.sha256, meta2, staged.analysis,
                                     cmd_id))
        self._spawn(work, f"offer:{job_id}")

    # ---- cancelling and resuming ----------------------------------------------------------
    def cancel_job(self, job_id: str, by: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.closed or job.state in FINISHED:
            raise JobStateError(f"job {job_id} is not open")
        if job.state in ("running", "paused") and self.driver is not None and self.driver.busy:
            self.driver.cancel()
        never_ran = job.state in ("staged", "armed") and not job.acked_line
        job = self.store.transition(job_id, "cancelled", error=f"cancelled by {by}")
        if never_ran:
            job = self.store.discard(job_id)      # nothing on the bed: no BED CLEAR, no part outcome
        self.end_progress(job)
        self.announce(job, "job.cancelled", {"by": by, "acked_line": job.acked_line, "layer": job.layer})
        self.maybe_arm()

    def request_resume(self, job_id: str, layer: Any) -> None:
        """Prepare resume-from-layer G-code; the operator still has to press START."""
        job = self.store.get(job_id)
        if job is None or job.state != "interrupted":
            raise JobStateError(f"job {job_id} is not interrupted: only an interrupted print is resumed")
        if job.kind != "printer":
            raise JobStateError(f"job {job_id} is a {job.kind} job: only prints are resumed from a layer")
        chosen = int(layer) if layer is not None else max(job.layer, 0)
        out = self.jobs_dir / f"{job_id}.resume-L{chosen}.gcode"
        cfg = self.cfg

        def work() -> None:
            from edge.resume import scan, write_resume
            from edge.toolpath import analyze, load
            try:
                original = analyze(job.path, cfg)
                rows = (original.toolpath.layer == chosen).nonzero()[0]
                if not len(rows):
                    raise JobStateError(f"job {job_id} has no layer {chosen}")
                base = int(rows[0]) + 1
                z_now = scan(job.path, max(job.acked_line, base) + 1).z
                pre = write_resume(job.path, out, base, chosen, z_now=z_now)
                # The lines after the preamble passed the checks with the original file; the
                # preamble re-declares Z (G92), which a static volume check cannot follow.
                analysis = SimpleNamespace(toolpath=load(str(out), max_line_length=cfg.limits.max_line_length))
                self.post(ResumePrepared(job_id, chosen, str(out), pre, base, analysis=analysis, original=original))
            except Exception as exc:
                self.post(ResumePrepared(job_id, chosen, error=str(exc)))
        self._spawn(work, f"resume:{job_id}")

    def on_resume_prepared(self, event: ResumePrepared) -> None:
        job = self.store.get(event.job_id)
        if event.error or job is None or job.state != "interrupted":
            log.warning("resume of %s not possible: %s", event.job_id, event.error or "job moved on")
            return
        self.analyses[job.id] = event.original
        self.stream_analyses[job.id] = event.analysis
        job = self.store.transition(job.id, "armed", resume_path=event.path, resume_pre=event.preamble_lines,
                                    resume_base=event.base_line)
        self.announce(job, "job.armed", {"resume_from_layer": event.layer, "resume_from_line": event.base_line})
