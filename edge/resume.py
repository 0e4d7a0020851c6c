"""Resume an interrupted print from the start of a chosen layer.

The generated file is a short preamble followed by the original file from that
layer's first line. The preamble tells the firmware where Z is (the nozzle
stayed where it stopped), lifts it clear of the part, homes X and Y only (a Z
home would drive the nozzle into the part), reheats bed and nozzle to what the
file had set by then, moves to the layer's height, sets E, restores the
extrusion mode, fan and feedrate. Only ever run after the operator confirmed on
the panel; never generated for lasers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edge.atomicfile import fsync_dir
from edge.errors import GcodeError

LIFT_MM = 5.0


@dataclass
class PrintState:
    """What the file had set up by a given line (a minimal G-code interpreter)."""
    z: float = 0.0
    e: float = 0.0
    nozzle_c: float = 0.0
    bed_c: float = 0.0
    fan: int = 0
    feed: float = 0.0
    absolute: bool = True
    e_absolute: bool = True
    homed: bool = False
    extra: list[str] = field(default_factory=list)


def _words(cmd: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for w in cmd.split()[1:]:
        try:
            out[w[0].upper()] = float(w[1:])
        except (ValueError, IndexError):
            continue
    return out


def scan(path: str | Path, until_line: int) -> PrintState:
    """Interpret lines 1..until_line-1 of `path` for Z, E, temperatures, fan, modes."""
    st = PrintState()
    e_offset_pos = 0.0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n >= until_line:
                break
            cmd = raw.split(b";", 1)[0].strip().decode("ascii", "replace")
            if not cmd:
                continue
            head = cmd.split(None, 1)[0].upper()
            w = _words(cmd)
            if head in ("G0", "G1", "G2", "G3"):
                if "Z" in w:
                    st.z = w["Z"] if st.absolute else st.z + w["Z"]
                if "E" in w:
                    e_offset_pos = w["E"] if st.e_absolute else e_offset_pos + w["E"]
                if "F" in w:
                    st.feed = w["F"]
            elif head == "G90":
                st.absolute, st.e_absolute = True, True
            elif head == "G91":
                st.absolute, st.e_absolute = False, False
            elif head == "M82":
                st.e_absolute = True
            elif head == "M83":
                st.e_absolute = False
            elif head == "G92":
                if "E" in w:
                    e_offset_pos = w["E"]
                if "Z" in w:
                    st.z = w["Z"]
            elif head in ("M104", "M109") and "S" in w:
                st.nozzle_c = w["S"]
            elif head in ("M140", "M190") and "S" in w:
                st.bed_c = w["S"]
            elif head == "M106":
                st.fan = int(w.get("S", 255))
            elif head == "M107":
                st.fan = 0
            elif head == "G28":
                st.homed = True
    st.e = e_offset_pos
    return st


def preamble(st: PrintState, z_now: float, layer: int, from_line: int, source: str) -> list[str]:
    """The G-code that brings a stopped printer back to the state of `from_line`."""
    lift_to = max(z_now, st.z) + LIFT_MM
    lines = [
        f"; fabedge resume of {source} from layer {layer} (line {from_line})",
        f"M140 S{st.bed_c:g}",
        f"M104 S{st.nozzle_c:g}",
        f"G92 Z{z_now:.3f}",                 # the nozzle stayed where it stopped
        "G91",
        f"G1 Z{lift_to - z_now:.3f} F600",    # clear the part before moving X/Y
        "G90",
        "G28 X Y",                            # home X/Y only: never Z into the part
        f"M190 S{st.bed_c:g}",
        f"M109 S{st.nozzle_c:g}",
        f"G1 Z{st.z:.3f} F600",
        "M83" if not st.e_absolute else "M82",
        f"G92 E{st.e:.5f}" if st.e_absolute else "G92 E0",
        f"M106 S{st.fan}" if st.fan else "M107",
    ]
    if st.feed:
        lines.append(f"G1 F{st.feed:g}")
    if not st.absolute:
        lines.append("G91")
    return lines


def write_resume(path: str | Path, out_path: str | Path, from_line: int, layer: int,
                 z_now: float | None = None) -> int:
    """Write preamble + the file from `from_line` atomically; returns the preamble's line count.

    `z_now` is where the nozzle stopped (default: the layer's own height).
    """
    path, out_path = Path(path), Path(out_path)
    total = 0
    with open(path, "rb") as f:
        for total, _ in enumerate(f, 1):
            pass
    if not 1 <= from_line <= total:
        raise GcodeError(f"{path}: cannot resume from line {from_line}: the file has {total} lines")
    st = scan(path, from_line)
    if st.nozzle_c <= 0:
        raise GcodeError(f"{path}: line {from_line}: no nozzle temperature set before this layer; "
                         "cannot resume safely")
    pre = preamble(st, st.z if z_now is None else z_now, layer, from_line, path.name)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as out:
        out.write(("\n".join(pre) + "\n").encode())
        for n, raw in enumerate(src, 1):
            if n >= from_line:
                out.write(raw if raw.endswith(b"\n") else raw + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, out_path)
    fsync_dir(out_path.parent)
    return len(pre)
