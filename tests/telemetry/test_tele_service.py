"""Telemetry against a real mosquitto: retained topics, events, tele batches, outages, bad input."""

from __future__ import annotations

import json
import threading
import time

from conftest import Recorder, make_cfg
from edge.telemetry.service import Telemetry

from edge.telemetry.client import Endpoint, Watcher


def _tele(cfg, tmp_path, **kw):
    commands = []
    links = []
    t = Telemetry(cfg, tmp_path / "spool.db", on_command=lambda p, r: commands.append((p, r)),
                  on_link=links.append, backoff_max_s=1.0, **kw)
    return t, commands, links


def test_birth_state_status_events_and_clean_stop(broker, recorder, tmp_path):
    t, _cmds, links = _tele(make_cfg(broker.url), tmp_path)
    t.start()
    t.birth({"profile": "prusa-mk3s", "capabilities": {"idle": ["job.offer"]}})
    t.state({"state": "idle", "progress": 0.0})
    ids = [t.event("job.started", {"job_id": f"j{i}"}) for i in range(5)]
    assert recorder.wait(lambda: len(recorder.on("/evt/job.started")) == 5)
    assert t.connected and links == [True]
    evs = recorder.on("/evt/job.started")
    assert [e["id"] for e in evs] == ids and [e["job_id"] for e in evs] == [f"j{i}" for i in range(5)]
    assert all(e["type"] == "job.started" and e["v"] == 1 and e["machine"] == "mk3-1" and e["site"] == "lab-a"
               for e in evs)
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert recorder.wait(lambda: recorder.on("/state") and recorder.on("/birth"))
    assert recorder.on("/state")[-1]["state"] == "idle"
    assert recorder.on("/birth")[-1]["profile"] == "prusa-mk3s"
    online = recorder.on("/status")[-1]
    assert online["status"] == "online" and online["session"] == t.session == 1
    t.state({"state": "idle", "progress": 0.0})          # unchanged: not published again
    t.state({"state": "armed", "progress": 0.0})
    assert recorder.wait(lambda: recorder.on("/state")[-1]["state"] == "armed")
    assert [s["state"] for s in recorder.on("/state")] == ["idle", "armed"]
    t.stop()
    assert recorder.wait(lambda: recorder.on("/status")[-1]["status"] == "offline")
    assert recorder.on("/status")[-1]["session"] == 1
    # a late subscriber sees the retained topics
    late = Recorder(broker.url)
    try:
        assert late.wait(lambda: len(late.messages) >= 3)
        kinds = {t.rsplit("/", 1)[1]: r for t, _p, r in late.messages}
        assert kinds == {"status": True, "birth": True, "state": True}
    finally:
        late.stop()


def test_events_spooled_while_broker_down_arrive_in_order_marked_replayed(broker, tmp_path):
    # a persistent session, saved by the broker before the outage, so nothing published
    # before the recorder itself reconnects is lost to it
    recorder = Recorder(broker.url, client_id="recorder-outage", persistent=True)
    t, _cmds, links = _tele(make_cfg(broker.url), tmp_path)
    t.start()
    assert recorder.wait(lambda: t.connected)
    t.event("job.armed", {"n": 0})
    assert recorder.wait(lambda: len(recorder.on("/evt/job.armed")) == 1)
    broker.wait_saved()   # the broker's autosave has written the recorder's session
    broker.kill()
    assert recorder.wait(lambda: not t.connected)
    ids = [t.event("job.armed", {"n": i}) for i in range(1, 201)]
    assert len(t.spool) == 200
    for _ in range(3):
        t.sample({"nozzle_c": 210.0})
        time.sleep(0.25)
    broker.start()
    assert recorder.wait(lambda: len({e["id"] for e in recorder.on("/evt/job.armed")}) == 201, 60)
    evs = recorder.on("/evt/job.armed")
    first = {}
    for e in evs:
        first.setdefault(e["id"], e)
    assert [first[i]["n"] for i in ids] == list(range(1, 201))
    assert all(first[i]["replayed"] for i in ids) and evs[0]["replayed"] is False
    assert recorder.wait(lambda: any(m.get("replayed") for m in recorder.on("/tele")))  # spooled samples
    assert recorder.wait(lambda: len(t.spool) == 0)
    stats = t.stats()
    assert stats["spooled"] == 0 and stats["delivered"] >= 201 and stats["session"] >= 2
    assert links[:3] == [True, False, True]
    last = recorder.on("/status")[-1]
    assert last["status"] == "online" and last["session"] == t.session >= 2
    t.stop()
    recorder.stop()


