"""The private broker keeps retained messages across a clean stop and start (persistence works)."""

import shutil
import subprocess

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
