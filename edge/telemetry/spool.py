"""The on-disk outbox (SQLite, WAL, synchronous=FULL) that covers broker outages.

A message is written here before it is published and deleted only after the
broker's PUBACK, so neither an outage nor a power cut loses one that the agent
was told is stored. Rows are sent in rowid order. The spool is bounded by
bytes and age: when full it drops low-priority rows (telemetry samples) first,
then the oldest; every drop is counted in `meta` so the birth message can say so.

It also keeps the counters that must survive restarts: the message sequence
number (reserved in blocks, so only spooled messages cost a write) and the
connection session counter used by the status topic.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger("fabedge.spool")

PRIO_LOW = 0    # telemetry samples spooled while offline
PRIO_HIGH = 1   # events and command results
PRIO_QUARANTINE = -1   # never sent again: the broker drops the connection over it

SEQ_BLOCK = 1000          # sequence numbers reserved per meta write
LOW_PRIO_SHARE = 0.25     # low-priority rows may fill at most this share of the byte bound
ROW_OVERHEAD = 64         # bytes of bookkeeping per row counted against the bound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    prio INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS outbox_prio ON outbox (prio, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes
    prio: int


class _Pending:
    """One put() waiting for a group commit."""
    __slots__ = ("topic", "build", "prio", "key", "rowid", "result", "error")

    def __init__(self, topic: str, build: Callable[[int], tuple[bytes, str]], prio: int, key: str | None):
        self.topic, self.build, self.prio, self.key = topic, build, prio, key
        self.rowid: int | None = None
        self.result = ""
        self.error: BaseException | None = None


class Spool:
    """Durable FIFO of (topic, payload) rows, safe to use from several threads."""

    def __init__(self, path: str | Path, max_bytes: int = 64 << 20, max_age_s: float = 7 * 86400) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.recovered_from: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self._db = self._start_over(exc)
        # The sender reads through its own connection: WAL lets it read while put() commits.
        self._reader = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._reader.execute("PRAGMA busy_timeout=10000")
        self._read_lock = threading.Lock()
        self._write = threading.Lock()     # one transaction at a time
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._closed = False
        self._seq = self._meta("seq_reserved", 0)   # continue after the last reserved block
        self._seq_reserved = self._seq
        self._bytes, self._low_bytes, self._rows = self._measure()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")   # a commit is on the card before put() returns
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _start_over(self, exc: Exception) -> sqlite3.Connection:
        """A damaged file (an SD card that lost power mid-write): keep it aside for a person,
        start a new spool, and seed the counters from the clock so seq and session still only grow."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.recovered_from = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(self.recovered_from) + suffix))
        log.error("spool %s is damaged (%s): moved to %s, starting a new one", self.path, exc,
                  self.recovered_from)
        db = self._open()
        now = int(time.time())
        for name, value in (("seq_reserved", now * 1000), ("session", now)):
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))
        return db

    # ---- counters that survive restarts -------------------------------------------------
    def _meta(self, name: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, name: str, value: int) -> None:
        self._db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def _bump_meta(self, name: str, by: int) -> None:
        self._db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    def _take_seq(self) -> int:
        """Next sequence number; call inside a transaction (the reservation commits with it)."""
        self._seq += 1
        if self._seq > self._seq_reserved:
            self._seq_reserved = self._seq + SEQ_BLOCK
            self._set_meta("seq_reserved", self._seq_reserved)
        return self._seq

    def next_seq(self) -> int:
        """A sequence number for a message that is not spooled (state, tele, status)."""
        with self._write:
            if self._seq + 1 <= self._seq_reserved:
                self._seq += 1
                return self._seq
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._take_seq()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return seq

    def counter(self, name: str) -> int:
        with self._write:
            return self._meta(name, 0)

    def set_counter(self, name: str, value: int) -> None:
        with self._write:
            self._set_meta(name, value)   # autocommit: durable (synchronous=FULL)

    def counters(self) -> dict[str, int]:
        with self._write:
            return {n: int(v) for n, v in self._db.execute("SELECT name, value FROM meta")}

    # ---- writing ------------------------------------------------------------------------
    def put(self, topic: str, build: Callable[[int], tuple[bytes, str]], prio: int = PRIO_HIGH,
            key: str | None = None) -> str:
        """Append one row; returns once it is durable.

        `build(seq)` makes (payload, message id) with the sequence number given
        inside the transaction, so sequence order is spool order. Callers from
        several threads share one fsync (group commit). A `key` already in the
        spool is not inserted again: the earlier row's message id is returned.
        """
        item = _Pending(topic, build, prio, key)
        with self._pending_lock:
            self._pending.append(item)
        with self._write:
            if item.rowid is None and item.error is None:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if item.error is not None:
            raise item.error
        return item.result

    def _commit(self, batch: list[_Pending]) -> None:
        if self._closed:
            for item in batch:
                item.error = RuntimeError(f"spool {self.path} is closed")
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            added = added_low = rows = 0
            for item in batch:
                if item.key is not None:
                    found = db.execute("SELECT id FROM outbox WHERE key = ?", (item.key,)).fetchone()
                    if found:
                        item.rowid, item.result = found[0], item.key
                        continue
                try:
                    payload, msg_id = item.build(self._take_seq())
                except Exception as exc:  # bad payload from the caller: fail that put only
                    item.error = exc
                    continue
                size = len(payload) + len(item.topic) + ROW_OVERHEAD
                cur = db.execute("INSERT INTO outbox (topic, payload, prio, created, size, key) "
                                 "VALUES (?, ?, ?, ?, ?, ?)",
                                 (item.topic, payload, item.prio, time.time(), size, item.key))
                item.rowid, item.result = cur.lastrowid, msg_id
                added += size
                rows += 1
                if item.prio == PRIO_LOW:
                    added_low += size
            self._bytes += added
            self._low_bytes += added_low
            self._rows += rows
            self._enforce_bounds()
            db.execute("COMMIT")
        except BaseException as exc:
            db.execute("ROLLBACK")
            self._bytes, self._low_bytes, self._rows = self._measure()
            for item in batch:
                if item.error is None:
                    item.rowid, item.error = None, exc
            raise

    def _enforce_bounds(self) -> None:
        """Inside a transaction: drop low-priority rows beyond their share, then any oldest."""
        if self._low_bytes > self.max_bytes * LOW_PRIO_SHARE:
            self._drop_oldest(PRIO_LOW, self._low_bytes - int(self.max_bytes * LOW_PRIO_SHARE))
        if self._bytes > self.max_bytes:
            self._drop_oldest(PRIO_LOW, self._bytes - self.max_bytes)
        if self._bytes > self.max_bytes:
            self._drop_oldest(None, self._bytes - self.max_bytes)

    def _drop_oldest(self, prio: int | None, need: int) -> None:
        where = "WHERE prio = ?" if prio is not None else ""
        args: tuple = (prio,) if prio is not None else ()
        freed, ids = 0, []
        for rid, size in self._db.execute(f"SELECT id, size FROM outbox {where} ORDER BY id", args):
            if freed >= need:
                break
            freed += size
            ids.append(rid)
        total, low, rows = self._delete_ids(ids)
        self._bytes -= total
        self._low_bytes -= low
        self._rows -= rows
        if rows:
            self._bump_meta("dropped_low" if prio == PRIO_LOW else "dropped_high", rows)

    def _delete_ids(self, ids: list[int]) -> tuple[int, int, int]:
        """Delete rows by id; returns (bytes, low-priority bytes, rows) actually removed."""
        total = low = rows = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            t, lo, n = self._db.execute(
                f"SELECT coalesce(sum(size), 0), coalesce(sum(CASE WHEN prio = {PRIO_LOW} THEN size ELSE 0 END), 0), "
                f"count(*) FROM outbox WHERE id IN ({marks})", chunk).fetchone()
            self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
            total, low, rows = total + t, low + lo, rows + n
        return total, low, rows

    # ---- reading and acknowledging -----------------------------------------------------
    def read(self, after_id: int, limit: int) -> list[Row]:
        """Up to `limit` rows after `after_id`, oldest first."""
        with self._read_lock:
            if self._closed:
                return []
            cur = self._reader.execute("SELECT id, topic, payload, prio FROM outbox WHERE id > ? AND prio >= 0 "
                                       "ORDER BY id LIMIT ?", (after_id, limit))
            return [Row(r[0], r[1], bytes(r[2]), r[3]) for r in cur]

    def max_id(self) -> int:
        with self._read_lock:
            if self._closed:
                return 0
            return int(self._reader.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])

    def ack(self, ids: Iterable[int], counter: str = "delivered") -> None:
        """Delete rows the broker acknowledged (one transaction for the whole batch); `counter`
        names the meta counter to add them to ("refused" for a PUBACK with an error code)."""
        ids = sorted(ids)
        if not ids:
            return
        with self._write:
            if self._closed:
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                total, low, rows = self._delete_ids(ids)
                self._bump_meta(counter, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._bytes -= total
            self._low_bytes -= low
            self._rows -= rows

    def quarantine(self, row_id: int) -> None:
        """Keep a row that cannot be delivered but stop sending it (a person may look at it);
        it still counts against the bounds and goes when the spool is full or too old."""
        with self._write:
            if self._closed:
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute(f"UPDATE outbox SET prio = {PRIO_QUARANTINE} WHERE id = ? AND prio >= 0",
                                     (row_id,)).rowcount
                self._bump_meta("quarantined", n)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._bytes, self._low_bytes, self._rows = self._measure()

    def prune_old(self, now: float | None = None) -> int:
        """Drop rows older than the age bound; returns how many."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        with self._write:
            if self._closed:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute("DELETE FROM outbox WHERE created < ?", (cutoff,)).rowcount
                if n:
                    self._bump_meta("dropped_age", n)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if n:
                self._bytes, self._low_bytes, self._rows = self._measure()
            return n

    def _measure(self) -> tuple[int, int, int]:
        total, low, rows = self._db.execute(
            f"SELECT coalesce(sum(size), 0), coalesce(sum(CASE WHEN prio = {PRIO_LOW} THEN size ELSE 0 END), 0), "
            "count(*) FROM outbox").fetchone()
        return int(total), int(low), int(rows)

    def __len__(self) -> int:
        return self._rows

    @property
    def bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        with self._write:
            if self._closed:
                return
            self._closed = True
            with self._read_lock:
                self._reader.close()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
