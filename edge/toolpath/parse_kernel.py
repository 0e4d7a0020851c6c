"""The numba kernel that turns G-code bytes into the Toolpath arrays.

It walks the memory-mapped file once, line by line, keeping the machine's
modal state (position, G92 offsets, units, absolute/relative, E mode, laser)
in a small float64 array so that edge.toolpath.parse can call it chunk by
chunk: between calls the caller releases mapped pages (RSS stays bounded) and
grows the segment arrays when an arc-heavy file needs more rows.
Moves and arcs are executed by parse_move (Marlin's plan_arc rules).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from edge.toolpath.model import (
    L_DOLLAR, L_G, L_M, L_NONE,
    LF_BAD_CHECKSUM, LF_DWELL, LF_FRAMED, LF_GARBAGE, LF_OBJECT, LF_SENDABLE, LF_SETTINGS, LF_TOO_LONG,
    LF_UNKNOWN, SF_TRAVEL,
)
from edge.toolpath.parse_move import (  # noqa: F401  (re-exported: parse.py and tests use K.*)
    MAX_SEGMENTS_PER_LINE, S_ANY_EXTRUDE, S_ANY_LASER, S_E, S_EMODE, S_F, S_HOMED, S_INCH, S_LASER_ON,
    S_LASER_S, S_LINE, S_MAX_POWER, S_MAX_POWER_LINE, S_MOTION, S_OX, S_OY, S_OZ, S_PLANE, S_POS, S_REL,
    S_SCRATCH,
    S_SEG, S_UNHOMED_MOVE, S_X, S_Y, S_Z, _emit, _move, arc_segments, new_state,
)

# Reference counting is off (_nrt=False) in these kernels: they allocate nothing, and
# numba's atomic incref/decref of every array passed to a helper cost ~200 ns per call.

DONE, NEED_SPACE = 0, 1                     # parse_chunk's return values
_POW10 = np.array([10.0 ** k for k in range(40)])
_INV10 = np.array([10.0 ** -k for k in range(40)])


@njit(cache=True, _nrt=False)
def count_newlines(buf) -> int:
    n = 0
    for i in range(len(buf)):
        if buf[i] == 10:
            n += 1
    return n


@njit(cache=True, _nrt=False)
def assign_objects(mark_lines, mark_obj, seg_line, seg_object):
    """seg_object[i] = object of the last marker line at or before the segment's line."""
    m = 0
    cur = -1
    for i in range(len(seg_line)):
        while m < len(mark_lines) and mark_lines[m] <= seg_line[i]:
            cur = mark_obj[m]
            m += 1
        seg_object[i] = cur


@njit(cache=True, inline='always', _nrt=False)
def _upper(c):
    return c - 32 if 97 <= c <= 122 else c


@njit(cache=True, inline='always', _nrt=False)
def _is_space(c):
    return c == 32 or c == 9 or c == 13


@njit(cache=True, inline='always', _nrt=False)
def _number(buf, j, end):
    """Parse [+-]digits[.digits] at j; returns (value, new j, ok). Integer mantissa: fast and exact."""
    neg = False
    if j < end and (buf[j] == 45 or buf[j] == 43):
        neg = buf[j] == 45
        j += 1
    mant = 0
    digits = 0
    frac = 0
    dot = 0
    while j < end:                         # one loop for "123.456": one hard-to-predict exit, not two
        d = np.int64(buf[j]) - 48
        if 0 <= d <= 9:
            if digits < 18:
                mant = mant * 10 + d
                digits += 1
                frac += dot
            else:
                frac -= 1 - dot            # more than 18 digits: keep the magnitude
        elif d == -2 and dot == 0:         # '.'
            dot = 1
        else:
            break
        j += 1
    frac = max(frac, -39)                  # absurdly long integers: stay inside the table
    val = mant * _INV10[frac] if frac >= 0 else mant * _POW10[-frac]
    if neg:
        val = -val
    return val, j, digits > 0


@njit(cache=True, inline='always', _nrt=False)
def _starts(buf, j, end, text):
    if end - j < len(text):
        return False
    for k in range(len(text)):
        if _upper(buf[j + k]) != text[k]:
            return False
    return True


@njit(cache=True, inline='always', _nrt=False)
def _object_comment(buf, j, end, t_print, t_stop, t_mesh):
    while j < end and _is_space(buf[j]):
        j += 1
    return _starts(buf, j, end, t_print) or _starts(buf, j, end, t_stop) or _starts(buf, j, end, t_mesh)


