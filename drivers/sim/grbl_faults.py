"""Faults the virtual GRBL injects, parsed from a short spec.

`drop@12,corrupt@40,door@1.5,door@1.5:0.5,alarm@2.0,alarm@2.0:1,reset@30`

- `drop@N` / `corrupt@N`: the Nth G-code line received loses (or garbles) a
  byte on the wire; GRBL answers error: and the line is lost.
- `door@T[:D]`: the safety door opens T seconds after the first G-code line
  arrived (and closes again D seconds later, when given).
- `alarm@T[:CODE]`: ALARM:CODE (default 1, hard limit) at T seconds.
- `reset@N`: the controller reboots as the Nth G-code line arrives.
- `hang@T`: the controller freezes at T seconds and never answers again.
"""

from __future__ import annotations

from dataclasses import dataclass


class FaultSpecError(ValueError):
    """The --faults text is malformed; the message says which item and why."""


@dataclass
class Fault:
    kind: str           # drop | corrupt | door | alarm | reset | hang
    line: int = 0       # for line faults (1-based, G-code lines received)
    at: float = 0.0     # for timed faults, seconds after the first G-code line
    arg: float = 0.0    # door: close after; alarm: code
    fired: bool = False


LINE_KINDS = ("drop", "corrupt", "reset")
TIME_KINDS = ("door", "alarm", "hang")


def parse(spec: str) -> list[Fault]:
    faults = []
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        kind, sep, where = item.partition("@")
        if not sep or kind not in LINE_KINDS + TIME_KINDS:
            raise FaultSpecError(f"fault {item!r}: expected KIND@WHERE with KIND one of "
                                 f"{', '.join(LINE_KINDS + TIME_KINDS)}")
        value, _, extra = where.partition(":")
        try:
            if kind in LINE_KINDS:
                n = int(value)
                if n < 1 or extra:
                    raise ValueError
                faults.append(Fault(kind, line=n))
            else:
                t = float(value)
                arg = float(extra) if extra else (1.0 if kind == "alarm" else 0.0)
                if t < 0 or arg < 0:
                    raise ValueError
                faults.append(Fault(kind, at=t, arg=arg))
        except ValueError:
            form = "a line number >= 1" if kind in LINE_KINDS else "seconds >= 0 [:number]"
            raise FaultSpecError(f"fault {item!r}: after '@' expected {form}") from None
    return faults
