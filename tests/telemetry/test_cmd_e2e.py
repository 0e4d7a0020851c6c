"""End to end over a real mosquitto loaded with config/mosquitto/fabedge.acl: the region
(paho, user `region`) publishes good and bad commands on cmd/req; the machine (the real
`Telemetry` client, user `prusa-01`) passes each through the CommandGate and answers on
cmd/res. Every bad command is rejected with its reason and changes nothing; the good offer
is staged once; its replay is answered with the earlier result."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import pytest

from cmd_mqtt import Peer, secured_broker
from cmd_support import AUD, GOOD_GCODE, HOT_GCODE, Region, machine_config, raw
from edge.telemetry.commands import CommandGate, CommandRejected, response
from edge.telemetry.joboffer import fetch_job
from edge.telemetry.service import Telemetry

USERS = {"region": "r-secret", "prusa-01": "m-secret"}
TOPIC = f"fabedge/v1/{AUD}/cmd/req"
RES = f"fabedge/v1/{AUD}/cmd/res"


class MiniAgent:
    """What the agent does with a command, reduced to the command path: check, answer, act."""

    def __init__(self, cfg, tmp: Path) -> None:
        self.cfg, self.jobs, self.state = cfg, tmp / "jobs", "idle"
        self.jobs.mkdir()
        self.inbox: queue.Queue = queue.Queue(maxsize=100)
        self.gate = CommandGate(cfg, tmp / "commands.db")
        self.tele = Telemetry(cfg, tmp / "spool.db", on_command=lambda p, r: self.inbox.put((p, r)))
        self.ran: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.tele.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                payload, retained = self.inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                cmd = self.gate.check(payload, retained, self.state)
            except CommandRejected as exc:
                self.tele.command_result(response(exc.cmd_id, "received"))
                self.tele.command_result(exc.response())
                continue
            for status in ("received", "accepted", "running"):
                self.tele.command_result(response(cmd.id, status, op=cmd.op))
            self.ran.append(cmd.id)
            try:
                staged = fetch_job(cmd.args, self.jobs, self.cfg, cmd_id=cmd.id)
            except CommandRejected as exc:
                final = exc.response()
            except Exception as exc:     # a bug below: answer `failed` (the test then shows why)
                final = response(cmd.id, "failed", reason=f"{type(exc).__name__}: {exc}")
            else:
                self.state = "staged"
                final = response(cmd.id, "done", job_id=staged.job_id, sha256=staged.sha256)
            self.gate.record(cmd.id, final)
            self.tele.command_result(final)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)   # a job analysis may be compiling numba kernels on a cold cache
        self.tele.stop()
        self.gate.close()


def test_commands_end_to_end_through_the_acl_broker(tmp_path):
    broker = secured_broker(tmp_path / "mq", USERS)
    (tmp_path / "pw").write_text(USERS["prusa-01"])
    region = Region()
    cfg = machine_config(region, tmp_path / "state",
                         broker={"url": broker.url, "password_file": str(tmp_path / "pw")})
    boss = Peer(broker, "region", USERS["region"]).ok()
    boss.subscribe(RES)
    now = time.time()
    good = {"job_id": "job-e2e", "design": "bracket", "parts": 2, "gcode": GOOD_GCODE.decode()}
    hot = {"job_id": "job-hot", "design": "bracket", "parts": 2, "gcode": HOT_GCODE.decode()}
    # a valid command left retained on the broker before the machine connects
    assert not boss.publish(TOPIC, raw(region.envelope("job.offer", good, cmd_id="e-retained", now=now)),
                            retain=True).is_failure
    agent = MiniAgent(cfg, tmp_path)
    agent.start()
    try:
        deadline = time.monotonic() + 10
        while not agent.tele.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert agent.tele.connected
        tampered = region.envelope("job.offer", good, cmd_id="e-badsig", now=now)
        tampered["args"] = {**good, "parts": 200}
        wrong_types = region.envelope("job.pause", cmd_id="e-types", now=now)
        wrong_types["iat"] = "yesterday"
        sends = [
            ("e-badsig", raw(tampered)),
            ("e-unknown", raw(region.envelope("job.offer", good, key="someone", cmd_id="e-unknown", now=now))),
            ("e-role", raw(region.envelope("job.offer", good, key="region-tele", cmd_id="e-role", now=now))),
            ("e-aud", raw(region.envelope("job.offer", good, aud="fablab-north/prusa-02", cmd_id="e-aud", now=now))),
            ("e-expired", raw(region.envelope("job.offer", good, cmd_id="e-expired", now=now - 1000))),
            ("e-types", raw(wrong_types)),
            (None, b"{this is not json"),
            (None, raw(region.envelope("job.offer", {**good, "gcode": "G1 X1\n" * 60000}, now=now))),
            ("e-hot", raw(region.envelope("job.offer", hot, cmd_id="e-hot", now=now))),
            ("e-offer", raw(region.envelope("job.offer", good, cmd_id="e-offer", now=now))),
        ]
        for _, payload in sends:
            assert not boss.publish(TOPIC, payload).is_failure
        answers = collect(boss, finals=len(sends) + 1)           # + the retained one
        replay = raw(region.envelope("job.offer", good, cmd_id="e-offer", now=now))   # same id, fresh bytes
        boss.publish(TOPIC, replay)
        answers += collect(boss, finals=1)
    finally:
        agent.stop()
        boss.close()
        broker.close()

    final = {}
    for a in answers:
        if a["status"] in ("rejected", "done", "failed"):
            final.setdefault(a["cmd_id"], []).append(a)
    codes = {cid: [a.get("code", a["status"]) for a in lst] for cid, lst in final.items()}
    assert codes["e-retained"] == ["retained"]
    assert codes["e-badsig"] == ["bad_signature"]
    assert codes["e-unknown"] == ["unknown_key"]
    assert codes["e-role"] == ["not_allowed"]
    assert codes["e-aud"] == ["wrong_audience"]
    assert codes["e-expired"] == ["expired"]
    assert codes["e-types"] == ["malformed"]
    assert sorted(codes[None]) == ["malformed", "too_large"]
    assert codes["e-hot"] == ["checks_failed"]
    hot_answer = final["e-hot"][0]
    assert hot_answer["errors"][0]["line"] == 6 and "400" in hot_answer["reason"]
    assert codes["e-offer"] == ["done", "replayed"]
    assert final["e-offer"][1]["earlier"]["status"] == "done"
    # every command got "received" first; only the two authenticated offers ever ran
    for cid in final:
        assert [a["status"] for a in answers if a["cmd_id"] == cid][0] == "received"
    assert agent.ran == ["e-hot", "e-offer"]
    # nothing changed but the one good job
    assert sorted(p.name for p in agent.jobs.iterdir() if p.is_file()) == ["job-e2e.gcode"]
    assert list((agent.jobs / ".incoming").iterdir()) == []


def collect(peer: Peer, finals: int, timeout: float = 120.0) -> list[dict]:
    """Answers until `finals` final ones arrived (generous bound: a cold numba cache compiles on first analysis)."""
    out, done = [], 0
    deadline = time.monotonic() + timeout
    while done < finals:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"only {done} of {finals} final answers on cmd/res: {out}")
        try:
            topic, payload, _ = peer.messages.get(timeout=left)
        except queue.Empty:
            continue
        msg = json.loads(payload)
        out.append(msg)
        done += msg["status"] in ("rejected", "done", "failed")
    return out
