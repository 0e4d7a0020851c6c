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


def _fake_pigen(tmp_path: Path) -> Path:
    pigen = tmp_path / "pi-gen"
    pigen.mkdir()
    for name in ("build.sh", "build-docker.sh"):
        (pigen / name).write_text(f"#!/bin/sh\ntouch {pigen}/RAN\n")
        (pigen / name).chmod(0o755)
    return pigen


def test_make_image_refuses_an_image_nobody_can_log_in_to(tmp_path):
    pigen = _fake_pigen(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("FIRST_USER_PASS", "PUBKEY_SSH_FIRST_USER")}
    out = subprocess.run(["make", "-s", "image"], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "PIGEN_DIR": str(pigen)}, timeout=60)
    assert out.returncode == 2
    assert "'lab' user needs a way to log in" in out.stderr
    assert "PUBKEY_SSH_FIRST_USER" in out.stderr and "FIRST_USER_PASS" in out.stderr
    assert not (pigen / "RAN").exists() and not (pigen / "config").exists()


def test_image_config_keeps_no_password_and_docs_agree():
    config = (ROOT / "image" / "config").read_text()
    assert "DISABLE_FIRST_BOOT_USER_RENAME=1" in config and "FIRST_USER_NAME=lab" in config
    assert not any(line.startswith(("FIRST_USER_PASS", "PUBKEY_SSH")) for line in config.splitlines())
    build = (ROOT / "image" / "build.sh").read_text()
    assert "printf 'FIRST_USER_PASS=%q\\n'" in build and "PUBKEY_ONLY_SSH=1" in build
    docs = (ROOT / "docs" / "install.md").read_text()
    assert "PUBKEY_SSH_FIRST_USER" in docs and "FIRST_USER_PASS" in docs
    packages = (STAGE / "00-packages" / "00-packages").read_text().split()
    assert {"swig", "liblgpio-dev"} <= set(packages)   # lgpio's sdist builds if no wheel fits
