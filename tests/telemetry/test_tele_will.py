"""Last will and session counters: a quick reconnect never shows `lost`; a stale `lost` is ignored."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import Recorder, make_cfg
from edge.fleet import FleetView
from edge.telemetry.client import Endpoint, Watcher
from edge.telemetry.service import Telemetry

STATUS = "fabedge/v1/lab-a/mk3-1/status"


def _tele(cfg, path):
    return Telemetry(cfg, path, on_command=lambda p, r: None, backoff_max_s=1.0)


def _statuses(rec: Recorder) -> list[tuple[str, int]]:
    return [(m["status"], m["session"]) for m in rec.on("/status")]


def test_reconnect_inside_will_delay_never_shows_lost_and_the_will_fires_after_it(broker, recorder, tmp_path):
    cfg = make_cfg(broker.url, will_delay_s=2)
    a = _tele(cfg, tmp_path / "spool.db")
    a.start()
    assert recorder.wait(lambda: a.connected)
    a.stop(clean=False)                         # the connection dies: no DISCONNECT, the will is armed
    b = _tele(cfg, tmp_path / "spool.db")       # the same machine comes back (same spool, same client id)
    b.start()
    assert recorder.wait(lambda: b.connected)
    assert b.link.protocol_in_use == "5"
    time.sleep(3.0)                             # longer than the will delay
    assert _statuses(recorder) == [("online", 1), ("online", 2)]
    gone = time.monotonic()
    b.stop(clean=False)                         # now it stays away: lost, with its own session
    time.sleep(0.5)
    if time.monotonic() - gone < 1.5:           # (a very loaded box may sleep past the delay)
        assert ("lost", 2) not in _statuses(recorder)     # not before the delay...
    assert recorder.wait(lambda: ("lost", 2) in _statuses(recorder), 30)   # ...but after it


def test_stale_lost_from_an_older_session_is_ignored_and_overwritten(broker, recorder, tmp_path):
    cfg = make_cfg(broker.url, protocol="3.1.1")       # 3.1.1 has no will delay: the will is immediate
    a = _tele(cfg, tmp_path / "spool.db")
    a.start()
    assert recorder.wait(lambda: a.connected)
    a.stop(clean=False)
    assert recorder.wait(lambda: ("lost", 1) in _statuses(recorder))
    b = _tele(cfg, tmp_path / "spool.db")
    b.start()
    assert recorder.wait(lambda: ("online", 2) in _statuses(recorder))
    # the old connection's will arrives late (e.g. through a bridge from a site broker)
    poke = Watcher(Endpoint.from_url(broker.url), [], lambda *a: None).start()
    stale = next(m for m in recorder.on("/status") if (m["status"], m["session"]) == ("lost", 1))
    poke.publish(STATUS, json.dumps(stale).encode(), qos=1, retain=True)
    poke.stop()
    assert recorder.wait(lambda: _statuses(recorder) == [("online", 1), ("lost", 1), ("online", 2),
                                                         ("lost", 1), ("online", 2)])   # stale, then repaired
    view = FleetView()
    for topic, payload, _r in recorder.messages:
        view.apply(topic, payload)
    row = view.table()[0]
    assert (row["status"], row["session"]) == ("online", 2) and view.ignored_stale == 1, _statuses(recorder)
    # and the region's CLI, started now, sees the machine online (the retained status was repaired)
    out = subprocess.run([sys.executable, "-m", "edge", "fleet", "watch", "--broker", broker.url, "--once",
                          "--seconds", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    machines = json.loads(out.stdout)["machines"]
    assert [(m["machine"], m["status"], m["session"]) for m in machines] == [("mk3-1", "online", 2)]
    b.stop()
