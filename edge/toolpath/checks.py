"""Checks a job must pass before it may be queued on this machine.

Errors reject the job (a machine must never be asked for something it cannot
or must not do); warnings inform the operator. Every message names the line
and the reason. A file with a million bad moves yields the first few findings
of each kind plus one line with the count, never a million messages.
Rare lines (temperatures, forbidden commands, garbage) are re-read from the
file's text; the arrays are scanned by numba kernels without temporaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit

from edge.config import Config
from edge.toolpath.model import (
    L_DOLLAR, L_G, L_M, L_T, LF_BAD_ARC, LF_BAD_CHECKSUM, LF_EXTRUDE, LF_GARBAGE, LF_LASER, LF_MOVE,
    LF_TOO_LONG, LF_UNKNOWN, SF_EXTRUDE, Toolpath,
)
from edge.toolpath.parse import strip_command

FIRST_FEW = 5            # findings reported per kind before the summary line
EPS_MM = 1e-3            # float32 positions: tolerance at the volume's edges


@dataclass(frozen=True)
class Finding:
    line: int                                   # 1-based; 0 when the finding is about the whole file
    message: str                                # starts with "line N: "
    severity: Literal["error", "warning"]

    def to_dict(self) -> dict:
        return {"line": self.line, "message": self.message, "severity": self.severity}


@njit(cache=True)
def _outside_lines(values, seg_line, lo, hi, first):
    """Count the distinct lines (segments are in line order) with a value outside [lo, hi];
    first[:k] = the first outside segment of each of the first lines. An arc expands into many
    segments of one line: that line is one finding, not one per segment."""
    count = 0
    last = -1
    for i in range(len(values)):
        v = values[i]
        if (v < lo or v > hi) and seg_line[i] != last:
            last = seg_line[i]
            if count < len(first):
                first[count] = i
            count += 1
    return count


@njit(cache=True)
def _flagged_at(flags, flag, first):
    """Count entries with `flag` set; first[:k] = the first of them (no array-sized temporaries)."""
    count = 0
    for i in range(len(flags)):
        if flags[i] & flag:
            if count < len(first):
                first[count] = i
            count += 1
    return count


@njit(cache=True)
def _commands_at(letter, code, sub, want_letter, codes, want_sub, first):
    """Count lines whose command is want_letter + one of codes (+ want_sub unless < 0)."""
    count = 0
    for i in range(len(letter)):
        if letter[i] == want_letter and (want_sub < 0 or sub[i] == want_sub):
            for c in codes:
                if code[i] == c:
                    if count < len(first):
                        first[count] = i
                    count += 1
                    break
    return count


def _flag_index(flags: np.ndarray, flag: int, k: int) -> tuple[int, list[int]]:
    """(how many, indices of the first k) of the entries with `flag` set."""
    first = np.empty(k, np.int64)
    n = int(_flagged_at(flags, flags.dtype.type(flag), first))
    return n, first[:min(n, k)].tolist()


def _command_index(tp: Toolpath, letter: int, codes: tuple[int, ...], sub: int = -1,
                   k: int | None = None) -> tuple[int, list[int]]:
    """(how many, indices of the first k, or of all when k is None) of lines with these commands."""
    args = (tp.letter, tp.code, tp.sub, np.uint8(letter), np.asarray(codes, np.int16), np.int64(sub))
    if k is None:
        k = int(_commands_at(*args, np.empty(0, np.int64)))
    first = np.empty(k, np.int64)
    n = int(_commands_at(*args, first))
    return n, first[:min(n, k)].tolist()


_LETTER_ROW = np.full(256, -1, np.int8)
for _row, _letter in enumerate((L_G, L_M, L_T, L_DOLLAR)):
    _LETTER_ROW[_letter] = _row
_MAX_CODE = 10_000


@njit(cache=True)
def _scan_commands(letter, code, letter_row, qmap, first, counts):
    """One pass: for each query q (a bit in qmap[row, code]) count its lines and keep the first ones."""
    k = first.shape[1]
    for i in range(len(letter)):
        row = letter_row[letter[i]]
        c = code[i]
        if row < 0 or c < 0 or c >= qmap.shape[1]:
            continue
        m = qmap[row, c]
        if m == 0:
            continue
        for q in range(len(counts)):
            if (m >> q) & 1:
                if counts[q] < k:
                    first[q, counts[q]] = i
                counts[q] += 1


class _Commands:
    """The lines whose commands the checks read (temperatures, forbidden, `$`), found in one
    numba pass over the line arrays instead of one array-sized mask per question."""

    KEEP = 4096                                 # indices kept per command; more means a rescan

    def __init__(self, tp: Toolpath, keys: set[tuple[int, int]]) -> None:
        self.tp = tp
        usable = sorted(k for k in keys if 0 <= k[1] < _MAX_CODE)[:63]
        self.q = {key: q for q, key in enumerate(usable)}
        qmap = np.zeros((4, _MAX_CODE), np.int64)
        for (letter, code), q in self.q.items():
            qmap[_LETTER_ROW[letter], code] |= 1 << q
        self.first = np.empty((len(usable), self.KEEP), np.int64)
        self.counts = np.zeros(len(usable), np.int64)
        if usable:
            _scan_commands(tp.letter, tp.code, _LETTER_ROW, qmap, self.first, self.counts)

    def find(self, letter: int, codes: tuple[int, ...], sub: int = -1,
             k: int | None = None) -> tuple[int, list[int]]:
        """Like _command_index, from the pass already made when it holds the answer."""
        qs = [self.q.get((letter, c)) for c in codes]
        if any(q is None or self.counts[q] > self.KEEP for q in qs):
            return _command_index(self.tp, letter, codes, sub, k)
        idx = sorted(i for q in qs for i in self.first[q, :self.counts[q]].tolist())
        if sub >= 0:
            idx = [i for i in idx if self.tp.sub[i] == sub]
        return len(idx), idx if k is None else idx[:k]


class _Report:
    """Collects findings, keeping the first few per kind and counting the rest."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add_many(self, lines: list[int], total: int, severity: str, text, more: str) -> None:
        for line in lines[:FIRST_FEW]:
            self.findings.append(Finding(line, f"line {line}: {text(line)}", severity))
        if total > FIRST_FEW:
            line = lines[FIRST_FEW] if len(lines) > FIRST_FEW else lines[-1]
            self.findings.append(Finding(line, f"line {line}: {more} ({total - FIRST_FEW} more after the "
                                         f"first {FIRST_FEW}, {total} in all)", severity))


