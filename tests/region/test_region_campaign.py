"""The region's campaign, end to end and at full size: 70 printers and 10 lasers on 15 sites (full
agents on virtual firmwares, mock panels pressed by simulated operators) make a design's quota
through one mosquitto, with the dispatcher killed (-9) and restarted once and the broker
restarted once on the way. The report must equal the part-outcome events exactly; no part
counted twice, no job run twice, no machine started without its START press."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter, defaultdict

import pytest

from region_support import HEADBAND, KEY_ID, VISOR, RegionEar, fabedge, fabedge_out, region_key, wait_for

PRINTERS, LASERS, SITES = 70, 10, 15
QUOTA = 120                       # good parts: one and a half jobs per machine on average
TIME_SCALE = 20.0


def good_in_db(db) -> int:
    from edge.region.store import CampaignStore
    store = CampaignStore(db)
    try:
        return store.good_parts("faceshield")
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_region_campaign_80_machines_15_sites_survives_dispatcher_kill_and_broker_restart(broker, tmp_path):
    _key, priv, pub = region_key(tmp_path / "keys")
    db = tmp_path / "campaign.db"
    add = fabedge_out("region", "campaign", "add", "--db", str(db), "--design", "faceshield", "--quantity",
                      str(QUOTA), "--gcode", f"printer={HEADBAND}", "--gcode", f"laser={VISOR}")
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["files"]["kind:laser"]["bbox"]["x"] == [0.0, 40.0]

    ear = RegionEar(broker.url).start()
    summary = tmp_path / "fleet.json"
    fleet = fabedge("fleet", "simulate", "--broker", broker.url, "--printers", str(PRINTERS), "--lasers",
                    str(LASERS), "--sites", str(SITES), "--time-scale", str(TIME_SCALE), "--trust-key", str(pub),
                    "--workdir", str(tmp_path / "fleet"), "--summary", str(summary),
                    "--start-delay", "5,30", "--clear-delay", "5,30", "--reject-share", "0.08",
                    "--fail-share", "0.05")
    run_args = ("region", "campaign", "run", "--db", str(db), "--broker", broker.url, "--key", str(priv),
                "--key-id", KEY_ID, "--lease-s", "90", "--exit-when-done")
    dispatcher = fabedge(*run_args)
    try:
        # the dispatcher dies (SIGKILL, no goodbye) a third of the way in, and comes back
        wait_for(lambda: good_in_db(db) >= QUOTA // 3, 200, "a third of the quota")
        assert dispatcher.poll() is None
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(10)
        time.sleep(2.0)
        dispatcher = fabedge(*run_args)
        # the broker restarts two thirds of the way in (persistence on: sessions and queues survive)
        wait_for(lambda: good_in_db(db) >= 2 * QUOTA // 3, 200, "two thirds of the quota")
        assert good_in_db(db) < QUOTA                                 # still mid-campaign
        broker.stop()
        time.sleep(2.0)
        broker.start()
        assert dispatcher.wait(360) == 0, "the dispatcher did not finish the campaign"
    finally:
        for p in (dispatcher, fleet):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        fleet.wait(120)
    time.sleep(1.0)
    ear.stop()

    rep = fabedge_out("region", "report", "--db", str(db), "--json")
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    text = fabedge_out("region", "report", "--db", str(db)).stdout
    assert "faceshield" in text and "rate/day" in text

    # the report equals the part-outcome events the region received, exactly
    outcomes = ear.of("part.outcome")
    good_events = sum(m["parts"] for m in outcomes if m["outcome"] == "good")
    bad_events = sum(m["parts"] for m in outcomes if m["outcome"] == "rejected")
    totals = report["designs"]["faceshield"]
    assert totals["good"] == good_events >= QUOTA
    assert totals["rejected"] == bad_events
    assert report["events"] == len(outcomes)
    per_site = defaultdict(int)
    for m in outcomes:
        if m["outcome"] == "good":
            per_site[m["site"]] += m["parts"]
    assert {r["site"]: r["good"] for r in report["rows"]} == dict(per_site)
    assert len(per_site) == SITES                                    # every site made parts

    # no part counted twice: one outcome per job, and the machines' own counters agree
    assert len({m["job_id"] for m in outcomes}) == len(outcomes)
    fleet_summary = json.loads(summary.read_text())
    machines = fleet_summary["machines"]
    assert len(machines) == PRINTERS + LASERS
    assert sum(m["counters"]["parts_good"] for m in machines.values()) == good_events

    # no job run twice; no machine started without its START press
    started = ear.of("job.started")
    assert len({(m["site"], m["machine"], m["job_id"]) for m in started}) == len(started)
    starts_per_machine = Counter(f"{m['site']}/{m['machine']}" for m in started)
    presses = fleet_summary["presses"]
    for name, info in machines.items():
        n = starts_per_machine.get(name, 0)
        armed_presses = sorted(t for t, button, state in presses[name] if button == "start" and state == "armed")
        assert n <= len(armed_presses), f"{name}: {n} jobs started but START was pressed {len(armed_presses)} times"
        for m, press_t in zip(sorted((m for m in started if f"{m['site']}/{m['machine']}" == name),
                                     key=lambda m: m["ts"]), armed_presses):
            assert press_t <= m["ts"] + 0.05, f"{name}: job {m['job_id']} started before its START press"
        if info["kind"] == "printer":
            # the firmware's own log: it homed (first line of every job) no more often than jobs were
            # started, and at least once per good job (an abort may stop a job before its homing ends)
            good_jobs = sum(1 for m in outcomes if f"{m['site']}/{m['machine']}" == name and m["outcome"] == "good")
            assert good_jobs <= info["executed_g28"] <= n, \
                f"{name}: firmware homed {info['executed_g28']} times, {n} jobs started, {good_jobs} good"
    assert sum(starts_per_machine.values()) >= len(outcomes) - fleet_summary["aborted"]
