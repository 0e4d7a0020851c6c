"""Bed registration: four (or more) ArUco markers at known bed positions give the
homography from camera pixels to bed millimetres, so every check compares
images in bed coordinates and a toolpath raster lands where the nozzle went.

Markers lie flat, printed upright as a person looks at the machine (+Y away
from them); a marker turned by 90/180/270 degrees is accepted (corners are
matched to the nearest rotation). Their centres and size come from config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.errors import CameraMoved, MarkersMissing, RegistrationError


@dataclass(frozen=True)
class BedGrid:
    """A raster over the bed: pixel [row, col] covers x0 + col*s .. and y1 - row*s (row 0 at the back)."""
    x0: float
    y0: float
    x1: float
    y1: float
    mm_per_px: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(round((self.y1 - self.y0) / self.mm_per_px)), int(round((self.x1 - self.x0) / self.mm_per_px)))

    @property
    def top(self) -> float:
        return self.y0 + self.shape[0] * self.mm_per_px

    def mm_to_px(self) -> np.ndarray:
        """3x3 affine from bed mm to grid pixel coordinates (pixel centres at +0.5)."""
        s = self.mm_per_px
        return np.array([[1 / s, 0, -self.x0 / s - 0.5], [0, -1 / s, self.top / s - 0.5], [0, 0, 1]], np.float64)

    def px_to_mm(self, col: float, row: float) -> tuple[float, float]:
        s = self.mm_per_px
        return self.x0 + (col + 0.5) * s, self.top - (row + 0.5) * s


@dataclass(frozen=True)
class MarkerLayout:
    """Where the markers are: ArUco dictionary name, side length and centre (x, y) mm per id."""
    dictionary: str
    size_mm: float
    centres: dict[int, tuple[float, float]]

    @classmethod
    def from_list(cls, dictionary: str, size_mm: float, markers: list[list[float]]) -> "MarkerLayout":
        return cls(dictionary, float(size_mm), {int(m[0]): (float(m[1]), float(m[2])) for m in markers})


@dataclass(frozen=True)
class Registration:
    """Camera px -> bed mm homography of one frame, with how well the markers fitted."""
    homography: np.ndarray                        # 3x3, camera px -> bed mm
    reprojection_mm: float                        # RMS corner error in bed mm
    marker_px: dict[int, tuple[float, float]] = field(default_factory=dict)  # centre of each marker, camera px

    def warp(self, img: np.ndarray, grid: BedGrid, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The image resampled onto the bed grid."""
        rows, cols = grid.shape
        m = grid.mm_to_px() @ self.homography
        return cv2.warpPerspective(img, m, (cols, rows), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)

    def to_dict(self) -> dict:
        return {"reprojection_mm": round(self.reprojection_mm, 3),
                "markers_px": {str(k): [round(v[0], 1), round(v[1], 1)] for k, v in sorted(self.marker_px.items())}}


_DETECTORS: dict[str, "cv2.aruco.ArucoDetector"] = {}


def _detector(dictionary: str) -> "cv2.aruco.ArucoDetector":
    det = _DETECTORS.get(dictionary)
    if det is None:
        const = getattr(cv2.aruco, dictionary, None)
        if not isinstance(const, int) or not dictionary.startswith("DICT_"):
            raise RegistrationError(f"unknown ArUco dictionary {dictionary!r} (e.g. DICT_4X4_50, DICT_5X5_100)")
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(const), params)
        _DETECTORS[dictionary] = det
    return det


def detect_markers(gray: np.ndarray, dictionary: str, hint: dict[int, tuple[float, float]] | None = None,
                   radius_px: int = 120) -> dict[int, np.ndarray]:
    """Corners (4x2, camera px, marker's own TL TR BR BL) of each marker found.

    With `hint` (marker centres from the reference) only windows around them are
    searched, which is several times faster; markers not found there are
    searched for in the whole frame.
    """
    det = _detector(dictionary)
    found: dict[int, np.ndarray] = {}
    if hint:
        h, w = gray.shape[:2]
        for mid, (u, v) in hint.items():
            x0, y0 = max(0, int(u) - radius_px), max(0, int(v) - radius_px)
            x1, y1 = min(w, int(u) + radius_px), min(h, int(v) + radius_px)
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            corners, ids, _ = det.detectMarkers(gray[y0:y1, x0:x1])
            for c, i in zip(corners, ids.ravel() if ids is not None else []):
                if int(i) == mid:
                    found[mid] = c.reshape(4, 2) + (x0, y0)
        if all(m in found for m in hint):
            return found
    corners, ids, _ = det.detectMarkers(gray)
    for c, i in zip(corners, ids.ravel() if ids is not None else []):
        found.setdefault(int(i), c.reshape(4, 2).astype(np.float64))
    return found


