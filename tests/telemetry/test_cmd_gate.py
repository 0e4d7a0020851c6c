"""The command gate directly: each check in order, with its reason code, and that a
rejected command changes nothing (no replay-store claim, nothing for the agent to run)."""

from __future__ import annotations

import json

import pytest

from cmd_support import NOW, Region, machine_config, raw
from edge.errors import ConfigError
from edge.telemetry import signing
from edge.telemetry.commands import (CAPABILITIES, STATES, CommandGate, CommandRejected, Replayed,
                                     response)


@pytest.fixture
def region():
    return Region()


@pytest.fixture
def gate(region, tmp_path):
    clock = {"t": NOW}
    g = CommandGate(machine_config(region, tmp_path), tmp_path / "commands.db", clock=lambda: clock["t"])
    g.clock_box = clock
    yield g
    g.close()


def rejected(gate, payload: bytes, retained=False, state="idle") -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        gate.check(payload, retained, state)
    return info.value


def test_good_command_passes_and_returns_validated_command(gate, region):
    env = region.envelope("telemetry.rate", {"interval_s": 2}, cmd_id="c-1")
    cmd = gate.check(raw(env), False, "running")
    assert (cmd.id, cmd.op, cmd.key, cmd.args) == ("c-1", "telemetry.rate", "region-main", {"interval_s": 2.0})
    assert gate.store.count() == 1


@pytest.mark.parametrize("mutate, code", [
    (lambda r: r.envelope("job.pause", aud="fablab-north/prusa-02"), "wrong_audience"),
    (lambda r: r.envelope("job.pause", aud="fablab-south/prusa-01"), "wrong_audience"),
    (lambda r: r.envelope("job.pause", key="region-stranger"), "unknown_key"),
    (lambda r: r.envelope("job.pause", key="region-tele"), "not_allowed"),
    (lambda r: {**r.envelope("job.pause"), "op": "resync"}, "bad_signature"),
    (lambda r: r.envelope("job.pause", key="region-main", priv=r.stranger), "bad_signature"),
    (lambda r: {**r.envelope("job.pause"), "sig": "!!notbase64"}, "bad_signature"),
    (lambda r: r.envelope("job.pause", now=NOW + 301), "not_yet_valid"),
    (lambda r: r.envelope("job.pause", now=NOW - 400, ttl=300), "expired"),
    (lambda r: r.envelope("job.pause", now=NOW - 300, ttl=300), "expired"),
], ids=["other-machine", "other-site", "unknown-key", "key-without-role", "field-changed", "wrong-private-key",
        "sig-garbage", "from-future", "expired", "expires-now"])
def test_each_check_rejects_with_its_code_and_claims_nothing(gate, region, mutate, code):
    exc = rejected(gate, raw(mutate(region)), state="running")
    assert exc.code == code, exc.message
    assert exc.cmd_id and exc.response()["status"] == "rejected" and exc.response()["code"] == code
    assert gate.store.count() == 0          # changes nothing: a proper resend would still run


def test_clock_skew_within_bounds_is_accepted(gate, region):
    assert gate.check(raw(region.envelope("resync", now=NOW + 299)), False, "idle").op == "resync"


def test_audience_is_checked_before_signature(gate, region):
    env = region.envelope("job.pause", aud="fablab-north/other", priv=region.stranger)
    assert rejected(gate, raw(env), state="running").code == "wrong_audience"


def test_retained_is_rejected_even_when_valid(gate, region):
    exc = rejected(gate, raw(region.envelope("job.pause", cmd_id="r-1")), retained=True, state="running")
    assert exc.code == "retained" and exc.cmd_id == "r-1"
    assert gate.store.count() == 0


def test_replay_is_answered_with_earlier_result_and_never_returned_again(gate, region):
    payload = raw(region.envelope("job.pause", cmd_id="p-1"))
    assert gate.check(payload, False, "running").id == "p-1"
    gate.record("p-1", response("p-1", "done"))
    with pytest.raises(Replayed) as info:
        gate.check(payload, False, "running")
    assert info.value.code == "replayed"
    assert info.value.earlier_results == [{"cmd_id": "p-1", "status": "done"}]
    assert info.value.response()["earlier"] == {"cmd_id": "p-1", "status": "done"}


