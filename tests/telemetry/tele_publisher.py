"""A machine that reports N part.outcome events, for the outage test (run as a subprocess).

Continues after the last event it recorded in --progress, so it can be SIGKILLed
and started again. Event ids are stable per event (`outage-<n>`): an event that
was stored but not yet recorded as done is stored again under the same id, so
the region still counts exactly N. Exits 0 once the spool is empty.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edge import config  # noqa: E402
from edge.telemetry.service import Telemetry  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--progress", required=True)
    p.add_argument("--count", type=int, default=10_000)
    args = p.parse_args()
    cfg = config.from_dict({"machine": {"id": "mk3-1", "site": "lab-a"},
                            "broker": {"url": args.url, "will_delay_s": 5}})
    progress = Path(args.progress)
    done = [int(x) for x in progress.read_text().split()] if progress.exists() else []
    start = done[-1] + 1 if done else 0
    t = Telemetry(cfg, args.spool, on_command=lambda payload, retained: None, backoff_max_s=1.0)
    t.start()
    with progress.open("a") as out:
        for n in range(start, args.count):
            t.event("part.outcome", {"job_id": f"job-{n // 100}", "design": "bracket", "parts": 1,
                                     "outcome": "good", "site": "lab-a", "machine": "mk3-1", "n": n},
                    event_id=f"outage-{n}")
            out.write(f"{n}\n")
            if n % 50 == 0:
                out.flush()
        out.flush()
    deadline = time.monotonic() + 60
    while len(t.spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = len(t.spool)
    t.stop()
    print(f"done, {left} left in the spool", flush=True)
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
