"""The one streaming interface both machine drivers (Marlin, GRBL) implement.

The agent, `fabedge stream` and the benchmarks only ever see this: open the
port (never resetting the board), stream numbered command lines exactly once,
pause / resume / cancel / emergency stop, and a stream of events. Events are
delivered by calling `on_event` from the driver's own reader thread; the
receiver must only hand them on (the agent posts them to its queue).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Iterable


class DriverError(Exception):
    """The machine or its link failed; the message is one sentence for a person."""


# ---- events -------------------------------------------------------------------

@dataclass(frozen=True)
class DriverEvent:
    """Base of everything a driver reports."""


@dataclass(frozen=True)
class Connected(DriverEvent):
    firmware: str                       # e.g. "Marlin 2.1.2.1" or "Grbl 1.1h"
    capabilities: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LineAcked(DriverEvent):
    """The firmware acknowledged (accepted into its queue) this file line (1-based)."""
    line: int
    acked: int                          # lines of the job acknowledged so far


@dataclass(frozen=True)
class Temperatures(DriverEvent):
    """Current / target temperatures, e.g. {"T0": (210.1, 210.0), "B": (60.0, 60.0)}."""
    readings: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class MachineStatus(DriverEvent):
    """GRBL status report (or Marlin M114 answer)."""
    state: str                          # Idle, Run, Hold:0, Door:1, Alarm, ...
    position: tuple[float, ...] = ()
    feed: float = 0.0
    power: float = 0.0


@dataclass(frozen=True)
class Paused(DriverEvent):
    reason: str                         # "operator", "host", "door", "firmware: <words>", "first layer"
    position: tuple[float, ...] = ()    # from M114 / status, where known


@dataclass(frozen=True)
class Resumed(DriverEvent):
    pass


@dataclass(frozen=True)
class JobFinished(DriverEvent):
    lines: int                          # lines sent and acknowledged


@dataclass(frozen=True)
class JobFailed(DriverEvent):
    """The job stopped and must not be continued blindly; reason is one sentence."""
    reason: str                         # "controller reset", "thermal runaway: Error:...", "ALARM:1 Hard limit..."
    last_acked_line: int


@dataclass(frozen=True)
class JobCancelled(DriverEvent):
    last_acked_line: int


@dataclass(frozen=True)
class FirmwareMessage(DriverEvent):
    """Anything worth logging: echo:, [MSG:], //action:, warnings."""
    text: str


@dataclass(frozen=True)
class Disconnected(DriverEvent):
    reason: str


EventSink = Callable[[DriverEvent], None]
JobLines = Iterable[tuple[int, bytes]]     # (file line number, command bytes without comment/newline)


class MachineDriver(abc.ABC):
    """A machine on a serial port. Construct with (port, baud, on_event, **options)."""

    @abc.abstractmethod
    def open(self, timeout: float = 10.0) -> Connected:
        """Open the port without pulsing DTR, handshake, and return what the firmware is."""

    @abc.abstractmethod
    def start_job(self, lines: JobLines, total_lines: int | None = None) -> None:
        """Begin streaming in the driver's thread; returns at once. Events report progress."""

    @abc.abstractmethod
    def pause(self, reason: str = "operator") -> None:
        """Stop feeding at once (feed hold where the firmware has one); park per config."""

    @abc.abstractmethod
    def resume(self) -> None:
        """Continue a paused job from the next unacknowledged line."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop the job for good; nothing more of it is sent."""

    @abc.abstractmethod
    def emergency_stop(self) -> None:
        """M112 / feed hold + soft reset, ahead of everything queued. Safe from any thread."""

    @abc.abstractmethod
    def send_command(self, line: str, timeout: float = 10.0) -> list[str]:
        """Send one command outside a job and return the firmware's reply lines."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop threads and close the port (without resetting the board)."""

    @property
    @abc.abstractmethod
    def busy(self) -> bool:
        """True while a job is streaming or paused."""
