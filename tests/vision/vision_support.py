"""Glue for the vision tests and bench/vision.py: G-code -> Toolpath -> raster on a grid.

Uses the project's parser (edge.toolpath.load). Until it has landed, a minimal
reader of the plain G0/G1 files vision.synth writes stands in (absolute XY,
relative E, `; printing object` labels, laser S), so the vision work can be
tested on its own.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from edge.toolpath import model as m
from edge.toolpath import raster

ROOT = Path(__file__).resolve().parents[2]
SLICER = ROOT / "tests" / "fixtures" / "slicer"


def _parser():
    try:
        from edge.toolpath import load  # type: ignore[attr-defined]
        return load
    except ImportError:
        return None


def _minimal_load(path: Path) -> m.Toolpath:
    lines = path.read_text().splitlines()
    sx, sy, sz, de, sf, seg_line, seg_obj = [], [], [], [], [], [], []
    x = y = z = 0.0
    laser_on, power, obj, objects = False, 0.0, -1, []
    first = last = -1
    for i, line in enumerate(lines):
        if line.startswith("; printing object "):
            name = line[len("; printing object "):].strip()
            objects.append(name)
            obj = len(objects) - 1
            continue
        if line.startswith("; stop printing object"):
            obj = -1
            continue
        code = line.split(";")[0].strip()
        if not code:
            continue
        words = dict((w[0], float(w[1:])) for w in re.findall(r"[A-Z]-?[\d.]+", code))
        if code.startswith(("M3", "M4")):
            laser_on = True
        if code.startswith("M5"):
            laser_on = False
        if "S" in words:
            power = words["S"]
        if not code.startswith(("G0", "G1")):
            continue
        nx, ny, nz = words.get("X", x), words.get("Y", y), words.get("Z", z)
        e = words.get("E", 0.0)
        flags = 0
        if e > 0 and (nx != x or ny != y):
            flags |= m.SF_EXTRUDE
            first = i if first < 0 else first
            last = i
        if code.startswith("G1") and laser_on and power > 0 and (nx != x or ny != y):
            flags |= m.SF_LASER
        if not flags and not (nx != x or ny != y or nz != z):
            continue
        x, y, z = nx, ny, nz
        sx.append(x); sy.append(y); sz.append(z); de.append(e); sf.append(flags); seg_line.append(i); seg_obj.append(obj)
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    n = len(lines)
    return m.Toolpath(str(path), path.stat().st_size, np.zeros(n, np.int64), np.zeros(n, np.uint8),
                      np.zeros(n, np.int16), np.zeros(n, np.uint8), np.zeros(n, np.uint16), np.zeros(n, np.int32),
                      np.zeros(n, np.float32), np.array(seg_line, np.int32), f32(sx), f32(sy), f32(sz), f32(de),
                      np.zeros(len(sx), np.float32), np.zeros(len(sx), np.float32), np.array(sf, np.uint8),
                      kind="laser" if first < 0 else "printer", first_layer=(first, last), objects=objects,
                      seg_object=np.array(seg_obj, np.int16))


def load(path: str | Path) -> m.Toolpath:
    parse = _parser()
    return parse(str(path)) if parse else _minimal_load(Path(path))


def load_text(text: str, name: str = "job.gcode") -> m.Toolpath:
    d = Path(tempfile.mkdtemp(prefix="fabedge-vision-"))
    p = d / name
    p.write_text(text)
    return load(p)


def canvas_mask(tp: m.Toolpath, kind: str = "first_layer") -> np.ndarray:
    """The job's raster on the scene generator's canvas grid."""
    from vision.synth import CANVAS
    bounds = (CANVAS.x0, CANVAS.y0, CANVAS.x1, CANVAS.y1)
    if kind == "cut":
        return raster.cut_paths(tp, CANVAS.mm_per_px, bounds, kerf_mm=0.3).mask   # 2 px: same width at any phase
    return raster.first_layer(tp, CANVAS.mm_per_px, bounds).mask
