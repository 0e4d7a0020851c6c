"""Rasterise the first layer (printers) or the cut paths (lasers) into a label mask
in bed millimetres, so vision can compare what the camera sees with what the
G-code asked for.

Mask convention (shared with vision/, which receives the array and the grid):
pixel [row, col] covers x in origin_x + [col, col+1) * mm_per_px and
y in top_y - [row, row+1) * mm_per_px, with top_y = origin_y + rows * mm_per_px;
row 0 is the back of the bed (+Y up, as a person looks at the machine).
Labels: 0 nothing, k (1..254) = object k-1 of `Toolpath.objects`, 255 toolpath
that belongs to no object (skirt, purge line) or a file without objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from edge.errors import GcodeError
from edge.toolpath.model import SF_EXTRUDE, SF_LASER, Toolpath

NO_OBJECT = 255
MAX_LABEL = 254


@dataclass(frozen=True)
class Raster:
    """A label mask over a bed grid (see module docstring for the convention)."""
    mask: np.ndarray                  # uint8 [rows, cols]
    origin_mm: tuple[float, float]    # (x, y) of the mask's lower-left corner (front-left)
    mm_per_px: float
    objects: list[str]                # label k -> objects[k-1]
    kind: str                         # "first_layer" | "cut"
    line_width_mm: float              # median drawn width (extrusion) or the cut width

    @property
    def labels(self) -> list[int]:
        """Labels present in the mask (without 0)."""
        return [int(v) for v in np.unique(self.mask) if v != 0]


@njit(cache=True)
def _draw_capsules(mask, x0, y0, x1, y1, half_w, label, ox, top, s):
    """Mark every pixel a capsule (segment of half-width half_w) touches."""
    rows, cols = mask.shape
    pad = 0.5 * s  # a pixel counts when the line passes within half a pixel of its centre
    for i in range(x0.shape[0]):
        r = half_w[i] + pad
        ax = x0[i]
        ay = y0[i]
        bx = x1[i]
        by = y1[i]
        c_lo = int(math.floor((min(ax, bx) - r - ox) / s))
        c_hi = int(math.floor((max(ax, bx) + r - ox) / s))
        r_lo = int(math.floor((top - (max(ay, by) + r)) / s))
        r_hi = int(math.floor((top - (min(ay, by) - r)) / s))
        if c_lo < 0:
            c_lo = 0
        if r_lo < 0:
            r_lo = 0
        if c_hi > cols - 1:
            c_hi = cols - 1
        if r_hi > rows - 1:
            r_hi = rows - 1
        dx = bx - ax
        dy = by - ay
        ll = dx * dx + dy * dy
        r2 = r * r
        for row in range(r_lo, r_hi + 1):
            py = top - (row + 0.5) * s
            for col in range(c_lo, c_hi + 1):
                px = ox + (col + 0.5) * s
                t = 0.0
                if ll > 0.0:
                    t = ((px - ax) * dx + (py - ay) * dy) / ll
                    if t < 0.0:
                        t = 0.0
                    elif t > 1.0:
                        t = 1.0
                qx = ax + t * dx - px
                qy = ay + t * dy - py
                if qx * qx + qy * qy <= r2:
                    mask[row, col] = label[i]


def _segment_starts(tp: Toolpath) -> tuple[np.ndarray, np.ndarray]:
    """Start points of segments: the previous segment's end (the toolpath start for the first)."""
    xs = np.empty_like(tp.seg_x)
    ys = np.empty_like(tp.seg_y)
    if len(xs):
        xs[0], ys[0] = tp.start[0], tp.start[1]
        xs[1:], ys[1:] = tp.seg_x[:-1], tp.seg_y[:-1]
    return xs, ys


def _labels(tp: Toolpath, sel: np.ndarray) -> np.ndarray:
    if tp.seg_object is None or not tp.objects:
        return np.full(int(sel.sum()), NO_OBJECT, np.uint8)
    obj = tp.seg_object[sel].astype(np.int32)
    return np.where(obj < 0, NO_OBJECT, np.minimum(obj + 1, MAX_LABEL)).astype(np.uint8)


def _grid(bounds: tuple[float, float, float, float], mm_per_px: float) -> tuple[int, int]:
    x0, y0, x1, y1 = bounds
    if not (mm_per_px > 0 and x1 > x0 and y1 > y0):
        raise ValueError(f"raster grid: bad bounds {bounds} or mm_per_px {mm_per_px}")
    return int(round((y1 - y0) / mm_per_px)), int(round((x1 - x0) / mm_per_px))


