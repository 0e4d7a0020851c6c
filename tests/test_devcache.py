"""The checkout's numba cache follows the kernels' source, so an edited helper is never stale."""

from __future__ import annotations

import subprocess

from edge import devcache


def _tree(tmp_path, text: str):
    src = tmp_path / "edge" / "toolpath"
    src.mkdir(parents=True, exist_ok=True)
    (src / "parse_kernel.py").write_text("def parse(): pass\n")
    (src / "parse_move.py").write_text(text)
    return tmp_path


def test_editing_any_kernel_source_gives_a_new_cache_and_prunes_the_old(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    root = _tree(tmp_path, "def move(): return 1\n")
    first = devcache.use_checkout_cache(root, prune=True)
    (tmp_path / ".cache" / "numba").mkdir(parents=True, exist_ok=True)
    (root / ".cache" / "numba" / devcache.source_key(root)).mkdir()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    _tree(tmp_path, "def move(): return 2\n")           # only the inlined helper changes
    second = devcache.use_checkout_cache(root, prune=True)
    assert first != second
    assert [p.name for p in (root / ".cache" / "numba").iterdir()] == []   # the stale one is gone


def test_an_explicit_numba_cache_dir_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert devcache.use_checkout_cache(_tree(tmp_path, "x = 1\n"), prune=True) == str(tmp_path / "mine")


def test_the_makefile_computes_the_same_key():
    out = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-p", "-n", "test"],
                         cwd=devcache.ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("NUMBA_CACHE_DIR") and "$(" not in ln]
    assert lines and lines[0].rstrip().endswith("/" + devcache.source_key())
