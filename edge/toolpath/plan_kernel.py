"""numba kernels of the motion planner: trapezoids, junction speeds, look-ahead.

One pass over the segment arrays with a bounded window of planner blocks (the
way PrusaSlicer's estimator and a firmware work): a block is built per segment,
and when the window holds REFRESH blocks a backward and a forward look-ahead
pass run over it and all but the newest KEEP blocks are retired, adding their
trapezoid's time to the line that made them. Memory is a few KB whatever the
file size; the only per-line output is `line_time` (float32).

`plan_range` can also plan a slice of the segments: it starts WARM segments
early and looks AHEAD segments past the slice's end but credits only the
slice's own segments, so slices planned apart add up to one whole pass (up to
look-ahead truncation far below a millisecond per slice). edge.toolpath.plan
runs one pass over a whole file; edge.plan_follow plans slices in
worker threads while the parser is still reading the rest of the file.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MODE_JERK, MODE_JD, MODE_GRBL = 0, 1, 2

# ---- parameter vector (float64), also one row per settings event ------------
P_VMAX = 0          # 0..3: max feedrate X Y Z E, mm/s
P_AMAX = 4          # 4..7: max acceleration X Y Z E, mm/s^2
P_ACC = 8           # printing acceleration (M204 P / S)
P_RACC = 9          # retract acceleration (M204 R)
P_TACC = 10         # travel acceleration (M204 T)
P_JD = 11           # junction deviation, mm
P_JERK = 12         # 12..15: classic jerk X Y Z E, mm/s
P_VMIN = 16         # minimum extruding feedrate (M205 S)
P_VMIN_T = 17       # minimum travel feedrate (M205 T)
NPARAM = 18

# ---- event kinds ---------------------------------------------------------------
EV_SETTINGS = 0     # a row of parameters in force from this line on
EV_WAIT = 1         # the planner drains here (G4, heat-up waits, homing), plus `dwell` seconds

REFRESH = 256       # window size that triggers a look-ahead pass
KEEP = 64           # newest blocks kept for the next pass (their exit is not known yet)
MIN_PLANNER_SPEED = 0.05   # mm/s, Marlin MINIMUM_PLANNER_SPEED
_BIG = 1e30
WARM = 4096         # segments planned before a slice's first credited one
AHEAD = 4096        # segments planned after a slice's last credited one
# block fields, columns of the float64 window `wb`
B_DIST, B_ACC, B_CRUISE, B_ENTRY, B_MAXENTRY, B_SAFE, B_NOMINAL = range(7)
NB = 7

_JIT = dict(cache=True, error_model="numpy")


@njit(**_JIT, inline="always")
def _max_allowable(accel, target, dist):
    """Highest speed at a block's start that can still brake to `target` over `dist`."""
    v = target * target + 2.0 * accel * dist
    return math.sqrt(v) if v > 0.0 else 0.0


@njit(**_JIT, inline="always")
def trapezoid_time(d, a, entry, cruise, exit_v):
    """Seconds to cover d mm: accelerate from entry, cruise, brake to exit_v (a triangle
    when too short to reach cruise, its peak where the two curves meet)."""
    inv2a = 0.5 / a
    acc_d = max(0.0, (cruise * cruise - entry * entry) * inv2a)
    dec_d = max(0.0, (cruise * cruise - exit_v * exit_v) * inv2a)
    cruise_d = d - acc_d - dec_d
    if cruise_d >= 0.0:   # (an entry or exit above cruise takes no time to reach: PrusaSlicer does the same)
        return (max(0.0, cruise - entry) + max(0.0, cruise - exit_v)) / a + cruise_d / cruise
    acc_d = min(max((2.0 * a * d - entry * entry + exit_v * exit_v) * 0.5 * inv2a, 0.0), d)
    peak = math.sqrt(max(0.0, entry * entry + 2.0 * a * acc_d))
    tail = math.sqrt(max(0.0, peak * peak - 2.0 * a * (d - acc_d)))
    return (2.0 * peak - entry - tail) / a


@njit(**_JIT)
def _retire(wb, wseg, n, keep, seg_line, line_time, credit_lo, credit_hi):
    """Look-ahead over the window, then retire its oldest n-keep blocks (crediting the time
    of those whose segment lies in [credit_lo, credit_hi)). Returns the new window size."""
    # backward pass: entry speeds as high as braking into the next block allows
    for i in range(n - 1, 0, -1):
        c = i - 1
        if wb[c, B_ENTRY] != wb[c, B_MAXENTRY]:
            if wb[c, B_NOMINAL] == 0.0 and wb[c, B_MAXENTRY] > wb[i, B_ENTRY]:
                wb[c, B_ENTRY] = min(wb[c, B_MAXENTRY], _max_allowable(wb[c, B_ACC], wb[i, B_ENTRY], wb[c, B_DIST]))
            else:
                wb[c, B_ENTRY] = wb[c, B_MAXENTRY]
    # forward pass: a block too short to accelerate fully limits the next entry
    for i in range(n - 1):
        if wb[i, B_NOMINAL] == 0.0 and wb[i, B_ENTRY] < wb[i + 1, B_ENTRY]:
            wb[i + 1, B_ENTRY] = min(wb[i + 1, B_ENTRY],
                                     _max_allowable(wb[i, B_ACC], wb[i, B_ENTRY], wb[i, B_DIST]))
    done = n - keep
    for i in range(done):
        s = wseg[i]
        if credit_lo <= s < credit_hi:
            # the newest block of the window exits at its safe speed
            exit_v = wb[i + 1, B_ENTRY] if i + 1 < n else wb[i, B_SAFE]
            line_time[seg_line[s]] += trapezoid_time(wb[i, B_DIST], wb[i, B_ACC], wb[i, B_ENTRY],
                                                     wb[i, B_CRUISE], exit_v)
    for i in range(keep):
        for j in range(NB):
            wb[i, j] = wb[done + i, j]
        wseg[i] = wseg[done + i]
    return keep


