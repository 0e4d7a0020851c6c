"""The toolpath as a struct of numpy arrays: the contract between parser, planner,
checks, raster, streaming and the agent.

One row per *line* of the file (blank and comment lines included, so row i is
line i+1), and one row per *segment* of motion (a straight move is one
segment; an arc G2/G3 is expanded into the segments Marlin would execute).
Memory is what limits a Pi: per line about 22 bytes, per segment about 33; a
100 MB file is a few million rows. Positions are float32 machine millimetres
(physical coordinates: G92 offsets, inches and relative moves already
applied); extrusion is stored as a per-segment delta, since an absolute E
over a whole job would lose precision in float32.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

import numpy as np

# ---- line flags (Toolpath.line_flags, uint16) ---------------------------------
LF_SENDABLE = 1 << 0     # has a command to send (not blank / comment only)
LF_MOVE = 1 << 1         # G0/G1/G2/G3 producing at least one segment
LF_EXTRUDE = 1 << 2      # a move with positive E
LF_ARC = 1 << 3          # G2/G3
LF_LASER = 1 << 4        # a move with the laser on (M3/M4 in effect and S > 0)
LF_FRAMED = 1 << 5       # the file carried `N.. *cs` framing (stripped before sending)
LF_BAD_CHECKSUM = 1 << 6 # framing present but the checksum is wrong
LF_GARBAGE = 1 << 7      # binary / non-ASCII bytes or an unparsable word
LF_TOO_LONG = 1 << 8     # longer than limits.max_line_length once stripped
LF_UNKNOWN = 1 << 9      # a command the parser does not know (warning)
LF_LAYER_START = 1 << 10 # first line of a new layer
LF_SETTINGS = 1 << 11    # changes motion settings (M201 M203 M204 M205 G20 G21 ...)
LF_DWELL = 1 << 12       # G4 / M109 / M190 / G28: waits (time the planner cannot know exactly)
LF_OBJECT = 1 << 13      # marks an object start/end (PrusaSlicer/Cura comment, M486): names re-read from text
LF_BAD_ARC = 1 << 14     # G2/G3 the firmware would refuse (no I/J/R, or R with start = end)

# ---- segment flags (Toolpath.seg_flags, uint8) --------------------------------
SF_EXTRUDE = 1 << 0      # E increases while XYZ moves
SF_TRAVEL = 1 << 1       # XYZ moves with no extrusion
SF_RETRACT = 1 << 2      # E-only move, E decreasing
SF_UNRETRACT = 1 << 3    # E-only move, E increasing
SF_RAPID = 1 << 4        # G0
SF_LASER = 1 << 5        # laser on during this segment

# ---- command letters (Toolpath.letter) ------------------------------------------
L_NONE, L_G, L_M, L_T, L_DOLLAR = 0, ord("G"), ord("M"), ord("T"), ord("$")


@dataclass
class Toolpath:
    """A parsed G-code file. Arrays are filled by edge.toolpath.parse, times by plan."""

    path: str
    size: int                                  # bytes
    # per line -------------------------------------------------------------
    offset: np.ndarray                          # uint32 (int64 for files >= 4 GiB): byte offset of the line start
    letter: np.ndarray                          # uint8: L_G, L_M, L_T, L_DOLLAR or L_NONE
    code: np.ndarray                            # int16: command number (G28.1 -> 28)
    sub: np.ndarray                             # uint8: subcode (G28.1 -> 1), 0 if none
    line_flags: np.ndarray                      # uint16: LF_*
    layer: np.ndarray                           # int32: layer index, -1 before the first layer
    line_time: np.ndarray                       # float32: planned seconds for this line (0 until planned)
    # per segment ------------------------------------------------------------
    seg_line: np.ndarray                        # int32: index of the line that made the segment
    seg_x: np.ndarray                           # float32 end positions, machine mm
    seg_y: np.ndarray
    seg_z: np.ndarray
    seg_de: np.ndarray                          # float32: filament mm extruded (+) / retracted (-)
    seg_f: np.ndarray                           # float32: requested feedrate, mm/s
    seg_power: np.ndarray                       # float32: laser S in effect (0 when off)
    seg_flags: np.ndarray                       # uint8: SF_*
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)   # position before the first segment
    kind: str = "printer"                       # what the file looks like: printer | laser
    first_layer: tuple[int, int] = (-1, -1)     # line indices [start, end] of the first layer
    objects: list[str] = field(default_factory=list)  # object names (PrusaSlicer, Cura, M486)
    seg_object: np.ndarray | None = None        # int16 per segment: index into objects, -1 none
    stats: dict = field(default_factory=dict)   # parser facts for checks: first_unhomed_move, max_power(_line)
    _mm: mmap.mmap | None = field(default=None, repr=False)

    @property
    def lines(self) -> int:
        return len(self.offset)

    def line_bytes(self, i: int) -> bytes:
        """Raw bytes of line i (0-based), without the line ending."""
        start = int(self.offset[i])
        end = int(self.offset[i + 1]) if i + 1 < len(self.offset) else self.size
        raw = self._mm[start:end] if self._mm is not None else open(self.path, "rb").read()[start:end]
        return raw.rstrip(b"\r\n")

    def total_time(self) -> float:
        return float(self.line_time.sum(dtype=np.float64))
