"""Glue between the configuration, the toolpath analysis and the machine drivers.

`open_driver(cfg, on_event)` builds the right driver for `serial.protocol`;
`JobProgress` turns the driver's per-line acknowledgements into what people
and the region want to see: percent, line, layer, elapsed and an ETA taken
from the planner's per-line times (not from bytes sent).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator

from drivers.base import EventSink, MachineDriver
from edge.config import Config

log = logging.getLogger("fabedge.stream")


def open_driver(cfg: Config, on_event: EventSink, port: str | None = None, baud: int | None = None,
                **options: Any) -> MachineDriver:
    """The Marlin or GRBL driver for this machine, constructed but not yet opened."""
    s = cfg.serial
    port, baud = port or s.port, baud or s.baud
    if s.protocol == "marlin":
        from drivers.marlin import MarlinDriver
        opts = dict(rx_buffer=s.rx_buffer, command_slots=s.command_slots, timeout_s=s.timeout_s,
                    park_gcode=list(cfg.stream.park_gcode), restore_gcode=list(cfg.stream.restore_gcode),
                    cancel_gcode=list(cfg.stream.cancel_gcode),
                    max_line_length=cfg.limits.max_line_length)
        return MarlinDriver(port, baud, on_event, **{**opts, **options})
    from drivers.grbl import GrblDriver
    opts = dict(rx_buffer=s.rx_buffer, status_hz=s.status_hz, line_error_policy=s.line_error_policy,
                timeout_s=s.timeout_s)
    return GrblDriver(port, baud, on_event, **{**opts, **options})


def stop_feeding(driver: MachineDriver | None, by: str) -> bool:
    """STOP from a button's thread: pause the streaming job at once (feed hold on GRBL), or an
    emergency stop when the driver cannot pause. True when a job was paused by this call."""
    if driver is None or not driver.busy:
        return False
    try:
        driver.pause(by)
        return True
    except Exception:
        log.exception("STOP: the driver did not pause; trying an emergency stop")
        driver.emergency_stop()
        return False


def job_lines(analysis: Any) -> Iterator[tuple[int, bytes]]:
    """The sendable (line, command) pairs of an analysed file."""
    from edge.toolpath import command_lines
    return command_lines(analysis.toolpath)


@dataclass(frozen=True)
class Progress:
    percent: float          # of planned time done (of lines when the file has no plan)
    line: int               # last acknowledged file line
    lines: int              # lines in the file
    layer: int              # 0-based, -1 before the first layer
    layers: int
    elapsed_s: float
    eta_s: float            # planned time still to go

    def bar(self, width: int = 24) -> str:
        """One terminal line: `[#####.....]  42.0 %  line 1200/5000  layer 3/40  0:01:10 elapsed  0:02:05 left`."""
        filled = int(round(width * self.percent / 100.0))
        layer = f"layer {self.layer + 1}/{self.layers}" if self.layer >= 0 else "layer -"
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.percent:5.1f} %  line {self.line}/{self.lines}  "
                f"{layer}  {_hms(self.elapsed_s)} elapsed  {_hms(self.eta_s)} left")


class JobProgress:
    """Progress of one job from LineAcked line numbers and the toolpath Analysis."""

    def __init__(self, analysis: Any, started: float | None = None) -> None:
        self.analysis = analysis
        self.started = time.monotonic() if started is None else started
        self.total_s = float(getattr(analysis, "estimated_time_s", 0.0) or 0.0)
        self.lines = int(getattr(analysis, "lines", 0) or 0)
        self.layers = int(getattr(analysis, "layers", 0) or 0)
        self.line = 0

    def update(self, line: int, now: float | None = None) -> Progress:
        self.line = max(self.line, line)
        now = time.monotonic() if now is None else now
        a = self.analysis
        if self.total_s > 0:
            eta = a.eta_s(self.line)
            percent = 100.0 * (1.0 - eta / self.total_s)
        else:
            eta = 0.0
            percent = 100.0 * self.line / self.lines if self.lines else 0.0
        return Progress(percent=max(0.0, min(100.0, percent)), line=self.line, lines=self.lines,
                        layer=a.layer_of(self.line), layers=self.layers,
                        elapsed_s=now - self.started, eta_s=eta)


def _hms(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
