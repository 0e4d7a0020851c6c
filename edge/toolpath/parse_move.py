"""Executing a move: G0/G1 become one segment, G2/G3 the segments Marlin's
plan_arc makes (same segment count, points on the circle, the axis normal to
the plane and E spread evenly; G17/G18/G19 planes; P extra full turns). Also the layout of the parser's modal-state array, shared with
parse_kernel, which reads the words and calls _move for motion lines."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from edge.toolpath.model import (
    LF_ARC, LF_BAD_ARC, LF_EXTRUDE, LF_LASER, LF_MOVE,
    SF_EXTRUDE, SF_LASER, SF_RAPID, SF_RETRACT, SF_TRAVEL, SF_UNRETRACT,
)

# ---- indices into the state array ------------------------------------------------
S_X, S_Y, S_Z, S_E = 0, 1, 2, 3            # physical position; logical E
S_OX, S_OY, S_OZ = 4, 5, 6                 # G92 offsets: physical = logical + offset
S_F = 7                                    # feedrate, mm/s
S_INCH, S_REL, S_EMODE = 8, 9, 10          # G20; G91; E mode 0 = follow G90/G91, 1 = M82, 2 = M83 (since the last G90/G91)
S_LASER_ON, S_LASER_S, S_MOTION = 11, 12, 13
S_LINE, S_SEG, S_POS = 14, 15, 16          # lines done, segments done, byte offset to resume at
S_HOMED, S_UNHOMED_MOVE = 17, 18           # G28 seen; 0-based line of the first move before it (-1)
S_ANY_EXTRUDE, S_ANY_LASER = 19, 20
S_MAX_POWER, S_MAX_POWER_LINE = 21, 22     # largest S commanded for the laser and where
S_SCRATCH = 23                             # line flags handed back by _move
S_PLANE = 24                               # arc plane: 0 = G17 XY, 1 = G18 ZX, 2 = G19 YZ
STATE_SIZE = 25

MAX_ARC_SEGMENTS = 65535                   # Marlin counts arc segments in a uint16_t
MAX_SEGMENTS_PER_LINE = MAX_ARC_SEGMENTS + 1
MAX_ARC_SEGMENT_MM = 1.0                   # Marlin defaults (Configuration_adv.h)
MIN_ARC_SEGMENT_MM = 0.1
MIN_CIRCLE_SEGMENTS = 72
MAX_ARC_CIRCLES = 100                      # Marlin's ARC_P_CIRCLES refuses P beyond this
# The kernels here run with _nrt=False, as in parse_kernel: no allocation, no refcounting.


def new_state(home: tuple[float, float, float]) -> np.ndarray:
    st = np.zeros(STATE_SIZE, np.float64)
    st[S_X], st[S_Y], st[S_Z] = home
    st[S_F] = 25.0                          # a cautious default until the file sets F
    st[S_MOTION] = -1
    st[S_UNHOMED_MOVE] = -1
    st[S_MAX_POWER_LINE] = -1
    return st


@njit(cache=True, inline='always', _nrt=False)
def _emit(ns, li, x, y, z, de, f, power, flags, seg_line, sx, sy, sz, sde, sf, sp, sfl):
    seg_line[ns] = li
    sx[ns] = x
    sy[ns] = y
    sz[ns] = z
    if de != 0:                  # sde and sp start zeroed: untouched pages stay out of RSS
        sde[ns] = de             # (a printer never writes laser power, a laser never E)
    sf[ns] = f
    if power != 0:
        sp[ns] = power
    sfl[ns] = flags
    return ns + 1


@njit(cache=True, inline='always', _nrt=False)
def _seg_flags(moved, de, rapid, laser):
    fl = 0
    if moved:
        fl = SF_EXTRUDE if de > 0 else SF_TRAVEL
    elif de < 0:
        fl = SF_RETRACT
    elif de > 0:
        fl = SF_UNRETRACT
    if rapid:
        fl |= SF_RAPID
    if laser:
        fl |= SF_LASER
    return fl


@njit(cache=True, _nrt=False)
def arc_segments(flat_mm, abs_angle, full_circle):
    """Marlin 2.1 plan_arc: how many segments an arc of this length/angle becomes."""
    if full_circle:
        min_seg = MIN_CIRCLE_SEGMENTS
    else:
        min_seg = int(math.ceil(MIN_CIRCLE_SEGMENTS * abs_angle / (2 * math.pi)))
    nominal = max(math.floor(flat_mm / MAX_ARC_SEGMENT_MM), min_seg)
    nominal_mm = flat_mm / nominal
    if nominal_mm > MAX_ARC_SEGMENT_MM:
        n = int(math.ceil(flat_mm / MAX_ARC_SEGMENT_MM))
    elif nominal_mm < MIN_ARC_SEGMENT_MM:
        n = max(1, int(math.floor(flat_mm / MIN_ARC_SEGMENT_MM)))
    else:
        n = int(nominal)
    return min(max(n, 1), MAX_ARC_SEGMENTS)


@njit(cache=True, inline='always', _nrt=False)
def _to_plane(plane, x, y, z):
    """(first, second, normal) axis values for the arc plane, as Marlin's p, q and l axes."""
    if plane == 1:
        return z, x, y
    if plane == 2:
        return y, z, x
    return x, y, z


@njit(cache=True, inline='always', _nrt=False)
def _from_plane(plane, a, b, n):
    if plane == 1:
        return b, n, a
    if plane == 2:
        return n, a, b
    return a, b, n


