"""`fabedge doctor` on a live machine: the agent's serial port and panel pins are in use, not broken."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import serial

import drivers.gpio
from drivers.sim.marlin import VirtualMarlin
from edge import config, doctor


@pytest.fixture
def held_port():
    """A virtual Marlin whose port is held exclusively, as the Marlin driver holds it mid-print."""
    sim = VirtualMarlin(time_scale=50.0, advanced_ok=True)
    path = sim.start()
    ser = serial.Serial()
    ser.port, ser.baudrate, ser.timeout, ser.exclusive = path, 115200, 2.0, True
    ser.open()
    yield path, ser
    ser.close()
    sim.stop()


def _cfg(tmp_path: Path, port: str, **panel) -> config.Config:
    return config.from_dict({"serial": {"port": port}, "panel": {"pin_factory": "mock", **panel},
                             "paths": {"state_dir": str(tmp_path / "state")}}, "doctor-live.toml")


def test_port_held_by_the_running_agent_is_info_and_left_alone(tmp_path, held_port):
    path, ser = held_port
    check = doctor.check_serial(_cfg(tmp_path, path), timeout=1, agent=True)
    assert check.status == doctor.INFO
    assert "in use by the running fabedge agent (not opened)" in check.message
    assert "power-cycle" not in check.line()
    ser.write(b"M115\n")                       # the holder still talks to its firmware undisturbed
    assert b"FIRMWARE_NAME" in ser.read_until(b"ok\n")


def test_port_held_by_another_program_is_a_warning_without_power_cycle(tmp_path, held_port):
    path, _ser = held_port
    check = doctor.check_serial(_cfg(tmp_path, path), timeout=1, agent=False)
    assert check.status == doctor.WARN and "held by another program" in check.message
    assert "fuser -v" in check.fix and "Do not power-cycle" in check.fix


def test_pins_held_by_the_agent_are_not_claimed(tmp_path, monkeypatch):
    def claimed(*_a, **_k):
        raise AssertionError("doctor claimed the agent's pins")

    monkeypatch.setattr(drivers.gpio, "Pins", claimed)
    check = doctor.check_gpio(_cfg(tmp_path, "/dev/null"), agent=True)
    assert check.status == doctor.INFO and "9 panel pins held by the agent (not claimed)" in check.message
    cfg = _cfg(tmp_path, "/dev/null")
    cfg = dataclasses.replace(cfg, panel=dataclasses.replace(cfg.panel, led_red=cfg.panel.start))
    bad = doctor.check_gpio(cfg, agent=True)
    assert bad.status == doctor.FAIL and "used twice" in bad.message   # the config is still checked


def test_run_all_asks_systemd_once_and_passes_it_on(tmp_path, held_port):
    path, _ser = held_port
    results = {c.name: c for c in doctor.run_all(_cfg(tmp_path, path), timeout=1, agent=True)}
    assert results["serial"].status == doctor.INFO and results["gpio"].status == doctor.INFO
    assert doctor.agent_active(lambda *a, **k: subprocess.CompletedProcess(a, 0)) is True
    assert doctor.agent_active(lambda *a, **k: subprocess.CompletedProcess(a, 3)) is False

    def no_systemctl(*_a, **_k):
        raise FileNotFoundError("systemctl")

    assert doctor.agent_active(no_systemctl) is False
