"""The dispatcher's rules on its own (no broker): what it offers to whom, how it follows answers and
events, how it counts parts, and what survives a restart. Messages are built the way machines
build them (edge.telemetry.schema); offers are verified with the machines' own CommandGate."""

from __future__ import annotations

import json

import pytest

from edge import config
from edge.errors import UsageError
from edge.region import report
from edge.region.campaign import Dispatcher
from edge.region.designs import register
from edge.region.store import CampaignStore
from edge.telemetry import schema, signing
from edge.telemetry.commands import CommandGate, Replayed
from region_support import HEADBAND, KEY_ID, VISOR, fabedge_out

DAY = 1795300000.0          # 2026-11-21 17:46 UTC


class Clock:
    def __init__(self) -> None:
        self.t = DAY

    def __call__(self) -> float:
        return self.t


def msg(site: str, machine: str, seq: int, body: dict, msg_id: str | None = None, ts: float = DAY) -> bytes:
    env = schema.envelope(site, machine, seq, body, msg_id=msg_id)
    env["ts"] = ts
    return schema.encode(env)


def machine_up(d: Dispatcher, site: str, machine: str, kind: str = "printer", profile: str = "mk3",
               volume: dict | None = None, session: int = 1, state: str = "idle") -> None:
    t = schema.Topics(site, machine)
    vol = volume or {"x": [0, 250], "y": [-4, 210], "z": [0, 210]}
    d.apply(t.status, msg(site, machine, 1, {"status": "online", "session": session}))
    d.apply(t.birth, msg(site, machine, 2, {"kind": kind, "profile": profile, "volume": vol}))
    d.apply(t.state, msg(site, machine, 3, {"state": state}))


@pytest.fixture
def rig(tmp_path):
    key = signing.generate_private_key()
    store = CampaignStore(tmp_path / "c.db")
    clock = Clock()
    d = Dispatcher(store, key, KEY_ID, lease_s=60, clock=clock)
    sent: list[tuple[str, dict]] = []
    d.publish = lambda topic, payload: sent.append((topic, json.loads(payload))) or True
    yield d, store, sent, clock, key
    store.close()


def gate_for(tmp_path, key, site: str, machine: str) -> CommandGate:
    cfg = config.default().replace(machine={"id": machine, "site": site},
                                   trust={"keys": [{"id": KEY_ID, "public_key": signing.public_key_b64(key)}]})
    return CommandGate(cfg, tmp_path / f"{machine}-replay.db")


def test_offers_only_to_idle_online_machines_that_fit_and_the_machine_accepts_them(rig, tmp_path):
    d, store, sent, clock, key = rig
    register(store, "faceshield", 3, [f"printer={HEADBAND}", f"laser={VISOR}"])
    machine_up(d, "lab-a", "p1")
    machine_up(d, "lab-a", "p2", volume={"x": [0, 50], "y": [0, 50], "z": [0, 50]})   # too small for 60 mm
    machine_up(d, "lab-b", "p3", state="running")
    machine_up(d, "lab-b", "l1", kind="laser", profile="co2")
    machine_up(d, "lab-b", "p4")
    d.apply(schema.Topics("lab-b", "p4").status, msg("lab-b", "p4", 4, {"status": "lost", "session": 1}))
    assert d.step() == 2
    targets = sorted(env["aud"] for _, env in sent)
    assert targets == ["lab-a/p1", "lab-b/l1"]
    for topic, env in sent:
        site, machine = env["aud"].split("/")
        assert topic == f"fabedge/v1/{site}/{machine}/cmd/req" and env["op"] == "job.offer"
        cmd = gate_for(tmp_path, key, site, machine).check(json.dumps(env).encode(), False, "idle")
        gcode = cmd.args["gcode"].encode()
        assert gcode == (HEADBAND if machine.startswith("p") else VISOR).read_bytes()
    # busy machines are not offered again; the quota counts what is on its way
    assert d.step() == 0
    assert store.in_flight("faceshield") == 2


def test_follows_events_counts_each_event_id_once_and_reoffers_after_failure(rig):
    d, store, sent, clock, _ = rig
    register(store, "faceshield", 2, [f"printer={HEADBAND}"])
    machine_up(d, "lab-a", "p1")
    machine_up(d, "lab-a", "p2")
    d.step()
    (j1, _), (j2, _) = [(env["args"]["job_id"], env["aud"]) for _, env in sent]
    t1, t2 = schema.Topics("lab-a", "p1"), schema.Topics("lab-a", "p2")
    for seq, kind in enumerate(("job.staged", "job.armed", "job.started", "job.done"), 10):
        d.apply(t1.evt(kind), msg("lab-a", "p1", seq, {"type": kind, "job_id": j1}))
    assert store.job(j1).status == "done"
    outcome = {"type": "part.outcome", "job_id": j1, "design": "faceshield", "parts": 1, "outcome": "good"}
    for _ in range(3):                                  # QoS 1 duplicates and a replay: same event id
        d.apply(t1.evt("part.outcome"), msg("lab-a", "p1", 20, outcome, msg_id=f"part-lab-a-p1-{j1}"))
    assert store.good_parts("faceshield") == 1
    # p2's print fails: its part goes back to the pool and is offered again once a machine is idle
    d.apply(t2.evt("job.started"), msg("lab-a", "p2", 30, {"type": "job.started", "job_id": j2}))
    d.apply(t2.evt("job.failed"), msg("lab-a", "p2", 31, {"type": "job.failed", "job_id": j2, "reason": "runaway"}))
    assert store.job(j2).status == "failed" and store.in_flight("faceshield") == 0
    d.apply(t1.state, msg("lab-a", "p1", 40, {"state": "idle"}))
    sent.clear()
    assert d.step() == 1 and sent[0][1]["aud"] == "lab-a/p1"
    assert sent[0][1]["args"]["job_id"] not in (j1, j2)            # a new job id: nothing runs twice
    data = report.summary(store)
    assert data["designs"]["faceshield"]["good"] == 1 and data["events"] == 1
    assert data["rows"] == [{"design": "faceshield", "site": "lab-a", "day": "2026-11-21", "good": 1, "rejected": 0}]


