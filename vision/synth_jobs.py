"""Random job layouts written as G-code, for the scene generator's first layers and cuts.

Objects (rectangles, discs, L-shapes) never overlap; a printer job gets a skirt,
two perimeters and 45-degree infill per object (PrusaSlicer-style
`; printing object` labels, relative E), a laser job gets outlines and some
holes cut with M4 S. The files go through the real parser like any job.
"""

from __future__ import annotations

import math

import numpy as np


def _shapes(rng: np.random.Generator, n: int, area: tuple[float, float, float, float]) -> list[np.ndarray]:
    """n non-overlapping closed outlines (rectangles, discs, L-shapes) inside area."""
    out, boxes = [], []
    for _ in range(200):
        if len(out) == n:
            break
        w, h = rng.uniform(15, 55), rng.uniform(15, 55)
        x, y = rng.uniform(area[0], area[2] - w), rng.uniform(area[1], area[3] - h)
        if any(x < b[2] + 8 and b[0] < x + w + 8 and y < b[3] + 8 and b[1] < y + h + 8 for b in boxes):
            continue
        kind = rng.integers(3)
        if kind == 0:
            pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        elif kind == 1:
            r = min(w, h) / 2
            t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
            pts = list(zip(x + r + r * np.cos(t), y + r + r * np.sin(t)))
        else:
            a, b = w * rng.uniform(0.35, 0.6), h * rng.uniform(0.35, 0.6)
            pts = [(x, y), (x + w, y), (x + w, y + b), (x + a, y + b), (x + a, y + h), (x, y + h)]
        boxes.append((x, y, x + w, y + h))
        out.append(np.array(pts, np.float64))
    return out


def _infill(poly: np.ndarray, spacing: float, angle: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Straight infill lines across a polygon at `angle` (even-odd rule)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = poly @ np.array([[c, -s], [s, c]])          # into a frame where infill lines are horizontal
    lines = []
    y = rot[:, 1].min() + spacing / 2
    flip = False
    while y < rot[:, 1].max():
        xs = []
        for i in range(len(rot)):
            (x0, y0), (x1, y1) = rot[i], rot[(i + 1) % len(rot)]
            if (y0 <= y < y1) or (y1 <= y < y0):
                xs.append(x0 + (y - y0) * (x1 - x0) / (y1 - y0))
        xs.sort()
        for a, b in zip(xs[::2], xs[1::2]):
            seg = [(a, y), (b, y)] if not flip else [(b, y), (a, y)]
            back = np.array(seg) @ np.array([[c, s], [-s, c]])
            lines.append((tuple(back[0]), tuple(back[1])))
        flip = not flip
        y += spacing
    return lines


def print_job_gcode(seed: int, objects: int | None = None, width: float = 0.45, height: float = 0.2,
                    bed: tuple[float, float, float, float] = (20, 20, 230, 190)) -> str:
    """A first layer (skirt, two perimeters and infill per object) as PrusaSlicer-style G-code."""
    rng = np.random.default_rng(seed)
    polys = _shapes(rng, int(objects or rng.integers(1, 5)), bed)
    e_per_mm = width * height / (math.pi * 1.75 ** 2 / 4)
    out = ["; synthetic first layer (fabedge vision.synth)", "G21", "G90", "M83", "G28", "G1 Z0.2 F720"]

    def path(pts, close=True):
        pts = list(pts) + ([pts[0]] if close else [])
        out.append(f"G0 X{pts[0][0]:.3f} Y{pts[0][1]:.3f}")
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            out.append(f"G1 X{x1:.3f} Y{y1:.3f} E{math.hypot(x1 - x0, y1 - y0) * e_per_mm:.5f} F1200")

    lo = np.min([p.min(0) for p in polys], 0) - 4
    hi = np.max([p.max(0) for p in polys], 0) + 4
    path([(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])])   # skirt (no object)
    for i, poly in enumerate(polys):
        out.append(f"; printing object shape_{i}")
        centre = (poly.min(0) + poly.max(0)) / 2
        half = np.ptp(poly, 0) / 2

        def inset(d: float) -> np.ndarray:   # exact for rectangles and discs, close for L-shapes
            return centre + (poly - centre) * (1 - d / half)
        for k in range(2):
            path([tuple(p) for p in inset((k + 0.5) * width)])
        inner = inset(1.9 * width)
        for a, b in _infill(inner, width, math.pi / 4 if i % 2 == 0 else -math.pi / 4):
            out.append(f"G0 X{a[0]:.3f} Y{a[1]:.3f}")
            out.append(f"G1 X{b[0]:.3f} Y{b[1]:.3f} E{math.hypot(b[0] - a[0], b[1] - a[1]) * e_per_mm:.5f} F1500")
        out.append(f"; stop printing object shape_{i}")
    out += ["G1 Z0.4 F720", "M107", ""]
    return "\n".join(out)


def laser_job_gcode(seed: int, parts: int | None = None, bed: tuple[float, float, float, float] = (30, 30, 220, 180),
                    power: int = 900) -> str:
    """Cut outlines (and some holes) as GRBL G-code, one object per part (M486-free, comment-labelled)."""
    rng = np.random.default_rng(seed)
    polys = _shapes(rng, int(parts or rng.integers(1, 5)), bed)
    out = ["; synthetic laser cut (fabedge vision.synth)", "G21", "G90", "M5", "M4 S0"]
    for i, poly in enumerate(polys):
        out.append(f"; printing object part_{i}")
        rings = [poly]
        size = float(np.ptp(poly, 0).min())
        if size > 25 and rng.random() < 0.5:
            c, r = poly.mean(0), size * 0.15
            t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
            rings.insert(0, np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1))   # holes first
        for ring in rings:
            pts = list(ring) + [ring[0]]
            out.append(f"G0 X{pts[0][0]:.3f} Y{pts[0][1]:.3f}")
            out += [f"G1 X{x:.3f} Y{y:.3f} S{power} F600" for x, y in pts[1:]]
            out.append("S0")
        out.append(f"; stop printing object part_{i}")
    out += ["M5", "G0 X0 Y0", ""]
    return "\n".join(out)


