"""`fabedge sim marlin|grbl [options]`: a virtual firmware on a pseudo-terminal.

Each firmware module in drivers/sim/ owns its own options (`main(argv)`); this
command only picks the firmware.
"""

from __future__ import annotations

import argparse
import importlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("firmware", choices=("marlin", "grbl"))
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="firmware options, see `fabedge sim marlin --help`")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"drivers.sim.{args.firmware}")
    return int(module.main(args.options) or 0)
