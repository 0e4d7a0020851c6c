"""`fabedge inspect {bed-clear|first-layer|cut} --image IMG --reference REF [--gcode FILE]`:
run one camera check on image files. Exit 0 when it passes (or warns), 2 when
the verdict is fail / occupied, 1 for unusable input (one line, no traceback)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edge import config

CHECKS = {"bed-clear": "bed_clear", "first-layer": "first_layer", "cut": "cut"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("check", choices=list(CHECKS), help="which inspection to run")
    parser.add_argument("--image", required=True, help="the camera frame to judge")
    parser.add_argument("--reference", required=True, help="the empty-bed (or uncut-sheet) reference image")
    parser.add_argument("--gcode", help="the job's G-code (needed for first-layer and cut)")
    parser.add_argument("--config", help="fabedge.toml (camera markers, bed size); built-in defaults otherwise")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--overlay", help="write the overlay PNG here")


def run(args: argparse.Namespace) -> int:
    from edge import inspect
    from edge.errors import UsageError
    from vision.errors import VisionError
    from vision.images import read_image

    cfg = config.load(args.config) if args.config else config.default()
    try:
        frame = read_image(args.image)
        reference = read_image(args.reference)
    except VisionError as exc:
        raise inspect.InspectionError(str(exc)) from None
    toolpath = None
    if args.gcode:
        from edge.toolpath import load
        toolpath = load(args.gcode)
    elif args.check != "bed-clear":
        raise UsageError(f"{args.check} needs --gcode FILE (the job whose result is on the image)")
    out_dir = None
    if args.overlay:
        out_dir = tempfile.mkdtemp(prefix=".inspect-", dir=str(Path(args.overlay).resolve().parent))
    fn = getattr(inspect, CHECKS[args.check])
    v = fn(frame, reference, toolpath, cfg, overlay_dir=out_dir)
    if args.overlay and v.overlay_path:
        Path(v.overlay_path).replace(args.overlay)
        Path(out_dir).rmdir()
        v.overlay_path = str(args.overlay)
    if args.json:
        json.dump(v.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{args.check}: {v.verdict}")
        for r in v.reasons:
            print(f"  - {r}")
        if v.overlay_path:
            print(f"  overlay: {v.overlay_path}")
    return 2 if v.verdict in ("fail", "occupied") else 0
