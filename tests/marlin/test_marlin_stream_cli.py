"""`fabedge stream` end to end against the virtual Marlin, and the progress
mapping (edge/stream.py) from acknowledged lines to layer, percent and ETA."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.marlin import MarlinDriver
from drivers.sim.marlin import VirtualMarlin
from edge import cli, config
from edge.stream import JobProgress, open_driver
from marlin_helpers import job_commands

ROOT = Path(__file__).resolve().parents[2]
TORUS = ROOT / "tests" / "fixtures" / "slicer" / "prusa_torus.gcode"
EXAMPLE = ROOT / "config" / "fabedge.example.toml"


@pytest.fixture(scope="module")
def small_print(tmp_path_factory) -> Path:
    """The start G-code and first layer part of a real PrusaSlicer file (a few hundred lines)."""
    lines = TORUS.read_text().splitlines(keepends=True)
    path = tmp_path_factory.mktemp("gcode") / "torus_start.gcode"
    path.write_text("".join(lines[:450]))
    return path


def test_marlin_stream_cli_streams_a_checked_file_exactly_once(small_print, capsys):
    from edge.toolpath import command_lines, load
    sim = VirtualMarlin(time_scale=500.0, advanced_ok=True)
    try:
        code = cli.main(["stream", str(small_print), "--port", sim.start(), "--config", str(EXAMPLE)])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "done:" in out.out and "100.0 %" in out.out and "layer" in out.out
        expected = [c.decode() for _, c in command_lines(load(str(small_print)))]
        start = sim.executed.index("M155 S2") + 1                    # after the handshake
        assert job_commands(sim.executed, start) == expected
    finally:
        sim.stop()


def test_marlin_stream_cli_bad_file_never_reaches_the_machine(tmp_path, capsys):
    bad = tmp_path / "bad.gcode"
    bad.write_text("G28\nM104 S200\nG1 X10 Y10 F3000\nG1 X900 Y10\nM500\n")
    sim = VirtualMarlin()
    try:
        code = cli.main(["stream", str(bad), "--port", sim.start(), "--config", str(EXAMPLE)])
        err = capsys.readouterr().err
        assert code == 2
        assert f"{bad}: line 4:" in err and "line 5" in err and "nothing was sent" in err
        assert sim.pty.bytes_in == 0
    finally:
        sim.stop()


def test_marlin_stream_cli_failed_job_exits_nonzero_with_one_sentence(small_print, capsys):
    sim = VirtualMarlin(time_scale=500.0, advanced_ok=True, faults="reset-at=60")
    try:
        code = cli.main(["stream", str(small_print), "--port", sim.start(), "--config", str(EXAMPLE)])
        err = capsys.readouterr().err
        assert code == 1 and "the job failed after line" in err and "controller reset" in err
    finally:
        sim.stop()


def test_marlin_stream_progress_from_the_plan(small_print):
    from edge.toolpath import analyze
    a = analyze(small_print, config.load(EXAMPLE))
    progress = JobProgress(a, started=0.0)
    first = progress.update(1, now=1.0)
    assert first.percent == pytest.approx(100.0 * (1 - a.eta_s(1) / a.estimated_time_s))
    assert first.layer == -1 and first.elapsed_s == 1.0
    last_line = a.first_layer[1]
    later = progress.update(last_line, now=5.0)
    assert later.layer == 0 and later.eta_s < first.eta_s and later.percent > first.percent
    assert "layer 1/" in later.bar() and "0:00:05 elapsed" in later.bar()
    assert progress.update(10, now=6.0).line == last_line                    # never goes backwards


def test_marlin_open_driver_picks_marlin_from_the_config():
    cfg = config.default().replace(serial={"protocol": "marlin", "rx_buffer": 256, "command_slots": 8})
    drv = open_driver(cfg, lambda e: None, port="/dev/null")
    assert isinstance(drv, MarlinDriver) and drv.win.rx_buffer == 256 and drv.win.slots == 8


def test_marlin_open_driver_picks_grbl_for_a_laser():
    from drivers.grbl import GrblDriver
    cfg = config.default().replace(serial={"protocol": "grbl", "rx_buffer": 1024})
    drv = open_driver(cfg, lambda e: None, port="/dev/null")
    assert isinstance(drv, GrblDriver) and drv.rx_size == 1023


def test_marlin_stream_cli_ctrl_c_asks_and_cancels_safely(small_print):
    import signal
    import subprocess
    import sys
    import time

    sim = VirtualMarlin(time_scale=5.0, advanced_ok=True)               # slow enough to interrupt
    try:
        proc = subprocess.Popen([sys.executable, "-m", "edge", "stream", str(small_print), "--port", sim.start(),
                                 "--config", str(EXAMPLE)], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(sim.executed) < 40 and time.monotonic() < deadline:   # the job is streaming
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate("c\n", timeout=60)
        assert proc.returncode == 1, err
        assert "pause (p), cancel (c)" in out and "cancelled after line" in err
        sent = sim.pty.bytes_in
        time.sleep(0.3)
        assert sim.pty.bytes_in == sent                                   # nothing more went out
        assert 40 <= len(sim.executed) and not sim.halted
    finally:
        sim.stop()
