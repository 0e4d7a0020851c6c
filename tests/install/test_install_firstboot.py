"""First boot on a fake boot partition: a good file is installed, a bad one installs nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge import config, firstboot
from edge.cli import main

GOOD = """
[machine]
site = "fablab-north"
kind = "printer"
profile = "prusa-mk3s"

[broker]
url = "mqtts://region.example:8883"
password = "s3cret"

[[trust.keys]]
id = "region-2026"
public_key = "MCowBQYDK2VwAyEA"
operations = ["job.offer"]

[panel]
start = 17
"""


@pytest.fixture
def fake_pi(tmp_path):
    boot, etc, state = tmp_path / "boot", tmp_path / "etc" / "fabedge", tmp_path / "state"
    boot.mkdir()
    return boot, etc, state


def test_good_file_is_installed_and_secrets_leave_the_boot_partition(fake_pi):
    boot, etc, state = fake_pi
    (boot / "fabedge.toml").write_text(GOOD)
    (boot / "fabedge-ca.pem").write_text("CA")
    result = firstboot.provision(boot, etc, state, serial="10000000abcdef")
    assert result.ok, result.message
    status = (boot / "fabedge-status.txt").read_text()
    assert status.startswith("fabedge first boot: OK")
    assert "pi-10000000abcdef" in status
    assert not (boot / "fabedge.toml").exists() and not (boot / "fabedge-ca.pem").exists()
    cfg = config.load(etc / "fabedge.toml")
    assert cfg.machine.id == "pi-10000000abcdef"          # defaults to the Pi's serial
    assert cfg.broker.password_file == str(etc / "broker-password")
    assert cfg.broker.ca_file == str(etc / "ca.pem") and (etc / "ca.pem").read_text() == "CA"
    assert (etc / "broker-password").read_text().strip() == "s3cret"
    assert stat.S_IMODE((etc / "broker-password").stat().st_mode) in (0o600, 0o640)
    assert "s3cret" not in (etc / "fabedge.toml").read_text()
    assert cfg.trust.keys[0].operations == ["job.offer"]
    assert state.is_dir()


@pytest.mark.parametrize("text, key, reason", [
    ('[machine]\nid = "m1"\nkind = "boat"\n', "machine.kind = 'boat'", "allowed values"),
    ('[machine]\nid = "m1"\n[serial]\nbaud = "fast"\n', "serial.baud", "expected a whole number"),
    ('[machine]\nid = "m1"\n[brokr]\nurl = "mqtt://x"\n', "'brokr'", "unknown key"),
    ('[machine]\nid = "m1"\n[broker]\npassword = 5\n', "broker.password", "must be a string"),
    ('[machine\nid = "m1"\n', "fabedge.toml", "not valid TOML"),
    ('[machine]\nkind = "printer"\n', "machine.id", "not a Pi"),
])
def test_bad_file_names_key_and_reason_and_installs_nothing(fake_pi, text, key, reason):
    boot, etc, state = fake_pi
    (boot / "fabedge.toml").write_text(text)
    (boot / "fabedge-client.key").write_text("KEY")
    result = firstboot.provision(boot, etc, state, serial="")
    assert not result.ok
    status = (boot / "fabedge-status.txt").read_text()
    assert status.startswith("fabedge first boot: FAILED")
    assert key in status and reason in status
    assert not etc.exists() or not any(etc.iterdir())     # nothing half-installed
    assert (boot / "fabedge.toml").exists() and (boot / "fabedge-client.key").exists()  # kept for fixing


def test_bad_file_keeps_the_previous_config(fake_pi):
    boot, etc, state = fake_pi
    etc.mkdir(parents=True)
    (etc / "fabedge.toml").write_text('[machine]\nid = "old"\n')
    (boot / "fabedge.toml").write_text('[machine]\nid = "new"\n[volume]\nx = [5, 1]\n')
    assert not firstboot.provision(boot, etc, state).ok
    assert config.load(etc / "fabedge.toml").machine.id == "old"


def test_cli_exit_codes(fake_pi, capsys):
    boot, etc, state = fake_pi
    (boot / "fabedge.toml").write_text('[machine]\nid = "m7"\nsite = "s"\n')
    args = ["firstboot", "--boot", str(boot), "--etc", str(etc), "--state", str(state), "--no-warm"]
    assert main(args) == 0
    assert "OK: installed printer 'm7'" in capsys.readouterr().out
    (boot / "fabedge.toml").write_text('[machine]\nid = "m7"\nkind = 3\n')
    assert main(args) == 2
    assert "machine.kind = 3" in capsys.readouterr().out


def test_pi_serial_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nSerial\t\t: 00000000deadbeef\n")
    assert firstboot.pi_serial(cpuinfo, tmp_path / "none") == "deadbeef"
    dt = tmp_path / "sn"
    dt.write_bytes(b"10000000cafe\0")
    assert firstboot.pi_serial(cpuinfo, dt) == "10000000cafe"
