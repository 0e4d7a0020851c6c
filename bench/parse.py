"""Benchmark: where the analysis time goes — the numba parser (load) next to
the planner, layers and checks — on a >= 100 MB PrusaSlicer file, with
OctoPrint's gcodeInterpreter on a 10 MB slice of the same file as the
baseline (MB/s of each and the ratio), and peak RSS of a parse-only process
(mapped file pages included) against the file size.

bench/analyze.py (the planner's area) times the full analysis against
OctoPrint on the whole file; this one explains the parser's share of it.
Each measurement runs in its own child process. Results go under
`## toolpath parser` in bench/RESULTS.md.   usage: python bench/parse.py [--no-results]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edge.devcache import use_checkout_cache  # noqa: E402  (stdlib only: also runs in the OctoPrint venv)
OUT = ROOT / "bench" / "out"
BIG = OUT / "big_prusa_bunny_x9.gcode"            # made by bench/make_big_gcode.sh (bench/analyze.py)
FALLBACK = OUT / "parse_bunny_x64.gcode"          # fixtures concatenated when prusa-slicer is missing
OP_PYTHON = ROOT / "bench" / ".venv-octoprint" / "bin" / "python"
RESULTS = ROOT / "bench" / "RESULTS.md"
SLICE_MB = 10


def big_file() -> Path:
    if BIG.exists():
        return BIG
    if not FALLBACK.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        data = (ROOT / "tests" / "fixtures" / "slicer" / "prusa_bunny.gcode").read_bytes()
        tmp = FALLBACK.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for _ in range(64):
                fh.write(data)
        tmp.rename(FALLBACK)
    return FALLBACK


def _hwm_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def child_stages(path: str) -> dict:
    """Best of three: load, plan, layers, checks (wall and CPU seconds)."""
    sys.path.insert(0, str(ROOT))
    from edge import config
    from edge.toolpath.analysis import warm
    from edge.toolpath.checks import check
    from edge.toolpath.layers import assign_layers
    from edge.toolpath.parse import load
    from edge.toolpath.plan import plan
    warm()
    cfg = config.default().replace(volume={"x": [0.0, 500.0], "y": [-5.0, 500.0], "z": [0.0, 210.0]})
    best: dict[str, tuple[float, float]] = {}
    for _ in range(3):
        marks = [(time.perf_counter(), time.process_time())]
        tp = load(path)
        marks.append((time.perf_counter(), time.process_time()))
        plan(tp, cfg.motion)
        marks.append((time.perf_counter(), time.process_time()))
        assign_layers(tp)
        marks.append((time.perf_counter(), time.process_time()))
        check(tp, cfg)
        marks.append((time.perf_counter(), time.process_time()))
        for name, (a, b) in zip(("load", "plan", "layers", "checks"), zip(marks, marks[1:])):
            run = (b[0] - a[0], b[1] - a[1])
            best[name] = min(best.get(name, run), run)
        lines, segs = tp.lines, len(tp.seg_x)
        del tp
    return {"stages": best, "lines": lines, "segments": segs}


def child_rss(path: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from edge.toolpath.analysis import warm
    from edge.toolpath.parse import load
    warm()
    base = _hwm_kb()
    t = time.perf_counter()
    load(path)
    return {"wall": time.perf_counter() - t, "hwm_kb": _hwm_kb(), "base_kb": base}


def child_octoprint(path: str) -> dict:
    from octoprint.util.gcodeInterpreter import gcode
    t, c = time.perf_counter(), time.process_time()
    gcode().load(path)
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c}


def run_child(python: str, kind: str, path: Path) -> dict:
    proc = subprocess.run([python, __file__, "--child", kind, str(path)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "NUMBA_CACHE_DIR": use_checkout_cache(ROOT)})
    if proc.returncode != 0:
        sys.exit(f"bench child {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, path = sys.argv[2], sys.argv[3]
        fn = {"stages": child_stages, "rss": child_rss, "octoprint": child_octoprint}[kind]
        print(json.dumps(fn(path)))
        return 0
    big = big_file()
    mb = big.stat().st_size / 1e6
    stages = run_child(sys.executable, "stages", big)
    rss = run_child(sys.executable, "rss", big)
    op = None
    if OP_PYTHON.exists():
        piece = OUT / f"parse_slice_{SLICE_MB}mb.gcode"
        with open(big, "rb") as src, open(piece, "wb") as dst:
            data = src.read(SLICE_MB * 1_000_000)
            dst.write(data[:data.rfind(b"\n") + 1])
        op = run_child(str(OP_PYTHON), "octoprint", piece)
        op["mb"] = piece.stat().st_size / 1e6
    st = stages["stages"]
    total_wall = sum(v[0] for v in st.values())
    total_cpu = sum(v[1] for v in st.values())
    lines = [f"File: `bench/out/{big.name}` ({mb:.1f} MB, {stages['lines']:,} lines, "
             f"{stages['segments']:,} segments); best of 3 per stage, warm numba cache, one thread (analyze() "
             f"runs plan in threads behind the parser: see `## analyze`). Load average at the end "
             f"{os.getloadavg()[0]:.0f} ({os.cpu_count()} CPUs).", "",
             "| stage | wall s | MB/s (wall) | CPU s | MB/s (CPU) | ns/line (CPU) |", "|---|---:|---:|---:|---:|---:|"]
    for name, (wall, cpu) in list(st.items()) + [("all four", (total_wall, total_cpu))]:
        lines.append(f"| {name} | {wall:.3f} | {mb / wall:.0f} | {cpu:.3f} | {mb / cpu:.0f} | "
                     f"{cpu / stages['lines'] * 1e9:.0f} |")
    lines += ["", f"Parse-only process: peak RSS {rss['hwm_kb'] / 1024:.0f} MB = "
              f"{rss['hwm_kb'] * 1024 / big.stat().st_size:.2f}x the file (of which {rss['base_kb'] / 1024:.0f} MB is "
              "Python + numba with the kernels loaded, before the file is opened)."]
    if op:
        op_rate = op["mb"] / op["cpu"]
        lines += ["", f"OctoPrint gcodeInterpreter on the first {op['mb']:.0f} MB: {op['mb'] / op['wall']:.1f} MB/s wall, "
                  f"{op_rate:.1f} MB/s CPU. fabedge parse is **{mb / st['load'][1] / op_rate:.0f}x** OctoPrint (CPU), "
                  f"the whole analysis **{mb / total_cpu / op_rate:.0f}x** (CPU; wall on this shared box: "
                  f"{mb / total_wall / (op['mb'] / op['wall']):.0f}x)."]
    text = "\n".join(lines)
    print(text)
    if "--no-results" not in sys.argv:
        write_results(text)
    return 0


def write_results(body: str) -> None:
    """Replace (or add) the `## toolpath parser` section of bench/RESULTS.md, atomically."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## toolpath parser\n\n`python bench/parse.py` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{body}\n"
    pattern = re.compile(r"^## toolpath parser\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: section + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section
    tmp = RESULTS.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(new)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
