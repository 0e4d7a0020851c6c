"""`fabedge inspect` on image files: exit 0 pass, 2 fail, 1 (one line) for unusable input."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

import vision_support as vs
from vision import synth

ROOT = vs.ROOT


def fabedge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=280)   # generous: CI machines are shared


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    (d / "job.gcode").write_text(synth.print_job_gcode(1004, objects=2))
    tp = vs.load(d / "job.gcode")
    mask = vs.canvas_mask(tp)
    for name, defect in (("good", "good"), ("missing", "missing_object")):
        s = synth.first_layer_scene(351, mask, defect, changed_light=False)
        cv2.imwrite(str(d / f"{name}.jpg"), s.image)
        cv2.imwrite(str(d / "ref.png"), s.reference)
    (d / "corrupt.jpg").write_bytes(open(d / "good.jpg", "rb").read()[:300])
    cv2.imwrite(str(d / "small.png"), cv2.resize(s.image, (640, 360)))
    return d


def test_first_layer_pass_prints_json_and_writes_overlay(files):
    r = fabedge("inspect", "first-layer", "--image", files / "good.jpg", "--reference", files / "ref.png",
                "--gcode", files / "job.gcode", "--json", "--overlay", files / "ov.png")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "pass" and out["overlay_path"].endswith("ov.png")
    assert (files / "ov.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in files.iterdir() if p.name.startswith(".inspect-")]   # no temp dirs left behind


def test_first_layer_fail_exits_2(files):
    r = fabedge("inspect", "first-layer", "--image", files / "missing.jpg", "--reference", files / "ref.png",
                "--gcode", files / "job.gcode")
    assert r.returncode == 2
    assert r.stdout.startswith("first-layer: fail") and "missing" in r.stdout


@pytest.mark.parametrize("image, words", [("corrupt.jpg", "not a decodable image"),
                                          ("small.png", "640x360 px, expected 1280x720"),
                                          ("nothere.jpg", "cannot read")])
def test_bad_images_are_one_line_exit_1(files, image, words):
    r = fabedge("inspect", "bed-clear", "--image", files / image, "--reference", files / "ref.png")
    assert r.returncode == 1
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_first_layer_without_gcode_is_a_usage_error(files):
    r = fabedge("inspect", "first-layer", "--image", files / "good.jpg", "--reference", files / "ref.png")
    assert r.returncode == 1 and "needs --gcode" in r.stderr
