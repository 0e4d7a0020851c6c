"""Registering a design: its G-code per machine kind or profile, checked once on the region's side.

The dispatcher needs each file's bytes (offered inline), sha256 and bounding
box (to offer it only to machines whose work volume holds it). The file is
parsed with the same toolpath code the machines use, so a file the region
cannot read is refused here with its path and reason, before any offer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge.errors import UsageError
from edge.region.store import CampaignStore

MAX_INLINE = 200 * 1024      # a job.offer carries the file inline; machines accept 256 KB payloads
KINDS = ("printer", "laser")


def parse_match(spec: str) -> tuple[str, Path]:
    """'printer=FILE', 'laser=FILE' or 'profile:NAME=FILE' -> ('kind:printer', FILE)."""
    key, sep, file = spec.partition("=")
    if not sep or not file:
        raise UsageError(f"--gcode {spec!r}: expected KIND=FILE (printer|laser) or profile:NAME=FILE")
    if key in KINDS:
        return f"kind:{key}", Path(file)
    if key.startswith("profile:") and len(key) > len("profile:"):
        return key, Path(file)
    raise UsageError(f"--gcode {spec!r}: {key!r} is neither printer, laser nor profile:NAME")


def bbox_of(path: Path) -> dict[str, list[float]]:
    """Min/max of every move's end point (and the start), per axis, in machine mm."""
    from edge.toolpath import load
    try:
        tp = load(str(path))
    except Exception as exc:
        raise UsageError(f"{path}: cannot be read as G-code: {exc}") from None
    out = {}
    for axis, arr, start in (("x", tp.seg_x, tp.start[0]), ("y", tp.seg_y, tp.start[1]), ("z", tp.seg_z, tp.start[2])):
        values = np.append(np.asarray(arr, dtype=np.float64), start)
        out[axis] = [round(float(values.min()), 3), round(float(values.max()), 3)]
    return out


def register(store: CampaignStore, name: str, quantity: int, files: list[str], parts_per_job: int = 1) -> dict:
    """Add (or replace) a design; returns what was registered, for the CLI to print."""
    if not name or len(name) > 100:
        raise UsageError(f"design name {name!r}: 1 to 100 characters")
    if quantity < 1:
        raise UsageError(f"--quantity {quantity}: must be at least 1")
    if parts_per_job < 1:
        raise UsageError(f"--parts-per-job {parts_per_job}: must be at least 1")
    if not files:
        raise UsageError("give at least one --gcode KIND=FILE or profile:NAME=FILE")
    gcodes = {}
    for spec in files:
        match, path = parse_match(spec)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if len(data) > MAX_INLINE:
            raise UsageError(f"{path}: {len(data)} bytes; offers carry the file inline, at most {MAX_INLINE} bytes")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        gcodes[match] = (data, hashlib.sha256(data).hexdigest(), bbox_of(path))
    store.add_design(name, quantity, parts_per_job, gcodes)
    return {"design": name, "quantity": quantity, "parts_per_job": parts_per_job,
            "files": {m: {"sha256": g[1], "size": len(g[0]), "bbox": g[2]} for m, g in gcodes.items()}}
