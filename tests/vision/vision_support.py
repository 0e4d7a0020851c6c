"""Glue for the vision tests and bench/vision.py: G-code (real slicer fixtures or
vision.synth layouts) -> edge.toolpath.load -> raster on the scene generator's canvas."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edge.toolpath import load as parse
from edge.toolpath import model as m
from edge.toolpath import raster

ROOT = Path(__file__).resolve().parents[2]
SLICER = ROOT / "tests" / "fixtures" / "slicer"


def load(path: str | Path) -> m.Toolpath:
    return parse(str(path))


_TMP = tempfile.TemporaryDirectory(prefix="fabedge-vision-")   # removed at exit; toolpaths mmap their files


def load_text(text: str, name: str = "job.gcode") -> m.Toolpath:
    p = Path(_TMP.name) / f"{len(list(Path(_TMP.name).iterdir()))}-{name}"
    p.write_text(text)
    return load(p)


def canvas_mask(tp: m.Toolpath, kind: str = "first_layer") -> np.ndarray:
    """The job's raster on the scene generator's canvas grid."""
    from vision.synth import CANVAS
    bounds = (CANVAS.x0, CANVAS.y0, CANVAS.x1, CANVAS.y1)
    if kind == "cut":
        return raster.cut_paths(tp, CANVAS.mm_per_px, bounds, kerf_mm=0.3).mask   # 2 px: same width at any phase
    return raster.first_layer(tp, CANVAS.mm_per_px, bounds).mask
