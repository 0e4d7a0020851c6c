"""config/mosquitto/fabedge.acl loaded into a real mosquitto with a password file made by
mosquitto_passwd: machine A cannot publish under B's topics nor read B's commands; A uses
its own subtree; the region reads all and commands all; nobody unknown gets in."""

from __future__ import annotations

import pytest

from cmd_mqtt import Peer, secured_broker

SITE = "fablab-north"
USERS = {"region": "r-secret", "fleet": "f-secret", "prusa-01": "a-secret", "prusa-02": "b-secret"}
A, B = f"fabedge/v1/{SITE}/prusa-01", f"fabedge/v1/{SITE}/prusa-02"
REPORT_TOPICS = ("birth", "status", "state", "tele", "evt/part.outcome", "cmd/res")
NOT_AUTHORIZED = 135


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    b = secured_broker(tmp_path_factory.mktemp("acl"), USERS)
    yield b
    b.close()


@pytest.fixture
def peers(secured):
    made = []

    def make(user, password=None, **kw) -> Peer:
        p = Peer(secured, user, USERS.get(user) if password is None else password, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def test_unknown_users_and_wrong_passwords_are_refused(peers):
    assert peers(None).connect().is_failure                      # anonymous
    assert peers("prusa-01", "wrong").connect().is_failure
    assert peers("mallory", "x").connect().is_failure


def denied(peers, user: str, topic: str) -> bool:
    """Publish once on a fresh connection: mosquitto 2.0 answers a denied publish with PUBACK 135
    (MQTT 5) and then closes the connection (MQTT-3.3.5-2; eclipse-mosquitto/mosquitto#2579)."""
    p = peers(user).ok()
    return p.publish(topic, b"forged") == NOT_AUTHORIZED


def test_machine_cannot_publish_under_another_machines_topics(peers):
    region = peers("region").ok()
    region.subscribe("fabedge/v1/#")
    b = peers("prusa-02").ok()
    b.subscribe(f"{B}/#")
    for t in REPORT_TOPICS + ("cmd/req",):
        assert denied(peers, "prusa-01", f"{B}/{t}"), t
    assert denied(peers, "prusa-01", f"{A}/cmd/req")                 # nor command itself
    assert denied(peers, "prusa-01", "fabedge/v1/fablab-south/prusa-02/state")
    a = peers("prusa-01").ok()
    for t in REPORT_TOPICS:                                          # its own subtree works
        assert not a.publish(f"{A}/{t}", b"mine").is_failure, t
    got = region.drain()
    assert sorted(m[0] for m in got) == sorted(f"{A}/{t}" for t in REPORT_TOPICS)
    assert all(m[1] == b"mine" for m in got)
    assert b.drain(0.1) == []


def test_machine_cannot_read_another_machines_commands(peers):
    a = peers("prusa-01").ok()
    b = peers("prusa-02").ok()
    a.subscribe(f"{B}/cmd/req")      # mosquitto 2.0 grants it but filters every message by the ACL
    a.subscribe("fabedge/v1/#")                               # a wildcard must not leak B's traffic either
    a.subscribe(f"{A}/cmd/req")
    b.subscribe(f"{B}/cmd/req")
    region = peers("region").ok()
    assert not region.publish(f"{B}/cmd/req", b"for-b").is_failure
    assert not region.publish(f"{A}/cmd/req", b"for-a").is_failure
    assert b.wait_for(f"{B}/cmd/req")[1] == b"for-b"
    got_a = a.drain()
    assert got_a and all(topic.startswith(A + "/") for topic, _, _ in got_a)
    assert b"for-b" not in [m[1] for m in got_a] and b"for-a" in [m[1] for m in got_a]


def test_machine_cannot_read_another_machines_reports(peers):
    b = peers("prusa-02").ok()
    assert not b.publish(f"{B}/state", b"b-state", retain=True).is_failure
    a = peers("prusa-01").ok()
    a.subscribe("fabedge/v1/#")
    assert not a.publish(f"{A}/state", b"a-state", retain=True).is_failure
    got = a.drain()
    assert [m[1] for m in got] == [b"a-state"]


def test_region_reads_all_and_commands_all_but_forges_nothing(peers):
    region = peers("region").ok()
    region.subscribe("fabedge/v1/+/+/evt/#")
    a, b = peers("prusa-01").ok(), peers("prusa-02").ok()
    a.subscribe(f"{A}/cmd/req")
    b.subscribe(f"{B}/cmd/req")
    a.publish(f"{A}/evt/part.outcome", b"a-part")
    b.publish(f"{B}/evt/part.outcome", b"b-part")
    assert {m[1] for m in region.drain()} == {b"a-part", b"b-part"}
    assert not region.publish(f"{A}/cmd/req", b"cmd-a").is_failure
    assert not region.publish(f"{B}/cmd/req", b"cmd-b").is_failure
    assert a.wait_for(f"{A}/cmd/req")[1] == b"cmd-a" and b.wait_for(f"{B}/cmd/req")[1] == b"cmd-b"
    assert denied(peers, "region", f"{A}/evt/part.outcome") and denied(peers, "region", f"{A}/state")
    assert a.drain(0.2) == [] and region.drain(0.2) == []


def test_fleet_user_is_read_only(peers):
    fleet = peers("fleet").ok()
    fleet.subscribe("fabedge/v1/#")
    a = peers("prusa-01").ok()
    a.subscribe(f"{A}/cmd/req")
    a.publish(f"{A}/evt/job.done", b"done")
    assert fleet.wait_for(f"{A}/evt/job.done")[1] == b"done"
    assert denied(peers, "fleet", f"{A}/cmd/req")
    assert a.drain(0.2) == []


def test_machine_last_will_on_own_status_is_allowed(peers, secured):
    watcher = peers("region").ok()
    watcher.subscribe(f"{A}/status")
    a = peers("prusa-01")
    a.client.will_set(f"{A}/status", b"lost", qos=1, retain=True)
    a.ok()
    a.client.socket().close()              # the link dies without DISCONNECT: the broker sends the will
    topic, payload, _ = watcher.wait_for(f"{A}/status", timeout=10)
    assert payload == b"lost"
