"""The agent: one thread, one bounded queue, all of the machine's state.

Serial (driver events), MQTT (commands, link), buttons, the job sources and the
inspection process only post events; `Agent.run()` takes them one at a time and
is the only code that changes state (the job store, the driver's job, the
LEDs, what is announced). Every state change is committed to SQLite before it
is published. Blocking work (downloads, analysis, inspection) runs in workers
that post their results back. STOP is the one exception to "only post": the
panel calls `stop_now()` from its own thread so feeding stops within
milliseconds whatever the loop is doing.

Handlers live in mixins, one concern per module: `agent_jobs` (job sources and
region commands), `agent_run` (panel, driver events, progress, resume),
`agent_inspect` (camera checks in their own process).
"""

from __future__ import annotations

import logging
import platform
import queue
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from drivers.base import DriverEvent, LineAcked, MachineStatus, Temperatures
from edge import __version__
from edge.agent_inspect import InspectMixin
from edge.agent_jobs import JobsMixin
from edge.agent_laser import LaserMixin
from edge.agent_run import RunMixin
from edge.config import Config
from edge.events import DriverReady, DriverUnavailable, LinkChanged, Shutdown
from edge.jobs import FINISHED, Job, JobStore
from edge.panel import Panel
from edge.sdnotify import Notifier

log = logging.getLogger("fabedge.agent")

QUEUE_MAX = 4096
DROPPABLE = (LineAcked, Temperatures, MachineStatus)   # superseded by the next one of their kind
PROGRESS_FLUSH_S = 0.5
REOPEN_S = 5.0


