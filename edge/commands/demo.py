"""`fabedge demo`: the whole loop on built-ins, in under a minute, on a fresh machine.

A virtual Marlin printer on a pseudo-terminal (time-scaled), a private
mosquitto on a free port, a demo region key pair, a real PrusaSlicer job
offered over MQTT and signed with that key, the START press simulated on mock
GPIO pins after a visible countdown, the job streamed with a progress bar, the
region's view printed as a subscriber sees it, BED CLEAR held and the part
counted. `DemoRig` is reused by the end-to-end tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edge import config
from edge.errors import FabedgeError

DEMO_GCODE = Path(__file__).resolve().parent.parent / "data" / "demo_nut.gcode"
KEY_ID = "demo-region"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-scale", type=float, default=12.0, help="how much faster the virtual printer runs")
    parser.add_argument("--countdown", type=int, default=3, help="seconds before the simulated START press")
    parser.add_argument("--keep", action="store_true", help="keep the demo's temp folder (state, logs)")


class DemoRig:
    """A virtual printer, a broker, a region key, an agent on mock pins, and a region subscriber."""

    def __init__(self, workdir: str | Path, broker: Any, *, time_scale: float = 20.0,
                 cfg_overrides: dict[str, dict] | None = None, printer: Any = None) -> None:
        from drivers.gpio import Pins
        from drivers.sim.marlin import VirtualMarlin
        from edge.telemetry import signing

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.key = signing.generate_private_key()
        signing.save_private_key(self.key, self.workdir / f"{KEY_ID}.key")
        self.printer_log = self.workdir / "printer.log"
        self.printer = printer or VirtualMarlin(time_scale=time_scale, log_path=str(self.printer_log))
        port = self.printer.start() if printer is None else printer.path
        over = {
            "machine": {"id": "demo-mk3s", "site": "demo-lab", "name": "Demo MK3S", "profile": "prusa-mk3s"},
            "serial": {"port": port, "timeout_s": 5.0},
            "volume": {"y": [-4.0, 210.0]},
            "broker": {"url": broker.url, "telemetry_interval_s": 0.5, "heartbeat_s": 5.0},
            "trust": {"keys": [{"id": KEY_ID, "public_key": signing.public_key_b64(self.key)}]},
            "panel": {"pin_factory": "mock"},
        }
        for section, values in (cfg_overrides or {}).items():
            over[section] = {**over.get(section, {}), **values}
        self.cfg = config.demo_printer(str(self.workdir / "state")).replace(**over)
        self.pins = Pins("mock")
        self.agent: Any = None
        self.thread: threading.Thread | None = None
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.watcher: Any = None
        self.fleet: Any = None
        self.audience = f"{self.cfg.machine.site}/{self.cfg.machine.id}"

    # ---- the region's side -------------------------------------------------------
    def watch(self, persistent: bool = False) -> None:
        from edge.fleet import FleetView
        from edge.telemetry.client import Endpoint, Watcher
        from edge.telemetry.schema import TOPIC_PREFIX

        self.fleet = FleetView()

        def on_message(topic: str, payload: bytes, _retained: bool) -> None:
            try:
                msg = json.loads(payload)
            except ValueError:
                return
            with self._lock:
                self.messages.append((topic, msg))
                self.fleet.apply(topic, payload)

        self.watcher = Watcher(Endpoint.from_url(self.broker.url), [f"{TOPIC_PREFIX}/#"], on_message,
                               client_id=f"demo-region-{id(self)}", persistent=persistent)
        self.watcher.start(wait_s=10)

    def offer(self, job_id: str, gcode_path: Path = DEMO_GCODE, design: str = "m3-nut", parts: int = 1,
              cmd_id: str | None = None) -> str:
        """Sign a job.offer with the region key and publish it on the machine's cmd/req."""
        from edge.telemetry import signing
        from edge.telemetry.schema import Topics

        if self.agent is not None:      # commands are not retained: the machine must be listening
            self.wait(lambda: self.agent.link_up, 15, "the machine to subscribe to its commands")
        data = Path(gcode_path).read_bytes()
        args = {"job_id": job_id, "design": design, "parts": parts, "name": Path(gcode_path).name,
                "gcode": data.decode(), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        env = signing.make_envelope(self.key, KEY_ID, self.audience, "job.offer", args, cmd_id=cmd_id)
        topic = Topics(self.cfg.machine.site, self.cfg.machine.id).cmd_req
        self.watcher.publish(topic, json.dumps(env).encode())
        return env["id"]

    def events(self, type_: str | None = None) -> list[dict]:
        with self._lock:
            return [m for t, m in self.messages if "/evt/" in t and (type_ is None or t.endswith("/evt/" + type_))]

    def states(self) -> list[str]:
        """Every retained machine state the subscriber saw, in order, without repeats."""
        out: list[str] = []
        with self._lock:
            for t, m in self.messages:
                if t.endswith("/state") and (not out or out[-1] != m.get("state")):
                    out.append(m.get("state"))
        return out

    def replies(self, cmd_id: str) -> list[dict]:
        with self._lock:
            return [m for t, m in self.messages if t.endswith("/cmd/res") and m.get("cmd_id") == cmd_id]

    # ---- the machine's side --------------------------------------------------------
    def start_agent(self, **kwargs: Any) -> Any:
        from edge.agent import Agent

        self.agent = Agent(self.cfg, pins=self.pins, **kwargs)
        self.agent.start()
        self.thread = threading.Thread(target=self.agent.run, name="agent-loop", daemon=True)
        self.thread.start()
        return self.agent

    def stop_agent(self) -> None:
        """Stop the agent's loop (a job still running stays `running` in the store, as after a crash)."""
        from drivers.gpio import Pins
        if self.agent is not None and self.thread is not None:
            self.agent.shutdown("demo over")
            self.thread.join(20)
            self.pins = Pins("mock")     # the panel closed its pins; a restarted agent gets fresh ones
        self.agent = self.thread = None

    def press(self, button: str, hold_s: float = 0.05) -> None:
        pin = getattr(self.cfg.panel, button)
        self.pins.press(pin)
        time.sleep(hold_s)
        self.pins.release(pin)

    @property
    def store(self) -> Any:
        """A read-only view of the agent's job store (the agent's loop is its only writer)."""
        from edge.jobs import JobStore
        if getattr(self, "_ro", None) is None:
            self._ro = JobStore(Path(self.cfg.paths.state_dir) / "jobs.db", readonly=True)
        return self._ro

    def machine_state(self) -> str:
        if self.agent is None:
            return "?"
        try:
            return self.store.machine_state()
        except FabedgeError:           # the agent is still creating its store
            return "starting"

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise FabedgeError(f"demo: timed out after {timeout:g} s waiting for {what} "
                                   f"(machine is {self.machine_state()})")
            time.sleep(0.02)

    def wait_state(self, state: str, timeout: float = 30.0) -> None:
        self.wait(lambda: self.machine_state() == state, timeout, f"state {state}")

    def executed(self) -> list[str]:
        return list(self.printer.executed)

    def close(self) -> None:
        self.stop_agent()
        if self.watcher is not None:
            self.watcher.stop()
        self.printer.stop()
        self.pins.close()


def _bar(fraction: float, width: int = 30) -> str:
    n = int(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * n + "." * (width - n) + "]"


def run(args: argparse.Namespace) -> int:
    from edge.telemetry.localbroker import LocalBroker, find_mosquitto

    try:
        find_mosquitto()
    except FabedgeError as exc:
        print(f"fabedge demo: {exc}", file=sys.stderr)
        return 1
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fabedge-demo-"))
    broker = LocalBroker(workdir=workdir / "broker").start()
    rig = None
    try:
        print(f"fabedge demo: everything lives in {workdir}")
        print(f"  region broker   mosquitto on {broker.url}")
        rig = DemoRig(workdir, broker, time_scale=args.time_scale)
        print(f"  printer         virtual Marlin on {rig.cfg.serial.port} ({args.time_scale:g}x time)")
        print(f"  region key      {KEY_ID} (Ed25519, generated just now)")
        rig.watch()
        rig.start_agent()
        rig.wait(lambda: rig.agent.driver_ok, 15, "the printer")
        print(f"  agent           {rig.cfg.machine.site}/{rig.cfg.machine.id} connected to {rig.agent.firmware}")
        print()
        cmd = rig.offer("demo-nut-1")
        print(f"region -> machine: job.offer demo-nut-1 ({DEMO_GCODE.name}, signed, command {cmd[:8]})")
        rig.wait(lambda: rig.machine_state() == "armed", 90, "the job to be checked and armed")
        job = rig.store.get("demo-nut-1")
        print(f"machine: checked {job.lines} lines, {job.layers} layers, about {job.est_s:.0f} s of printing:"
              " staged, then armed (amber LED blinking)")
        print("machine: waiting for a person to press START (nothing moves until then)")
        for n in range(args.countdown, 0, -1):
            print(f"  pressing START in {n}...", flush=True)
            time.sleep(1)
        rig.press("start")
        print(f"  START pressed (mock GPIO pin {rig.cfg.panel.start})")
        rig.wait_state("running", 10)
        tty = sys.stdout.isatty()
        last, shown = "", -1
        while rig.machine_state() == "running":
            job = rig.store.active()
            fields = rig.agent.progress_fields(job) if job else {}
            pct = fields.get("progress", 0.0) / 100.0
            line = (f"  printing {_bar(pct)} {pct * 100:5.1f}%  line {fields.get('line', 0):>4}/{job.lines if job else 0}"
                    f"  layer {max(fields.get('layer', 0), 0) + 1}/{job.layers if job else 0}"
                    f"  ETA {fields.get('eta_s', 0) / args.time_scale:3.0f} s")
            if tty and line != last:
                sys.stdout.write("\r" + line)
                sys.stdout.flush()
                last = line
            elif not tty and int(pct * 4) > shown:       # a log, not a terminal: a line per quarter
                shown = int(pct * 4)
                print(line, flush=True)
            time.sleep(0.2)
        if tty:
            print()
        print(f"  printing {_bar(1.0)} 100.0%  done")
        rig.wait_state("awaiting_bed_clear", 10)
        print(f"machine: job done; {len(rig.executed())} commands executed by the printer, "
              "waiting for BED CLEAR")
        rig.press("bed_clear", hold_s=rig.cfg.panel.bed_clear_hold_s + 0.2)
        print(f"  BED CLEAR held {rig.cfg.panel.bed_clear_hold_s + 0.2:.1f} s: parts good")
        rig.wait_state("idle", 10)
        rig.wait(lambda: rig.events("part.outcome"), 10, "the part count to reach the region")
        time.sleep(0.5)
        print()
        print("region's view (a subscriber on the broker):")
        for t, m in list(rig.messages):
            if "/evt/" in t:
                kind = t.rsplit("/", 1)[1]
                detail = ", ".join(f"{k}={m[k]}" for k in ("job_id", "outcome", "parts", "design") if k in m)
                print(f"  event {kind:15} {detail}")
        print(f"  command {cmd[:8]} answers: {' -> '.join(r['status'] for r in rig.replies(cmd))}")
        print(f"  states seen: {' -> '.join(rig.states())}")
        print()
        print(rig.fleet.render())
        print()
        print(f"demo finished in {time.monotonic() - t_start:.0f} s")
        return 0
    finally:
        if rig is not None:
            rig.close()
        broker.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
