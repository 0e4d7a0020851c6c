"""Where a source checkout keeps its numba cache (tests, benchmarks, `make`).

Keyed by the kernels' source: numba checks only the stamp of the file a kernel is defined
in, so an edited helper it inlines from another file (parse_move into parse_kernel) would
otherwise load a stale compiled kernel. Imports no numba: the directory must be chosen
before numba reads NUMBA_CACHE_DIR. Installed systems use /var/cache/fabedge (a fresh
install writes every source file, so numba's own stamps suffice there).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_key(root: Path = ROOT) -> str:
    """The Makefile computes the same: sha1 of edge/toolpath/*.py in name order, 12 hex digits."""
    sources = b"".join(p.read_bytes() for p in sorted((root / "edge" / "toolpath").glob("*.py")))
    return hashlib.sha1(sources).hexdigest()[:12]


def use_checkout_cache(root: Path = ROOT, prune: bool = False) -> str:
    """Set NUMBA_CACHE_DIR to the checkout's cache for this source (unless already set) and
    return it; `prune` removes caches of other sources."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return os.environ["NUMBA_CACHE_DIR"]
    base = root / ".cache" / "numba"
    here = base / source_key(root)
    if prune and base.is_dir():
        for old in base.iterdir():
            if old != here:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(here)
    return str(here)
