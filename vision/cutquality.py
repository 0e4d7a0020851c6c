"""Laser cut quality: did the beam go through along every cut path, how wide is the
kerf, how much scorch is next to the cuts, and is every part free of the sheet?

Input: the sheet after cutting and before (reference), on the bed grid, and
the cut-path raster. A through-cut shows what is under the sheet: darker
(honeycomb) or brighter (a back-light) than the sheet, in the log-ratio image;
the polarity is read from the cuts themselves. An engraved-but-not-through
groove changes the sheet far less. Scorch is darkening beside the kerf.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.normalize import components, log_image, smooth_gain
from vision.registration import BedGrid


@dataclass(frozen=True)
class CutParams:
    backlit_floor_factor: float = 0.4  # back-lit: light through the sheet is proof enough
    through_fraction: float = 0.45     # a path pixel is cut through above this share of the job's typical contrast
    min_through_log_mm: float = 0.5     # contrast x width (log-ratio mm) across a through-cut at the least
    fail_continuity: float = 0.97      # share of a part's path cut through
    fail_gap_mm: float = 3.0           # a longer uncut stretch fails
    warn_kerf_mm: float = 1.0          # mean kerf (from integrated contrast) above this: wide kerf
    scorch_band_mm: tuple[float, float] = (0.9, 4.0)
    scorch_darkening: float = 0.12     # log-ratio darkening that counts as scorch
    warn_scorch: float = 0.12          # share of the band scorched
    search_mm: float = 0.75            # registration tolerance around each path


@dataclass
class PartCut:
    label: int
    name: str
    length_mm: float
    continuity: float
    gaps: int
    longest_gap_mm: float
    kerf_mm: float
    scorch_mm2: float
    scorch_share: float
    separated: bool | None             # None: open path, nothing to separate

    def to_dict(self) -> dict:
        return {"label": self.label, "name": self.name, "length_mm": round(self.length_mm, 1),
                "continuity": round(self.continuity, 3), "gaps": self.gaps,
                "longest_gap_mm": round(self.longest_gap_mm, 1), "kerf_mm": round(self.kerf_mm, 2),
                "scorch_mm2": round(self.scorch_mm2, 1), "scorch_share": round(self.scorch_share, 3),
                "separated": self.separated}


@dataclass
class CutResult:
    verdict: str
    reasons: list[str]
    parts: list[PartCut]
    polarity: str                      # "dark" (through shows the bed) | "bright" (back-lit)
    kerf_stats_mm: dict = field(default_factory=dict)
    through: np.ndarray | None = None  # bool path pixels cut through
    uncut: np.ndarray | None = None    # bool path pixels not through
    scorch: np.ndarray | None = None   # bool

    def details(self) -> dict:
        return {"parts": [p.to_dict() for p in self.parts], "polarity": self.polarity, "kerf_mm": self.kerf_stats_mm}


def _length_px(path: np.ndarray) -> float:
    """Length of a drawn path in pixels, whatever its drawn width: a band grows by 2 px of area
    per px of length for each px it is widened."""
    a1 = int((cv2.dilate(path, _DISC3) > 0).sum())
    a3 = int((cv2.dilate(path, _DISC7) > 0).sum())
    return max(1.0, (a3 - a1) / 4.0)


_DISC3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_DISC7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def _filled(path: np.ndarray) -> np.ndarray:
    """The area a closed path encloses (the path itself included); equals the path when it is open."""
    flood = path.astype(np.uint8).copy()
    h, w = flood.shape
    ff = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(flood, ff, (0, 0), 2)
    return flood != 2


def check_cut(frame_bed: np.ndarray, reference_bed: np.ndarray, paths: np.ndarray, grid: BedGrid,
              names: list[str] | None = None, nominal_kerf_mm: float = 0.2,
              params: CutParams = CutParams()) -> CutResult:
    """Verdict pass / warn / fail on a cut sheet (frame, reference and path labels on the same grid)."""
    if paths.shape != frame_bed.shape[:2]:
        raise ValueError(f"cut-path mask {paths.shape} is not on the frame's grid {frame_bed.shape[:2]}")
    s = grid.mm_per_px
    names = names or []
    grey = lambda im: im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)  # noqa: E731
    fl, rl = log_image(grey(frame_bed)), log_image(grey(reference_bed))
    on_path = paths > 0
    band_px = max(1, int(round(params.scorch_band_mm[1] / s)))
    near = cv2.dilate(on_path.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1,) * 2)) > 0
    diff = fl - rl
    diff = diff - smooth_gain(diff, ~near, 10.0 / s)        # lighting drift between the two shots
    r = max(1, int(round(params.search_mm / s)))
    # a kerf narrower than a pixel spreads over two: integrate the evidence across the path, not its peak
    bright_sum = cv2.boxFilter(np.maximum(diff, 0), -1, (2 * r + 1, 2 * r + 1), normalize=False)
    dark_sum = cv2.boxFilter(np.maximum(-diff, 0), -1, (2 * r + 1, 2 * r + 1), normalize=False)
    polarity = "bright" if np.median(bright_sum[on_path]) > np.median(dark_sum[on_path]) else "dark"
    contrast = bright_sum if polarity == "bright" else dark_sum
    level = float(np.percentile(contrast[on_path], 75))
    floor = params.min_through_log_mm / s * (2 * r + 1)       # an engraved groove stays below this...
    if polarity == "bright":   # ...but cannot glow at all: any light through is a cut (and saturation caps it)
        floor *= params.backlit_floor_factor
    through = on_path & (contrast >= max(params.through_fraction * level, floor))
    uncut = on_path & ~through
    full = float(np.percentile((diff if polarity == "bright" else -diff)[on_path], 95))   # a pixel fully open
    cut_signal = np.clip((diff if polarity == "bright" else -diff) / max(full, 0.2), 0, 1)
    lo_px = max(1, int(round(params.scorch_band_mm[0] / s)))
    inner = cv2.dilate(on_path.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * lo_px + 1,) * 2)) > 0
    scorch_band = near & ~inner
    scorch = scorch_band & (-diff > params.scorch_darkening)
    if polarity == "dark":   # a through-cut region next to another path is not scorch
        scorch &= -diff < 0.6 * full
    barrier = cv2.dilate((cut_signal > params.through_fraction).astype(np.uint8) | through.astype(np.uint8), np.ones((3, 3), np.uint8))
    n_free, free = cv2.connectedComponents((barrier == 0).astype(np.uint8), connectivity=4)

    labels = [int(v) for v in np.unique(paths) if v]
    parts, reasons, verdict, kerfs = [], [], "pass", []

    def flag(level_: str, text: str) -> None:
        nonlocal verdict
        reasons.append(text)
        if level_ == "fail" or verdict == "pass":
            verdict = level_

    drawn_width = nominal_kerf_mm + s          # how wide the raster draws a path
    margin = band_px + r + 8
    rows, cols = paths.shape
    for k in labels:
        name = names[k - 1] if 0 < k <= len(names) else (f"part {k}" if k != 255 else "cut")
        x, y, w, h = cv2.boundingRect((paths == k).astype(np.uint8))
        win_ = (slice(max(0, y - margin), min(rows, y + h + margin)), slice(max(0, x - margin), min(cols, x + w + margin)))
        pk = paths[win_] == k                  # everything below works on this part's neighbourhood only
        pk8 = pk.astype(np.uint8)
        npx = int(pk.sum())
        length = _length_px(pk8) * s
        cont = float((through[win_] & pk).sum()) / max(1, npx)
        gap_blobs = components(uncut[win_] & pk, 1)
        gap_lengths = [b[4] * s / max(1.0, drawn_width / s) for b in gap_blobs]
        gaps = [g for g in gap_lengths if g >= 0.5]
        zone = cv2.dilate(pk8, np.ones((2 * lo_px + 1,) * 2, np.uint8)) > 0
        kerf = float(cut_signal[win_][zone].sum()) * s * s / max(length, 1e-6)
        kerfs.append(kerf)
        kband = scorch_band[win_] & (cv2.dilate(pk8, np.ones((2 * band_px + 1,) * 2, np.uint8)) > 0)
        sc_px = int((scorch[win_] & kband).sum())
        share = sc_px / max(1, int(kband.sum()))
        filled = _filled(pk)
        separated: bool | None = None
        if filled.sum() > npx * 1.5:           # a closed outline: is its inside free of the sheet?
            f8 = filled.astype(np.uint8)
            inside = filled & ~cv2.dilate(pk8, np.ones((2 * r + 3,) * 2, np.uint8)).astype(bool)
            ring = cv2.dilate(f8, np.ones((2 * r + 7,) * 2, np.uint8)).astype(bool) & \
                ~cv2.dilate(f8, np.ones((2 * r + 3,) * 2, np.uint8)).astype(bool)
            fr = free[win_]
            a = set(np.unique(fr[inside & (fr > 0)]).tolist())
            b = set(np.unique(fr[ring & (fr > 0)]).tolist())
            separated = not (a & b)
        part = PartCut(k, name, length, cont, len(gaps), max(gap_lengths, default=0.0), kerf, sc_px * s * s,
                       share, separated)
        parts.append(part)
        if cont < params.fail_continuity or part.longest_gap_mm > params.fail_gap_mm:
            flag("fail", f"{name}: cut not through along {1 - cont:.0%} of its path "
                         f"({len(gaps)} gap(s), longest {part.longest_gap_mm:.1f} mm)")
        if separated is False:
            flag("fail", f"{name}: not fully separated from the sheet")
        if kerf > params.warn_kerf_mm:
            flag("warn", f"{name}: kerf {kerf:.2f} mm wide (focus or power?)")
        if share > params.warn_scorch:
            flag("warn", f"{name}: scorch beside the cut, {sc_px * s * s:.0f} mm^2 ({share:.0%} of the band)")
    stats = {}
    if kerfs:
        stats = {"mean": round(float(np.mean(kerfs)), 3), "min": round(float(np.min(kerfs)), 3),
                 "max": round(float(np.max(kerfs)), 3)}
    return CutResult(verdict, reasons, parts, polarity, stats, through, uncut, scorch)
