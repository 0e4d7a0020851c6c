"""Shared test fixtures: a real mosquitto on a free loopback port, temp config."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.devcache import use_checkout_cache

ROOT = Path(__file__).resolve().parent.parent

use_checkout_cache(ROOT, prune=True)     # before anything imports numba


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on a free loopback port; kill()/start() it to test outages."""
    from edge.telemetry.localbroker import LocalBroker

    # LocalBroker stays root when we are root, so its persistence survives kill()/start().
    b = LocalBroker(workdir=tmp_path / "broker").start()
    yield b
    b.close()


@pytest.fixture
def fixtures_dir() -> Path:
    return ROOT / "tests" / "fixtures"
