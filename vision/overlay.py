"""Overlays a person reads at a glance: the bed as the camera saw it (dimmed grey),
with what was expected and what was seen in a few fixed colours and a legend.
Saved atomically (temp file, fsync, rename) with their sha256, so a verdict
event can reference the picture that explains it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

GREEN, RED, YELLOW, ORANGE, CYAN, WHITE = (60, 200, 60), (40, 40, 230), (0, 220, 255), (0, 140, 255), \
    (230, 200, 0), (255, 255, 255)
VERDICT_COLOUR = {"pass": GREEN, "clear": GREEN, "warn": ORANGE, "fail": RED, "occupied": RED}


def _base(bed_bgr: np.ndarray, scale: int) -> np.ndarray:
    grey = bed_bgr if bed_bgr.ndim == 2 else cv2.cvtColor(bed_bgr, cv2.COLOR_BGR2GRAY)
    grey = (grey.astype(np.float32) * 0.55).astype(np.uint8)
    out = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    return cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale != 1 else out


def _paint(img: np.ndarray, mask: np.ndarray | None, colour: tuple[int, int, int], alpha: float = 0.75) -> None:
    if mask is None or not mask.any():
        return
    if mask.shape != img.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    img[mask] = (img[mask] * (1 - alpha) + np.array(colour) * alpha).astype(np.uint8)


def _outline(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    m = mask.astype(np.uint8)
    if m.shape != img.shape[:2]:
        m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, colour, 1, cv2.LINE_AA)


def _legend(img: np.ndarray, title: str, verdict: str, entries: list[tuple[tuple[int, int, int], str]],
            reasons: list[str]) -> np.ndarray:
    """A header band with the verdict and a legend row, above the picture."""
    w = img.shape[1]
    lines = reasons[:4]
    band = np.full((34 + 22 + 18 * len(lines) + 6, w, 3), 30, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(band, f"{title}: {verdict.upper()}", (8, 24), font, 0.7, VERDICT_COLOUR.get(verdict, WHITE), 2,
                cv2.LINE_AA)
    x = 8
    for colour, text in entries:
        cv2.rectangle(band, (x, 38), (x + 14, 52), colour, -1)
        cv2.putText(band, text, (x + 20, 50), font, 0.45, WHITE, 1, cv2.LINE_AA)
        x += 30 + int(cv2.getTextSize(text, font, 0.45, 1)[0][0])
    for i, text in enumerate(lines):
        cv2.putText(band, text[:110], (8, 72 + 18 * i), font, 0.42, (210, 210, 210), 1, cv2.LINE_AA)
    return np.vstack([band, img])


def first_layer_overlay(bed_bgr: np.ndarray, result, scale: int = 2) -> np.ndarray:
    """Green: printed where expected; red: expected but missing; yellow: material outside the toolpath;
    cyan outline: where the toolpath put each object."""
    img = _base(bed_bgr, scale)
    seen, exp = result.material, result.aligned_expected
    if exp is None or seen is None:
        return _legend(img, "first layer", result.verdict, [], result.reasons)
    near = cv2.dilate(exp.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    _paint(img, exp & seen, GREEN)
    _paint(img, exp & ~seen, RED)
    _paint(img, seen & ~near & ~(result.expected > 0), YELLOW)
    _outline(img, result.expected > 0, CYAN)
    return _legend(img, "first layer", result.verdict,
                   [(GREEN, "printed as planned"), (RED, "missing"), (YELLOW, "outside toolpath"),
                    (CYAN, "toolpath")], result.reasons)


def cut_overlay(bed_bgr: np.ndarray, result, scale: int = 1) -> np.ndarray:
    """Green: cut through; red: not through; orange: scorch beside the cut."""
    img = _base(bed_bgr, scale)
    k = np.ones((3, 3), np.uint8)
    _paint(img, result.scorch, ORANGE, 0.6)
    _paint(img, cv2.dilate(result.through.astype(np.uint8), k) > 0, GREEN, 0.9)
    _paint(img, cv2.dilate(result.uncut.astype(np.uint8), k) > 0, RED, 1.0)
    return _legend(img, "laser cut", result.verdict,
                   [(GREEN, "cut through"), (RED, "not through"), (ORANGE, "scorch")], result.reasons)


def bed_clear_overlay(bed_bgr: np.ndarray, result, grid, scale: int = 2) -> np.ndarray:
    """Red: what differs from the empty bed, boxed with its size in mm."""
    img = _base(bed_bgr, scale)
    _paint(img, result.change_mask > 0 if result.change_mask is not None else None, RED, 0.6)
    s = grid.mm_per_px
    for t in result.things:
        col = (t.centre_mm[0] - grid.x0) / s
        row = (grid.top - t.centre_mm[1]) / s
        w, h = t.size_mm[0] / s, t.size_mm[1] / s
        p0 = (int((col - w / 2) * scale), int((row - h / 2) * scale))
        p1 = (int((col + w / 2) * scale), int((row + h / 2) * scale))
        cv2.rectangle(img, p0, p1, YELLOW, 1)
        cv2.putText(img, f"{t.size_mm[0]:.0f}x{t.size_mm[1]:.0f} mm", (p0[0], max(12, p0[1] - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, YELLOW, 1, cv2.LINE_AA)
    return _legend(img, "bed", result.verdict, [(RED, "not in the empty-bed reference"), (YELLOW, "object")],
                   result.reasons)


def save_png(img: np.ndarray, path: str | Path) -> str:
    """Write a PNG atomically (temp + fsync + rename); returns its sha256."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError(f"{path}: could not encode the overlay as PNG")
    data = buf.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".overlay-", suffix=".png", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()
