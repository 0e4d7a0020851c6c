"""The numba parser on hand-written edge cases (tests/fixtures/edge/)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge.toolpath import command_lines, load
from edge.toolpath import parse as parse_mod
from edge.toolpath.model import (
    L_DOLLAR, L_G, L_M, L_T, LF_ARC, LF_BAD_ARC, LF_BAD_CHECKSUM, LF_DWELL, LF_EXTRUDE, LF_FRAMED,
    LF_GARBAGE, LF_LASER, LF_MOVE, LF_SENDABLE, LF_SETTINGS, LF_TOO_LONG, LF_UNKNOWN,
    SF_EXTRUDE, SF_LASER, SF_RAPID, SF_RETRACT, SF_TRAVEL, SF_UNRETRACT,
)
from edge.toolpath.parse_kernel import arc_segments

EDGE = Path(__file__).resolve().parent.parent / "fixtures" / "edge"


def segs_of(tp, line: int) -> np.ndarray:
    """Segment indices made by a 1-based line."""
    return np.flatnonzero(tp.seg_line == line - 1)


def end_of(tp, line: int) -> tuple[float, float, float]:
    s = segs_of(tp, line)[-1]
    return float(tp.seg_x[s]), float(tp.seg_y[s]), float(tp.seg_z[s])


def write(tmp_path, text: str | bytes, name: str = "t.gcode") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


# ---- arcs ------------------------------------------------------------------------------
def test_arc_ij_quarter_circle_follows_the_circle_with_marlins_segment_count():
    tp = load(EDGE / "arcs.gcode")
    s = segs_of(tp, 5)                        # G3 X0 Y10 I-10 J0 from (10, 0)
    assert len(s) == 18                       # ceil(72 * 1/4) = 18 beats floor(15.7 mm / 1 mm) = 15
    r = np.hypot(tp.seg_x[s], tp.seg_y[s])
    assert np.allclose(r, 10.0, atol=1e-4)
    assert np.all(tp.seg_x[s] >= -1e-4) and np.all(tp.seg_y[s] >= -1e-4)   # CCW through the first quadrant
    assert end_of(tp, 5) == pytest.approx((0.0, 10.0, 1.0))
    assert tp.line_flags[4] & LF_ARC and tp.line_flags[4] & LF_MOVE


def test_arc_clockwise_goes_the_other_way():
    tp = load(EDGE / "arcs.gcode")
    s = segs_of(tp, 6)                        # G2 X10 Y0 I0 J-10 from (0, 10): CW around (0, 0)
    assert np.all(tp.seg_x[s] >= -1e-4) and np.all(tp.seg_y[s] >= -1e-4)
    assert end_of(tp, 6) == pytest.approx((10.0, 0.0, 1.0))


def test_full_circle_without_xy_makes_72_segments_and_returns_home():
    tp = load(EDGE / "arcs.gcode")
    s = segs_of(tp, 7)                        # G2 I-5 J0 from (10, 0): full circle around (5, 0)
    assert len(s) == 72
    assert np.allclose(np.hypot(tp.seg_x[s] - 5, tp.seg_y[s]), 5.0, atol=1e-4)
    assert tp.seg_y[s].min() == pytest.approx(-5.0, abs=0.01) and tp.seg_y[s].max() == pytest.approx(5.0, abs=0.01)
    assert end_of(tp, 7) == pytest.approx((10.0, 0.0, 1.0))


def test_arc_r_form_both_signs():
    tp = load(EDGE / "arcs.gcode")
    half = segs_of(tp, 9)                     # G2 X30 Y20 R5 from (20, 20): half circle around (25, 20)
    assert np.allclose(np.hypot(tp.seg_x[half] - 25, tp.seg_y[half] - 20), 5.0, atol=1e-4)
    assert tp.seg_y[half].max() == pytest.approx(25.0, abs=0.01)        # clockwise from the left: over the top
    long_way = segs_of(tp, 10)                # G3 X40 Y20 R-7 from (30, 20): more than half a circle
    cx, cy = 35.0, 20.0 - math.sqrt(49 - 25)  # negative R on G3: centre on the right-hand side
    assert np.allclose(np.hypot(tp.seg_x[long_way] - cx, tp.seg_y[long_way] - cy), 7.0, atol=1e-3)
    arc_len = np.hypot(np.diff(tp.seg_x[long_way]), np.diff(tp.seg_y[long_way])).sum()
    assert arc_len > math.pi * 7              # the long way round
    assert end_of(tp, 10) == pytest.approx((40.0, 20.0, 1.0))


def test_arc_without_offsets_is_flagged_and_does_not_move():
    tp = load(EDGE / "arcs.gcode")
    assert tp.line_flags[10] & LF_BAD_ARC
    assert len(segs_of(tp, 11)) == 0


def test_helical_arc_interpolates_z():
    tp = load(EDGE / "arcs.gcode")
    s = segs_of(tp, 12)                       # G3 X41 Y20 Z2 I0.5 J0: tiny half circle, Z 1 -> 2
    assert np.all(np.diff(tp.seg_z[s]) > 0)
    assert end_of(tp, 12) == pytest.approx((41.0, 20.0, 2.0))


def test_g18_arc_lies_in_the_zx_plane_with_k_and_i_offsets(tmp_path):
    tp = load(write(tmp_path, "G28\nG1 X10 Y5 Z10 F600\nG18\nG2 X20 Z10 K0 I5\nG17\nG1 X0 Y0\n"))
    s = segs_of(tp, 4)                        # half circle around (X 15, Z 10), Y stays 5
    assert np.allclose(tp.seg_y[s], 5.0)
    assert np.allclose(np.hypot(tp.seg_x[s] - 15, tp.seg_z[s] - 10), 5.0, atol=1e-4)
    # G18's axes are (Z, X) as in Marlin and LinuxCNC: clockwise from X 10 to X 20 dips in Z
    assert tp.seg_z[s].min() == pytest.approx(5.0, abs=0.01) and tp.seg_z[s].max() == pytest.approx(10.0)
    assert end_of(tp, 4) == pytest.approx((20.0, 5.0, 10.0))
    assert end_of(tp, 6) == pytest.approx((0.0, 0.0, 10.0))     # G17 again: plain moves unaffected


def test_g19_arc_lies_in_the_yz_plane_and_x_moves_linearly(tmp_path):
    tp = load(write(tmp_path, "G28\nG1 X0 Y10 Z10 F600\nG19\nG3 X4 Y10 Z10 J0 K5\n"))
    s = segs_of(tp, 4)                        # full circle around (Y 10, Z 15), X 0 -> 4 as a helix
    assert len(s) == 72
    assert np.allclose(np.hypot(tp.seg_y[s] - 10, tp.seg_z[s] - 15), 5.0, atol=1e-4)
    assert np.all(np.diff(tp.seg_x[s]) > 0)
    assert end_of(tp, 4) == pytest.approx((4.0, 10.0, 10.0))


def test_p_adds_full_turns_and_spreads_z_and_e_over_them(tmp_path):
    tp = load(write(tmp_path, "G28\nM83\nG1 X10 Y0 Z1 F600\nG3 X0 Y10 Z3 I-10 J0 P2 E5\n"))
    s = segs_of(tp, 4)                        # 2 turns + a quarter: 2.25 x 2 pi x 10 mm
    assert len(s) == 2 * 72 + 18               # ceil(72 x 2.25) beats floor(141.4 mm / 1 mm)
    length = np.hypot(np.diff(tp.seg_x[s]), np.diff(tp.seg_y[s])).sum()
    assert length == pytest.approx(2.25 * 2 * math.pi * 10, rel=0.01)
    assert np.all(np.diff(tp.seg_z[s]) > 0) and tp.seg_de[s].sum() == pytest.approx(5.0, rel=1e-5)
    assert end_of(tp, 4) == pytest.approx((0.0, 10.0, 3.0))


@pytest.mark.parametrize("p", ["P-1", "P101", "P1.5"])
def test_arc_with_a_p_the_firmware_refuses_is_flagged_and_does_not_move(tmp_path, p):
    tp = load(write(tmp_path, f"G28\nG1 X10 Y0 F600\nG2 X0 Y10 I-10 J0 {p}\n"))
    assert tp.line_flags[2] & LF_BAD_ARC and len(segs_of(tp, 3)) == 0


@pytest.mark.parametrize("flat, angle, full, expected", [
    (2 * math.pi * 10, 2 * math.pi, True, 72),         # full circle r 10: MIN_CIRCLE_SEGMENTS wins
    (2 * math.pi * 50, 2 * math.pi, True, 315),        # r 50: 1 mm segments, ceil(314.16)
    (10.5, 0.5, False, 11),                            # nominal 1.05 mm > MAX_ARC_SEGMENT_MM: ceil
    (0.05, 0.05, False, 1),                            # shorter than MIN_ARC_SEGMENT_MM: one segment
    (1.0, math.pi, False, 10),                         # 36 wanted, 0.028 mm each < 0.1 mm: floor(1.0 / 0.1)
])
def test_arc_segment_count_matches_marlin_plan_arc(flat, angle, full, expected):
    assert arc_segments(flat, angle, full) == expected


def test_many_full_circles_grow_the_segment_arrays(tmp_path):
    n = 2000                                  # 2000 x 72 segments: more than the first allocation
    text = "G28\nG1 X10 Y10 F3000\n" + "G2 I5 J0 E0.1\n" * n
    tp = load(write(tmp_path, "M83\n" + text))
    assert len(tp.seg_x) == 1 + n * 72         # G28 from home makes no segment
    assert tp.seg_de.sum(dtype=np.float64) == pytest.approx(0.1 * n, rel=1e-5)
    assert end_of(tp, n + 3) == pytest.approx((10.0, 10.0, 0.0))


# ---- positions and modes ----------------------------------------------------------------
def test_relative_moves_and_e_modes_follow_marlin():
    tp = load(EDGE / "relative.gcode")
    assert end_of(tp, 8) == pytest.approx((25.0, 8.0, 0.2))
    de = {ln: float(tp.seg_de[segs_of(tp, ln)].sum()) for ln in (6, 8, 10, 13, 14, 15, 17)}
    assert de == pytest.approx({6: 5.0, 8: 1.0, 10: 1.0, 13: 0.5, 14: -0.8, 15: 0.8, 17: 0.5})
    assert tp.seg_flags[segs_of(tp, 14)[0]] & SF_RETRACT
    assert tp.seg_flags[segs_of(tp, 15)[0]] & SF_UNRETRACT
    assert tp.seg_flags[segs_of(tp, 13)[0]] & SF_EXTRUDE
    assert tp.seg_flags[segs_of(tp, 5)[0]] & SF_TRAVEL


def test_g92_offsets_and_e_resets():
    tp = load(EDGE / "g92.gcode")
    assert end_of(tp, 7) == pytest.approx((15.0, 15.0, 5.0))
    assert tp.seg_de[segs_of(tp, 7)].sum() == pytest.approx(1.0)
    assert tp.seg_de[segs_of(tp, 9)].sum() == pytest.approx(1.0)      # G92 E10 then E11
    assert end_of(tp, 11) == pytest.approx((11.0, 11.0, 1.0))        # bare G92: offsets unchanged (Marlin)
    assert end_of(tp, 12) == pytest.approx((0.0, 11.0, 1.0))         # G28 X homes X only
    assert end_of(tp, 13) == pytest.approx((3.0, 11.0, 1.0))         # ... and clears its offset


def test_g28_goes_to_the_given_home():
    tp = load(EDGE / "g92.gcode", home=(5.0, -4.0, 1.0))
    assert tp.start == (5.0, -4.0, 1.0)
    assert end_of(tp, 12) == pytest.approx((5.0, 11.0, 1.0))          # G28 X: X to its home, 5
    assert tp.line_flags[1] & LF_DWELL


def test_inches_scale_positions_and_feedrate():
    tp = load(EDGE / "inches.gcode")
    assert end_of(tp, 5) == pytest.approx((25.4, 50.8, 0.0))
    assert tp.seg_f[segs_of(tp, 5)[0]] == pytest.approx(25.4)          # 60 in/min
    assert end_of(tp, 7) == pytest.approx((10.0, 50.8, 0.0))
    assert tp.seg_f[segs_of(tp, 7)[0]] == pytest.approx(10.0)
    assert tp.line_flags[3] & LF_SETTINGS


# ---- text: comments, framing, garbage, lengths ------------------------------------------
def test_comments_of_both_kinds_lowercase_and_spaces():
    tp = load(EDGE / "comments.gcode")
    sendable = [i + 1 for i in range(tp.lines) if tp.line_flags[i] & LF_SENDABLE]
    assert sendable == [4, 5, 7, 8, 9, 10]
    assert end_of(tp, 5) == pytest.approx((10.0, 10.0, 0.0))
    assert end_of(tp, 8) == pytest.approx((30.0, 30.0, 0.0))              # g1 x 30 y 30
    assert end_of(tp, 9) == pytest.approx((40.0, 30.0, 0.0))              # G 1 X 40
    assert dict(command_lines(tp)) == {
        4: b"G28", 5: b"G1 X10  Y10 F3000", 7: b"G1 X20  Y20", 8: b"g1 x 30 y 30", 9: b"G 1 X 40", 10: b"G1 X50"}


def test_framing_is_checked_and_stripped():
    tp = load(EDGE / "framing.gcode")
    flags = tp.line_flags
    assert all(flags[i] & LF_FRAMED for i in range(1, 8))
    bad = [i + 1 for i in range(tp.lines) if flags[i] & LF_BAD_CHECKSUM]
    assert bad == [5]
    cmds = dict(command_lines(tp))
    assert cmds[2] == b"M110 N1" and cmds[4] == b"G1 X10 Y10 F3000" and cmds[6] == b"G1 X30" and cmds[7] == b"G1 X40"
    assert end_of(tp, 7) == pytest.approx((40.0, 10.0, 0.0))


def test_garbage_is_flagged_on_its_line():
    tp = load(EDGE / "garbage.gcode")
    garbage = [i + 1 for i in range(tp.lines) if tp.line_flags[i] & LF_GARBAGE]
    assert garbage == [4, 6, 7, 8]
    assert end_of(tp, 9) == pytest.approx((30.0, 30.0, 0.0))              # parsing carries on


def test_random_binary_never_crashes(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    tp = load(write(tmp_path, data))
    assert tp.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert np.count_nonzero(tp.line_flags & LF_GARBAGE) > tp.lines // 2


def test_overlong_lines_measure_the_stripped_command():
    tp = load(EDGE / "long_line.gcode", max_line_length=96)
    too_long = [i + 1 for i in range(tp.lines) if tp.line_flags[i] & LF_TOO_LONG]
    assert too_long == [4]                    # 97 characters; line 3 has exactly 96, line 5 is padding
    assert [i + 1 for i in range(tp.lines) if load(EDGE / "long_line.gcode", max_line_length=200)
            .line_flags[i] & LF_TOO_LONG] == []


def test_unknown_and_extended_commands_are_flagged_not_garbage(tmp_path):
    tp = load(write(tmp_path, "G28\nM9999\nSTART_PRINT EXTRUDER=200\nG1 X1\nT1\nM117 Hello *world*\n"))
    assert [bool(tp.line_flags[i] & LF_UNKNOWN) for i in range(tp.lines)] == [False, True, True, False, False, False]
    assert not np.any(tp.line_flags & LF_GARBAGE)
    assert tp.letter[4] == L_T and tp.code[4] == 1
    assert tp.letter[1] == L_M and tp.code[1] == 9999


def test_prusa_and_marlin_text_parameters_are_not_garbage(tmp_path):
    tp = load(write(tmp_path, 'M862.3 P "MK3S" ; printer model check\nM862.1 P0.4\nM115 U3.11.0\n'
                              'M117 Layer 1/20 *fast*\nM23 my file.gco\nM486 S0 A"cube #1"\nG1 X"5"\n'))
    assert [bool(tp.line_flags[i] & LF_GARBAGE) for i in range(tp.lines)] == [False] * 6 + [True]
    assert (tp.code[0], tp.sub[0]) == (862, 3)


def test_subcodes_and_letters(tmp_path):
    tp = load(write(tmp_path, "G28.1\nG29.2 S1\n$H\n$32=1\nM104 T1 S200\n%\n"))
    assert tp.line_flags[5] == 0                                     # `%` delimiter: nothing to send
    assert (tp.letter[0], tp.code[0], tp.sub[0]) == (L_G, 28, 1)
    assert (tp.letter[1], tp.code[1], tp.sub[1]) == (L_G, 29, 2)
    assert tp.letter[2] == L_DOLLAR and tp.letter[3] == L_DOLLAR
    assert not tp.line_flags[2] & LF_SETTINGS and tp.line_flags[3] & LF_SETTINGS   # `$32=1` is a setting
    assert (tp.letter[4], tp.code[4]) == (L_M, 104)          # T on an M line is a parameter


def test_empty_file_and_missing_last_newline():
    empty = load(EDGE / "empty.gcode")
    assert empty.lines == 0 and len(empty.seg_x) == 0 and list(command_lines(empty)) == []
    tp = load(EDGE / "no_newline.gcode")
    assert tp.lines == 2 and end_of(tp, 2) == pytest.approx((5.0, 5.0, 0.0))
    assert list(command_lines(tp)) == [(1, b"G28"), (2, b"G1 X5 Y5 F600")]


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        load(tmp_path / "nope.gcode")


def test_chunked_parse_equals_one_pass(monkeypatch):
    path = Path(__file__).resolve().parent.parent / "fixtures" / "slicer" / "prusa_bunny.gcode"
    whole = load(path)
    monkeypatch.setattr(parse_mod, "CHUNK_BYTES", 4099)          # many chunks, boundaries mid-line
    chunked = load(path)
    for name in ("offset", "letter", "code", "line_flags", "seg_line", "seg_x", "seg_y", "seg_z", "seg_de", "seg_f"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


# ---- lasers and objects -------------------------------------------------------------------
def test_laser_power_follows_m3_m4_m5_and_s_on_moves():
    tp = load(EDGE / "laser_grbl.gcode")
    assert tp.kind == "laser"
    power = {ln: float(tp.seg_power[segs_of(tp, ln)[0]]) for ln in (5, 7, 8, 9, 10, 12, 14)}
    assert power == {5: 0.0, 7: 300.0, 8: 600.0, 9: 600.0, 10: 0.0, 12: 0.0, 14: 200.0}
    assert tp.seg_flags[segs_of(tp, 10)[0]] & SF_RAPID and not tp.seg_flags[segs_of(tp, 10)[0]] & SF_LASER
    assert tp.seg_flags[segs_of(tp, 9)[0]] & SF_LASER                   # modal motion: "X10 Y20"
    assert end_of(tp, 9) == pytest.approx((10.0, 20.0, 0.0))
    assert tp.line_flags[13] & LF_LASER and len(segs_of(tp, 14)) > 1
    assert tp.stats["max_power"] == 600.0


def test_laser_with_zero_power_is_not_a_laser_job():
    assert load(EDGE / "laser_no_power.gcode").kind == "printer"


@pytest.mark.parametrize("name, objects, by_line", [
    ("objects_prusa.gcode", ["cube id:0 copy 0", "cube id:0 copy 1"], {5: 0, 6: 0, 8: -1, 10: 1, 12: -1}),
    ("objects_cura.gcode", ["cone.stl", "box.stl"], {5: -1, 7: 0, 8: 0, 10: -1, 12: 1}),
    ("objects_m486.gcode", ["left part", "object 1"], {4: -1, 6: 0, 8: -1, 10: 1}),
])
def test_objects_are_named_and_assigned_to_segments(name, objects, by_line):
    tp = load(EDGE / name)
    assert tp.objects == objects
    got = {ln: int(tp.seg_object[segs_of(tp, ln)[0]]) for ln in by_line}
    assert got == by_line


def test_extrusion_flags_on_lines():
    tp = load(EDGE / "objects_prusa.gcode")
    assert tp.line_flags[4] & LF_EXTRUDE and not tp.line_flags[7] & LF_EXTRUDE
    assert tp.kind == "printer"


def test_command_lines_across_blocks(tmp_path):
    n = 70_000                                # more than one block of 65536 lines
    tp = load(write(tmp_path, "".join(f"G1 X{i % 100}\n; c\n" for i in range(n))))
    got = list(command_lines(tp))
    assert len(got) == n
    assert got[0] == (1, b"G1 X0") and got[-1] == (2 * n - 1, f"G1 X{(n - 1) % 100}".encode())
