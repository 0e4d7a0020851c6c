"""`fabedge firstboot`: provision from the boot partition (run once by fabedge-firstboot.service)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge import firstboot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--boot", default="auto", help="boot partition (default: /boot/firmware or /boot)")
    parser.add_argument("--etc", default="/etc/fabedge", help="where the configuration is installed")
    parser.add_argument("--state", default="/var/lib/fabedge", help="the agent's state directory")
    parser.add_argument("--cache", default="/var/cache/fabedge/numba", help="numba cache to warm")
    parser.add_argument("--no-warm", action="store_true", help="skip warming the numba cache")


def run(args: argparse.Namespace) -> int:
    boot = firstboot.find_boot_dir(args.boot)
    result = firstboot.provision(boot, Path(args.etc), Path(args.state))
    print(("OK: " if result.ok else "FAILED: ") + result.message)
    if result.ok and not args.no_warm:
        firstboot.warm_numba_cache(Path(args.cache))
    return 0 if result.ok else 2
