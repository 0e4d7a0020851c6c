"""Registration and every verdict, end to end through edge.inspect, on generated 1280x720 scenes."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

import vision_support as vs
from edge import config, inspect
from vision import synth
from vision.errors import CameraMoved, MarkersMissing
from vision.registration import register

CFG = config.default()


@pytest.fixture(scope="module")
def print_job():
    tp = vs.load_text(synth.print_job_gcode(1002, objects=3))
    return tp, vs.canvas_mask(tp)


@pytest.fixture(scope="module")
def laser_job():
    tp = vs.load_text(synth.laser_job_gcode(2002, parts=3))
    return tp, vs.canvas_mask(tp, "cut")


def test_registration_maps_markers_to_their_bed_positions():
    scene = synth.bed_clear_scene(301, occupied=False)
    reg = register(scene.image, synth.DEFAULT_LAYOUT)
    assert reg.reprojection_mm < 0.5
    for mid, (x, y) in synth.DEFAULT_LAYOUT.centres.items():
        u, v = reg.marker_px[mid]
        mm = cv2.perspectiveTransform(np.array([[[u, v]]], np.float64), reg.homography)[0, 0]
        assert mm == pytest.approx((x, y), abs=0.5)


def test_hidden_marker_is_named():
    scene = synth.bed_clear_scene(302, occupied=False)
    reg = register(scene.reference, synth.DEFAULT_LAYOUT)
    u, v = reg.marker_px[2]
    img = scene.image.copy()
    cv2.circle(img, (int(u), int(v)), 45, (20, 20, 20), -1)          # a hand over marker 2
    with pytest.raises(MarkersMissing, match=r"id\(s\) 2 missing") as err:
        register(img, synth.DEFAULT_LAYOUT)
    assert err.value.missing == [2] and err.value.found == [0, 1, 3]
    with pytest.raises(inspect.InspectionError, match=r"bed-clear: bed markers not found: id\(s\) 2"):
        inspect.bed_clear(img, scene.reference, None, CFG)


def test_moved_camera_is_detected():
    rng = np.random.default_rng(5)
    albedo = synth.bed_surface(rng, "smooth_pei")
    synth.draw_markers(albedo)
    h = synth.camera_homography(rng)
    ref = synth.photograph(albedo, h, synth.Lighting(), rng)
    moved = synth.photograph(albedo, synth.jitter(h, rng, 60), synth.Lighting(), rng)
    with pytest.raises(inspect.InspectionError, match="the camera has moved"):
        inspect.bed_clear(moved, ref, None, CFG)
    with pytest.raises(CameraMoved):
        from vision.registration import check_same_view
        check_same_view(register(moved, synth.DEFAULT_LAYOUT), register(ref, synth.DEFAULT_LAYOUT))


@pytest.mark.parametrize("seed", [311, 312])
def test_bed_clear_despite_lamp_and_glare(seed):
    scene = synth.bed_clear_scene(seed, occupied=False, changed_light=True)
    v = inspect.bed_clear(scene.image, scene.reference, None, CFG)
    assert v.verdict == "clear", v.reasons


def test_bed_occupied_says_where_and_how_big(tmp_path):
    scene = synth.bed_clear_scene(313, occupied=True, changed_light=True)
    v = inspect.bed_clear(scene.image, scene.reference, None, CFG, overlay_dir=tmp_path)
    assert v.verdict == "occupied"
    thing = v.details["things"][0]
    assert np.hypot(*np.subtract(thing["centre_mm"], scene.truth["part"]["centre_mm"])) < 12
    assert max(thing["size_mm"]) > 0.6 * min(scene.truth["part"]["size_mm"])
    data = open(v.overlay_path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == v.overlay_sha256 and data[:4] == b"\x89PNG"
    json.dumps(v.to_dict())


def test_first_layer_good_passes(print_job, tmp_path):
    tp, mask = print_job
    scene = synth.first_layer_scene(321, mask, "good")
    v = inspect.first_layer(scene.image, scene.reference, tp, CFG, overlay_dir=tmp_path)
    assert v.verdict == "pass", v.reasons
    assert [o["name"] for o in v.details["objects"]] == tp.objects
    assert all(o["coverage"] > 0.9 for o in v.details["objects"])
    json.dumps(v.to_dict())


def test_first_layer_missing_object_fails_naming_it(print_job):
    tp, mask = print_job
    scene = synth.first_layer_scene(322, mask, "missing_object")
    v = inspect.first_layer(scene.image, scene.reference, tp, CFG)
    name = tp.objects[scene.truth["object"] - 1]
    assert v.verdict == "fail" and any(r.startswith(f"{name}: missing") for r in v.reasons), v.reasons


def test_first_layer_shifted_object_measures_the_shift(print_job):
    tp, mask = print_job
    scene = synth.first_layer_scene(323, mask, "shifted_object")
    v = inspect.first_layer(scene.image, scene.reference, tp, CFG)
    assert v.verdict == "fail" and any("shifted by" in r for r in v.reasons), v.reasons
    obj = next(o for o in v.details["objects"] if o["label"] == scene.truth["object"])
    assert obj["offset_mm"] == pytest.approx(scene.truth["shift_mm"], abs=0.6)


@pytest.mark.parametrize("defect, words", [("blobs_spaghetti", "outside the toolpath"), ("dropout", "gap of")])
def test_first_layer_other_defects_are_flagged(print_job, defect, words):
    tp, mask = print_job
    scene = synth.first_layer_scene(324, mask, defect)
    v = inspect.first_layer(scene.image, scene.reference, tp, CFG)
    assert v.verdict in ("warn", "fail") and any(words in r for r in v.reasons), v.reasons


def test_first_layer_needs_gcode_and_reference(print_job):
    tp, mask = print_job
    scene = synth.first_layer_scene(325, mask, "good")
    with pytest.raises(inspect.InspectionError, match="needs the job's G-code"):
        inspect.first_layer(scene.image, scene.reference, None, CFG)
    with pytest.raises(inspect.InspectionError, match="no empty-bed reference"):
        inspect.first_layer(scene.image, None, tp, CFG)


def test_cut_good_passes_with_kerf_stats(laser_job, tmp_path):
    tp, mask = laser_job
    scene = synth.cut_scene(331, mask, "good")
    v = inspect.cut(scene.image, scene.reference, tp, CFG, overlay_dir=tmp_path)
    assert v.verdict == "pass", v.reasons
    assert all(p["separated"] and p["continuity"] > 0.97 for p in v.details["parts"])
    assert 0.2 < v.details["kerf_mm"]["mean"] < 1.2


def test_cut_incomplete_fails_and_part_not_separated(laser_job):
    tp, mask = laser_job
    scene = synth.cut_scene(332, mask, "incomplete_cut")
    v = inspect.cut(scene.image, scene.reference, tp, CFG)
    part = next(p for p in v.details["parts"] if p["label"] == scene.truth["object"])
    assert v.verdict == "fail" and part["continuity"] < 0.97, v.reasons
    assert part["separated"] is False


@pytest.mark.parametrize("defect, words", [("wide_kerf", "kerf"), ("scorch", "scorch")])
def test_cut_wide_kerf_and_scorch_warn(laser_job, defect, words):
    tp, mask = laser_job
    scene = synth.cut_scene(333, mask, defect)
    v = inspect.cut(scene.image, scene.reference, tp, CFG)
    assert v.verdict in ("warn", "fail") and any(words in r for r in v.reasons), v.reasons


def test_wrong_size_frames_are_clear_errors():
    scene = synth.bed_clear_scene(341, occupied=False)
    small = cv2.resize(scene.image, (640, 360))
    with pytest.raises(inspect.InspectionError, match="640x360 px, expected 1280x720"):
        inspect.bed_clear(small, scene.reference, None, CFG)
    cfg = CFG.replace(camera={"width": 640, "height": 360})
    with pytest.raises(inspect.InspectionError, match="reference: 1280x720 px, expected 640x360"):
        inspect.bed_clear(small, scene.reference, None, cfg)
    with pytest.raises(inspect.InspectionError, match="no image data"):
        inspect.bed_clear(np.zeros((0, 0, 3), np.uint8), scene.reference, None, CFG)


def test_a_marker_stuck_down_turned_still_registers():
    rng = np.random.default_rng(9)
    albedo = synth.bed_surface(rng, "glass")
    synth.draw_markers(albedo)
    col, row = synth.CANVAS.mm_to_px()[:2] @ np.array([265.0, -15.0, 1.0])
    r0, c0 = int(row) - 40, int(col) - 40
    albedo[r0:r0 + 80, c0:c0 + 80] = np.rot90(albedo[r0:r0 + 80, c0:c0 + 80]).copy()
    img = synth.photograph(albedo, synth.camera_homography(rng), synth.Lighting(), rng)
    assert register(img, synth.DEFAULT_LAYOUT).reprojection_mm < 0.5
