"""Light machines (`fabedge fleet simulate --light N`): the real Telemetry client and CommandGate per
machine, an instant machine, the dispatcher offering signed jobs. A small N for ten simulated
minutes: every event a machine made reaches the region (none lost, none invented), every job
started on a START press, and the latency and CPU are printed (bench/fleet.py runs 2,000)."""

from __future__ import annotations

import json
import threading
import time

from edge.region.campaign import Dispatcher, run_dispatcher
from edge.region.designs import register
from edge.region.store import CampaignStore
from edge.telemetry.endpoint import Endpoint
from region_support import HEADBAND, KEY_ID, RegionEar, fabedge, region_key

LIGHT, SITES, TIME_SCALE, SIM_MINUTES = 40, 4, 60.0, 10


def test_light_fleet_ten_simulated_minutes_loses_no_event(broker, tmp_path):
    key, _priv, pub = region_key(tmp_path / "keys")
    store = CampaignStore(tmp_path / "campaign.db")
    register(store, "faceshield", 100000, [f"printer={HEADBAND}"])
    dispatcher = Dispatcher(store, key, KEY_ID, lease_s=60)
    stop = threading.Event()
    loop = threading.Thread(target=run_dispatcher, args=(dispatcher, Endpoint.from_url(broker.url)),
                            kwargs={"stop": stop}, daemon=True)
    ear = RegionEar(broker.url).start()
    loop.start()
    seconds = SIM_MINUTES * 60 / TIME_SCALE
    summary = tmp_path / "fleet.json"
    fleet = fabedge("fleet", "simulate", "--broker", broker.url, "--light", str(LIGHT), "--sites", str(SITES),
                    "--time-scale", str(TIME_SCALE), "--trust-key", str(pub), "--workdir", str(tmp_path / "fleet"),
                    "--seconds", str(seconds), "--summary", str(summary))
    try:
        assert fleet.wait(seconds + 90) == 0
    finally:
        if fleet.poll() is None:
            fleet.kill()
        time.sleep(1.0)
        stop.set()
        loop.join(10)
        ear.stop()
    light = json.loads(summary.read_text())["light"]
    assert light["machines"] == LIGHT
    with ear.lock:
        mine = {i: (t, m, got) for i, (t, m, got) in ear.events.items() if "/light-" in t}
    assert len(mine) == light["events"] > LIGHT * 5                 # every event made reached the region
    started = [m for t, m, _ in mine.values() if t.endswith("/evt/job.started")]
    assert len(started) == light["started_by_press"] <= light["start_presses_armed"]
    assert len({m["job_id"] for m in started}) == len(started)       # no job started twice
    outcomes = [m for t, m, _ in mine.values() if t.endswith("/evt/part.outcome")]
    assert store.outcome_events() == len(outcomes) > 0               # the dispatcher counted each once
    latency = sorted(got - m["ts"] for _, m, got in mine.values())
    p50, p99 = latency[len(latency) // 2], latency[int(len(latency) * 0.99)]
    print(f"\n{LIGHT} light machines, {SIM_MINUTES} simulated minutes: {len(mine)} events, "
          f"latency p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms, fleet CPU {json.loads(summary.read_text()).get('cpu_s', '?')} s")
    store.close()


def test_fleet_simulate_refuses_bad_input_with_a_reason(tmp_path):
    from region_support import fabedge_out
    out = fabedge_out("fleet", "simulate", "--broker", "mqtt://127.0.0.1:1", "--light", "2",
                      "--trust-key", str(tmp_path / "nope.pub"))
    assert out.returncode == 1 and "nope.pub: cannot read" in out.stderr
    bad = tmp_path / "bad.pub"
    bad.write_text("not base64!\n")
    out = fabedge_out("fleet", "simulate", "--broker", "mqtt://127.0.0.1:1", "--light", "2", "--trust-key", str(bad))
    assert out.returncode == 1 and "trust key 'bad'" in out.stderr
    out = fabedge_out("fleet", "simulate", "--broker", "mqtt://127.0.0.1:1")
    assert out.returncode == 1 and "at least one machine" in out.stderr
    out = fabedge_out("fleet", "simulate", "--broker", "mqtt://127.0.0.1:1", "--light", "1", "--start-delay", "9")
    assert out.returncode == 1 and "--start-delay '9': expected MIN,MAX" in out.stderr
