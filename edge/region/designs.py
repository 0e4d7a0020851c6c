"""Registering a design: its G-code per machine kind or profile, checked once on the region's side.

The dispatcher needs each file's bytes (offered inline), sha256 and bounding
box (to offer it only to machines whose work volume holds it). The file is
checked with the same toolpath checks the machines run on a job.offer, so a
file every machine would refuse (garbage, bad checksums, forbidden commands,
arcs the firmware refuses, the wrong kind, moves outside every known volume)
is refused here with its file, line and reason instead of stalling the
campaign with one checks_failed rejection after another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import UsageError
from edge.region.store import CampaignStore, Machine

MAX_INLINE = 200 * 1024      # a job.offer carries the file inline; machines accept 256 KB payloads
KINDS = ("printer", "laser")
# No machine of the design's kind is known yet: moves beyond this fit no fab-lab machine.
ANY_VOLUME = {"x": [-50.0, 2000.0], "y": [-50.0, 2000.0], "z": [-50.0, 2000.0]}


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


def _matching(store: CampaignStore, match: str) -> list[Machine]:
    """Machines already seen (birth) that this file would be offered to, volume known."""
    how, _, value = match.partition(":")
    return [m for m in store.machines()
            if (m.kind if how == "kind" else m.profile) == value
            and all(isinstance(m.volume.get(a), list) and len(m.volume[a]) == 2 for a in "xyz")]


def check_config(match: str, path: Path, machines: list[Machine]) -> config.Config:
    """The config a design is checked with: the default one of its machine kind (its forbidden
    commands and line length), the union of the known matching machines' volumes (else
    ANY_VOLUME), and the highest temperature and power limits a config may set (those are
    each machine's own business; it checks them again on the offer)."""
    how, _, value = match.partition(":")
    if how == "kind":
        kind = value
    elif machines:
        kind = machines[0].kind
    else:
        from edge.toolpath import load
        kind = load(str(path)).kind          # a profile nobody has announced yet: what the file looks like
    volume = ANY_VOLUME
    if machines:
        volume = {a: [min(m.volume[a][0] for m in machines), max(m.volume[a][1] for m in machines)]
                  for a in "xyz"}
    proto = "grbl" if kind == "laser" else "marlin"
    return config.from_dict({
        "machine": {"kind": kind}, "serial": {"protocol": proto}, "motion": {"planner": proto},
        "volume": volume, "limits": {"max_nozzle_c": 500, "max_bed_c": 200, "max_laser_power": 100000},
    }, source=f"region check for {match}")


def check_design(match: str, path: Path, machines: list[Machine]) -> None:
    """Run the machines' job checks on the file; UsageError naming file, line and reason if any fails."""
    from edge.toolpath import analyze
    cfg = check_config(match, path, machines)
    try:
        result = analyze(path, cfg)
    except Exception as exc:
        raise UsageError(f"{path}: cannot be read as G-code: {exc}") from None
    if result.ok:
        return
    # the checks already keep a few findings per kind and count the rest: all of them are shown
    shown = [f"{path}: {f.message}" for f in result.errors]
    where = f"{len(machines)} known {match} machine(s)" if machines else f"any {cfg.machine.kind}"
    raise UsageError(f"{path}: refused for {match}: {len(result.errors)} error(s) that {where} would reject "
                     f"the offer for:\n  " + "\n  ".join(shown))


def _utf8_error(path: Path, data: bytes, exc: UnicodeDecodeError) -> UsageError:
    line = data.count(b"\n", 0, exc.start) + 1
    return UsageError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                      "offers carry the file as JSON text")


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
            raise _utf8_error(path, data, exc) from None
        check_design(match, path, _matching(store, match))
        gcodes[match] = (data, hashlib.sha256(data).hexdigest(), bbox_of(path))
    store.add_design(name, quantity, parts_per_job, gcodes)
    return {"design": name, "quantity": quantity, "parts_per_job": parts_per_job,
            "files": {m: {"sha256": g[1], "size": len(g[0]), "bbox": g[2]} for m, g in gcodes.items()}}
