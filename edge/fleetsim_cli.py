"""The `fabedge fleet simulate` action: arguments, processes, and the run summary.

A fleet is split over several processes (shards): each agent holds about 20
file descriptors (pty, serial port, three SQLite databases, MQTT socket, wake-up
pipes) and the MQTT link waits with select(), which cannot watch descriptors
above 1023, so one process carries at most FULL_PER_PROC full or
LIGHT_PER_PROC light machines. The parent starts the shards, forwards SIGTERM,
and merges their summaries (START presses per machine, the agents' own
counters) into one JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge.errors import UsageError

FULL_PER_PROC = 30
LIGHT_PER_PROC = 90


def add_simulate(sub: Any) -> None:
    p = sub.add_parser("simulate", help="simulate a fleet: full agents on virtual firmwares, or light ones")
    p.add_argument("--broker", required=True, help="mqtt://host:port of the region's broker")
    p.add_argument("--printers", type=int, default=0, help="full printers (virtual Marlin)")
    p.add_argument("--lasers", type=int, default=0, help="full laser cutters (virtual GRBL)")
    p.add_argument("--light", type=int, default=0, metavar="N", help="light machines (instant machine, same MQTT)")
    p.add_argument("--sites", type=int, default=1)
    p.add_argument("--time-scale", type=float, default=20.0, help="simulated seconds per real second")
    p.add_argument("--trust-key", action="append", default=[], metavar="FILE.pub",
                   help="region public key(s) the machines trust (fabedge keys gen writes ID.pub)")
    p.add_argument("--workdir", default="", help="machines' state folders (default: a temp folder)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this many real seconds (0: SIGTERM)")
    p.add_argument("--summary", default="", help="write a JSON summary here at the end")
    p.add_argument("--procs", type=int, default=0, help="processes to spread the machines over (0: automatic)")
    p.add_argument("--shard", default="", help=argparse.SUPPRESS)
    p.add_argument("--start-delay", default="20,120", help="simulated seconds before START is pressed: MIN,MAX")
    p.add_argument("--clear-delay", default="30,300", help="simulated seconds before BED CLEAR: MIN,MAX")
    p.add_argument("--reject-share", type=float, default=0.05, help="share of parts judged bad at BED CLEAR")
    p.add_argument("--fail-share", type=float, default=0.03, help="share of prints aborted with STOP")
    p.add_argument("--light-job", default="60,180", help="simulated print time of a light job: MIN,MAX")
    p.add_argument("--seed", type=int, default=1)


def _span(text: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--{name} {text!r}: expected MIN,MAX in seconds") from None
    if not 0 <= lo <= hi:
        raise UsageError(f"--{name} {text!r}: need 0 <= MIN <= MAX")
    return lo, hi


def spec_from_args(args: argparse.Namespace, workdir: Path, shard: tuple[int, int]) -> Any:
    from edge.fleetsim import FleetSpec
    from edge.fleetsim_operator import Habits
    from edge.telemetry import signing

    if min(args.printers, args.lasers, args.light) < 0 or args.printers + args.lasers + args.light == 0:
        raise UsageError("give --printers, --lasers and/or --light (at least one machine)")
    if args.sites < 1 or args.time_scale <= 0:
        raise UsageError("--sites must be at least 1 and --time-scale more than 0")
    for share in ("reject_share", "fail_share"):
        if not 0 <= getattr(args, share) <= 1:
            raise UsageError(f"--{share.replace('_', '-')} {getattr(args, share)}: a share between 0 and 1")
    trust = []
    for path in args.trust_key:
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--trust-key {path}: cannot read: {exc.strerror or exc}") from None
        signing.load_public_key(text, Path(path).stem)          # a bad key fails here, naming the file
        trust.append((Path(path).stem, text))
    habits = Habits(start_delay_s=_span(args.start_delay, "start-delay"), clear_delay_s=_span(args.clear_delay,
                    "clear-delay"), reject_share=args.reject_share, fail_share=args.fail_share, seed=args.seed)
    return FleetSpec(args.broker, workdir, printers=args.printers, lasers=args.lasers, light=args.light,
                     sites=args.sites, time_scale=args.time_scale, trust=tuple(trust), habits=habits, shard=shard,
                     light_job_s=_span(args.light_job, "light-job"))


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def run(args: argparse.Namespace) -> int:
    raise_fd_limit()
    workdir = Path(args.workdir) if args.workdir else None
    if workdir is None:
        import tempfile
        workdir = Path(tempfile.mkdtemp(prefix="fabedge-fleet-"))
    if args.shard:
        index, count = (int(x) for x in args.shard.split("/"))
        return _run_shard(args, workdir, (index, count))
    procs = args.procs or max(1, math.ceil((args.printers + args.lasers) / FULL_PER_PROC)
                              + math.ceil(args.light / LIGHT_PER_PROC))
    spec_from_args(args, workdir, (0, 1))                          # validate once, before forking
    if procs == 1:
        return _run_shard(args, workdir, (0, 1))
    return _run_parent(args, workdir, procs)


def _run_parent(args: argparse.Namespace, workdir: Path, procs: int) -> int:
    argv = [a for a in sys.argv[1:] if a]
    children, paths = [], []
    for i in range(procs):
        out = workdir / f"summary-{i}.json"
        paths.append(out)
        cmd = [sys.executable, "-m", "edge", *argv, "--shard", f"{i}/{procs}", "--summary", str(out),
               "--workdir", str(workdir)]
        children.append(subprocess.Popen(cmd))
    print(f"fabedge fleet: {procs} processes, state in {workdir}", flush=True)

    def forward(*_: Any) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [c.wait() for c in children]
    merged: dict[str, Any] = {"machines": {}, "presses": {}, "aborted": 0, "rejected": 0, "light": {}, "shards": procs,
                              "cpu_s": 0.0, "max_rss_kb": []}
    for p in paths:
        try:
            part = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        _merge(merged, part)
    if args.summary:
        _write(Path(args.summary), merged)
    return max(codes) if codes else 0


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    into["machines"].update(part.get("machines", {}))
    ops = part.get("operators", {})
    into["presses"].update(ops.get("presses", {}))
    into["aborted"] += ops.get("aborted", 0)
    into["rejected"] += ops.get("rejected", 0)
    for k, v in part.get("light", {}).items():
        into["light"][k] = into["light"].get(k, 0) + v if isinstance(v, (int, float)) else v
    into["cpu_s"] += part.get("cpu_s", 0.0)
    into["max_rss_kb"].append(part.get("max_rss_kb", 0))


def _run_shard(args: argparse.Namespace, workdir: Path, shard: tuple[int, int]) -> int:
    from edge.fleetsim import FleetSim

    spec = spec_from_args(args, workdir, shard)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim = FleetSim(spec)
    t0 = time.monotonic()
    try:
        sim.start()
        ok = sim.wait_connected(120)
        print(f"fabedge fleet: shard {shard[0]}/{shard[1]}: {len(sim.full)} full and "
              f"{len(sim.light.machines) if sim.light else 0} light machines "
              f"{'connected' if ok else 'NOT all connected'} after {time.monotonic() - t0:.1f} s", flush=True)
        stop.wait(args.seconds if args.seconds > 0 else None)
    finally:
        sim.stop()
    if args.summary:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = sim.summary()
        out["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
        out["max_rss_kb"] = usage.ru_maxrss
        _write(Path(args.summary), out)
    return 0


def _write(path: Path, data: dict[str, Any]) -> None:
    from edge.watchfolder import write_atomic
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1).encode())
