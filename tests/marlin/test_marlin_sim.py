"""The virtual Marlin itself, spoken to with plain pyserial on its pty: Marlin's
exact strings, buffers, blocking, the emergency parser and the command line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from drivers.marlin_protocol import frame
from drivers.sim.marlin import VirtualMarlin
from drivers.sim.marlin_faults import Faults, FaultSpecError
from marlin_helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def link():
    """(sim, port, read_until) with a fresh virtual Marlin (time-scaled) and a raw pyserial port."""
    sims = []

    def make(**kwargs):
        sim = VirtualMarlin(**{"time_scale": 50.0, **kwargs})
        sims.append(sim)
        port = serial.Serial(sim.start(), 115200, timeout=0.05)
        sims.append(port)

        def read_until(predicate, timeout: float = 2.0) -> list[str]:
            got, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = port.readline().decode("latin-1").strip()
                if line:
                    got.append(line)
                    if predicate(line):
                        return got
            raise AssertionError(f"not seen within {timeout} s; got {got}")

        return sim, port, read_until

    yield make
    for s in reversed(sims):
        (s.close if isinstance(s, serial.Serial) else s.stop)()


def test_marlin_sim_boots_and_answers_m115_with_capabilities(link):
    sim, port, read_until = link(advanced_ok=True)
    assert sim.boots == 1                                      # printed `start` before the port was opened
    port.write(b"M115\n")
    lines = read_until(lambda l: l.startswith("ok"))
    assert any(l.startswith("FIRMWARE_NAME:Marlin 2.1") for l in lines)
    assert "Cap:ADVANCED_OK:1" in lines and "Cap:EMERGENCY_PARSER:1" in lines and "Cap:AUTOREPORT_TEMP:1" in lines


def test_marlin_sim_line_errors_use_marlins_exact_strings(link):
    sim, port, read_until = link()
    port.write(frame(0, b"M110 N0") + b"N1 G1 X1*0\n")
    got = read_until(lambda l: l.startswith("Resend"))
    assert "Error:checksum mismatch, Last Line: 0" in got and got[-1] == "Resend: 1"
    assert read_until(lambda l: l.startswith("ok"))[-1] == "ok"
    port.write(frame(5, b"G1 X1"))
    assert "Error:Line Number is not Last Line Number+1, Last Line: 0" in read_until(lambda l: l.startswith("Resend"))
    port.write(b"N1 G1 X1\n")
    assert "Error:No Checksum with line number, Last Line: 0" in read_until(lambda l: l.startswith("Resend"))
    port.write(frame(1, b"G1 X2 F6000") + b"M999\n")
    read_until(lambda l: l.startswith("ok"))
    assert 'echo:Unknown command: "M999"' in read_until(lambda l: "Unknown" in l)
    assert sim.executed == ["M110 N0", "G1 X2 F6000"]            # errors and unknowns never execute


def test_marlin_sim_advanced_ok_reports_line_planner_and_slots(link):
    sim, port, read_until = link(advanced_ok=True, bufsize=4, block_buffer=16)
    port.write(frame(0, b"M110 N0"))
    assert read_until(lambda l: l.startswith("ok"))[-1] == "ok N0 P15 B3"


def test_marlin_sim_rx_overflow_loses_bytes_while_blocked(link):
    sim, port, read_until = link(rx_size=128, time_scale=1.0)
    port.write(b"G4 S5\n")                                      # blocks: serial is not read meanwhile
    assert wait_for(lambda: sim.executed == ["G4 S5"])
    port.write(b"G1 X10 Y10 F3000\n" * 20)                      # 340 bytes into a 128-byte buffer
    assert wait_for(lambda: sim.rx_lost > 0, timeout=1)
    assert len(sim.rx) == 127


def test_marlin_sim_busy_while_blocked_and_temperature_reports(link):
    sim, port, read_until = link()
    port.write(b"G4 S10\n")                                     # 10 machine-seconds = 0.2 s at 50x
    got = read_until(lambda l: l == "ok")
    assert "echo:busy: processing" in got
    port.write(b"M104 S200\nM105\n")
    assert any(l.startswith("ok T:") and "/200.00" in l for l in read_until(lambda l: l.startswith("ok T:")))
    port.write(b"M155 S1\n")
    assert read_until(lambda l: l.startswith("T:"))[-1].startswith("T:")


def test_marlin_sim_emergency_parser_kills_even_with_buffers_full(link):
    sim, port, read_until = link(time_scale=1.0, bufsize=4)
    port.write(b"".join(b"G1 X%d F600\n" % (10 * (i % 2)) for i in range(40)))   # planner, slots, RX fill up
    assert wait_for(lambda: sim.buffers_full() and len(sim.rx) > 0, timeout=5)
    port.write(b"M112\n")
    assert "Error:Printer halted. kill() called!" in read_until(lambda l: "halted" in l)
    assert sim.halted and sim.estop_at is not None and sim.planner.planned == 0


def test_marlin_sim_faults_spec():
    f = Faults.parse("ber=1e-4,lost-ok=0.01,reset-at=5,runaway-at=2.5,seed=3")
    assert (f.ber, f.lost_ok, f.reset_at, f.runaway_at, f.seed) == (1e-4, 0.01, 5, 2.5, 3)
    with pytest.raises(FaultSpecError, match="lost-ok"):
        Faults.parse("lost_ok=0.1")
    with pytest.raises(FaultSpecError, match="at most 1"):
        Faults.parse("ber=2")


def test_marlin_sim_command_line_prints_the_device_and_logs(tmp_path):
    log = tmp_path / "executed.log"
    proc = subprocess.Popen([sys.executable, "-m", "edge", "sim", "marlin", "--time-scale", "20", "--advanced-ok",
                             "--log", str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        with serial.Serial(path, 115200, timeout=2) as port:
            port.write(frame(0, b"M110 N0") + frame(1, b"G1 X5 F3000") + b"G1 X6 ; a comment\n")
            replies = [port.readline() for _ in range(10)]                # boot banner, then the oks
            assert any(r.startswith(b"ok N1 ") for r in replies), replies
        assert wait_for(lambda: log.exists() and log.read_text().splitlines() == ["M110 N0", "G1 X5 F3000", "G1 X6"])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
