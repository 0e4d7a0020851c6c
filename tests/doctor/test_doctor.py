"""`fabedge doctor` against real pieces: a virtual Marlin on a pty, a real mosquitto, mock pins."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from drivers.sim.marlin import VirtualMarlin
from edge import config, doctor
from edge.cli import main


@pytest.fixture
def printer():
    sim = VirtualMarlin(time_scale=50.0, advanced_ok=True)
    path = sim.start()
    yield path
    sim.stop()


def _cfg(tmp_path: Path, port: str, broker_url: str, **sections) -> config.Config:
    cache = tmp_path / "cache"
    base = {"serial": {"port": port}, "broker": {"url": broker_url}, "panel": {"pin_factory": "mock"},
            "paths": {"state_dir": str(tmp_path / "state"), "cache_dir": str(cache)}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return config.from_dict(base, "doctor-test.toml")


def _by_name(results):
    return {c.name: c for c in results}


def test_all_good(tmp_path, printer, broker, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    (tmp_path / "nb" / "x").mkdir(parents=True)
    (tmp_path / "nb" / "x" / "edge_parse.nbi").write_bytes(b"")
    results = _by_name(doctor.run_all(_cfg(tmp_path, printer, broker.url), timeout=5))
    assert results["serial"].status == "OK" and "Marlin" in results["serial"].message
    assert results["broker"].status == "OK"
    assert results["gpio"].status == "OK" and "9 panel pins" in results["gpio"].message
    assert results["numba"].status == "OK"
    assert results["camera"].status == "WARN"          # no camera configured
    assert results["disk"].status in ("OK", "WARN")
    assert results["power"].status == "OK"


def test_failures_say_what_to_do(tmp_path, broker, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-cache"))
    broker.kill()
    cfg = _cfg(tmp_path, str(tmp_path / "ttyNOPE"), broker.url)
    # config.load refuses a pin used twice; doctor still catches it in a hand-built Config
    cfg = dataclasses.replace(cfg, panel=dataclasses.replace(cfg.panel, led_red=cfg.panel.start))
    results = _by_name(doctor.run_all(cfg, timeout=1))
    assert results["serial"].status == "FAIL" and "no device at" in results["serial"].message
    assert "USB cable" in results["serial"].fix
    assert results["broker"].status == "FAIL"
    assert results["gpio"].status == "FAIL" and "used twice" in results["gpio"].message
    assert results["numba"].status == "WARN"


def test_silent_port_fails_clearly(tmp_path, broker):
    import os
    import pty

    master, slave = pty.openpty()
    try:
        cfg = _cfg(tmp_path, os.ttyname(slave), broker.url)
        check = doctor.check_serial(cfg, timeout=1)
        assert check.status == "FAIL" and "does not answer" in check.message
    finally:
        os.close(master)
        os.close(slave)


def test_power_bits():
    def fake(value):
        return lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=f"throttled={value}\n")

    def on_pi(_name):
        return "/usr/bin/vcgencmd"

    cfg = config.default()
    assert doctor.check_power(cfg, which=lambda _n: None).message.startswith("not a Raspberry Pi")
    assert doctor.check_power(cfg, run=fake("0x0"), which=on_pi).status == "OK"
    under_now = doctor.check_power(cfg, run=fake("0x50005"), which=on_pi)
    assert under_now.status == "FAIL" and "under-voltage now" in under_now.message
    earlier = doctor.check_power(cfg, run=fake("0x50000"), which=on_pi)
    assert earlier.status == "WARN" and "under-voltage has occurred" in earlier.message


def test_cli_exit_code(tmp_path, printer, broker, capsys):
    path = tmp_path / "c.toml"
    path.write_text(f'[serial]\nport = "{tmp_path}/none"\n[broker]\nurl = "{broker.url}"\n'
                    f'[panel]\npin_factory = "mock"\n[paths]\nstate_dir = "{tmp_path}"\n')
    assert main(["doctor", "--config", str(path), "--timeout", "1"]) == 2
    out = capsys.readouterr().out
    assert "FAIL serial" in out and "OK   broker" in out


def test_camera_without_markers_names_them(tmp_path):
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0001.png"), np.full((720, 1280, 3), 128, np.uint8))
    cfg = config.from_dict({"camera": {"source": f"folder:{frames}"}}, "cam.toml")
    check = doctor.check_camera(cfg)
    assert check.status == "FAIL" and "markers not found" in check.message and "0" in check.message
