"""Region scale on this machine: 80 full machines, then 2,000 light ones, against one local mosquitto.

    .venv/bin/python bench/fleet.py [--full-seconds 120] [--light 2000] [--light-scale 5] [--skip-full]

For each fleet: messages per second through the broker ($SYS counters), end-to-end event latency
(made on the machine -> received by a region subscriber) p50 / p99, CPU and memory per machine
(the fleet processes' own rusage) and the broker's CPU and memory; for the light fleet also "no
event lost" (distinct event ids at the region == events the machines made). The baseline in the
same run is the broker's ceiling: one bare paho publisher at QoS 1 into the same mosquitto with
one subscriber, so the fleet's load is printed as a share of what this mosquitto can carry here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "region"))
from edge.devcache import use_checkout_cache  # noqa: E402
use_checkout_cache(ROOT)

from edge.fleetsim_cli import raise_fd_limit  # noqa: E402
from edge.region.campaign import Dispatcher, run_dispatcher  # noqa: E402
from edge.region.designs import register  # noqa: E402
from edge.region.store import CampaignStore  # noqa: E402
from edge.telemetry.client import Watcher  # noqa: E402
from edge.telemetry.endpoint import Endpoint  # noqa: E402
from edge.telemetry.localbroker import LocalBroker  # noqa: E402
from region_support import HEADBAND, KEY_ID, VISOR, RegionEar, region_key  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class BrokerMeter:
    """$SYS message counters and /proc CPU/RSS of the mosquitto process."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.sys: dict[str, float] = {}
        self.w = Watcher(Endpoint.from_url(broker.url), ["$SYS/broker/messages/#", "$SYS/broker/publish/messages/#"],
                         self._on, client_id=f"bench-sys-{os.getpid()}")
        self.w.start()

    def _on(self, topic: str, payload: bytes, _r: bool) -> None:
        try:
            self.sys[topic] = float(payload)
        except ValueError:
            pass

    def snapshot(self) -> dict[str, float]:
        pid = self.broker.proc.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if x.startswith("VmRSS"))
        return {"t": time.monotonic(), "cpu": (int(fields[11]) + int(fields[12])) / TICK, "rss_kb": rss,
                "received": self.sys.get("$SYS/broker/messages/received", 0.0),
                "sent": self.sys.get("$SYS/broker/messages/sent", 0.0)}

    def stop(self) -> None:
        self.w.stop()


def quantiles(values: list[float]) -> tuple[float, float]:
    v = sorted(values)
    return (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))]) if v else (float("nan"), float("nan"))


def run_fleet(name: str, work: Path, fleet_args: list[str], seconds: float, quantity: int) -> dict:
    """One broker, one dispatcher, one region subscriber, the fleet as `fabedge fleet simulate`."""
    broker = LocalBroker(workdir=work / "broker", extra_conf="sys_interval 1\nmax_queued_messages 1000000").start()
    key, _priv, pub = region_key(work / "keys")
    store = CampaignStore(Path("/dev/shm") / f"fabedge-bench-{os.getpid()}-{name}.db")
    register(store, "faceshield", quantity, [f"printer={HEADBAND}", f"laser={VISOR}"])
    stop = threading.Event()
    ear = RegionEar(broker.url, client_id=f"bench-ear-{name}").start()
    meter = BrokerMeter(broker)
    loop = threading.Thread(target=run_dispatcher, args=(Dispatcher(store, key, KEY_ID, lease_s=120),
                                                         Endpoint.from_url(broker.url)),
                            kwargs={"stop": stop}, daemon=True)
    loop.start()
    summary = work / "fleet.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "fleet", "simulate", "--broker", broker.url,
                             "--trust-key", str(pub), "--workdir", str(work / "fleet"), "--summary", str(summary),
                             *fleet_args], cwd=str(ROOT), env=env, stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    shards = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:            # measure from when every shard is connected
        connected = [ln for ln in lines if "connected after" in ln]
        m = next((ln for ln in lines if "processes" in ln), None)
        shards = shards or (int(m.split()[2]) if m else None)
        if (shards and len(connected) >= shards) or (not m and connected):
            break
        time.sleep(0.5)
    time.sleep(3.0)
    a = meter.snapshot()
    wall_a = time.time()
    events_before = len(ear.events)
    time.sleep(seconds)
    b = meter.snapshot()
    wall_b = time.time()
    events_in_window = len(ear.events) - events_before
    proc.send_signal(signal.SIGTERM)
    proc.wait(600)
    fleet_wall = time.monotonic() - started
    time.sleep(2.0)
    stop.set()
    loop.join(10)
    ear.stop()
    meter.stop()
    s = json.loads(summary.read_text())
    wall = b["t"] - a["t"]
    with ear.lock:
        lat = [got - m["ts"] for _, m, got in ear.events.values()]
        steady = [got - m["ts"] for _, m, got in ear.events.values() if wall_a <= m["ts"] <= wall_b]
        light_events = sum(1 for t, _, _ in ear.events.values() if "/light-" in t)
    machines = len(s.get("machines", {})) + int(s.get("light", {}).get("machines", 0) or 0)
    p50, p99 = quantiles(lat)
    s50, s99 = quantiles(steady)
    rss = s.get("max_rss_kb", [])
    out = {"name": name, "machines": machines, "window_s": round(wall, 1),
           "broker_msgs_in_per_s": round((b["received"] - a["received"]) / wall, 1),
           "broker_msgs_out_per_s": round((b["sent"] - a["sent"]) / wall, 1),
           "events_per_s": round(events_in_window / wall, 1),
           "latency_p50_ms": round(p50 * 1000, 1), "latency_p99_ms": round(p99 * 1000, 1),
           "window_latency_p50_ms": round(s50 * 1000, 1), "window_latency_p99_ms": round(s99 * 1000, 1),
           "broker_cpu_pct": round(100 * (b["cpu"] - a["cpu"]) / wall, 1), "broker_rss_mb": round(b["rss_kb"] / 1024, 1),
           "fleet_cpu_s": s.get("cpu_s"), "fleet_rss_mb": round(sum(rss if isinstance(rss, list) else [rss]) / 1024, 1),
           "good_parts": store.good_parts("faceshield"), "outcome_events": store.outcome_events()}
    # the fleet processes' CPU over their whole life (start-up and shutdown included)
    out["cpu_ms_per_machine_per_s"] = round(1000 * (s.get("cpu_s") or 0) / max(machines, 1) / fleet_wall, 2)
    out["rss_mb_per_machine"] = round(out["fleet_rss_mb"] / max(machines, 1), 2)
    if s.get("light"):
        out["light_events_made"] = s["light"]["events"]
        out["light_events_at_region"] = light_events
        out["lost"] = s["light"]["events"] - light_events
    store.close()
    broker.close()
    return out