class Agent(JobsMixin, RunMixin, InspectMixin, LaserMixin):
    """Construct, then `run()` (blocks until `shutdown()` or a Shutdown event)."""

    def __init__(self, cfg: Config, *, pins: Any = None,
                 driver_factory: Callable[[Config, Callable[[DriverEvent], None]], Any] | None = None,
                 telemetry_factory: Callable[..., Any] | None = None,
                 notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.state_dir = Path(cfg.paths.state_dir)
        self.jobs_dir = self.state_dir / "jobs"
        self.inbox_dir = self.state_dir / "inbox"
        for d in (self.state_dir, self.jobs_dir, self.inbox_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.q: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self.dropped = 0
        self.store = JobStore(self.state_dir / "jobs.db")
        self.notifier = notifier or Notifier()
        self._driver_factory = driver_factory
        self._telemetry_factory = telemetry_factory
        self._pins = pins
        self.driver: Any = None
        self.firmware = ""
        self.driver_ok = False
        self.telemetry: Any = None
        self.link_up = False
        self.panel: Panel | None = None
        self.alert = False
        self.announced_state = ""
        self.temps: dict[str, tuple[float, float]] = {}
        self.position: tuple[float, ...] = ()
        self.machine_status: dict[str, Any] | None = None
        self._running = False
        self._stopped = threading.Event()
        self._last_flush = 0.0
        self._last_sample = 0.0
        self._last_heartbeat = 0.0
        self._last_reopen = 0.0
        self._opening = False
        self._workers: list[Any] = []
        self.init_jobs()
        self.init_run()
        self.init_inspect()
        self.init_laser()
        self.laser_wear: dict[str, float] = {}

    # ---- posting (any thread) -----------------------------------------------------
    def post(self, event: Any) -> None:
        """Hand an event to the loop; progress-only events are dropped if the queue is full."""
        try:
            self.q.put_nowait(event)
        except queue.Full:
            if isinstance(event, DROPPABLE):
                self.dropped += 1
                return
            try:
                self.q.put(event, timeout=5)
            except queue.Full:     # the loop is stuck (the watchdog stops): never raise in a poster's thread
                self.dropped += 1
                log.error("event queue full for 5 s: dropped %s", type(event).__name__)

    def shutdown(self, reason: str = "requested") -> None:
        self.post(Shutdown(reason))

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Open everything; returns with the loop ready to run (also used by tests)."""
        for job in self.store.recover():
            log.warning("job %s was cut short (%s): now interrupted at line %d, layer %d; it waits for the operator",
                        job.id, job.error, job.acked_line, job.layer)
            self.interrupted_at_start.append(job)
        self.panel = Panel(self.cfg.panel, self.post, stop_hook=self.stop_now, pins=self._pins)
        self.telemetry = self._make_telemetry()
        if self.telemetry is not None:
            self.telemetry.start()
            self.publish_birth()
        for job in self.store.unsent_outcomes():
            self.send_outcome(job)
        for job in self.interrupted_at_start:
            self.announce(job, "job.interrupted", {"reason": job.error, "acked_line": job.acked_line,
                                                   "layer": job.layer})
        self.start_sources()
        self.start_inspection()
        self.open_driver_async()
        self.resume_queue_after_start()
        self.refresh_state(force=True)
        self._running = True
        self.notifier.ready(f"{self.cfg.machine.id}: {self.store.machine_state()}")

    def run(self) -> None:
        """The loop. Returns after a Shutdown event; cleans up."""
        if not self._running:
            self.start()
        try:
            while self._running:
                try:
                    event = self.q.get(timeout=0.1)
                except queue.Empty:
                    event = None
                if event is not None:
                    self.dispatch(event)
                self.periodic()
        finally:
            self.close()

    def dispatch(self, event: Any) -> None:
        handler = self.handlers.get(type(event))
        if handler is None:
            log.debug("no handler for %r", event)
            return
        try:
            handler(event)
        except Exception:
            # A bug in one handler must not kill the loop that keeps STOP and the watchdog alive.
            log.exception("handling %s failed", type(event).__name__)

    @property
    def handlers(self) -> dict[type, Callable[[Any], None]]:
        table = getattr(self, "_handlers", None)
        if table is None:
            table = {Shutdown: self.on_shutdown, LinkChanged: self.on_link, DriverReady: self.on_driver_ready,
                     DriverUnavailable: self.on_driver_unavailable}
            table.update(self.job_handlers())
            table.update(self.run_handlers())
            table.update(self.inspect_handlers())
            table.update(self.laser_handlers())
            self._handlers = table
        return table

    def periodic(self) -> None:
        now = time.monotonic()
        healthy = self.q.qsize() < QUEUE_MAX // 2
        self.notifier.watchdog(healthy)
        if now - self._last_flush >= PROGRESS_FLUSH_S:
            self._last_flush = now
            self.flush_progress()
        if self.telemetry is not None and now - self._last_sample >= self.cfg.broker.telemetry_interval_s:
            self._last_sample = now
            self.telemetry.sample(self.sample_payload())
            if self.prog is not None:
                self.telemetry.state(self.state_payload())   # progress and ETA in the retained state
        if now - self._last_heartbeat >= self.cfg.broker.heartbeat_s:
            self.refresh_state(force=True)                   # the service repeats it; this refreshes ETA
        if not self.driver_ok and not self._opening and now - self._last_reopen >= REOPEN_S:
            self.open_driver_async()

    def on_shutdown(self, event: Shutdown) -> None:
        log.info("shutting down: %s", event.reason)
        if self.pause_job(f"agent stopping ({event.reason})"):
            time.sleep(1.0)            # let the driver park the head before the port closes
        self.notifier.stopping()
        self._running = False

    def close(self) -> None:
        self.flush_progress()
        self.stop_sources()
        self.stop_inspection()
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:
                log.exception("closing the driver")
        if self.telemetry is not None:
            self.telemetry.stop()
        if self.panel is not None:
            self.panel.close()
        self.store.close()
        self.notifier.close()
        self._stopped.set()

    # ---- driver ----------------------------------------------------------------------
    def open_driver_async(self) -> None:
        """Open the serial port in a worker (opening waits for the firmware's banner).

        Each attempt builds a fresh driver; the loop adopts it on DriverReady.
        """
        self._opening = True
        self._last_reopen = time.monotonic()
        old, self.driver = self.driver, None
        timeout = self.cfg.serial.timeout_s

        def work() -> None:
            if old is not None:
                old.close()
            drv = None
            try:
                drv = self._make_driver()
                info = drv.open(timeout=timeout)
                self.post(DriverReady(getattr(info, "firmware", str(info)), driver=drv))
            except Exception as exc:   # DriverError, OSError: the port is missing or silent
                if drv is not None:
                    try:
                        drv.close()
                    except Exception:
                        pass
                self.post(DriverUnavailable(str(exc) or type(exc).__name__))
        threading.Thread(target=work, name="driver-open", daemon=True).start()

    def _make_driver(self) -> Any:
        if self._driver_factory is not None:
            return self._driver_factory(self.cfg, self.post)
        from edge.stream import open_driver
        return open_driver(self.cfg, self.post)

    def on_driver_ready(self, event: DriverReady) -> None:
        self._opening = False
        self.driver = event.driver
        self.driver_ok = True
        self.firmware = event.firmware
        if self.store.get_meta("fault").startswith("machine:"):
            self.store.set_meta("fault", "")
        self.publish_birth()
        self.refresh_state()
        self.maybe_arm()                 # a job staged while the machine was away is armed now

    def on_driver_unavailable(self, event: DriverUnavailable) -> None:
        self._opening = False
        if self.driver_ok or not self.store.get_meta("fault"):
            self.fault(f"machine: {event.reason}")
        self.driver_ok = False

    def fault(self, reason: str) -> None:
        """Persist, then announce, a machine fault (red LED)."""
        self.store.set_meta("fault", reason)
        if self.telemetry is not None:
            self.telemetry.event("machine.fault", {"reason": reason})
        self.refresh_state()

    # ---- telemetry ---------------------------------------------------------------------
    def _make_telemetry(self) -> Any:
        if self._telemetry_factory is not None:
            return self._telemetry_factory(self.cfg, self.state_dir / "spool.db",
                                           on_command=self.on_mqtt_command, on_link=self.on_mqtt_link)
        from edge.telemetry.service import Telemetry
        return Telemetry(self.cfg, self.state_dir / "spool.db", on_command=self.on_mqtt_command,
                         on_link=self.on_mqtt_link)

    def on_mqtt_link(self, up: bool) -> None:      # paho's thread
        self.post(LinkChanged(up))

    def on_link(self, event: LinkChanged) -> None:
        self.link_up = event.up
        self.show_leds()

    def publish_birth(self) -> None:
        if self.telemetry is None:
            return
        try:
            from edge.telemetry.commands import CAPABILITIES
        except ImportError:
            CAPABILITIES = {}
        m = self.cfg.machine
        self.telemetry.birth({
            "name": m.name, "kind": m.kind, "profile": m.profile,
            "limits": asdict(self.cfg.limits), "volume": asdict(self.cfg.volume),
            "capabilities": CAPABILITIES,
            "versions": {"fabedge": __version__, "python": platform.python_version(), "firmware": self.firmware},
            "counters": {**self.store.counters(), **({"laser": self.laser_wear} if self.laser_wear else {})},
            "panel": {"buttons": [b for b in ("start", "pause", "stop", "bed_clear", "reject")
                                  if getattr(self.cfg.panel, b)]},
            "camera": self.cfg.camera.source != "none",
        })

    def state_payload(self) -> dict[str, Any]:
        state = self.store.machine_state()
        job = self.store.active() or self.store.next_staged()
        out: dict[str, Any] = {"state": state, "fault": self.store.get_meta("fault"),
                               "temperatures": self.temperature_fields(),
                               "queue": len([j for j in self.store.list(200, open_only=True)
                                             if j.state == "staged"])}
        if job is not None:
            out["job"] = self.job_summary(job)
        return out

    def job_summary(self, job: Job) -> dict[str, Any]:
        out = {"id": job.id, "name": job.name, "design": job.design, "parts": job.parts,
               "state": job.state, "lines": job.lines, "layers": job.layers, "est_s": job.est_s}
        out.update(self.progress_fields(job))
        return out

    def refresh_state(self, force: bool = False) -> None:
        """Publish the retained state if it changed (it is already persisted) and set the LEDs."""
        state = self.store.machine_state()
        if force or state != self.announced_state:
            self.announced_state = state
            self._last_heartbeat = time.monotonic()
            if self.telemetry is not None:
                self.telemetry.state(self.state_payload())
            self.notifier.status(f"{self.cfg.machine.id}: {state}")
        self.show_leds()

    def show_leds(self) -> None:
        if self.panel is not None:
            self.panel.show(self.store.machine_state(), self.link_up, self.alert)

    def announce(self, job: Job, event_type: str, extra: dict[str, Any] | None = None) -> None:
        """Publish a job event (the change is already committed) and the new machine state."""
        used = self.laser_used.pop(job.id, None) if job.state in FINISHED else None
        if self.telemetry is not None:
            payload = {"job_id": job.id, "design": job.design, "name": job.name, "state": job.state,
                       "source": job.source, **(extra or {}), **({"laser_used": used} if used else {})}
            self.telemetry.event(event_type, payload)
        self.refresh_state()

    def temperature_fields(self) -> dict[str, dict[str, float]]:
        return {k: {"actual": a, "target": t} for k, (a, t) in self.temps.items()}

    def sample_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.store.machine_state(), "temperatures": self.temperature_fields(),
                               "position": list(self.position)}
        if self.machine_status is not None:          # GRBL status reports: controller state, feed, power
            out["machine"] = self.machine_status
        job = self.store.active()
        if job is not None and job.state in ("running", "paused"):
            out["job"] = {"id": job.id, **self.progress_fields(job)}
        return out
