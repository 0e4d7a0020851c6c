"""`fabedge sim grbl` as a process, and `fabedge stream` to it with a laser config: the commands people run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from grbl_helpers import FIXTURES, expected, job_lines

ROOT = Path(__file__).resolve().parents[2]


def fabedge(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def _laser_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "laser.toml"
    cfg.write_text('[machine]\nid = "laser-1"\nkind = "laser"\n[serial]\nprotocol = "grbl"\n'
                   '[motion]\nplanner = "grbl"\n[volume]\nx = [0.0, 400.0]\ny = [0.0, 300.0]\nz = [0.0, 50.0]\n')
    return cfg


def test_sim_and_stream_commands_run_a_laser_job(tmp_path):
    log = tmp_path / "executed.log"
    cfg = _laser_config(tmp_path)
    sim = subprocess.Popen(fabedge("sim", "grbl", "--time-scale", "100", "--log", str(log), "--faults", ""),
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = sim.stdout.readline().strip()
        assert port.startswith("/dev/")
        gcode = FIXTURES / "laser_vector_plate.gcode"
        out = subprocess.run(fabedge("stream", str(gcode), "--port", port, "--config", str(cfg)), cwd=ROOT,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "Grbl 1.1h" in out.stdout and "done:" in out.stdout
    finally:
        sim.send_signal(signal.SIGTERM)
        _, err = sim.communicate(timeout=10)
    assert sim.returncode == 0
    executed = [ln for ln in log.read_text().splitlines() if not ln.startswith(";")]
    assert executed == expected(job_lines(gcode))
    assert "laser-on path" in log.read_text() and "executed" in err


def test_stream_refuses_a_laser_outside_laser_mode(tmp_path):
    log = tmp_path / "executed.log"
    cfg = _laser_config(tmp_path)
    sim = subprocess.Popen(fabedge("sim", "grbl", "--time-scale", "100", "--log", str(log), "--set", "32=0"),
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = sim.stdout.readline().strip()
        gcode = FIXTURES / "laser_vector_plate.gcode"
        out = subprocess.run(fabedge("stream", str(gcode), "--port", port, "--config", str(cfg)), cwd=ROOT,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "$32=1" in out.stderr and "nothing was sent" in out.stderr
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=10)
    job = set(expected(job_lines(gcode)))
    assert not [ln for ln in log.read_text().splitlines() if ln in job and not ln.startswith("$")]


def test_sim_rejects_a_bad_fault_spec():
    out = subprocess.run(fabedge("sim", "grbl", "--faults", "boom@1"), cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "fault 'boom@1'" in out.stderr