def check(tp: Toolpath, cfg: Config) -> tuple[list[Finding], list[Finding]]:
    """All checks: (errors, warnings), each sorted by line."""
    rep = _Report()
    keys = {(L_M, 104), (L_M, 109), (L_M, 140), (L_M, 190), (L_DOLLAR, 0)}
    for item in cfg.limits.forbidden:
        m = _FORBIDDEN.match(item.strip().upper())
        if m:
            keys.add(({"G": L_G, "M": L_M, "T": L_T}[m.group(1)], int(m.group(2))))
    cmds = _Commands(tp, keys)
    _volume(tp, cfg, rep)
    _temperatures(tp, cfg, rep, cmds)
    _laser(tp, cfg, rep)
    _kind(tp, cfg, rep)
    _forbidden(tp, cfg, rep, cmds)
    _flagged(tp, cfg, rep)
    _homing(tp, rep, cmds)
    _work(tp, cfg, rep, cmds)
    errors = sorted((f for f in rep.findings if f.severity == "error"), key=lambda f: f.line)
    warnings = sorted((f for f in rep.findings if f.severity == "warning"), key=lambda f: f.line)
    return errors, warnings


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _volume(tp: Toolpath, cfg: Config, rep: _Report) -> None:
    first = np.empty(FIRST_FEW + 1, np.int64)
    for axis, arr in (("X", tp.seg_x), ("Y", tp.seg_y), ("Z", tp.seg_z)):
        lo, hi = getattr(cfg.volume, axis.lower())
        if len(arr) == 0 or (arr.min() >= lo - EPS_MM and arr.max() <= hi + EPS_MM):
            continue                     # numpy's SIMD min/max: the usual case needs no indices
        n = int(_outside_lines(arr, tp.seg_line, lo - EPS_MM, hi + EPS_MM, first))
        if not n:
            continue
        segs = first[:min(n, FIRST_FEW + 1)]
        lines = [int(tp.seg_line[s]) + 1 for s in segs]
        value = {line: float(arr[s]) for line, s in zip(lines, segs)}
        rng = f"{axis} [{_fmt(lo)}, {_fmt(hi)}]"
        rep.add_many(lines, n, "error", lambda ln: f"{axis} {_fmt(value[ln])} is outside the machine volume {rng}",
                     f"more moves with {axis} outside the machine volume {rng}")


_NUM = r"\s*([-+]?\d*\.?\d+)"
_S_OR_R = re.compile(rb"[SsRr]" + _NUM.encode())


