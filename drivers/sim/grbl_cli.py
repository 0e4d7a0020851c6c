"""`fabedge sim grbl [--baud B] [--rx-buffer N] [--faults SPEC] [--log FILE] [--time-scale K]`.

Runs a VirtualGrbl until SIGINT/SIGTERM, printing the pty path first (scripts
read it from the first line of stdout) and, at the end, the executed line count
and the laser-on path. `--link` adds a stable symlink to the pty.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from drivers.sim import grbl_faults
from drivers.sim.grbl import VirtualGrbl


def main(argv: list[str] | None = None) -> int:
    """`fabedge sim grbl ...`: run until interrupted; prints the port path first."""
    p = argparse.ArgumentParser(prog="fabedge sim grbl", description="a virtual GRBL 1.1h laser on a pseudo-terminal")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--rx-buffer", type=int, default=127, help="receive buffer bytes (GRBL 127, grblHAL 1023)")
    p.add_argument("--blocks", type=int, default=15, help="planner blocks")
    p.add_argument("--faults", default="",
                   help="e.g. drop@12,corrupt@40,door@1.5:0.5,alarm@2:1,reset@30,hang@5 (see grbl_faults)")
    p.add_argument("--log", default=None, help="write every executed line here, in order")
    p.add_argument("--time-scale", type=float, default=1.0, help="machine seconds per real second")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each reply")
    p.add_argument("--link", default=None, help="also make this symlink to the pty (a stable port path)")
    p.add_argument("--set", action="append", default=[], metavar="N=V", help="a $ setting, e.g. 32=0")
    args = p.parse_args(argv)
    try:
        settings = {int(k): float(v) for k, _, v in (s.partition("=") for s in args.set)}
        sim = VirtualGrbl(baud=args.baud, rx_buffer=args.rx_buffer, blocks=args.blocks,
                          time_scale=args.time_scale, faults=args.faults, log_path=args.log,
                          reply_latency=args.latency_ms / 1000.0, settings=settings)
    except (ValueError, grbl_faults.FaultSpecError) as exc:
        print(f"fabedge sim grbl: {exc}", file=sys.stderr)
        return 2
    path = sim.start()
    if args.link:
        if os.path.islink(args.link):
            os.unlink(args.link)
        os.symlink(path, args.link)
    print(path, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):          # also when started in the background (SIGINT ignored)
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
        if args.link and os.path.islink(args.link):
            os.unlink(args.link)
        print(f"executed {len(sim.executed)} lines, laser on {sim.laser_on_mm:.1f} mm / {sim.laser_on_s:.1f} s, "
              f"planner starved {sim.motion.starved} times, {sim.motion.slowed} cuts slowed", file=sys.stderr)
    return 0
