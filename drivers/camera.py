"""The only module that opens cameras: frames from a V4L2 device through OpenCV
(exposure and white balance locked, so a reference image stays comparable),
from picamera2 on a Pi camera, or from a folder of images (replay and tests).

`open_camera(source, width, height)` takes the config string
`none | v4l2:/dev/video0 | picamera2 | folder:/path`. Every source returns
BGR uint8 frames of exactly width x height, or raises CameraError.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class CameraError(Exception):
    """A camera cannot be opened or gave no usable frame; one sentence for a person."""


class Camera(abc.ABC):
    """A source of frames. Use as a context manager or call close()."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height

    @abc.abstractmethod
    def grab(self) -> np.ndarray:
        """The next frame, BGR uint8, height x width x 3."""

    def close(self) -> None:
        """Release the device."""

    def __enter__(self) -> "Camera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, frame: np.ndarray | None, what: str) -> np.ndarray:
        if frame is None or not isinstance(frame, np.ndarray) or frame.size == 0:
            raise CameraError(f"{what}: no frame")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if frame.shape[:2] != (self.height, self.width):
            raise CameraError(f"{what}: frame is {frame.shape[1]}x{frame.shape[0]}, "
                              f"expected {self.width}x{self.height} (camera.width/height)")
        return frame


class FolderCamera(Camera):
    """Images from a folder in name order, one per grab, cycling (replay, tests, demos)."""

    def __init__(self, folder: str | Path, width: int, height: int, loop: bool = True):
        super().__init__(width, height)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CameraError(f"folder:{self.folder}: not a directory")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraError(f"folder:{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.loop, self.index = loop, 0

    def grab(self) -> np.ndarray:
        if self.index >= len(self.files):
            if not self.loop:
                raise CameraError(f"folder:{self.folder}: no more images")
            self.index = 0
        path = self.files[self.index]
        self.index += 1
        frame = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraError(f"{path}: not a decodable image")
        return self._check(frame, str(path))


class V4L2Camera(Camera):
    """A USB / CSI camera through OpenCV's V4L2 backend, with auto exposure and white balance locked."""

    def __init__(self, device: str, width: int, height: int, warmup_frames: int = 8):
        super().__init__(width, height)
        self.device = device
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise CameraError(f"v4l2:{device}: cannot open the camera (is it plugged in, and is the "
                              "fabedge user in the 'video' group?)")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        # let auto exposure / white balance settle, then freeze them where the driver allows
        for _ in range(warmup_frames):
            cap.grab()
        self.locked = {
            "exposure": bool(cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)),   # V4L2: 1 = manual
            "white_balance": bool(cap.set(cv2.CAP_PROP_AUTO_WB, 0)),
        }
        self.cap = cap

    def grab(self) -> np.ndarray:
        self.cap.grab()                      # drop the buffered (stale) frame
        ok, frame = self.cap.read()
        if not ok:
            raise CameraError(f"v4l2:{self.device}: the camera returned no frame")
        return self._check(frame, f"v4l2:{self.device}")

    def close(self) -> None:
        self.cap.release()


class Picamera2Camera(Camera):
    """The Raspberry Pi camera through picamera2, with exposure and colour gains locked after settling."""

    def __init__(self, width: int, height: int, settle_s: float = 1.0):
        super().__init__(width, height)
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise CameraError("picamera2: not installed (apt install python3-picamera2 on Raspberry Pi OS)") from None
        cam = Picamera2()
        cam.configure(cam.create_still_configuration(main={"size": (width, height), "format": "RGB888"}))
        cam.start()
        time.sleep(settle_s)
        meta = cam.capture_metadata()
        cam.set_controls({"AeEnable": False, "AwbEnable": False,
                          "ExposureTime": meta.get("ExposureTime", 10000),
                          "AnalogueGain": meta.get("AnalogueGain", 1.0),
                          "ColourGains": meta.get("ColourGains", (1.5, 1.5))})
        self.cam = cam

    def grab(self) -> np.ndarray:
        return self._check(self.cam.capture_array("main"), "picamera2")   # RGB888 is BGR in memory

    def close(self) -> None:
        self.cam.stop()
        self.cam.close()


def open_camera(source: str, width: int, height: int) -> Camera | None:
    """The camera a config's `camera.source` names; None for `none`; CameraError for anything else wrong."""
    if source in ("", "none"):
        return None
    if source == "picamera2":
        return Picamera2Camera(width, height)
    kind, _, arg = source.partition(":")
    if kind == "v4l2" and arg:
        return V4L2Camera(arg, width, height)
    if kind == "folder" and arg:
        return FolderCamera(arg, width, height)
    raise CameraError(f"camera.source = {source!r}: expected none, v4l2:/dev/videoN, picamera2 or folder:/path")


def grab_frame(source: str, width: int, height: int) -> np.ndarray:
    """One fresh frame, the device released again (a stale buffered frame is never judged)."""
    camera = open_camera(source, width, height)
    if camera is None:
        raise CameraError("no camera configured (camera.source = 'none')")
    with camera:
        return camera.grab()
