"""`fabedge stream` to a real machine waits for START on that machine's panel; STOP pauses, held cancels.

A real USB device cannot exist here, so the tests take a simulator's pty and
declare it "real" through the one seam, `is_virtual_port`; the panel is the
real edge/panel.py on gpiozero MockFactory pins pressed like a finger would.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from drivers.gpio import Pins
from drivers.sim.grbl import VirtualGrbl
from drivers.sim.marlin import VirtualMarlin
from edge import cli, stream_gate
from edge.commands import stream as stream_cmd

ROOT = Path(__file__).resolve().parent.parent
LASER_GCODE = ROOT / "tests" / "fixtures" / "slicer" / "laser_vector_plate.gcode"
START, PAUSE, STOP = 17, 27, 22


def _gcode(tmp_path: Path, moves: int) -> Path:
    lines = ["G21", "G90", "G28"] + [f"G1 X{10 + i % 50} Y{10 + (i * 7) % 50} F3000" for i in range(moves)]
    path = tmp_path / "job.gcode"
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path: Path, extra: str = "", laser: bool = False) -> Path:
    machine = ('[machine]\nid = "laser-7"\nkind = "laser"\n[serial]\nprotocol = "grbl"\n[motion]\nplanner = "grbl"\n'
               '[volume]\nx = [0.0, 400.0]\ny = [0.0, 300.0]\nz = [0.0, 50.0]\n') if laser else \
        '[machine]\nid = "prusa-3"\n'
    path = tmp_path / "fabedge.toml"
    path.write_text(machine + '[panel]\npin_factory = "mock"\nstop_cancel_hold_s = 0.5\n' + extra)
    return path


@pytest.fixture
def real_port(monkeypatch):
    """Every port counts as a real machine; the panel's mock pins are handed back to the test."""
    monkeypatch.setattr(stream_cmd, "is_virtual_port", lambda path: False)
    pins = Pins("mock")
    monkeypatch.setattr(stream_gate, "make_pins", lambda factory: pins)
    return pins


class _Run:
    """`fabedge stream` in a thread, its output captured, so the test can press buttons meanwhile."""

    def __init__(self, argv: list[str], capsys) -> None:
        self.capsys = capsys
        self.out = ""
        self.err = ""
        self.code: int | None = None
        self.thread = threading.Thread(target=self._main, args=(argv,), daemon=True)
        self.thread.start()

    def _main(self, argv: list[str]) -> None:
        self.code = cli.main(argv)

    def read(self) -> str:
        got = self.capsys.readouterr()
        self.out += got.out
        self.err += got.err
        return self.out

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.read():
            assert time.monotonic() < deadline and self.thread.is_alive(), f"no {text!r} in {self.out!r} {self.err!r}"
            time.sleep(0.02)

    def join(self, timeout: float = 60.0) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "fabedge stream did not end"
        self.read()
        assert self.code is not None
        return self.code


def _tap(pins: Pins, pin: int, hold_s: float = 0.05) -> None:
    pins.press(pin)
    time.sleep(hold_s)
    pins.release(pin)


def _job_executed(sim: VirtualMarlin) -> list[str]:
    return [c for c in sim.executed if c.startswith("G1 ")]


def test_stream_gate_knows_a_pty_from_other_devices(tmp_path):
    master, slave = os.openpty()
    try:
        pty = os.ttyname(slave)
        link = tmp_path / "machine"
        link.symlink_to(pty)
        assert stream_gate.is_virtual_port(pty) and stream_gate.is_virtual_port(str(link))
        plain = tmp_path / "ttyUSB0"
        plain.write_text("")
        assert not stream_gate.is_virtual_port("/dev/null")              # a char device, not a pty
        assert not stream_gate.is_virtual_port(str(plain))
        assert not stream_gate.is_virtual_port(str(tmp_path / "missing"))
    finally:
        os.close(master)
        os.close(slave)


def test_stream_gate_real_port_without_config_refuses(tmp_path, real_port, capsys):
    sim = VirtualMarlin()
    try:
        code = cli.main(["stream", str(_gcode(tmp_path, 5)), "--port", sim.start()])
        err = capsys.readouterr().err
        assert code == 2 and "--config is required" in err and "nothing was sent" in err
        assert sim.pty.bytes_in == 0
    finally:
        sim.stop()


@pytest.mark.parametrize("pin, what", [("start", "no START button"), ("stop", "needs a STOP button")])
def test_stream_gate_panel_without_start_or_stop_refuses(tmp_path, real_port, capsys, pin, what):
    sim = VirtualMarlin()
    try:
        cfg = _config(tmp_path, f"{pin} = 0\n")
        code = cli.main(["stream", str(_gcode(tmp_path, 5)), "--port", sim.start(), "--config", str(cfg)])
        err = capsys.readouterr().err
        assert code != 0 and what in err and ("prusa-3" in err or str(cfg) in err)
        assert sim.pty.bytes_in == 0
    finally:
        sim.stop()


