"""Laser rules: what must hold before a laser job may start, and what it will cost.

A GRBL laser is only safe in laser mode ($32=1): with $32=0 GRBL treats the
laser as a spindle, leaves it burning while the head stops at corners and
between moves, and can set the work on fire. So a job is refused unless the
controller answers `$$` with $32=1, every S is within both the configured
`limits.max_laser_power` and the controller's `$30`, and no move leaves the
configured Z range. M3 (constant power) vs M4 (dynamic power) is reported, as
are the estimated cut time (GRBL's planner, fed with the controller's own
$110-$122 and $11), laser-on time and laser-on path length: tubes and diodes
wear by the hour, so the region counts them per job.

    settings = read_settings(driver)             # driver.send_command("$$")
    report = check(tp, cfg, settings)            # raises LaserRefused
    telemetry.publish(report.telemetry())
    WearCounter(state_dir / "laser-wear.json").add(*laser_use_until(tp, last_acked_line))  # lifetime
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from edge.config import Config
from edge.atomicfile import write_atomic
from edge.errors import FabedgeError
from edge.toolpath.model import L_M, LF_LASER, SF_LASER, Toolpath

_SETTING = re.compile(r"^\$(\d+)=([-+]?\d*\.?\d+)")


class LaserRefused(FabedgeError):
    """The job must not start on this laser; the message names file, line and the fix."""


class _Commands(Protocol):
    def send_command(self, line: str, timeout: float = 10.0) -> list[str]: ...


@dataclass(frozen=True)
class LaserReport:
    """What a laser job will do, for the operator and for telemetry."""
    path: str
    power_mode: str                     # "M4" dynamic | "M3" constant | "M3+M4" | "none"
    max_power: float                    # largest S commanded
    power_limit: float                  # min(limits.max_laser_power, $30)
    cut_time_s: float                   # whole job, GRBL planner
    laser_on_s: float                   # time with the laser on
    laser_on_mm: float                  # path length with the laser on
    travel_mm: float                    # path length with the laser off
    warnings: list[str] = field(default_factory=list)

    def telemetry(self) -> dict[str, object]:
        """Flat fields for the job's telemetry / event payload."""
        return {"power_mode": self.power_mode, "max_power": self.max_power, "power_limit": self.power_limit,
                "cut_time_s": round(self.cut_time_s, 3), "laser_on_s": round(self.laser_on_s, 3),
                "laser_on_h": round(self.laser_on_s / 3600.0, 6), "laser_on_mm": round(self.laser_on_mm, 3),
                "travel_mm": round(self.travel_mm, 3), "warnings": list(self.warnings)}


def parse_settings(lines: Iterable[str]) -> dict[int, float]:
    """`$$` answer lines (`$32=1`, `$110=6000.000`, ...) -> {32: 1.0, 110: 6000.0}."""
    out = {}
    for line in lines:
        m = _SETTING.match(line.strip())
        if m:
            out[int(m.group(1))] = float(m.group(2))
    return out


def read_settings(driver: _Commands, timeout: float = 10.0) -> dict[int, float]:
    """Ask the controller for its settings (refused by GRBL while a job runs)."""
    return parse_settings(driver.send_command("$$", timeout=timeout))


def preflight(driver: _Commands, tp: Toolpath, cfg: Config) -> LaserReport:
    """What the agent / `fabedge stream` call after START, before `start_job`: ask the controller, check."""
    try:
        settings = read_settings(driver)
    except Exception as exc:                      # DriverError: drivers/ does not share edge's exceptions
        raise LaserRefused(f"{tp.path}: cannot read the controller's settings ($$): {exc}") from None
    return check(tp, cfg, settings)


def check(tp: Toolpath, cfg: Config, settings: dict[int, float]) -> LaserReport:
    """Refuse (LaserRefused) or describe a laser job; plans tp.line_time with GRBL's model."""
    where = tp.path
    mode = settings.get(32)
    if mode != 1:
        shown = "missing from the controller's $$ answer" if mode is None else f"$32={mode:g}"
        raise LaserRefused(f"{where}: the controller is not in laser mode ({shown}); outside laser mode GRBL "
                           "keeps the laser burning while the head stops. Fix: send `$32=1` to the controller "
                           "(e.g. in its console), then start the job again")
    limit = cfg.limits.max_laser_power
    source = "limits.max_laser_power"
    if 30 in settings and settings[30] < limit:
        limit, source = settings[30], "the controller's $30 (maximum S)"
    line = _first_line_over(tp, limit)
    if line:
        raise LaserRefused(f"{where}:{line}: S{_power_on_line(tp, line):g} is above {source} = {limit:g}; "
                           "scale the job's power down (or raise the limit if the machine allows it)")
    zmin, zmax = cfg.volume.z
    bad = np.nonzero((tp.seg_z < zmin - 1e-4) | (tp.seg_z > zmax + 1e-4))[0]
    if len(bad):
        i = int(bad[0])
        raise LaserRefused(f"{where}:{int(tp.seg_line[i]) + 1}: Z{float(tp.seg_z[i]):g} is outside the "
                           f"configured Z range [{zmin:g}, {zmax:g}] (volume.z)")
    modes = _power_modes(tp)
    warnings = []
    if "M3" in modes:
        warnings.append("M3 constant power: the laser keeps full S while slowing at corners, which over-burns "
                        "them; M4 (dynamic power) is usual for cutting and engraving")
    if not modes:
        warnings.append("no M3/M4 in the file: the laser never turns on")
    on_mm, off_mm = _path_lengths(tp)
    cut_time, on_time = _times(tp, cfg, settings)
    return LaserReport(path=where, power_mode="+".join(sorted(modes)) or "none",
                       max_power=float(tp.seg_power.max()) if len(tp.seg_power) else 0.0,
                       power_limit=limit, cut_time_s=cut_time, laser_on_s=on_time,
                       laser_on_mm=on_mm, travel_mm=off_mm, warnings=warnings)


