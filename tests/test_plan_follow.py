"""The planner following the parser in threads gives the times of one whole pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import MotionSection
from edge import plan_follow as plan_stream
from edge.plan_follow import load_and_plan
from edge.toolpath import parse
from edge.toolpath.parse import load
from edge.toolpath.plan import plan

FIX = Path(__file__).resolve().parent / "fixtures" / "slicer"
MK3S = MotionSection(max_feedrate=[200.0, 200.0, 12.0, 120.0], max_acceleration=[1000.0, 1000.0, 200.0, 5000.0],
                     acceleration=1250.0, retract_acceleration=1250.0, travel_acceleration=1250.0,
                     junction_deviation=0.0, jerk=[8.0, 8.0, 0.4, 4.5])


@pytest.fixture
def small_chunks(monkeypatch):
    """Many chunks and slices out of a small file (the real sizes need a 100 MB file)."""
    monkeypatch.setattr(parse, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(plan_stream, "MIN_SLICE", 500)
    submitted = []
    real = plan_stream.PlanFollower._submit

    def spy(self, seg, lo, hi):
        submitted.append((lo, hi))
        real(self, seg, lo, hi)
    monkeypatch.setattr(plan_stream.PlanFollower, "_submit", spy)
    return submitted


def _whole_pass(path, motion):
    tp = load(path)
    plan(tp, motion)
    return tp


@pytest.mark.parametrize("name", ["prusa_bunny.gcode", "prusa_pla_symbol_accel.gcode", "cura_cone.gcode"])
def test_sliced_pipeline_matches_one_pass(small_chunks, name):
    ref = _whole_pass(FIX / name, MK3S)
    tp = load_and_plan(str(FIX / name), MK3S)
    assert len(small_chunks) > 3                                  # really planned in slices
    los = [lo for lo, _ in small_chunks]
    assert all(tp.seg_line[lo - 1] != tp.seg_line[lo] for lo in los if 0 < lo < len(tp.seg_line))
    # dozens of slices, each cut with a few ms of look-ahead truncation at most
    assert tp.total_time() == pytest.approx(ref.total_time(), rel=1e-4)
    assert np.abs(tp.line_time - ref.line_time).max() < 0.05
    assert np.count_nonzero(tp.line_time != ref.line_time) < 0.01 * tp.lines


def test_arcs_growing_segment_arrays_and_trailing_wait(small_chunks, tmp_path):
    lines = ["G28", "G90", "M83", "G1 X100 Y100 Z0.2 F3000"]
    for k in range(300):                      # full circles: ~570 segments each, the arrays must grow
        lines.append(f"G2 X100 Y100 I{88 + k % 7} J0 E0.5 F1800 ; {'padding to make several chunks':>90}")
        if k == 150:
            lines.append("G4 P1500")
            lines.append("M204 P500 T800")
    lines.append("G4 S7")                       # after the last move: still counted
    path = tmp_path / "arcs.gcode"
    path.write_text("\n".join(lines) + "\n")
    ref = _whole_pass(path, MK3S)
    assert len(ref.seg_line) > len(lines) + 65536 + 1024   # more segments than the first allocation
    tp = load_and_plan(str(path), MK3S)
    assert len(small_chunks) >= 2
    assert tp.line_time[len(lines) - 1] == pytest.approx(7.0)
    assert tp.total_time() == pytest.approx(ref.total_time(), rel=1e-5)


def test_empty_and_comment_only_files(tmp_path):
    for text in (b"", b"; nothing\n"):
        path = tmp_path / "e.gcode"
        path.write_bytes(text)
        tp = load_and_plan(str(path), MK3S)
        assert tp.total_time() == 0.0 and len(tp.line_time) == tp.lines


def test_analyze_with_and_without_planner_threads_agree(small_chunks):
    from edge.config import default
    from edge.toolpath import analyze
    cfg = default().replace(volume={"x": [0.0, 250.0], "y": [-5.0, 220.0], "z": [0.0, 210.0]})
    one = analyze(FIX / "prusa_bunny.gcode", cfg)
    assert not small_chunks                                        # no thread, no slice
    two = plan_stream.analyze(FIX / "prusa_bunny.gcode", cfg, threads=2)
    assert len(small_chunks) > 3
    assert two.estimated_time_s == pytest.approx(one.estimated_time_s, rel=1e-4)
    assert (two.layers, two.first_layer, two.bbox_all, two.filament_mm) == \
           (one.layers, one.first_layer, one.bbox_all, one.filament_mm)
    assert [f.to_dict() for f in two.errors + two.warnings] == [f.to_dict() for f in one.errors + one.warnings]