@njit(cache=True, inline='always', _nrt=False)
def _move(motion, li, scale, vals, hm, st, fl, ns, seg_line, sx, sy, sz, sde, sf, sp, sfl):
    """Execute G0-G3 for line li; returns the segment count, line flags in st[S_SCRATCH].

    An arc the firmware refuses or skips leaves the position (and E) unchanged, as Marlin does."""
    st[S_SCRATCH] = fl
    rel = st[S_REL] == 1
    px, py, pz = st[S_X], st[S_Y], st[S_Z]
    tx, ty, tz = px, py, pz
    if (hm >> 23) & 1:
        tx = px + vals[23] * scale if rel else vals[23] * scale + st[S_OX]
    if (hm >> 24) & 1:
        ty = py + vals[24] * scale if rel else vals[24] * scale + st[S_OY]
    if (hm >> 25) & 1:
        tz = pz + vals[25] * scale if rel else vals[25] * scale + st[S_OZ]
    de = 0.0
    e_rel = st[S_EMODE] == 2 or (st[S_EMODE] == 0 and rel)
    new_e = st[S_E]
    if (hm >> 4) & 1:
        v = vals[4] * scale
        new_e = st[S_E] + v if e_rel else v
        de = new_e - st[S_E]
    laser = motion != 0 and st[S_LASER_ON] == 1 and st[S_LASER_S] > 0
    power = st[S_LASER_S] if laser else 0.0
    f = st[S_F]
    start = ns
    if st[S_HOMED] == 0 and st[S_UNHOMED_MOVE] < 0 and (hm >> 23) & 7:
        st[S_UNHOMED_MOVE] = li              # a bare `G0` (LightBurn's modal header) moves nothing
    if motion <= 1:
        moved = tx != px or ty != py or tz != pz
        if moved or de != 0:
            ns = _emit(ns, li, tx, ty, tz, de, f, power, _seg_flags(moved, de, motion == 0, laser and moved),
                       seg_line, sx, sy, sz, sde, sf, sp, sfl)
    else:
        fl |= LF_ARC
        cw = motion == 2
        plane = int(st[S_PLANE])
        pa, pb, pn = _to_plane(plane, px, py, pz)
        ta, tb, tn = _to_plane(plane, tx, ty, tz)
        # the plane's offset letters: G17 I J, G18 K I, G19 J K (A=0 ... I=8, J=9, K=10)
        ia = 8 if plane == 0 else (10 if plane == 1 else 9)
        ib = 9 if plane == 0 else (8 if plane == 1 else 10)
        oi = 0.0
        oj = 0.0
        if (hm >> 17) & 1:                 # R form
            r = vals[17] * scale
            if r != 0 and (ta != pa or tb != pb):
                d2x = (ta - pa) * 0.5
                d2y = (tb - pb) * 0.5
                sgn = -1.0 if (cw != (r < 0)) else 1.0
                ln = math.hypot(d2x, d2y)
                h2 = (r - ln) * (r + ln)
                h = math.sqrt(h2) if h2 >= 0 else 0.0
                oi = d2x + (-d2y) / ln * sgn * h
                oj = d2y + d2x / ln * sgn * h
        else:
            if (hm >> ia) & 1:
                oi = vals[ia] * scale
            if (hm >> ib) & 1:
                oj = vals[ib] * scale
        circles = 0
        if (hm >> 15) & 1:                 # P: full turns before the arc (ARC_P_CIRCLES)
            circles = int(vals[15])
            if circles != vals[15] or circles < 0 or circles > MAX_ARC_CIRCLES:
                st[S_SCRATCH] = fl | LF_BAD_ARC
                return ns
        if oi == 0 and oj == 0:
            st[S_SCRATCH] = fl | LF_BAD_ARC
            return ns
        rvx = -oi
        rvy = -oj
        radius = math.hypot(rvx, rvy)
        ca = pa + oi
        cb = pb + oj
        rtx = ta - ca
        rty = tb - cb
        full = abs(pa - ta) < 1e-6 and abs(pb - tb) < 1e-6
        if full:
            ang = -2 * math.pi if cw else 2 * math.pi
        else:
            ang = math.atan2(rvx * rty - rvy * rtx, rvx * rtx + rvy * rty)
            if ang == 0 and circles == 0:
                return ns
            if ang > 0 and cw:
                ang -= 2 * math.pi
            elif ang < 0 and not cw:
                ang += 2 * math.pi
        if circles:
            ang += -2 * math.pi * circles if cw else 2 * math.pi * circles
        flat = radius * abs(ang)
        dn = tn - pn
        if flat < 0.0001 and dn < 0.0001:
            return ns
        nseg = arc_segments(flat, abs(ang), full)
        theta = ang / nseg
        qx, qy, qz = px, py, pz
        for i in range(1, nseg + 1):
            if i < nseg:
                ct = math.cos(i * theta)
                stt = math.sin(i * theta)
                nx, ny, nz = _from_plane(plane, ca + (-oi * ct + oj * stt), cb + (-oi * stt - oj * ct),
                                         pn + dn * i / nseg)
            else:
                nx, ny, nz = tx, ty, tz
            d = de / nseg
            moved = nx != qx or ny != qy or nz != qz
            ns = _emit(ns, li, nx, ny, nz, d, f, power, _seg_flags(moved, d, False, laser and moved),
                       seg_line, sx, sy, sz, sde, sf, sp, sfl)
            qx, qy, qz = nx, ny, nz
    if ns > start:
        fl |= LF_MOVE
        if de > 0:
            fl |= LF_EXTRUDE
            if tx != px or ty != py or tz != pz or motion >= 2:
                st[S_ANY_EXTRUDE] = 1
        if laser and (tx != px or ty != py or motion >= 2):
            fl |= LF_LASER
            st[S_ANY_LASER] = 1
    st[S_X], st[S_Y], st[S_Z], st[S_E] = tx, ty, tz, new_e
    st[S_SCRATCH] = fl
    return ns
