"""The pi-gen stage is well formed and `make image` says what it needs where pi-gen is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / "image" / "stage-fabedge"


def test_stage_layout():
    assert (STAGE / "EXPORT_IMAGE").exists()
    scripts = [STAGE / "prerun.sh", *sorted((STAGE / "01-fabedge").glob("*.sh"))]
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} must be executable"
        out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    chroot = (STAGE / "01-fabedge" / "01-run-chroot.sh").read_text()
    assert "install.mk install" in chroot and "fabedge-firstboot.service" in chroot
    packages = (STAGE / "00-packages" / "00-packages").read_text().split()
    assert "python3-venv" in packages and "mosquitto-clients" in packages
    config = (ROOT / "image" / "config").read_text()
    assert 'STAGE_LIST="stage0 stage1 stage2 stage-fabedge"' in config


def test_make_image_without_pigen_says_what_it_needs(tmp_path):
    env = {**os.environ, "PIGEN_DIR": str(tmp_path / "no-pi-gen")}
    out = subprocess.run(["make", "-s", "image"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0
    assert f"pi-gen not found at {tmp_path / 'no-pi-gen'}" in out.stderr
    assert "PIGEN_DIR" in out.stderr
