"""Checks before a job is queued: each kind of error rejects and names its line."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from edge import config
from edge.toolpath import analyze
from edge.toolpath.checks import FIRST_FEW

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PRINTER = config.load(ROOT / "config" / "fabedge.example.toml")
LASER = config.from_dict({"machine": {"kind": "laser"}, "serial": {"protocol": "grbl"},
                          "motion": {"planner": "grbl"}, "volume": {"x": [0, 400], "y": [0, 300], "z": [0, 50]}})


def run(tmp_path, text: str | bytes, cfg=PRINTER):
    p = tmp_path / "job.gcode"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return analyze(p, cfg)


def messages(findings) -> list[str]:
    return [f.message for f in findings]


@pytest.mark.parametrize("path, cfg", [
    *[(p, PRINTER) for p in sorted((FIXTURES / "slicer").glob("prusa_*.gcode"))],
    *[(p, PRINTER) for p in sorted((FIXTURES / "slicer").glob("cura_*.gcode"))],
    *[(p, LASER) for p in sorted((FIXTURES / "slicer").glob("laser_*.gcode"))],
], ids=lambda v: getattr(v, "name", ""))
def test_real_slicer_files_pass_on_their_machine(path, cfg):
    a = analyze(path, cfg)
    assert a.ok, messages(a.errors)


def test_move_outside_the_volume_names_line_axis_value_and_range(tmp_path):
    a = run(tmp_path, "G28\nG1 X10 Y10 F3000\nG1 X262.5\nG1 X10 Z-1\n")
    assert not a.ok
    assert messages(a.errors) == ["line 3: X 262.5 is outside the machine volume X [0, 250]",
                                  "line 4: Z -1 is outside the machine volume Z [0, 210]"]
    assert [f.line for f in a.errors] == [3, 4]


def test_many_moves_outside_give_a_few_findings_and_a_count(tmp_path):
    a = run(tmp_path, "G28\n" + "G1 X300 Y10\nG1 X10 Y10\n" * 5000)
    assert len(a.errors) == FIRST_FEW + 1
    assert a.errors[0].message.startswith("line 2: X 300 is outside")
    assert "5000 in all" in a.errors[-1].message


def test_arc_bulging_outside_the_volume_is_caught(tmp_path):
    # both arcs start and end at X 5; the first swings right (X 15), the second left (X -5)
    a = run(tmp_path, "G28\nG1 X5 Y100 F3000\nG3 X5 Y120 I0 J10\nG3 X5 Y100 I0 J-10\n")
    assert any(m.startswith("line 4: X -") for m in messages(a.errors))
    assert not any(m.startswith("line 3") for m in messages(a.errors))


def test_temperatures_above_limits(tmp_path):
    a = run(tmp_path, "M104 S215\nM109 R290\nM140 S60\nM190 S120\nM104 T1 S300\nG28\n")
    assert messages(a.errors) == [
        "line 2: M109 sets the nozzle to 290 °C, above the limit of 280 °C",
        "line 4: M190 sets the bed to 120 °C, above the limit of 110 °C",
        "line 5: M104 sets the nozzle to 300 °C, above the limit of 280 °C",
    ]


def test_laser_power_above_the_limit(tmp_path):
    a = run(tmp_path, "$H\nG21 G90\nM4 S500\nG1 X10 Y10 F600\nG1 X20 S1200\nG1 X30 S800\nM5\n", LASER)
    assert messages(a.errors) == ["line 5: laser power S1200 is above the limit of S1000"]


def test_laser_power_set_without_moves_is_still_checked(tmp_path):
    a = run(tmp_path, "$H\nM3 S5000\nM5\nG0 X10\n", LASER)
    assert messages(a.errors) == ["line 2: laser power S5000 is above the limit of S1000"]


def test_forbidden_commands_with_subcodes_and_grbl_settings(tmp_path):
    cfg = LASER.replace(limits={"forbidden": ["M500", "G10", "G28.1", "$RST", "$32"]})
    a = run(tmp_path, "$H\nM500\nG10 L2 P1 X0\nG10.1\nG28\nG28.1\n$RST=*\n$32=1\n$321=5\nG0 X1\n", cfg)
    assert [f.line for f in a.errors] == [2, 3, 4, 6, 7, 8]
    assert "line 7: $RST is a forbidden command on this machine (limits.forbidden)" in messages(a.errors)


def test_default_forbidden_list(tmp_path):
    a = run(tmp_path, "G28\nM502\nM500\nM997\n")
    assert [f.line for f in a.errors] == [2, 3, 4]


def test_extrusion_on_a_laser_is_rejected(tmp_path):
    a = run(tmp_path, "$H\nG1 X10 Y10 E1 F600\n", LASER)
    assert messages(a.errors) == ["line 2: extrusion (E) in a job for a laser cutter: this file is for a 3D printer"]


def test_laser_job_on_a_printer_is_rejected():
    a = analyze(FIXTURES / "edge" / "laser_grbl.gcode", PRINTER)
    assert any(m.startswith("line 7: laser power (M3/M4 with S) in a job for a 3D printer") for m in messages(a.errors))


def test_long_lines_garbage_and_bad_checksums_name_their_lines():
    long = analyze(FIXTURES / "edge" / "long_line.gcode", PRINTER)
    assert messages(long.errors) == ["line 4: the command is 97 characters long; the firmware accepts at most 96 "
                                     "(limits.max_line_length)"]
    garbage = analyze(FIXTURES / "edge" / "garbage.gcode", PRINTER)
    assert [f.line for f in garbage.errors] == [4, 6, 7, 8]
    assert "control byte 0x00" in garbage.errors[0].message
    assert "cannot parse the command 'G1 X1.2.3'" in garbage.errors[1].message
    assert "non-ASCII byte 0xff" in garbage.errors[2].message
    framing = analyze(FIXTURES / "edge" / "framing.gcode", PRINTER)
    expected = functools.reduce(lambda a, b: a ^ b, b"N4 G1 X20")
    assert messages(framing.errors) == [f"line 5: checksum *99 does not match the line (it should be *{expected})"]


def test_arc_the_firmware_refuses_is_an_error():
    wide = PRINTER.replace(volume={"x": [-50.0, 250.0], "y": [-50.0, 210.0]})
    a = analyze(FIXTURES / "edge" / "arcs.gcode", wide)
    assert [f.line for f in a.errors] == [11]
    assert "G2/G3 arc without usable I/J offsets or R radius" in a.errors[0].message


def test_warnings_unknown_commands_and_no_homing(tmp_path):
    a = run(tmp_path, "G1 X10 Y10 F600\nM9999\nSTART_PRINT\nG28\n")
    assert a.ok
    assert messages(a.warnings) == [
        "the file extrudes nothing",
        "line 1: the first move comes before any homing (G28 / $H): positions are relative to wherever the machine stands",
        "line 2: unknown command M9999: the firmware may ignore or refuse it",
        "line 3: unknown command START_PRINT: the firmware may ignore or refuse it",
    ]


def test_grbl_homing_counts_as_homing():
    a = analyze(FIXTURES / "edge" / "laser_grbl.gcode", LASER)
    assert a.ok and a.warnings == []


def test_lightburn_header_is_no_move_so_the_homing_warning_names_the_first_real_move(tmp_path):
    a = run(tmp_path, "; LightBurn\nG00 G17 G40 G21 G54\nG90\nM4\nG0 X10Y10\nG1 X50S800F600\nM5\n", LASER)
    assert a.ok
    assert [f.line for f in a.warnings] == [5]


def test_limits_come_from_the_config(tmp_path):
    hot = PRINTER.replace(limits={"max_nozzle_c": 300.0}, volume={"x": [0.0, 300.0]})
    a = run(tmp_path, "G28\nM104 S290\nG1 X262.5 F600\n", hot)
    assert a.ok


def test_cold_extrusion_and_idle_laser_are_warnings(tmp_path):
    cold = run(tmp_path, "G28\nG1 Z0.2 F600\nG1 X10 Y10 E1\nM109 S210\nG1 X20 E2\n")
    assert cold.ok
    assert messages(cold.warnings) == ["line 3: extrudes before any nozzle temperature is set (M104/M109): the "
                                       "firmware refuses cold extrusion unless the printer is already hot"]
    warm = run(tmp_path, "M104 S215\nG28\nG1 Z0.2 F600\nG1 X10 Y10 E1\n")
    assert warm.warnings == []
    idle = run(tmp_path, "$H\nM3 S0\nG1 X10 Y10 F600\nM5\n", LASER)
    assert messages(idle.warnings) == ["the laser never fires in this file (no M3/M4 with S > 0 on a move)"]


def test_thousands_of_bad_temperatures_and_forbidden_commands_are_counted(tmp_path):
    a = run(tmp_path, "G28\n" + "M104 S300\nM500\n" * 5000)       # more than one scan keeps per command
    nozzle = [m for m in messages(a.errors) if "nozzle" in m]
    forbidden = [m for m in messages(a.errors) if "M500" in m]
    assert len(nozzle) == FIRST_FEW + 1 and "5000 in all" in nozzle[-1]
    assert len(forbidden) == FIRST_FEW + 1 and "5000 in all" in forbidden[-1]
    assert nozzle[0].startswith("line 2: M104 sets the nozzle to 300")


def test_an_arc_outside_the_volume_is_one_finding_for_its_line():
    # arcs.gcode line 7 is a full circle around (5, 0): its many segments dip below Y 0
    a = analyze(FIXTURES / "edge" / "arcs.gcode", PRINTER)
    msgs = messages(a.errors)
    assert len(msgs) == len(set(msgs)), msgs
    assert len([m for m in msgs if m.startswith("line 7: Y -")]) == 1, msgs
    assert [f.line for f in a.errors] == [7, 11]


def test_the_more_summary_counts_lines_not_segments(tmp_path):
    # 20 full circles each dipping below Y 0: 20 bad lines, many more bad segments
    a = run(tmp_path, "G28\nG1 X10 Y2 F3000\n" + "G2 I0 J-5\n" * 20)
    lines = [f.line for f in a.errors]
    assert lines[:FIRST_FEW] == list(range(3, 3 + FIRST_FEW))
    assert len(a.errors) == FIRST_FEW + 1
    assert f"({20 - FIRST_FEW} more after the first {FIRST_FEW}, 20 in all)" in a.errors[-1].message


def test_laser_power_over_the_limit_on_an_arc_is_one_finding(tmp_path):
    a = run(tmp_path, "$H\nG21 G90\nM4 S500\nG1 X50 Y50 F600\nG2 I10 J0 S1500\nM5\n", LASER)
    assert messages(a.errors) == ["line 5: laser power S1500 is above the limit of S1000"]
