"""Marlin test fixture: a virtual Marlin on a real pty with a MarlinDriver opened on it through pyserial."""

from __future__ import annotations

import pytest

from drivers.marlin import MarlinDriver
from drivers.sim.marlin import VirtualMarlin
from marlin_helpers import Recorder


@pytest.fixture
def rig():
    """make(driver_kwargs=None, **sim_kwargs) -> (sim, driver, recorder); all closed afterwards."""
    made = []

    def make(driver_kwargs: dict | None = None, open_driver: bool = True, **sim_kwargs):
        sim = VirtualMarlin(**{"time_scale": 50.0, "advanced_ok": True, **sim_kwargs})
        path = sim.start()
        rec = Recorder()
        # short silences (time-scaled sims) but patient before giving up: CI boxes stall at times
        drv = MarlinDriver(path, sim.baud, rec, **{"timeout_s": 0.25, "probe_attempts": 8, **(driver_kwargs or {})})
        made.append((sim, drv))
        if open_driver:
            drv.open(timeout=5)
        return sim, drv, rec

    yield make
    for sim, drv in made:
        drv.close()
        sim.stop()
