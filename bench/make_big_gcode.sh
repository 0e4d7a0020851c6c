#!/usr/bin/env bash
# Make the big PrusaSlicer files bench/analyze.py measures, sliced for the
# printers of the test fixtures on a 500 x 500 mm bed (so the copies fit):
#   mk3s     nine bunnies, MK3S limits, gyroid infill (>= 100 MB, many short
#            segments): the speed, memory and estimate benchmark
#   marlin2  sixteen large tori, the Marlin 2 flavoured printer (M204 P/R/T with
#            its own travel acceleration): a second estimate check
# Cached: does nothing when the file already exists.
#
# usage: bench/make_big_gcode.sh [mk3s|marlin2] [OUT]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$here/../tests/fixtures"
variant="${1:-mk3s}"
case "$variant" in
    mk3s)    out="${2:-$here/out/big_prusa_bunny_x9.gcode}"
             args=(--load "$fixtures/prusa_mk3s.ini" --scale 0.8 --duplicate 9 --fill-pattern gyroid)
             stl=bunny.stl ;;
    marlin2) out="${2:-$here/out/big_prusa_marlin2_torus_x16.gcode}"
             args=(--load "$fixtures/prusa_mk3s.ini" --load "$fixtures/prusa_marlin2.ini" --scale 2 --duplicate 16)
             stl=torus.stl ;;
    *) echo "usage: $0 [mk3s|marlin2] [OUT]" >&2; exit 2 ;;
esac
[ -s "$out" ] && { echo "$out"; exit 0; }
command -v prusa-slicer >/dev/null || { echo "prusa-slicer is not installed (apt-get install prusa-slicer)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
prusa-slicer --export-gcode "${args[@]}" --bed-shape 0x0,500x0,500x500,0x500 --center 250,250 \
    --output "$out.tmp" "/usr/share/PrusaSlicer/shapes/$stl" >"$out.log" 2>&1 \
    || { cat "$out.log" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "$out"
