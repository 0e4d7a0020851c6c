"""numba kernels of the motion planner: trapezoids, junction speeds, look-ahead.

One pass over the segment arrays with a bounded window of planner blocks (the
way PrusaSlicer's estimator and a firmware work): a block is built per segment,
and when the window holds REFRESH blocks a forward and a backward look-ahead
pass run over it, trapezoids are recomputed and all but the newest KEEP blocks
are retired, adding their time to the line that made them. Memory is a few KB
whatever the file size; the only per-line output is `line_time` (float32).

Three junction models (`mode`):
  MODE_JERK  classic jerk as Prusa firmware and PrusaSlicer's estimator use it
  MODE_JD    Marlin 2 junction deviation (block acceleration per move kind)
  MODE_GRBL  GRBL: per-axis acceleration and rate, junction deviation, no E,
             G0 at the axes' maximum rate
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

# block fields, columns of the float64 window `wb`
B_DIST, B_ACC, B_CRUISE, B_ENTRY, B_MAXENTRY, B_SAFE, B_NOMINAL, B_RECALC = range(8)
B_ACCEL_UNTIL, B_DECEL_AFTER, B_TRAP_CRUISE = 8, 9, 10
NB = 11


@njit(cache=True, inline="always")
def _max_allowable(accel, target, dist):
    """Highest speed at a block's start that can still brake to `target` over `dist`."""
    v = target * target + 2.0 * accel * dist
    return math.sqrt(v) if v > 0.0 else 0.0


@njit(cache=True)
def _trapezoid(wb, i, exit_v):
    """Fill the accelerate/cruise/decelerate split of block i for the given exit speed."""
    d = wb[i, B_DIST]
    a = wb[i, B_ACC]
    entry = wb[i, B_ENTRY]
    cruise = wb[i, B_CRUISE]
    acc_d = max(0.0, (cruise * cruise - entry * entry) / (2.0 * a))
    dec_d = max(0.0, (cruise * cruise - exit_v * exit_v) / (2.0 * a))
    cruise_d = d - acc_d - dec_d
    if cruise_d < 0.0:
        # cannot reach the nominal speed: accelerate until the braking curve is met
        acc_d = (2.0 * a * d - entry * entry + exit_v * exit_v) / (4.0 * a)
        acc_d = min(max(acc_d, 0.0), d)
        cruise_d = 0.0
        cruise = math.sqrt(max(0.0, entry * entry + 2.0 * a * acc_d))
    wb[i, B_ACCEL_UNTIL] = acc_d
    wb[i, B_DECEL_AFTER] = acc_d + cruise_d
    wb[i, B_TRAP_CRUISE] = cruise


@njit(cache=True)
def _block_time(wb, i):
    """Seconds of block i from its trapezoid (accelerate, cruise, decelerate)."""
    a = wb[i, B_ACC]
    entry = wb[i, B_ENTRY]
    vc = wb[i, B_TRAP_CRUISE]
    acc_d = wb[i, B_ACCEL_UNTIL]
    dec_from = wb[i, B_DECEL_AFTER]
    d = wb[i, B_DIST]
    t = (math.sqrt(max(0.0, entry * entry + 2.0 * a * acc_d)) - entry) / a
    if vc > 0.0:
        t += (dec_from - acc_d) / vc
    dec_d = d - dec_from
    t += (vc - math.sqrt(max(0.0, vc * vc - 2.0 * a * dec_d))) / a
    return t


