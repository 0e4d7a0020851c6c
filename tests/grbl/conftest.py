"""GRBL test fixture: a virtual GRBL on a pty with a GrblDriver opened on it."""

from __future__ import annotations

import pytest

from drivers.grbl import GrblDriver
from drivers.sim.grbl import VirtualGrbl
from grbl_helpers import Recorder


@pytest.fixture
def rig():
    """make(sim_kwargs, driver_kwargs) -> (sim, driver, recorder); everything is closed afterwards."""
    made = []

    def make(driver_kwargs: dict | None = None, **sim_kwargs):
        sim = VirtualGrbl(**{"time_scale": 50.0, **sim_kwargs})
        path = sim.start()
        rec = Recorder()
        drv = GrblDriver(path, sim.baud, rec, **(driver_kwargs or {}))
        made.append((sim, drv))
        drv.open(timeout=5)
        return sim, drv, rec

    yield make
    for sim, drv in made:
        drv.close()
        sim.stop()
