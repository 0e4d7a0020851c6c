"""A tiny pure-Python G-code interpreter, written independently of the numba
parser, to check it: it tracks the end position and extrusion of every line
(arcs by their end point only) with Marlin's modal rules."""

from __future__ import annotations

import re

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
                if not given:
                    off, e = pos[:], 0.0
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
