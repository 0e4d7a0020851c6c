"""`fabedge keys gen` / `keys sign` round trip: the CLI's envelope passes the gate of a
machine configured with the printed snippet; any one changed byte fails it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import tomllib

import pytest

from edge import config
from edge.cli import main
from edge.telemetry.commands import CommandGate, CommandRejected, Replayed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keyset(tmp_path, capsys):
    code, out, err = cli(capsys, "keys", "gen", "--out", str(tmp_path / "keys"), "--id", "region-test")
    assert code == 0, err
    return tmp_path / "keys", out


def machine(tmp_path, snippet: str) -> config.Config:
    text = f'[machine]\nid = "prusa-01"\nsite = "fablab-north"\n{snippet}'
    return config.loads(text, source="test.toml")


def test_gen_writes_private_key_0600_and_prints_trust_snippet(keyset, tmp_path):
    keys, snippet = keyset
    assert stat.S_IMODE((keys / "region-test.key").stat().st_mode) == 0o600
    entry = tomllib.loads(snippet)["trust"]["keys"][0]
    assert entry["id"] == "region-test" and entry["operations"] == ["*"]
    assert entry["public_key"] == (keys / "region-test.pub").read_text().strip()
    assert b"BEGIN PRIVATE KEY" in (keys / "region-test.key").read_bytes()


def test_gen_refuses_to_overwrite(keyset, capsys):
    keys, _ = keyset
    code, _, err = cli(capsys, "keys", "gen", "--out", str(keys), "--id", "region-test")
    assert code == 1 and "already exists" in err


def test_signed_envelope_passes_gate_and_every_changed_byte_fails(keyset, tmp_path, capsys):
    keys, snippet = keyset
    gate = CommandGate(machine(tmp_path, snippet), tmp_path / "c.db")
    code, out, err = cli(capsys, "keys", "sign", "--key", str(keys / "region-test.key"),
                         "--machine", "fablab-north/prusa-01", "--op", "job.cancel",
                         "--args", '{"job_id": "j-7"}', "--id", "cli-1")
    assert code == 0, err
    assert "fabedge/v1/fablab-north/prusa-01/cmd/req" in err
    payload = out.strip().encode()
    for i in range(len(payload)):
        changed = bytearray(payload)
        changed[i] = ord("A") if payload[i] != ord("A") else ord("B")
        with pytest.raises(CommandRejected) as info:
            gate.check(bytes(changed), False, "running")
        assert not isinstance(info.value, Replayed), f"byte {i} changed and the command was still accepted"
    cmd = gate.check(payload, False, "running")
    assert (cmd.id, cmd.op, cmd.args, cmd.key) == ("cli-1", "job.cancel", {"job_id": "j-7"}, "region-test")
    assert cmd.exp - cmd.iat == 300 and abs(cmd.iat - time.time()) < 5
    gate.close()


def test_key_restricted_to_operations(tmp_path, capsys):
    code, snippet, _ = cli(capsys, "keys", "gen", "--out", str(tmp_path), "--id", "tele",
                           "--operations", "telemetry.rate,resync")
    assert code == 0
    gate = CommandGate(machine(tmp_path, snippet), tmp_path / "c.db")
    _, out, _ = cli(capsys, "keys", "sign", "--key", str(tmp_path / "tele.key"), "--machine", "prusa-01",
                    "--site", "fablab-north", "--op", "job.pause")
    with pytest.raises(CommandRejected) as info:
        gate.check(out.strip().encode(), False, "running")
    assert info.value.code == "not_allowed"
    gate.close()


@pytest.mark.parametrize("argv, fragment", [
    (["--machine", "prusa-01", "--op", "resync"], "SITE/MACHINE"),
    (["--machine", "a/b", "--op", "job.cancel", "--args", "{"], "not valid JSON"),
    (["--machine", "a/b", "--op", "job.cancel", "--args", "[]"], "JSON object"),
    (["--machine", "a/b", "--op", "job.cancel", "--args", "{}"], "job_id"),
    (["--machine", "a/b", "--op", "resync", "--ttl", "0"], "--ttl"),
])
def test_sign_usage_errors_are_one_line(keyset, capsys, argv, fragment):
    keys, _ = keyset
    code, out, err = cli(capsys, "keys", "sign", "--key", str(keys / "region-test.key"), *argv)
    assert code == 1 and fragment in err and out == "" and "Traceback" not in err


def test_unreadable_key_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.key").write_text("hello")
    code, _, err = cli(capsys, "keys", "sign", "--key", str(tmp_path / "bad.key"), "--machine", "a/b", "--op", "resync")
    assert code == 1 and "bad.key" in err


def test_cli_process_pipes_into_gate(keyset, tmp_path):
    """The installed entry point, as a person would run it (python -m edge)."""
    keys, snippet = keyset
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "edge", "keys", "sign", "--key", str(keys / "region-test.key"),
                           "--machine", "fablab-north/prusa-01", "--op", "telemetry.rate",
                           "--args", '{"interval_s": 1.5}'], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    gate = CommandGate(machine(tmp_path, snippet), tmp_path / "c.db")
    assert gate.check(proc.stdout.strip(), False, "idle").args == {"interval_s": 1.5}
    assert json.loads(proc.stdout)["aud"] == "fablab-north/prusa-01"
    gate.close()
