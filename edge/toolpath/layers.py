"""Layers: which layer each line belongs to, and the first layer's line range.

A layer is a Z change followed by work (extrusion on a printer, laser-on
motion on a laser). Rules, chosen to match what a person calls a layer:
- Z hops during travel are not layers: only the Z at which work happens counts.
- A layer starts at the first Z-changing move after the previous layer's last
  work (so the move to the new height, hops and travel belong to the new
  layer), or at the work line itself when Z changed while working. The first
  layer starts at the last Z move before the first work (the move down to the
  bed, not a lift early in the start G-code).
- Vase mode (Z rises while extruding): a new layer starts where the spiral rises
  above the current layer's height, and lasts one layer height (the last one
  seen between two ordinary layers, 0.2 mm if none), so each turn of the
  spiral is one layer, as the slicer counts them.
- Going down (sequential printing, a second object) also starts a new layer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.toolpath.model import LF_LAYER_START, SF_EXTRUDE, SF_LASER, Toolpath

Z_EPS = 1e-4
DEFAULT_LAYER_HEIGHT = 0.2
MAX_LAYER_HEIGHT = 2.0      # a bigger step is a move to another height, not a layer height


@njit(cache=True)
def _layer_starts(seg_line, seg_z, seg_flags, work_mask, start_z, starts):
    """Fill starts[k] = 0-based line where layer k begins; returns the layer count."""
    n_layers = 0
    layer_z = 0.0
    height = DEFAULT_LAYER_HEIGHT
    prev_z = start_z
    z_change_line = -1           # first Z-changing non-working move since the last work
    z_change_last = -1           # ... and the last one
    for i in range(len(seg_line)):
        z = seg_z[i]
        working = (seg_flags[i] & work_mask) != 0
        z_moved = abs(z - prev_z) > Z_EPS
        if not working:
            if z_moved:
                z_change_last = seg_line[i]
                if z_change_line < 0:
                    z_change_line = seg_line[i]
        else:
            new_layer = False
            start_line = seg_line[i]
            next_z = z
            if n_layers == 0:                            # from the move down to the bed, not
                new_layer = True                         # from a lift in the start G-code
                if z_change_last >= 0:
                    start_line = z_change_last
            elif abs(z - layer_z) > Z_EPS:
                if z_change_line >= 0:                   # a move to a new height, then work
                    new_layer = True
                    start_line = z_change_line
                    if layer_z < z <= layer_z + MAX_LAYER_HEIGHT:
                        height = z - layer_z
                elif z_moved and z > layer_z:            # rising while working: vase mode
                    new_layer = True
                    next_z = layer_z + height
            if new_layer:
                if n_layers > 0 and start_line <= starts[n_layers - 1]:
                    start_line = starts[n_layers - 1] + 1
                if n_layers < len(starts):
                    starts[n_layers] = start_line
                n_layers += 1
                layer_z = next_z
            z_change_line = -1
            z_change_last = -1
        prev_z = z
    return n_layers


@njit(cache=True)
def _fill_lines(starts, n_layers, layer, line_flags, flag):
    k = -1
    for i in range(len(layer)):
        while k + 1 < n_layers and starts[k + 1] <= i:
            k += 1
            line_flags[i] |= flag
        layer[i] = k


def assign_layers(tp: Toolpath) -> int:
    """Fill tp.layer, LF_LAYER_START flags and tp.first_layer; returns the layer count."""
    work = SF_LASER if tp.kind == "laser" else SF_EXTRUDE
    starts = np.empty(max(1, min(len(tp.seg_line), tp.lines)), np.int32)
    n = int(_layer_starts(tp.seg_line, tp.seg_z, tp.seg_flags, np.uint8(work), np.float32(tp.start[2]), starts))
    n = min(n, len(starts))
    _fill_lines(starts, n, tp.layer, tp.line_flags, np.uint16(LF_LAYER_START))
    if n == 0:
        tp.first_layer = (-1, -1)
    else:
        end = int(starts[1]) - 1 if n > 1 else tp.lines - 1
        tp.first_layer = (int(starts[0]), end)
    return n
