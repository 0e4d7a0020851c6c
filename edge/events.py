"""The agent's own events: what buttons, MQTT, workers and timers post to its queue.

Driver events (`drivers.base.DriverEvent`) go on the same queue unchanged.
Every event is a small frozen dataclass; the loop dispatches on its type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentEvent:
    """Base of everything the agent's loop handles besides driver events."""


# ---- operator panel ---------------------------------------------------------------

@dataclass(frozen=True)
class StartPressed(AgentEvent):
    held_s: float                      # how long START was held (a long hold overrides an occupied bed)


@dataclass(frozen=True)
class PauseToggled(AgentEvent):
    pass


@dataclass(frozen=True)
class StopPressed(AgentEvent):
    """STOP went down: feeding was already stopped by the panel's direct hook."""


@dataclass(frozen=True)
class StopHeld(AgentEvent):
    """STOP held for `panel.stop_cancel_hold_s`: cancel the job."""


@dataclass(frozen=True)
class BedCleared(AgentEvent):
    outcome: str                       # "good" | "rejected"


# ---- telemetry / region -------------------------------------------------------------

@dataclass(frozen=True)
class CommandReceived(AgentEvent):
    raw: bytes = field(repr=False)
    retained: bool


@dataclass(frozen=True)
class LinkChanged(AgentEvent):
    up: bool


# ---- workers --------------------------------------------------------------------------

@dataclass(frozen=True)
class JobPrepared(AgentEvent):
    """A worker downloaded / copied and analysed a job: ready to stage, or rejected."""
    job_id: str
    source: str                        # "mqtt" | "folder" | "cli"
    path: str = ""
    sha256: str = ""
    meta: dict[str, Any] = field(default_factory=dict)   # design, parts, name, lines, layers, estimated_time_s
    cmd_id: str = ""                   # region command that offered it
    error_code: str = ""               # set when rejected (e.g. checks_failed)
    error: str = ""                    # one sentence naming line and reason
    findings: tuple[tuple[int, str], ...] = ()
    analysis: Any = field(default=None, compare=False, repr=False)   # edge.toolpath Analysis


@dataclass(frozen=True)
class ResumePrepared(AgentEvent):
    """A worker wrote the resume-from-layer file for an interrupted job (or could not)."""
    job_id: str
    layer: int = -1
    path: str = ""
    preamble_lines: int = 0
    base_line: int = 0                 # the job file's line the resumed part starts at
    error: str = ""
    analysis: Any = field(default=None, compare=False, repr=False)   # of the resume file
    original: Any = field(default=None, compare=False, repr=False)   # of the job file (layers, ETA)


@dataclass(frozen=True)
class LocalFileFound(AgentEvent):
    """A G-code file appeared in the watched folder (complete: its size was stable)."""
    path: str


@dataclass(frozen=True)
class InboxRequest(AgentEvent):
    """A request from `fabedge job ...` dropped into the inbox folder."""
    action: str                        # add | cancel | resume | close
    args: dict[str, Any]
    request_path: str


@dataclass(frozen=True)
class InspectionDone(AgentEvent):
    kind: str                          # bed_clear | first_layer | cut
    job_id: str
    verdict: str                       # clear | occupied | pass | warn | fail | error
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    overlay_path: str = ""
    overlay_sha256: str = ""


@dataclass(frozen=True)
class DriverReady(AgentEvent):
    firmware: str
    driver: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DriverUnavailable(AgentEvent):
    reason: str


@dataclass(frozen=True)
class Tick(AgentEvent):
    """Posted by the loop's own timer: heartbeat, samples, progress flush."""


@dataclass(frozen=True)
class Shutdown(AgentEvent):
    reason: str = "signal"