def first_layer(tp: Toolpath, mm_per_px: float, bounds: tuple[float, float, float, float],
                filament_diameter_mm: float = 1.75, line_width_mm: float = 0.45) -> Raster:
    """The first layer's extrusions as a label mask over `bounds` (x0, y0, x1, y1 in bed mm).

    Each segment's width comes from its extruded volume / (layer height x length);
    when that is not computable (no layer height, zero length) or implausible
    (outside 0.3x..3x the configured width), the configured width is used.
    """
    extrude = (tp.seg_flags & SF_EXTRUDE) != 0
    if not extrude.any():
        raise GcodeError(f"{tp.path}: nothing is extruded: no first layer to inspect")
    start, end = tp.first_layer
    if start >= 0 and end >= start:
        sel = extrude & (tp.seg_line >= start) & (tp.seg_line <= end)
    else:  # layers not analysed yet: the first layer is what is extruded at the lowest height
        z_min = float(tp.seg_z[extrude].min())
        sel = extrude & (tp.seg_z <= z_min + 0.02)
    if not sel.any():
        raise GcodeError(f"{tp.path}: lines {start + 1}-{end + 1} (first layer) extrude nothing")
    sx, sy = _segment_starts(tp)
    x0, y0 = sx[sel].astype(np.float64), sy[sel].astype(np.float64)
    x1, y1 = tp.seg_x[sel].astype(np.float64), tp.seg_y[sel].astype(np.float64)
    length = np.hypot(x1 - x0, y1 - y0)
    layer_h = float(np.median(tp.seg_z[sel]))
    area = math.pi * filament_diameter_mm ** 2 / 4.0
    width = np.full(len(length), line_width_mm)
    if layer_h > 0.01:
        with np.errstate(divide="ignore", invalid="ignore"):
            w = tp.seg_de[sel].astype(np.float64) * area / (layer_h * length)
        ok = np.isfinite(w) & (w > 0.3 * line_width_mm) & (w < 3.0 * line_width_mm)
        width = np.where(ok, w, line_width_mm)
    rows, cols = _grid(bounds, mm_per_px)
    mask = np.zeros((rows, cols), np.uint8)
    _draw_capsules(mask, x0, y0, x1, y1, width / 2.0, _labels(tp, sel),
                   float(bounds[0]), float(bounds[1] + rows * mm_per_px), float(mm_per_px))
    return Raster(mask, (float(bounds[0]), float(bounds[1])), float(mm_per_px), list(tp.objects),
                  "first_layer", float(np.median(width)))


def cut_paths(tp: Toolpath, mm_per_px: float, bounds: tuple[float, float, float, float],
              kerf_mm: float = 0.2) -> Raster:
    """A laser job's cut paths (laser on) as a label mask, drawn `kerf_mm` wide."""
    sel = (tp.seg_flags & SF_LASER) != 0
    if not sel.any():
        raise GcodeError(f"{tp.path}: the laser is never on while moving: no cut paths to inspect")
    sx, sy = _segment_starts(tp)
    n = int(sel.sum())
    rows, cols = _grid(bounds, mm_per_px)
    mask = np.zeros((rows, cols), np.uint8)
    _draw_capsules(mask, sx[sel].astype(np.float64), sy[sel].astype(np.float64),
                   tp.seg_x[sel].astype(np.float64), tp.seg_y[sel].astype(np.float64),
                   np.full(n, kerf_mm / 2.0), _labels(tp, sel),
                   float(bounds[0]), float(bounds[1] + rows * mm_per_px), float(mm_per_px))
    return Raster(mask, (float(bounds[0]), float(bounds[1])), float(mm_per_px), list(tp.objects), "cut", kerf_mm)


def for_job(tp: Toolpath, mm_per_px: float, bounds: tuple[float, float, float, float],
            filament_diameter_mm: float = 1.75, line_width_mm: float = 0.45) -> Raster:
    """The raster vision needs for this job: cut paths for a laser file, else the first layer."""
    if tp.kind == "laser" or ((tp.seg_flags & SF_LASER) != 0).any() and not ((tp.seg_flags & SF_EXTRUDE) != 0).any():
        return cut_paths(tp, mm_per_px, bounds)
    return first_layer(tp, mm_per_px, bounds, filament_diameter_mm, line_width_mm)