def broker_ceiling(work: Path, n: int = 20000) -> float:
    """Messages/s one bare paho QoS 1 publisher gets through this mosquitto to one subscriber."""
    import paho.mqtt.client as mqtt
    broker = LocalBroker(workdir=work / "ceiling").start()
    got = threading.Event()
    count = [0]

    def on(_t: str, _p: bytes, _r: bool) -> None:
        count[0] += 1
        if count[0] >= n:
            got.set()
    w = Watcher(Endpoint.from_url(broker.url), ["ceiling/#"], on, client_id="ceiling-sub").start()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ceiling-pub")
    c.max_inflight_messages_set(1000)
    c.connect(broker.host, broker.port)
    c.loop_start()
    payload = b'{"v":1,"id":"' + b"x" * 32 + b'","seq":1,"ts":1.0,"type":"job.done","job_id":"j"}'
    t0 = time.monotonic()
    for i in range(n):
        c.publish(f"ceiling/{i % 100}/evt", payload, qos=1)
    got.wait(120)
    rate = n / (time.monotonic() - t0)
    c.loop_stop()
    w.stop()
    broker.close()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full-seconds", type=float, default=120.0)
    ap.add_argument("--full-scale", type=float, default=20.0)
    ap.add_argument("--light", type=int, default=2000)
    ap.add_argument("--light-scale", type=float, default=5.0, help="10 simulated minutes take 600/K real seconds")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--skip-light", action="store_true")
    args = ap.parse_args()
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="fabedge-bench-fleet-", dir="/dev/shm"))
    print(f"bench/fleet.py on {os.cpu_count()} cores; state on tmpfs {work} (one host stands in for many SD cards)")
    ceiling = broker_ceiling(work)
    print(f"baseline: one bare paho QoS 1 publisher -> mosquitto -> one subscriber: {ceiling:,.0f} msgs/s")
    results = []
    if not args.skip_full:
        results.append(run_fleet("full-80", work / "full", [
            "--printers", "70", "--lasers", "10", "--sites", "15", "--time-scale", str(args.full_scale),
            "--start-delay", "5,30", "--clear-delay", "5,30"], args.full_seconds, 100000))
    if not args.skip_light:
        results.append(run_fleet(f"light-{args.light}", work / "light", [
            "--light", str(args.light), "--sites", "15", "--time-scale", str(args.light_scale)],
            600.0 / args.light_scale, 10 ** 7))
    for r in results:
        print(json.dumps(r))
        load = r["broker_msgs_in_per_s"] + r["broker_msgs_out_per_s"]
        print(f"{r['name']}: {r['machines']} machines, broker {r['broker_msgs_in_per_s']:.0f} in + "
              f"{r['broker_msgs_out_per_s']:.0f} out msgs/s = {100 * load / (2 * ceiling):.1f}% of the bare ceiling "
              f"(ratio {load / (2 * ceiling):.3f}); event latency p50 {r['latency_p50_ms']} ms p99 "
              f"{r['latency_p99_ms']} ms (measured window only: {r['window_latency_p50_ms']} / "
              f"{r['window_latency_p99_ms']} ms); broker CPU {r['broker_cpu_pct']}% RSS {r['broker_rss_mb']} MB; "
              f"per machine {r['cpu_ms_per_machine_per_s']} ms CPU/s and {r['rss_mb_per_machine']} MB"
              + (f"; events lost {r['lost']} of {r['light_events_made']}" if "lost" in r else ""))
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
