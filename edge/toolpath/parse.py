"""Load a G-code file into a Toolpath: mmap it, run the numba kernel chunk by
chunk, then name the objects the slicer marked.

Memory is bounded for a Pi: the file is mapped read-only and, after each
chunk, its pages are released from this process (they stay in the page
cache), so peak RSS is the arrays (~22 B per line, ~31 B per segment) plus
one chunk, not the file plus the arrays. No Python object is made per line.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from edge.toolpath import parse_kernel as K
from edge.toolpath.model import L_M, LF_OBJECT, LF_SENDABLE, Toolpath

CHUNK_BYTES = 4 << 20          # the mapped pages of one chunk are resident at a time: RSS margin under 3x the file

# Commands Marlin / Prusa firmware (G80 mesh levelling...) / GRBL know; anything else is an "unknown command" warning.
_KNOWN_G = [0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 17, 18, 19, 20, 21, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 38,
            40, 42, 43, 49, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 75, 76, 80, 81, 86, 87, 88, 90, 91, 92, 93, 94,
            425]
_KNOWN_M = ([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 16, 17, 18] + list(range(20, 35)) + [42, 43, 48, 73, 75, 76, 77,
            78, 80, 81, 82, 83, 84, 85, 86, 87, 92, 100, 102, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
            114, 115, 117, 118, 119, 120, 121, 122, 123, 125, 126, 127, 128, 129, 140, 141, 143, 145, 149, 150,
            154, 155, 163, 164, 165, 166, 190, 191, 192, 193] + list(range(200, 212)) + [214, 217, 218, 220,
            221, 226, 240, 250, 255, 256, 260, 261, 280, 281, 282, 290, 300, 301, 302, 303, 304, 305, 306, 350,
            351, 355, 360, 361, 362, 363, 364, 380, 381, 400, 401, 402, 403, 404, 405, 406, 407, 410, 412, 413,
            420, 421, 422, 423, 425, 428, 430, 486, 500, 501, 502, 503, 504, 510, 511, 512, 524, 540, 552, 553,
            554, 555, 569, 575, 592, 593, 600, 601, 602, 603, 605, 665, 666, 672, 701, 702, 710, 808, 810, 850,
            851, 860, 861, 862, 863, 864, 865, 866, 867, 868, 869, 871, 876, 900, 906, 907, 908, 909, 910, 911,
            912, 913, 914, 915, 916, 917, 918, 919, 928, 951, 993, 994, 995, 997, 999, 7219])
KNOWN_G = np.zeros(1000, np.uint8)
KNOWN_G[_KNOWN_G] = 1
KNOWN_M = np.zeros(8000, np.uint8)
KNOWN_M[_KNOWN_M] = 1
_T_PRINT = np.frombuffer(b"PRINTING OBJECT", np.uint8)
_T_STOP = np.frombuffer(b"STOP PRINTING OBJECT", np.uint8)
_T_MESH = np.frombuffer(b"MESH:", np.uint8)


@dataclass
class Progress:
    """What the parser has finished after a chunk: lines [0, lines) and segments [0, segments)
    are final. The arrays are views of that part; a later chunk may move the segment arrays
    (when they grow) but never changes what these views show."""

    total_lines: int                           # lines in the whole file
    lines: int
    segments: int
    end: int                                   # byte offset just after line `lines - 1`
    offset: np.ndarray
    letter: np.ndarray
    code: np.ndarray
    line_flags: np.ndarray
    seg: dict[str, np.ndarray]                 # _SegArrays field name -> view [0, segments)
    mm: mmap.mmap | None


def load(path: str | os.PathLike, max_line_length: int = 96,
         home: tuple[float, float, float] = (0.0, 0.0, 0.0),
         on_chunk: Callable[[Progress], None] | None = None) -> Toolpath:
    """Parse a G-code file. `home` is where G28 leaves each axis (the volume minimum).

    `on_chunk`, if given, is called after every chunk with the finished part, so that a
    planner can work on it while the next chunk is parsed (edge.plan_follow).
    Raises OSError when the file cannot be read (edge.cli prints it as one line)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    buf = np.frombuffer(mm if mm is not None else b"", np.uint8)   # read-only either way: one compiled kernel
    n_lines = _count_lines(buf)
    line = _LineArrays(n_lines, size)
    seg = _SegArrays(n_lines + K.MAX_SEGMENTS_PER_LINE + 1024)
    st = K.new_state(home)
    home_arr = np.asarray(home, np.float64)
    vals = np.zeros(26, np.float64)
    done = 0
    while done < len(buf):
        stop = min(done + CHUNK_BYTES, len(buf))
        status = K.parse_chunk(buf, stop, max_line_length, home_arr, st, vals, KNOWN_G, KNOWN_M,
                               _T_PRINT, _T_STOP, _T_MESH, *line.arrays(), *seg.arrays())
        if status == K.NEED_SPACE:
            seg.grow(int(st[K.S_SEG]))
        new_done = int(st[K.S_POS])
        _release(mm, done, new_done)
        done = new_done
        if on_chunk is not None:
            li, ns = int(st[K.S_LINE]), int(st[K.S_SEG])
            on_chunk(Progress(n_lines, li, ns, new_done, line.offset[:li], line.letter[:li], line.code[:li],
                              line.flags[:li], {name: getattr(seg, name)[:ns] for name, _ in seg._fields}, mm))
    nseg = int(st[K.S_SEG])
    tp = Toolpath(
        path=path, size=size, offset=line.offset, letter=line.letter, code=line.code, sub=line.sub,
        line_flags=line.flags, layer=np.full(n_lines, -1, np.int32),
        line_time=np.zeros(n_lines, np.float32),
        seg_line=seg.line[:nseg], seg_x=seg.x[:nseg], seg_y=seg.y[:nseg], seg_z=seg.z[:nseg],
        seg_de=seg.de[:nseg], seg_f=seg.f[:nseg], seg_power=seg.power[:nseg], seg_flags=seg.flags[:nseg],
        start=tuple(float(v) for v in home), _mm=mm,
    )
    tp.kind = "laser" if (st[K.S_ANY_LASER] or st[K.S_MAX_POWER] > 0) and not st[K.S_ANY_EXTRUDE] else "printer"
    tp.stats = {"first_unhomed_move": int(st[K.S_UNHOMED_MOVE]), "max_power": float(st[K.S_MAX_POWER]),
                "max_power_line": int(st[K.S_MAX_POWER_LINE])}
    _name_objects(tp)
    return tp


