"""Signed commands from the region: parse the envelope and run the verification chain.

Every payload on `cmd/req` goes through `CommandGate.check` before anything
acts on it, in this order: size, JSON and field types (malformed / too_large),
retained flag, audience, key (known, allowed this operation), signature,
freshness, replay (the id is claimed durably here), state gate, arguments.
The first failure raises `CommandRejected` with a reason code from `CODES`
and one sentence for a person; a command id seen before raises `Replayed`
carrying the results recorded for it, so it is answered again but never run
again. The gate never acts: the agent does, and reports with `response()`.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edge.config import Config
from edge.errors import ConfigError, FabedgeError
from edge.telemetry import signing
from edge.telemetry.replay import ReplayStore

# reason code -> what it means (docs/mqtt.md lists the same table)
CODES: dict[str, str] = {
    "malformed": "not a JSON object with the envelope's fields and types",
    "too_large": "payload larger than broker.max_payload_kb",
    "retained": "delivered as a retained message; commands are never taken from retained messages",
    "wrong_audience": "aud is not this machine's <site>/<machine>",
    "unknown_key": "the signing key id is not in this machine's trust store",
    "not_allowed": "the key may not sign this operation, or the machine never takes it remotely (job.resume)",
    "bad_signature": "the Ed25519 signature does not match the canonical JSON",
    "not_yet_valid": "iat is further in the future than trust.max_clock_skew_s",
    "expired": "exp has passed",
    "replayed": "this command id was seen before; its earlier results are repeated, it is not run again",
    "wrong_state": "the operation is not accepted in the machine's current state",
    "bad_args": "the operation's arguments are missing, of the wrong type or out of range",
    "download_failed": "the job file could not be downloaded",
    "sha256_mismatch": "the job file's sha256 differs from the offer's",
    "size_mismatch": "the job file's size differs from the offer's",
    "checks_failed": "the job file fails the machine's checks (errors name line and reason)",
    "busy": "the machine cannot take this command now (e.g. another download is running)",
}

STATES = ("idle", "staged", "armed", "running", "paused", "awaiting_bed_clear", "interrupted", "fault")

# operation -> machine states in which it is accepted (published in `birth`).
# job.offer only stages a file, so it may queue behind a running job; it is refused while
# an interrupted job or a fault waits for the operator. Nothing here starts or moves a
# machine: job.resume is in no state, because continuing a paused job moves the head back
# into a work area a person may be reaching into; only the operator's press on the machine
# resumes (the region sees this as `not_allowed`).
CAPABILITIES: dict[str, list[str]] = {
    "job.offer": ["idle", "staged", "armed", "running", "paused", "awaiting_bed_clear"],
    "job.cancel": ["staged", "armed", "running", "paused", "interrupted"],
    "job.pause": ["running"],
    "job.resume": [],
    "telemetry.rate": list(STATES),
    "resync": list(STATES),
}

RESPONSE_STATUSES = ("received", "accepted", "rejected", "running", "done", "failed")
ENVELOPE_FIELDS = ("v", "id", "key", "aud", "iat", "exp", "op", "args", "sig")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
URL_SCHEMES = ("http://", "https://", "file:")
MAX_TEXT = 200


class CommandRejected(FabedgeError):
    """A command refused with a reason code; `details` go into the cmd/res payload (e.g. errors)."""

    def __init__(self, code: str, message: str, cmd_id: str | None = None, **details: Any) -> None:
        if code not in CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(message)
        self.code, self.message, self.cmd_id, self.details = code, message, cmd_id, details

    def response(self) -> dict[str, Any]:
        """The `rejected` cmd/res payload for this refusal."""
        return response(self.cmd_id, "rejected", code=self.code, reason=self.message, **self.details)


class Replayed(CommandRejected):
    """The command id was seen before: answer with `earlier_results`, never run it again."""

    def __init__(self, cmd_id: str, earlier_results: list[dict[str, Any]]) -> None:
        super().__init__("replayed", f"command {cmd_id} was already received; not running it again", cmd_id,
                         earlier=earlier_results[-1] if earlier_results else None)
        self.earlier_results = earlier_results


@dataclass(frozen=True)
class Command:
    """A command that passed every check; `args` are validated and normalised for its `op`."""
    id: str
    op: str
    args: dict[str, Any] = field(hash=False)
    key: str
    iat: float
    exp: float


def response(cmd_id: str | None, status: str, **fields: Any) -> dict[str, Any]:
    """The cmd/res payload: {"cmd_id", "status", ...fields}; the telemetry layer adds ts/seq/boot id."""
    if status not in RESPONSE_STATUSES:
        raise ValueError(f"unknown command status {status!r} (one of {', '.join(RESPONSE_STATUSES)})")
    return {"cmd_id": cmd_id, "status": status, **fields}


class CommandGate:
    """Checks raw cmd/req payloads against this machine's config, trust store and replay store."""

    def __init__(self, cfg: Config, db_path: str | Path, clock: Callable[[], float] = time.time,
                 retention_s: float = 86400.0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.audience = f"{cfg.machine.site}/{cfg.machine.id}"
        self.max_bytes = cfg.broker.max_payload_kb * 1024
        self.keys: dict[str, tuple[Any, tuple[str, ...]]] = {}
        for tk in cfg.trust.keys:
            if tk.id in self.keys:
                raise ConfigError(f"{cfg.source}: trust.keys: key id {tk.id!r} appears twice")
            unknown = [op for op in tk.operations if op != "*" and op not in CAPABILITIES]
            if unknown:
                raise ConfigError(f"{cfg.source}: trust.keys: key {tk.id!r} lists unknown operation "
                                  f"{unknown[0]!r} (known: *, {', '.join(CAPABILITIES)})")
            try:
                self.keys[tk.id] = (signing.load_public_key(tk.public_key, tk.id), tuple(tk.operations))
            except signing.KeyFileError as exc:
                raise ConfigError(f"{cfg.source}: trust.keys: {exc}") from None
        self.store = ReplayStore(db_path, retention_s)

    def check(self, raw: bytes, retained: bool, machine_state: str) -> Command:
        """Return the verified Command, or raise CommandRejected / Replayed. Never raises anything else
        for bad input; a wrong `machine_state` from the caller is a ValueError (a bug)."""
        if machine_state not in STATES:
            raise ValueError(f"unknown machine state {machine_state!r}")
        if len(raw) > self.max_bytes:
            raise CommandRejected("too_large", f"payload is {len(raw)} bytes; the limit is "
                                  f"{self.cfg.broker.max_payload_kb} KB (broker.max_payload_kb)")
        env = parse_envelope(raw)
        cmd_id = env["id"]
        if retained:
            raise CommandRejected("retained", "command arrived as a retained message; retained commands are "
                                  "ignored (publish with retain=false)", cmd_id)
        if env["aud"] != self.audience:
            raise CommandRejected("wrong_audience", f"aud {env['aud']!r} is not this machine ({self.audience})",
                                  cmd_id)
        key = self.keys.get(env["key"])
        if key is None:
            raise CommandRejected("unknown_key", f"key {env['key']!r} is not in this machine's trust store", cmd_id)
        public_key, operations = key
        if "*" not in operations and env["op"] not in operations:
            raise CommandRejected("not_allowed", f"key {env['key']!r} may not sign {env['op']!r} "
                                  f"(allowed: {', '.join(operations) or 'nothing'})", cmd_id)
        if not signing.verify(env, public_key):
            raise CommandRejected("bad_signature", f"signature does not verify with key {env['key']!r}", cmd_id)
        now = self.clock()
        skew = self.cfg.trust.max_clock_skew_s
        if env["iat"] > now + skew:
            raise CommandRejected("not_yet_valid", f"issued {env['iat'] - now:.0f} s in the future (more than "
                                  f"trust.max_clock_skew_s = {skew:.0f} s); check the clocks", cmd_id)
        if now >= env["exp"]:
            raise CommandRejected("expired", f"expired {now - env['exp']:.0f} s ago", cmd_id)
        earlier = self.store.claim(cmd_id, env["key"], env["op"], env["exp"], now)
        if earlier is not None:
            raise Replayed(cmd_id, earlier)
        try:
            if not CAPABILITIES[env["op"]]:
                raise CommandRejected("not_allowed", f"{env['op']} is never taken from the region: the operator "
                                      "continues a paused job with the RESUME press on the machine", cmd_id)
            if machine_state not in CAPABILITIES[env["op"]]:
                raise CommandRejected("wrong_state", f"{env['op']} is not accepted while the machine is "
                                      f"{machine_state} (accepted in: {', '.join(CAPABILITIES[env['op']])})",
                                      cmd_id, state=machine_state)
            args = validate_args(env["op"], env["args"], cmd_id)
        except CommandRejected as exc:
            self.store.record(cmd_id, exc.response())   # a resend gets this same answer
            raise
        return Command(id=cmd_id, op=env["op"], args=args, key=env["key"], iat=env["iat"], exp=env["exp"])

    def record(self, cmd_id: str, result: dict[str, Any]) -> None:
        """Remember a result (the final done/failed/rejected payload) so a replay repeats it."""
        self.store.record(cmd_id, result)

    def close(self) -> None:
        self.store.close()


# ---- envelope ------------------------------------------------------------------------------------

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers that disagree on which duplicate wins could verify one command and run another.
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """Decode and type-check an envelope (not its signature); CommandRejected('malformed') on any flaw."""
    try:
        env = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise CommandRejected("malformed", f"payload is not UTF-8 (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise CommandRejected("malformed", f"payload is not valid JSON: {exc}") from None
    if not isinstance(env, dict):
        raise CommandRejected("malformed", f"payload is a JSON {type(env).__name__}, not an object")
    cmd_id = env.get("id")
    cmd_id = cmd_id if isinstance(cmd_id, str) and ID_RE.fullmatch(cmd_id) else None

    def bad(msg: str) -> CommandRejected:
        return CommandRejected("malformed", msg, cmd_id)

    missing = [f for f in ENVELOPE_FIELDS if f not in env]
    if missing:
        raise bad(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(env) - set(ENVELOPE_FIELDS))
    if extra:
        raise bad(f"unknown field(s): {', '.join(extra)}")
    if env["v"] != signing.ENVELOPE_VERSION or isinstance(env["v"], bool):
        raise bad(f"v = {env['v']!r}: this machine speaks envelope version {signing.ENVELOPE_VERSION}")
    if cmd_id is None:
        raise bad("id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
    for name in ("key", "aud", "op", "sig"):
        if not isinstance(env[name], str) or not env[name]:
            raise bad(f"{name} must be a non-empty string")
    for name in ("iat", "exp"):
        if not _is_number(env[name]):
            raise bad(f"{name} must be a number (unix seconds)")
    if env["exp"] <= env["iat"]:
        raise bad("exp must be after iat")
    if env["op"] not in CAPABILITIES:
        raise bad(f"unknown operation {env['op']!r} (known: {', '.join(CAPABILITIES)})")
    if not isinstance(env["args"], dict):
        raise bad("args must be an object")
    try:
        signing.canonical_json(env)
    except ValueError as exc:
        raise bad(f"cannot be put in canonical form: {exc}") from None
    return env


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---- arguments -----------------------------------------------------------------------------------

def validate_args(op: str, args: dict[str, Any], cmd_id: str | None = None) -> dict[str, Any]:
    """Check an operation's arguments; returns a normalised copy or raises CommandRejected('bad_args')."""
    def bad(msg: str) -> CommandRejected:
        return CommandRejected("bad_args", f"{op}: {msg}", cmd_id)

    allowed = {"job.offer": {"job_id", "design", "parts", "name", "url", "gcode", "sha256", "size"},
               "job.cancel": {"job_id"}, "job.pause": {"job_id"}, "job.resume": {"job_id"},
               "telemetry.rate": {"interval_s"}, "resync": set()}[op]
    extra = sorted(set(args) - allowed)
    if extra:
        raise bad(f"unknown argument(s): {', '.join(extra)}")
    out = dict(args)
    if "job_id" in args or op in ("job.offer", "job.cancel"):
        job_id = args.get("job_id")
        if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
            raise bad("job_id must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
    if op == "job.offer":
        _offer_args(args, out, bad)
    elif op == "telemetry.rate":
        interval = args.get("interval_s")
        if not _is_number(interval) or not 0.1 <= interval <= 3600:
            raise bad("interval_s must be a number of seconds from 0.1 to 3600")
        out["interval_s"] = float(interval)
    return out


def _offer_args(args: dict[str, Any], out: dict[str, Any], bad: Callable[[str], CommandRejected]) -> None:
    design = args.get("design")
    if not isinstance(design, str) or not 0 < len(design) <= MAX_TEXT:
        raise bad(f"design must be a non-empty string of at most {MAX_TEXT} characters")
    name = args.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_TEXT:
        raise bad(f"name must be a string of at most {MAX_TEXT} characters")
    out["name"] = name
    parts = args.get("parts")
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= 100000:
        raise bad("parts must be a whole number from 1 (parts one run makes)")
    has_url, has_gcode = "url" in args, "gcode" in args
    if has_url == has_gcode:
        raise bad("give exactly one of url (a file to download) or gcode (the file's text inline)")
    if has_url:
        url = args["url"]
        if not isinstance(url, str) or not url.lower().startswith(URL_SCHEMES) or len(url) > 2048:
            raise bad("url must be an http://, https:// or file: URL")
        if "sha256" not in args or "size" not in args:
            raise bad("a url needs sha256 and size of the file")
    elif not isinstance(args["gcode"], str) or not args["gcode"]:
        raise bad("gcode must be the non-empty text of the file")
    if "sha256" in args:
        sha = args["sha256"]
        if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
            raise bad("sha256 must be 64 hexadecimal digits")
        out["sha256"] = sha.lower()
    if "size" in args:
        size = args["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise bad("size must be the file's length in bytes (a whole number >= 1)")
