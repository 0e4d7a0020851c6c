"""Synthetic camera scenes for the tests and the benchmark, deterministic from a seed.

A scene is drawn on a canvas in bed millimetres (surface, ArUco markers,
printed first layer / left-over part / laser-cut sheet), then photographed:
perspective, lamp on/off, exposure drift, glare, sensor noise, JPEG. The
expected toolpath masks come from the caller (the raster of real G-code on
the canvas grid, see CANVAS), so good first layers look like real slicer output.
vision/ never imports edge/: this module knows masks, not G-code files, except
that it can *write* G-code for random layouts (`print_job_gcode`, `laser_job_gcode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.registration import BedGrid, MarkerLayout
from vision.synth_jobs import laser_job_gcode, print_job_gcode  # noqa: F401  (part of this module's API)

CANVAS = BedGrid(-45.0, -45.0, 295.0, 255.0, 0.3)   # what the camera sees, in bed mm
DEFAULT_LAYOUT = MarkerLayout.from_list("DICT_4X4_50", 20.0,
                                        [[0, -15.0, -15.0], [1, 265.0, -15.0], [2, 265.0, 225.0], [3, -15.0, 225.0]])
SURFACES = ("smooth_pei", "textured_pei", "glass", "honeycomb")
FIRST_LAYER_DEFECTS = ("missing_object", "shifted_object", "under_extrusion", "dropout", "blobs_spaghetti",
                       "lifted_corner", "part_left")
CUT_DEFECTS = ("incomplete_cut", "wide_kerf", "scorch")
FILAMENTS = {"white": (235, 235, 232), "black": (28, 28, 30), "red": (40, 40, 200), "blue": (170, 80, 30),
             "green": (60, 160, 50), "orange": (30, 120, 240), "grey": (140, 140, 140), "yellow": (40, 210, 230),
             "natural": (200, 215, 220), "purple": (130, 50, 110)}


@dataclass
class Scene:
    """A photographed frame, its reference and what is really there."""
    image: np.ndarray                  # BGR uint8, camera size
    reference: np.ndarray              # BGR uint8: the empty bed (uncut sheet for lasers)
    label: str                         # "good" or a defect name
    truth: dict = field(default_factory=dict)


# ---- the bed as the camera sees it ----------------------------------------------

def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-ish band-limited noise."""
    small = (max(2, int(shape[0] / max(sigma_px, 1))), max(2, int(shape[1] / max(sigma_px, 1))))
    n = rng.standard_normal(small).astype(np.float32)
    return cv2.resize(n, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def bed_surface(rng: np.random.Generator, kind: str, grid: BedGrid = CANVAS) -> np.ndarray:
    """Albedo (float32 BGR 0..1) of a build surface over the canvas, plus the dark printer frame around it."""
    rows, cols = grid.shape
    base = {"smooth_pei": (0.25, 0.48, 0.62), "textured_pei": (0.16, 0.30, 0.42),
            "glass": (0.16, 0.16, 0.17), "honeycomb": (0.22, 0.22, 0.23)}[kind]
    tint = rng.uniform(0.85, 1.15)
    img = np.empty((rows, cols, 3), np.float32)
    img[:] = np.array(base, np.float32) * tint
    mott = 1 + 0.04 * _noise(rng, (rows, cols), 120)
    img *= mott[..., None]
    if kind == "textured_pei":
        speck = 1 + 0.16 * np.clip(_noise(rng, (rows, cols), 1.5), -2.5, 2.5)
        img *= speck[..., None]
    elif kind == "smooth_pei":
        img *= (1 + 0.02 * rng.standard_normal((rows, cols)).astype(np.float32))[..., None]
    elif kind == "honeycomb":
        cell = rng.uniform(5, 8) / grid.mm_per_px
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
        q = (2 / 3 * xx) / cell
        r = (-1 / 3 * xx + math.sqrt(3) / 3 * yy) / cell
        fx, fz = q - np.round(q), r - np.round(r)
        d = np.maximum(np.abs(fx), np.maximum(np.abs(fz), np.abs(fx + fz)))
        wall = (d > 0.42).astype(np.float32)
        img = img * (0.35 + 1.4 * wall)[..., None]
    # printer frame outside the bed plate
    bx0, by0 = -30.0, -30.0
    c0, r1 = int((bx0 - grid.x0) / grid.mm_per_px), int((grid.top - by0) / grid.mm_per_px)
    c1, r0 = int((280 - grid.x0) / grid.mm_per_px), int((grid.top - 240) / grid.mm_per_px)
    frame = np.full_like(img, 0.08)
    frame[r0:r1, c0:c1] = img[r0:r1, c0:c1]
    return frame


def draw_markers(albedo: np.ndarray, layout: MarkerLayout = DEFAULT_LAYOUT, grid: BedGrid = CANVAS) -> None:
    """Paste each ArUco marker (with a white quiet zone) at its configured centre, upright."""
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.dictionary))
    side = 2 * int(round(layout.size_mm / grid.mm_per_px / 2))   # even, so it centres on a pixel corner
    quiet = int(round(side * 0.25))
    for mid, (x, y) in layout.centres.items():
        marker = cv2.aruco.generateImageMarker(dictionary, mid, side).astype(np.float32) / 255 * 0.92 + 0.03
        col, row = grid.mm_to_px()[:2] @ np.array([x, y, 1.0])
        r0, c0 = int(round(row - (side - 1) / 2)), int(round(col - (side - 1) / 2))
        albedo[r0 - quiet:r0 + side + quiet, c0 - quiet:c0 + side + quiet] = 0.93
        albedo[r0:r0 + side, c0:c0 + side] = marker[..., None]