def test_replay_store_survives_restart(region, tmp_path):
    cfg = machine_config(region, tmp_path)
    payload = raw(region.envelope("job.pause", cmd_id="p-2"))
    g1 = CommandGate(cfg, tmp_path / "c.db", clock=lambda: NOW)
    g1.check(payload, False, "running")
    g1.close()
    g2 = CommandGate(cfg, tmp_path / "c.db", clock=lambda: NOW + 10)
    with pytest.raises(Replayed) as info:
        g2.check(payload, False, "running")
    assert info.value.earlier_results == []   # accepted, result not recorded yet: still never run twice
    g2.close()


def test_replay_store_is_bounded_by_age_past_expiry(region, tmp_path):
    clock = {"t": NOW}
    g = CommandGate(machine_config(region, tmp_path), tmp_path / "c.db", clock=lambda: clock["t"], retention_s=100)
    for i in range(5):
        g.check(raw(region.envelope("resync", cmd_id=f"old-{i}", ttl=60)), False, "idle")
    assert g.store.count() == 5
    clock["t"] = NOW + 60 + 101
    g.check(raw(region.envelope("resync", cmd_id="new", now=clock["t"])), False, "idle")
    assert g.store.count() == 1
    # a purged id can only come back expired
    assert rejected(g, raw(region.envelope("resync", cmd_id="old-0", ttl=60))).code == "expired"
    g.close()


def test_state_gate_rejects_and_remembers_the_answer(gate, region):
    payload = raw(region.envelope("job.pause", cmd_id="pz-1"))
    exc = rejected(gate, payload, state="paused")
    assert exc.code == "wrong_state" and "paused" in exc.message and exc.response()["state"] == "paused"
    with pytest.raises(Replayed) as info:        # a resend gets the same answer, even in the right state
        gate.check(payload, False, "running")
    assert info.value.earlier_results[0]["code"] == "wrong_state"


@pytest.mark.parametrize("state", STATES)
def test_remote_resume_is_never_taken(gate, region, state):
    exc = rejected(gate, raw(region.envelope("job.resume", cmd_id=f"res-{state}")), state=state)
    assert exc.code == "not_allowed" and "RESUME press on the machine" in exc.message


def test_capabilities_cover_every_op_and_never_allow_offer_in_fault():
    assert set(CAPABILITIES) == {"job.offer", "job.cancel", "job.pause", "job.resume", "telemetry.rate", "resync"}
    assert all(set(states) <= set(STATES) for states in CAPABILITIES.values())
    assert "fault" not in CAPABILITIES["job.offer"] and "interrupted" not in CAPABILITIES["job.offer"]
    assert CAPABILITIES["job.resume"] == []          # moving again needs a person at the machine


@pytest.mark.parametrize("payload, fragment", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1,2]", "not an object"),
    (b'"text"', "not an object"),
    (b"", "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "JSON"),
    (b'{"v":1,"v":1}', "duplicate"),
    (b'{"iat": NaN}', "NaN"),
])
def test_malformed_payloads_never_crash(gate, payload, fragment):
    exc = rejected(gate, payload)
    assert exc.code == "malformed" and fragment in exc.message


@pytest.mark.parametrize("field, value, fragment", [
    ("v", 2, "version"), ("v", True, "version"), ("id", "", "id must"), ("id", 7, "id must"),
    ("id", "a/b#", "id must"), ("key", None, "key must"), ("aud", ["x"], "aud must"), ("iat", "now", "iat must"),
    ("exp", True, "exp must"), ("exp", NOW - 1, "after iat"), ("op", "printer.start", "unknown operation"),
    ("args", [], "args must"), ("sig", 5, "sig must"), ("extra", 1, "unknown field"),
])
def test_wrong_types_are_malformed(gate, region, field, value, fragment):
    env = region.envelope("job.pause")
    env[field] = value
    exc = rejected(gate, raw(env), state="running")
    assert exc.code == "malformed" and fragment in exc.message


