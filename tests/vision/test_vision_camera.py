"""drivers/camera.py: the folder source for real, device sources with cv2.VideoCapture mocked (no camera here)."""

from __future__ import annotations

from unittest import mock

import cv2
import numpy as np
import pytest

from drivers import camera
from drivers.camera import CameraError, FolderCamera, open_camera


def _write(folder, name, w=320, h=240, value=0):
    img = np.full((h, w, 3), value, np.uint8)
    cv2.imwrite(str(folder / name), img)


def test_folder_source_replays_images_in_name_order_and_cycles(tmp_path):
    for i, v in enumerate((10, 20, 30)):
        _write(tmp_path, f"frame-{i}.png", value=v)
    (tmp_path / "notes.txt").write_text("not an image")
    cam = open_camera(f"folder:{tmp_path}", 320, 240)
    assert isinstance(cam, FolderCamera)
    with cam:
        values = [int(cam.grab()[0, 0, 0]) for _ in range(4)]
    assert values == [10, 20, 30, 10]


def test_folder_source_rejects_wrong_size_and_corrupt_images(tmp_path):
    _write(tmp_path, "a.png", w=640, h=480)
    with pytest.raises(CameraError, match="640x480, expected 320x240"):
        FolderCamera(tmp_path, 320, 240).grab()
    (tmp_path / "a.png").unlink()
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CameraError, match="not a decodable image"):
        FolderCamera(tmp_path, 320, 240).grab()


def test_folder_source_errors_name_the_folder(tmp_path):
    with pytest.raises(CameraError, match="no images"):
        open_camera(f"folder:{tmp_path}", 320, 240)
    with pytest.raises(CameraError, match="not a directory"):
        open_camera(f"folder:{tmp_path / 'missing'}", 320, 240)


def test_config_strings():
    assert open_camera("none", 1280, 720) is None
    with pytest.raises(CameraError, match="expected none, v4l2"):
        open_camera("usb0", 1280, 720)


class FakeCapture:
    """Stands in for cv2.VideoCapture: there is no camera device on the build machine."""

    def __init__(self, device, api):
        self.device, self.api, self.props, self.released = device, api, {}, False

    def isOpened(self):
        return self.device == "/dev/video0"

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def grab(self):
        return True

    def read(self):
        return True, np.zeros((720, 1280, 3), np.uint8)

    def release(self):
        self.released = True


def test_v4l2_locks_exposure_and_white_balance():
    with mock.patch.object(camera.cv2, "VideoCapture", FakeCapture):
        cam = open_camera("v4l2:/dev/video0", 1280, 720)
        frame = cam.grab()
        props = cam.cap.props
        cam.close()
    assert frame.shape == (720, 1280, 3)
    assert props[cv2.CAP_PROP_AUTO_EXPOSURE] == 1 and props[cv2.CAP_PROP_AUTO_WB] == 0
    assert props[cv2.CAP_PROP_FRAME_WIDTH] == 1280 and cam.cap.released
    assert cam.locked == {"exposure": True, "white_balance": True}


def test_v4l2_missing_device_is_a_clear_error():
    with mock.patch.object(camera.cv2, "VideoCapture", FakeCapture):
        with pytest.raises(CameraError, match="v4l2:/dev/video7: cannot open"):
            open_camera("v4l2:/dev/video7", 1280, 720)


def test_picamera2_absent_is_a_clear_error():
    with mock.patch.dict("sys.modules", {"picamera2": None}):
        with pytest.raises(CameraError, match="picamera2: not installed"):
            open_camera("picamera2", 1280, 720)