def _temperatures(tp: Toolpath, cfg: Config, rep: _Report, cmds: _Commands) -> None:
    for what, codes, limit in (("nozzle", (104, 109), cfg.limits.max_nozzle_c),
                               ("bed", (140, 190), cfg.limits.max_bed_c)):
        bad: list[tuple[int, float, int]] = []
        for i in cmds.find(L_M, codes)[1]:
            for m in _S_OR_R.finditer(strip_command(tp.line_bytes(i))):
                if float(m.group(1)) > limit:
                    bad.append((i + 1, float(m.group(1)), int(tp.code[i])))
                    break
        temps = {line: (t, code) for line, t, code in bad}
        rep.add_many([b[0] for b in bad], len(bad), "error",
                     lambda ln: f"M{temps[ln][1]} sets the {what} to {_fmt(temps[ln][0])} °C, above the limit "
                                f"of {_fmt(limit)} °C",
                     f"more {what} temperatures above {_fmt(limit)} °C")


def _laser(tp: Toolpath, cfg: Config, rep: _Report) -> None:
    limit = cfg.limits.max_laser_power
    first = np.empty(FIRST_FEW + 1, np.int64)
    n = int(_outside_lines(tp.seg_power, tp.seg_line, -np.inf, limit, first))
    if n:
        segs = first[:min(n, FIRST_FEW + 1)]
        lines = [int(tp.seg_line[s]) + 1 for s in segs]
        power = {line: float(tp.seg_power[s]) for line, s in zip(lines, segs)}
        rep.add_many(lines, n, "error",
                     lambda ln: f"laser power S{_fmt(power[ln])} is above the limit of S{_fmt(limit)}",
                     f"more moves with laser power above S{_fmt(limit)}")
    elif tp.stats.get("max_power", 0.0) > limit:
        line = tp.stats["max_power_line"] + 1
        rep.findings.append(Finding(line, f"line {line}: laser power S{_fmt(tp.stats['max_power'])} is above the "
                                          f"limit of S{_fmt(limit)}", "error"))


def _first_flagged(tp: Toolpath, flag: int) -> int:
    n, idx = _flag_index(tp.line_flags, flag, 1)
    return idx[0] + 1 if n else 0


def _kind(tp: Toolpath, cfg: Config, rep: _Report) -> None:
    if cfg.machine.kind == "laser":
        n, segs = _flag_index(tp.seg_flags, SF_EXTRUDE, 1)
        line = int(tp.seg_line[segs[0]]) + 1 if n else _first_flagged(tp, LF_EXTRUDE)
        if line:
            rep.findings.append(Finding(line, f"line {line}: extrusion (E) in a job for a laser cutter: "
                                              "this file is for a 3D printer", "error"))
    else:
        line = _first_flagged(tp, LF_LASER)
        if not line and tp.stats.get("max_power", 0.0) > 0:
            line = tp.stats["max_power_line"] + 1
        if line:
            rep.findings.append(Finding(line, f"line {line}: laser power (M3/M4 with S) in a job for a 3D printer: "
                                              "this file is for a laser cutter", "error"))


_FORBIDDEN = re.compile(r"^([GMT])\s*(\d+)(?:\.(\d+))?$")


def _forbidden(tp: Toolpath, cfg: Config, rep: _Report, cmds: _Commands) -> None:
    letters = {"G": L_G, "M": L_M, "T": L_T}
    dollar_lines: list[tuple[int, bytes]] | None = None
    for item in cfg.limits.forbidden:
        name = item.strip().upper()
        m = _FORBIDDEN.match(name)
        if m:
            sub = int(m.group(3)) if m.group(3) is not None else -1
            total, idx = cmds.find(letters[m.group(1)], (int(m.group(2)),), sub, FIRST_FEW + 1)
            lines = [i + 1 for i in idx]
        elif name.startswith("$"):
            if dollar_lines is None:
                dollar_lines = [(i + 1, strip_command(tp.line_bytes(i)).upper())
                                for i in _dollar_lines(cmds)]
            key = name.encode()
            lines = [ln for ln, cmd in dollar_lines if cmd == key or cmd.startswith(key.rstrip(b"=") + b"=")]
            total = len(lines)
        else:
            continue
        if total:
            rep.add_many(lines, total, "error",
                         lambda ln, it=item: f"{it} is a forbidden command on this machine (limits.forbidden)",
                         f"more forbidden {item} commands")


