"""The operator panel's wires: buttons and LEDs over a swappable gpiozero pin factory.

The only module that imports gpiozero. The same code runs on a Pi (lgpio,
RPi.GPIO, pigpio) and in tests or `fabedge demo` on gpiozero's MockFactory,
where `press()` / `release()` drive a pin the way a finger would. Buttons are
wired between the pin and ground (internal pull-up): pressed reads low.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from gpiozero import LED, Button, Device

# factory name in config -> (module, class)
_FACTORIES = {
    "mock": ("gpiozero.pins.mock", "MockFactory"),
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


class GpioError(Exception):
    """The pins cannot be used; the message says which and why."""


def make_factory(name: str) -> Any:
    """The pin factory named in config (`auto` lets gpiozero pick the best available)."""
    if name == "auto":
        try:
            return Device._default_pin_factory()
        except Exception as exc:  # gpiozero raises BadPinFactory with a long chain
            raise GpioError(f"no GPIO library usable on this machine ({exc}); set panel.pin_factory "
                            "= 'mock' to run without a panel") from None
    if name not in _FACTORIES:
        raise GpioError(f"unknown pin factory {name!r}: use auto, {', '.join(_FACTORIES)}")
    module, cls = _FACTORIES[name]
    try:
        return getattr(importlib.import_module(module), cls)()
    except Exception as exc:
        raise GpioError(f"pin factory {name!r} cannot start: {exc}") from None


class Pins:
    """Buttons and LEDs built on one factory; closes them all together."""

    def __init__(self, factory_name: str) -> None:
        self.factory_name = factory_name
        self.factory = make_factory(factory_name)
        self._devices: list[Any] = []

    @property
    def is_mock(self) -> bool:
        return self.factory_name == "mock"

    def button(self, pin: int, hold_time: float, on_press: Callable[[], None],
               on_release: Callable[[], None], on_held: Callable[[], None] | None = None) -> Button:
        """A pull-up button; callbacks run in gpiozero's thread and must only hand on."""
        try:
            b = Button(pin, pull_up=True, bounce_time=None, hold_time=hold_time, pin_factory=self.factory)
        except Exception as exc:
            raise GpioError(f"button on BCM pin {pin} cannot be used: {exc}") from None
        b.when_pressed = lambda *_: on_press()
        b.when_released = lambda *_: on_release()
        if on_held is not None:
            b.when_held = lambda *_: on_held()
        self._devices.append(b)
        return b

    def led(self, pin: int) -> LED:
        try:
            led = LED(pin, pin_factory=self.factory)
        except Exception as exc:
            raise GpioError(f"LED on BCM pin {pin} cannot be used: {exc}") from None
        self._devices.append(led)
        return led

    # ---- mock only: a simulated finger -------------------------------------
    def press(self, pin: int) -> None:
        self._mock_pin(pin).drive_low()

    def release(self, pin: int) -> None:
        self._mock_pin(pin).drive_high()

    def level(self, pin: int) -> bool:
        """Output level of a pin (mock): True = LED lit."""
        return bool(self._mock_pin(pin).state)

    def _mock_pin(self, pin: int) -> Any:
        if not self.is_mock:
            raise GpioError("buttons can only be pressed by software on mock pins")
        return self.factory.pin(pin)

    def close(self) -> None:
        for d in reversed(self._devices):
            try:
                d.close()
            except Exception:
                pass
        self._devices.clear()
        try:
            self.factory.close()
        except Exception:
            pass
