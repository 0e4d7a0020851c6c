"""`fabedge fleet watch --broker URL`: a live table of a region's machines over MQTT.

Subscribes to every fabedge topic, folds the messages into a FleetView
(edge/fleet.py) and prints it: refreshed every second, or once after
`--seconds` with `--once`; `--json` prints machine-readable JSON instead.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from edge.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    watch = sub.add_parser("watch", help="live table of every machine seen on the broker")
    watch.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    watch.add_argument("--once", action="store_true", help="collect for --seconds, print once and exit")
    watch.add_argument("--seconds", type=float, default=3.0, help="how long --once listens (default 3)")
    watch.add_argument("--json", action="store_true", help="print JSON instead of a table")
    watch.add_argument("--session", default="", metavar="CLIENT_ID",
                       help="keep a persistent session under this client id: events published while the "
                            "watcher was away are delivered when it returns")
    watch.add_argument("--username", default="")
    watch.add_argument("--password-file", default="", help="file holding the password")
    watch.add_argument("--ca-file", default="")
    watch.add_argument("--cert-file", default="")
    watch.add_argument("--key-file", default="")
    from edge.fleetsim_cli import add_simulate     # `fleet simulate` (region scale, edge/fleetsim*.py)
    add_simulate(sub)


def run(args: argparse.Namespace) -> int:
    if args.action == "simulate":
        from edge.fleetsim_cli import run as simulate
        return simulate(args)
    from edge.fleet import FleetView
    from edge.telemetry.client import Endpoint, Watcher
    from edge.telemetry.schema import TOPIC_PREFIX

    if args.seconds <= 0:
        raise UsageError(f"--seconds {args.seconds}: must be more than 0")
    password = None
    if args.password_file:
        with open(args.password_file) as f:   # OSError -> one clear line (edge.cli)
            password = f.read().strip()
    endpoint = Endpoint.from_url(args.broker, username=args.username, password=password, ca_file=args.ca_file,
                                 cert_file=args.cert_file, key_file=args.key_file)
    view = FleetView()
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, _retained: bool) -> None:
        with lock:
            view.apply(topic, payload)

    watcher = Watcher(endpoint, [f"{TOPIC_PREFIX}/+/+/#"], on_message, client_id=args.session,
                      persistent=bool(args.session))
    watcher.start(wait_s=10.0)
    try:
        if not watcher.connected.is_set():
            print(f"fabedge fleet: cannot reach the broker at {args.broker} (still trying)", file=sys.stderr)
            if args.once:
                return 1
        if args.once:
            time.sleep(args.seconds)
            with lock:
                print(view.to_json() if args.json else view.render())
            return 0
        while True:
            with lock:
                text = view.to_json() if args.json else view.render()
            if args.json:
                print(text, flush=True)
            else:
                sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
                sys.stdout.flush()
            time.sleep(1.0)
    finally:
        watcher.stop()