def camera_homography(rng: np.random.Generator, size: tuple[int, int] = (1280, 720), tilt: float = 1.0) -> np.ndarray:
    """Bed mm -> camera px for a camera above the bed, slightly off-axis (perspective)."""
    w, h = size
    corners_mm = np.array([[-40, -40], [290, -40], [290, 250], [-40, 250]], np.float32)
    k = (h - 30) / 290.0
    cx, cy = w / 2 + rng.uniform(-30, 30), h / 2 + rng.uniform(-8, 8)
    dst = np.stack([cx + (corners_mm[:, 0] - 125) * k, cy - (corners_mm[:, 1] - 105) * k], 1)
    squeeze = tilt * rng.uniform(-0.06, 0.06) * w       # keystone: the far edge narrower or wider
    dst[2:, 0] += np.array([-squeeze, squeeze])
    dst += rng.uniform(-6, 6, dst.shape) * tilt
    return cv2.getPerspectiveTransform(corners_mm, dst.astype(np.float32)).astype(np.float64)


def jitter(h: np.ndarray, rng: np.random.Generator, px: float) -> np.ndarray:
    """The same camera nudged by up to `px` pixels (vibration, or a moved camera)."""
    src = np.array([[0, 0], [250, 0], [250, 210], [0, 210]], np.float32)
    dst = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    dst = dst + rng.uniform(-px, px, dst.shape)
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32)).astype(np.float64)


@dataclass
class Lighting:
    gain: float = 1.0                  # exposure
    lamp: float = 0.0                  # strength of a warm lamp from one side
    lamp_xy: tuple[float, float] = (0.5, 0.0)
    glare: float = 0.0                 # additive highlight amplitude (0..1)
    glare_xy: tuple[float, float] = (0.5, 0.5)
    glare_sigma: float = 60.0          # px
    noise: float = 2.0                 # DN
    jpeg: int = 90


def random_lighting(rng: np.random.Generator, changed: bool) -> Lighting:
    """Plain lighting, or (changed) the kind that breaks naive image differencing."""
    if not changed:
        return Lighting(gain=rng.uniform(0.95, 1.05), noise=rng.uniform(1, 3), jpeg=int(rng.integers(75, 96)))
    return Lighting(gain=rng.uniform(0.7, 1.35), lamp=rng.choice([0.0, rng.uniform(0.3, 0.8)]),
                    lamp_xy=(rng.uniform(0, 1), rng.uniform(0, 1)),
                    glare=rng.choice([0.0, rng.uniform(0.15, 0.5)]), glare_xy=(rng.uniform(0.25, 0.75), rng.uniform(0.2, 0.8)),
                    glare_sigma=rng.uniform(50, 110), noise=rng.uniform(1.5, 4), jpeg=int(rng.integers(60, 96)))


