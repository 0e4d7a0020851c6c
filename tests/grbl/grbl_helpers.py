"""Helpers for the GRBL tests: an event recorder and job lines from a G-code file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from drivers.base import DriverEvent
from drivers.sim.grbl_gcode import normalize

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slicer"


class Recorder:
    """Collects driver events; wait() blocks until an event of a type arrives."""

    def __init__(self) -> None:
        self.events: list[DriverEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: DriverEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type) -> list:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait(self, kind: type, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if isinstance(e, kind)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    notable = [e for e in self.events if type(e).__name__ not in ("LineAcked", "MachineStatus")]
                    raise AssertionError(f"no {kind.__name__} within {timeout} s; got {notable}")
                self._cond.wait(left)


def job_lines(path: Path) -> list[tuple[int, bytes]]:
    """(file line, command) for every line that carries a command, comments stripped."""
    out = []
    for i, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        cmd = raw.split(b";")[0].strip()
        if cmd:
            out.append((i, cmd))
    return out


def expected(lines: list[tuple[int, bytes]]) -> list[str]:
    return [normalize(cmd).decode() for _, cmd in lines]