def test_tele_batches_and_interval_change(broker, recorder, tmp_path):
    t, _c, _l = _tele(make_cfg(broker.url, telemetry_interval_s=0.3), tmp_path)
    t.start()
    assert recorder.wait(lambda: t.connected)
    for i in range(10):
        t.sample({"nozzle_c": 200 + i})
    assert recorder.wait(lambda: recorder.on("/tele"))
    batch = recorder.on("/tele")[0]
    assert [s["nozzle_c"] for s in batch["samples"]] == list(range(200, 210)) and batch["interval_s"] == 0.3
    t.set_telemetry_interval(2.0)
    try:
        t.set_telemetry_interval(0)
    except ValueError as exc:
        assert "between" in str(exc)
    else:
        raise AssertionError("interval 0 must be refused")
    assert t.telemetry_interval == 2.0
    n = len(recorder.on("/tele"))
    t.sample({"nozzle_c": 1})
    time.sleep(0.8)
    assert len(recorder.on("/tele")) == n           # the slower rate holds the batch back
    assert recorder.wait(lambda: len(recorder.on("/tele")) == n + 1, 3)
    t.stop()


def test_command_payloads_are_handed_on_raw_and_nothing_crashes_the_client(broker, tmp_path):
    t, cmds, _l = _tele(make_cfg(broker.url), tmp_path)
    t.start()
    poke = Watcher(Endpoint.from_url(broker.url), [], lambda *a: None).start()
    try:
        assert _until(lambda: t.connected)
        junk = [b"", b"\xff\xfe\x00", b"{not json", b'{"op": 1}', b"x" * 300_000, b"[" * 50_000]
        for j in junk:
            poke.publish("fabedge/v1/lab-a/mk3-1/cmd/req", j, qos=1)
        poke.publish("fabedge/v1/lab-a/mk3-1/cmd/req", b'{"retained": true}', qos=1, retain=True)
        # garbage on our own status topic (e.g. a foreign publisher) must not crash us either
        for j in (b"\x00", b'{"status": "lost", "session": "x"}', b"[]"):
            poke.publish("fabedge/v1/lab-a/mk3-1/status", j, qos=1)
        assert _until(lambda: len(cmds) == len(junk) + 1), [(p[:20], r) for p, r in cmds]
        assert [p for p, _r in cmds[:len(junk)]] == junk
        assert cmds[-1] == (b'{"retained": true}', False)  # delivered live to the subscriber: not retained
        t.event("error", {"message": "still alive"})
        assert _until(lambda: len(t.spool) == 0) and t.connected
    finally:
        poke.publish("fabedge/v1/lab-a/mk3-1/cmd/req", b"", qos=1, retain=True)   # clear the retained command
        poke.stop()
        t.stop()
    # on the next connection the retained command arrives flagged as retained
    t2, cmds2, _l = _tele(make_cfg(broker.url), tmp_path / "2")
    poke = Watcher(Endpoint.from_url(broker.url), [], lambda *a: None).start()
    poke.publish("fabedge/v1/lab-a/mk3-1/cmd/req", b'{"stale": 1}', qos=1, retain=True)
    t2.start()
    try:
        assert _until(lambda: cmds2)
        assert cmds2[0] == (b'{"stale": 1}', True)
    finally:
        poke.publish("fabedge/v1/lab-a/mk3-1/cmd/req", b"", qos=1, retain=True)
        poke.stop()
        t2.stop()


