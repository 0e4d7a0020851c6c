"""`fabedge config check FILE`: validate a configuration and say what it describes."""

from __future__ import annotations

import argparse

from edge import config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("file")


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)  # ConfigError -> one line, exit 1 (edge.cli)
    m = cfg.machine
    print(f"{args.file}: OK — {m.kind} '{m.id}' at site '{m.site}', {cfg.serial.protocol} on "
          f"{cfg.serial.port} @ {cfg.serial.baud}, volume X{cfg.volume.x} Y{cfg.volume.y} Z{cfg.volume.z}, "
          f"broker {cfg.broker.url}, {len(cfg.trust.keys)} region key(s)")
    return 0