def photograph(albedo: np.ndarray, h_cam: np.ndarray, light: Lighting, rng: np.random.Generator,
               size: tuple[int, int] = (1280, 720), grid: BedGrid = CANVAS) -> np.ndarray:
    """Render the canvas through the camera: perspective, light, glare, noise, JPEG."""
    w, hgt = size
    m = h_cam @ np.linalg.inv(grid.mm_to_px())
    img = cv2.warpPerspective(albedo, m, (w, hgt), flags=cv2.INTER_LINEAR, borderValue=(0.05, 0.05, 0.05))
    f = 8                                    # light is smooth: compute it on a coarse grid, then resize
    yy, xx = np.mgrid[0:hgt:f, 0:w:f].astype(np.float32)
    illum = np.full(xx.shape, 0.95, np.float32) + 0.08 * (xx / w - 0.5)
    if light.lamp:
        lx, ly = light.lamp_xy[0] * w, light.lamp_xy[1] * hgt
        illum += light.lamp * np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * (0.6 * w) ** 2))
    gain = np.array([1 - 0.05 * light.lamp, 1.0, 1 + 0.08 * light.lamp], np.float32) * light.gain * 220  # warm lamp
    light_map = cv2.resize(illum, (w, hgt), interpolation=cv2.INTER_LINEAR)
    img = cv2.multiply(img, cv2.merge([light_map * g for g in gain]))
    if light.glare:
        gx, gy = light.glare_xy[0] * w, light.glare_xy[1] * hgt
        g = (255 * light.glare * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * light.glare_sigma ** 2))).astype(np.float32)
        g = cv2.resize(g, (w, hgt), interpolation=cv2.INTER_LINEAR)
        img = cv2.add(img, cv2.merge([g, g, g]))
    noise = np.empty(img.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2 ** 31)))
    cv2.randn(noise, 0.0, float(light.noise))
    img = cv2.add(img, noise)
    out = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, light.jpeg])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# ---- what is on the bed --------------------------------------------------------

def _colour_far_from(rng: np.random.Generator, surface: np.ndarray, min_dist: float = 60.0) -> np.ndarray:
    """A filament colour (BGR 0..1) that a camera can tell from the surface (documented assumption)."""
    bed = np.median(surface.reshape(-1, 3)[:: 97], axis=0) * 255
    names = list(FILAMENTS)
    for _ in range(50):
        c = np.array(FILAMENTS[names[int(rng.integers(len(names)))]], np.float32)
        if np.linalg.norm(c - bed) >= min_dist:
            return c / 255
    return np.array(FILAMENTS["white"], np.float32) / 255


def paint_layer(albedo: np.ndarray, material: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> None:
    """A first layer of filament where `material` is set: its colour, with faint line texture."""
    m = material.astype(bool)
    if not m.any():
        return
    rows, cols = material.shape
    diag = np.arange(rows + cols, dtype=np.float32)
    wave = 1 + 0.06 * np.sin(diag * (2 * np.pi / 1.5))        # extrusion lines at 45 degrees
    lines = np.lib.stride_tricks.as_strided(wave, (rows, cols), (wave.strides[0], wave.strides[0]))
    alpha = rng.uniform(0.85, 0.97)
    ys, xs = np.nonzero(cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)))
    soft = cv2.GaussianBlur(m.astype(np.float32), (3, 3), 0)[ys, xs][:, None] * alpha
    layer = colour[None, :] * lines[ys, xs][:, None]
    albedo[ys, xs] = albedo[ys, xs] * (1 - soft) + layer * soft


