"""The virtual GRBL itself, spoken to with plain pyserial: what a GRBL 1.1h board answers."""

from __future__ import annotations

import re
import time

import pytest
import serial

from drivers.sim.grbl import VirtualGrbl
from drivers.sim.grbl_faults import FaultSpecError, parse


@pytest.fixture
def port():
    made = []

    def make(**kw):
        sim = VirtualGrbl(**{"time_scale": 20.0, **kw})
        p = serial.Serial(sim.start(), 115200, timeout=0.2)
        made.append((sim, p))
        return sim, p

    yield make
    for sim, p in made:
        p.close()
        sim.stop()


def ask(p, data: bytes, wait: float = 0.15) -> str:
    p.write(data)
    time.sleep(wait)
    return p.read(4096).decode("ascii", "replace")


def test_build_info_settings_and_status(port):
    sim, p = port()
    assert ask(p, b"$I\n") == "[VER:1.1h.20190825:]\r\n[OPT:V,15,128]\r\nok\r\n"
    settings = ask(p, b"$$\n")
    for key in ("$11=0.010", "$30=1000", "$31=0", "$32=1", "$110=6000.000", "$122=100.000"):
        assert key + "\r\n" in settings
    assert ask(p, b"?") == "<Idle|MPos:0.000,0.000,0.000|Bf:15,127|FS:0,0|Ov:100,100,100>\r\n"


def test_errors_soft_reset_banner_and_alarm_3_when_moving(port):
    sim, p = port(time_scale=1.0)
    assert ask(p, b"G5\nX\n1X\n$Q\n") == "error:20\r\nerror:2\r\nerror:1\r\nerror:3\r\n"
    assert ask(p, b"G1 X5\n") == "error:22\r\n"                    # no feed rate yet
    ask(p, b"G1 X50 F600 M4 S300\n")
    assert ask(p, b"?").startswith("<Run|")
    out = ask(p, b"\x18")
    assert out == "ALARM:3\r\n\r\nGrbl 1.1h ['$' for help]\r\n[MSG:'$H'|'$X' to unlock]\r\n"
    assert ask(p, b"G1 X1\n") == "error:9\r\n"                      # locked in alarm
    assert ask(p, b"$X\n") == "[MSG:Caution: Unlocked]\r\nok\r\n"


def test_hold_resume_laser_only_while_moving_and_overrides(port):
    sim, p = port(time_scale=1.0)
    ask(p, b"G1 X50 F600 M4 S400\n")
    run = ask(p, b"?")
    assert re.match(r"<Run\|MPos:[\d.]+,0\.000,0\.000\|Bf:14,127\|FS:600,400\|Ov:100,100,100>", run)
    ask(p, b"!", 0.1)
    held = until(p, "<Hold:0|")
    assert held.startswith("<Hold:0|") and "|FS:0,0|" in held      # stopped: laser off
    x = float(held.split("MPos:")[1].split(",")[0])
    time.sleep(0.2)
    assert float(ask(p, b"?").split("MPos:")[1].split(",")[0]) == x
    ask(p, b"~\x91\x9a")
    assert "|FS:660,440|Ov:110,100,110>" in ask(p, b"?")


def test_jog_and_jog_cancel(port):
    sim, p = port(time_scale=1.0)
    assert ask(p, b"$J=G91 X100 F600\n") == "ok\r\n"                 # 10 s of jogging
    assert ask(p, b"?").startswith("<Jog|")
    assert ask(p, b"G1 X1 F100\n") == "error:9\r\n"               # G-code is locked out while jogging
    ask(p, b"\x85")
    idle = until(p, "<Idle|")
    assert idle.startswith("<Idle|") and float(idle.split("MPos:")[1].split(",")[0]) < 100   # stopped early
    assert ask(p, b"$J=G1 X1 F100\n", 0.1).startswith("error:")


def test_receive_buffer_overflow_loses_bytes(port):
    sim, p = port(time_scale=1.0, rx_buffer=127)
    p.write(b"G1 X100 F100 M4 S100\n")                            # long move keeps the planner busy
    p.write(b"".join(b"G1 X%d Y1.5\n" % i for i in range(40)))     # 40 x 11 bytes, far beyond 127
    time.sleep(1.0)
    assert sim.overflow_bytes > 0


def test_door_states_and_check_mode(port):
    sim, p = port(time_scale=1.0)
    ask(p, b"G1 X50 F600 M4 S400\n")
    sim.open_door()
    assert until(p, "<Door:1|").startswith("<Door:1|") and "|Pn:D" in ask(p, b"?")
    assert ask(p, b"~").startswith("") and ask(p, b"?").startswith("<Door:1|")  # ignored while open
    sim.close_door()
    assert ask(p, b"?").startswith("<Door:0|")
    ask(p, b"~", 0.05)
    assert until(p, "<Run|").startswith("<Run|")
    ask(p, b"\x18")                                                # reset while moving: ALARM:3
    assert ask(p, b"$X\n").endswith("ok\r\n")
    assert ask(p, b"$C\n") == "[MSG:Enabled]\r\nok\r\n"
    assert ask(p, b"?").startswith("<Check|")


def test_fault_spec_is_checked():
    assert [f.kind for f in parse("drop@3,corrupt@4,door@1.5:0.5,alarm@2:1,reset@9")] == \
        ["drop", "corrupt", "door", "alarm", "reset"]
    with pytest.raises(FaultSpecError, match="'boom@1'"):
        parse("boom@1")
    with pytest.raises(FaultSpecError, match="line number"):
        parse("drop@x")


def until(p, prefix: str, timeout: float = 10.0) -> str:
    """Poll status until it starts with prefix (robust on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        status = ask(p, b"?", 0.05)
        if status.startswith(prefix) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_homing_needs_22_and_shows_home(port):
    sim, p = port(time_scale=0.1)                                  # homing lasts 5 s here
    assert ask(p, b"$H\n") == "error:5\r\n"
    assert ask(p, b"$22=1\n") == "ok\r\n"
    assert ask(p, b"$H\n", 0.05) == "ok\r\n"
    assert ask(p, b"?", 0.05).startswith("<Home|")
    assert until(p, "<Idle|").startswith("<Idle|")


def test_transient_states_hold_1_door_2_door_3(port):
    sim, p = port(time_scale=0.04)                                 # slow machine: transients last seconds
    ask(p, b"G1 X50 F600 M4 S400\n", 0.5)
    assert ask(p, b"!?", 0.05).startswith("<Hold:1|")              # decelerating (1.25 s here)
    assert until(p, "<Hold:0|").startswith("<Hold:0|")
    ask(p, b"~")
    assert ask(p, b"?").startswith("<Run|")
    sim.open_door()
    assert ask(p, b"?", 0.05).startswith("<Door:2|")               # stopping with the door open
    assert until(p, "<Door:1|").startswith("<Door:1|")
    sim.close_door()
    ask(p, b"~", 0.05)
    assert ask(p, b"?", 0.05).startswith("<Door:3|")               # restoring after cycle start (5 s here)
    assert until(p, "<Run|", 20).startswith("<Run|")
