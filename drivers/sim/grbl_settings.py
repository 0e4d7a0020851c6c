"""The virtual GRBL's `$` settings and the fixed texts it prints.

Defaults are GRBL 1.1h's, with rates and laser mode as a typical diode laser
cutter is set up ($32=1, $30=1000, fast X/Y); tests change them with `$x=`.
"""

from __future__ import annotations

VERSION = "1.1h"
BANNER = f"Grbl {VERSION} ['$' for help]"
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"

DEFAULTS: dict[int, float] = {
    0: 10, 1: 25, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
    20: 0, 21: 0, 22: 0, 23: 0, 24: 25.0, 25: 500.0, 26: 250, 27: 1.0,
    30: 1000, 31: 0, 32: 1,
    100: 80.0, 101: 80.0, 102: 400.0,
    110: 6000.0, 111: 6000.0, 112: 1000.0,
    120: 1000.0, 121: 1000.0, 122: 100.0,
    130: 400.0, 131: 400.0, 132: 50.0,
}
INTEGER = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}


def format_setting(key: int, value: float) -> str:
    return f"${key}={int(value)}" if key in INTEGER else f"${key}={value:.3f}"


def settings_text(settings: dict[int, float]) -> list[str]:
    return [format_setting(k, settings[k]) for k in sorted(settings)]
