"""The toolpath raster: first-layer extrusions and laser cut paths as label masks in bed mm."""

from __future__ import annotations

import numpy as np
import pytest

import vision_support as vs
from edge.errors import GcodeError
from edge.toolpath import raster
from edge.toolpath.model import SF_EXTRUDE, SF_LASER, SF_TRAVEL, Toolpath

BOUNDS = (0.0, 0.0, 100.0, 80.0)


def hand_toolpath(segments, objects=(), z=0.2, start=(0.0, 0.0, 0.2)) -> Toolpath:
    """segments: (x, y, de, flags, object) end points, one line each."""
    n = len(segments)
    arr = lambda i, dt: np.array([s[i] for s in segments], dt)  # noqa: E731
    zeros = lambda dt: np.zeros(n, dt)  # noqa: E731
    return Toolpath("hand.gcode", 0, zeros(np.int64), zeros(np.uint8), zeros(np.int16), zeros(np.uint8),
                    zeros(np.uint16), zeros(np.int32), zeros(np.float32), np.arange(n, dtype=np.int32),
                    arr(0, np.float32), arr(1, np.float32), np.full(n, z, np.float32), arr(2, np.float32),
                    zeros(np.float32), zeros(np.float32), arr(3, np.uint8), start=start,
                    first_layer=(0, n - 1), objects=list(objects), seg_object=arr(4, np.int16))


def e_for(length, width=0.45, height=0.2, d=1.75):
    return length * width * height / (np.pi * d * d / 4)


def test_first_layer_line_lands_in_bed_mm_with_its_width():
    # one 40 mm line at y=20 from x=10, extruded for a 0.9 mm wide line, at 0.1 mm/px
    tp = hand_toolpath([(10, 20, 0, SF_TRAVEL, -1), (50, 20, e_for(40, width=0.9), SF_EXTRUDE, -1)])
    r = raster.first_layer(tp, 0.1, BOUNDS)
    assert r.mask.shape == (800, 1000) and r.origin_mm == (0.0, 0.0)
    rows, cols = np.nonzero(r.mask)
    assert set(np.unique(r.mask)) == {0, 255}                       # no objects: 255
    # x from 10 to 50 mm (+ the half-width caps), y = 20 mm -> row (80 - 20) / 0.1 = 600 (row 0 is the back)
    assert cols.min() * 0.1 == pytest.approx(10 - 0.45, abs=0.15) and (cols.max() + 1) * 0.1 == pytest.approx(50 + 0.45, abs=0.15)
    assert rows.mean() == pytest.approx(600 - 0.5, abs=0.6)
    width_px = (r.mask[:, 300] > 0).sum()
    assert width_px * 0.1 == pytest.approx(0.9 + 0.1, abs=0.15)      # extruded width (+ half a pixel each side)
    assert r.line_width_mm == pytest.approx(0.9, rel=0.02)


def test_objects_get_their_own_labels_and_travel_is_not_drawn():
    tp = hand_toolpath([(10, 10, 0, SF_TRAVEL, -1), (30, 10, e_for(20), SF_EXTRUDE, 0),
                        (60, 60, 0, SF_TRAVEL, -1), (80, 60, e_for(20), SF_EXTRUDE, 1),
                        (90, 70, e_for(14), SF_EXTRUDE, -1)], objects=["a", "b"])
    r = raster.first_layer(tp, 0.5, BOUNDS)
    assert r.labels == [1, 2, 255]
    assert r.mask[int((80 - 10) / 0.5), int(20 / 0.5)] == 1
    assert r.mask[int((80 - 60) / 0.5), int(70 / 0.5)] == 2
    assert r.mask[int((80 - 35) / 0.5), int(45 / 0.5)] == 0          # the travel between them


def test_laser_cut_paths_only_where_the_laser_is_on():
    tp = hand_toolpath([(10, 10, 0, SF_TRAVEL, -1), (40, 10, 0, SF_LASER, -1), (40, 40, 0, SF_LASER, -1),
                        (70, 40, 0, SF_TRAVEL, -1)])
    tp.kind = "laser"
    r = raster.for_job(tp, 0.25, BOUNDS)
    assert r.kind == "cut"
    assert r.mask[int((80 - 10) / 0.25), int(25 / 0.25)] == 255
    assert r.mask[int((80 - 25) / 0.25), int(40 / 0.25)] == 255
    assert r.mask[int((80 - 40) / 0.25), int(55 / 0.25)] == 0


def test_nothing_extruded_is_a_clear_error():
    tp = hand_toolpath([(10, 10, 0, SF_TRAVEL, -1)])
    with pytest.raises(GcodeError, match="nothing is extruded"):
        raster.first_layer(tp, 0.5, BOUNDS)
    with pytest.raises(GcodeError, match="laser is never on"):
        raster.cut_paths(tp, 0.5, BOUNDS)


@pytest.mark.parametrize("name", ["prusa_screw_x3.gcode", "cura_cone.gcode", "prusa_bunny.gcode"])
def test_real_slicer_first_layers(name):
    tp = vs.load(vs.SLICER / name)
    r = raster.first_layer(tp, 0.5, (0.0, -4.0, 250.0, 210.0))
    area = (r.mask > 0).sum() * 0.25
    assert 100 < area < 250 * 214 * 0.5                              # a real first layer, not the whole bed
    rows, cols = np.nonzero(r.mask)
    x, y = cols.mean() * 0.5, 210 - rows.mean() * 0.5
    assert abs(x - 125) < 40 and abs(y - 105) < 40                   # the print sits mid-bed, as sliced


def test_real_laser_fixture_cut_paths():
    tp = vs.load(vs.SLICER / "laser_vector_plate.gcode")
    r = raster.for_job(tp, 0.25, (0.0, -4.0, 250.0, 210.0))
    assert r.kind == "cut"
    rows, cols = np.nonzero(r.mask)
    # the 80 x 60 mm plate at the origin
    assert cols.min() * 0.25 == pytest.approx(0, abs=0.5) and cols.max() * 0.25 == pytest.approx(80, abs=0.5)
