"""`fabedge region campaign add|run|status` and `fabedge region report`: a region's side of the contract.

    fabedge region campaign add --db campaign.db --design headband --quantity 5000 \\
        --gcode printer=headband.gcode --gcode laser=visor.gcode [--parts-per-job 4]
    fabedge region campaign run --db campaign.db --broker mqtt://region:1883 \\
        --key /secure/region-2026.key [--key-id region-2026] [--lease-s 900] [--exit-when-done]
    fabedge region campaign status --db campaign.db
    fabedge region report --db campaign.db [--json]

`run` can be stopped (or killed) and started again at any time: its state is
in the database and its MQTT session is persistent.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from edge.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    camp = sub.add_parser("campaign", help="register designs and dispatch their jobs to idle machines")
    csub = camp.add_subparsers(dest="campaign_action", required=True)
    add = csub.add_parser("add", help="register a design and the quantity wanted")
    add.add_argument("--db", required=True, help="the campaign database (SQLite)")
    add.add_argument("--design", required=True)
    add.add_argument("--quantity", type=int, required=True, help="good parts wanted")
    add.add_argument("--gcode", action="append", default=[], metavar="KIND=FILE",
                     help="printer=FILE, laser=FILE or profile:NAME=FILE (repeat for each)")
    add.add_argument("--parts-per-job", type=int, default=1, help="parts one run of the file makes")
    run_p = csub.add_parser("run", help="offer jobs until stopped (or until every quantity is made)")
    run_p.add_argument("--db", required=True)
    run_p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    run_p.add_argument("--key", required=True, help="the region's private key file (fabedge keys gen)")
    run_p.add_argument("--key-id", default="", help="its id in the machines' trust store (default: file stem)")
    run_p.add_argument("--lease-s", type=float, default=900.0,
                       help="seconds an offered job may wait for START before it is cancelled and re-offered")
    run_p.add_argument("--exit-when-done", action="store_true", help="exit once every quantity is made")
    run_p.add_argument("--username", default="")
    run_p.add_argument("--password-file", default="")
    run_p.add_argument("--ca-file", default="")
    run_p.add_argument("--cert-file", default="")
    run_p.add_argument("--key-file", default="")
    run_p.add_argument("-v", "--verbose", action="store_true", help="log every offer and part")
    st = csub.add_parser("status", help="designs, parts made, jobs on their way")
    st.add_argument("--db", required=True)
    rep = sub.add_parser("report", help="parts good / rejected per design, site and day, and the rate per day")
    rep.add_argument("--db", required=True)
    rep.add_argument("--json", action="store_true")


def _open(db: str, must_exist: bool = True):
    from edge.region.store import CampaignStore
    if must_exist and not Path(db).exists():
        raise UsageError(f"{db}: no such campaign database (create it with 'fabedge region campaign add')")
    return CampaignStore(db)


def run(args: argparse.Namespace) -> int:
    if args.action == "report":
        from edge.region import report
        store = _open(args.db)
        data = report.summary(store)
        print(report.to_json(data) if args.json else report.render(data))
        return 0
    if args.campaign_action == "add":
        from edge.region.designs import register
        store = _open(args.db, must_exist=False)
        print(json.dumps(register(store, args.design, args.quantity, args.gcode, args.parts_per_job), indent=1))
        return 0
    if args.campaign_action == "status":
        return _status(_open(args.db))
    return _run(args)


def _status(store) -> int:
    from edge.region.store import OPEN
    for d in store.designs(active_only=False):
        print(f"{d.name}: {store.good_parts(d.name)} good of {d.quantity}, {store.in_flight(d.name)} on their way"
              f"{'' if d.active else ' (inactive)'}")
    counts: dict[str, int] = {}
    for j in store.jobs():
        counts[j.status] = counts.get(j.status, 0) + 1
    print("jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    print(f"machines: {len(store.machines())} seen, {len({(j.site, j.machine) for j in store.jobs(OPEN)})} busy "
          "with an offered job")
    return 0


def _run(args: argparse.Namespace) -> int:
    from edge.region.campaign import Dispatcher, run_dispatcher
    from edge.telemetry import signing
    from edge.telemetry.endpoint import Endpoint

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    store = _open(args.db)
    if not store.designs():
        raise UsageError(f"{args.db}: no active design; add one with 'fabedge region campaign add'")
    if args.lease_s <= 0:
        raise UsageError(f"--lease-s {args.lease_s}: must be more than 0")
    key = signing.load_private_key(args.key)
    key_id = args.key_id or Path(args.key).stem
    password = Path(args.password_file).read_text().strip() if args.password_file else None
    endpoint = Endpoint.from_url(args.broker, username=args.username, password=password, ca_file=args.ca_file,
                                 cert_file=args.cert_file, key_file=args.key_file)
    dispatcher = Dispatcher(store, key, key_id, lease_s=args.lease_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sent = run_dispatcher(dispatcher, endpoint, stop=stop, exit_when_done=args.exit_when_done)
    except KeyboardInterrupt:
        sent = 0
    print(f"fabedge region: {sent} offers sent in this run", file=sys.stderr)
    _status(store)
    store.close()
    return 0
