"""`fabedge analyze FILE [--config C] [--json]`: what a job will do on this
machine and whether it may be queued. Exit 0 acceptable, 2 rejected (the
report is still printed), 1 for usage or I/O errors (one line, from edge.cli)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from edge import config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="G-code file")
    parser.add_argument("--config", "-c", help="machine config (TOML); default: the built-in printer")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")

    def usage_error(message: str) -> None:   # exit 2 means "job rejected" here: usage errors exit 1
        parser.print_usage(sys.stderr)
        parser.exit(1, f"fabedge analyze: {message}\n")
    parser.error = usage_error  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config) if args.config else config.default()
    if os.path.isdir(args.file):
        raise IsADirectoryError(21, "is a directory, not a G-code file", args.file)
    use_cache_dir(cfg.paths.cache_dir)
    from edge.plan_follow import analyze   # numba: imported only when this command runs

    result = analyze(args.file, cfg)
    if args.json:
        json.dump(result.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(summary(result))
    return 0 if result.ok else 2


def use_cache_dir(path: str) -> None:
    """Point numba at the warmed cache (<paths.cache_dir>/numba, as install.mk and the systemd
    unit have it, or paths.cache_dir itself) unless NUMBA_CACHE_DIR is already set."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    for candidate in (os.path.join(path, "numba"), path):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            os.environ["NUMBA_CACHE_DIR"] = candidate
            return


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summary(a) -> str:
    """The human report: time, layers, size, filament, then warnings and errors."""
    d = a.to_dict()
    size = d["size_bytes"]
    size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    out = [f"{d['file']}: {d['kind']} job, {d['lines']} lines, {size_text}"]
    time = hms(d["estimated_time_s"]) if d["time_planned"] else "not estimated (planner missing)"
    out.append(f"  time      {time}")
    fl = d["first_layer"]
    first = f" (first layer: lines {fl['start_line']}-{fl['end_line']})" if fl["start_line"] else ""
    out.append(f"  layers    {d['layers']}{first}")
    for label, key in (("size", "bbox_mm"), ("all moves", "bbox_all_mm")):
        box = d[key]
        if box:
            dims = " x ".join(f"{hi - lo:.1f}" for lo, hi in zip(box["min"], box["max"]))
            span = ", ".join(f"{ax} {lo:g}..{hi:g}" for ax, lo, hi in zip("XYZ", box["min"], box["max"]))
            out.append(f"  {label:<9} {dims} mm ({span})")
    if d["kind"] == "printer":
        out.append(f"  filament  {d['filament_mm'] / 1000:.2f} m")
    if d["objects"]:
        out.append(f"  objects   {len(d['objects'])}: {', '.join(d['objects'][:5])}"
                   + (" ..." if len(d["objects"]) > 5 else ""))
    for title, items in (("warnings", d["warnings"]), ("errors", d["errors"])):
        if items:
            out.append(f"  {title} ({len(items)}):")
            out.extend(f"    {f['message']}" for f in items)
    out.append("  verdict   OK: the job may be queued" if d["ok"] else
               f"  verdict   REJECTED: {len(d['errors'])} error(s)")
    return "\n".join(out)
