"""What the GRBL host driver reads and writes, as pure functions: status
reports, `$I` build info, and which lines GRBL must get one at a time.

Kept apart from drivers/grbl.py (threads and the serial port) so each rule
can be read and tested on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RT_STATUS, RT_HOLD, RT_CYCLE_START, RT_RESET = b"?", b"!", b"~", b"\x18"
RT_JOG_CANCEL = b"\x85"
REALTIME_IN_TEXT = set(b"?!~") | set(range(0x80, 0x100)) | {0x18}

_WORD = re.compile(rb"([A-Z])([-+]?[0-9]*\.?[0-9]+)")
_EEPROM_G = {10.0, 28.1, 30.1}


@dataclass(frozen=True)
class Status:
    """One `<...>` report: state (Idle, Run, Hold:0, Door:1, Alarm, ...), position, feed, power, buffers."""
    state: str
    position: tuple[float, ...] = ()
    feed: float = 0.0
    power: float = 0.0
    blocks_free: int = -1
    rx_free: int = -1


def parse_status(line: str) -> Status | None:
    """`<Run|MPos:1.000,2.000,0.000|Bf:14,100|FS:600,500>` -> Status; None if not a report."""
    if not (line.startswith("<") and line.endswith(">")):
        return None
    fields = line[1:-1].split("|")
    state, pos, feed, power, bf = fields[0], (), 0.0, 0.0, (-1, -1)
    try:
        for f in fields[1:]:
            key, _, value = f.partition(":")
            if key in ("MPos", "WPos"):
                pos = tuple(float(v) for v in value.split(","))
            elif key == "FS":
                feed, power = (float(v) for v in value.split(",")[:2])
            elif key == "F":
                feed = float(value)
            elif key == "Bf":
                b, r = value.split(",")[:2]
                bf = (int(b), int(r))
    except ValueError:
        return None
    return Status(state, pos, feed, power, bf[0], bf[1])


def parse_build_info(lines: list[str]) -> dict[str, object]:
    """`$I` answer -> {"version": "1.1h.20190825", "options": "V", "blocks": 15, "rx_buffer": 128}."""
    info: dict[str, object] = {}
    for line in lines:
        if line.startswith("[VER:") and line.endswith("]"):
            info["version"] = line[5:-1].split(":")[0]
        elif line.startswith("[OPT:") and line.endswith("]"):
            parts = line[5:-1].split(",")
            info["options"] = parts[0]
            if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
                info["blocks"], info["rx_buffer"] = int(parts[1]), int(parts[2])
    return info


def compact(line: bytes) -> bytes:
    """GRBL ignores spaces; not sending them is the cheapest throughput there is."""
    return line.replace(b" ", b"").replace(b"\t", b"").replace(b"\r", b"")


def writes_eeprom(line: bytes) -> bool:
    """`$x=`, `$Nx=`, `$RST=`, `$N`, G10, G28.1, G30.1: GRBL writes EEPROM and must get these alone."""
    up = line.upper()
    if up.startswith(b"$"):
        return not up.startswith(b"$J=") and (b"=" in up or up.startswith(b"$N"))
    return any(m.group(1) == b"G" and float(m.group(2)) in _EEPROM_G for m in _WORD.finditer(up))


def needs_idle(line: bytes) -> bool:
    """GRBL refuses most '$' commands (error:8) unless it is Idle: wait for the planner to drain first."""
    up = line.upper()
    return up.startswith(b"$") and not up.startswith((b"$J=", b"$G", b"$C", b"$X")) and up != b"$"


def is_banner(line: str) -> bool:
    return line.startswith(("Grbl ", "GrblHAL "))
