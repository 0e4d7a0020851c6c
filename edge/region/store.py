"""The campaign dispatcher's memory: designs, machines, offered jobs and counted parts, in SQLite.

Everything the dispatcher knows lives here (WAL, synchronous=FULL), so it can be
killed at any moment and started again: an MQTT message is folded in and
committed before its PUBACK goes back to the broker, and an offer is recorded
before it is published. Parts are counted by distinct event id (the
`outcomes` primary key), so a QoS 1 duplicate or a replay never counts twice.
One connection, guarded by a lock: the MQTT thread and the dispatch loop share it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import FabedgeError

OPEN = ("offered", "staged", "armed", "running", "done")      # parts of these jobs are on their way
LEASED = ("offered", "staged", "armed")                       # not started yet: the lease may run out

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS designs (
    name TEXT PRIMARY KEY, quantity INTEGER NOT NULL, parts_per_job INTEGER NOT NULL,
    created REAL NOT NULL, active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS gcodes (
    design TEXT NOT NULL, match TEXT NOT NULL, gcode BLOB NOT NULL, sha256 TEXT NOT NULL,
    bbox TEXT NOT NULL, PRIMARY KEY (design, match));
CREATE TABLE IF NOT EXISTS machines (
    site TEXT NOT NULL, machine TEXT NOT NULL, kind TEXT NOT NULL DEFAULT '', profile TEXT NOT NULL DEFAULT '',
    volume TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'unknown', session INTEGER NOT NULL DEFAULT -1,
    state TEXT NOT NULL DEFAULT '', seen REAL NOT NULL DEFAULT 0, PRIMARY KEY (site, machine));
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, design TEXT NOT NULL, site TEXT NOT NULL, machine TEXT NOT NULL,
    cmd_id TEXT NOT NULL UNIQUE, parts INTEGER NOT NULL, status TEXT NOT NULL, offered REAL NOT NULL,
    lease_until REAL, ended REAL, reason TEXT NOT NULL DEFAULT '', starts INTEGER NOT NULL DEFAULT 0,
    envelope TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS unfit (design TEXT NOT NULL, site TEXT NOT NULL, machine TEXT NOT NULL,
    reason TEXT NOT NULL, PRIMARY KEY (design, site, machine));
CREATE TABLE IF NOT EXISTS outcomes (
    event_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, design TEXT NOT NULL, site TEXT NOT NULL,
    machine TEXT NOT NULL, parts INTEGER NOT NULL, outcome TEXT NOT NULL, ts REAL NOT NULL, day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outcomes_design ON outcomes (design, outcome);
"""


class StoreError(FabedgeError):
    """The campaign database cannot be used (names the file and the reason)."""


@dataclass(frozen=True)
class Design:
    name: str
    quantity: int
    parts_per_job: int
    active: bool


@dataclass(frozen=True)
class Machine:
    site: str
    machine: str
    kind: str
    profile: str
    volume: dict[str, list[float]]
    status: str
    session: int
    state: str


@dataclass(frozen=True)
class JobRow:
    job_id: str
    design: str
    site: str
    machine: str
    cmd_id: str
    parts: int
    status: str
    offered: float
    lease_until: float | None
    reason: str
    starts: int


