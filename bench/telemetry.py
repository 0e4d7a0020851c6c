"""Telemetry benchmark: events/s through the durable spool to a real mosquitto, and outage replay.

1. Live rate: N events through Telemetry.event() (SQLite WAL, synchronous=FULL: one fsync per
   commit) until the broker has PUBACKed every one, from one agent thread and from four threads
   (group commit). Side by side: the same events published straight with paho at QoS 1 and no
   disk at all (what in-memory integrations do), and the ratio.
2. Replay: 100,000 events spooled while the broker is down, then the broker starts; time until a
   subscriber has every one and the spool is empty. Target: >= 2,000 events/s, replay < 60 s.

Run: .venv/bin/python bench/telemetry.py [--events 5000] [--replay 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge import config  # noqa: E402
from edge.telemetry.client import Endpoint, Watcher  # noqa: E402
from edge.telemetry.localbroker import LocalBroker  # noqa: E402
from edge.telemetry.service import Telemetry  # noqa: E402

PAYLOAD = {"job_id": "job-42", "design": "bracket", "parts": 1, "outcome": "good",
           "site": "lab-a", "machine": "mk3-1"}


def _cfg(url: str) -> config.Config:
    return config.from_dict({"machine": {"id": "mk3-1", "site": "lab-a"},
                             "broker": {"url": url, "spool_max_mb": 512}})


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


class Counter:
    """mosquitto_sub in its own process counts the events (so it does not share our CPU/GIL)."""

    def __init__(self, broker: LocalBroker) -> None:
        if shutil.which("mosquitto_sub") is None:
            raise SystemExit("bench/telemetry.py needs mosquitto_sub: apt-get install mosquitto-clients")
        self.path = Path(tempfile.mktemp(prefix="fabedge-bench-sub-"))
        self._out = self.path.open("wb")
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
                                      "-t", "fabedge/v1/+/+/evt/#", "-F", "%m"], stdout=self._out)
        time.sleep(0.5)

    @property
    def n(self) -> int:
        self._out.flush()
        with self.path.open("rb") as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self._out.close()
        self.path.unlink(missing_ok=True)


def live_rate(url: str, work: Path, n: int, threads: int) -> float:
    t = Telemetry(_cfg(url), work / f"live-{threads}.db", on_command=lambda p, r: None)
    t.start()
    assert _wait(lambda: t.connected, 10), "no broker"
    per = n // threads

    def produce() -> None:
        for _ in range(per):
            t.event("part.outcome", PAYLOAD)
    start = time.perf_counter()
    workers = [threading.Thread(target=produce) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert _wait(lambda: len(t.spool) == 0, 120), "spool did not drain"
    elapsed = time.perf_counter() - start
    t.stop()
    return per * threads / elapsed


def fsync_latency_ms(work: Path, n: int = 200) -> float:
    """What one durable commit costs on this disk: the ceiling of a single thread is 1 / this."""
    fd = os.open(work / "fsync-probe", os.O_WRONLY | os.O_CREAT)
    try:
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, b"x" * 512)
            os.fdatasync(fd)
        return (time.perf_counter() - start) / n * 1000
    finally:
        os.close(fd)


def paho_in_memory_rate(url: str, n: int) -> float:
    """Competitor: QoS 1 straight from memory, nothing on disk (lost on a crash or outage)."""
    import json
    import uuid
    w = Watcher(Endpoint.from_url(url), [], lambda *a: None).start()
    client = w._client
    acked = threading.Semaphore(0)
    client.on_publish = lambda *a: acked.release()
    start = time.perf_counter()
    for i in range(n):
        body = json.dumps({"id": uuid.uuid4().hex, "seq": i, "ts": time.time(), **PAYLOAD}).encode()
        client.publish("fabedge/v1/lab-a/mk3-1/evt/part.outcome", body, qos=1)
    for _ in range(n):
        acked.acquire(timeout=30)
    elapsed = time.perf_counter() - start
    w.stop()
    return n / elapsed


def replay(work: Path, n: int) -> tuple[float, float, int]:
    broker = LocalBroker(workdir=work / "broker-replay",
                         extra_conf="user root" if os.geteuid() == 0 else "")
    url = broker.url
    t = Telemetry(_cfg(url), work / "replay.db", on_command=lambda p, r: None, backoff_max_s=0.5)
    t.start()                       # broker down: everything goes to the spool

    def produce(k: int) -> None:
        for _ in range(k):
            t.event("part.outcome", PAYLOAD)
    start = time.perf_counter()
    workers = [threading.Thread(target=produce, args=(n // 8,)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    fill = time.perf_counter() - start
    spooled = len(t.spool)
    broker.start()
    start = time.perf_counter()
    counter = Counter(broker)
    ok = _wait(lambda: len(t.spool) == 0 and counter.n >= spooled, 300)
    elapsed = time.perf_counter() - start
    received = counter.n
    t.stop()
    counter.stop()
    broker.close()
    if not ok:
        raise SystemExit(f"replay incomplete: {received} of {spooled} received, {len(t.spool)} left")
    return spooled / fill, elapsed, received


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--replay", type=int, default=100_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fabedge-bench-tele-"))
    try:
        with LocalBroker(workdir=work / "broker") as broker:
            sub = Counter(broker)   # a subscriber, so the broker really forwards
            fsync_ms = fsync_latency_ms(work)
            one = live_rate(broker.url, work, args.events, 1)
            four = live_rate(broker.url, work, args.events, 4)
            mem = paho_in_memory_rate(broker.url, args.events)
            sub.stop()
        print(f"fdatasync on this disk             : {fsync_ms:8.2f} ms  -> one thread can durably commit "
              f"at most {1000 / fsync_ms:.0f}/s")
        print(f"live, spool+fsync+PUBACK, 1 thread : {one:8.0f} events/s   (target >= 2000)")
        print(f"live, spool+fsync+PUBACK, 4 threads: {four:8.0f} events/s   (group commit)")
        print(f"paho QoS 1 from memory, no spool   : {mem:8.0f} events/s   (loses events on crash/outage)")
        print(f"ratio durable/in-memory            : {one / mem:8.2f} (1 thread)  {four / mem:.2f} (4 threads)")
        fill, secs, received = replay(work, args.replay)
        print(f"replay: {received} events spooled offline (filled at {fill:.0f}/s, 8 threads) "
              f"delivered in {secs:.1f} s = {received / secs:.0f} events/s   (target < 60 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
