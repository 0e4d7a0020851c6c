"""GRBL streaming throughput: fabedge's character counting vs send-and-wait vs the wire.

A raster engraving (per-pixel S, the densest laser job there is) goes to the
virtual GRBL at 115200 baud with 1 ms reply latency; the controller's motion
runs time-scaled so that only the serial link limits. Each sender sends the
same bytes; the wire limit is those bytes at 10 bits each. Target: fabedge
>= 90 % of the wire limit. Usage: python bench/stream_grbl.py [FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import serial  # noqa: E402

from drivers.base import JobFailed, JobFinished  # noqa: E402
from drivers.grbl import GrblDriver  # noqa: E402
from drivers.grbl_wire import compact  # noqa: E402

BAUD = 115200
LATENCY_S = 0.001
RASTER = ROOT / "tests" / "fixtures" / "slicer" / "laser_raster_disc.gcode"
WORK = Path(tempfile.mkdtemp(prefix="fabedge-bench-grbl-"))


def job_lines(path: Path, repeat: int) -> list[tuple[int, bytes]]:
    lines = []
    for i, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        cmd = raw.split(b";")[0].strip()
        if cmd:
            lines.append((i, cmd))
    return lines * repeat


class Simulator:
    """The virtual GRBL in its own process (`fabedge sim grbl`), as a real board would be: no shared GIL."""

    def __init__(self, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drivers.sim.grbl", "--baud", str(BAUD), "--time-scale", "1e5",
             "--latency-ms", str(LATENCY_S * 1000), "--log", str(log)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.path = self.proc.stdout.readline().strip()

    def executed(self) -> int:
        """Stop the simulator; the number of lines it executed."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=10)
        return sum(1 for line in self.log.read_text().splitlines() if not line.startswith(";"))


def run_fabedge(lines: list[tuple[int, bytes]]) -> float:
    sim = Simulator(WORK / "fabedge.log")
    done = threading.Event()
    result: list[object] = []

    def on_event(ev: object) -> None:
        if isinstance(ev, (JobFinished, JobFailed)):
            result.append(ev)
            done.set()

    drv = GrblDriver(sim.path, BAUD, on_event, status_hz=5.0)
    drv.open()
    t0 = time.perf_counter()
    drv.start_job(lines)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    drv.close()
    assert isinstance(result[0], JobFinished), result
    executed = sim.executed()
    assert executed == len(lines), (executed, len(lines))
    return elapsed


def run_send_and_wait(lines: list[tuple[int, bytes]]) -> float:
    """The simplest correct sender: one line, wait for its ok, next line."""
    sim = Simulator(WORK / "send-and-wait.log")
    with serial.Serial(sim.path, BAUD, timeout=5) as port:
        t0 = time.perf_counter()
        for _, cmd in lines:
            port.write(compact(cmd) + b"\n")
            while True:
                reply = port.readline()
                if reply.startswith((b"ok", b"error")) or not reply:
                    break
        elapsed = time.perf_counter() - t0
    executed = sim.executed()
    assert executed == len(lines), (executed, len(lines))
    return elapsed


def report(path: Path = RASTER, repeat: int = 2) -> dict[str, float]:
    """Run both senders on the file, print the table, return seconds per sender (bench/stream.py's GRBL row)."""
    lines = job_lines(Path(path), repeat)
    nbytes = sum(len(compact(c)) + 1 for _, c in lines)
    wire = nbytes * 10 / BAUD
    fab = run_fabedge(lines)
    saw = run_send_and_wait(lines)
    print(f"GRBL stream: {Path(path).name} x{repeat}, {len(lines)} lines, {nbytes} bytes, "
          f"{BAUD} baud, {LATENCY_S * 1000:.0f} ms reply latency, motion time-scaled (link-bound)")
    print(f"  {'sender':30s} {'seconds':>8s} {'lines/s':>9s} {'of wire':>8s}")
    for name, t in (("wire limit", wire), ("fabedge (GRBL, char counting)", fab), ("send-and-wait", saw)):
        print(f"  {name:30s} {t:8.2f} {len(lines) / t:9.1f} {100 * wire / t:7.1f}%")
    print(f"  fabedge / send-and-wait = {saw / fab:.2f}x   fabedge / wire = {wire / fab:.3f} (target >= 0.90)")
    return {"wire": wire, "fabedge": fab, "send_and_wait": saw}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(RASTER))
    ap.add_argument("--repeat", type=int, default=2, help="stream the file this many times back to back")
    args = ap.parse_args()
    report(Path(args.file), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
