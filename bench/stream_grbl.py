"""GRBL streaming throughput: fabedge's character counting vs send-and-wait vs the wire.

A raster engraving (per-pixel S, the densest laser job there is) goes to the
virtual GRBL at 115200 baud with 1 ms reply latency; the controller's motion
runs time-scaled so that only the serial link limits. Each sender sends the
same bytes; the wire limit is those bytes at 10 bits each. Target: fabedge
>= 90 % of the wire limit.

Real speed: a dense photo raster (0.1 mm pixels, every pixel its own S, 50 mm/s,
about 500 lines/s) on the virtual GRBL at its real speed: how many cutting
blocks each sender left the 15-block planner too short to reach 90 % of the
feed (look-ahead must plan a stop at the end of what it has), and how often it
ran dry (the head stops mid-row). Usage: python bench/stream_grbl.py [FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import math
import re
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

    def __init__(self, log: Path, time_scale: float = 1e5):
        self.log = log
        self.starved = self.slowed = -1
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drivers.sim.grbl", "--baud", str(BAUD), "--time-scale", str(time_scale),
             "--latency-ms", str(LATENCY_S * 1000), "--log", str(log)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.path = self.proc.stdout.readline().strip()

    def executed(self) -> int:
        """Stop the simulator; the number of lines it executed."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=10)
        found = re.search(r"planner starved (\d+) times, (\d+) cuts slowed", err)
        self.starved, self.slowed = (int(found.group(1)), int(found.group(2))) if found else (-1, -1)
        return sum(1 for line in self.log.read_text().splitlines() if not line.startswith(";"))


def run_fabedge(lines: list[tuple[int, bytes]], time_scale: float = 1e5) -> tuple[float, int, int]:
    """(seconds, times the planner ran dry, cutting blocks slowed below 90 % of their feed)"""
    sim = Simulator(WORK / "fabedge.log", time_scale)
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
    return elapsed, sim.starved, sim.slowed


def run_send_and_wait(lines: list[tuple[int, bytes]], time_scale: float = 1e5) -> tuple[float, int, int]:
    """The simplest correct sender: one line, wait for its ok, next line. (seconds, ran dry, cuts slowed)"""
    sim = Simulator(WORK / "send-and-wait.log", time_scale)
    with serial.Serial(sim.path, BAUD, timeout=5) as port:
        t0 = time.perf_counter()
        for _, cmd in lines:
            port.write(compact(cmd) + b"\n")
            while True:
                reply = port.readline()
                if reply.startswith((b"ok", b"error")) or not reply:
                    break
        while True:                                  # done = the machine stopped, as fabedge's JobFinished
            port.write(b"?")
            if port.readline().startswith(b"<Idle"):
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
    executed = sim.executed()
    assert executed == len(lines), (executed, len(lines))
    return elapsed, sim.starved, sim.slowed


def photo_raster(rows: int = 10, pixels: int = 150, mm_per_px: float = 0.1) -> list[tuple[int, bytes]]:
    """A dense photo engraving: every pixel its own S, serpentine rows at 50 mm/s."""
    out = [b"G21", b"G90", b"M4 S0", b"G0 X10 Y10", b"G1 F3000"]
    for r in range(rows):
        cols = range(pixels) if r % 2 == 0 else range(pixels - 1, -1, -1)
        out.append(b"G0 X%.2f Y%.2f S0" % (10 + cols[0] * mm_per_px, 10 + r * mm_per_px))
        for c in cols:
            s = int(500 + 480 * math.sin(c * 0.37 + r))
            out.append(b"G1 X%.2f S%d" % (10 + (c + (1 if r % 2 == 0 else 0)) * mm_per_px, s))
    out += [b"M5", b"G0 X0 Y0"]
    return list(enumerate(out, 1))


def report(path: Path = RASTER, repeat: int = 2) -> dict[str, float]:
    """Run both senders, link-bound and at real speed, print the tables (bench/stream.py's GRBL rows)."""
    lines = job_lines(Path(path), repeat)
    nbytes = sum(len(compact(c)) + 1 for _, c in lines)
    wire = nbytes * 10 / BAUD
    fab = run_fabedge(lines)[0]
    saw = run_send_and_wait(lines)[0]
    print(f"GRBL stream: {Path(path).name} x{repeat}, {len(lines)} lines, {nbytes} bytes, "
          f"{BAUD} baud, {LATENCY_S * 1000:.0f} ms reply latency, motion time-scaled (link-bound)")
    print(f"  {'sender':30s} {'seconds':>8s} {'lines/s':>9s} {'of wire':>8s}")
    for name, t in (("wire limit", wire), ("fabedge (GRBL, char counting)", fab), ("send-and-wait", saw)):
        print(f"  {name:30s} {t:8.2f} {len(lines) / t:9.1f} {100 * wire / t:7.1f}%")
    print(f"  fabedge / send-and-wait = {saw / fab:.2f}x   fabedge / wire = {wire / fab:.3f} (target >= 0.90)")
    photo = photo_raster()
    print(f"\nGRBL real speed: photo raster, {len(photo)} lines, 0.1 mm pixels at 50 mm/s (about 500 lines/s), "
          f"machine at real speed")
    print(f"  {'sender':30s} {'seconds':>8s} {'lines/s':>9s} {'planner ran dry':>16s} {'cuts slowed':>12s}")
    real = {}
    for name, fn in (("fabedge (GRBL, char counting)", run_fabedge), ("send-and-wait", run_send_and_wait)):
        t, dry, slowed = real[name] = fn(photo, 1.0)
        print(f"  {name:30s} {t:8.2f} {len(photo) / t:9.1f} {dry:16d} {slowed:12d}")
    return {"wire": wire, "fabedge": fab, "send_and_wait": saw,
            "real_fabedge_slowed": real["fabedge (GRBL, char counting)"][2],
            "real_send_and_wait_slowed": real["send-and-wait"][2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(RASTER))
    ap.add_argument("--repeat", type=int, default=2, help="stream the file this many times back to back")
    args = ap.parse_args()
    report(Path(args.file), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