def _count_lines(buf: np.ndarray) -> int:
    """Newlines, plus one for a last line without one. The pages it maps stay
    mapped for the parse pass, which releases them chunk by chunk: the peak is
    then the file or the arrays, never both, and no page is faulted in twice."""
    n = int(K.count_newlines(buf))
    if len(buf) and buf[-1] != 10:
        n += 1
    return n


def _release(mm: mmap.mmap | None, start: int, end: int) -> None:
    """Drop mapped pages [start, end) from this process's RSS (they stay cached)."""
    if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    page = mmap.PAGESIZE
    a = (start // page) * page
    if end - a >= page:
        mm.madvise(mmap.MADV_DONTNEED, a, ((end - a) // page) * page)


class _LineArrays:
    def __init__(self, n: int, size: int = 0) -> None:
        # uint32 offsets under 4 GiB (every file a Pi sees): 4 bytes per line saved
        self.offset = np.empty(n, np.uint32 if size < 2**32 else np.int64)
        self.letter = np.empty(n, np.uint8)
        self.code = np.empty(n, np.int16)
        self.sub = np.empty(n, np.uint8)
        self.flags = np.empty(n, np.uint16)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.offset, self.letter, self.code, self.sub, self.flags


class _SegArrays:
    _fields = (("line", np.int32), ("x", np.float32), ("y", np.float32), ("z", np.float32),
               ("de", np.float32), ("f", np.float32), ("power", np.float32), ("flags", np.uint8))

    _zeroed = ("de", "power")      # written only where non-zero (see parse_kernel._emit)

    def __init__(self, cap: int) -> None:
        for name, dt in self._fields:
            setattr(self, name, (np.zeros if name in self._zeroed else np.empty)(cap, dt))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name, _ in self._fields)

    def grow(self, used: int) -> None:
        cap = max(int(len(self.x) * 1.5), used + 4 * K.MAX_SEGMENTS_PER_LINE)
        for name, dt in self._fields:
            new = (np.zeros if name in self._zeroed else np.empty)(cap, dt)
            new[:used] = getattr(self, name)[:used]
            setattr(self, name, new)


# ---- objects ------------------------------------------------------------------------
_M486_S = re.compile(rb"[Ss]\s*(-?\d+)")
_M486_A = re.compile(rb"[Aa]\s*(.*)$")


def _name_objects(tp: Toolpath) -> None:
    """Fill tp.objects and tp.seg_object from PrusaSlicer, Cura and M486 markers (rare lines)."""
    marks = np.flatnonzero(tp.line_flags & LF_OBJECT)
    tp.seg_object = None
    if len(marks) == 0:
        return
    names: list[str] = []
    index: dict[str, int] = {}
    m486_names: dict[int, str] = {}
    mark_lines, mark_obj = [], []
    for i in marks:
        raw = tp.line_bytes(int(i))
        if tp.letter[i] == L_M and tp.code[i] == 486:
            text = raw.split(b";", 1)[0]
            s = _M486_S.search(text)
            a = _M486_A.search(text)
            if a and s:
                m486_names[int(s.group(1))] = a.group(1).strip().strip(b'"').decode("utf-8", "replace")
            if not s:
                continue
            n = int(s.group(1))
            name = None if n < 0 else m486_names.get(n, f"object {n}")
        else:
            comment = raw.split(b";", 1)[1].strip().decode("utf-8", "replace")
            upper = comment.upper()
            if upper.startswith("STOP PRINTING OBJECT"):
                name = None
            elif upper.startswith("PRINTING OBJECT"):
                name = comment[len("printing object"):].strip()
            else:  # Cura ;MESH:
                name = comment[5:].strip()
                name = None if name == "NONMESH" else name
        if name is not None and name not in index:
            index[name] = len(names)
            names.append(name)
        mark_lines.append(int(i))
        mark_obj.append(-1 if name is None else index[name])
    if not names:
        return
    tp.objects = names
    tp.seg_object = np.empty(len(tp.seg_line), np.int16)
    K.assign_objects(np.asarray(mark_lines, np.int32), np.asarray(mark_obj, np.int16), tp.seg_line, tp.seg_object)


# ---- what the streaming drivers send -------------------------------------------------
def command_lines(tp: Toolpath) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, command bytes) for every sendable line: comments,
    `N.. *cs` framing and surrounding whitespace stripped (the driver adds its own)."""
    mm = tp._mm
    offsets = tp.offset
    size = tp.size
    last = len(offsets) - 1
    block = 1 << 16                          # bounded memory: never a list of every line
    for a in range(0, tp.lines, block):
        for i in (np.flatnonzero(tp.line_flags[a:a + block] & LF_SENDABLE) + a).tolist():
            end = int(offsets[i + 1]) if i < last else size
            yield i + 1, strip_command(mm[int(offsets[i]):end])


def strip_command(raw: bytes) -> bytes:
    """A line's command without comments, framing or surrounding whitespace."""
    semi = raw.find(b";")
    if semi >= 0:
        raw = raw[:semi]
    if b"(" in raw:
        raw = re.sub(rb"\([^)]*\)?", b"", raw)
    raw = raw.strip()
    if raw[:1] in (b"N", b"n") and raw[1:2].isdigit() or raw[:2] in (b"N ", b"n "):
        k = 1
        while k < len(raw) and raw[k:k + 1] in b" \t":
            k += 1
        while k < len(raw) and raw[k:k + 1].isdigit():
            k += 1
        raw = raw[k:].lstrip()
    star = raw.rfind(b"*")
    if star >= 0 and raw[star + 1:].strip().isdigit():
        raw = raw[:star].rstrip()
    return raw
