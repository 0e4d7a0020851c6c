"""Shared test fixtures: a real mosquitto on a free loopback port, temp config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on a free loopback port; kill()/start() it to test outages."""
    from edge.telemetry.localbroker import LocalBroker

    # As root, mosquitto drops to the 'mosquitto' user, which cannot write its persistence file
    # into the root-owned tmp_path: sessions and retained messages would not survive kill()/start().
    stay_root = "user root" if os.geteuid() == 0 else ""
    b = LocalBroker(workdir=tmp_path / "broker", extra_conf=stay_root).start()
    yield b
    b.close()


@pytest.fixture
def fixtures_dir() -> Path:
    return ROOT / "tests" / "fixtures"
