"""The SQLite outbox: durability (also across SIGKILL), order, sequence numbers, bounds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from edge.telemetry.spool import PRIO_HIGH, PRIO_LOW, Spool

ROOT = Path(__file__).resolve().parents[2]


def _put(spool: Spool, n: int, prio: int = PRIO_HIGH, size: int = 10, key: str | None = None) -> str:
    mid = key or f"id-{n}"
    return spool.put("t/evt", lambda seq: (json.dumps({"id": mid, "seq": seq, "n": n, "pad": "x" * size}).encode(),
                                            mid), prio, key=key)


def _rows(spool: Spool) -> list[dict]:
    return [json.loads(r.payload) | {"_prio": r.prio} for r in spool.read(0, 10**9)]


def test_order_ack_and_reopen(tmp_path):
    s = Spool(tmp_path / "s.db")
    for i in range(10):
        _put(s, i)
    rows = s.read(0, 4)
    assert [json.loads(r.payload)["n"] for r in rows] == [0, 1, 2, 3]
    s.ack([r.id for r in rows[:2]])
    s.close()
    s = Spool(tmp_path / "s.db")
    got = _rows(s)
    assert [r["n"] for r in got] == list(range(2, 10)) and len(s) == 8
    seqs = [r["seq"] for r in got]
    assert seqs == sorted(seqs)
    _put(s, 10)
    assert _rows(s)[-1]["seq"] > seqs[-1]      # sequence numbers continue after a restart
    assert s.counters()["delivered"] == 2
    s.close()


def test_sequence_survives_restart_without_spooled_rows(tmp_path):
    s = Spool(tmp_path / "s.db")
    last = max(s.next_seq() for _ in range(5))
    s.close()
    s = Spool(tmp_path / "s.db")
    assert s.next_seq() > last
    s.close()


def test_same_key_is_stored_once(tmp_path):
    s = Spool(tmp_path / "s.db")
    assert _put(s, 1, key="evt-a") == "evt-a"
    assert _put(s, 2, key="evt-a") == "evt-a"
    assert [r["n"] for r in _rows(s)] == [1]
    s.close()


def test_bad_payload_fails_only_that_put(tmp_path):
    s = Spool(tmp_path / "s.db")
    _put(s, 1)

    def boom(seq):
        raise ValueError("NaN is not JSON")
    try:
        s.put("t", boom)
    except ValueError as exc:
        assert "NaN" in str(exc)
    else:
        raise AssertionError("a failing builder must raise")
    _put(s, 2)
    assert [r["n"] for r in _rows(s)] == [1, 2]
    s.close()


def test_size_bound_drops_low_priority_first_then_oldest(tmp_path):
    s = Spool(tmp_path / "s.db", max_bytes=40_000)
    for i in range(20):
        _put(s, i, PRIO_LOW, size=1000)            # capped at a quarter of the bound
    low = [r for r in _rows(s) if r["_prio"] == PRIO_LOW]
    assert 0 < len(low) <= 10 and low[-1]["n"] == 19   # the newest samples are the ones kept
    for i in range(100, 140):
        _put(s, i, PRIO_HIGH, size=1000)
    rows = _rows(s)
    assert s.bytes <= 40_000
    assert not [r for r in rows if r["_prio"] == PRIO_LOW]     # samples went first
    high = [r["n"] for r in rows]
    assert 0 < len(high) < 40 and high == list(range(140 - len(high), 140))   # then the oldest events
    c = s.counters()
    assert c["dropped_low"] == 20 and c["dropped_high"] == 40 - len(high)
    s.close()


def test_age_bound(tmp_path):
    s = Spool(tmp_path / "s.db", max_age_s=3600)
    for i in range(3):
        _put(s, i)
    assert s.prune_old(now=time.time() + 1800) == 0
    assert s.prune_old(now=time.time() + 7200) == 3 and len(s) == 0
    assert s.counters()["dropped_age"] == 3
    s.close()


def test_threads_share_commits_and_keep_order(tmp_path):
    s = Spool(tmp_path / "s.db")

    def worker(k):
        for i in range(200):
            _put(s, k * 1000 + i)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = _rows(s)
    assert len(rows) == 800
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)    # seq order == spool order
    for k in range(4):
        mine = [r["n"] for r in rows if r["n"] // 1000 == k]
        assert mine == sorted(mine)
    s.close()


CHILD = """
import sys, json
sys.path.insert(0, {root!r})
from edge.telemetry.spool import Spool
s = Spool({path!r})
i = 0
while True:
    mid = "id-%d" % i
    s.put("t/evt", lambda seq, mid=mid: (json.dumps({{"id": mid, "seq": seq}}).encode(), mid))
    print(mid, flush=True)   # only after put() returned: the row is durable
    i += 1
"""


def test_every_acknowledged_put_survives_sigkill(tmp_path):
    path = tmp_path / "s.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
                             stdout=subprocess.PIPE, text=True)
    confirmed = []
    for line in child.stdout:
        confirmed.append(line.strip())
        if len(confirmed) >= 300:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    s = Spool(path)
    stored = [json.loads(r.payload)["id"] for r in s.read(0, 10**9)]
    assert set(confirmed) <= set(stored)
    assert stored == [f"id-{i}" for i in range(len(stored))]   # in order, no holes
    s.close()


def test_a_damaged_file_is_kept_aside_and_counters_still_only_grow(tmp_path):
    s = Spool(tmp_path / "s.db")
    for i in range(3):
        _put(s, i)
    old_seq = _rows(s)[-1]["seq"]
    s.close()
    (tmp_path / "s.db").write_bytes(b"this is not a database" * 100)   # the card lost power mid-write
    s = Spool(tmp_path / "s.db")
    assert s.recovered_from is not None and s.recovered_from.exists() and len(s) == 0
    _put(s, 9)
    assert _rows(s)[0]["seq"] > old_seq and s.counter("session") > 1_000_000
    s.close()


def test_quarantined_rows_are_kept_but_not_sent(tmp_path):
    s = Spool(tmp_path / "s.db")
    for i in range(3):
        _put(s, i)
    first = s.read(0, 1)[0]
    s.quarantine(first.id)
    assert [json.loads(r.payload)["n"] for r in s.read(0, 10)] == [1, 2]
    assert len(s) == 3 and s.counters()["quarantined"] == 1
    s.close()


def test_poison_guard_isolates_then_names_the_row():
    from edge.telemetry.poison import PoisonGuard
    g = PoisonGuard(strikes=3, quick_s=10)
    for _ in range(2):
        g.connected(now=0)
        assert g.dropped([7, 8, 9], now=1) is None
    assert not g.isolating
    g.connected(now=0)
    assert g.dropped([7, 8], now=1) is None and g.isolating      # third strike: send it alone
    g.connected(now=0)
    assert g.dropped([7], now=1) == 7 and not g.isolating        # dies alone: poison
    g.connected(now=0)
    assert g.dropped([10], now=60) is None and g.suspect is None  # a connection that lived long: an outage
    g.connected(now=0)
    g.dropped([11], now=1)
    g.acked(11)
    assert g.suspect is None