def day_of(ts: float) -> str:
    """The UTC day a part was made (the report's grouping)."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()


class CampaignStore:
    """All dispatcher state; every method commits before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the campaign database: {exc}") from None
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _tx(self) -> "_Tx":
        return _Tx(self)

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    # ---- meta --------------------------------------------------------------------------
    def get_meta(self, key: str, default: str = "") -> str:
        rows = self._all("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def next_number(self, key: str) -> int:
        """A durable counter (job and command numbers never repeat across restarts)."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            n = int(row[0]) + 1 if row else 1
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(n)))
        return n

    # ---- designs -----------------------------------------------------------------------
    def add_design(self, name: str, quantity: int, parts_per_job: int,
                   gcodes: dict[str, tuple[bytes, str, dict[str, list[float]]]]) -> None:
        """gcodes: match ('kind:printer', 'profile:prusa-mk3s') -> (file bytes, sha256, bbox)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO designs VALUES (?, ?, ?, ?, 1)", (name, quantity, parts_per_job,
                                                                                time.time()))
            db.execute("DELETE FROM gcodes WHERE design=?", (name,))
            for match, (data, sha, bbox) in gcodes.items():
                db.execute("INSERT INTO gcodes VALUES (?, ?, ?, ?, ?)", (name, match, data, sha, json.dumps(bbox)))

    def designs(self, active_only: bool = True) -> list[Design]:
        sql = "SELECT name, quantity, parts_per_job, active FROM designs"
        rows = self._all(sql + (" WHERE active=1" if active_only else "") + " ORDER BY created")
        return [Design(n, q, p, bool(a)) for n, q, p, a in rows]

    def set_active(self, name: str, active: bool) -> None:
        with self._tx() as db:
            if db.execute("UPDATE designs SET active=? WHERE name=?", (int(active), name)).rowcount == 0:
                raise StoreError(f"{self.path}: no design named {name!r}")

    def gcode_for(self, design: str, kind: str, profile: str) -> tuple[bytes, str, dict] | None:
        """The file for this machine: its profile's own file first, else its kind's."""
        for match in (f"profile:{profile}", f"kind:{kind}"):
            rows = self._all("SELECT gcode, sha256, bbox FROM gcodes WHERE design=? AND match=?", (design, match))
            if rows and (profile or not match.startswith("profile:")):
                data, sha, bbox = rows[0]
                return bytes(data), sha, json.loads(bbox)
        return None

    # ---- machines ------------------------------------------------------------------------
    def machine_seen(self, site: str, machine: str, ts: float, **fields: Any) -> None:
        cols = {k: (json.dumps(v) if k == "volume" else v) for k, v in fields.items()}
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO machines (site, machine) VALUES (?, ?)", (site, machine))
            sets = ", ".join(f"{k}=?" for k in cols) + (", " if cols else "") + "seen=max(seen, ?)"
            db.execute(f"UPDATE machines SET {sets} WHERE site=? AND machine=?", (*cols.values(), ts, site, machine))

    def machine(self, site: str, machine: str) -> Machine | None:
        rows = self._all("SELECT site, machine, kind, profile, volume, status, session, state FROM machines "
                         "WHERE site=? AND machine=?", (site, machine))
        return _machine(rows[0]) if rows else None

    def machines(self) -> list[Machine]:
        return [_machine(r) for r in self._all("SELECT site, machine, kind, profile, volume, status, session, "
                                               "state FROM machines ORDER BY site, machine")]

    def mark_unfit(self, design: str, site: str, machine: str, reason: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO unfit VALUES (?, ?, ?, ?)", (design, site, machine, reason))

    def unfit(self, design: str) -> set[tuple[str, str]]:
        return {(s, m) for s, m in self._all("SELECT site, machine FROM unfit WHERE design=?", (design,))}

    # ---- jobs ------------------------------------------------------------------------------
    def add_job(self, job_id: str, design: str, site: str, machine: str, cmd_id: str, parts: int,
                lease_until: float, envelope: str = "") -> None:
        with self._tx() as db:
            db.execute("INSERT INTO jobs (job_id, design, site, machine, cmd_id, parts, status, offered, lease_until,"
                       " envelope) VALUES (?, ?, ?, ?, ?, ?, 'offered', ?, ?, ?)",
                       (job_id, design, site, machine, cmd_id, parts, time.time(), lease_until, envelope))

    def unanswered_offers(self) -> list[tuple[str, str, str, str]]:
        """(job id, site, machine, signed envelope) of offers with no sign of life yet."""
        return [tuple(r) for r in self._all("SELECT job_id, site, machine, envelope FROM jobs "
                                            "WHERE status='offered' AND envelope != '' ORDER BY offered")]

    def job(self, job_id: str) -> JobRow | None:
        rows = self._all(_JOB_SELECT + " WHERE job_id=?", (job_id,))
        return JobRow(*rows[0]) if rows else None

    def job_by_cmd(self, cmd_id: str) -> JobRow | None:
        rows = self._all(_JOB_SELECT + " WHERE cmd_id=?", (cmd_id,))
        return JobRow(*rows[0]) if rows else None

    def jobs(self, statuses: tuple[str, ...] | None = None, design: str | None = None) -> list[JobRow]:
        sql, args = _JOB_SELECT + " WHERE 1=1", []
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += list(statuses)
        if design:
            sql += " AND design=?"
            args.append(design)
        return [JobRow(*r) for r in self._all(sql + " ORDER BY offered", tuple(args))]

    def set_job(self, job_id: str, status: str, *, reason: str = "", lease_until: float | None = None,
                started: bool = False, only_from: tuple[str, ...] | None = None) -> bool:
        """Move a job on; `only_from` guards against going backwards (a late duplicate)."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE job_id=?", (job_id,)).fetchone()
            if row is None or (only_from is not None and row[0] not in only_from):
                return False
            ended = time.time() if status not in OPEN else None
            db.execute("UPDATE jobs SET status=?, reason=CASE WHEN ?='' THEN reason ELSE ? END, lease_until=?, "
                       "ended=coalesce(?, ended), starts=starts+? WHERE job_id=?",
                       (status, reason, reason, lease_until, ended, int(started), job_id))
        return True

    def open_on(self, site: str, machine: str) -> list[JobRow]:
        rows = self._all(_JOB_SELECT + f" WHERE site=? AND machine=? AND status IN ({','.join('?' * len(OPEN))})",
                         (site, machine, *OPEN))
        return [JobRow(*r) for r in rows]

    # ---- parts -------------------------------------------------------------------------------
    def add_outcome(self, event_id: str, job_id: str, design: str, site: str, machine: str, parts: int,
                    outcome: str, ts: float) -> bool:
        """Count one part.outcome event; False when this event id was counted before."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (event_id, job_id, design, site, machine, parts, outcome, ts, day_of(ts)))
            if cur.rowcount == 0:
                return False
            db.execute("UPDATE jobs SET status='closed', reason=?, ended=? WHERE job_id=?",
                       (f"parts {outcome}", time.time(), job_id))
        return True

    def good_parts(self, design: str) -> int:
        rows = self._all("SELECT coalesce(sum(parts), 0) FROM outcomes WHERE design=? AND outcome='good'", (design,))
        return int(rows[0][0])

    def in_flight(self, design: str) -> int:
        rows = self._all(f"SELECT coalesce(sum(parts), 0) FROM jobs WHERE design=? AND status IN "
                         f"({','.join('?' * len(OPEN))})", (design, *OPEN))
        return int(rows[0][0])

    def outcome_rows(self) -> list[tuple[str, str, str, str, int]]:
        """(design, site, day, outcome, parts) summed, for the report."""
        return [(d, s, day, o, int(n)) for d, s, day, o, n in self._all(
            "SELECT design, site, day, outcome, sum(parts) FROM outcomes GROUP BY design, site, day, outcome "
            "ORDER BY design, site, day, outcome")]

    def outcome_events(self) -> int:
        return int(self._all("SELECT count(*) FROM outcomes")[0][0])


_JOB_SELECT = ("SELECT job_id, design, site, machine, cmd_id, parts, status, offered, lease_until, reason, starts "
               "FROM jobs")


def _machine(r: tuple) -> Machine:
    site, machine, kind, profile, volume, status, session, state = r
    try:
        vol = json.loads(volume)
    except ValueError:
        vol = {}
    return Machine(site, machine, kind, profile, vol if isinstance(vol, dict) else {}, status, session, state)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT under the store's lock (ROLLBACK on error)."""

    def __init__(self, store: CampaignStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store.lock.acquire()
        self.store.db.execute("BEGIN IMMEDIATE")
        return self.store.db

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()

