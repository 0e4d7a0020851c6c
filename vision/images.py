"""Decode and check images before any inspection, so a corrupt file or a frame of
the wrong size is one clear error rather than an OpenCV assertion deep inside."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision.errors import ImageError


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 image from a file; ImageError naming the file when it cannot be decoded."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageError(f"{path}: empty file, not an image")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f"{path}: not a decodable image (corrupt or unknown format, {data.size} bytes)")
    return img


def check_frame(img: np.ndarray, name: str = "frame", size: tuple[int, int] | None = None) -> np.ndarray:
    """Return `img` as 3-channel BGR uint8; ImageError if it is not an image or not width x height `size`."""
    if not isinstance(img, np.ndarray) or img.size == 0:
        raise ImageError(f"{name}: no image data")
    if img.dtype != np.uint8:
        raise ImageError(f"{name}: pixel type {img.dtype}, expected 8-bit")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageError(f"{name}: shape {img.shape} is not a grey, BGR or BGRA image")
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if min(img.shape[:2]) < 64:
        raise ImageError(f"{name}: {img.shape[1]}x{img.shape[0]} px is too small to inspect")
    if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
        raise ImageError(f"{name}: {img.shape[1]}x{img.shape[0]} px, expected {size[0]}x{size[1]} "
                         "(the camera's configured size)")
    return img


def same_size(a: np.ndarray, b: np.ndarray, a_name: str = "image", b_name: str = "reference") -> None:
    """ImageError when a frame and its reference differ in size (different camera or mode)."""
    if a.shape[:2] != b.shape[:2]:
        raise ImageError(f"{a_name} is {a.shape[1]}x{a.shape[0]} px but {b_name} is "
                         f"{b.shape[1]}x{b.shape[0]} px: both must come from the same camera mode")