def test_refusals_leases_and_stale_wills(rig):
    d, store, sent, clock, _ = rig
    register(store, "faceshield", 5, [f"printer={HEADBAND}"])
    machine_up(d, "lab-a", "p1", session=4)
    d.step()
    job = sent[0][1]["args"]["job_id"]
    cmd_id = sent[0][1]["id"]
    t = schema.Topics("lab-a", "p1")
    d.apply(t.cmd_res, msg("lab-a", "p1", 9, {"cmd_id": cmd_id, "status": "rejected", "code": "checks_failed",
                                              "reason": "line 6: too hot"}))
    assert store.job(job).status == "rejected"
    assert store.unfit("faceshield") == {("lab-a", "p1")}
    sent.clear()
    assert d.step() == 0                                # never offered this design again
    # a lease that runs out before START: cancelled on the machine, parts offered again elsewhere
    machine_up(d, "lab-b", "p2")
    d.step()
    job2 = sent[0][1]["args"]["job_id"]
    d.apply(schema.Topics("lab-b", "p2").evt("job.armed"), msg("lab-b", "p2", 5, {"type": "job.armed", "job_id": job2}))
    clock.t += 61
    sent.clear()
    assert d.expire() == 1
    assert [(e["op"], e["args"]) for _, e in sent] == [("job.cancel", {"job_id": job2})]
    assert store.job(job2).status == "expired" and store.in_flight("faceshield") == 0
    # a stale will (older session) does not take p1 offline; a newer session's status does
    d.apply(t.status, msg("lab-a", "p1", 1, {"status": "lost", "session": 3}))
    assert store.machine("lab-a", "p1").status == "online"
    d.apply(t.status, msg("lab-a", "p1", 1, {"status": "offline", "session": 5}))
    assert store.machine("lab-a", "p1").status == "offline"


def test_state_survives_a_restart_and_the_cli_reports_it(rig, tmp_path):
    d, store, sent, clock, key = rig
    register(store, "faceshield", 4, [f"printer={HEADBAND}"], parts_per_job=2)
    machine_up(d, "lab-a", "p1")
    d.step()
    job = sent[0][1]["args"]["job_id"]
    assert sent[0][1]["args"]["parts"] == 2
    store.close()
    again = CampaignStore(tmp_path / "c.db")                 # as after kill -9: only the database is left
    d2 = Dispatcher(again, key, KEY_ID, lease_s=60, clock=clock)
    resent: list[bytes] = []
    d2.publish = lambda topic, payload: resent.append(payload) or True
    assert again.job(job).status == "offered" and d2.step() == 0     # still on its way: not offered twice
    # the offer is published again byte for byte: a machine that had it runs nothing twice
    assert d2.resend_offers() == 1 and json.loads(resent[0]) == sent[0][1]
    gate = gate_for(tmp_path, key, "lab-a", "p1")
    gate.check(json.dumps(sent[0][1]).encode(), False, "idle")
    with pytest.raises(Replayed):
        gate.check(resent[0], False, "staged")
    t = schema.Topics("lab-a", "p1")
    d2.apply(t.evt("part.outcome"), msg("lab-a", "p1", 7, {"type": "part.outcome", "job_id": job, "design": "faceshield",
                                                           "parts": 2, "outcome": "rejected"}, msg_id="e1"))
    again.close()
    out = fabedge_out("region", "report", "--db", str(tmp_path / "c.db"))
    assert out.returncode == 0, out.stderr
    assert "faceshield" in out.stdout and "lab-a" in out.stdout and "0         2" in out.stdout
    status = fabedge_out("region", "campaign", "status", "--db", str(tmp_path / "c.db"))
    assert "0 good of 4" in status.stdout


def test_bad_input_is_refused_with_file_and_reason(tmp_path):
    store = CampaignStore(tmp_path / "c.db")
    with pytest.raises(UsageError, match="neither printer, laser nor profile"):
        register(store, "x", 1, [f"robot={HEADBAND}"])
    with pytest.raises(UsageError, match="missing.gcode: cannot read"):
        register(store, "x", 1, [f"printer={tmp_path / 'missing.gcode'}"])
    with pytest.raises(UsageError, match="--quantity 0"):
        register(store, "x", 0, [f"printer={HEADBAND}"])
    store.close()
    out = fabedge_out("region", "report", "--db", str(tmp_path / "nope.db"))
    assert out.returncode != 0 and "nope.db: no such campaign database" in out.stderr
