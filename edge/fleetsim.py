"""`fabedge fleet simulate`: a region's worth of machines in one process, for campaigns and benchmarks.

Full machines run the very agent `fabedge run` runs (edge.agent.Agent): each has
its own virtual firmware (VirtualMarlin for printers, VirtualGrbl for lasers)
on its own pseudo-terminal, its own state folder, spool and replay store, and
its own MockFactory panel, pressed by a simulated operator (fleetsim_operator).
Nothing starts a machine but that START press, through the agent's own panel
path. Machines are spread over sites round-robin: site-00, site-01, ...
Light machines (`fleetsim_light`) exercise the same telemetry and command path
with an instant machine, for scale.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import config
from edge.fleetsim_operator import Habits, Operators, Seat

PANEL = {"pin_factory": "mock", "bed_clear_hold_s": 0.2, "reject_hold_s": 2.0, "stop_cancel_hold_s": 0.5}
HOLD_MARGIN_S = 0.1


@dataclass(frozen=True)
class FleetSpec:
    """What to simulate and where it reports."""
    broker_url: str
    workdir: Path
    printers: int = 0
    lasers: int = 0
    light: int = 0
    sites: int = 1
    time_scale: float = 20.0
    trust: tuple[tuple[str, str], ...] = ()          # (key id, public key base64)
    habits: Habits = field(default_factory=Habits)
    shard: tuple[int, int] = (0, 1)                  # (index, count): this process runs machines i % count == index
    telemetry_interval_s: float = 5.0                # simulated seconds
    heartbeat_s: float = 60.0                        # simulated seconds
    light_job_s: tuple[float, float] = (60.0, 180.0)  # simulated print time of a light machine's job


def machine_names(spec: FleetSpec) -> list[tuple[str, str, str]]:
    """(kind, site, machine id) of every machine of the fleet, in a stable order."""
    out = []
    kinds = ["printer"] * spec.printers + ["laser"] * spec.lasers + ["light"] * spec.light
    counters: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        counters[kind] = counters.get(kind, 0) + 1
        out.append((kind, f"site-{i % max(spec.sites, 1):02d}", f"{kind}-{counters[kind]:04d}"))
    return out


def machine_config(spec: FleetSpec, kind: str, site: str, machine: str, port: str) -> config.Config:
    """The same configuration a real Pi of this kind would have, with times scaled."""
    k = max(spec.time_scale, 1e-6)
    state = spec.workdir / site / machine
    over: dict[str, dict] = {
        "machine": {"id": machine, "site": site, "kind": kind, "name": f"{kind} {machine} at {site}",
                    "profile": "sim-mk3s" if kind == "printer" else "sim-laser-40w"},
        "serial": {"port": port, "timeout_s": 5.0, "protocol": "marlin" if kind == "printer" else "grbl"},
        "broker": {"url": spec.broker_url, "telemetry_interval_s": max(0.1, spec.telemetry_interval_s / k),
                   "heartbeat_s": max(1.0, spec.heartbeat_s / k)},
        "trust": {"keys": [{"id": kid, "public_key": pub} for kid, pub in spec.trust]},
        "panel": dict(PANEL),
        "paths": {"state_dir": str(state), "cache_dir": str(state / "numba")},
    }
    if kind == "laser":
        over["motion"] = {"planner": "grbl"}
        over["volume"] = {"x": [0.0, 400.0], "y": [0.0, 300.0], "z": [-10.0, 50.0]}
    else:
        over["volume"] = {"y": [-4.0, 210.0]}
    return config.default().replace(**over)


class FullMachine:
    """One agent with its firmware, panel pins and operator seat."""

    def __init__(self, spec: FleetSpec, kind: str, site: str, machine: str) -> None:
        from drivers.gpio import Pins
        self.kind, self.site, self.machine = kind, site, machine
        if kind == "printer":
            from drivers.sim.marlin import VirtualMarlin
            self.firmware: Any = VirtualMarlin(time_scale=spec.time_scale)
            port = self.firmware.start()
        else:
            from drivers.sim.grbl import VirtualGrbl
            self.firmware = VirtualGrbl(time_scale=spec.time_scale)
            port = self.firmware.start()
        self.cfg = machine_config(spec, kind, site, machine, port)
        self.pins = Pins("mock")
        self.agent: Any = None
        self.thread: threading.Thread | None = None
        p = self.cfg.panel
        self.seat = Seat(f"{site}/{machine}", self._state, self._press, self._release,
                         holds={"start": 0.05, "bed_clear": p.bed_clear_hold_s + HOLD_MARGIN_S,
                                "reject": p.bed_clear_hold_s + HOLD_MARGIN_S,
                                "stop": p.stop_cancel_hold_s + 10 * HOLD_MARGIN_S})

    def start(self) -> None:
        from edge.agent import Agent
        self.agent = Agent(self.cfg, pins=self.pins)
        self.agent.start()
        self.thread = threading.Thread(target=self.agent.run, name=f"agent-{self.machine}", daemon=True)
        self.thread.start()

    def _state(self) -> str:
        return self.agent.announced_state if self.agent is not None else ""

    def _press(self, button: str) -> None:
        self.pins.press(getattr(self.cfg.panel, button))

    def _release(self, button: str) -> None:
        self.pins.release(getattr(self.cfg.panel, button))

    def executed(self) -> list[str]:
        return list(self.firmware.executed)

    def stop(self) -> None:
        if self.agent is not None and self.thread is not None:
            self.agent.shutdown("simulation over")
            self.thread.join(20)
        self.firmware.stop()
        self.pins.close()


class FleetSim:
    """Builds this shard's machines, starts them and their operators; `stop()` ends it all."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.full: list[FullMachine] = []
        self.light: Any = None
        self.operators = Operators(spec.habits, spec.time_scale)
        self.started_at = 0.0

    def mine(self) -> list[tuple[str, str, str]]:
        index, count = self.spec.shard
        return [m for i, m in enumerate(machine_names(self.spec)) if i % count == index]

    def start(self) -> "FleetSim":
        self.started_at = time.monotonic()
        light = []
        for kind, site, machine in self.mine():
            if kind == "light":
                light.append((site, machine))
                continue
            m = FullMachine(self.spec, kind, site, machine)
            self.full.append(m)
            self.operators.add(m.seat)
        for m in self.full:
            m.start()
        if light:
            from edge.fleetsim_light import LightFleet
            self.light = LightFleet(self.spec, light).start()
        self.operators.start()
        return self

    def wait_connected(self, timeout: float = 60.0) -> bool:
        """True once every machine of this shard is connected and subscribed to its commands."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            full_ok = all(m.agent is not None and m.agent.driver_ok and m.agent.link_up for m in self.full)
            if full_ok and (self.light is None or self.light.all_connected()):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self.operators.stop()
        if self.light is not None:
            self.light.stop()
        for m in self.full:
            m.stop()

    def summary(self) -> dict[str, Any]:
        """Per machine: START presses made while armed, and the stores' own job counts."""
        from edge.jobs import JobStore
        out: dict[str, Any] = {"machines": {}, "operators": self.operators.summary()}
        for m in self.full:
            store = JobStore(Path(m.cfg.paths.state_dir) / "jobs.db", readonly=True)
            jobs = store.list(100000)
            out["machines"][m.seat.name] = {
                "kind": m.kind, "start_presses_armed": self.operators.starts_pressed(m.seat),
                "jobs": len(jobs), "counters": store.counters(),
                # homing opens every print: how often the firmware itself began a job
                "executed_g28": sum(1 for c in m.executed() if c.startswith("G28")) if m.kind == "printer" else None}
            store.close()
        if self.light is not None:
            out["light"] = self.light.summary()
        return out
