"""Faults the virtual Marlin can inject, parsed from `--faults SPEC`.

SPEC is comma-separated `name=value`:
  ber=1e-4            bit error rate on bytes arriving from the host
  lost-ok=0.01        probability an `ok` is never sent
  double-ok=0.01      probability an `ok` is sent twice
  resend-no-ok=0.01   probability a good line is answered as corrupt: error + `Resend:` without the `ok`
  ok-storm=0.01       probability a burst of 5 unsolicited `ok`s follows a reply
  garbage=0.01        probability a line of random bytes follows a reply
  reset-at=N          the board resets (prints `start`, forgets everything) on receiving line N
  runaway-at=T        thermal runaway T machine-seconds after boot (kill, halted)
  seed=S              random seed, so a failing run can be repeated
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass


class FaultSpecError(ValueError):
    """A --faults specification that cannot be understood."""


@dataclass
class Faults:
    ber: float = 0.0
    lost_ok: float = 0.0
    double_ok: float = 0.0
    resend_no_ok: float = 0.0
    ok_storm: float = 0.0
    garbage: float = 0.0
    reset_at: int = 0
    runaway_at: float = 0.0
    seed: int = 1

    @classmethod
    def parse(cls, spec: str | None) -> "Faults":
        faults = cls()
        if not spec:
            return faults
        names = {f.name.replace("_", "-"): f for f in dataclasses.fields(cls)}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            field = names.get(name.strip())
            if field is None or not sep:
                raise FaultSpecError(f"fault {item!r}: expected one of {', '.join(n + '=' for n in names)}")
            try:
                number = int(value) if field.type in (int, "int") else float(value)
            except ValueError:
                raise FaultSpecError(f"fault {item!r}: {value!r} is not a number") from None
            if number < 0 or (isinstance(number, float) and not math.isfinite(number)):
                raise FaultSpecError(f"fault {item!r}: must be a non-negative number")
            if field.name in ("ber", "lost_ok", "double_ok", "resend_no_ok", "ok_storm", "garbage") and number > 1:
                raise FaultSpecError(f"fault {item!r}: a probability must be at most 1")
            setattr(faults, field.name, number)
        return faults


class BitFlipper:
    """Flips bits at a rate, drawing the gap to the next error (cheap at low rates)."""

    def __init__(self, ber: float, rng: random.Random) -> None:
        self.ber = ber
        self.rng = rng
        self.flips = 0
        self._gap = self._draw() if ber > 0 else -1

    def _draw(self) -> int:
        u = 1.0 - self.rng.random()
        return int(math.log(u) / math.log1p(-self.ber)) if self.ber < 1 else 0

    def apply(self, data: bytes) -> bytes:
        if self._gap < 0:
            return data
        bits = len(data) * 8
        if self._gap >= bits:
            self._gap -= bits
            return data
        out = bytearray(data)
        pos = self._gap
        while pos < bits:
            out[pos // 8] ^= 1 << (pos % 8)
            self.flips += 1
            pos += 1 + self._draw()
        self._gap = pos - bits
        return bytes(out)
