"""EEPROM-writing lines go to GRBL one at a time: GRBL stops receiving while it writes."""

from __future__ import annotations

import time

import serial

from drivers.base import JobFinished
from drivers.sim.grbl import VirtualGrbl
from grbl_helpers import FIXTURES, expected, job_lines

EEPROM_LINES = [b"$110=6000", b"G10 L20 P1 X0 Y0", b"G28.1", b"$N0=G21", b"G30.1", b"$120=1000"]


def test_eeprom_commands_never_overlap_within_a_job(rig):
    cuts = job_lines(FIXTURES / "laser_raster_disc.gcode")[:200]
    lines = []
    for i, (n, cmd) in enumerate(cuts):
        lines.append((n, cmd))
        if i % 40 == 20:                                  # settings changes mid-job, between cuts
            lines.append((10000 + i, EEPROM_LINES[(i // 40) % len(EEPROM_LINES)]))
    sim, drv, rec = rig(time_scale=200.0, eeprom_write_s=0.03)
    drv.start_job(lines)
    rec.wait(JobFinished, 60)
    assert sim.eeprom_overlap_bytes == 0 and list(sim.errors) == []
    assert list(sim.executed) == expected(lines)


def test_a_naive_sender_loses_bytes_during_eeprom_writes():
    """The same lines written back to back (counting only the buffer) lose bytes: the rule matters."""
    sim = VirtualGrbl(time_scale=200.0, eeprom_write_s=0.03)
    path = sim.start()
    try:
        with serial.Serial(path, 115200, timeout=0.1) as port:
            port.write(b"$110=6000\n")
            time.sleep(0.005)                             # the next lines follow without waiting for ok
            port.write(b"G1X1F600\nG1X2\nG1X3\n")
            time.sleep(0.5)
            replies = port.read(500)
        assert sim.eeprom_overlap_bytes > 0
        assert b"error" in replies or len(sim.executed) < 4
    finally:
        sim.stop()
