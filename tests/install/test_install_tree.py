"""`make install DESTDIR=<tmp>` builds the expected tree with a working fabedge and a warm numba cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PIP_"))}
    out = subprocess.run(["make", "-s", "-f", "install.mk", "install", f"DESTDIR={dest}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return dest


def test_tree(installed):
    d = installed
    assert (d / "opt/fabedge/bin/fabedge").is_file()
    assert os.readlink(d / "usr/local/bin/fabedge") == "/opt/fabedge/bin/fabedge"
    for path in ("etc/systemd/system/fabedge.service", "etc/systemd/system/fabedge-firstboot.service",
                 "etc/udev/rules.d/99-fabedge.rules", "etc/fabedge/fabedge.example.toml",
                 "opt/fabedge/share/doc/fabedge/README.md"):
        assert (d / path).is_file(), path
    assert (d / "var/lib/fabedge").is_dir()
    # Scripts name the final path, not the staging one.
    assert (d / "opt/fabedge/bin/fabedge").read_text().startswith("#!/opt/fabedge/bin/python")
    assert str(d) not in (d / "opt/fabedge/bin/activate").read_text()


def test_installed_fabedge_runs(installed):
    py = installed / "opt/fabedge/bin/python"
    out = subprocess.run([str(py), str(installed / "opt/fabedge/bin/fabedge"), "--version"],
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("fabedge ")
    # It runs the installed package, not the checkout.
    where = subprocess.run([str(py), "-c", "import edge; print(edge.__file__)"], capture_output=True,
                           text=True, cwd="/")
    assert where.stdout.startswith(str(installed / "opt/fabedge/lib"))


def test_numba_cache_warmed(installed):
    cache = installed / "var/cache/fabedge/numba"
    index_files = list(cache.rglob("*.nbi"))
    assert index_files, "make install must warm the numba cache"


def test_installed_units_verify(installed):
    for unit in (installed / "etc/systemd/system").glob("*.service"):
        text = unit.read_text().replace("/opt/fabedge/", f"{installed}/opt/fabedge/")
        probe = installed / f"verify-{unit.name}"
        probe.write_text(text)
        out = subprocess.run(["systemd-analyze", "verify", str(probe)], capture_output=True, text=True)
        assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


def test_uninstall(installed, tmp_path):
    out = subprocess.run(["make", "-s", "-f", "install.mk", "uninstall", f"DESTDIR={installed}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not (installed / "opt/fabedge").exists()
    assert not (installed / "usr/local/bin/fabedge").is_symlink()
    assert not (installed / "etc/systemd/system/fabedge.service").exists()