def _flagged(tp: Toolpath, cfg: Config, rep: _Report) -> None:
    """Per-line flags the parser set: garbage, checksums, long lines, bad arcs, unknown commands."""
    kinds = (
        (LF_GARBAGE, "error", _garbage_reason, "more lines with unreadable bytes or words"),
        (LF_BAD_CHECKSUM, "error", _checksum_reason, "more lines with a wrong checksum"),
        (LF_TOO_LONG, "error",
         lambda tp_, i: f"the command is {len(strip_command(tp_.line_bytes(i)))} characters long; the firmware "
                        f"accepts at most {cfg.limits.max_line_length} (limits.max_line_length)",
         "more lines too long for the firmware"),
        (LF_BAD_ARC, "error",
         lambda tp_, i: "G2/G3 arc without usable I/J offsets or R radius: the firmware would refuse it",
         "more arcs the firmware would refuse"),
        (LF_UNKNOWN, "warning",
         lambda tp_, i: f"unknown command {_command_name(tp_, i)}: the firmware may ignore or refuse it",
         "more unknown commands"),
    )
    present = int(np.bitwise_or.reduce(tp.line_flags)) if tp.lines else 0   # one pass, not one per flag
    for flag, severity, reason, more in kinds:
        if not present & flag:
            continue
        total, idx = _flag_index(tp.line_flags, flag, FIRST_FEW + 1)
        if total:
            rep.add_many([i + 1 for i in idx], total, severity, lambda ln, r=reason: r(tp, ln - 1), more)


def _command_name(tp: Toolpath, i: int) -> str:
    text = strip_command(tp.line_bytes(i)).decode("ascii", "replace")
    return text.split()[0] if text.split() else repr(text)


def _garbage_reason(tp: Toolpath, i: int) -> str:
    raw = tp.line_bytes(i)
    bad = [b for b in raw if (b < 32 and b not in (9, 13)) or b == 127]
    if bad:
        return f"binary or control byte 0x{bad[0]:02x} in the line (a corrupted or non-G-code file)"
    text = strip_command(raw)
    high = [b for b in text if b >= 128]
    if high:
        return f"non-ASCII byte 0x{high[0]:02x} in the command {text[:40]!r}"
    return f"cannot parse the command {text[:60].decode('ascii', 'replace')!r}"


def _checksum_reason(tp: Toolpath, i: int) -> str:
    raw = tp.line_bytes(i).split(b";", 1)[0].strip()
    star = raw.rfind(b"*")
    expected = 0
    for b in raw[:star]:
        expected ^= b
    given = raw[star + 1:].strip().decode("ascii", "replace")
    return f"checksum *{given} does not match the line (it should be *{expected})"


def _homing(tp: Toolpath, rep: _Report, cmds: _Commands) -> None:
    if not _first_flagged(tp, LF_MOVE):
        rep.findings.append(Finding(0, "the file contains no moves", "warning"))
    first_move = tp.stats.get("first_unhomed_move", -1)
    if first_move < 0:
        return
    for i in _dollar_lines(cmds):
        if i > first_move:
            break
        if strip_command(tp.line_bytes(i)).upper().startswith(b"$H"):
            return                                  # GRBL homing cycle
    line = first_move + 1
    rep.findings.append(Finding(line, f"line {line}: the first move comes before any homing (G28 / $H): "
                                      "positions are relative to wherever the machine stands", "warning"))


def _work(tp: Toolpath, cfg: Config, rep: _Report, cmds: _Commands) -> None:
    """A job that does nothing, or extrudes with a cold nozzle, is worth a word to the operator."""
    if cfg.machine.kind == "laser":
        if _first_flagged(tp, LF_MOVE) and not _first_flagged(tp, LF_LASER):
            rep.findings.append(Finding(0, "the laser never fires in this file (no M3/M4 with S > 0 on a move)",
                                        "warning"))
        return
    n, segs = _flag_index(tp.seg_flags, SF_EXTRUDE, 1)
    if n == 0:
        if _first_flagged(tp, LF_MOVE):
            rep.findings.append(Finding(0, "the file extrudes nothing", "warning"))
        return
    first = int(tp.seg_line[segs[0]])
    for i in cmds.find(L_M, (104, 109), k=64)[1]:
        if i > first:
            break
        if any(float(m.group(1)) > 0 for m in _S_OR_R.finditer(strip_command(tp.line_bytes(i)))):
            return
    line = first + 1
    rep.findings.append(Finding(line, f"line {line}: extrudes before any nozzle temperature is set (M104/M109): "
                                      "the firmware refuses cold extrusion unless the printer is already hot",
                                "warning"))


def _dollar_lines(cmds: _Commands) -> list[int]:
    """GRBL `$` lines (few in any real file; at most 10,000 are looked at)."""
    return cmds.find(L_DOLLAR, (0,), k=10_000)[1]