def paint_part(albedo: np.ndarray, rng: np.random.Generator, colour: np.ndarray, centre_mm: tuple[float, float],
               size_mm: tuple[float, float], grid: BedGrid = CANVAS) -> dict:
    """A 3D part standing on the bed: lit top, darker side faces and a shadow; returns its box in mm."""
    s = grid.mm_per_px
    col, row = grid.mm_to_px()[:2] @ np.array([centre_mm[0], centre_mm[1], 1.0])
    w, h = size_mm[0] / s, size_mm[1] / s
    angle = rng.uniform(0, 180)
    box = cv2.boxPoints(((col, row), (w, h), angle))
    lift = rng.uniform(2, 8) / s                        # the top face seen from a camera not straight above
    shadow = cv2.fillPoly(np.zeros(albedo.shape[:2], np.uint8), [np.int32(box + [lift * 0.8, lift * 0.5])], 1)
    albedo[shadow.astype(bool)] *= 0.55
    sides = np.concatenate([box, box - [lift * 0.3, lift]])
    hull = cv2.convexHull(np.float32(sides))
    cv2.fillPoly(albedo, [np.int32(hull)], tuple(float(v) for v in colour * 0.6))
    if rng.random() < 0.5:
        cv2.fillPoly(albedo, [np.int32(box - [lift * 0.3, lift])], tuple(float(v) for v in colour))
    else:
        cx, cy = col - lift * 0.3, row - lift
        cv2.ellipse(albedo, ((cx, cy), (w, h), angle), tuple(float(v) for v in colour), -1)
    return {"centre_mm": [round(centre_mm[0], 1), round(centre_mm[1], 1)],
            "size_mm": [round(size_mm[0], 1), round(size_mm[1], 1)]}


def apply_first_layer_defect(mask: np.ndarray, defect: str, rng: np.random.Generator,
                             grid: BedGrid = CANVAS) -> tuple[np.ndarray, np.ndarray, dict]:
    """(material label mask, extra 'lifted' mask, truth) after the defect acts on the expected labels."""
    s = grid.mm_per_px
    seen = mask.copy()
    lifted = np.zeros(mask.shape, np.uint8)
    objs = [int(v) for v in np.unique(mask) if v not in (0, 255)] or [255]
    k = int(rng.choice(objs))
    obj = mask == k
    ys, xs = np.nonzero(obj)
    truth: dict = {"object": k}
    if defect == "missing_object":
        seen[obj] = 0
    elif defect == "shifted_object":
        d = rng.uniform(1.0, 5.0)
        a = rng.uniform(0, 2 * np.pi)
        dx, dy = d * math.cos(a), d * math.sin(a)
        m = np.float32([[1, 0, dx / s], [0, 1, -dy / s]])
        moved = cv2.warpAffine(obj.astype(np.uint8), m, obj.shape[::-1], flags=cv2.INTER_NEAREST) > 0
        seen[obj] = 0
        seen[moved] = k
        truth["shift_mm"] = [round(dx, 2), round(dy, 2)]
    elif defect == "under_extrusion":
        period = rng.uniform(1.6, 2.4) / s
        gap = rng.uniform(0.45, 0.6) * period
        yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
        stripes = ((xx - yy) % period) < gap
        half = (xs.min() + xs.max()) / 2
        region = obj & (xx >= half if rng.random() < 0.5 else xx < half) if rng.random() < 0.5 else obj
        seen[region & stripes] = 0
    elif defect == "dropout":
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(ys)))
            cv2.circle(seen, (int(xs[i]), int(ys[i])), int(rng.uniform(3, 7) / s), 0, -1)
        seen[~obj & (mask != seen)] = mask[~obj & (mask != seen)]
    elif defect == "blobs_spaghetti":
        ys_all, xs_all = np.nonzero(mask)
        for _ in range(int(rng.integers(2, 6))):
            i = int(rng.integers(len(ys_all)))
            c = (int(xs_all[i] + rng.uniform(-25, 25) / s), int(ys_all[i] + rng.uniform(-25, 25) / s))
            cv2.circle(seen, c, int(rng.uniform(1.5, 4) / s), 254, -1)
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(len(ys_all)))
            p = np.array([xs_all[i], ys_all[i]], np.float64)
            a = rng.uniform(0, 2 * np.pi)
            pts = []
            for _ in range(60):
                a += rng.normal(0, 0.35)
                p = p + 1.2 / s * np.array([math.cos(a), math.sin(a)])
                pts.append(p.copy())
            cv2.polylines(seen, [np.int32(pts)], False, 254, max(1, int(round(rng.uniform(0.6, 1.1) / s))))
    elif defect == "lifted_corner":
        corner = (xs.min() if rng.random() < 0.5 else xs.max(), ys.min() if rng.random() < 0.5 else ys.max())
        r = rng.uniform(8, 14) / s
        near = obj & ((np.hypot(*np.meshgrid(np.arange(mask.shape[1]) - corner[0],
                                            np.arange(mask.shape[0]) - corner[1])) < r))
        seen[near] = 0
        lifted = near.astype(np.uint8)
        truth["corner_px"] = [int(corner[0]), int(corner[1])]
    elif defect != "part_left" and defect != "good":
        raise ValueError(f"unknown first-layer defect {defect!r}")
    return seen, lifted, truth


