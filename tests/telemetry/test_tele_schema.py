"""Topic names, envelope fields and the replay marker of edge.telemetry.schema."""

from __future__ import annotations

import json
import math

import pytest

from edge.telemetry import schema


def test_topics_and_parse_round_trip():
    t = schema.Topics("lab-a", "mk3-1")
    assert t.birth == "fabedge/v1/lab-a/mk3-1/birth"
    assert t.cmd_req == "fabedge/v1/lab-a/mk3-1/cmd/req"
    assert schema.parse_topic(t.evt("part.outcome")) == schema.ParsedTopic("lab-a", "mk3-1", "evt", "part.outcome")
    assert schema.parse_topic(t.cmd_res).kind == "cmd/res"
    for bad in ("", "fabedge/v1", "fabedge/v2/a/b/state", "fabedge/v1/a/b/state/x", "fabedge/v1/a/b/evt",
                "fabedge/v1/a/b/cmd/other", "other/v1/a/b/state"):
        assert schema.parse_topic(bad) is None, bad


def test_envelope_fields_and_reserved_keys():
    msg = schema.envelope("s", "m", 42, {"state": "idle"})
    assert msg["v"] == schema.SCHEMA_VERSION and msg["seq"] == 42 and msg["site"] == "s" and msg["machine"] == "m"
    assert isinstance(msg["clock_synced"], bool) and len(msg["id"]) == 32
    assert msg["boot_id"] == schema.boot_id() and msg["state"] == "idle"
    with pytest.raises(ValueError, match="reserved envelope key"):
        schema.envelope("s", "m", 1, {"seq": 3})
    assert schema.envelope("s", "m", 1, {"site": "s", "machine": "m"})["site"] == "s"   # agreeing is fine
    with pytest.raises(ValueError, match="site"):
        schema.envelope("s", "m", 1, {"site": "elsewhere"})


def test_encode_marks_replay_without_reencoding():
    body = schema.encode(schema.envelope("s", "m", 1, {"x": [1, 2]}))
    assert json.loads(body)["replayed"] is False
    again = schema.mark_replayed(body)
    assert json.loads(again)["replayed"] is True and json.loads(again)["x"] == [1, 2]
    assert schema.mark_replayed(b"not ours") == b"not ours"


def test_non_finite_numbers_become_null_and_bad_payloads_are_refused():
    body = json.loads(schema.encode({"t": math.nan, "temps": [1.5, math.inf], "ok": 2.0}))
    assert body == {"t": None, "temps": [1.5, None], "ok": 2.0, "replayed": False}
    with pytest.raises(ValueError, match="dict"):
        schema.check_payload(["x"], "s", "m")


def test_decode_never_raises():
    for junk in (b"", b"\xff\xfe", b"[1,2]", b"{", b"null", b"9" * 5000, b"[" * 100000):
        assert schema.decode(junk) is None
    assert schema.decode(b'{"a":1}') == {"a": 1}


def test_event_types_are_checked():
    schema.check_event_type("part.outcome")
    with pytest.raises(ValueError, match="unknown event type"):
        schema.check_event_type("job.progress")


def test_clock_flag_is_a_cached_bool():
    assert schema.clock.synced() in (True, False)
    assert schema.clock.synced() is schema.clock.synced()
