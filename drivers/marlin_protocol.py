"""Marlin's serial protocol as text: framing host lines and reading firmware replies.

Pure functions, no I/O, so the driver's state machine stays readable and the
parsing is testable on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# reply kinds
OK, RESEND, LINE_ERROR, FATAL, BUSY, START, TEMPS, ACTION, POSITION, OTHER = (
    "ok", "resend", "line-error", "fatal", "busy", "start", "temps", "action", "position", "other")

_OK_ADVANCED = re.compile(r"ok\s+N(-?\d+)\s+P(\d+)\s+B(\d+)\s*$")    # the common case, in one match
_OK_N = re.compile(r"\bN(-?\d+)")
_OK_P = re.compile(r"\bP(\d+)")
_OK_B = re.compile(r"\bB(\d+)")
_RESEND = re.compile(r"^(?:Resend|rs)\s*:?\s*N?(\d+)", re.I)
_TEMP = re.compile(r"\b(T\d?|B|C|P)\s*:\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)")
_START = re.compile(r"(?:^|[^a-z])start$")     # Marlin's boot line, maybe glued to a line it cut short
_POS = re.compile(r"\b([XYZE]):\s*(-?\d+(?:\.\d+)?)")
LINE_ERRORS = ("checksum mismatch", "line number is not last line number", "no checksum with line number",
               "no line number with checksum", "format error")
FATAL_WORDS = ("printer halted", "kill() called", "thermal runaway", "heating failed", "maxtemp", "mintemp",
               "emergency stop", "printer stopped", "redundant temp", "temperature sensor")


@dataclass(frozen=True)
class Reply:
    """One line from the firmware, classified."""
    kind: str
    text: str
    n: int | None = None                 # ok N / Resend N
    planner_free: int | None = None      # ADVANCED_OK P
    slots_free: int | None = None        # ADVANCED_OK B
    temps: dict | None = None


def checksum(data: bytes) -> int:
    """Marlin's checksum: XOR of every byte before the `*`."""
    cs = 0
    for b in data:
        cs ^= b
    return cs


def frame(n: int, command: bytes) -> bytes:
    """`G1 X5` numbered 12 -> b'N12 G1 X5*71\\n'."""
    body = b"N%d %s" % (n, command)
    return b"%s*%d\n" % (body, checksum(body))


def parse_temperatures(text: str) -> dict[str, tuple[float, float]]:
    """`T:210.1 /210.0 B:60.0 /60.0 @:0` -> {"T0": (210.1, 210.0), "B": (60.0, 60.0)}."""
    out = {}
    for name, cur, target in _TEMP.findall(text):
        key = "T0" if name == "T" else name
        out.setdefault(key, (float(cur), float(target)))
    return out


def parse_position(text: str) -> tuple[float, ...]:
    """M114's `X:1.00 Y:2.00 Z:3.00 E:4.00 Count ...` -> (1.0, 2.0, 3.0, 4.0)."""
    head = text.split("Count")[0]
    found = dict(_POS.findall(head))
    return tuple(float(found[a]) for a in "XYZE" if a in found)


def classify(raw: str) -> Reply:
    """What a firmware line means to the host."""
    text = raw.strip()
    m = _OK_ADVANCED.match(text)
    if m:
        return Reply(OK, text, n=int(m.group(1)), planner_free=int(m.group(2)), slots_free=int(m.group(3)))
    low = text.lower()
    if low.startswith("//action:"):
        return Reply(ACTION, text[len("//action:"):].strip())
    if _START.search(low):
        return Reply(START, text)
    if low.startswith("ok"):
        temps = parse_temperatures(text) if "T:" in text else None
        n = p = b = None
        rest = text[2:]
        if not temps:
            m = _OK_N.search(rest)
            n = int(m.group(1)) if m else None
            m = _OK_P.search(rest)
            p = int(m.group(1)) if m else None
            m = _OK_B.search(rest)
            b = int(m.group(1)) if m else None
        return Reply(OK, text, n=n, planner_free=p, slots_free=b, temps=temps)
    m = _RESEND.match(text)
    if m:
        return Reply(RESEND, text, n=int(m.group(1)))
    if low.startswith("error:") or low.startswith("!!"):
        if any(w in low for w in LINE_ERRORS):
            return Reply(LINE_ERROR, text)
        if any(w in low for w in FATAL_WORDS):
            return Reply(FATAL, text)
        return Reply(OTHER, text)
    if low.startswith("echo:busy") or low.startswith("busy:"):
        return Reply(BUSY, text)
    if low.startswith(("t:", "t0:")) and "/" in text:
        return Reply(TEMPS, text, temps=parse_temperatures(text))
    if low.startswith("x:") and "count" in low:
        return Reply(POSITION, text)
    return Reply(OTHER, text)


def capabilities(m115_lines: list[str]) -> tuple[str, dict[str, object]]:
    """Firmware name and `Cap:` flags from an M115 answer."""
    firmware, caps = "", {}
    for line in m115_lines:
        if "FIRMWARE_NAME:" in line:
            m = re.search(r"FIRMWARE_NAME:(.*?)(?:\s+\(|\s+SOURCE_CODE_URL:|\s+PROTOCOL_VERSION:|$)", line)
            firmware = m.group(1).strip() if m else line
        elif line.startswith("Cap:"):
            name, _, value = line[4:].partition(":")
            caps[name.strip()] = value.strip() == "1"
    return firmware, caps
