"""analyze(): layers, first layer, bounding boxes, filament, ETA; and the
`fabedge analyze` command (JSON schema, exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import cli, config
from edge.toolpath import analyze
from edge.toolpath.model import LF_LAYER_START

ROOT = Path(__file__).resolve().parent.parent.parent
SLICER = ROOT / "tests" / "fixtures" / "slicer"
EDGE = ROOT / "tests" / "fixtures" / "edge"
EXAMPLE = ROOT / "config" / "fabedge.example.toml"
PRINTER = config.load(EXAMPLE)
PRUSA = sorted(SLICER.glob("prusa_*.gcode"))


def layer_change_lines(path: Path, marker: str) -> list[int]:
    return [n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(marker)]


@pytest.mark.parametrize("path", PRUSA, ids=lambda p: p.name)
def test_layers_match_prusaslicer_layer_changes(path):
    a = analyze(path, PRINTER)
    changes = layer_change_lines(path, ";LAYER_CHANGE")
    assert a.layers == len(changes)                 # vase mode included: one layer per layer height
    starts = np.flatnonzero(a.toolpath.line_flags & LF_LAYER_START) + 1
    # each layer starts at its Z move (vase: where the spiral rises), right after the slicer's marker
    assert all(0 < s - c < 12 for s, c in zip(starts[1:], changes[1:])), list(zip(starts, changes))[:5]
    assert a.first_layer[1] == starts[1] - 1


def test_cura_layers_and_first_layer():
    path = SLICER / "cura_cone.gcode"
    a = analyze(path, PRINTER)
    marks = layer_change_lines(path, ";LAYER:")
    assert a.layers == len(marks)
    start, end = a.first_layer
    assert start < marks[1] and abs(marks[1] - (end + 1)) < 5   # layer 0 ends where Cura's layer 1 begins
    assert a.layer_of(start) == 0 and a.layer_of(end) == 0 and a.layer_of(end + 1) == 1
    assert a.layer_of(1) == -1 and a.layer_of(10**9) == -1


def test_z_hops_are_not_layers(tmp_path):
    p = tmp_path / "hops.gcode"
    p.write_text("G28\nG1 Z0.2 F600\nG1 X10 Y10 E1\nG1 Z0.6\nG1 X20\nG1 Z0.2\nG1 X30 E2\n"
                 "G1 Z0.4\nG1 X40 E3\nG1 Z1.0\nG1 X0 Y0\n")
    a = analyze(p, PRINTER)
    assert a.layers == 2
    assert a.first_layer == (2, 7)
    assert [a.layer_of(n) for n in (1, 2, 5, 7, 8, 9, 11)] == [-1, 0, 0, 0, 1, 1, 1]


def test_bounding_boxes_and_filament_match_the_slicer():
    path = SLICER / "prusa_bunny.gcode"
    a = analyze(path, PRINTER)
    used = float(re.search(r"filament used \[mm\] = ([\d.]+)", path.read_text()).group(1))
    assert a.filament_mm == pytest.approx(used, rel=0.02)          # we also count the purge line
    (x0, y0, z0), (x1, y1, z1) = a.bbox_extrude
    assert z0 == pytest.approx(0.2) and z1 <= a.bbox_all[1][2]
    assert y0 == pytest.approx(-3.0)                                # the purge line in front of the bed
    assert all(lo <= hi for lo, hi in zip(*a.bbox_all))
    assert a.bbox_all[0][0] <= x0 and a.bbox_all[1][0] >= x1


def test_laser_bbox_is_of_laser_on_moves():
    laser = config.from_dict({"machine": {"kind": "laser"}, "serial": {"protocol": "grbl"},
                              "motion": {"planner": "grbl"}})
    a = analyze(EDGE / "laser_grbl.gcode", laser)
    assert a.kind == "laser" and a.filament_mm == 0.0
    assert a.bbox_extrude[0][:2] == pytest.approx((5.0, 5.0), abs=1e-3)     # G0 rapids and M5 moves excluded
    assert a.bbox_extrude[1][:2] == pytest.approx((20.0, 20.0))
    assert a.bbox_all[0][:2] == pytest.approx((0.0, 0.0))


def test_eta_counts_down_from_the_estimate():
    a = analyze(SLICER / "prusa_torus.gcode", PRINTER)
    assert a.estimated_time_s > 60
    etas = [a.eta_s(n) for n in range(0, a.lines + 1, 97)]
    assert etas[0] == pytest.approx(a.estimated_time_s)
    assert all(x >= y for x, y in zip(etas, etas[1:]))
    assert a.eta_s(a.lines) == 0.0 and a.eta_s(a.lines + 5) == 0.0
    mid = a.lines // 2
    assert a.eta_s(mid) == pytest.approx(a.estimated_time_s - a.toolpath.line_time[:mid].sum(dtype=np.float64))


def test_to_dict_schema():
    d = analyze(SLICER / "prusa_torus.gcode", PRINTER).to_dict()
    for key in ("lines", "layers", "first_layer", "bbox_mm", "bbox_all_mm", "estimated_time_s", "filament_mm",
                "kind", "warnings", "errors"):
        assert key in d
    assert set(d["first_layer"]) == {"start_line", "end_line"}
    assert set(d["bbox_mm"]) == {"min", "max"} and len(d["bbox_mm"]["min"]) == 3
    json.dumps(d)


# ---- the command ----------------------------------------------------------------------
def test_cli_json_ok_exit_0(capsys):
    rc = cli.main(["analyze", str(SLICER / "prusa_torus.gcode"), "--config", str(EXAMPLE), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)                              # exactly one JSON object
    assert d["kind"] == "printer" and d["errors"] == [] and d["layers"] == 28
    assert d["first_layer"]["start_line"] < d["first_layer"]["end_line"]


def test_cli_rejected_exit_2_still_prints_json(tmp_path, capsys):
    p = tmp_path / "bad.gcode"
    p.write_text("G28\nG1 X999 F600\nM500\n")
    rc = cli.main(["analyze", str(p), "--config", str(EXAMPLE), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 2
    assert [(e["line"], e["message"][:7]) for e in d["errors"]] == [(2, "line 2:"), (3, "line 3:")]


def test_cli_human_summary(capsys):
    rc = cli.main(["analyze", str(EDGE / "arcs.gcode")])
    out = capsys.readouterr().out
    assert rc == 2
    assert re.search(r"time\s+\d+:\d\d:\d\d", out)
    assert "layers" in out and "line 11: G2/G3 arc" in out and "REJECTED" in out


def test_cli_missing_file_one_line_exit_1():
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))}
    r = subprocess.run([sys.executable, "-m", "edge", "analyze", "/nonexistent/job.gcode", "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "/nonexistent/job.gcode" in r.stderr


def test_cli_bad_config_and_directory_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[volume]\nx = [0, 'wide']\n")
    assert cli.main(["analyze", str(EDGE / "arcs.gcode"), "--config", str(bad)]) == 1
    assert cli.main(["analyze", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "volume.x" in err and "directory" in err


def test_warm_cache_leaves_nothing_to_compile():
    """After warm_cache(), a new process analyses a file without compiling a single kernel."""
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))}
    warm = subprocess.run([sys.executable, "-c", "from edge.toolpath import warm_cache; warm_cache()"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert warm.returncode == 0, warm.stderr
    probe = (
        "import importlib, numba\n"
        "from edge import config\n"
        "from edge.toolpath import analyze, warm_cache\n"
        f"analyze({str(SLICER / 'prusa_torus.gcode')!r}, config.load({str(EXAMPLE)!r}))\n"
        "warm_cache()\n"
        "misses = {}\n"
        "for m in ('parse_kernel', 'parse_move', 'layers', 'checks', 'analysis', 'plan_kernel'):\n"
        "    mod = importlib.import_module('edge.toolpath.' + m)\n"
        "    for name, f in vars(mod).items():\n"
        "        if isinstance(f, numba.core.registry.CPUDispatcher) and f.signatures:\n"
        "            misses[m + '.' + name] = (sum(f.stats.cache_misses.values()), sum(f.stats.cache_hits.values()))\n"
        "print(misses)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    stats = eval(r.stdout)                                  # {kernel: (misses, hits)}
    assert "parse_kernel.parse_chunk" in stats and "layers._layer_starts" in stats
    assert {k: v for k, v in stats.items() if v[0]} == {}
    assert all(hits > 0 for _, hits in stats.values())


def test_cli_usage_error_exit_1(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze"])
    assert exc.value.code == 1
    assert "required: file" in capsys.readouterr().err


def test_first_layer_starts_at_the_move_down_not_at_a_start_gcode_lift(tmp_path):
    p = tmp_path / "lift.gcode"
    p.write_text("G28\nG1 Z10 F600\nM109 S200\nG1 X5 Y5\nG1 Z0.2\nG1 X10 E1\nG1 Z0.4\nG1 X20 E2\n")
    a = analyze(p, PRINTER)
    assert a.first_layer == (5, 6) and a.layers == 2
