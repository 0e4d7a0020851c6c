"""Is the bed empty? The frame against the empty-bed reference, in bed coordinates.

Lamp changes, exposure drift and broad glare are removed as a smooth gain on
the log (ratio) image (vision.normalize); what remains and is large enough is
something on the bed, reported with its position and size in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.normalize import change_map, components, log_image
from vision.registration import BedGrid


@dataclass(frozen=True)
class BedClearParams:
    threshold: float = 0.30          # log-ratio change that counts as "different" (after lighting removal)
    min_area_mm2: float = 30.0       # smaller blobs are noise, crumbs or dust
    light_sigma_mm: float = 8.0      # scale of lighting changes followed by the gain field


@dataclass(frozen=True)
class Thing:
    """Something on the bed: centre and size (bounding box) in bed mm, area in mm^2."""
    centre_mm: tuple[float, float]
    size_mm: tuple[float, float]
    area_mm2: float


@dataclass
class BedClearResult:
    verdict: str                       # "clear" | "occupied"
    things: list[Thing] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    change_mask: np.ndarray | None = None

    def details(self) -> dict:
        return {"things": [{"centre_mm": [round(t.centre_mm[0], 1), round(t.centre_mm[1], 1)],
                            "size_mm": [round(t.size_mm[0], 1), round(t.size_mm[1], 1)],
                            "area_mm2": round(t.area_mm2, 1)} for t in self.things]}


def check_bed_clear(frame_bed: np.ndarray, reference_bed: np.ndarray, grid: BedGrid,
                    params: BedClearParams = BedClearParams()) -> BedClearResult:
    """`clear` or `occupied` (with what is where) for a frame and reference already on `grid`."""
    s = grid.mm_per_px
    strength, _ = change_map(log_image(frame_bed), log_image(reference_bed), None,
                             params.light_sigma_mm / s, params.threshold)
    changed = (strength > params.threshold).astype(np.uint8)
    changed[:2], changed[-2:], changed[:, :2], changed[:, -2:] = 0, 0, 0, 0
    blobs = components(changed, int(params.min_area_mm2 / (s * s)))
    things = []
    for x, y, w, h, a, cx, cy in blobs:
        things.append(Thing(grid.px_to_mm(cx, cy), (w * s, h * s), a * s * s))
    if not things:
        return BedClearResult("clear", [], [], changed)
    reasons = [f"something on the bed at X{t.centre_mm[0]:.0f} Y{t.centre_mm[1]:.0f} mm, about "
               f"{t.size_mm[0]:.0f} x {t.size_mm[1]:.0f} mm" for t in things[:5]]
    return BedClearResult("occupied", things, reasons, changed)
