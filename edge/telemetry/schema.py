"""Topic names and the payload envelope every fabedge message carries.

One place decides what goes on the wire, so the region's platform, the fleet
view and docs/mqtt.md agree. Every payload is a JSON object whose envelope
fields (schema version, timestamp, clock-synchronised flag, boot id, sequence
number, message id) let the region order, deduplicate and trust it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
TOPIC_PREFIX = "fabedge/v1"

# Event types the agent publishes on evt/<type> (documented in docs/mqtt.md).
EVENT_TYPES: tuple[str, ...] = (
    "job.staged", "job.rejected", "job.armed", "job.started", "job.paused", "job.resumed",
    "job.done", "job.failed", "job.cancelled", "job.interrupted",
    "inspect.bed_clear", "inspect.first_layer", "inspect.cut",
    "part.outcome", "machine.fault", "error",
)
STATUS_VALUES = ("online", "offline", "lost")
PART_OUTCOMES = ("good", "rejected")

# The envelope keys; a payload given by the agent must not use them.
ENVELOPE_KEYS = ("v", "id", "seq", "ts", "clock_synced", "boot_id", "site", "machine", "replayed")
# Spooled messages are serialised with this exact tail so a replay can flip it without re-encoding.
_TAIL_FRESH = b',"replayed":false}'
_TAIL_REPLAYED = b',"replayed":true}'


@dataclass(frozen=True)
class Topics:
    """The topic names of one machine: fabedge/v1/<site>/<machine>/..."""
    site: str
    machine: str

    @property
    def root(self) -> str:
        return f"{TOPIC_PREFIX}/{self.site}/{self.machine}"

    @property
    def birth(self) -> str:
        return f"{self.root}/birth"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def tele(self) -> str:
        return f"{self.root}/tele"

    @property
    def cmd_req(self) -> str:
        return f"{self.root}/cmd/req"

    @property
    def cmd_res(self) -> str:
        return f"{self.root}/cmd/res"

    def evt(self, type: str) -> str:
        return f"{self.root}/evt/{type}"


@dataclass(frozen=True)
class ParsedTopic:
    site: str
    machine: str
    kind: str          # birth | status | state | tele | evt | cmd/req | cmd/res
    sub: str = ""      # the event type for evt


def parse_topic(topic: str) -> ParsedTopic | None:
    """Split a fabedge topic; None for anything that is not one (never raises)."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_PREFIX:
        return None
    site, machine, kind, rest = parts[2], parts[3], parts[4], parts[5:]
    if kind in ("birth", "status", "state", "tele") and not rest:
        return ParsedTopic(site, machine, kind)
    if kind == "evt" and len(rest) == 1 and rest[0]:
        return ParsedTopic(site, machine, "evt", rest[0])
    if kind == "cmd" and len(rest) == 1 and rest[0] in ("req", "res"):
        return ParsedTopic(site, machine, f"cmd/{rest[0]}")
    return None


def check_event_type(type: str) -> None:
    """Event types are topic levels: refuse unknown names so the contract stays documented."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; known: {', '.join(EVENT_TYPES)}")


def new_event_id() -> str:
    return uuid.uuid4().hex


_boot_id: str | None = None


def boot_id() -> str:
    """This boot's id from the kernel (changes on every reboot); cached."""
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = "unknown-" + uuid.uuid4().hex  # not Linux: one id per process
    return _boot_id


class _ClockState:
    """Is the system clock synchronised (NTP/chrony)? Asked of the kernel via adjtimex, cached.

    adjtimex(2) with modes=0 only reads; it returns TIME_ERROR (5) while the
    kernel considers the clock unsynchronised, which is what
    `timedatectl show -p NTPSynchronized` reports too, without a D-Bus call.
    """
    TIME_ERROR = 5
    TTL_S = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = False
        self._checked = -1e9
        self._adjtimex = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            self._adjtimex = libc.adjtimex
        except (OSError, AttributeError):
            self._adjtimex = None

    def _ask(self) -> bool:
        if self._adjtimex is None:
            return False
        buf = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes (first field) = 0
        rc = self._adjtimex(buf)
        return 0 <= rc < self.TIME_ERROR

    def synced(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._checked > self.TTL_S:
                self._value = self._ask()
                self._checked = now
            return self._value


clock = _ClockState()


def check_payload(payload: Any, site: str, machine: str) -> None:
    """Refuse what cannot go in an envelope: not a dict, or keys the envelope owns."""
    if not isinstance(payload, dict):
        raise ValueError(f"payload must be a dict, got {type(payload).__name__}")
    # part.outcome names its site and machine itself: fine when they agree with the envelope
    clash = [k for k in payload if k in ENVELOPE_KEYS
             and not (k in ("site", "machine") and payload[k] == {"site": site, "machine": machine}[k])]
    if clash:
        raise ValueError(f"payload uses reserved envelope key(s): {', '.join(clash)}")


def envelope(site: str, machine: str, seq: int, payload: dict[str, Any], *,
             msg_id: str | None = None, ts: float | None = None) -> dict[str, Any]:
    """The payload with the envelope fields in front (agent keys that clash are an error)."""
    check_payload(payload, site, machine)
    head = {"v": SCHEMA_VERSION, "id": msg_id or new_event_id(), "seq": seq,
            "ts": round(time.time() if ts is None else ts, 3), "clock_synced": clock.synced(),
            "boot_id": boot_id(), "site": site, "machine": machine}
    head.update(payload)
    return head


def encode(message: dict[str, Any]) -> bytes:
    """Compact JSON ending in "replayed":false (see mark_replayed)."""
    try:
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_json_default).encode()
    except ValueError:   # NaN or infinity (a sensor glitch): JSON has no such number, send null
        body = json.dumps(_finite(message), separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_json_default).encode()
    if body == b"{}":
        return b'{"replayed":false}'
    return body[:-1] + _TAIL_FRESH


def mark_replayed(body: bytes) -> bytes:
    """The same message marked as replayed after an outage (bytes produced by `encode`)."""
    if body.endswith(_TAIL_FRESH):
        return body[: -len(_TAIL_FRESH)] + _TAIL_REPLAYED
    return body


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    fn = getattr(obj, "tolist", None) or getattr(obj, "item", None)
    return _finite(fn()) if callable(fn) else obj


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths and the like: plain JSON, never a crash in the agent.
    for attr in ("item", "tolist"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            return fn()
    return str(obj)


def decode(payload: bytes) -> dict[str, Any] | None:
    """Parse a received payload; None unless it is a JSON object (never raises)."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None
