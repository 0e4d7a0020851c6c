"""The safety gate of `fabedge stream`: a real machine starts only when a person presses START on it.

`fabedge stream` is often run over SSH, far from the machine. Streaming to a
virtual firmware (a pseudo-terminal made by `fabedge sim ...`) needs no one at
a panel; anything else is treated as a real machine: the command builds the
machine's own operator panel (edge/panel.py, the same one the agent uses),
waits for START, and wires STOP to the same immediate pause the agent uses
(held: cancel). There is deliberately no flag or variable to skip this.
"""

from __future__ import annotations

import os
import queue
import stat
from typing import Any, Callable

from drivers.gpio import Pins
from edge.config import Config
from edge.errors import FabedgeError
from edge.events import AgentEvent, PauseToggled, StartPressed, StopHeld, StopPressed
from edge.panel import Panel
from edge.stream import stop_feeding

_LINUX_PTS_MAJORS = frozenset(range(136, 144))   # Unix98 pty slaves (Documentation/admin-guide/devices.txt)


class StreamRefused(FabedgeError):
    """The stream may not start: no panel to press START on, or the operator cancelled."""


def _pty_majors() -> frozenset[int]:
    """Character-device majors of pty slaves, as this kernel registered them."""
    majors = set(_LINUX_PTS_MAJORS)
    try:
        with open("/proc/devices", encoding="ascii", errors="replace") as f:
            block = False
            for line in f:
                if line.startswith("Block"):
                    block = True
                parts = line.split()
                if not block and len(parts) == 2 and parts[0].isdigit() and parts[1] in ("pts", "pty"):
                    majors.add(int(parts[0]))
    except OSError:
        pass
    return frozenset(majors)


def is_virtual_port(path: str) -> bool:
    """True when `path` (after symlinks) is a pseudo-terminal slave, i.e. a simulated firmware.

    Decided by the device node itself (character device with a pty major), not
    by the name the user typed: a symlink such as /dev/fabedge/machine pointing
    at a USB adapter is real; a missing path is treated as real.
    """
    try:
        st = os.stat(os.path.realpath(path))
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in _pty_majors()


def make_pins(factory_name: str) -> Pins:
    """The panel's pins (a seam: tests hand in MockFactory pins they can press)."""
    return Pins(factory_name)


class StartGate:
    """The machine's panel for one `fabedge stream`: START to begin, PAUSE to toggle, STOP to pause / cancel."""

    def __init__(self, cfg: Config, driver: Any) -> None:
        p = cfg.panel
        if not p.start:
            raise StreamRefused(f"machine {cfg.machine.id} has no START button in [panel] (panel.start = 0): "
                                "a real machine is only started by a person pressing START on it")
        if not p.stop:
            raise StreamRefused(f"machine {cfg.machine.id} has no STOP button in [panel] (panel.stop = 0): "
                                "refusing to stream to a machine that cannot be stopped from its panel")
        self.machine_id = cfg.machine.id
        self.driver = driver
        self.events: queue.Queue[AgentEvent] = queue.Queue(maxsize=64)
        self._hook_paused = False
        self.panel = Panel(p, self._post, stop_hook=self._stop_now, pins=make_pins(p.pin_factory))
        self.panel.show("staged", link_up=False)

    def _post(self, event: AgentEvent) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:                       # a stuck button: drop presses, never block gpiozero's thread
            pass

    def _stop_now(self) -> None:
        """STOP from the button's thread: stop feeding at once, as the agent does."""
        if stop_feeding(self.driver, "operator (STOP)"):
            self._hook_paused = True

    def wait_for_start(self, say: Callable[[str], None] = print, poll_s: float = 0.1) -> None:
        """Block until START is pressed on the machine; STOP or Ctrl-C raise StreamRefused."""
        while True:                              # presses before the prompt do not count
            try:
                self.events.get_nowait()
            except queue.Empty:
                break
        self.panel.show("armed", link_up=False)
        say(f"press START on {self.machine_id} to begin (STOP cancels)")
        try:
            while True:
                try:
                    event = self.events.get(timeout=poll_s)
                except queue.Empty:
                    continue
                if isinstance(event, (StopPressed, StopHeld)):
                    self.panel.show("idle", link_up=False, alert=True)
                    raise StreamRefused(f"STOP pressed on {self.machine_id}")
                if isinstance(event, StartPressed):
                    self.panel.show("running", link_up=False)
                    return
        except KeyboardInterrupt:
            self.panel.show("idle", link_up=False)
            raise StreamRefused("cancelled before START") from None

    def next_event(self) -> AgentEvent | None:
        try:
            return self.events.get_nowait()
        except queue.Empty:
            return None

    def handle(self, event: AgentEvent, paused: bool) -> None:
        """Panel presses while streaming: PAUSE toggles, START resumes, STOP pauses (if its hook could not: the
        job had not begun when it went down), STOP held cancels."""
        d = self.driver
        if isinstance(event, StopPressed):
            if not self._hook_paused and not paused and d.busy:
                d.pause("operator (STOP)")
            self._hook_paused = False
        elif isinstance(event, StopHeld):
            d.cancel()
        elif isinstance(event, PauseToggled):
            if paused:
                d.resume()
            elif d.busy:
                d.pause("operator")
        elif isinstance(event, StartPressed) and paused:
            d.resume()

    def show(self, state: str) -> None:
        self.panel.show(state, link_up=False)

    def close(self) -> None:
        self.panel.close()