@njit(cache=True, inline='always', _nrt=False)
def _plain_g1(buf, j, n, vals):
    """Words of a plain `G0/G1 X.. Y.. Z.. E.. F..` line from j: (ok, index of its '\n', letters
    seen as a bit mask). Not ok (the caller parses the line in full) on anything else: another
    letter, a repeated one, a comment, two spaces, '\r', a malformed number, no '\n'."""
    hm = 0
    while j < n:
        c = buf[j]
        if not (c == 88 or c == 89 or c == 90 or c == 69 or c == 70):
            return False, j, 0
        k = c - 65
        if (hm >> k) & 1:
            return False, j, 0
        j += 1
        if j >= n or not (48 <= buf[j] <= 57 or buf[j] == 45 or buf[j] == 46):
            return False, j, 0
        val, j, ok = _number(buf, j, n)
        if not ok or j >= n:
            return False, j, 0
        vals[k] = val
        hm |= 1 << k
        if buf[j] == 10:
            return True, j, hm
        if buf[j] != 32:
            return False, j, 0
        j += 1
    return False, j, 0


@njit(cache=True, nogil=True, _nrt=False)    # nogil: the planner follows in another thread
def parse_chunk(buf, stop, max_len, home, st, vals, known_g, known_m, t_print, t_stop, t_mesh,
                offset, letter, code, sub, lflags,
                seg_line, sx, sy, sz, sde, sf, sp, sfl):
    """Parse whole lines from st[S_POS] until the byte offset passes `stop`.

    Returns DONE, or NEED_SPACE when the segment arrays might overflow on the
    next line (the caller grows them and calls again; state is saved at a
    line boundary)."""
    n = len(buf)
    pos = int(st[S_POS])
    li = int(st[S_LINE])
    ns = int(st[S_SEG])
    cap = len(sx)
    status = DONE
    while pos < n and pos < stop:
        if cap - ns < MAX_SEGMENTS_PER_LINE:
            status = NEED_SPACE
            break
        offset[li] = pos
        fl = 0
        # The bulk of slicer output is `G1 X.. Y.. E..` (Cura: `G0 F.. X.. Y..`): single spaces,
        # no comment, then '\n'. Such a line skips the general word loop; anything else falls back to it.
        fast = False
        if pos + 3 < n and buf[pos] == 71 and (buf[pos + 1] == 49 or buf[pos + 1] == 48) and buf[pos + 2] == 32:
            fast, e, hm = _plain_g1(buf, pos + 3, n, vals)
        if fast:
            sm = hm
            let = L_G
            cod = buf[pos + 1] - 48
            sb = 0
            motion = cod
            fl = LF_SENDABLE
            if e - pos > max_len:
                fl |= LF_TOO_LONG
        else:
            # One pass over the line's bytes: framing, words, comments, garbage.
            j = pos
            while j < n and (buf[j] == 32 or buf[j] == 9):
                j += 1
            first = j                                   # checksum covers first .. '*'
            if j + 1 < n and (buf[j] == 78 or buf[j] == 110) and (48 <= buf[j + 1] <= 57 or buf[j + 1] == 32):
                fl |= LF_FRAMED                         # N<line number>: stripped before sending
                j += 1
                while j < n and (buf[j] == 32 or buf[j] == 9):
                    j += 1
                while j < n and 48 <= buf[j] <= 57:
                    j += 1
            sm = 0                                      # letters seen on this line (bit 0 = A)
            hm = 0                                      # letters seen with a number
            let = L_NONE
            cod = 0
            sb = 0
            motion = -1
            first_cmd = -1
            last_cmd = -1
            paren_bytes = 0
            paren_first = 0
            paren_last = 0
            text = False                                # the rest is free text (M117, $..., extended commands)
            m486 = False
            e = n
            while j < n:
                c = buf[j]
                if c == 10:
                    e = j
                    break
                if c == 32 or c == 9 or c == 13:
                    j += 1
                    continue
                if c == 59:                             # ';' comment to the end of the line
                    j += 1
                    if _object_comment(buf, j, n, t_print, t_stop, t_mesh):
                        fl |= LF_OBJECT
                    while j < n and buf[j] != 10:
                        if buf[j] < 32 and buf[j] != 9 and buf[j] != 13 or buf[j] == 127:
                            fl |= LF_GARBAGE
                        j += 1
                    e = j
                    break
                if c == 40:                             # '(' comment ')'
                    k = j
                    while j < n and buf[j] != 41 and buf[j] != 10:
                        if buf[j] < 32 and buf[j] != 9 and buf[j] != 13 or buf[j] == 127:
                            fl |= LF_GARBAGE
                        j += 1
                    if j < n and buf[j] == 41:
                        j += 1
                    paren_bytes += j - k
                    continue
                if c == 42:                             # '*<checksum>' then only blanks to the end
                    k = j + 1
                    given = 0
                    nd = 0
                    while k < n and 48 <= buf[k] <= 57 and nd < 6:
                        given = given * 10 + (buf[k] - 48)
                        k += 1
                        nd += 1
                    while k < n and (buf[k] == 32 or buf[k] == 9 or buf[k] == 13):
                        k += 1
                    if nd > 0 and (k >= n or buf[k] == 10 or buf[k] == 59):
                        fl |= LF_FRAMED
                        cs = 0
                        for q in range(first, j):
                            cs ^= buf[q]
                        if cs != given:
                            fl |= LF_BAD_CHECKSUM
                        j = k
                        continue
                if c == 37 and first_cmd < 0:                            # `%` program delimiter (CNC): a comment
                    while j < n and buf[j] != 10:
                        j += 1
                    e = j
                    break
                if first_cmd < 0:
                    first_cmd = j
                    paren_first = paren_bytes
                last_cmd = j
                paren_last = paren_bytes
                if text:
                    if c < 32 or c == 127:
                        fl |= LF_GARBAGE
                    j += 1
                    continue
                if c == 34:                                              # a "quoted string" parameter
                    j += 1
                    while j < n and buf[j] != 34 and buf[j] != 10:
                        j += 1
                    if j < n and buf[j] == 34:
                        last_cmd = j
                        j += 1
                    continue
                if c == 36 and let == L_NONE and first_cmd == j:      # GRBL `$...`
                    let = L_DOLLAR
                    text = True
                    j += 1
                    if j < n and 48 <= buf[j] <= 57:
                        fl |= LF_SETTINGS                                # `$110=5000`: the planner re-reads it
                    continue
                u = c - 32 if 97 <= c <= 122 else c
                j += 1
                if not (65 <= u <= 90):
                    fl |= LF_GARBAGE
                    continue
                if first_cmd == j - 1 and j < n and 65 <= _upper(buf[j]) <= 90:
                    fl |= LF_UNKNOWN                                     # Klipper-style extended command
                    text = True
                    continue
                if m486 and u == 65:                                     # M486 A<name>: the rest is the name
                    text = True
                    continue
                while j < n and (buf[j] == 32 or buf[j] == 9):
                    j += 1
                val = np.nan
                if j < n and (48 <= buf[j] <= 57 or buf[j] == 45 or buf[j] == 43 or buf[j] == 46):
                    val, j, ok = _number(buf, j, n)
                    if not ok:
                        fl |= LF_GARBAGE
                    last_cmd = j - 1
                is_cmd = u == 71 or u == 77 or (u == 84 and let == L_NONE)
                if is_cmd and not math.isnan(val):
                    iv = int(math.floor(val + 1e-9))
                    sv = int(round((val - iv) * 10))
                    if u == 71:
                        if iv <= 3 and sv == 0:
                            motion = iv
                        elif (iv == 90 or iv == 91) and sv == 0:
                            st[S_REL] = iv - 90
                            st[S_EMODE] = 0          # as Marlin: G90/G91 clear an earlier M82/M83
                        elif 17 <= iv <= 19 and sv == 0:
                            st[S_PLANE] = iv - 17
                        elif iv == 20:
                            st[S_INCH] = 1
                            fl |= LF_SETTINGS
                        elif iv == 21:
                            st[S_INCH] = 0
                            fl |= LF_SETTINGS
                    if let == L_NONE or (u == 71 and iv <= 3 and sv == 0):
                        let = u
                        cod = iv
                        sb = sv
                        if u == 77 and (iv == 862 or sv == 0 and (
                                iv == 117 or iv == 118 or iv == 23 or iv == 28 or iv == 30 or iv == 32
                                or iv == 33 or iv == 928 or iv == 0 or iv == 1 or iv == 115)):
                            text = True                  # free text: messages, file names, versions, models
                        if u == 77 and iv == 486:
                            m486 = True
                elif is_cmd:
                    fl |= LF_UNKNOWN if u == 84 else LF_GARBAGE
                else:
                    sm |= 1 << (u - 65)
                    vals[u - 65] = val
                    if not math.isnan(val):
                        hm |= 1 << (u - 65)
                if j < n and not text:
                    c = buf[j]
                    if not (c == 32 or c == 9 or c == 13 or c == 10 or c == 40 or c == 59 or c == 42
                            or 65 <= _upper(c) <= 90):
                        fl |= LF_GARBAGE
            if first_cmd >= 0:
                fl |= LF_SENDABLE
                length = last_cmd - first_cmd + 1 - (paren_last - paren_first)
                if length > max_len:
                    fl |= LF_TOO_LONG
        if cod > 32767 or cod < 0:
            fl |= LF_GARBAGE
            cod = 0
        # -- semantics (a letter without a number counts only for G28) --------------------
        scale = 25.4 if st[S_INCH] == 1 else 1.0
        if let == L_G and not (fl & LF_UNKNOWN):
            if cod >= len(known_g) or known_g[cod] == 0:
                fl |= LF_UNKNOWN
        elif let == L_M:
            if cod >= len(known_m) or known_m[cod] == 0:
                fl |= LF_UNKNOWN
            if cod == 82:
                st[S_EMODE] = 1
            elif cod == 83:
                st[S_EMODE] = 2
            elif cod == 3 or cod == 4:
                st[S_LASER_ON] = 1
            elif cod == 5:
                st[S_LASER_ON] = 0
            elif cod == 109 or cod == 190:
                fl |= LF_DWELL
            elif cod == 201 or cod == 203 or cod == 204 or cod == 205 or cod == 566 or cod == 220:
                fl |= LF_SETTINGS
            elif cod == 486:
                fl |= LF_OBJECT
        # S is laser power on M3/M4, on moves and on GRBL lines without a command
        if (hm >> 18) & 1 and ((let == L_M and (cod == 3 or cod == 4)) or motion >= 0 or let == L_NONE):
            st[S_LASER_S] = vals[18]
        if st[S_LASER_ON] == 1 and st[S_LASER_S] > st[S_MAX_POWER] and (let != L_M or cod != 5):
            st[S_MAX_POWER] = st[S_LASER_S]
            st[S_MAX_POWER_LINE] = li
        if (hm >> 5) & 1 and (motion >= 0 or let == L_NONE):
            if vals[5] > 0:
                st[S_F] = vals[5] * scale / 60.0
        if motion < 0 and let == L_NONE and st[S_MOTION] >= 0 and ((hm >> 23) & 1 or (hm >> 24) & 1 or (hm >> 25) & 1):
            motion = int(st[S_MOTION])                               # GRBL modal motion
        if motion >= 0:
            st[S_MOTION] = motion
            ns = _move(motion, li, scale, vals, hm, st, fl, ns,
                       seg_line, sx, sy, sz, sde, sf, sp, sfl)
            fl = int(st[S_SCRATCH])
        elif let == L_G:
            if cod == 28 and sb == 0:
                fl |= LF_DWELL
                all_axes = not ((sm >> 23) & 1 or (sm >> 24) & 1 or (sm >> 25) & 1)
                tx = home[0] if (all_axes or (sm >> 23) & 1) else st[S_X]
                ty = home[1] if (all_axes or (sm >> 24) & 1) else st[S_Y]
                tz = home[2] if (all_axes or (sm >> 25) & 1) else st[S_Z]
                if all_axes or (sm >> 23) & 1:
                    st[S_OX] = 0.0
                if all_axes or (sm >> 24) & 1:
                    st[S_OY] = 0.0
                if all_axes or (sm >> 25) & 1:
                    st[S_OZ] = 0.0
                if tx != st[S_X] or ty != st[S_Y] or tz != st[S_Z]:
                    ns = _emit(ns, li, tx, ty, tz, 0.0, 50.0, 0.0, SF_TRAVEL,
                               seg_line, sx, sy, sz, sde, sf, sp, sfl)
                st[S_X], st[S_Y], st[S_Z] = tx, ty, tz
                st[S_HOMED] = 1
            elif cod == 92 and sb == 0:
                # as Marlin (and GRBL, which refuses it): a bare G92 changes nothing
                if (hm >> 23) & 1:
                    st[S_OX] = st[S_X] - vals[23] * scale
                if (hm >> 24) & 1:
                    st[S_OY] = st[S_Y] - vals[24] * scale
                if (hm >> 25) & 1:
                    st[S_OZ] = st[S_Z] - vals[25] * scale
                if (hm >> 4) & 1:
                    st[S_E] = vals[4] * scale
            elif cod == 4:
                fl |= LF_DWELL
        letter[li] = let
        code[li] = cod
        sub[li] = sb
        lflags[li] = fl
        li += 1
        pos = e + 1
    st[S_POS] = min(pos, n)
    st[S_LINE] = li
    st[S_SEG] = ns
    return status


