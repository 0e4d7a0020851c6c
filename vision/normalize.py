"""Illumination-normalised comparison of a frame with its reference, in bed coordinates.

A lamp switched on, exposure drift or a broad highlight multiply (or add to)
the image smoothly; an object changes it sharply. So we compare log images
(a ratio image) and remove a smooth, robustly estimated log-gain field —
estimated only where the bed is known (or found) to be empty, and filled in
across the rest by normalised convolution. What is left is what changed.
"""

from __future__ import annotations

import cv2
import numpy as np

cv2.setNumThreads(1)   # inspection runs in its own worker; never compete with streaming for cores


def log_image(bgr: np.ndarray) -> np.ndarray:
    """float32 log of an 8-bit image (+1 so black stays finite)."""
    return np.log(bgr.astype(np.float32) + 4.0)


def smooth_gain(diff: np.ndarray, weight: np.ndarray, sigma_px: float) -> np.ndarray:
    """Normalised convolution: the weighted Gaussian mean of `diff`, interpolated where weight is 0.

    Lighting is smooth, so it is estimated on a grid `sigma/4` times coarser and
    interpolated back: a few milliseconds instead of wide blurs at full size.
    """
    rows, cols = diff.shape[:2]
    f = max(1, int(sigma_px // 4))
    size = (max(2, cols // f), max(2, rows // f))
    w = cv2.resize(weight.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    d = cv2.resize(diff * (weight.astype(np.float32)[..., None] if diff.ndim == 3 else weight.astype(np.float32)),
                   size, interpolation=cv2.INTER_AREA)
    sig = sigma_px / f
    num = cv2.GaussianBlur(d, (0, 0), sig, borderType=cv2.BORDER_REFLECT)
    den = np.maximum(cv2.GaussianBlur(w, (0, 0), sig, borderType=cv2.BORDER_REFLECT), 1e-3)
    g = num / (den[..., None] if diff.ndim == 3 else den)
    return cv2.resize(g, (cols, rows), interpolation=cv2.INTER_LINEAR)


def change_map(frame_log: np.ndarray, ref_log: np.ndarray, exclude: np.ndarray | None, sigma_px: float,
               threshold: float, passes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(change strength per pixel, log-gain field) after removing the smooth lighting change.

    `exclude` marks pixels that may legitimately differ (e.g. the expected print)
    and must not steer the gain estimate; pixels found changed in one pass are
    excluded in the next, so a large object is not mistaken for light.
    """
    diff = frame_log - ref_log
    valid = np.ones(diff.shape[:2], bool) if exclude is None else ~exclude
    gain = smooth_gain(diff, valid, sigma_px * 2)
    strength = np.zeros(diff.shape[:2], np.float32)
    for _ in range(passes):
        strength = _strength(diff - gain)
        # only clear changes steer the estimate away; faint ones may still be light
        changed = cv2.dilate((strength > 1.8 * threshold).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        gain = smooth_gain(diff, valid & ~changed, sigma_px)
    return _strength(diff - gain), gain


def _strength(resid: np.ndarray) -> np.ndarray:
    """Largest absolute change over the colour channels, lightly smoothed against noise and JPEG blocks."""
    b = cv2.blur(resid, (3, 3))
    if b.ndim == 2:
        return np.abs(b)
    c = [np.abs(ch) for ch in cv2.split(b)]
    return cv2.max(cv2.max(c[0], c[1]), c[2])


def components(mask: np.ndarray, min_px: int) -> list[tuple[int, int, int, int, int, float, float]]:
    """Connected blobs of at least `min_px` pixels: (x, y, w, h, area, cx, cy) in grid px."""
    n, _, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in stats[i])
        if a >= min_px:
            out.append((x, y, w, h, a, float(cent[i][0]), float(cent[i][1])))
    out.sort(key=lambda c: -c[4])
    return out
