"""The first layer against the toolpath: is each object there, where it should be,
complete, and is there material where none was asked for?

Input: frame and empty-bed reference on the bed grid, and the expected label
mask (the toolpath raster, 0 nothing, 1..254 objects, 255 no object) on the
same grid. Material is what changed against the reference once the lighting
change is removed (vision.normalize). Each object's offset comes from
normalised cross-correlation of its expected mask with the material seen,
refined to sub-pixel; coverage and gaps are then measured at that offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.normalize import change_map, components, log_image
from vision.registration import BedGrid

NO_OBJECT = 255
_DISC = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))   # symmetric: opening must not shift masks


@dataclass(frozen=True)
class FirstLayerParams:
    threshold: float = 0.22            # log-ratio change that counts as material
    light_sigma_mm: float = 8.0
    texture_weight: float = 1.0        # extra change asked for, per unit of the bed's local log-contrast
    search_mm: float = 7.0             # largest offset searched for
    colour_tolerance: float = 0.3     # log-colour distance from the object's filament colour
    fail_coverage: float = 0.5         # below: object missing
    warn_coverage: float = 0.84        # below: under-extrusion / gaps
    fail_offset_mm: float = 0.75       # above: object shifted...
    min_shift_gain: float = 0.035      # ...when the shifted fit beats the planned place by this much (else noise)
    warn_missing_mm2: float = 15.0     # largest hole in an object
    fail_missing_mm2: float = 60.0
    warn_outside_mm2: float = 20.0     # material where the toolpath has none
    fail_outside_mm2: float = 40.0
    outside_tolerance_mm: float = 1.5
    min_object_mm2: float = 20.0       # thinner/smaller islands (skirt, purge line) are not judged


@dataclass
class ObjectResult:
    label: int
    name: str
    expected_mm2: float
    coverage: float                    # fraction of the expected area covered, at the measured offset
    offset_mm: tuple[float, float]     # where the object really is, relative to the toolpath (bed mm)
    largest_missing_mm2: float
    shift_gain: float = 0.0            # how much better the offset fits than the toolpath's own place

    def to_dict(self) -> dict:
        return {"label": self.label, "name": self.name, "expected_mm2": round(self.expected_mm2, 1),
                "coverage": round(self.coverage, 3),
                "offset_mm": [round(self.offset_mm[0], 2), round(self.offset_mm[1], 2)],
                "largest_missing_mm2": round(self.largest_missing_mm2, 1), "shift_gain": round(self.shift_gain, 3)}


@dataclass
class FirstLayerResult:
    verdict: str                       # pass | warn | fail
    reasons: list[str]
    objects: list[ObjectResult]
    outside_mm2: float
    outside_blobs: list[tuple[float, float, float]] = field(default_factory=list)   # (x mm, y mm, area mm2)
    material: np.ndarray | None = None     # bool, grid
    expected: np.ndarray | None = None     # uint8 labels, grid (as given)
    aligned_expected: np.ndarray | None = None  # bool, expected shifted by each object's offset
    notes: list[str] = field(default_factory=list)   # what could not be judged (glare)

    def details(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects], "outside_mm2": round(self.outside_mm2, 1),
                "outside_blobs": [[round(x, 1), round(y, 1), round(a, 1)] for x, y, a in self.outside_blobs[:10]],
                "notes": list(self.notes)}


def _offset(expected: np.ndarray, material: np.ndarray, box: tuple[int, int, int, int], search: int) -> tuple[float, float, float, float]:
    """(dx, dy px, peak score, gain over no shift) that best lays the expected mask onto the material."""
    rows, cols = material.shape
    p = 3                     # the template keeps a rim of bed around the object: its edges are what aligns
    x, y = max(0, box[0] - p), max(0, box[1] - p)
    w, h = min(cols, box[0] + box[2] + p) - x, min(rows, box[1] + box[3] + p) - y
    x0, y0 = max(0, x - search), max(0, y - search)
    x1, y1 = min(cols, x + w + search), min(rows, y + h + search)
    tmpl = cv2.GaussianBlur(expected[y:y + h, x:x + w].astype(np.float32), (0, 0), 1.0)
    area = material[y0:y1, x0:x1].astype(np.float32)
    if tmpl.std() == 0 or area.std() == 0 or area.shape[0] < h or area.shape[1] < w:
        return 0.0, 0.0, 0.0, 0.0
    score = cv2.matchTemplate(area, tmpl, cv2.TM_CCOEFF_NORMED)
    _, peak, _, (px, py) = cv2.minMaxLoc(score)

    def sub(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else 0.5 * (a - c) / d

    fx = sub(score[py, px - 1], peak, score[py, px + 1]) if 0 < px < score.shape[1] - 1 else 0.0
    fy = sub(score[py - 1, px], peak, score[py + 1, px]) if 0 < py < score.shape[0] - 1 else 0.0
    zx, zy = x - x0, y - y0                      # where the toolpath's own place is in the score map
    at_zero = float(score[zy, zx]) if zy < score.shape[0] and zx < score.shape[1] else -1.0
    return px + fx + x0 - x, py + fy + y0 - y, float(peak), float(peak) - at_zero


def _same_colour(norm_log: np.ndarray, material: np.ndarray, where: np.ndarray, tol: float) -> np.ndarray:
    """Material of the object's own filament colour: a shadow, a lifted corner or thin, under-extruded
    lines change the image too, but not to the colour of a solid first layer. The 1-px rim (mixed with
    the bed by the camera's blur) is left out by the caller."""
    sel = material & where
    if sel.sum() < 20:
        return material
    colour = np.median(norm_log[sel], axis=0)
    c = [np.abs(ch - v) for ch, v in zip(cv2.split(norm_log), colour)]
    dev = cv2.max(cv2.max(c[0], c[1]), c[2])
    # dark filaments are noisy in log units: widen the tolerance with the object's own spread
    tol = max(tol, 4.0 * float(np.median(dev[sel])))
    return material & (dev < tol)


def _shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(mask.astype(np.uint8), m, mask.shape[::-1], flags=cv2.INTER_NEAREST) > 0


def check_first_layer(frame_bed: np.ndarray, reference_bed: np.ndarray, expected: np.ndarray, grid: BedGrid,
                      names: list[str] | None = None, params: FirstLayerParams = FirstLayerParams()) -> FirstLayerResult:
    """Verdict pass / warn / fail with reasons, per-object measurements and masks for the overlay."""
    if expected.shape != frame_bed.shape[:2]:
        raise ValueError(f"expected mask {expected.shape} is not on the frame's grid {frame_bed.shape[:2]}")
    s = grid.mm_per_px
    names = names or []
    any_expected = expected > 0
    tol = max(1, int(round(params.outside_tolerance_mm / s)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    near = cv2.dilate(any_expected.astype(np.uint8), kernel) > 0
    frame_log, ref_log = log_image(frame_bed), log_image(reference_bed)
    strength, gain = change_map(frame_log, ref_log, near, params.light_sigma_mm / s, params.threshold)
    # on a textured bed, glare flattens the texture: ask for more change where the bed itself varies
    grey = cv2.cvtColor(ref_log, cv2.COLOR_BGR2GRAY)
    texture = np.sqrt(np.maximum(cv2.blur(grey * grey, (3, 3)) - cv2.blur(grey, (3, 3)) ** 2, 0))
    strength = np.maximum(strength - params.texture_weight * texture, 0)
    material = strength > params.threshold
    soft = np.clip(strength / (2 * params.threshold), 0, 1)   # graded evidence: sharper correlation peaks
    material = cv2.morphologyEx(material.astype(np.uint8), cv2.MORPH_OPEN, _CROSS) > 0
    # glare that saturates the sensor hides what is under it: such pixels are not judged
    blind = cv2.dilate((frame_bed.min(axis=2) >= 245).astype(np.uint8), _CROSS) > 0

    labels = [int(v) for v in np.unique(expected) if v not in (0, NO_OBJECT)]
    islands: list[tuple[int, str, np.ndarray]] = [(k, names[k - 1] if k - 1 < len(names) else f"object {k}",
                                                   expected == k) for k in labels]
    if not labels:   # no object labels: judge each solid island of the toolpath
        n, lab = cv2.connectedComponents((expected > 0).astype(np.uint8), connectivity=8)
        islands = [(NO_OBJECT, f"island {i}", lab == i) for i in range(1, n)]
    search = int(round(params.search_mm / s))
    min_px = params.min_object_mm2 / (s * s)
    aligned = np.zeros(expected.shape, bool)
    off_colour = np.zeros(expected.shape, bool)    # changed, but not to the filament's colour
    results, reasons, verdict, notes = [], [], "pass", []

    def flag(level: str, text: str) -> None:
        nonlocal verdict
        reasons.append(text)
        if level == "fail" or verdict == "pass":
            verdict = level

    for label, name, obj in islands:
        # gaps finer than the camera resolves (between perimeters and infill) are not expected to show
        obj = cv2.morphologyEx(obj.astype(np.uint8), cv2.MORPH_CLOSE, _DISC) > 0
        solid = cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8))
        area_px = int(obj.sum())
        if solid.sum() < min_px:       # skirt, purge line, thin features: not judged on their own
            aligned |= obj
            continue
        hidden = float((obj & blind).sum()) / area_px
        if hidden > 0.4:               # glare hides it: say so rather than guess
            notes.append(f"{name}: {hidden:.0%} hidden by glare, not judged")
            aligned |= obj
            continue
        box = cv2.boundingRect(obj.astype(np.uint8))
        dx, dy, peak, gain_ = _offset(obj, soft, box, search)
        m = search + 3                 # per-object work happens in a window around it
        win = (slice(max(0, box[1] - m), box[1] + box[3] + m), slice(max(0, box[0] - m), box[0] + box[2] + m))
        ob, mat, bl = obj[win], material[win], blind[win]
        seen_px = max(1, int((ob & ~bl).sum()))
        cov0 = float((mat & ob & ~bl).sum()) / seen_px
        moved = _shift(ob, dx, dy)
        cov = float((mat & moved & ~bl).sum()) / max(1, int((moved & ~bl).sum()))
        if peak < 0.3 or cov + 0.02 < cov0:   # nothing there to align to: keep the toolpath's place
            dx, dy, moved, gain_ = 0.0, 0.0, ob, 0.0
        aligned[win] |= moved
        # judged on its solid inside: the rim mixes with the bed in the camera's blur, thin lines vanish in it
        core = cv2.erode(moved.astype(np.uint8), _CROSS) > 0
        core = core if core.any() else moved
        good = _same_colour(frame_log[win] - gain[win], mat, core & ~bl, params.colour_tolerance)
        off_colour[win] |= core & mat & ~good
        cov = float((good & core & ~bl).sum()) / max(1, int((core & ~bl).sum()))
        holes = core & ~good & ~bl
        holes = cv2.morphologyEx(holes.astype(np.uint8), cv2.MORPH_OPEN, _CROSS)
        blobs = components(holes, 1)
        largest = blobs[0][4] * s * s if blobs else 0.0
        off = (dx * s, -dy * s)
        res = ObjectResult(label, name, area_px * s * s, cov, off, largest, gain_)
        results.append(res)
        dist = float(np.hypot(*off))
        if cov < params.fail_coverage:
            flag("fail", f"{name}: missing (only {cov:.0%} of its first layer is there)")
            continue
        if dist > params.fail_offset_mm and gain_ >= params.min_shift_gain:
            flag("fail", f"{name}: shifted by {dist:.1f} mm (X{off[0]:+.1f} Y{off[1]:+.1f})")
        if largest > params.fail_missing_mm2:
            flag("fail", f"{name}: a gap of {largest:.0f} mm^2 in the first layer")
        elif largest > params.warn_missing_mm2:
            flag("warn", f"{name}: a gap of {largest:.0f} mm^2 in the first layer")
        if cov < params.warn_coverage:
            flag("warn", f"{name}: only {cov:.0%} covered (under-extrusion or gaps)")

    near_aligned = cv2.dilate((aligned | any_expected).astype(np.uint8), kernel) > 0
    outside = material & ~near_aligned
    blobs = components(outside, max(2, int(3.0 / (s * s))))
    outside_mm2 = sum(b[4] for b in blobs) * s * s
    blob_list = [(*grid.px_to_mm(b[5], b[6]), b[4] * s * s) for b in blobs]
    if outside_mm2 > params.fail_outside_mm2:
        flag("fail", f"material outside the toolpath: {outside_mm2:.0f} mm^2 (blobs, spaghetti or a part left on the bed)")
    elif outside_mm2 > params.warn_outside_mm2:
        flag("warn", f"material outside the toolpath: {outside_mm2:.0f} mm^2")
    return FirstLayerResult(verdict, reasons, results, outside_mm2, blob_list, material & ~off_colour, expected,
                            aligned, notes)
