"""Light machines for `fabedge fleet simulate --light N`: the whole MQTT path, an instant machine.

Each light machine has the real reporting and command stack of an agent: its
own `Telemetry` (MQTT link, SQLite spool, retained birth/status/state, events,
cmd/res) and its own `CommandGate` (signature, expiry, replay store). Only the
machine is instant: a verified job.offer is staged and armed at once, runs for
a simulated print time, and its part outcome is sent when the simulated
operator clears the bed. As on a full machine, nothing runs until that
operator's START press (`press("start")` on an armed job); a press in any other
state does nothing. One scheduler thread drives every light machine of the
process; MQTT callbacks only hand commands to it.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import queue
import random
import threading
import time
from typing import Any

from edge.fleetsim import machine_config
from edge.fleetsim_operator import Operators, Seat

log = logging.getLogger("fabedge.fleetsim")
LIGHT_TICK_S = 1.0           # the MQTT link's idle tick (a Pi has one link; a shard has hundreds)


class LightMachine:
    """State, jobs and the reporting stack of one light machine (scheduler thread only)."""

    def __init__(self, fleet: "LightFleet", site: str, machine: str) -> None:
        from edge.telemetry.commands import CAPABILITIES, CommandGate
        from edge.telemetry.service import Telemetry

        self.fleet, self.site, self.machine = fleet, site, machine
        self.cfg = machine_config(fleet.spec, "printer", site, machine, "/dev/null")
        state_dir = fleet.spec.workdir / site / machine
        state_dir.mkdir(parents=True, exist_ok=True)
        self.gate = CommandGate(self.cfg, state_dir / "commands.db")
        self.telemetry = Telemetry(self.cfg, state_dir / "spool.db", on_link=self._link,
                                   on_command=lambda raw, retained: fleet.inbox.put((self, raw, retained)))
        self.telemetry.link.tick_s = LIGHT_TICK_S
        self.state = "idle"
        self.staged: list[dict[str, Any]] = []
        self.job: dict[str, Any] | None = None
        self.up = False
        self.events = 0
        self.started_by_press = 0
        self.capabilities = CAPABILITIES
        self.seat = Seat(f"{site}/{machine}", lambda: self.state, self._finger, lambda b: None,
                         holds={"start": 0.0, "bed_clear": 0.0, "reject": 0.0, "stop": 0.0})

    def _link(self, up: bool) -> None:
        self.up = up

    def start(self) -> None:
        self.telemetry.start()
        self.telemetry.birth({"name": self.cfg.machine.name, "kind": "printer", "profile": self.cfg.machine.profile,
                              "volume": {"x": self.cfg.volume.x, "y": self.cfg.volume.y, "z": self.cfg.volume.z},
                              "capabilities": self.capabilities, "light": True})
        self._announce()

    # ---- what the operator's finger does (posted to the scheduler) ---------------------------
    def _finger(self, button: str) -> None:
        self.fleet.inbox.put((self, button, None))

    def press(self, button: str) -> None:
        if button == "start" and self.state == "armed" and self.job is not None:
            self.started_by_press += 1
            self._set("running", "job.started")
            self.fleet.later(self.fleet.job_seconds(), self, "finish")
        elif button in ("bed_clear", "reject") and self.state == "awaiting_bed_clear" and self.job is not None:
            job, outcome = self.job, ("good" if button == "bed_clear" and self.job["state"] == "done" else "rejected")
            self._event("part.outcome", {"job_id": job["job_id"], "design": job["design"], "parts": job["parts"],
                                         "outcome": outcome, "job_state": job["state"]},
                        event_id=f"part-{self.site}-{self.machine}-{job['job_id']}")
            self.job = None
            self.state = "idle"
            self._arm_next()
        elif button == "stop" and self.state == "running" and self.job is not None:
            self.job["state"] = "cancelled"
            self._set("awaiting_bed_clear", "job.cancelled", {"by": "operator (STOP held)"})

    def finish(self) -> None:
        if self.state == "running" and self.job is not None:
            self.job["state"] = "done"
            self._set("awaiting_bed_clear", "job.done")

    # ---- region commands -------------------------------------------------------------------
    def command(self, raw: bytes, retained: bool) -> None:
        from edge.telemetry.commands import CommandRejected, Replayed, response
        try:
            cmd = self.gate.check(raw, retained, self.state)
        except Replayed as rep:
            if rep.earlier_results:
                self.telemetry.command_result(rep.earlier_results[-1])
            return
        except CommandRejected as rej:
            if rej.cmd_id:
                self.telemetry.command_result(rej.response())
            return
        self.telemetry.command_result(response(cmd.id, "accepted", op=cmd.op))
        if cmd.op == "job.offer":
            self._offer(cmd.id, cmd.args)
        elif cmd.op == "job.cancel":
            self._cancel(cmd.id, str(cmd.args.get("job_id")))
        elif cmd.op in ("telemetry.rate", "resync"):
            self._answer(cmd.id, "done")
        else:
            self._answer(cmd.id, "rejected", code="not_allowed", reason=f"{cmd.op} is not simulated")

    def _answer(self, cmd_id: str, status: str, **fields: Any) -> None:
        from edge.telemetry.commands import response
        payload = response(cmd_id, status, **fields)
        self.telemetry.command_result(payload)
        self.gate.record(cmd_id, payload)

    def _offer(self, cmd_id: str, args: dict[str, Any]) -> None:
        self.telemetry.command_result({"cmd_id": cmd_id, "status": "running", "op": "job.offer"})
        data = str(args.get("gcode") or "").encode()
        if args.get("sha256") and hashlib.sha256(data).hexdigest() != args["sha256"]:
            self._answer(cmd_id, "rejected", code="sha256_mismatch", reason="the inline file's sha256 differs")
            return
        known = {j["job_id"] for j in self.staged} | ({self.job["job_id"]} if self.job else set())
        if args["job_id"] in known:
            self._answer(cmd_id, "rejected", code="bad_args", reason=f"job {args['job_id']} is already known here")
            return
        job = {"job_id": args["job_id"], "design": str(args.get("design") or ""), "parts": int(args.get("parts") or 1),
               "state": "staged"}
        self.staged.append(job)
        self._event("job.staged", {"job_id": job["job_id"], "design": job["design"], "size": len(data)})
        self._answer(cmd_id, "done", job_id=job["job_id"], state="staged")
        if self.state == "idle":
            self.state = "staged"
        self._arm_next()

    def _cancel(self, cmd_id: str, job_id: str) -> None:
        for j in list(self.staged):
            if j["job_id"] == job_id:
                self.staged.remove(j)
                self._event("job.cancelled", {"job_id": job_id, "by": "region"})
                self._answer(cmd_id, "done", job_id=job_id, state="cancelled")
                if self.state == "staged" and not self.staged:
                    self.state = "idle"
                self._announce()
                return
        if self.job is not None and self.job["job_id"] == job_id and self.state in ("armed", "running"):
            self.job["state"] = "cancelled"
            self._set("awaiting_bed_clear", "job.cancelled", {"by": "region"})
            self._answer(cmd_id, "done", job_id=job_id, state="cancelled")
            return
        self._answer(cmd_id, "failed", code="bad_args", reason=f"no open job {job_id!r} on this machine")

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _arm_next(self) -> None:
        if self.job is None and self.staged:
            self.job = self.staged.pop(0)
            self._set("armed", "job.armed")
        else:
            self._announce()

    def _set(self, state: str, event: str, extra: dict[str, Any] | None = None) -> None:
        self.state = state
        job = self.job or {}
        self._event(event, {"job_id": job.get("job_id"), "design": job.get("design"), **(extra or {})})
        self._announce()

    def _event(self, type_: str, payload: dict[str, Any], event_id: str | None = None) -> None:
        self.telemetry.event(type_, payload, event_id=event_id)
        self.events += 1

    def _announce(self) -> None:
        job = self.job
        self.telemetry.state({"state": self.state, "queue": len(self.staged),
                              "job": {"id": job["job_id"], "design": job["design"], "parts": job["parts"]}
                              if job else None})

    def sample(self) -> None:
        self.telemetry.sample({"state": self.state})


class LightFleet:
    """Every light machine of this process, one scheduler thread, and their operators."""

    def __init__(self, spec: Any, names: list[tuple[str, str]]) -> None:
        self.spec = spec
        self.inbox: queue.Queue = queue.Queue(maxsize=100000)
        self.rng = random.Random(spec.habits.seed + 7)
        self._heap: list[tuple[float, int, LightMachine, str]] = []
        self._n = itertools.count()
        self._stop = threading.Event()
        self.machines = [LightMachine(self, site, machine) for site, machine in names]
        self.operators = Operators(spec.habits, spec.time_scale)
        for m in self.machines:
            self.operators.add(m.seat)
        self._thread: threading.Thread | None = None
        self.sample_s = spec.telemetry_interval_s / max(spec.time_scale, 1e-6)

    def job_seconds(self) -> float:
        return self.rng.uniform(*self.spec.light_job_s) / max(self.spec.time_scale, 1e-6)

    def later(self, delay_s: float, machine: LightMachine, what: str) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._n), machine, what))

    def start(self) -> "LightFleet":
        for m in self.machines:
            m.start()
        self._thread = threading.Thread(target=self._run, name="light-machines", daemon=True)
        self._thread.start()
        self.operators.start()
        return self

    def all_connected(self) -> bool:
        return all(m.up for m in self.machines)

    def _run(self) -> None:
        next_sample = time.monotonic()
        while not self._stop.is_set():
            try:
                m, what, retained = self.inbox.get(timeout=0.02)
                try:
                    m.command(what, retained) if isinstance(what, bytes) else m.press(what)
                except Exception:
                    log.exception("light machine %s/%s", m.site, m.machine)
            except queue.Empty:
                pass
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, m, what = heapq.heappop(self._heap)
                getattr(m, what)()
            if now >= next_sample:
                next_sample = now + self.sample_s
                for m in self.machines:
                    m.sample()

    def stop(self) -> None:
        self.operators.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for m in self.machines:
            m.telemetry.stop(clean=True)
            m.gate.close()

    def summary(self) -> dict[str, Any]:
        return {"machines": len(self.machines), "events": sum(m.events for m in self.machines),
                "started_by_press": sum(m.started_by_press for m in self.machines),
                "start_presses_armed": sum(self.operators.starts_pressed(m.seat) for m in self.machines)}
