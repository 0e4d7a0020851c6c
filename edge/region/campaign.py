"""The campaign dispatcher: what a region's platform does with the contract in docs/mqtt.md.

It follows every machine's retained `birth`, `status` and `state`, their job
events, part outcomes and `cmd/res` answers (a persistent MQTT session, QoS 1,
so nothing published while it was down is missed), and offers signed
`job.offer` commands to machines that are online, idle and fit the design
(kind or profile, work volume). A job whose offer is refused, whose print fails
or is rejected, or whose lease runs out before START is pressed frees its
parts, which are offered again under a new job id: a job id is offered once,
so no job can run twice. Each message is committed to the SQLite store before
its PUBACK goes back (paho acknowledges after the callback), and each offer is
recorded before it is published, so the dispatcher can be killed at any moment.
Nothing here starts a machine: an offer stages a file; a person presses START.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from typing import Any, Callable

from edge.region.store import LEASED, OPEN, CampaignStore, Machine
from edge.telemetry import schema, signing

log = logging.getLogger("fabedge.region")

OFFER_TTL_S = 300           # how long a signed offer may wait in a queue before the machine refuses it
UNFIT_CODES = ("checks_failed", "sha256_mismatch", "size_mismatch", "bad_args")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def topics() -> list[str]:
    """What the dispatcher subscribes to (never `tele`: samples are not its business)."""
    root = f"{schema.TOPIC_PREFIX}/+/+"
    return [f"{root}/birth", f"{root}/status", f"{root}/state", f"{root}/evt/#", f"{root}/cmd/res"]


def fits(machine: Machine, bbox: dict[str, list[float]]) -> bool:
    """The design's moves lie inside the machine's work volume (from its birth)."""
    for axis, (lo, hi) in bbox.items():
        vol = machine.volume.get(axis)
        if not (isinstance(vol, list) and len(vol) == 2):
            return False
        if lo < vol[0] - 1e-6 or hi > vol[1] + 1e-6:
            return False
    return True


class Dispatcher:
    """Fold MQTT messages into the store (`apply`), and offer / expire jobs (`step`)."""

    def __init__(self, store: CampaignStore, key: Any, key_id: str, *, lease_s: float = 900.0,
                 offer_ttl_s: float = OFFER_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.key = key
        self.key_id = key_id
        self.lease_s = lease_s
        self.offer_ttl_s = offer_ttl_s
        self.clock = clock
        self.publish: Callable[[str, bytes], bool] = lambda topic, payload: False
        self.applied = 0

    # ---- input: every message (MQTT thread) ---------------------------------------------------
    def apply(self, topic: str, payload: bytes) -> None:
        where = schema.parse_topic(topic)
        msg = schema.decode(payload)
        if where is None or msg is None:
            return
        self.applied += 1
        ts = msg.get("ts") if isinstance(msg.get("ts"), (int, float)) else self.clock()
        site, name = where.site, where.machine
        if where.kind == "birth":
            vol = msg.get("volume") if isinstance(msg.get("volume"), dict) else {}
            self.store.machine_seen(site, name, ts, kind=str(msg.get("kind") or ""),
                                    profile=str(msg.get("profile") or ""), volume=vol)
        elif where.kind == "status":
            self._status(site, name, msg, ts)
        elif where.kind == "state":
            self.store.machine_seen(site, name, ts, state=str(msg.get("state") or ""))
        elif where.kind == "evt":
            self._event(where.sub, site, name, msg)
        elif where.kind == "cmd/res":
            self._result(site, name, msg)

    def _status(self, site: str, name: str, msg: dict, ts: float) -> None:
        session, status = msg.get("session"), msg.get("status")
        if not isinstance(session, int) or status not in schema.STATUS_VALUES:
            return
        known = self.store.machine(site, name)
        if known is not None and session < known.session:
            return                      # a stale will of an earlier connection
        self.store.machine_seen(site, name, ts, status=status, session=session)

    def _event(self, kind: str, site: str, name: str, msg: dict) -> None:
        job_id = str(msg.get("job_id") or "")
        if kind == "part.outcome":
            outcome, parts = msg.get("outcome"), msg.get("parts")
            if outcome in schema.PART_OUTCOMES and isinstance(parts, int) and isinstance(msg.get("id"), str):
                design = str(msg.get("design") or "")
                if self.store.add_outcome(msg["id"], job_id, design, site, name, parts, outcome, float(msg["ts"])):
                    log.info("%s/%s: %d %s part(s) of %s (job %s)", site, name, parts, outcome, design, job_id)
            return
        job = self.store.job(job_id) if job_id else None
        if job is None or (job.site, job.machine) != (site, name):
            return                      # not one of ours
        lease = self.clock() + self.lease_s
        if kind == "job.staged":
            self.store.set_job(job_id, "staged", lease_until=lease, only_from=("offered",))
        elif kind == "job.armed":
            self.store.set_job(job_id, "armed", lease_until=lease, only_from=("offered", "staged"))
        elif kind == "job.started":
            self.store.set_job(job_id, "running", started=True, only_from=LEASED + ("expired",))
        elif kind == "job.done":
            self.store.set_job(job_id, "done", only_from=LEASED + ("running", "expired"))
        elif kind in ("job.failed", "job.cancelled", "job.interrupted"):
            reason = str(msg.get("reason") or msg.get("by") or kind)
            self.store.set_job(job_id, "failed", reason=f"{kind}: {reason}", only_from=OPEN + ("expired",))
        elif kind == "job.rejected":
            self._refused(job_id, str(msg.get("code") or "rejected"), str(msg.get("reason") or ""))

    def _result(self, site: str, name: str, msg: dict) -> None:
        if msg.get("status") != "rejected" or msg.get("code") == "replayed":
            return                      # a replayed answer repeats one we already had
        job = self.store.job_by_cmd(str(msg.get("cmd_id") or ""))
        if job is not None and (job.site, job.machine) == (site, name):
            self._refused(job.job_id, str(msg.get("code") or "rejected"), str(msg.get("reason") or ""))

    def _refused(self, job_id: str, code: str, reason: str) -> None:
        job = self.store.job(job_id)
        if job is None:
            return
        if self.store.set_job(job_id, "rejected", reason=f"{code}: {reason}", only_from=LEASED) \
                and code in UNFIT_CODES:
            self.store.mark_unfit(job.design, job.site, job.machine, f"{code}: {reason}")
            log.warning("%s/%s refused %s (%s): not offered this design again", job.site, job.machine,
                        job.design, reason or code)

    # ---- output: offers and expired leases (the dispatch loop) ----------------------------------
    def step(self) -> int:
        """Expire leases, then offer what is missing to idle machines; returns offers sent."""
        self.expire()
        sent = 0
        busy = {(j.site, j.machine) for j in self.store.jobs(OPEN)}
        idle = [m for m in self.store.machines()
                if m.status == "online" and m.state == "idle" and (m.site, m.machine) not in busy]
        for design in self.store.designs():
            need = design.quantity - self.store.good_parts(design.name) - self.store.in_flight(design.name)
            if need <= 0:
                continue
            unfit = self.store.unfit(design.name)
            for m in list(idle):
                if need <= 0:
                    break
                if (m.site, m.machine) in unfit:
                    continue
                file = self.store.gcode_for(design.name, m.kind, m.profile)
                if file is None or not fits(m, file[2]):
                    continue
                parts = min(design.parts_per_job, need) if design.parts_per_job > 1 else 1
                if self.offer(design.name, m, file[0], file[1], parts):
                    idle.remove(m)
                    need -= parts
                    sent += 1
        return sent

    def offer(self, design: str, m: Machine, data: bytes, sha: str, parts: int) -> bool:
        n = self.store.next_number("job")
        job_id = f"{_SAFE.sub('-', design)[:40]}-{n:06d}"
        args = {"job_id": job_id, "design": design, "parts": parts, "name": f"{design} #{n}",
                "gcode": data.decode("utf-8"), "sha256": sha, "size": len(data)}
        env = signing.make_envelope(self.key, self.key_id, f"{m.site}/{m.machine}", "job.offer", args,
                                    ttl_s=self.offer_ttl_s, cmd_id=f"offer-{job_id}-{uuid.uuid4().hex[:8]}")
        # recorded first: a crash after publishing still knows the job (its events find it), and a
        # crash before publishing is repaired by resend_offers() with the very same signed bytes
        text = json.dumps(env)
        self.store.add_job(job_id, design, m.site, m.machine, env["id"], parts, self.clock() + self.lease_s, text)
        ok = self.publish(schema.Topics(m.site, m.machine).cmd_req, text.encode())
        log.info("offered %s (%s x%d) to %s/%s%s", job_id, design, parts, m.site, m.machine,
                 "" if ok else " (not confirmed by the broker; the lease covers it)")
        return True

    def resend_offers(self) -> int:
        """After a restart: publish again, byte for byte, every offer with no answer yet. The command id
        is the same, so a machine that already has it answers from its replay store and runs nothing twice."""
        n = 0
        for job_id, site, machine, envelope in self.store.unanswered_offers():
            n += bool(self.publish(schema.Topics(site, machine).cmd_req, envelope.encode()))
        return n

    def expire(self) -> int:
        """Jobs not started within their lease: cancel them on the machine and free their parts."""
        now, n = self.clock(), 0
        for job in self.store.jobs(LEASED):
            if job.lease_until is not None and job.lease_until < now:
                if self.store.set_job(job.job_id, "expired", reason="lease expired before START",
                                      only_from=LEASED):
                    n += 1
                    env = signing.make_envelope(self.key, self.key_id, f"{job.site}/{job.machine}", "job.cancel",
                                                {"job_id": job.job_id}, ttl_s=self.offer_ttl_s,
                                                cmd_id=f"cancel-{job.job_id}-{uuid.uuid4().hex[:8]}")
                    self.publish(schema.Topics(job.site, job.machine).cmd_req, json.dumps(env).encode())
                    log.warning("job %s on %s/%s: lease expired before START; cancelled, parts offered again",
                                job.job_id, job.site, job.machine)
        return n

    def done(self) -> bool:
        """Every active design has its quantity of good parts and nothing is still on its way."""
        designs = self.store.designs()
        return bool(designs) and all(self.store.good_parts(d.name) >= d.quantity for d in designs) \
            and not self.store.jobs(OPEN)


def run_dispatcher(dispatcher: Dispatcher, endpoint: Any, *, stop: threading.Event | None = None,
                   exit_when_done: bool = False, interval_s: float = 0.2,
                   on_step: Callable[[Dispatcher], None] | None = None) -> int:
    """Subscribe (persistent session), then step until stopped or done. Returns offers sent."""
    from edge.telemetry.client import Watcher

    store = dispatcher.store
    client_id = store.get_meta("client_id")
    if not client_id:
        client_id = f"fabedge-region-{uuid.uuid4().hex[:12]}"
        store.set_meta("client_id", client_id)
    watcher = Watcher(endpoint, topics(), lambda t, p, _r: dispatcher.apply(t, p), client_id=client_id,
                      persistent=True)

    def publish(topic: str, payload: bytes) -> bool:
        if not watcher.connected.is_set():
            return False
        try:
            # queued at QoS 1 without waiting for each PUBACK: a burst of offers to a thousand idle
            # machines is not paced by round trips; an offer the broker never got is covered by its lease
            watcher.publish(topic, payload, qos=1, wait_s=0.0)
            return True
        except (RuntimeError, ValueError) as exc:
            log.warning("publishing on %s failed: %s", topic, exc)
            return False

    dispatcher.publish = publish
    stop = stop or threading.Event()
    watcher.start(wait_s=10)
    sent = 0
    try:
        time.sleep(min(1.0, interval_s * 5))     # let the retained births and states arrive first
        if watcher.connected.is_set():
            dispatcher.resend_offers()
        while not stop.is_set():
            if watcher.connected.is_set():
                sent += dispatcher.step()
            if on_step is not None:
                on_step(dispatcher)
            if exit_when_done and dispatcher.done():
                break
            stop.wait(interval_s)
    finally:
        watcher.stop()
    return sent
