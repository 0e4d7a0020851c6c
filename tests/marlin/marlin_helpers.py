"""Helpers for the Marlin tests: a recorder of driver events and job files."""

from __future__ import annotations

import math
import threading
import time

from drivers.base import JobCancelled, JobFailed, JobFinished, LineAcked

HOST_QUERIES = ("M105", "M114", "M110")   # the host's own queries and renumbering, not part of any job


class Recorder:
    """An EventSink that keeps every event and signals the end of a job."""

    def __init__(self) -> None:
        self.events: list = []
        self.acked: list[int] = []
        self.ended = threading.Event()
        self.end = None

    def __call__(self, event) -> None:
        if isinstance(event, LineAcked):
            self.acked.append(event.line)
            return
        self.events.append(event)
        if isinstance(event, (JobFinished, JobFailed, JobCancelled)):
            self.end = event
            self.ended.set()

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def wait_end(self, timeout: float = 30.0):
        assert self.ended.wait(timeout), f"the job did not end within {timeout} s: {self.events[-5:]}"
        return self.end


def curve_job(n: int = 250, feed: int = 6000) -> list[tuple[int, bytes]]:
    """(file line, command) pairs of a dense circle-ish toolpath, with a comment line now and then."""
    out = []
    line = 1
    for i in range(n):
        if i % 50 == 0:
            line += 1                                   # a comment / blank line in the file: never sent
        a = i * 2 * math.pi / 80
        cmd = f"G1 X{100 + 20 * math.cos(a):.3f} Y{100 + 20 * math.sin(a):.3f} E{0.02 * (i + 1):.4f}"
        if i == 0:
            cmd += f" F{feed}"
        out.append((line, cmd.encode()))
        line += 1
    return out


def job_commands(executed: list[str], start: int = 0) -> list[str]:
    """What the firmware executed of the job: everything from `start` but the host's status queries."""
    return [c for c in executed[start:] if not c.startswith(HOST_QUERIES)]


def wait_for(predicate, timeout: float = 5.0, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
