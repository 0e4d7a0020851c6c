"""config/mosquitto/bridge-site.conf between two real mosquittos: a site broker (machines,
ACL) bridged to a regional broker (ACL, bridge user). Reports go up with their retained flag,
commands come down, and QoS 1 events published while the region is down arrive after it
returns (persistent sessions on both sides, persistence on the site broker)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cmd_mqtt import Peer, secured_broker

BRIDGE_CONF = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "bridge-site.conf"
REGION_USERS = {"region": "r-secret", "bridge-fablab-north": "bridge-secret"}
SITE_USERS = {"prusa-01": "m-secret"}
M = "fabedge/v1/fablab-north/prusa-01"


def bridge_conf(region_port: int) -> str:
    """The shipped example with this test's address and password, TLS files dropped (no TLS here)."""
    text = BRIDGE_CONF.read_text()
    assert "address broker.region.example:8883" in text and "cleansession false" in text
    text = text.replace("address broker.region.example:8883", f"address 127.0.0.1:{region_port}")
    text = text.replace("remote_password CHANGE-ME-bridge", f"remote_password {REGION_USERS['bridge-fablab-north']}")
    text = re.sub(r"^restart_timeout .*$", "restart_timeout 1", text, flags=re.M)
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("bridge_cafile", "bridge_certfile", "bridge_keyfile")))


@pytest.fixture
def brokers(tmp_path):
    region = secured_broker(tmp_path / "region", REGION_USERS)
    site = secured_broker(tmp_path / "site", SITE_USERS, extra=bridge_conf(region.port))
    yield region, site
    site.close()
    region.close()


def wait_bridge(region: Peer, machine: Peer, timeout: float = 10.0) -> None:
    """Publish probes until one crosses the bridge (it connects asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        machine.publish(f"{M}/tele", b"probe", qos=1)
        if any(m[1] == b"probe" for m in region.drain(0.2)):
            return
    pytest.fail("the bridge did not connect to the regional broker")


def test_reports_go_up_and_commands_come_down(brokers):
    region_broker, site_broker = brokers
    region = Peer(region_broker, "region", "r-secret").ok()
    region.subscribe("fabedge/v1/#")
    machine = Peer(site_broker, "prusa-01", "m-secret").ok()
    machine.subscribe(f"{M}/cmd/req")
    wait_bridge(region, machine)
    machine.publish(f"{M}/state", b"idle", retain=True)
    machine.publish(f"{M}/evt/part.outcome", b"part-1")
    got = {t: (p, r) for t, p, r in region.drain(0.5)}
    assert got[f"{M}/evt/part.outcome"] == (b"part-1", False)
    assert got[f"{M}/state"][0] == b"idle"
    late = Peer(region_broker, "region", "r-secret").ok()     # the retained state reached the region
    late.subscribe(f"{M}/state")
    assert late.wait_for(f"{M}/state")[1:] == (b"idle", True)
    region.publish(f"{M}/cmd/req", b"signed-command")
    assert machine.wait_for(f"{M}/cmd/req")[1] == b"signed-command"
    for p in (region, late, machine):
        p.close()


def test_events_published_while_region_is_down_arrive_after_it_returns(brokers):
    region_broker, site_broker = brokers
    # the region's platform keeps a persistent session (clean session off, QoS 1)
    region = Peer(region_broker, "region", "r-secret", client_id="platform", clean=False, v5=False).ok()
    region.subscribe(f"{M}/evt/#")
    machine = Peer(site_broker, "prusa-01", "m-secret").ok()
    probe = Peer(region_broker, "region", "r-secret").ok()
    probe.subscribe(f"{M}/tele")
    wait_bridge(probe, machine)
    probe.close()
    region_broker.stop()                                       # the region (or the uplink) is gone
    for i in range(200):
        assert not machine.publish(f"{M}/evt/job.progress", f"{i}".encode()).is_failure
    region_broker.start()
    received: list[int] = []
    deadline = time.monotonic() + 20
    while len(received) < 200 and time.monotonic() < deadline:
        for topic, payload, _ in region.drain(0.3):
            if topic == f"{M}/evt/job.progress":
                received.append(int(payload))
    assert received == list(range(200))                       # all of them, in order, once
    region.close()
    machine.close()