def test_stream_gate_nothing_moves_until_start_is_pressed(tmp_path, real_port, capsys):
    sim = VirtualMarlin(time_scale=500.0, advanced_ok=True)
    try:
        run = _Run(["stream", str(_gcode(tmp_path, 30)), "--port", sim.start(), "--config",
                    str(_config(tmp_path))], capsys)
        run.wait_for("press START on prusa-3 to begin (STOP cancels)")
        amber = set()
        for _ in range(50):                                               # 1 s of waiting for a person
            amber.add(real_port.level(6))
            time.sleep(0.02)
        assert amber == {True, False}                                     # amber blinks: armed
        assert _job_executed(sim) == [] and "G28" not in sim.executed and run.thread.is_alive()
        _tap(real_port, START)
        assert run.join() == 0, run.err
        assert "done:" in run.out and len(_job_executed(sim)) == 30
    finally:
        sim.stop()


def test_stream_gate_stop_before_start_cancels(tmp_path, real_port, capsys):
    sim = VirtualMarlin(time_scale=500.0, advanced_ok=True)
    try:
        run = _Run(["stream", str(_gcode(tmp_path, 10)), "--port", sim.start(), "--config",
                    str(_config(tmp_path))], capsys)
        run.wait_for("press START")
        _tap(real_port, STOP)
        assert run.join() == 1
        assert "STOP pressed on prusa-3" in run.err and "nothing was sent" in run.err
        time.sleep(0.2)
        assert _job_executed(sim) == [] and "G28" not in sim.executed
    finally:
        sim.stop()


def test_stream_gate_stop_pauses_start_resumes_stop_held_cancels(tmp_path, real_port, capsys):
    sim = VirtualMarlin(time_scale=2.0, advanced_ok=True)                 # slow enough to press buttons
    try:
        run = _Run(["stream", str(_gcode(tmp_path, 400)), "--port", sim.start(), "--config",
                    str(_config(tmp_path))], capsys)
        run.wait_for("press START")
        _tap(real_port, START)
        deadline = time.monotonic() + 30
        while len(_job_executed(sim)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        _tap(real_port, STOP)                                             # a tap pauses at once
        run.wait_for("press PAUSE or START on prusa-3 to resume")
        time.sleep(0.5)
        sent = sim.pty.bytes_in
        time.sleep(0.5)
        assert sim.pty.bytes_in - sent < 64                                # only the driver's own queries
        at_pause = len(_job_executed(sim))
        _tap(real_port, START)                                            # resuming only from the panel
        deadline = time.monotonic() + 30
        while len(_job_executed(sim)) <= at_pause + 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_job_executed(sim)) > at_pause + 3
        _tap(real_port, STOP, hold_s=0.8)                                 # held: cancel
        assert run.join() == 1
        assert "cancelled after line" in run.err and len(_job_executed(sim)) < 400
    finally:
        sim.stop()


def test_stream_gate_applies_to_grbl_lasers_too(tmp_path, real_port, capsys):
    sim = VirtualGrbl(time_scale=100.0)
    try:
        run = _Run(["stream", str(LASER_GCODE), "--port", sim.start(), "--config",
                    str(_config(tmp_path, laser=True))], capsys)
        run.wait_for("press START on laser-7 to begin")
        time.sleep(0.3)
        assert not [ln for ln in sim.executed if ln.startswith(("G1", "G0", "M3", "M4"))]
        _tap(real_port, START)
        assert run.join() == 0, run.err
        assert "done:" in run.out and [ln for ln in sim.executed if ln.startswith("G1")]
    finally:
        sim.stop()


def test_stream_gate_stop_pressed_just_before_the_job_began_still_pauses_it(tmp_path, real_port):
    """STOP down in the instant between START and the first line: the hook had nothing to pause; the loop does."""
    import queue as queue_mod

    from drivers.base import Paused
    from edge import config
    from edge.stream import open_driver
    from edge.toolpath import command_lines, load

    sim = VirtualMarlin(time_scale=2.0, advanced_ok=True)
    events: queue_mod.Queue = queue_mod.Queue()
    cfg = config.load(_config(tmp_path))
    driver = open_driver(cfg, events.put, port=sim.start())
    gate = stream_gate.StartGate(cfg, driver)
    try:
        driver.open(timeout=15)
        _tap(real_port, STOP)                                             # not busy yet: the hook cannot pause
        assert not driver.busy
        driver.start_job(command_lines(load(str(_gcode(tmp_path, 400)))))
        press = gate.next_event()
        assert press is not None
        gate.handle(press, paused=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if isinstance(events.get(timeout=0.1), Paused):
                    break
            except queue_mod.Empty:
                pass
        else:
            pytest.fail("STOP pressed before the job began did not pause it")
        assert len(_job_executed(sim)) < 400
    finally:
        gate.close()
        driver.close()
        sim.stop()
