"""The replay store: every authenticated command id this machine has seen, with its results.

A command id is claimed atomically (SQLite, WAL, synchronous=FULL) the moment
a command passes its signature and freshness checks, before anything acts on
it, so a second delivery (QoS 1 redelivery, a replay by an attacker, a
restart in between) is answered with the earlier results and never run
again. Rows are kept until `retention_s` after the command's expiry: after
that the freshness check alone rejects the id, so the store stays bounded.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_commands (
    id      TEXT PRIMARY KEY,
    key     TEXT NOT NULL,
    op      TEXT NOT NULL,
    exp     REAL NOT NULL,
    seen_at REAL NOT NULL,
    results TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS seen_commands_exp ON seen_commands (exp);
"""


class ReplayStore:
    """Command ids seen and their recorded results; safe to call from any one thread at a time."""

    def __init__(self, db_path: str | Path, retention_s: float = 86400.0) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_s = retention_s
        # The agent builds the gate on one thread and checks on its loop thread; the lock
        # only serialises access to the connection, never business logic.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def claim(self, cmd_id: str, key: str, op: str, exp: float, now: float) -> list[dict[str, Any]] | None:
        """Mark the id as seen. Returns None if it is new, else the results recorded for it earlier."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM seen_commands WHERE exp < ?", (now - self.retention_s,))
                row = self._db.execute("SELECT results FROM seen_commands WHERE id = ?", (cmd_id,)).fetchone()
                if row is None:
                    self._db.execute("INSERT INTO seen_commands (id, key, op, exp, seen_at) VALUES (?, ?, ?, ?, ?)",
                                     (cmd_id, key, op, exp, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return None if row is None else json.loads(row[0])

    def record(self, cmd_id: str, result: dict[str, Any]) -> None:
        """Append a result (e.g. the final done/failed/rejected answer) to an id claimed earlier."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT results FROM seen_commands WHERE id = ?", (cmd_id,)).fetchone()
                if row is None:
                    raise KeyError(f"command {cmd_id!r} was never accepted by this gate")
                results = json.loads(row[0]) + [result]
                self._db.execute("UPDATE seen_commands SET results = ? WHERE id = ?",
                                 (json.dumps(results, separators=(",", ":")), cmd_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def results(self, cmd_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute("SELECT results FROM seen_commands WHERE id = ?", (cmd_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM seen_commands").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
