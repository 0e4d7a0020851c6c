"""analyze(path, cfg): everything fabedge knows about a job before it may be
queued — parse, plan, layers, checks — as one Analysis the agent, the
streamer (progress, ETA, layer) and `fabedge analyze` all use."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numba import njit

from edge.config import Config
from edge.toolpath.checks import Finding, check
from edge.toolpath.layers import assign_layers
from edge.toolpath.model import SF_EXTRUDE, SF_LASER, Toolpath
from edge.toolpath.parse import load

try:
    from edge.toolpath.plan import plan as _plan
except ModuleNotFoundError as exc:  # the planner is optional in a stripped-down build
    if exc.name != "edge.toolpath.plan":
        raise
    _plan = None

BBox = tuple[tuple[float, float, float], tuple[float, float, float]]
# (path, motion, max_line_length, home) -> (parsed Toolpath, wait() after which line_time is planned)
Loader = Callable[[str, Any, int, tuple[float, float, float]], tuple[Toolpath, Callable[[], None]]]


@dataclass
class Analysis:
    """The result of analyze(); `ok` means the job may be queued."""

    toolpath: Toolpath
    errors: list[Finding]
    warnings: list[Finding]
    layers: int
    first_layer: tuple[int, int] | None        # 1-based [start, end] lines, None without layers
    bbox_extrude: BBox | None                   # of extruding (printer) / laser-on (laser) moves
    bbox_all: BBox | None                       # of all moves
    filament_mm: float
    estimated_time_s: float
    planned: bool
    _cum: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def lines(self) -> int:
        return self.toolpath.lines

    @property
    def kind(self) -> str:
        return self.toolpath.kind

    def eta_s(self, line: int) -> float:
        """Planned seconds remaining after the 1-based `line` has been executed."""
        if self._cum is None:
            self._cum = np.cumsum(self.toolpath.line_time, dtype=np.float64)
        if line <= 0 or len(self._cum) == 0:
            return self.estimated_time_s
        idx = min(line, len(self._cum)) - 1
        return max(0.0, float(self._cum[-1] - self._cum[idx]))

    def layer_of(self, line: int) -> int:
        """Layer index (0-based) of a 1-based line; -1 before the first layer or out of range."""
        if 1 <= line <= self.toolpath.lines:
            return int(self.toolpath.layer[line - 1])
        return -1

    def to_dict(self) -> dict:
        tp = self.toolpath

        def box(b: BBox | None) -> dict | None:
            return None if b is None else {"min": [round(v, 4) for v in b[0]], "max": [round(v, 4) for v in b[1]]}

        return {
            "file": tp.path,
            "size_bytes": tp.size,
            "lines": tp.lines,
            "kind": tp.kind,
            "ok": self.ok,
            "layers": self.layers,
            "first_layer": {"start_line": self.first_layer[0] if self.first_layer else None,
                            "end_line": self.first_layer[1] if self.first_layer else None},
            "bbox_mm": box(self.bbox_extrude),
            "bbox_all_mm": box(self.bbox_all),
            "estimated_time_s": round(self.estimated_time_s, 3),
            "time_planned": self.planned,
            "filament_mm": round(self.filament_mm, 3),
            "objects": list(tp.objects),
            "warnings": [f.to_dict() for f in self.warnings],
            "errors": [f.to_dict() for f in self.errors],
        }


@njit(cache=True, _nrt=False)
def _grow(out, base, a, b, k):
    out[base + k] = min(out[base + k], a, b)
    out[base + 3 + k] = max(out[base + 3 + k], a, b)


@njit(cache=True, _nrt=False)
def _bboxes(x, y, z, flags, work_mask, sx, sy, sz, out):
    """out[0:6] = work bbox (min xyz, max xyz), out[6:12] = all moves; a segment counts from its start."""
    for k in range(3):
        out[k] = np.inf
        out[k + 3] = -np.inf
        out[k + 6] = np.inf
        out[k + 9] = -np.inf
    px, py, pz = sx, sy, sz
    nwork = 0
    for i in range(len(x)):
        _grow(out, 6, px, x[i], 0)
        _grow(out, 6, py, y[i], 1)
        _grow(out, 6, pz, z[i], 2)
        if flags[i] & work_mask:
            _grow(out, 0, px, x[i], 0)
            _grow(out, 0, py, y[i], 1)
            _grow(out, 0, pz, z[i], 2)
            nwork += 1
        px, py, pz = x[i], y[i], z[i]
    return nwork


def analyze(path: str | os.PathLike, cfg: Config, loader: Loader | None = None) -> Analysis:
    """Parse, plan, find layers and check a G-code file against this machine's config.

    loader: how to parse and plan; by default in order on the calling thread. A
    caller that may use threads (edge.plan_follow) passes one that plans behind
    the parser; layers and checks then run while the last slice is planned."""
    vol = cfg.volume
    home = (vol.x[0], vol.y[0], vol.z[0])
    planned = _plan is not None
    finish = None
    if planned and loader is not None:
        tp, finish = loader(os.fspath(path), cfg.motion, cfg.limits.max_line_length, home)
    else:
        tp = load(path, max_line_length=cfg.limits.max_line_length, home=home)
        if planned:
            _plan(tp, cfg.motion)
    try:
        n_layers = assign_layers(tp)
        errors, warnings = check(tp, cfg)
        out = np.empty(12, np.float64)
        work = SF_LASER if tp.kind == "laser" else SF_EXTRUDE
        nwork = _bboxes(tp.seg_x, tp.seg_y, tp.seg_z, tp.seg_flags, np.uint8(work), *map(np.float32, tp.start), out)
    finally:
        if finish is not None:
            finish()
    as_box = lambda o: (tuple(float(v) for v in o[:3]), tuple(float(v) for v in o[3:6]))  # noqa: E731
    first = (tp.first_layer[0] + 1, tp.first_layer[1] + 1) if tp.first_layer[0] >= 0 else None
    return Analysis(
        toolpath=tp, errors=errors, warnings=warnings, layers=n_layers, first_layer=first,
        bbox_extrude=as_box(out[:6]) if nwork else None,
        bbox_all=as_box(out[6:]) if len(tp.seg_x) else None,
        filament_mm=max(0.0, float(tp.seg_de.sum(dtype=np.float64))),
        estimated_time_s=tp.total_time(), planned=planned,
    )


WARM_GCODE = b"""; fabedge numba cache warm-up
G28
M104 S200
M140 S60
M82
G92 E0
G1 Z0.2 F600
G1 X10 Y10 E1 F1200
G2 X20 Y10 I5 J0 E2
G3 X10 Y10 R5 E3
G1 Z0.4
G1 X15 Y15 E4
M3 S10
M5
M486 S0 A"cube"
; printing object cube
N1 G1 X1*2
"""


def warm() -> None:
    """Run every kernel once (parse, layers, checks, plan) so numba's cache is filled."""
    from edge.config import default
    fd, name = tempfile.mkstemp(suffix=".gcode")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(WARM_GCODE)
        cfg = default()
        analyze(name, cfg)
        if _plan is not None:
            _plan(load(name), cfg.motion.__class__(planner="grbl"))
    finally:
        os.unlink(name)
