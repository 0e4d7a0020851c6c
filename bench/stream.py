"""Streaming benchmark: fabedge's windowed Marlin driver against a one-line-in-flight
sender (the OctoPrint / Printrun model) and the wire limit, on a real slicer file,
at 115200 baud through the virtual Marlin (1 ms reply latency, 16-move planner,
ADVANCED_OK), all in one run.

Two scenarios:
  link-bound   the machine runs 1000x faster than real, so only the link limits:
               lines/s of each sender, ratios to the wire limit and to one-line.
  real speed   a typical and the densest stretch of a print at the machine's real
               speed: planner-starvation count (the planner ran empty while lines
               were still to come). In the densest stretch Marlin's own buffers
               (16 blocks, 4 command slots, 128-byte RX) are shorter than the burst
               of tiny segments, so even a perfect host can starve there.
Host CPU is the bench process's CPU time (the sender; the virtual printer runs in
its own process) divided by wall time, in % of one core.

Each scenario is a list of rows (name, function) so other machines' senders (GRBL)
can be added as rows. Run: `.venv/bin/python bench/stream.py [--quick]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edge.devcache import use_checkout_cache  # noqa: E402
use_checkout_cache(ROOT)

import numpy as np  # noqa: E402
import serial  # noqa: E402

from drivers import marlin_protocol as proto  # noqa: E402
from drivers.base import JobFailed, JobFinished  # noqa: E402
from drivers.marlin import MarlinDriver  # noqa: E402

BAUD = 115200
LATENCY_S = 0.001
BLOCKS = 16
FILE = ROOT / "tests" / "fixtures" / "slicer" / "prusa_torus.gcode"
DENSE_FILE = ROOT / "tests" / "fixtures" / "slicer" / "prusa_bunny.gcode"


@dataclass
class Result:
    lines: int
    seconds: float
    cpu_s: float
    underruns: int
    wire_bytes: int
    sim_stalls: int = 0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.seconds


# ---- the virtual printer in its own process ------------------------------------------
def _sim_process(conn, time_scale: float) -> None:
    from drivers.sim.marlin import VirtualMarlin
    sim = VirtualMarlin(BAUD, advanced_ok=True, time_scale=time_scale, latency_s=LATENCY_S,
                        block_buffer=BLOCKS, keep_executed=False)
    conn.send(sim.start())
    conn.recv()                                     # "stop"
    conn.send({"underruns": sim.underruns, "bytes_in": sim.pty.bytes_in, "errors": sim.errors_sent,
               "stalls": sim.planner.stall_underruns})
    sim.stop()


class SimProcess:
    def __init__(self, time_scale: float) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("fork").Process(target=_sim_process, args=(child, time_scale), daemon=True)
        self.proc.start()
        self.path = self.conn.recv()

    def stats(self) -> dict:
        self.conn.send("stop")
        out = self.conn.recv()
        self.proc.join(5)
        return out


# ---- senders ----------------------------------------------------------------------------
def run_fabedge(lines: list[tuple[int, bytes]], time_scale: float) -> Result:
    sim = SimProcess(time_scale)
    done = threading.Event()
    ends = []

    def on_event(e) -> None:
        if isinstance(e, (JobFinished, JobFailed)):
            ends.append(e)
            done.set()

    drv = MarlinDriver(sim.path, BAUD, on_event, timeout_s=10.0, autoreport_s=0)
    drv.open(timeout=10)
    c0, t0 = time.process_time(), time.monotonic()
    drv.start_job(lines)
    done.wait(3600)
    t1, c1 = time.monotonic(), time.process_time()
    drv.close()
    st = sim.stats()
    if not isinstance(ends[0], JobFinished):
        raise SystemExit(f"fabedge run failed: {ends[0]}")
    return Result(len(lines), t1 - t0, c1 - c0, st["underruns"], st["bytes_in"], st["stalls"])


def run_one_line(lines: list[tuple[int, bytes]], time_scale: float) -> Result:
    """The OctoPrint / Printrun model: send one numbered line, wait for its ok, repeat."""
    sim = SimProcess(time_scale)
    ser = serial.Serial(sim.path, BAUD, timeout=10)
    ser.write(proto.frame(0, b"M110 N0"))
    while not ser.readline().startswith(b"ok"):
        pass
    c0, t0 = time.process_time(), time.monotonic()
    for n, (_, cmd) in enumerate(lines, start=1):
        ser.write(proto.frame(n, cmd))
        while True:
            reply = ser.readline()
            if reply.startswith(b"ok"):
                break
            if not reply or reply.startswith((b"Resend", b"Error")):
                raise SystemExit(f"one-line sender: unexpected {reply!r} at line {n}")
    t1, c1 = time.process_time(), time.monotonic()
    t1, c1 = c1, t1
    ser.close()
    st = sim.stats()
    return Result(len(lines), t1 - t0, c1 - c0, st["underruns"], st["bytes_in"], st["stalls"])


def wire_limit(lines: list[tuple[int, bytes]]) -> float:
    """Seconds the framed lines alone take on the wire (10 bits a byte)."""
    nbytes = sum(len(proto.frame(n, cmd)) for n, (_, cmd) in enumerate(lines, start=1))
    return nbytes * 10.0 / BAUD


ROWS = [("fabedge (Marlin, windowed)", run_fabedge), ("one line in flight", run_one_line)]


# ---- the file ------------------------------------------------------------------------------
def load_lines(path: Path):
    from edge import config
    from edge.toolpath import analyze, command_lines
    cfg = config.load(ROOT / "config" / "fabedge.example.toml")
    a = analyze(path, cfg)
    return a, list(command_lines(a.toolpath))


def densest(analysis, lines, count: int) -> tuple[list, float]:
    """The `count` consecutive printing lines with the least planned time (after the start G-code)."""
    times = np.array([float(analysis.toolpath.line_time[ln - 1]) for ln, _ in lines])
    first = next(i for i, (ln, _) in enumerate(lines) if ln >= (analysis.first_layer or (1, 1))[1])
    cum = np.concatenate([[0.0], np.cumsum(times[first:])])
    window = cum[count:] - cum[:-count]
    best = first + int(np.argmin(window))
    return lines[best:best + count], float(window.min())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer lines (a smoke run)")
    args = ap.parse_args()
    n_link, n_dense = (800, 300) if args.quick else (4000, 1000)

    analysis, lines = load_lines(FILE)
    job = lines[:n_link]
    wire_s = wire_limit(job)
    print(f"link-bound: {FILE.name}, first {len(job)} command lines, {BAUD} baud, {LATENCY_S * 1000:.0f} ms "
          f"reply latency, {BLOCKS}-move planner, machine 1000x real speed")
    print(f"  {'sender':30s} {'lines/s':>9s} {'of wire':>8s} {'CPU %':>6s}")
    print(f"  {'wire limit':30s} {len(job) / wire_s:9.1f} {'100.0%':>8s}")
    link = {}
    for name, fn in ROWS:
        r = link[name] = fn(job, 1000.0)
        print(f"  {name:30s} {r.rate:9.1f} {100 * r.rate * wire_s / len(job):7.1f}% {r.cpu_pct:6.1f}")
    fab, one = link[ROWS[0][0]], link[ROWS[1][0]]
    print(f"  fabedge / one-line = {fab.rate / one.rate:.2f}x   fabedge / wire = {fab.rate * wire_s / len(job):.3f}")

    dense_a, dense_lines = load_lines(DENSE_FILE)
    middle = len(dense_lines) // 2
    stretches = [("a typical stretch", dense_lines[middle:middle + n_dense]),
                 ("the densest stretch", densest(dense_a, dense_lines, n_dense)[0])]
    for label, chunk in stretches:
        planned_s = sum(float(dense_a.toolpath.line_time[ln - 1]) for ln, _ in chunk)
        print(f"\nreal speed, {label} of {DENSE_FILE.name}: {len(chunk)} lines (file lines {chunk[0][0]}-{chunk[-1][0]}), "
              f"planned {planned_s:.1f} s = {len(chunk) / planned_s:.0f} lines/s needed, "
              f"link carries {len(chunk) / wire_limit(chunk):.0f} lines/s")
        print(f"  {'sender':30s} {'lines/s':>9s} {'starved':>8s} {'CPU %':>6s}  (+ starved while the sim itself stalled)")
        for name, fn in ROWS:
            r = fn(chunk, 1.0)
            print(f"  {name:30s} {r.rate:9.1f} {r.underruns:8d} {r.cpu_pct:6.1f}  (+{r.sim_stalls})")
    grbl_rows()
    return 0


# ---- GRBL (laser) rows: character counting vs send-and-wait vs the wire (bench/stream_grbl.py) ----
def grbl_rows() -> None:
    import stream_grbl                      # bench/ is sys.path[0] when this runs as a script
    print()
    stream_grbl.report()


if __name__ == "__main__":
    sys.exit(main())