@njit(**_JIT, inline="always")
def _axis_jerk(v_exit, v_entry):
    """Speed change of one axis at a junction: coasting vs reversing (PrusaSlicer / Marlin 1)."""
    # reversing (or starting / stopping) when the speeds are on both sides of zero
    return max(abs(v_exit), abs(v_entry)) if v_exit * v_entry <= 0.0 else abs(v_exit - v_entry)


@njit(**_JIT, inline="always")
def _jerk_step(v_exit, v_entry, jmax, vfac):
    j = _axis_jerk(v_exit * vfac, v_entry * vfac)
    return vfac * jmax / j if j > jmax else vfac


@njit(**_JIT, inline="always")
def _cap(value, u, limit):
    """value, lowered so that value * |u| <= limit (divides only when it must)."""
    au = abs(u)
    return limit / au if value * au > limit else value


@njit(**_JIT, inline="always")
def _limit_by_axes(value, p, base, ux, uy, uz, ue):
    """Largest v <= value with v * |u_axis| <= p[base + axis] on every axis (Marlin's
    limit_value_by_axis_maximum)."""
    value = _cap(value, ux, p[base])
    value = _cap(value, uy, p[base + 1])
    value = _cap(value, uz, p[base + 2])
    return _cap(value, ue, p[base + 3])


