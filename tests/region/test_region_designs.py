"""Registering a design runs the machines' job checks: a file every machine would refuse is
refused at `campaign add` with its file, line and reason, instead of stalling the campaign."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import UsageError
from edge.region.designs import register
from edge.region.store import CampaignStore
from region_support import HEADBAND, VISOR

GOOD = "G28\nG90\nM83\nM104 S200\nG1 X10 Y10 Z0.2 F3000\nG1 X50 E2\n"
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def store(tmp_path):
    s = CampaignStore(tmp_path / "campaign.db")
    yield s
    s.close()


def add(store, tmp_path, text: str | bytes, kind: str = "printer"):
    p = tmp_path / f"design-{kind}.gcode"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p, register(store, "shield", 10, [f"{kind}={p}"])


def refused(store, tmp_path, text, kind="printer") -> str:
    with pytest.raises(UsageError) as err:
        add(store, tmp_path, text, kind)
    assert not store.designs(), "a refused design must not be registered"
    return str(err.value)


def test_the_shipped_designs_are_accepted(store):
    out = register(store, "faceshield", 5, [f"printer={HEADBAND}", f"laser={VISOR}"])
    assert set(out["files"]) == {"kind:printer", "kind:laser"}
    assert [d.name for d in store.designs()] == ["faceshield"]


def test_forbidden_command_is_refused_with_file_line_and_reason(store, tmp_path):
    msg = refused(store, tmp_path, GOOD + "M500\n")
    assert "design-printer.gcode: line 7: M500 is a forbidden command" in msg


def test_bad_checksum_is_refused(store, tmp_path):
    msg = refused(store, tmp_path, "G28\nN1 G1 X10*99\n")
    assert "line 2: checksum *99 does not match" in msg


def test_garbage_is_refused(store, tmp_path):
    msg = refused(store, tmp_path, GOOD + "G1 X1\x01\x02 Y2\n")
    assert "line 7:" in msg and "control byte 0x01" in msg


def test_arc_without_centre_is_refused(store, tmp_path):
    msg = refused(store, tmp_path, GOOD + "G2 X20 Y20\n")
    assert "line 7: G2/G3 arc without usable I/J offsets or R radius" in msg


def test_extrusion_in_a_laser_design_is_refused(store, tmp_path):
    msg = refused(store, tmp_path, "$H\nG1 X10 Y10 E5 F600\n", kind="laser")
    assert "line 2: extrusion (E) in a job for a laser cutter" in msg


def test_move_outside_any_machine_volume_is_refused(store, tmp_path):
    msg = refused(store, tmp_path, GOOD + "G1 X5000\n")
    assert "line 7: X 5000 is outside the machine volume" in msg


def test_move_outside_every_known_machine_is_refused(store, tmp_path):
    for name, width in (("p1", 200.0), ("p2", 250.0)):
        store.machine_seen("lab", name, 1.0, kind="printer", profile="",
                           volume={"x": [0.0, width], "y": [0.0, 210.0], "z": [0.0, 200.0]})
    msg = refused(store, tmp_path, GOOD + "G1 X260\n")
    assert "line 7: X 260 is outside the machine volume X [0, 250]" in msg
    assert "2 known kind:printer machine(s)" in msg
    _, out = add(store, tmp_path, GOOD + "G1 X240\n")       # fits p2: accepted
    assert out["files"]["kind:printer"]["bbox"]["x"][1] == 240.0


def test_non_utf8_file_names_the_line_not_a_byte_offset(store, tmp_path):
    msg = refused(store, tmp_path, GOOD.encode() + b"; caf\xe9\n")
    assert "line 7: not UTF-8 text (byte 0xe9)" in msg
    assert "byte 1" not in msg


def test_many_errors_are_listed_briefly(store, tmp_path):
    msg = refused(store, tmp_path, GOOD + "M500\nM502\n" * 30)
    listed = [ln for ln in msg.splitlines() if ".gcode: line " in ln]
    assert len(listed) == 2 * 6                   # per command: the first 5 and one line counting all
    assert msg.count("(25 more after the first 5, 30 in all)") == 2


def test_campaign_add_cli_refuses_with_one_line_per_reason_and_exit_1(tmp_path):
    bad = tmp_path / "bad.gcode"
    bad.write_text(GOOD + "M997\n")
    proc = subprocess.run([sys.executable, "-m", "edge", "region", "campaign", "add", "--db",
                           str(tmp_path / "c.db"), "--design", "x", "--quantity", "3", "--gcode", f"printer={bad}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "bad.gcode: line 7: M997 is a forbidden command" in proc.stderr
    assert "Traceback" not in proc.stderr
