"""A site broker bridged to the regional broker with the shipped config/mosquitto/bridge-site.conf,
and a real agent (virtual Marlin, mock panel) on the site broker: the region offers a job through
the bridge, the uplink is cut for a while in the middle of the print, and once it returns every
event of that job (and the part count) has reached the region, each exactly once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from edge.commands.demo import DemoRig
from edge.telemetry.localbroker import LocalBroker
from region_support import RegionEar, wait_for

BRIDGE_CONF = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "bridge-site.conf"
SITE = "demo-lab"            # DemoRig's site


def bridge_conf(region_port: int) -> str:
    """The shipped bridge for this site and address; no TLS and no passwords on loopback."""
    text = BRIDGE_CONF.read_text().replace("fablab-north", SITE)
    text = text.replace("address broker.region.example:8883", f"address 127.0.0.1:{region_port}")
    text = re.sub(r"^restart_timeout .*$", "restart_timeout 1", text, flags=re.M)
    drop = ("bridge_cafile", "bridge_certfile", "bridge_keyfile", "remote_username", "remote_password")
    return "\n".join(line for line in text.splitlines() if not line.startswith(drop))


@pytest.fixture
def site_and_region(tmp_path):
    region = LocalBroker(workdir=tmp_path / "region").start()
    site = LocalBroker(workdir=tmp_path / "site", extra_conf=bridge_conf(region.port)
                       + "\nmax_queued_messages 200000\nqueue_qos0_messages false").start()
    yield site, region
    site.close()
    region.close()


@pytest.fixture(scope="module", autouse=True)
def warm_toolpath():
    from edge.commands.demo import DEMO_GCODE
    from edge.config import default
    from edge.toolpath import analyze
    analyze(DEMO_GCODE, default())


def test_bridge_cut_during_a_job_loses_no_event(site_and_region, tmp_path):
    site, region = site_and_region
    rig = DemoRig(tmp_path / "rig", site, time_scale=10.0)       # the machine talks to its site broker
    ear = RegionEar(region.url, client_id="region-platform").start()
    local = RegionEar(site.url, client_id="site-witness").start()
    try:
        rig.start_agent()
        wait_for(lambda: rig.agent.driver_ok and rig.agent.link_up, 20, "the machine")
        rig.broker = region             # the region publishes its offer on its own broker: down the bridge
        rig.watch()
        wait_for(lambda: any(t.endswith("/birth") for t, _ in rig.messages), 15, "the birth across the bridge")
        rig.offer("bridged-1", parts=3)
        rig.wait_state("armed", 60)
        rig.press("start")
        rig.wait_state("running", 10)
        region.stop()                                           # the uplink is cut mid-print
        rig.wait_state("awaiting_bed_clear", 90)
        rig.press("bed_clear", hold_s=rig.cfg.panel.bed_clear_hold_s + 0.2)
        rig.wait_state("idle", 10)
        wait_for(lambda: local.of("part.outcome"), 10, "the part count at the site broker")
        assert not ear.of("job.done")                           # the region has not seen the end yet
        time.sleep(1.0)
        region.start()                                          # the link returns
        wait_for(lambda: len(ear.events) >= len(local.events), 30, "every event to cross the bridge")
        time.sleep(1.0)
    finally:
        rig.close()
        ear.stop()
        local.stop()
    site_ids = set(local.events)
    assert set(ear.events) == site_ids                          # every event, nothing invented
    types = sorted(t.rsplit("/", 1)[1] for t, _, _ in ear.events.values())
    assert types == sorted(["job.staged", "job.armed", "job.started", "job.done", "part.outcome"])
    (outcome,) = ear.of("part.outcome")
    assert (outcome["job_id"], outcome["parts"], outcome["outcome"]) == ("bridged-1", 3, "good")
