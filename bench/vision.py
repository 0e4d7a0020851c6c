"""Camera inspection benchmark: detection rate per defect class, false alarms on good
scenes, F1 and latency per 1280x720 frame, on generated scenes (vision.synth).

Scenes use seeds from 1,000,000 up; the thresholds in vision/ were chosen on
seeds below 1,000,000, so nothing here was seen while tuning. First layers come
from real slicer G-code (tests/fixtures/slicer) and from random layouts written
as G-code, both parsed by edge.toolpath.load and rasterised by
edge.toolpath.raster; every check runs end to end through edge.inspect
(registration, warp, raster, verdict), single-threaded.

Side by side: the naive bed-empty check (whole-image grey difference, as
OctoPrint's bed-empty plugin does) on the very same bed scenes.

usage: python bench/vision.py [--n 200] [--out bench/out] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "vision"))
from edge.devcache import use_checkout_cache  # noqa: E402
use_checkout_cache(ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import vision_support as vs  # noqa: E402
from edge import config, inspect  # noqa: E402
from vision import overlay as ov  # noqa: E402
from vision import synth  # noqa: E402

cv2.setNumThreads(1)
SEED0 = 1_000_000
FIXTURES_FL = ["prusa_screw_x3.gcode", "prusa_bunny.gcode", "prusa_torus.gcode", "cura_cone.gcode"]
FIXTURES_CUT = ["laser_vector_plate.gcode"]


def jobs(kind: str, count: int = 8):
    """(name, toolpath, canvas mask) for real fixtures and random layouts."""
    out = []
    for name in (FIXTURES_FL if kind == "first_layer" else FIXTURES_CUT):
        p = vs.SLICER / name
        if p.exists():
            tp = vs.load(p)
            out.append((name, tp, vs.canvas_mask(tp, kind)))
    for j in range(count):
        text = synth.print_job_gcode(SEED0 + j) if kind == "first_layer" else synth.laser_job_gcode(SEED0 + j)
        tp = vs.load_text(text, f"synth-{kind}-{j}.gcode")
        out.append((f"synth-{j}", tp, vs.canvas_mask(tp, kind)))
    return out


def naive_bed_clear(frame: np.ndarray, reference: np.ndarray) -> bool:
    """Whole-image grey difference: occupied when over 0.5 % of pixels changed by more than 25 levels."""
    a = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
    return float((cv2.absdiff(a, b) > 25).mean()) > 0.005


def run(n: int, out: Path) -> dict:
    cfg = config.default()
    rows: dict[tuple[str, str], dict] = {}
    lat: dict[str, list[float]] = {"bed_clear": [], "first_layer": [], "cut": []}
    cpu: dict[str, list[float]] = {"bed_clear": [], "first_layer": [], "cut": []}
    sheet: list[tuple[str, np.ndarray, np.ndarray]] = []
    naive = {"good": 0, "occupied": 0}
    fl_jobs, cut_jobs = jobs("first_layer"), jobs("cut")
    plan = [("bed_clear", c) for c in ("good", "occupied")] + \
           [("first_layer", c) for c in ("good",) + synth.FIRST_LAYER_DEFECTS] + \
           [("cut", c) for c in ("good",) + synth.CUT_DEFECTS]
    render_s = 0.0
    for ci, (check, cls) in enumerate(plan):
        alarms, errors = 0, 0
        for i in range(n):
            seed = SEED0 + 10_000 * ci + i
            t = time.perf_counter()
            if check == "bed_clear":
                scene, tp = synth.bed_clear_scene(seed, cls == "occupied"), None
            elif check == "first_layer":
                _, tp, mask = fl_jobs[i % len(fl_jobs)]
                scene = synth.first_layer_scene(seed, mask, cls)
            else:
                _, tp, mask = cut_jobs[i % len(cut_jobs)]
                scene = synth.cut_scene(seed, mask, cls)
            render_s += time.perf_counter() - t
            keep = i == 0
            t, c = time.perf_counter(), time.thread_time()
            try:
                v = getattr(inspect, check)(scene.image, scene.reference, tp, cfg,
                                            overlay_dir=out / "overlays" if keep else None)
            except inspect.InspectionError as exc:
                errors += 1
                print(f"  {check}/{cls} seed {seed}: {exc}")
                continue
            if not keep:
                lat[check].append(time.perf_counter() - t)
                cpu[check].append(time.thread_time() - c)
            alarms += v.verdict not in ("pass", "clear")
            if check == "bed_clear":
                naive[cls] += naive_bed_clear(scene.image, scene.reference)
            if keep:
                sheet.append((f"{check}: {cls} -> {v.verdict}", scene.image, cv2.imread(v.overlay_path)))
        rows[(check, cls)] = {"n": n, "alarms": alarms, "errors": errors}
        print(f"{check:12s} {cls:16s} alarms {alarms:4d}/{n}  errors {errors}", flush=True)
    return {"rows": rows, "lat": lat, "cpu": cpu, "sheet": sheet, "naive": naive, "render_s": render_s}


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(1, 2 * tp + fp + fn)


def table(res: dict, n: int) -> str:
    rows, lat = res["rows"], res["lat"]
    lines = ["| check | scenes | detection rate / false alarms | F1 (class vs good) |", "|---|---:|---:|---:|"]
    summary = []
    for check in ("bed_clear", "first_layer", "cut"):
        good = rows[(check, "good")]
        fp = good["alarms"]
        lines.append(f"| {check} good | {good['n']} | false alarms {fp / good['n']:.1%} | |")
        tp_all = fn_all = 0
        for (c, cls), r in rows.items():
            if c != check or cls == "good":
                continue
            tp, fn = r["alarms"], r["n"] - r["alarms"] - r["errors"]
            tp_all, fn_all = tp_all + tp, fn_all + fn
            lines.append(f"| {check} {cls} | {r['n']} | detected {tp / r['n']:.1%} | {f1(tp, fp, fn):.3f} |")
        summary.append(f"| **{check} overall** | | | **{f1(tp_all, fp, fn_all):.3f}** |")
    lines += summary
    lines += ["", "Latency per check, one 1280x720 frame, end to end (registration, warp, raster, verdict). CPU time "
              "is the thread's own (what the check costs); wall time also counts waiting for the shared cores.", "",
              "| check | CPU median | CPU p95 | wall median | wall p95 |", "|---|---:|---:|---:|---:|"]
    for check, xs in lat.items():
        if xs:
            a, c = np.array(xs) * 1000, np.array(res["cpu"][check]) * 1000
            lines.append(f"| {check} | {np.median(c):.1f} ms | {np.percentile(c, 95):.1f} ms | {np.median(a):.1f} ms | "
                         f"{np.percentile(a, 95):.1f} ms |")
    nv, g = res["naive"], rows[("bed_clear", "good")]["n"]
    occ = rows[("bed_clear", "occupied")]
    lines += ["", "Side by side on the same bed scenes (60 % with lamp / exposure / glare changes):", "",
              "| bed-clear method | detected | false alarms | F1 |", "|---|---:|---:|---:|",
              f"| naive whole-image difference | {nv['occupied'] / occ['n']:.1%} | {nv['good'] / g:.1%} | "
              f"{f1(nv['occupied'], nv['good'], occ['n'] - nv['occupied']):.3f} |",
              f"| fabedge (ratio image, robust light field) | {occ['alarms'] / occ['n']:.1%} | "
              f"{rows[('bed_clear', 'good')]['alarms'] / g:.1%} | "
              f"{f1(occ['alarms'], rows[('bed_clear', 'good')]['alarms'], occ['n'] - occ['alarms']):.3f} |"]
    return "\n".join(lines)


def contact_sheet(items: list[tuple[str, np.ndarray, np.ndarray]], path: Path, tile_w: int = 300) -> None:
    tiles = []
    for title, frame, overlay in items:
        a = cv2.resize(frame, (tile_w, int(frame.shape[0] * tile_w / frame.shape[1])), interpolation=cv2.INTER_AREA)
        b = cv2.resize(overlay, (tile_w, int(overlay.shape[0] * tile_w / overlay.shape[1])), interpolation=cv2.INTER_AREA)
        h = max(a.shape[0], b.shape[0])
        pad = lambda im: cv2.copyMakeBorder(im, 0, h - im.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(30, 30, 30))  # noqa: E731
        t = np.hstack([pad(a), np.full((h, 4, 3), 30, np.uint8), pad(b)])
        head = np.full((24, t.shape[1], 3), 30, np.uint8)
        cv2.putText(head, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(cv2.copyMakeBorder(np.vstack([head, t]), 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=(30, 30, 30)))
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(30, 30, 30)) for t in tiles]
    cols = 3
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 30))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    ov.save_png(grid, path)


def record(text: str, n: int, seconds: float) -> None:
    """Replace the `## vision` section of bench/RESULTS.md (other sections untouched)."""
    path = ROOT / "bench" / "RESULTS.md"
    body = (f"## vision\n\n`python bench/vision.py --n {n}` — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} shared cores "
            f"(load average {os.getloadavg()[0]:.0f} at the end), "
            f"single-threaded (cv2.setNumThreads(1)), {seconds:.0f} s in all. Generated 1280x720 scenes "
            f"(vision.synth), {n} per class, seeds from {SEED0} (thresholds were tuned on seeds below it). "
            "First layers from the PrusaSlicer/Cura fixtures and random layouts, parsed and rasterised by "
            "edge.toolpath; an alarm is any verdict other than pass / clear. Contact sheet: "
            "docs/vision-contact-sheet.png.\n\n" + text + "\n")
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    start = old.find("## vision\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        end = old.find("\n## ", start + 1)
        new = old[:start] + body + (old[end + 1:] if end >= 0 else "")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="scenes per class (default 200)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "vision"))
    ap.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md or docs/")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = run(args.n, out)
    text = table(res, args.n)
    seconds = time.perf_counter() - t0
    print()
    print(text)
    print(f"\n{seconds:.0f} s ({res['render_s']:.0f} s rendering scenes)")
    contact_sheet(res["sheet"], out / "contact-sheet.png")
    if not args.no_record:
        contact_sheet(res["sheet"], ROOT / "docs" / "vision-contact-sheet.png")
        record(text, args.n, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