@njit(cache=True)
def _retire(wb, wline, n, keep, line_time, extra_line, extra_time):
    """Look-ahead over the window, then retire its oldest n-keep blocks. Returns the new size."""
    if n == 0:
        if extra_line >= 0:
            line_time[extra_line] += extra_time
        return 0
    # backward pass: entry speeds as high as braking to the next block allows
    for i in range(n - 1, 0, -1):
        c = i - 1
        if wb[c, B_ENTRY] != wb[c, B_MAXENTRY]:
            if wb[c, B_NOMINAL] == 0.0 and wb[c, B_MAXENTRY] > wb[i, B_ENTRY]:
                wb[c, B_ENTRY] = min(wb[c, B_MAXENTRY], _max_allowable(wb[c, B_ACC], wb[i, B_ENTRY], wb[c, B_DIST]))
            else:
                wb[c, B_ENTRY] = wb[c, B_MAXENTRY]
            wb[c, B_RECALC] = 1.0
    # forward pass: an accelerating block that is too short limits the next entry
    for i in range(n - 1):
        if wb[i, B_NOMINAL] == 0.0 and wb[i, B_ENTRY] < wb[i + 1, B_ENTRY]:
            v = min(wb[i + 1, B_ENTRY], _max_allowable(wb[i, B_ACC], wb[i, B_ENTRY], wb[i, B_DIST]))
            if v != wb[i + 1, B_ENTRY]:
                wb[i + 1, B_ENTRY] = v
                wb[i + 1, B_RECALC] = 1.0
    for i in range(n - 1):
        if wb[i, B_RECALC] != 0.0 or wb[i + 1, B_RECALC] != 0.0:
            _trapezoid(wb, i, wb[i + 1, B_ENTRY])
            wb[i, B_RECALC] = 0.0
    _trapezoid(wb, n - 1, wb[n - 1, B_SAFE])   # the newest block: exit at its safe speed
    wb[n - 1, B_RECALC] = 0.0
    done = n - keep
    for i in range(done):
        line_time[wline[i]] += _block_time(wb, i)
    if extra_line >= 0:
        line_time[extra_line] += extra_time
    for i in range(keep):
        wb[i, :] = wb[done + i, :]
        wline[i] = wline[done + i]
    return keep