def test_missing_field_is_malformed(gate, region):
    env = region.envelope("job.pause")
    del env["exp"]
    exc = rejected(gate, raw(env), state="running")
    assert exc.code == "malformed" and "exp" in exc.message


def test_oversized_payload(gate, region):
    env = region.envelope("job.offer", {"job_id": "big", "design": "d", "parts": 1, "gcode": "G1 X1\n" * 50000})
    exc = rejected(gate, raw(env))
    assert exc.code == "too_large" and "256 KB" in exc.message
    assert gate.store.count() == 0


@pytest.mark.parametrize("op, args, fragment", [
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1}, "exactly one of url"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 0, "gcode": "G1"}, "parts"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": "2", "gcode": "G1"}, "parts"),
    ("job.offer", {"job_id": "../etc", "design": "d", "parts": 1, "gcode": "G1"}, "job_id"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1, "url": "ftp://x/y", "sha256": "0" * 64, "size": 1},
     "url must"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1, "url": "http://x/y"}, "sha256 and size"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1, "url": "http://x/y", "sha256": "xyz", "size": 1},
     "sha256 must"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1, "gcode": "G1", "size": -1}, "size must"),
    ("job.offer", {"job_id": "j", "design": "d", "parts": 1, "gcode": "G1", "start": True}, "unknown argument"),
    ("job.cancel", {}, "job_id"),
    ("telemetry.rate", {"interval_s": 0}, "interval_s"),
    ("telemetry.rate", {"interval_s": "fast"}, "interval_s"),
    ("resync", {"now": 1}, "unknown argument"),
])
def test_bad_args(gate, region, op, args, fragment):
    exc = rejected(gate, raw(region.envelope(op, args)), state="staged")
    assert exc.code == "bad_args" and fragment in exc.message, exc.message


@pytest.mark.parametrize("keys, fragment", [
    ([{"id": "k", "public_key": "AAAA"}], "trust key 'k'"),
    ([{"id": "k", "public_key": "not base64!"}], "not valid base64"),
    ([{"id": "k", "public_key": signing.public_key_b64(signing.generate_private_key()), "operations": ["job.ofer"]}],
     "unknown operation 'job.ofer'"),
    ([{"id": "k", "public_key": signing.public_key_b64(signing.generate_private_key())}] * 2, "appears twice"),
])
def test_bad_trust_store_is_a_config_error(region, tmp_path, keys, fragment):
    cfg = machine_config(region, tmp_path).replace(trust={"keys": keys})
    with pytest.raises(ConfigError, match=fragment):
        CommandGate(cfg, tmp_path / "c.db")


def test_canonical_json_excludes_sig_and_is_stable():
    a = signing.canonical_json({"b": 1, "a": "é", "sig": "x"})
    assert a == '{"a":"é","b":1}'.encode()
    assert a == signing.canonical_json(json.loads('{"a": "\\u00e9", "b": 1}'))


# ---- fuzzing: whatever arrives, the gate answers with a reason code and never crashes ----------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=400))
def test_fuzz_random_bytes(gate, payload):
    with pytest.raises(CommandRejected) as info:
        gate.check(payload, False, "idle")
    assert info.value.code in ("malformed", "too_large")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["v", "id", "key", "aud", "iat", "exp", "op", "args", "sig", "x"]), value=_json,
       state=st.sampled_from(STATES))
def test_fuzz_one_field_replaced(gate, region, field, value, state):
    env = region.envelope("job.offer", {"job_id": "j", "design": "d", "parts": 1, "gcode": "G1 X1"}, cmd_id="fz")
    original = env.get(field)
    env[field] = value
    try:
        cmd = gate.check(json.dumps(env).encode(), False, state)
    except CommandRejected as exc:
        assert exc.code in ("malformed", "wrong_audience", "unknown_key", "not_allowed", "bad_signature",
                            "not_yet_valid", "expired", "replayed", "wrong_state", "bad_args")
    else:   # only an unchanged value can still pass
        assert value == original and type(value) is type(original) and cmd.id == "fz"