def _first_line_over(tp: Toolpath, limit: float) -> int:
    """1-based first line commanding S > limit (on a move or on its own), 0 if none."""
    over = np.nonzero(tp.seg_power > limit + 1e-6)[0]
    first = int(tp.seg_line[over[0]]) + 1 if len(over) else 0
    stats = getattr(tp, "stats", {}) or {}
    if stats.get("max_power", 0.0) > limit + 1e-6 and stats.get("max_power_line", -1) >= 0:
        line = int(stats["max_power_line"]) + 1
        first = min(first, line) if first else line
    return first


def _power_on_line(tp: Toolpath, line: int) -> float:
    m = re.search(rb"S\s*([-+]?\d*\.?\d+)", tp.line_bytes(line - 1).split(b";")[0].upper())
    return float(m.group(1)) if m else float(tp.seg_power.max())


def _power_modes(tp: Toolpath) -> set[str]:
    m_lines = (tp.letter == L_M) & ((tp.code == 3) | (tp.code == 4))
    return {f"M{int(c)}" for c in np.unique(tp.code[m_lines])}


def _path_lengths(tp: Toolpath, segments: int | None = None) -> tuple[float, float]:
    """(laser-on mm, laser-off mm) along the first `segments` segments (all by default)."""
    n = len(tp.seg_x) if segments is None else segments
    if not n:
        return 0.0, 0.0
    xyz = np.stack([tp.seg_x[:n], tp.seg_y[:n], tp.seg_z[:n]], axis=1).astype(np.float64)
    prev = np.vstack([np.asarray(tp.start, np.float64)[None, :], xyz[:-1]])
    length = np.linalg.norm(xyz - prev, axis=1)
    on = (tp.seg_flags[:n] & SF_LASER) != 0
    return float(length[on].sum()), float(length[~on].sum())


def _times(tp: Toolpath, cfg: Config, settings: dict[int, float]) -> tuple[float, float]:
    """(whole job, laser on) seconds from GRBL's planner with the controller's own limits."""
    from edge.toolpath.plan import plan

    motion = dataclasses.replace(cfg.motion, planner="grbl")
    rates = [settings.get(k) for k in (110, 111, 112)]
    accels = [settings.get(k) for k in (120, 121, 122)]
    if all(v for v in rates):
        motion = dataclasses.replace(motion, max_feedrate=[v / 60.0 for v in rates] + [motion.max_feedrate[3]])
    if all(v for v in accels):
        motion = dataclasses.replace(motion, max_acceleration=list(accels) + [motion.max_acceleration[3]])
    if settings.get(11):
        motion = dataclasses.replace(motion, junction_deviation=settings[11])
    plan(tp, motion)
    on = (tp.line_flags & LF_LASER) != 0
    return tp.total_time(), float(tp.line_time[on].sum(dtype=np.float64))


def laser_use_until(tp: Toolpath, line: int) -> tuple[float, float]:
    """(laser-on seconds, laser-on mm) of file lines 1..line, planned (check() has planned tp): what a job
    that stopped at `line` (JobFailed / JobCancelled .last_acked_line) really cost the tube."""
    n = max(0, min(line, tp.lines))
    on = (tp.line_flags[:n] & LF_LASER) != 0
    seconds = float(tp.line_time[:n][on].sum(dtype=np.float64))
    segs = int(np.searchsorted(tp.seg_line, n))             # segments of lines 0..n-1 (seg_line is sorted)
    on_mm, _ = _path_lengths(tp, segs)
    return seconds, on_mm


class WearCounter:
    """The machine's lifetime laser-on hours and path, kept in one small JSON file written atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def totals(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {"laser_on_s": float(data["laser_on_s"]), "laser_on_mm": float(data["laser_on_mm"]),
                    "jobs": float(data["jobs"])}
        except FileNotFoundError:
            return {"laser_on_s": 0.0, "laser_on_mm": 0.0, "jobs": 0.0}
        except (ValueError, KeyError, TypeError) as exc:
            raise FabedgeError(f"{self.path}: unreadable laser wear counter ({exc}); fix or remove the file") from None

    def add(self, laser_on_s: float, laser_on_mm: float) -> dict[str, float]:
        """Count one job (temp file, fsync, rename: a power cut never loses or halves the total)."""
        t = self.totals()
        t = {"laser_on_s": t["laser_on_s"] + laser_on_s, "laser_on_mm": t["laser_on_mm"] + laser_on_mm,
             "jobs": t["jobs"] + 1}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(t).encode())
        return {**t, "laser_on_h": t["laser_on_s"] / 3600.0}
