"""The toolpath engine: parse a G-code file into arrays (numba), plan it, find
its layers and check it against the machine. Public API:

    load(path, max_line_length=96, home=(0, 0, 0)) -> Toolpath
    command_lines(tp) -> Iterator[(line_no, bytes)]
    analyze(path, cfg) -> Analysis
    warm_cache() -> None      (compile every kernel once; `make install` runs it)
"""

from __future__ import annotations

from edge.toolpath.model import Toolpath
from edge.toolpath.parse import command_lines, load, strip_command

__all__ = ["Toolpath", "load", "command_lines", "strip_command", "analyze", "Analysis", "warm_cache"]


def __getattr__(name: str):
    # analysis imports checks/layers/plan: loaded on first use only.
    if name in ("analyze", "Analysis"):
        from edge.toolpath import analysis
        return getattr(analysis, name)
    raise AttributeError(name)


def warm_cache() -> None:
    """Run every numba kernel once on a tiny file so the cache (NUMBA_CACHE_DIR) is filled."""
    from edge.toolpath.analysis import warm
    warm()