@njit(**_JIT, nogil=True)     # nogil: slices are planned in a thread while the parser runs
def plan_range(seg_line, seg_x, seg_y, seg_z, seg_de, seg_f, seg_flags, start, ev_line, ev_kind,
                ev_dwell, ev_param, param0, mode, rapid_flag, lo, hi, line_time):
    """Plan segments [lo - WARM, hi + AHEAD) and credit the time of segments [lo, hi)."""
    nseg = len(seg_line)
    s0 = max(0, lo - WARM)
    s1 = min(nseg, hi + AHEAD)
    wb = np.zeros((REFRESH + 1, NB))
    wseg = np.zeros(REFRESH + 1, np.int64)
    n = 0
    ev = 0
    p = param0.copy()
    if s0 == 0:
        px, py, pz = start[0], start[1], start[2]
    else:
        px, py, pz = float(seg_x[s0 - 1]), float(seg_y[s0 - 1]), float(seg_z[s0 - 1])
        ev = np.searchsorted(ev_line, seg_line[s0 - 1], side="right")
        if ev > 0:
            p[:] = ev_param[ev - 1]
    nev = len(ev_line)
    have_prev = False
    prev_f = prev_safe = pvx = pvy = pvz = pve = 0.0   # previous block (speeds or unit vector)
    for s in range(s0, s1):
        line = seg_line[s]
        while ev < nev and ev_line[ev] <= line:
            if ev_kind[ev] == EV_SETTINGS:
                p[:] = ev_param[ev]
            else:
                n = _retire(wb, wseg, n, 0, seg_line, line_time, lo, hi)
                if lo <= s < hi:
                    line_time[ev_line[ev]] += ev_dwell[ev]
                have_prev = False
            ev += 1
        x, y, z = float(seg_x[s]), float(seg_y[s]), float(seg_z[s])
        dx, dy, dz = x - px, y - py, z - pz
        de = 0.0 if mode == MODE_GRBL else float(seg_de[s])
        px, py, pz = x, y, z
        d2 = dx * dx + dy * dy + dz * dz
        if d2 == 0.0 and de == 0.0:
            continue
        xyz_moves = d2 > 0.0
        dist = math.sqrt(d2) if xyz_moves else abs(de)
        inv = 1.0 / dist
        ux, uy, uz, ue = dx * inv, dy * inv, dz * inv, de * inv
        # requested feedrate with the firmware's minimum, limited by the axes' maximum rates
        f = float(seg_f[s])
        if mode == MODE_GRBL and (seg_flags[s] & rapid_flag) != 0:
            f = _BIG
        f = max(f, p[P_VMIN_T] if de == 0.0 else p[P_VMIN])
        if f <= 0.0:
            f = MIN_PLANNER_SPEED
        cruise = max(_limit_by_axes(f, p, P_VMAX, ux, uy, uz, ue), MIN_PLANNER_SPEED)
        # block acceleration by move kind, limited by the axes
        if mode == MODE_GRBL:
            acc = _limit_by_axes(_BIG, p, P_AMAX, ux, uy, uz, 0.0)
        else:
            if mode == MODE_JERK:   # PrusaSlicer: XYZ motion without positive E is a travel
                travel = de == 0.0 or (de < 0.0 and xyz_moves) or (de > 0.0 and dx == 0.0 and dy == 0.0 and dz != 0.0)
            else:                   # Marlin: no E steps is a travel
                travel = de == 0.0
            acc = p[P_TACC] if travel else (p[P_RACC] if not xyz_moves else p[P_ACC])
            if mode == MODE_JERK:   # PrusaSlicer's estimator caps by the axis limit itself
                if acc * abs(ux) > p[P_AMAX]:
                    acc = p[P_AMAX]
                if acc * abs(uy) > p[P_AMAX + 1]:
                    acc = p[P_AMAX + 1]
                if acc * abs(uz) > p[P_AMAX + 2]:
                    acc = p[P_AMAX + 2]
                if acc * abs(ue) > p[P_AMAX + 3]:
                    acc = p[P_AMAX + 3]
            else:
                acc = _limit_by_axes(acc, p, P_AMAX, ux, uy, uz, ue)
        # safe exit speed and the junction speed with the previous block
        if mode == MODE_JERK:
            k = 1.0 if cruise >= f else cruise / f      # axis speeds scale with the limited feedrate
            kx, ky, kz, ke = ux * k, uy * k, uz * k, ue * k
            vx, vy, vz, ve = f * kx, f * ky, f * kz, f * ke
            safe = cruise
            if abs(vx) > p[P_JERK]:
                safe = min(safe, p[P_JERK])
            if abs(vy) > p[P_JERK + 1]:
                safe = min(safe, p[P_JERK + 1])
            if abs(vz) > p[P_JERK + 2]:
                safe = min(safe, p[P_JERK + 2])
            if abs(ve) > p[P_JERK + 3]:
                safe = min(safe, p[P_JERK + 3])
            vj = safe
            if have_prev and prev_f > 0.0001:
                # the previous block's axis speeds, scaled down to this block's speed if it was faster
                vp = cruise if prev_f > cruise else prev_f
                vj = vp
                vfac = _jerk_step(pvx * vp, vx, p[P_JERK], 1.0)
                vfac = _jerk_step(pvy * vp, vy, p[P_JERK + 1], vfac)
                vfac = _jerk_step(pvz * vp, vz, p[P_JERK + 2], vfac)
                vfac = _jerk_step(pve * vp, ve, p[P_JERK + 3], vfac)
                vj *= vfac
                thr = vj * 0.99
                if prev_safe > thr and safe > thr:
                    vj = safe
            prev_f, prev_safe = f, safe
            pvx, pvy, pvz, pve = kx, ky, kz, ke       # per unit of requested feedrate
        else:
            safe = min(cruise, MIN_PLANNER_SPEED)
            vj = MIN_PLANNER_SPEED
            if have_prev:
                cos_t = -(pvx * ux + pvy * uy + pvz * uz + pve * ue)
                if cos_t <= 0.999999:           # not a full reversal
                    cos_t = max(cos_t, -0.999999)
                    jx, jy, jz, je = ux - pvx, uy - pvy, uz - pvz, ue - pve
                    jn = math.sqrt(jx * jx + jy * jy + jz * jz + je * je)
                    jacc = acc
                    if jn > 0.0:
                        jacc = _limit_by_axes(acc if mode == MODE_JD else _BIG, p, P_AMAX,
                                              jx / jn, jy / jn, jz / jn, je / jn if mode == MODE_JD else 0.0)
                    sin_d2 = math.sqrt(0.5 * (1.0 - cos_t))
                    vj = math.sqrt(jacc * p[P_JD] * sin_d2 / (1.0 - sin_d2))
                vj = max(MIN_PLANNER_SPEED, min(vj, cruise, prev_f))
            prev_f = cruise
            pvx, pvy, pvz, pve = ux, uy, uz, ue
        have_prev = True
        v_allow = _max_allowable(acc, safe, dist)
        wb[n, B_DIST] = dist
        wb[n, B_ACC] = acc
        wb[n, B_CRUISE] = cruise
        wb[n, B_ENTRY] = min(vj, v_allow)
        wb[n, B_MAXENTRY] = vj
        wb[n, B_SAFE] = safe
        wb[n, B_NOMINAL] = 1.0 if cruise <= v_allow else 0.0
        wseg[n] = s
        n += 1
        if n > REFRESH:
            n = _retire(wb, wseg, n, KEEP, seg_line, line_time, lo, hi)
    _retire(wb, wseg, n, 0, seg_line, line_time, lo, hi)
    if hi >= nseg:   # waits after the last move belong to the last slice
        while ev < nev:
            if ev_kind[ev] == EV_WAIT:
                line_time[ev_line[ev]] += ev_dwell[ev]
            ev += 1
