"""`fabedge job add|list|show|cancel|resume`: the local job queue, beside the running agent.

The agent's loop is the only writer of the job store. This command reads the
store read-only and hands requests to the agent through its inbox folder
(`<state_dir>/inbox/`, each request one JSON file written atomically; a file to
add is copied in first), so it never races the agent. Nothing here starts a
machine: an added job is checked, staged and armed; START is pressed on the
machine. `resume` prepares resume-from-layer G-code and arms it the same way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from pathlib import Path

from edge import config
from edge.errors import UsageError
from edge.jobs import JobStore
from edge.watchfolder import write_atomic

DEFAULT_CONFIG = "/etc/fabedge/fabedge.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="queue a G-code file (checked, then armed for START)")
    add.add_argument("file")
    add.add_argument("--name", default="")
    add.add_argument("--design", default="", help="design id the region counts parts by (default: file stem)")
    add.add_argument("--parts", type=int, default=1, help="parts one run makes")
    add.add_argument("--wait", type=float, default=0.0, metavar="S",
                     help="wait up to S seconds for the agent to stage or reject it")
    ls = sub.add_parser("list", help="jobs, oldest first")
    ls.add_argument("--all", action="store_true", help="include closed jobs")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one job in full")
    show.add_argument("job_id")
    cancel = sub.add_parser("cancel", help="cancel a staged, armed, running or interrupted job")
    cancel.add_argument("job_id")
    resume = sub.add_parser("resume", help="prepare an interrupted print to resume from a layer (START confirms)")
    resume.add_argument("job_id")
    resume.add_argument("--layer", type=int, default=None, help="layer to restart (default: the one it stopped in)")


def load_config(path: str) -> config.Config:
    if path == DEFAULT_CONFIG and not Path(path).exists():
        raise UsageError(f"no config at {DEFAULT_CONFIG}: pass --config FILE (the agent's config)")
    return config.load(path)


def request(state_dir: Path, action: str, args: dict) -> Path:
    """Drop one request into the agent's inbox (atomically: the agent never sees half a file)."""
    inbox = state_dir / "inbox"
    if not inbox.is_dir():
        raise UsageError(f"{inbox} does not exist: is the agent running with state_dir = {state_dir}?")
    path = inbox / f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.json"
    write_atomic(path, json.dumps({"action": action, "args": args}).encode())
    return path


def _fmt_job(j) -> str:
    where = f"line {j.acked_line}/{j.lines}" + (f" layer {j.layer}" if j.layer >= 0 else "")
    extra = f" ({j.outcome})" if j.closed and j.outcome else ""
    err = f"  — {j.error}" if j.error else ""
    return f"{j.id:28} {j.state:11}{extra:11} {j.design or j.name:20} {where}{err}"


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    state_dir = Path(cfg.paths.state_dir)
    if args.action == "add":
        return _add(args, state_dir)
    if args.action in ("cancel", "resume"):
        store = JobStore(state_dir / "jobs.db", readonly=True)
        job = store.find(args.job_id)
        payload = {"job_id": job.id} | ({"layer": args.layer} if args.action == "resume" else {})
        req = request(state_dir, args.action, payload)
        print(f"asked the agent to {args.action} job {job.id} ({req.name})"
              + ("; press START on the machine to continue" if args.action == "resume" else ""))
        return 0
    store = JobStore(state_dir / "jobs.db", readonly=True)
    if args.action == "show":
        print(json.dumps(store.find(args.job_id).to_dict(), indent=2))
        return 0
    jobs = store.list(limit=200, open_only=not args.all)
    if args.json:
        print(json.dumps([j.to_dict() for j in jobs]))
    else:
        print(f"machine: {store.machine_state()}")
        for j in jobs:
            print(_fmt_job(j))
    return 0


def _add(args: argparse.Namespace, state_dir: Path) -> int:
    src = Path(args.file)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    if args.parts < 1:
        raise UsageError("--parts must be at least 1")
    if not (state_dir / "inbox").is_dir():
        raise UsageError(f"{state_dir / 'inbox'} does not exist: is the agent running with state_dir = {state_dir}?")
    files = state_dir / "inbox" / "files"
    files.mkdir(exist_ok=True)
    job_id = f"cli-{uuid.uuid4().hex[:10]}"
    dest = files / f"{job_id}{src.suffix or '.gcode'}"
    tmp = files / f".{dest.name}.tmp"
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    request(state_dir, "add", {"file": str(dest), "job_id": job_id, "name": args.name or src.name,
                               "design": args.design or src.stem, "parts": args.parts})
    print(f"job {job_id}: handed to the agent; it will be checked and armed (fabedge job list)")
    if args.wait <= 0:
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            job = JobStore(state_dir / "jobs.db", readonly=True).get(job_id)
        except Exception:
            job = None
        if job is not None:
            print(_fmt_job(job))
            return 2 if job.state == "rejected" else 0
        time.sleep(0.2)
    print(f"job {job_id}: not picked up within {args.wait:g} s (is the agent running?)")
    return 1
