"""The private broker keeps retained messages across a clean stop and start (persistence works)."""

import shutil
import subprocess

import pytest

from edge.errors import FabedgeError

from edge.telemetry.localbroker import LocalBroker


def test_persistence_survives_restart(tmp_path):
    sub, pub = shutil.which("mosquitto_sub"), shutil.which("mosquitto_pub")
    with LocalBroker(workdir=tmp_path / "b") as b:
        subprocess.run([pub, "-h", b.host, "-p", str(b.port), "-t", "t/x", "-m", "kept", "-r", "-q", "1"],
                       check=True, timeout=10)
        b.stop()
        assert (tmp_path / "b" / "mosquitto.db").exists()
        b.start()
        out = subprocess.run([sub, "-h", b.host, "-p", str(b.port), "-t", "t/x", "-C", "1", "-W", "5"],
                             capture_output=True, text=True, timeout=10)
        assert out.stdout.strip() == "kept"


def test_wait_saved_lets_a_kill_keep_what_the_broker_held(tmp_path):
    sub, pub = shutil.which("mosquitto_sub"), shutil.which("mosquitto_pub")
    with LocalBroker(workdir=tmp_path / "b") as b:
        subprocess.run([pub, "-h", b.host, "-p", str(b.port), "-t", "t/y", "-m", "saved", "-r", "-q", "1"],
                       check=True, timeout=10)
        b.wait_saved()
        b.kill()                                   # no save at exit: only the autosave counts
        b.start()
        out = subprocess.run([sub, "-h", b.host, "-p", str(b.port), "-t", "t/y", "-C", "1", "-W", "5"],
                             capture_output=True, text=True, timeout=10)
        assert out.stdout.strip() == "saved"


def test_wait_saved_fails_clearly_without_persistence(tmp_path):
    with LocalBroker(workdir=tmp_path / "b", persistence=False) as b:
        with pytest.raises(FabedgeError, match="did not save"):
            b.wait_saved(timeout=2.5)
