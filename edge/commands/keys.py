"""`fabedge keys gen | sign`: make a region key pair, and sign a command by hand.

`keys gen --out DIR [--id KEYID]` writes DIR/KEYID.key (private, PEM, mode
0600) and DIR/KEYID.pub (base64 public key) and prints the `[[trust.keys]]`
snippet to paste into each machine's fabedge.toml. `keys sign` prints one
signed envelope, so a person can drive a machine with mosquitto_pub:

    fabedge keys sign --key region.key --machine fablab-north/prusa-01 --op job.pause \\
      | mosquitto_pub -h broker -t fabedge/v1/fablab-north/prusa-01/cmd/req -q 1 -s
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.errors import UsageError
from edge.telemetry import signing
from edge.telemetry.commands import CAPABILITIES, ID_RE, CommandRejected, validate_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    gen = sub.add_parser("gen", help="make a region key pair and print its [[trust.keys]] entry")
    gen.add_argument("--out", required=True, help="folder for KEYID.key (private) and KEYID.pub")
    gen.add_argument("--id", default=None, help="key id (default region-YYYYMMDD)")
    gen.add_argument("--operations", default="*",
                     help="comma-separated operations this key may sign, or * (default)")
    sign = sub.add_parser("sign", help="print a signed command envelope")
    sign.add_argument("--key", required=True, help="private key file (keys gen's KEYID.key)")
    sign.add_argument("--key-id", default=None, help="key id (default: the key file's name without .key)")
    sign.add_argument("--machine", required=True, help="SITE/MACHINE, or MACHINE together with --site")
    sign.add_argument("--site", default=None, help="site id when --machine is only the machine id")
    sign.add_argument("--op", required=True, choices=sorted(CAPABILITIES))
    sign.add_argument("--args", default="{}", help="the operation's arguments as a JSON object")
    sign.add_argument("--ttl", type=float, default=300.0, help="seconds until the command expires (default 300)")
    sign.add_argument("--id", default=None, help="command id (default: a random one)")


def run(args: argparse.Namespace) -> int:
    return _gen(args) if args.action == "gen" else _sign(args)


def _gen(args: argparse.Namespace) -> int:
    key_id = args.id or time.strftime("region-%Y%m%d")
    if not ID_RE.fullmatch(key_id):
        raise UsageError(f"--id {key_id!r}: use letters, digits, '.', '_', ':' or '-'")
    operations = [op.strip() for op in args.operations.split(",") if op.strip()]
    unknown = [op for op in operations if op != "*" and op not in CAPABILITIES]
    if unknown or not operations:
        raise UsageError(f"--operations: unknown {', '.join(unknown) or '(none given)'}; "
                         f"use * or some of {', '.join(CAPABILITIES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out / f"{key_id}.key", out / f"{key_id}.pub"
    if pub_path.exists():
        raise UsageError(f"{pub_path}: already exists; choose another --id")
    key = signing.generate_private_key()
    signing.save_private_key(key, priv_path)
    public = signing.public_key_b64(key)
    signing.write_atomic(pub_path, (public + "\n").encode())
    print(f"# private key: {priv_path} (keep it on the region's signing host only)", file=sys.stderr)
    print(f"# add to each machine's fabedge.toml:", file=sys.stderr)
    print(f'[[trust.keys]]\nid = "{key_id}"\npublic_key = "{public}"\n'
          f"operations = [{', '.join(json.dumps(op) for op in operations)}]")
    return 0


def _sign(args: argparse.Namespace) -> int:
    audience = args.machine if "/" in args.machine else (f"{args.site}/{args.machine}" if args.site else None)
    if audience is None or audience.count("/") != 1 or "" in audience.split("/"):
        raise UsageError(f"--machine {args.machine!r}: give SITE/MACHINE (or --site SITE)")
    try:
        op_args = json.loads(args.args)
    except ValueError as exc:
        raise UsageError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(op_args, dict):
        raise UsageError("--args must be a JSON object, e.g. '{\"job_id\": \"j-1\"}'")
    if args.ttl <= 0:
        raise UsageError("--ttl must be a positive number of seconds")
    if args.id is not None and not ID_RE.fullmatch(args.id):
        raise UsageError(f"--id {args.id!r}: use 1-128 letters, digits, '.', '_', ':' or '-'")
    try:
        validate_args(args.op, op_args)      # fail here, not on the machine
    except CommandRejected as exc:
        raise UsageError(f"--args: {exc.message}") from None
    key_path = Path(args.key)
    key_id = args.key_id or key_path.name.removesuffix(".key")
    key = signing.load_private_key(key_path)
    envelope = signing.make_envelope(key, key_id, audience, args.op, op_args, ttl_s=args.ttl, cmd_id=args.id)
    print(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False))
    site, machine = audience.split("/")
    print(f"# publish with: mosquitto_pub -t fabedge/v1/{site}/{machine}/cmd/req -q 1 -s  (never -r)",
          file=sys.stderr)
    return 0