@njit(cache=True)
def plan_segments(seg_line, seg_x, seg_y, seg_z, seg_de, seg_f, seg_flags, start,
                  ev_line, ev_kind, ev_dwell, ev_param, param0, mode, rapid_flag, line_time):
    """Plan every segment and add each block's seconds to line_time[seg_line]."""
    p = param0.copy()
    wb = np.zeros((REFRESH + 1, NB))
    wline = np.zeros(REFRESH + 1, np.int64)
    n = 0
    px, py, pz = float(start[0]), float(start[1]), float(start[2])
    # previous block state
    prev_f = 0.0          # requested (jerk) / nominal (JD) feedrate of the previous block
    prev_safe = 0.0
    prev_axis = np.zeros(4)   # previous per-axis speed (jerk) or unit vector (JD)
    cur_axis = np.zeros(4)
    delta = np.zeros(4)
    ev = 0
    nev = len(ev_line)
    nseg = len(seg_line)
    for s in range(nseg):
        line = seg_line[s]
        while ev < nev and ev_line[ev] <= line:
            if ev_kind[ev] == EV_SETTINGS:
                p[:] = ev_param[ev]
            else:
                n = _retire(wb, wline, n, 0, line_time, ev_line[ev], ev_dwell[ev])
                prev_f = 0.0
            ev += 1
        x, y, z = float(seg_x[s]), float(seg_y[s]), float(seg_z[s])
        delta[0] = x - px
        delta[1] = y - py
        delta[2] = z - pz
        delta[3] = 0.0 if mode == MODE_GRBL else float(seg_de[s])
        px, py, pz = x, y, z
        dxyz2 = delta[0] * delta[0] + delta[1] * delta[1] + delta[2] * delta[2]
        if dxyz2 == 0.0 and delta[3] == 0.0:
            continue
        dist = math.sqrt(dxyz2) if dxyz2 > 0.0 else abs(delta[3])
        inv = 1.0 / dist
        xyz_moves = dxyz2 > 0.0
        # requested feedrate with the firmware's minimum
        f = float(seg_f[s])
        if mode == MODE_GRBL and (seg_flags[s] & rapid_flag) != 0:
            f = _BIG
        if delta[3] == 0.0:
            f = max(f, p[P_VMIN_T])
        else:
            f = max(f, p[P_VMIN])
        if f <= 0.0:
            f = MIN_PLANNER_SPEED
        # nominal speed limited by the axes' maximum feedrates
        factor = 1.0
        for a in range(4):
            cur_axis[a] = f * delta[a] * inv
            va = abs(cur_axis[a])
            if va > 0.0 and p[P_VMAX + a] > 0.0:
                factor = min(factor, p[P_VMAX + a] / va)
        cruise = f * factor
        for a in range(4):
            cur_axis[a] *= factor
        # block acceleration
        if mode == MODE_GRBL:
            acc = _BIG
        elif mode == MODE_JERK:
            # PrusaSlicer's classification: a move with XYZ and no positive E is a travel
            travel = delta[3] == 0.0 or (delta[3] < 0.0 and xyz_moves) or \
                (delta[3] > 0.0 and delta[0] == 0.0 and delta[1] == 0.0 and delta[2] != 0.0)
            acc = p[P_TACC] if travel else (p[P_RACC] if not xyz_moves else p[P_ACC])
        else:
            acc = p[P_TACC] if delta[3] == 0.0 else (p[P_RACC] if not xyz_moves else p[P_ACC])
        if mode == MODE_JERK:
            for a in range(4):   # PrusaSlicer's estimator caps by the axis limit itself
                if acc * abs(delta[a]) * inv > p[P_AMAX + a]:
                    acc = p[P_AMAX + a]
        else:
            for a in range(4):   # Marlin / GRBL: limit_value_by_axis_maximum
                u = abs(delta[a]) * inv
                if u > 0.0 and acc * u > p[P_AMAX + a]:
                    acc = p[P_AMAX + a] / u
        # safe exit speed and junction speed
        if mode == MODE_JERK:
            safe = cruise
            for a in range(4):
                if abs(cur_axis[a]) > p[P_JERK + a]:
                    safe = min(safe, p[P_JERK + a])
            vj = safe
            if n > 0 and prev_f > 0.0001:
                prev_larger = prev_f > cruise
                smaller = cruise / prev_f if prev_larger else prev_f / cruise
                vj = cruise if prev_larger else prev_f
                vfac = 1.0
                limited = False
                for a in range(4):
                    v_exit = prev_axis[a]
                    v_entry = cur_axis[a]
                    if prev_larger:
                        v_exit *= smaller
                    if limited:
                        v_exit *= vfac
                        v_entry *= vfac
                    if v_exit > v_entry:
                        jerk = (v_exit - v_entry) if (v_entry > 0.0 or v_exit < 0.0) else max(v_exit, -v_entry)
                    else:
                        jerk = (v_entry - v_exit) if (v_entry < 0.0 or v_exit > 0.0) else max(-v_exit, v_entry)
                    if jerk > p[P_JERK + a]:
                        vfac *= p[P_JERK + a] / jerk
                        limited = True
                if limited:
                    vj *= vfac
                thr = vj * 0.99
                if prev_safe > thr and safe > thr:
                    vj = safe
            prev_f = f
            prev_safe = safe
            for a in range(4):
                prev_axis[a] = cur_axis[a]
        else:
            safe = min(cruise, MIN_PLANNER_SPEED)
            for a in range(4):
                cur_axis[a] = delta[a] * inv
            vj = MIN_PLANNER_SPEED
            if n > 0 and prev_f > 0.0:
                cos_t = 0.0
                for a in range(4):
                    cos_t -= prev_axis[a] * cur_axis[a]
                if cos_t > 0.999999:
                    vj = MIN_PLANNER_SPEED                  # full reversal
                else:
                    cos_t = max(cos_t, -0.999999)
                    jn = 0.0
                    for a in range(4):
                        jn += (cur_axis[a] - prev_axis[a]) ** 2
                    jn = math.sqrt(jn)
                    jacc = acc if mode == MODE_JD else _BIG
                    if jn > 0.0:
                        for a in range(4):
                            u = abs(cur_axis[a] - prev_axis[a]) / jn
                            if mode == MODE_GRBL and a == 3:
                                continue
                            if u > 0.0 and jacc * u > p[P_AMAX + a]:
                                jacc = p[P_AMAX + a] / u
                    if jacc >= _BIG:
                        jacc = acc
                    sin_d2 = math.sqrt(0.5 * (1.0 - cos_t))
                    vj = math.sqrt(jacc * p[P_JD] * sin_d2 / (1.0 - sin_d2))
                vj = max(MIN_PLANNER_SPEED, min(vj, cruise, prev_f))
            prev_f = cruise
            for a in range(4):
                prev_axis[a] = cur_axis[a]
        v_allow = _max_allowable(acc, safe, dist)
        wb[n, B_DIST] = dist
        wb[n, B_ACC] = acc
        wb[n, B_CRUISE] = cruise
        wb[n, B_ENTRY] = min(vj, v_allow)
        wb[n, B_MAXENTRY] = vj
        wb[n, B_SAFE] = safe
        wb[n, B_NOMINAL] = 1.0 if cruise <= v_allow else 0.0
        wb[n, B_RECALC] = 1.0
        wline[n] = line
        n += 1
        if n > REFRESH:
            n = _retire(wb, wline, n, KEEP, line_time, -1, 0.0)
    n = _retire(wb, wline, n, 0, line_time, -1, 0.0)
    while ev < nev:   # waits after the last move
        if ev_kind[ev] == EV_WAIT:
            line_time[ev_line[ev]] += ev_dwell[ev]
        ev += 1
