"""`fabedge doctor`: one line per thing the agent needs, OK / WARN / FAIL with what to do.

Each check is a small function of the config that returns a Check and never
raises: a lab manager runs this on a Pi that does not work yet, so every
failure must become a sentence, not a traceback. It is also run on a live
machine mid-print: what the running agent holds (the serial port, the panel
pins) is reported as in use and never opened or claimed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edge.config import Config

OK, INFO, WARN, FAIL = "OK", "INFO", "WARN", "FAIL"
AGENT_UNIT = "fabedge.service"


@dataclass(frozen=True)
class Check:
    status: str
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4} {self.name:<9} {self.message}"
        return f"{text}\n{'':14}-> {self.fix}" if self.fix and self.status != OK else text


def agent_active(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> bool:
    """Whether systemd runs the agent now: then its port and pins are in use, not broken."""
    try:
        return run(["systemctl", "is-active", "--quiet", AGENT_UNIT], timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _lock_refused(exc: BaseException) -> bool:
    """pyserial's exclusive open failed because another process holds the port's flock."""
    text = str(exc)
    return "exclusively lock" in text or "Resource temporarily unavailable" in text or "EAGAIN" in text


def check_serial(cfg: Config, timeout: float = 5.0, agent: bool = False) -> Check:
    """Open the port and handshake, unless the running agent owns it (never disturb a print)."""
    port = cfg.serial.port
    if not os.path.exists(port):
        return Check(FAIL, "serial", f"no device at {port}",
                     "plug in the machine's USB cable and power it on; `ls /dev/fabedge/` should list "
                     "'machine' (udev rules: /etc/udev/rules.d/99-fabedge.rules)")
    if not os.access(port, os.R_OK | os.W_OK):
        return Check(FAIL, "serial", f"{port}: permission denied",
                     "the agent's user must be in the 'dialout' group (make install does this)")
    if agent:
        return Check(INFO, "serial", f"{port}: in use by the running fabedge agent (not opened)")
    from edge.stream import open_driver

    driver = open_driver(cfg, lambda _event: None)
    try:
        connected = driver.open(timeout=timeout)
    except Exception as exc:  # any driver failure is reported, never raised
        if _lock_refused(exc):
            return Check(WARN, "serial", f"{port}: held by another program (not the {AGENT_UNIT} service; "
                                         f"not opened)",
                         f"if it is `fabedge run` in a terminal, that is fine; otherwise `fuser -v {port}` "
                         f"names it. Do not power-cycle the controller: a print may be running")
        return Check(FAIL, "serial", f"{port} @ {cfg.serial.baud}: the firmware does not answer ({exc})",
                     f"check serial.baud (the firmware's BAUDRATE) and serial.protocol = "
                     f"'{cfg.serial.protocol}'; power-cycle the controller")
    finally:
        try:
            driver.close()
        except Exception:
            pass
    return Check(OK, "serial", f"{port} answers: {connected.firmware}")


def check_camera(cfg: Config) -> Check:
    if cfg.camera.source == "none":
        return Check(WARN, "camera", "no camera configured (camera.source = 'none'): no inspection",
                     "set camera.source, e.g. 'v4l2:/dev/video0' or 'picamera2'")
    try:
        from drivers.camera import grab_frame
        from vision.registration import MarkerLayout, register

        frame = grab_frame(cfg.camera.source, cfg.camera.width, cfg.camera.height)
        h, w = frame.shape[:2]
        layout = MarkerLayout.from_list(cfg.camera.aruco_dictionary, cfg.camera.marker_size_mm,
                                        cfg.camera.markers)
        reg = register(frame, layout)
    except Exception as exc:
        return Check(FAIL, "camera", f"{cfg.camera.source}: {exc}",
                     "check the cable and that the four bed markers are visible and unobstructed")
    return Check(OK, "camera", f"{w}x{h} frames, {len(cfg.camera.markers)} markers, "
                               f"reprojection {reg.reprojection_mm:.2f} mm")


def check_gpio(cfg: Config, agent: bool = False) -> Check:
    """Claim every panel pin once, unless the running agent holds them (STOP must keep working)."""
    from drivers.gpio import GpioError, Pins

    p = cfg.panel
    buttons = [v for v in (p.start, p.pause, p.stop, p.bed_clear, p.reject) if v]
    leds = [v for v in (p.led_green, p.led_amber, p.led_red, p.led_blue) if v]
    if len(set(buttons + leds)) != len(buttons + leds):
        return Check(FAIL, "gpio", f"a BCM pin is used twice in [panel]: {sorted(buttons + leds)}",
                     "give every button and LED its own pin")
    if not buttons or p.start == 0 or p.stop == 0:
        return Check(FAIL, "gpio", "START and STOP buttons are required (panel.start, panel.stop)",
                     "wire START and STOP and set their pins")
    if agent:
        return Check(INFO, "gpio", f"{len(buttons) + len(leds)} panel pins held by the agent (not claimed)")
    try:
        with warnings.catch_warnings():  # gpiozero warns once per factory it falls back from
            warnings.simplefilter("ignore")
            pins = Pins(p.pin_factory)
    except GpioError as exc:
        return Check(FAIL, "gpio", str(exc), "on a Pi: the venv needs lgpio (`sudo make install` adds it on "
                                             "ARM); elsewhere set panel.pin_factory")
    try:
        for pin in buttons:
            pins.button(pin, 1.0, lambda: None, lambda: None)
        for pin in leds:
            pins.led(pin)
    except GpioError as exc:
        return Check(FAIL, "gpio", str(exc), "the pin is busy or not a GPIO: check [panel] and other services")
    finally:
        pins.close()
    return Check(OK, "gpio", f"{len(buttons) + len(leds)} panel pins claimed ({p.pin_factory})")


def check_broker(cfg: Config, timeout: float = 5.0) -> Check:
    from edge.telemetry.client import probe

    try:
        probe(cfg, timeout=timeout)
    except Exception as exc:
        return Check(FAIL, "broker", f"{cfg.broker.url}: {exc}",
                     "check broker.url, the network, and the credentials the region gave you")
    return Check(OK, "broker", f"{cfg.broker.url} accepts {cfg.broker.username or cfg.machine.id}")


def check_clock(cfg: Config) -> Check:
    from edge.telemetry.schema import clock

    if clock.synced():
        return Check(OK, "clock", "synchronised")
    return Check(WARN, "clock", "not synchronised: event times are marked unsynchronised",
                 "enable NTP (systemd-timesyncd or chrony) and allow UDP 123 out")


def check_disk(cfg: Config, warn_mb: float = 1024, fail_mb: float = 200) -> Check:
    path = Path(cfg.paths.state_dir)
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free_mb = shutil.disk_usage(probe).free / 1e6
    message = f"{probe}: {free_mb / 1000:.1f} GB free"
    if free_mb < fail_mb:
        return Check(FAIL, "disk", message, "free space: jobs and the outage spool need room")
    if free_mb < warn_mb:
        return Check(WARN, "disk", message, "less than 1 GB free: remove old jobs or use a larger card")
    return Check(OK, "disk", message)


def check_numba_cache(cfg: Config) -> Check:
    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(cfg.paths.cache_dir) / "numba")
    index = list(cache.rglob("*.nbi")) if cache.is_dir() else []
    if not index:
        return Check(WARN, "numba", f"cache empty ({cache}): the first job will compile (about a minute)",
                     "run `sudo make install` again, or `fabedge firstboot` warms it")
    return Check(OK, "numba", f"cache warm ({cache}, {len(index)} kernels)")


THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage has occurred",
                 18: "throttling has occurred"}


def check_power(cfg: Config, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                which: Callable[[str], str | None] = shutil.which) -> Check:
    if not which("vcgencmd"):
        return Check(OK, "power", "not a Raspberry Pi (no vcgencmd): skipped")
    try:
        out = run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5).stdout
        value = int(out.strip().split("=", 1)[1], 16)
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
        return Check(WARN, "power", f"vcgencmd get_throttled gave no answer ({exc})", "")
    problems = [text for bit, text in THROTTLE_BITS.items() if value & (1 << bit)]
    if value & 0b1111:
        return Check(FAIL, "power", ", ".join(problems), "use the official 5 V power supply and a short cable")
    if problems:
        return Check(WARN, "power", ", ".join(problems), "the supply sagged since boot: check it")
    return Check(OK, "power", "no under-voltage or throttling")


def run_all(cfg: Config, timeout: float = 5.0, agent: bool | None = None) -> list[Check]:
    """Every check in order; `agent` None asks systemd whether the agent is running."""
    live = agent_active() if agent is None else agent
    checks: list[Callable[[], Check]] = [
        lambda: check_serial(cfg, timeout, live), lambda: check_camera(cfg), lambda: check_gpio(cfg, live),
        lambda: check_broker(cfg, timeout), lambda: check_clock(cfg), lambda: check_disk(cfg),
        lambda: check_numba_cache(cfg), lambda: check_power(cfg),
    ]
    results = []
    for name, check in zip(("serial", "camera", "gpio", "broker", "clock", "disk", "numba", "power"), checks):
        try:
            results.append(check())
        except Exception as exc:  # a bug in one check must not hide the others
            results.append(Check(FAIL, name, f"check failed: {type(exc).__name__}: {exc}"))
    return results
