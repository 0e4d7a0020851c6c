"""Camera inspection for the agent: joins the job's toolpath raster with vision.

Three pure functions (no threads, no globals besides a small cache of the
reference's registration); the agent runs them in a worker process so they
never starve streaming:

    bed_clear(frame, reference, toolpath, cfg, overlay_dir=None) -> Verdict
    first_layer(frame, reference, toolpath, cfg, overlay_dir=None) -> Verdict
    cut(frame, reference, toolpath, cfg, overlay_dir=None) -> Verdict

`verdict` is "clear"/"occupied" for the bed, "pass"/"warn"/"fail" otherwise.
Unusable input (no reference, markers hidden, camera moved, wrong-size frame)
raises InspectionError with one sentence for the operator.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.config import Config
from edge.errors import FabedgeError, GcodeError
from edge.toolpath import raster
from edge.toolpath.model import Toolpath
from vision import overlay as ov
from vision.bedclear import check_bed_clear
from vision.cutquality import check_cut
from vision.errors import VisionError
from vision.firstlayer import check_first_layer
from vision.images import check_frame, same_size
from vision.registration import AlignedPair, BedGrid, MarkerLayout, Registration, align_pair, register

CUT_MM_PER_PX = 0.25     # kerfs are narrow: the cut check samples the bed finer than the other checks


class InspectionError(FabedgeError):
    """An image cannot be inspected (no reference, markers hidden, camera moved, bad image)."""


@dataclass
class Verdict:
    check: str                                  # bed_clear | first_layer | cut
    verdict: str                                # clear | occupied | pass | warn | fail
    reasons: list[str]
    details: dict = field(default_factory=dict)
    overlay_path: str | None = None
    overlay_sha256: str | None = None

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def layout(cfg: Config) -> MarkerLayout:
    c = cfg.camera
    return MarkerLayout.from_list(c.aruco_dictionary, c.marker_size_mm, c.markers)


def grid(cfg: Config, mm_per_px: float | None = None, margin_mm: float = 0.0) -> BedGrid:
    """The bed (the configured XY volume, plus a margin) as a raster at the camera's mm_per_px."""
    m = margin_mm
    return BedGrid(cfg.volume.x[0] - m, cfg.volume.y[0] - m, cfg.volume.x[1] + m, cfg.volume.y[1] + m,
                   mm_per_px or cfg.camera.mm_per_px)


_REF_CACHE: dict[str, Registration] = {}


def _reference_registration(reference: np.ndarray, lay: MarkerLayout) -> Registration:
    """The reference is registered once per content (its markers also guide the frame's search)."""
    key = hashlib.sha1(np.ascontiguousarray(reference[::8, ::8]).tobytes()).hexdigest() + repr(reference.shape) + repr(lay)
    reg = _REF_CACHE.get(key)
    if reg is None:
        if len(_REF_CACHE) > 8:
            _REF_CACHE.clear()
        reg = register(reference, lay)
        _REF_CACHE[key] = reg
    return reg


def _align(frame: np.ndarray, reference: np.ndarray | None, cfg: Config, g: BedGrid, what: str,
           grey: bool = False) -> AlignedPair:
    if reference is None:
        raise InspectionError(f"{what}: no empty-bed reference image (camera.reference); take one with the bed "
                              "empty before inspecting")
    size = (cfg.camera.width, cfg.camera.height)
    try:
        frame = check_frame(frame, "frame", size)
        reference = check_frame(reference, "reference", size)
        same_size(frame, reference, "frame", "reference")
        if grey:   # the check needs no colour: warp a third of the data
            frame, reference = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
        lay = layout(cfg)
        return align_pair(frame, reference, lay, g, _reference_registration(reference, lay))
    except VisionError as exc:
        raise InspectionError(f"{what}: {exc}") from None


def _finish(v: Verdict, pair: AlignedPair, t0: float, image: np.ndarray | None, overlay_dir: str | Path | None,
            stem: str) -> Verdict:
    v.details["registration_mm"] = round(pair.frame_reg.reprojection_mm, 3)
    v.details["camera_shift_px"] = round(pair.camera_shift_px, 1)
    v.details["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    if overlay_dir is not None and image is not None:
        path = Path(overlay_dir) / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"
        v.overlay_sha256 = ov.save_png(image, path)
        v.overlay_path = str(path)
    v.details = _jsonable(v.details)
    return v


def bed_clear(frame: np.ndarray, reference: np.ndarray | None, toolpath: Toolpath | None, cfg: Config,
              overlay_dir: str | Path | None = None) -> Verdict:
    """Is the bed as empty as in the reference? `occupied` lists what is where (mm)."""
    t0 = time.perf_counter()
    g = grid(cfg)
    pair = _align(frame, reference, cfg, g, "bed-clear")
    res = check_bed_clear(pair.frame, pair.reference, g)
    v = Verdict("bed_clear", res.verdict, res.reasons, res.details())
    image = ov.bed_clear_overlay(pair.frame, res, g) if overlay_dir is not None else None
    return _finish(v, pair, t0, image, overlay_dir, "bed-clear")


def expected_mask(toolpath: Toolpath, cfg: Config, g: BedGrid, kind: str) -> raster.Raster:
    bounds = (g.x0, g.y0, g.x1, g.y1)
    try:
        if kind == "cut":
            return raster.cut_paths(toolpath, g.mm_per_px, bounds)
        return raster.first_layer(toolpath, g.mm_per_px, bounds, cfg.limits.filament_diameter_mm,
                                  cfg.limits.line_width_mm)
    except GcodeError as exc:
        raise InspectionError(str(exc)) from None


def first_layer(frame: np.ndarray, reference: np.ndarray | None, toolpath: Toolpath | None, cfg: Config,
                overlay_dir: str | Path | None = None) -> Verdict:
    """The first layer against the job's toolpath: per object coverage, offset, gaps; material outside."""
    if toolpath is None:
        raise InspectionError("first-layer: needs the job's G-code (its first layer is the expectation)")
    t0 = time.perf_counter()
    g = grid(cfg)
    r = expected_mask(toolpath, cfg, g, "first_layer")
    pair = _align(frame, reference, cfg, g, "first-layer")
    res = check_first_layer(pair.frame, pair.reference, r.mask, g, r.objects)
    v = Verdict("first_layer", res.verdict, res.reasons, res.details())
    image = ov.first_layer_overlay(pair.frame, res) if overlay_dir is not None else None
    return _finish(v, pair, t0, image, overlay_dir, "first-layer")


def cut(frame: np.ndarray, reference: np.ndarray | None, toolpath: Toolpath | None, cfg: Config,
        overlay_dir: str | Path | None = None) -> Verdict:
    """A laser job's cuts: through along every path, kerf, scorch, parts separated."""
    if toolpath is None:
        raise InspectionError("cut: needs the job's G-code (its cut paths are the expectation)")
    t0 = time.perf_counter()
    # a margin: a cut along the edge of the work area needs the sheet on both sides of it in view
    g = grid(cfg, min(cfg.camera.mm_per_px, CUT_MM_PER_PX), margin_mm=6.0)
    r = expected_mask(toolpath, cfg, g, "cut")
    pair = _align(frame, reference, cfg, g, "cut", grey=True)
    res = check_cut(pair.frame, pair.reference, r.mask, g, r.objects, r.line_width_mm)
    v = Verdict("cut", res.verdict, res.reasons, res.details())
    image = ov.cut_overlay(pair.frame, res) if overlay_dir is not None else None
    return _finish(v, pair, t0, image, overlay_dir, "cut")
