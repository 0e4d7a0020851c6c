"""FleetView bookkeeping and `fabedge fleet watch` against a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import make_cfg
from edge.fleet import FleetView
from edge.telemetry import schema
from edge.telemetry.client import Endpoint, Watcher
from edge.telemetry.service import Telemetry

T = schema.Topics("lab-a", "mk3-1")
NOW = 1_800_000_000.0


def _msg(seq: int, **payload) -> bytes:
    return schema.encode(schema.envelope("lab-a", "mk3-1", seq, payload, ts=payload.pop("ts", NOW)))


def _outcome(event_id: str, design: str = "bracket", outcome: str = "good", parts: int = 1, ts: float = NOW,
             site: str = "lab-a") -> bytes:
    return schema.encode(schema.envelope("lab-a", "mk3-1", 1, {
        "type": "part.outcome", "job_id": "j1", "design": design, "parts": parts, "outcome": outcome,
        "site": site}, msg_id=event_id, ts=ts))


def test_parts_are_counted_once_per_event_id_per_design_and_site():
    view = FleetView(now=lambda: NOW)
    topic = T.evt("part.outcome")
    assert view.apply(topic, _outcome("e1"))
    assert not view.apply(topic, _outcome("e1"))                 # QoS 1 duplicate
    assert not view.apply(topic, schema.mark_replayed(_outcome("e1")))   # replay after an outage
    view.apply(topic, _outcome("e2", parts=4))
    view.apply(topic, _outcome("e3", outcome="rejected"))
    view.apply(topic, _outcome("e4", design="hinge"))
    view.apply(topic, _outcome("old", ts=NOW - 3 * 86400))       # another day: not today's count
    assert view.parts_today() == {("lab-a", "bracket"): {"good": 5, "rejected": 1},
                                  ("lab-a", "hinge"): {"good": 1, "rejected": 0}}
    row = view.table()[0]
    assert row["parts_today"] == {"bracket": {"good": 5, "rejected": 1}, "hinge": {"good": 1, "rejected": 0}}
    assert "lab-a/bracket 5 good, 1 rejected" in view.render()


def test_status_sessions_state_and_bad_input():
    view = FleetView(now=lambda: NOW + 30)
    view.apply(T.status, _msg(1, status="lost", session=4))      # retained will of the last connection
    view.apply(T.status, _msg(2, status="online", session=5))
    assert not view.apply(T.status, _msg(3, status="lost", session=4))   # stale will: ignored
    view.apply(T.state, _msg(4, state="running", job={"id": "j7", "design": "bracket", "progress": 25.0,
                                                      "eta_s": 3723, "layer": 3}))
    row = view.table()[0]
    assert (row["status"], row["session"], row["state"], row["job"], row["design"]) == \
        ("online", 5, "running", "j7", "bracket")
    assert row["progress"] == 25.0 and row["eta_s"] == 3723 and row["last_seen"] == NOW
    text = view.render()
    assert "online#5" in text and "25.0%" in text and "1:02:03" in text and "30s ago" in text
    view.apply(T.status, _msg(5, status="offline", session=5))
    assert view.table()[0]["status"] == "offline"
    for topic, junk in [(T.status, b"\xff"), (T.status, b'{"status":"gone","session":9}'),
                        (T.status, b'{"status":"lost","session":"9"}'), (T.state, b"[1]"),
                        (T.evt("part.outcome"), b'{"id":"x","ts":1,"outcome":"maybe"}'),
                        (T.evt("part.outcome"), b'{"id":"x","ts":1,"outcome":"good","parts":-2}'),
                        ("fabedge/v1/lab-a", b"{}"), ("other/topic", b"{}"), (T.cmd_req, b"{}")]:
        assert not view.apply(topic, junk)
    assert view.table()[0]["status"] == "offline" and view.ignored_stale == 1 and view.ignored_bad >= 6
    json.loads(view.to_json())


def test_fleet_watch_cli_shows_machines_from_a_live_broker(broker, tmp_path):
    t = Telemetry(make_cfg(broker.url), tmp_path / "spool.db", on_command=lambda p, r: None)
    t.start()
    t.state({"state": "running", "job": {"id": "j9", "design": "bracket", "progress": 50.0, "eta_s": 60}})
    for i in range(3):
        t.event("part.outcome", {"job_id": "j8", "design": "bracket", "parts": 2, "outcome": "good",
                                 "site": "lab-a", "machine": "mk3-1"})
    deadline = time.monotonic() + 10
    while (len(t.spool) or not t.connected) and time.monotonic() < deadline:
        time.sleep(0.05)
    # the region's watcher had a persistent session before (e.g. yesterday's run): events published
    # while it is away are kept for it; the three above came before it existed and are not counted
    first = Watcher(Endpoint.from_url(broker.url), ["fabedge/v1/+/+/#"], lambda *a: None,
                    client_id="region-desk", persistent=True).start()
    first.stop()
    for i in range(2):
        t.event("part.outcome", {"job_id": "j9", "design": "bracket", "parts": 1, "outcome": "good",
                                 "site": "lab-a", "machine": "mk3-1"})
    while len(t.spool) and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    cli = subprocess.Popen([sys.executable, "-m", "edge", "fleet", "watch", "--broker", broker.url, "--once",
                            "--seconds", "2", "--json", "--session", "region-desk"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    data = json.loads(out)
    (m,) = data["machines"]
    assert (m["machine"], m["status"], m["state"], m["job"], m["progress"], m["eta_s"]) == \
        ("mk3-1", "online", "running", "j9", 50.0, 60.0)
    assert data["parts_today"] == [{"site": "lab-a", "design": "bracket", "good": 2, "rejected": 0}]
    table = subprocess.run([sys.executable, "-m", "edge", "fleet", "watch", "--broker", broker.url, "--once",
                            "--seconds", "1"], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "mk3-1" in table.stdout and "running" in table.stdout
    bad = subprocess.run([sys.executable, "-m", "edge", "fleet", "watch", "--broker", "http://x", "--once"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "mqtt://" in bad.stderr
    t.stop()
