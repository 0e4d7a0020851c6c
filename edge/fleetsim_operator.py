"""The simulated operators of `fabedge fleet simulate`: fingers on each machine's mock panel.

One thread serves every machine of the process from a time-ordered heap (no
thread per operator, no sleeping while a button is held). An operator looks at
the machine the way a person reads its LEDs (the state the agent announced),
and after a human delay: presses START on an armed job, holds BED CLEAR (good)
or REJECT (a share of the parts) when a job has finished, and on a share of the
prints holds STOP while it runs (a failed print the operator aborts). Every
press is logged, so a run can prove that no job started without one.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Habits:
    """How the operators behave; delays are in simulated seconds (divided by the time scale)."""
    start_delay_s: tuple[float, float] = (20.0, 120.0)      # walking to an armed machine
    clear_delay_s: tuple[float, float] = (30.0, 300.0)      # taking the parts off
    reject_share: float = 0.05                               # parts judged bad at BED CLEAR
    fail_share: float = 0.03                                 # prints that go wrong and are aborted (STOP held)
    retry_s: float = 5.0                                     # real seconds before pressing again if nothing moved
    seed: int = 1


@dataclass
class Seat:
    """One machine as its operator sees it."""
    name: str                                   # site/machine
    state: Callable[[], str]                    # what the LEDs say (the announced state)
    press: Callable[[str], None]                # drive the button low
    release: Callable[[str], None]              # and high again
    holds: dict[str, float]                     # button -> seconds to hold it
    seen: str = ""
    due: dict[str, float] = field(default_factory=dict)      # action -> monotonic time it is due
    presses: list[tuple[float, str, str]] = field(default_factory=list)   # (wall time, button, state at press)


class Operators:
    """Runs the operators of many machines on one thread; `seats` may be added before start()."""

    def __init__(self, habits: Habits, time_scale: float, poll_s: float = 0.05) -> None:
        self.habits = habits
        self.time_scale = max(time_scale, 1e-6)
        self.poll_s = poll_s
        self.rng = random.Random(habits.seed)
        self.seats: list[Seat] = []
        self._heap: list[tuple[float, int, Seat, str, str]] = []     # (due, n, seat, button, "press"/"release")
        self._n = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.aborted = 0
        self.rejected = 0

    def add(self, seat: Seat) -> Seat:
        self.seats.append(seat)
        return seat

    def start(self) -> "Operators":
        self._thread = threading.Thread(target=self._run, name="operators", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _delay(self, span: tuple[float, float]) -> float:
        return self.rng.uniform(*span) / self.time_scale

    def _schedule(self, at: float, seat: Seat, button: str) -> None:
        heapq.heappush(self._heap, (at, next(self._n), seat, button, "press"))

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for seat in self.seats:
                self._look(seat, now)
            while self._heap and self._heap[0][0] <= now:
                _, _, seat, button, what = heapq.heappop(self._heap)
                self._act(seat, button, what, now)
            self._stop.wait(self.poll_s)

    def _look(self, seat: Seat, now: float) -> None:
        state = seat.state()
        if state != seat.seen:
            seat.seen = state
            seat.due.clear()
            if state == "armed":
                seat.due["start"] = now + self._delay(self.habits.start_delay_s)
            elif state == "awaiting_bed_clear":
                seat.due["clear"] = now + self._delay(self.habits.clear_delay_s)
            elif state == "running" and self.rng.random() < self.habits.fail_share:
                seat.due["stop"] = now + self.rng.uniform(0.05, 0.3)
                self.aborted += 1
            elif state == "paused":
                # only an abort pauses a simulated machine: the hold was too short to cancel
                # (a busy box woke gpiozero's hold timer late), so the operator holds STOP again
                seat.due["stop"] = now + self.habits.retry_s / 5
        for action, at in list(seat.due.items()):
            if at > now:
                continue
            seat.due[action] = now + self.habits.retry_s          # pressed again later if nothing moves
            if action == "start":
                self._schedule(now, seat, "start")
            elif action == "stop":
                if state != "paused":
                    del seat.due["stop"]            # while paused it is pressed again until it cancels
                self._schedule(now, seat, "stop")
            elif action == "clear":
                bad = self.rng.random() < self.habits.reject_share
                self.rejected += bad
                self._schedule(now, seat, "reject" if bad else "bed_clear")

    def _act(self, seat: Seat, button: str, what: str, now: float) -> None:
        if what == "press":
            seat.presses.append((time.time(), button, seat.state()))
            seat.press(button)
            heapq.heappush(self._heap, (now + seat.holds.get(button, 0.05), next(self._n), seat, button, "release"))
        else:
            seat.release(button)

    def starts_pressed(self, seat: Seat) -> int:
        """START presses made while the machine was armed."""
        return sum(1 for _, b, s in seat.presses if b == "start" and s == "armed")

    def summary(self) -> dict[str, Any]:
        return {"presses": {s.name: [[round(t, 3), b, st] for t, b, st in s.presses] for s in self.seats},
                "aborted": self.aborted, "rejected": self.rejected}
