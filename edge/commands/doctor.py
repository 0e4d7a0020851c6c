"""`fabedge doctor [--config C]`: check serial, camera, GPIO, broker, clock, disk, numba cache and power.

Safe on a live machine: while fabedge.service is active its port and pins are reported, not touched.
"""

from __future__ import annotations

import argparse

from edge import config, doctor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="/etc/fabedge/fabedge.toml")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for firmware and broker")


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    results = doctor.run_all(cfg, timeout=args.timeout)
    for check in results:
        print(check.line())
    if any(c.status == doctor.FAIL for c in results):
        return 2
    return 0
