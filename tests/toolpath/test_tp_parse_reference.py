"""The numba parser against a tiny, independent pure-Python interpreter: on the
real slicer fixtures, and on random well-formed move files (hypothesis)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.toolpath import load
from edge.toolpath.model import LF_BAD_ARC

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SLICER = sorted((FIXTURES / "slicer").glob("*.gcode"))
EDGE = [FIXTURES / "edge" / n for n in ("arcs.gcode", "relative.gcode", "g92.gcode", "inches.gcode",
                                         "comments.gcode", "framing.gcode", "laser_grbl.gcode")]

WORD = re.compile(r"([A-Za-z])\s*([-+]?(?:\d+\.?\d*|\.\d+))?")


def strip(line: str) -> str:
    line = re.sub(r"\([^)]*\)", "", line.split(";", 1)[0]).strip()
    line = re.sub(r"^[Nn]\s*\d+\s*", "", line)
    return re.sub(r"\*\d+\s*$", "", line).strip()


def interpret(text: str, home=(0.0, 0.0, 0.0)) -> dict[int, tuple[float, float, float, float]]:
    """{1-based line: (x, y, z, extruded mm on this line)} for every line that moves."""
    pos = list(home)
    off = [0.0, 0.0, 0.0]
    e = 0.0
    rel = False
    e_mode = None            # None: follow G90/G91; "abs" / "rel" after M82 / M83
    inch = False
    motion = None
    out = {}
    for n, raw in enumerate(text.splitlines(), 1):
        cmd = strip(raw)
        if not cmd or cmd.startswith("$"):
            continue
        words = [(w[0].upper(), float(w[1]) if w[1] else None) for w in WORD.findall(cmd)]
        params = {k: v for k, v in words if k not in "GM"}
        codes = [(k, v) for k, v in words if k in "GM" and v is not None]
        scale = 25.4 if inch else 1.0
        move = None
        for k, v in codes:
            if k == "G" and v in (90, 91):
                rel, e_mode = v == 91, None
            elif k == "G" and v in (20, 21):
                inch = v == 20
                scale = 25.4 if inch else 1.0
            elif k == "G" and v in (0, 1, 2, 3):
                move = motion = int(v)
            elif k == "M" and v in (82, 83):
                e_mode = "abs" if v == 82 else "rel"
            elif k == "G" and v == 92:
                given = {a: params[a] for a in "XYZE" if params.get(a) is not None}
                for i, a in enumerate("XYZ"):
                    if a in given:
                        off[i] = pos[i] - given[a] * scale
                if "E" in given:
                    e = given["E"] * scale
            elif k == "G" and v == 28:
                axes = [i for i, a in enumerate("XYZ") if a in params] or [0, 1, 2]
                for i in axes:
                    pos[i], off[i] = home[i], 0.0
        if move is None and not codes and motion is not None and any(a in params for a in "XYZ"):
            move = motion                      # GRBL modal motion
        if move is None:
            continue
        for i, a in enumerate("XYZ"):
            if params.get(a) is not None:
                pos[i] = pos[i] + params[a] * scale if rel else params[a] * scale + off[i]
        de = 0.0
        if params.get("E") is not None:
            v = params["E"] * scale
            e_rel = e_mode == "rel" or (e_mode is None and rel)
            de = v if e_rel else v - e
            e += de
        out[n] = (pos[0], pos[1], pos[2], de)
    return out


def compare(tp, ref: dict[int, tuple[float, float, float, float]], tol: float = 2e-3) -> int:
    """Parser position after each reference line (end of its last segment so far) and E per line."""
    lines = np.array([ln for ln in ref if not tp.line_flags[ln - 1] & LF_BAD_ARC], np.int64)
    if len(lines) == 0:
        return 0
    want = np.array([ref[ln] for ln in lines.tolist()], np.float64)
    ends = np.searchsorted(tp.seg_line, lines - 1, side="right") - 1
    xyz = np.array([tp.seg_x, tp.seg_y, tp.seg_z], np.float64).T
    got = np.where(ends[:, None] >= 0, xyz[np.maximum(ends, 0)] if len(xyz) else 0.0, np.array(tp.start))
    scale = np.maximum(1.0, np.abs(want[:, :3]).max(axis=1, keepdims=True))
    bad = np.flatnonzero(np.any(np.abs(got - want[:, :3]) > tol * scale / 100, axis=1))
    assert len(bad) == 0, f"line {lines[bad[0]]}: {got[bad[0]]} != {want[bad[0], :3]}"
    de_line = np.zeros(tp.lines)
    np.add.at(de_line, tp.seg_line, tp.seg_de.astype(np.float64))
    bad = np.flatnonzero(np.abs(de_line[lines - 1] - want[:, 3]) > 1e-4 * np.maximum(1.0, np.abs(want[:, 3])))
    assert len(bad) == 0, f"line {lines[bad[0]]}: E {de_line[lines[bad[0]] - 1]} != {want[bad[0], 3]}"
    return len(lines)


@pytest.mark.parametrize("path", SLICER + EDGE, ids=lambda p: p.name)
def test_parser_matches_reference_interpreter(path):
    tp = load(path)
    ref = interpret(path.read_text(errors="replace"))
    assert compare(tp, ref) > 0
    total_ref = sum(v[3] for v in ref.values())
    assert tp.seg_de.sum(dtype=np.float64) == pytest.approx(total_ref, abs=1e-3 * max(1.0, abs(total_ref)))


def test_slicer_fixtures_are_present():
    names = {p.name.split("_")[0] for p in SLICER}
    assert {"prusa", "cura", "laser"} <= names


# ---- random well-formed files ---------------------------------------------------------------
coord = st.floats(min_value=-500, max_value=500, allow_nan=False).map(lambda v: round(v, 3))
small = st.floats(min_value=-20, max_value=20, allow_nan=False).map(lambda v: round(v, 4))


@st.composite
def move_line(draw) -> str:
    kind = draw(st.sampled_from(["G0", "G1", "G1", "G1", "G90", "G91", "M82", "M83", "G92", "G20", "G21", "G28"]))
    if kind in ("G0", "G1"):
        words = [f"{a}{draw(coord)}" for a in "XYZ" if draw(st.booleans())]
        if draw(st.booleans()):
            words.append(f"E{draw(small)}")
        if draw(st.booleans()):
            words.append(f"F{draw(st.integers(1, 20000))}")
        sep = draw(st.sampled_from([" ", "  ", "\t"]))
        text = sep.join([kind] + words)
    elif kind == "G92":
        text = " ".join(["G92"] + [f"{a}{draw(coord)}" for a in "XYZE" if draw(st.booleans())])
    elif kind == "G28":
        text = " ".join(["G28"] + [a for a in "XYZ" if draw(st.booleans())])
    else:
        text = kind
    if draw(st.booleans()):
        text = text.lower()
    if draw(st.integers(0, 4)) == 0:
        text += " ; note"
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(move_line(), min_size=1, max_size=40),
       home=st.tuples(coord, coord, coord))
def test_random_move_files_match_reference(tmp_path_factory, lines, home):
    path = tmp_path_factory.mktemp("hyp") / "r.gcode"
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    tp = load(path, home=home)
    ref = interpret(text, home=home)
    compare(tp, ref, tol=5e-3)
