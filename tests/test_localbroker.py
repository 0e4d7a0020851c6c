"""The private broker keeps retained messages across a clean stop and start, and across a kill
once its autosave has run (persistence works)."""

import shutil
import subprocess

import pytest

from edge.errors import FabedgeError
from edge.telemetry.localbroker import LocalBroker


def _retain(b: LocalBroker, topic: str, text: str) -> None:
    subprocess.run([shutil.which("mosquitto_pub"), "-h", b.host, "-p", str(b.port), "-t", topic, "-m", text,
                    "-r", "-q", "1"], check=True, timeout=10)


def _retained(b: LocalBroker, topic: str) -> str:
    out = subprocess.run([shutil.which("mosquitto_sub"), "-h", b.host, "-p", str(b.port), "-t", topic,
                          "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def test_persistence_survives_restart(tmp_path):
    with LocalBroker(workdir=tmp_path / "b") as b:
        _retain(b, "t/x", "kept")
        b.stop()
        assert (tmp_path / "b" / "mosquitto.db").exists()
        b.start()
        assert _retained(b, "t/x") == "kept"


def test_wait_saved_lets_a_kill_keep_what_the_broker_held(tmp_path):
    with LocalBroker(workdir=tmp_path / "b") as b:
        _retain(b, "t/y", "saved")
        b.wait_saved()
        b.kill()                                   # no save at exit: only the autosave counts
        b.start()
        assert _retained(b, "t/y") == "saved"


def test_wait_saved_fails_clearly_without_persistence(tmp_path):
    with LocalBroker(workdir=tmp_path / "b", persistence=False) as b:
        with pytest.raises(FabedgeError, match="did not save"):
            b.wait_saved(timeout=2.5)