def _setup(seed: int, surface: str | None, changed_light: bool | None):
    rng = np.random.default_rng(seed)
    surface = surface or str(rng.choice(SURFACES[:3]))
    albedo = bed_surface(rng, surface)
    draw_markers(albedo)
    h_ref = camera_homography(rng)
    h_img = jitter(h_ref, rng, 0.7)
    changed = bool(rng.random() < 0.6) if changed_light is None else changed_light
    return rng, surface, albedo, h_ref, h_img, changed


def bed_clear_scene(seed: int, occupied: bool, surface: str | None = None, changed_light: bool | None = None) -> Scene:
    """Empty bed vs reference under new light, or with a part (8-60 mm) left on it."""
    rng, surface, albedo, h_ref, h_img, changed = _setup(seed, surface, changed_light)
    reference = photograph(albedo, h_ref, random_lighting(rng, False), rng)
    truth: dict = {"surface": surface, "light_changed": changed}
    frame = albedo.copy()
    if occupied:
        size = (rng.uniform(8, 60), rng.uniform(8, 60))
        centre = (rng.uniform(10 + size[0] / 2, 240 - size[0] / 2), rng.uniform(10 + size[1] / 2, 200 - size[1] / 2))
        truth["part"] = paint_part(frame, rng, _colour_far_from(rng, albedo), centre, size)
    image = photograph(frame, h_img, random_lighting(rng, changed), rng)
    return Scene(image, reference, "occupied" if occupied else "good", truth)


def first_layer_scene(seed: int, mask: np.ndarray, defect: str = "good", surface: str | None = None,
                      changed_light: bool | None = None) -> Scene:
    """A first layer printed from `mask` (the job's raster on CANVAS), with one defect or none."""
    if mask.shape != CANVAS.shape:
        raise ValueError(f"mask shape {mask.shape} is not the canvas shape {CANVAS.shape}")
    rng, surface, albedo, h_ref, h_img, changed = _setup(seed, surface, changed_light)
    reference = photograph(albedo, h_ref, random_lighting(rng, False), rng)
    seen, lifted, truth = apply_first_layer_defect(mask, defect, rng)
    colour = _colour_far_from(rng, albedo)
    frame = albedo.copy()
    paint_layer(frame, seen > 0, colour, rng)
    if lifted.any():   # the lifted corner, raised, catches light and throws a shadow where it was
        m = np.float32([[1, 0, -0.8 / CANVAS.mm_per_px], [0, 1, -1.5 / CANVAS.mm_per_px]])
        up = cv2.warpAffine(lifted, m, lifted.shape[::-1]) > 0
        frame[lifted > 0] *= 0.5
        paint_layer(frame, up, np.clip(colour * 1.25 + 0.05, 0, 1), rng)
    if defect == "part_left":
        ys, xs = np.nonzero(mask)
        lo_x, hi_x = CANVAS.px_to_mm(xs.min(), 0)[0], CANVAS.px_to_mm(xs.max(), 0)[0]
        for _ in range(50):
            size = (rng.uniform(10, 40), rng.uniform(10, 40))
            cx = rng.uniform(10 + size[0] / 2, 240 - size[0] / 2)
            if cx + size[0] / 2 + 10 < lo_x or cx - size[0] / 2 - 10 > hi_x:
                break
        cy = rng.uniform(15 + size[1] / 2, 195 - size[1] / 2)
        truth["part"] = paint_part(frame, rng, _colour_far_from(rng, albedo), (cx, cy), size)
    truth.update(surface=surface, light_changed=changed)
    image = photograph(frame, h_img, random_lighting(rng, changed), rng)
    return Scene(image, reference, defect, truth)