def _corner_targets(centre: tuple[float, float], size: float) -> np.ndarray:
    h = size / 2.0
    cx, cy = centre
    return np.array([[cx - h, cy + h], [cx + h, cy + h], [cx + h, cy - h], [cx - h, cy - h]], np.float64)


def _apply(hm: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), hm).reshape(-1, 2)


def register(img: np.ndarray, layout: MarkerLayout, hint: dict[int, tuple[float, float]] | None = None,
             max_reprojection_mm: float = 1.5) -> Registration:
    """Find the markers and fit camera px -> bed mm; MarkersMissing names the ids not seen."""
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    found = detect_markers(gray, layout.dictionary, hint)
    missing = sorted(m for m in layout.centres if m not in found)
    if missing or len(layout.centres) < 4:
        raise MarkersMissing(missing, sorted(m for m in found if m in layout.centres))
    ids = sorted(layout.centres)
    cam_centres = np.array([found[i].mean(axis=0) for i in ids])
    bed_centres = np.array([layout.centres[i] for i in ids], np.float64)
    h0, _ = cv2.findHomography(cam_centres, bed_centres, 0)
    if h0 is None:
        raise RegistrationError("bed markers are in a degenerate layout (three in a line?): cannot register")
    cam_pts, bed_pts = [], []
    for i in ids:
        target = _corner_targets(layout.centres[i], layout.size_mm)
        seen = _apply(h0, found[i])
        # the marker may lie turned: match its corners to the closest rotation of the targets
        k = min(range(4), key=lambda r: float(np.sum((seen - np.roll(target, -r, axis=0)) ** 2)))
        cam_pts.append(found[i])
        bed_pts.append(np.roll(target, -k, axis=0))
    cam = np.concatenate(cam_pts)
    bed = np.concatenate(bed_pts)
    hm, _ = cv2.findHomography(cam, bed, 0)
    err = float(np.sqrt(np.mean(np.sum((_apply(hm, cam) - bed) ** 2, axis=1))))
    if not np.isfinite(err) or err > max_reprojection_mm:
        raise RegistrationError(f"bed markers do not fit the configured layout: reprojection error {err:.2f} mm "
                                f"(limit {max_reprojection_mm} mm); was a marker moved, or is camera.marker_size_mm "
                                "or camera.markers wrong?")
    return Registration(hm, err, {i: (float(c[0]), float(c[1])) for i, c in zip(ids, cam_centres)})


def check_same_view(frame: Registration, reference: Registration, max_shift_px: float = 20.0) -> float:
    """Largest marker displacement (px) between frame and reference; CameraMoved above the limit."""
    worst, worst_id = 0.0, -1
    for mid, (u, v) in reference.marker_px.items():
        if mid in frame.marker_px:
            d = float(np.hypot(frame.marker_px[mid][0] - u, frame.marker_px[mid][1] - v))
            if d > worst:
                worst, worst_id = d, mid
    if worst > max_shift_px:
        raise CameraMoved(f"the camera has moved: marker {worst_id} is {worst:.0f} px from where the reference "
                          f"image has it (limit {max_shift_px:.0f} px); take a new empty-bed reference")
    return worst


@dataclass(frozen=True)
class AlignedPair:
    """A frame and its reference, both resampled onto the same bed grid."""
    frame: np.ndarray
    reference: np.ndarray
    grid: BedGrid
    frame_reg: Registration
    reference_reg: Registration
    camera_shift_px: float


def align_pair(frame: np.ndarray, reference: np.ndarray, layout: MarkerLayout, grid: BedGrid,
               reference_reg: Registration | None = None, max_shift_px: float = 20.0) -> AlignedPair:
    """Register both images (the reference's registration may be cached) and warp them onto `grid`."""
    ref_reg = reference_reg or register(reference, layout)
    frame_reg = register(frame, layout, hint=ref_reg.marker_px)
    shift = check_same_view(frame_reg, ref_reg, max_shift_px)
    return AlignedPair(frame_reg.warp(frame, grid), ref_reg.warp(reference, grid), grid, frame_reg, ref_reg, shift)
