"""Shared test fixtures: a real mosquitto on a free loopback port, temp config."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _numba_cache_dir() -> str:
    """As the Makefile: keyed by the kernels' source (numba checks only the stamp of the file a
    kernel is defined in, so an edited helper it inlines from another file would stay stale);
    caches of older sources are removed."""
    sources = b"".join(p.read_bytes() for p in sorted((ROOT / "edge" / "toolpath").glob("*.py")))
    base = ROOT / ".cache" / "numba"
    here = base / hashlib.sha1(sources).hexdigest()[:12]
    if base.is_dir():
        for old in base.iterdir():
            if old != here:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return str(here)


if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()


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