def cut_scene(seed: int, cut_mask: np.ndarray, defect: str = "good", backlit: bool | None = None) -> Scene:
    """A sheet on the laser's honeycomb before (reference) and after cutting `cut_mask` (path raster on CANVAS)."""
    if cut_mask.shape != CANVAS.shape:
        raise ValueError(f"mask shape {cut_mask.shape} is not the canvas shape {CANVAS.shape}")
    rng = np.random.default_rng(seed)
    albedo = bed_surface(rng, "honeycomb")
    draw_markers(albedo)
    h_ref = camera_homography(rng)
    h_img = jitter(h_ref, rng, 0.7)
    backlit = bool(rng.random() < 0.3) if backlit is None else backlit
    ys, xs = np.nonzero(cut_mask)
    pad = int(rng.uniform(8, 20) / CANVAS.mm_per_px)
    r0, r1, c0, c1 = ys.min() - pad, ys.max() + pad, xs.min() - pad, xs.max() + pad
    sheet_kind = str(rng.choice(["plywood", "mdf", "acrylic_white", "cardboard"]))
    colour = {"plywood": (0.55, 0.72, 0.85), "mdf": (0.38, 0.52, 0.66), "acrylic_white": (0.9, 0.9, 0.9),
              "cardboard": (0.45, 0.6, 0.72)}[sheet_kind]
    rows, cols = r1 - r0, c1 - c0
    grain = 1 + (0.05 * np.sin(np.arange(rows)[:, None] * 0.3 + 2 * _noise(rng, (rows, cols), 40))
                 if sheet_kind == "plywood" else 0.015 * _noise(rng, (rows, cols), 10))
    before = albedo.copy()
    if backlit:
        before[:] = 0.97      # a light panel under the sheet: through-cuts glow
    # with a back-light the front is lit less (exposure is set for the glow through the cuts)
    before[r0:r1, c0:c1] = np.array(colour, np.float32) * grain[..., None] * (0.5 if backlit else 1.0)
    draw_markers(before)
    after = before.copy()
    cut = cut_mask > 0
    truth: dict = {"backlit": backlit, "sheet": sheet_kind}
    if defect == "wide_kerf":
        k = int(rng.integers(2, 4))
        cut = cv2.dilate(cut.astype(np.uint8), np.ones((k * 2 + 1, k * 2 + 1), np.uint8)) > 0
        truth["extra_kerf_mm"] = round(2 * k * CANVAS.mm_per_px, 2)
    through = cut.copy()
    if defect == "incomplete_cut":
        labels = [int(v) for v in np.unique(cut_mask) if v]
        k = int(rng.choice(labels))
        py, px = np.nonzero(cut_mask == k)
        holes = np.zeros(cut.shape, np.uint8)
        if rng.random() < 0.25:
            holes[cut_mask == k] = 1                  # this part's power too low: nowhere through
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(py)))
            cv2.circle(holes, (int(px[i]), int(py[i])), int(rng.uniform(3, 10) / CANVAS.mm_per_px), 1, -1)
        through &= holes == 0
        truth["object"] = k
    burn = 0.5 * cv2.GaussianBlur(cut.astype(np.float32), (0, 0), 0.4 / CANVAS.mm_per_px)   # the usual browned edge
    if defect == "scorch":
        wide = cv2.GaussianBlur(cut.astype(np.float32), (0, 0), rng.uniform(1.5, 3.0) / CANVAS.mm_per_px)
        burn = np.maximum(burn, np.clip(wide * 3, 0, 1) * rng.uniform(0.8, 1.0))
    after *= (1 - 0.45 * np.clip(burn * 1.5, 0, 1))[..., None] * np.array([0.9, 1.0, 1.05], np.float32)
    groove = cut & ~through
    after[groove] *= 0.75     # engraved, not through: the sheet darkens but shows nothing beneath
    under = albedo
    after[through] = (np.full_like(after[through], 1.6) if backlit else under[through] * 0.4)   # a back-light outshines the sheet
    image = photograph(after, h_img, random_lighting(rng, False), rng)
    reference = photograph(before, h_ref, random_lighting(rng, False), rng)
    return Scene(image, reference, defect, truth)
