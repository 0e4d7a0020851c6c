"""STOP latency: the panel's direct stop hook vs going through the agent's event queue.

Real pieces: mosquitto on a free port, a virtual Marlin on a pty (time-scaled),
the agent with its panel on gpiozero mock pins, the demo job streaming. For each
trial STOP is pressed and released mid-job, the host's own port writes are
timestamped, and the latency is press -> the host's last job-line write (after
that only the park moves go out). Then PAUSE resumes and the next trial runs.
The baseline is the same agent with the direct hook switched off (STOP only
posts its event and the loop pauses the driver), with the loop kept busy the
way a job keeps it (a burst of progress events queued just before the press).

usage: .venv/bin/python bench/agent.py [--trials N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.base import LineAcked                      # noqa: E402
from drivers.sim.marlin import strip_framing           # noqa: E402
from edge.commands.demo import DemoRig                 # noqa: E402
from edge.telemetry.localbroker import LocalBroker     # noqa: E402

BURST = 3000            # progress events queued just before the press (a busy loop)


def wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/agent.py: timed out waiting for {what}")
        time.sleep(0.005)


def trials(rig: DemoRig, n: int, direct: bool) -> list[float]:
    agent = rig.agent
    if not direct:
        agent.panel.stop_hook = None                      # baseline: STOP goes through the queue only
    park = set(rig.cfg.stream.park_gcode) | {"M105", "M114"}
    out = []
    for _ in range(n):
        rig.wait_state("running", 30)
        time.sleep(0.3)
        writes: list[tuple[float, str]] = []
        drv = agent.driver
        real = drv._write
        drv._write = lambda data: (writes.append((time.monotonic(), strip_framing(data.decode(errors="replace")))),
                                   real(data))[1]
        line = agent.prog.line if agent.prog else 1
        for _ in range(BURST):                            # what a fast stream of acks puts on the queue
            agent.post(LineAcked(line, 0))
        t0 = time.monotonic()
        rig.press("stop", hold_s=0.05)
        rig.wait_state("paused", 30)
        time.sleep(0.3)
        drv._write = real
        job_writes = [t for t, cmd in writes if t >= t0 and cmd not in park]
        out.append(((max(job_writes) - t0) if job_writes else 0.0) * 1000)
        rig.press("pause")                                # resume for the next trial
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    results = {}
    for name, direct in (("direct hook (fabedge)", True), ("via the event queue (baseline)", False)):
        with tempfile.TemporaryDirectory() as tmp, LocalBroker(workdir=Path(tmp) / "broker") as broker:
            rig = DemoRig(Path(tmp), broker, time_scale=4.0)
            try:
                rig.watch()
                rig.start_agent()
                wait(lambda: rig.agent.driver_ok, 30, "the printer")
                rig.offer("bench-stop")
                rig.wait_state("armed", 60)
                rig.press("start")
                wait(lambda: rig.agent.prog is not None and rig.agent.prog.line > 60, 180, "the job under way")
                results[name] = trials(rig, args.trials, direct)
            finally:
                rig.close()
    print(f"STOP press -> last job line written by the host, {args.trials} trials each, "
          f"{BURST} progress events queued at each press")
    print(f"{'path':34} {'median ms':>10} {'max ms':>8}")
    for name, ms in results.items():
        print(f"{name:34} {statistics.median(ms):10.1f} {max(ms):8.1f}")
    a, b = (statistics.median(v) for v in results.values())
    print(f"baseline / fabedge (median): {b / a:.1f}x" if a > 0 else "fabedge median 0 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
