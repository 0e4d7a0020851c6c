"""Every region command gets an answer from the running agent: junk, replays, resume."""

from __future__ import annotations

import json
import time

import pytest

from edge.commands.demo import DemoRig
from edge.telemetry import signing
from edge.telemetry.schema import Topics


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def rig(broker, tmp_path):
    r = DemoRig(tmp_path / "rig", broker, time_scale=20.0)
    r.watch()
    r.start_agent()
    r.wait(lambda: r.agent.link_up and r.agent.driver_ok, 30, "the agent's link and printer")
    yield r
    r.close()


def _publish(rig: DemoRig, payload: bytes) -> None:
    rig.watcher.publish(Topics(rig.cfg.machine.site, rig.cfg.machine.id).cmd_req, payload)


def _replies_without_id(rig: DemoRig) -> list[dict]:
    with rig._lock:
        return [m for t, m in rig.messages if t.endswith("/cmd/res") and m.get("cmd_id") is None]


def test_junk_is_answered_received_then_rejected_with_a_null_id(rig):
    _publish(rig, b"{not json")
    wait_for(lambda: [r["status"] for r in _replies_without_id(rig)] == ["received", "rejected"], 30, "answers")
    assert _replies_without_id(rig)[-1]["code"] == "malformed"
    assert rig.machine_state() == "idle"


def test_replay_is_answered_with_the_earlier_result_and_not_run_again(rig):
    env = signing.make_envelope(rig.key, "demo-region", rig.audience, "resync", {})
    _publish(rig, json.dumps(env).encode())
    wait_for(lambda: any(r["status"] == "done" for r in rig.replies(env["id"])), 30, "the first answer")
    time.sleep(0.5)                                  # the resync's own birth has arrived
    births = sum(1 for t, _m in list(rig.messages) if t.endswith("/birth"))
    _publish(rig, json.dumps(env).encode())
    wait_for(lambda: any(r.get("code") == "replayed" for r in rig.replies(env["id"])), 30, "the replay answer")
    (replay,) = [r for r in rig.replies(env["id"]) if r.get("code") == "replayed"]
    assert replay["status"] == "rejected" and replay["earlier"]["status"] == "done"
    time.sleep(0.5)
    assert sum(1 for t, _m in list(rig.messages) if t.endswith("/birth")) == births   # not run again


def test_remote_resume_is_refused_because_only_a_person_resumes(rig):
    env = signing.make_envelope(rig.key, "demo-region", rig.audience, "job.resume", {"job_id": "x"})
    _publish(rig, json.dumps(env).encode())
    wait_for(lambda: any(r["status"] == "rejected" for r in rig.replies(env["id"])), 30, "the refusal")
    statuses = [r["status"] for r in rig.replies(env["id"])]
    assert statuses == ["received", "rejected"]
    assert rig.replies(env["id"])[-1]["code"] == "not_allowed"
