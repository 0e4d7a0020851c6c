#!/usr/bin/env bash
# Make the >= 100 MB PrusaSlicer file bench/analyze.py measures: nine copies of
# the bunny PrusaSlicer ships, sliced for the MK3S-like printer of the test
# fixtures on a 500 x 500 mm bed (so the copies fit), gyroid infill for many
# short segments. Cached: does nothing when the file already exists.
#
# usage: bench/make_big_gcode.sh [OUT]     (default bench/out/big_prusa_bunny_x9.gcode)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out/big_prusa_bunny_x9.gcode}"
[ -s "$out" ] && { echo "$out"; exit 0; }
command -v prusa-slicer >/dev/null || { echo "prusa-slicer is not installed (apt-get install prusa-slicer)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
prusa-slicer --export-gcode --load "$here/../tests/fixtures/prusa_mk3s.ini" \
    --bed-shape 0x0,500x0,500x500,0x500 --center 250,250 \
    --scale 0.8 --duplicate 9 --fill-pattern gyroid \
    --output "$out.tmp" /usr/share/PrusaSlicer/shapes/bunny.stl >"$out.log" 2>&1 \
    || { cat "$out.log" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "$out"
