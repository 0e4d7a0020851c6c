"""The operator panel: what the buttons mean and what the LEDs show.

Buttons only post events to the agent's queue, with one exception: STOP calls
its `stop_hook` directly from the button thread, so feeding stops within
milliseconds whatever the loop is doing. Hold durations are measured here with
monotonic timestamps at press and release (gpiozero clears `held_time` before
`when_released` runs).

LEDs: green = ready (idle / staged), amber = blinking armed / steady running or
paused, red = fault or refused, blue = broker connected.
"""

from __future__ import annotations

import time
from typing import Callable

from drivers.gpio import GpioError, Pins
from edge.config import PanelSection
from edge.errors import FabedgeError
from edge.events import AgentEvent, BedCleared, PauseToggled, StartPressed, StopHeld, StopPressed

Post = Callable[[AgentEvent], None]


class Panel:
    """Buttons and LEDs of one machine; pins that are 0 in config are not fitted."""

    def __init__(self, cfg: PanelSection, post: Post, stop_hook: Callable[[], None] | None = None,
                 pins: Pins | None = None) -> None:
        self.cfg = cfg
        self.post = post
        self.stop_hook = stop_hook
        try:
            self._build(pins)
        except GpioError as exc:
            raise FabedgeError(f"operator panel: {exc}") from None

    def _build(self, pins: Pins | None) -> None:
        cfg = self.cfg
        self.pins = pins or Pins(cfg.pin_factory)
        self._down: dict[str, float] = {}
        self._leds = {}
        self._shown: dict[str, str] = {}
        hold = {"stop": cfg.stop_cancel_hold_s}
        for name in ("start", "pause", "stop", "bed_clear", "reject"):
            pin = getattr(cfg, name)
            if pin:
                self.pins.button(pin, hold.get(name, 1.0),
                                 on_press=lambda n=name: self._pressed(n),
                                 on_release=lambda n=name: self._released(n),
                                 on_held=(self._stop_held if name == "stop" else None))
        for name in ("green", "amber", "red", "blue"):
            pin = getattr(cfg, f"led_{name}")
            if pin:
                self._leds[name] = self.pins.led(pin)

    # ---- buttons (gpiozero's thread) ---------------------------------------------
    def _pressed(self, name: str) -> None:
        self._down[name] = time.monotonic()
        if name == "stop":
            if self.stop_hook is not None:
                try:
                    self.stop_hook()
                finally:
                    self.post(StopPressed())
            else:
                self.post(StopPressed())
        elif name == "pause":
            self.post(PauseToggled())

    def _stop_held(self) -> None:
        self.post(StopHeld())

    def _released(self, name: str) -> None:
        t0 = self._down.pop(name, None)
        if t0 is None:
            return
        held = time.monotonic() - t0
        if name == "start":
            self.post(StartPressed(held_s=held))
        elif name == "bed_clear":
            if held >= self.cfg.reject_hold_s:
                self.post(BedCleared("rejected"))
            elif held >= self.cfg.bed_clear_hold_s:
                self.post(BedCleared("good"))
        elif name == "reject" and held >= self.cfg.bed_clear_hold_s:
            self.post(BedCleared("rejected"))

    # ---- LEDs (the loop's thread) ------------------------------------------------
    def show(self, machine_state: str, link_up: bool, alert: bool = False) -> None:
        """Set the LEDs for a machine state; `alert` lights red (a refused START, a failed check)."""
        want = {
            "green": "on" if machine_state in ("idle", "staged") else "off",
            "amber": {"armed": "blink", "running": "on", "paused": "blink_slow",
                      "awaiting_bed_clear": "on", "interrupted": "blink"}.get(machine_state, "off"),
            "red": "on" if machine_state in ("fault", "interrupted") or alert else "off",
            "blue": "on" if link_up else "off",
        }
        for name, mode in want.items():
            led = self._leds.get(name)
            if led is None or self._shown.get(name) == mode:
                continue
            self._shown[name] = mode
            if mode == "on":
                led.on()
            elif mode == "off":
                led.off()
            elif mode == "blink":
                led.blink(on_time=0.4, off_time=0.4)
            else:
                led.blink(on_time=1.0, off_time=1.0)

    @property
    def leds(self) -> dict[str, str]:
        """What each LED is doing: on | off | blink | blink_slow."""
        return dict(self._shown)

    def close(self) -> None:
        self.pins.close()
