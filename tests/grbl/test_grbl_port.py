"""Opening the GRBL port: exclusive (nobody writes into a running stream), DTR kept (no board reset)."""

from __future__ import annotations

import termios

import pytest
import serial

from drivers.base import DriverError, JobFinished
from drivers.grbl import GrblDriver
from grbl_helpers import FIXTURES, Recorder, expected, job_lines


def test_a_second_open_of_the_port_fails_with_a_clear_error(rig):
    sim, drv, rec = rig()
    other = GrblDriver(sim.path, sim.baud, Recorder())
    with pytest.raises(DriverError) as err:
        other.open(timeout=1)
    assert sim.path in str(err.value) and "another program" in str(err.value)
    with pytest.raises(serial.SerialException):                 # a plain pyserial user (doctor) is kept out too
        serial.Serial(sim.path, sim.baud, exclusive=True)
    lines = job_lines(FIXTURES / "laser_vector_plate.gcode")
    drv.start_job(lines)                                        # the first host still streams, undisturbed
    rec.wait(JobFinished, timeout=60)
    assert list(sim.executed) == expected(lines)


def test_the_port_is_free_again_after_close_and_dtr_survives_it(rig):
    sim, drv, rec = rig()
    assert drv._ser is not None and drv._ser.dtr                 # DTR left as opened (high), never lowered
    drv.close()
    assert not termios.tcgetattr(sim.slave)[2] & termios.HUPCL  # closing does not drop DTR: no reset on reopen
    again = GrblDriver(sim.path, sim.baud, Recorder())
    connected = again.open(timeout=5)
    try:
        assert connected.firmware.startswith("Grbl 1.1")
        assert sim.resets == 0                                  # the controller was not rebooted by the host
    finally:
        again.close()