def test_protocol_311_and_command_results(broker, recorder, tmp_path):
    t, _c, _l = _tele(make_cfg(broker.url, protocol="3.1.1"), tmp_path)
    t.start()
    t.command_result({"cmd_id": "c1", "result": "accepted"})
    assert recorder.wait(lambda: recorder.on("/cmd/res"))
    assert t.link.protocol_in_use == "3.1.1"
    res = recorder.on("/cmd/res")[0]
    assert res["cmd_id"] == "c1" and res["result"] == "accepted" and res["seq"] >= 1
    t.stop()


def test_starts_with_broker_down_and_unknown_event_type_is_refused(tmp_path):
    from edge.telemetry.localbroker import free_port
    t, _c, links = _tele(make_cfg(f"mqtt://127.0.0.1:{free_port()}"), tmp_path)
    started = time.monotonic()
    t.start()
    eid = t.event("job.done", {"job_id": "j"})
    assert time.monotonic() - started < 1.0 and len(t.spool) == 1 and eid
    try:
        t.event("job.progress", {})
    except ValueError as exc:
        assert "unknown event type" in str(exc)
    else:
        raise AssertionError("job.progress is not an event")
    time.sleep(0.5)
    assert not t.connected and links == []
    t.stop()
    from edge.telemetry.spool import Spool
    s = Spool(tmp_path / "spool.db")
    assert len(s) == 1                          # kept for the next start
    s.close()


def _until(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_state_heartbeat_repeats_the_latest_state(broker, recorder, tmp_path):
    t, _c, _l = _tele(make_cfg(broker.url, heartbeat_s=1), tmp_path)
    t.start()
    t.state({"state": "printing", "progress": 0.5})
    assert recorder.wait(lambda: len(recorder.on("/state")) >= 3, 5)
    states = recorder.on("/state")
    assert all(s["state"] == "printing" for s in states)
    assert len({s["seq"] for s in states}) == len(states)        # each heartbeat is a new message
    t.stop()


def test_each_state_change_is_published_in_order_even_within_one_tick(broker, recorder, tmp_path):
    t, _c, _l = _tele(make_cfg(broker.url), tmp_path)
    t.start()
    assert recorder.wait(lambda: t.connected)
    t.state({"state": "idle"})
    assert recorder.wait(lambda: recorder.on("/state"))
    gate, tick = threading.Event(), t.tick
    t.tick = lambda link: (gate.wait(10), tick(link))      # hold the link thread before its next tick
    time.sleep(0.3)
    t.state({"state": "staged", "progress": 0.0})
    t.state({"state": "staged", "progress": 0.1})     # same machine state: only the latest goes out
    t.state({"state": "armed", "progress": 0.0})
    t.state({"state": "running", "progress": 0.0})
    gate.set()
    assert recorder.wait(lambda: recorder.on("/state")[-1]["state"] == "running")
    seen = [(s["state"], s.get("progress")) for s in recorder.on("/state")]
    assert seen == [("idle", None), ("staged", 0.1), ("armed", 0.0), ("running", 0.0)]
    t.stop()


def test_bad_agent_payloads_fail_in_the_callers_thread_and_nan_is_sent_as_null(broker, recorder, tmp_path):
    import math

    import pytest
    t, _c, _l = _tele(make_cfg(broker.url), tmp_path)
    t.start()
    with pytest.raises(ValueError, match="reserved"):
        t.state({"state": "idle", "seq": 5})
    with pytest.raises(ValueError, match="reserved"):
        t.birth({"id": "x"})
    with pytest.raises(ValueError, match="dict"):
        t.sample([1, 2])
    with pytest.raises(ValueError, match="reserved"):
        t.event("error", {"ts": 1})
    t.state({"state": "running", "temps": {"nozzle": math.nan}})
    t.event("machine.fault", {"code": "thermal", "value": math.inf})
    assert recorder.wait(lambda: recorder.on("/state") and recorder.on("/evt/machine.fault"))
    assert recorder.on("/state")[-1]["temps"] == {"nozzle": None}
    assert recorder.on("/evt/machine.fault")[-1]["value"] is None
    t.stop()
