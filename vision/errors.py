"""Errors vision reports to a person (vision/ never imports edge/, so it has its own)."""

from __future__ import annotations


class VisionError(Exception):
    """An image cannot be inspected; the message is one sentence saying why."""


class ImageError(VisionError):
    """An image is unreadable, empty or of the wrong size."""


class RegistrationError(VisionError):
    """The bed markers cannot be found or do not fit the configured layout."""


class MarkersMissing(RegistrationError):
    """Some of the configured ArUco markers are not visible."""

    def __init__(self, missing: list[int], found: list[int]):
        self.missing, self.found = missing, found
        super().__init__(f"bed markers not found: id(s) {', '.join(map(str, missing))} missing "
                         f"(found {found or 'none'}); check that nothing covers them and the lamp is on")


class CameraMoved(RegistrationError):
    """The markers are not where the reference image has them."""
