"""The job queue and each job's lifecycle, persisted in SQLite before anything is announced.

A power cut at any moment loses nothing: every state change is one transaction
(WAL, synchronous=FULL) committed before the agent publishes it. The agent's
loop is the only writer; `fabedge job list` reads the same file read-only.

Job states: staged -> armed -> running <-> paused -> done | failed | cancelled,
then closed by the operator's BED CLEAR with an outcome (good | rejected);
a job cancelled before it ever ran is closed at once, with no outcome.
A job found running or paused at start-up was cut short by a crash or power
loss: it becomes `interrupted` and is never restarted by itself. `rejected`
marks a job that failed its checks and never reached armed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edge.errors import FabedgeError

STATES = ("staged", "armed", "running", "paused", "done", "failed", "cancelled", "interrupted", "rejected")

# state -> states it may move to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "staged": ("armed", "cancelled"),
    "armed": ("running", "staged", "cancelled"),
    "running": ("paused", "done", "failed", "cancelled", "interrupted"),
    "paused": ("running", "failed", "cancelled", "interrupted"),
    "interrupted": ("armed", "cancelled"),
    "done": (), "failed": (), "cancelled": (), "rejected": (),
}
FINISHED = ("done", "failed", "cancelled")      # waiting for BED CLEAR until closed
HOLDS_MACHINE = ("armed", "running", "paused", "interrupted") + FINISHED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    design TEXT NOT NULL DEFAULT '',
    parts INTEGER NOT NULL DEFAULT 1,
    path TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    cmd_id TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'printer',
    lines INTEGER NOT NULL DEFAULT 0,
    layers INTEGER NOT NULL DEFAULT 0,
    est_s REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT '',
    closed INTEGER NOT NULL DEFAULT 0,
    acked_line INTEGER NOT NULL DEFAULT 0,
    layer INTEGER NOT NULL DEFAULT -1,
    error TEXT NOT NULL DEFAULT '',
    resume_path TEXT NOT NULL DEFAULT '',
    resume_pre INTEGER NOT NULL DEFAULT 0,
    resume_base INTEGER NOT NULL DEFAULT 0,
    outcome_sent INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (closed, state);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class JobStateError(FabedgeError):
    """A job was asked to move to a state its lifecycle does not allow."""


@dataclass(frozen=True)
class Job:
    seq: int
    id: str
    source: str
    name: str
    design: str
    parts: int
    path: str
    sha256: str
    cmd_id: str
    kind: str
    lines: int
    layers: int
    est_s: float
    state: str
    outcome: str
    closed: int
    acked_line: int
    layer: int
    error: str
    resume_path: str
    resume_pre: int
    resume_base: int
    outcome_sent: int
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def original_line(self, streamed_line: int) -> int:
        """The job file's line for a line of what is streamed (a resume file has a preamble)."""
        if not self.resume_path:
            return streamed_line
        return max(self.resume_base - 1, streamed_line - self.resume_pre + self.resume_base - 1)


_COLS = [f.name for f in fields(Job)]


class JobStore:
    """SQLite store of jobs; one writer (the agent's loop thread)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise FabedgeError(f"{self.path}: no job store here (has the agent ever run with this state_dir?)")
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"jobs", "meta"} <= tables:
                self.db.close()
                raise FabedgeError(f"{self.path}: the job store is not set up yet (the agent is starting)")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Built by whoever constructs the agent, then used only by its loop thread.
            self.db = sqlite3.connect(str(self.path), timeout=5, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ---- reading ----------------------------------------------------------------
    def _row(self, row: tuple | None) -> Job | None:
        return Job(*row) if row else None

    def get(self, job_id: str) -> Job | None:
        return self._row(self.db.execute(f"SELECT {','.join(_COLS)} FROM jobs WHERE id=?", (job_id,)).fetchone())

    def find(self, prefix: str) -> Job:
        """A job by id or unique id prefix (for people typing ids)."""
        rows = self.db.execute(f"SELECT {','.join(_COLS)} FROM jobs WHERE id LIKE ? ORDER BY seq",
                               (prefix.replace("%", "") + "%",)).fetchall()
        exact = [r for r in rows if r[1] == prefix]
        if exact or len(rows) == 1:
            return Job(*(exact or rows)[0])
        raise FabedgeError(f"no job with id {prefix!r}" if not rows else f"job id {prefix!r} is ambiguous")

    def list(self, limit: int = 50, open_only: bool = False) -> list[Job]:
        where = "WHERE closed=0" if open_only else ""
        rows = self.db.execute(f"SELECT {','.join(_COLS)} FROM jobs {where} ORDER BY seq DESC LIMIT ?",
                               (limit,)).fetchall()
        return [Job(*r) for r in reversed(rows)]

    def active(self) -> Job | None:
        """The job holding the machine (armed, running, paused, interrupted, or finished but not cleared)."""
        marks = ",".join("?" * len(HOLDS_MACHINE))
        return self._row(self.db.execute(
            f"SELECT {','.join(_COLS)} FROM jobs WHERE closed=0 AND state IN ({marks}) ORDER BY seq LIMIT 1",
            HOLDS_MACHINE).fetchone())

    def next_staged(self) -> Job | None:
        return self._row(self.db.execute(
            f"SELECT {','.join(_COLS)} FROM jobs WHERE closed=0 AND state='staged' ORDER BY seq LIMIT 1").fetchone())

    def machine_state(self) -> str:
        """The machine state the region sees, derived from the jobs (and a fault, if set)."""
        if self.get_meta("fault"):
            return "fault"
        job = self.active()
        if job is not None:
            return "awaiting_bed_clear" if job.state in FINISHED else job.state
        return "staged" if self.next_staged() else "idle"

    def counters(self) -> dict[str, int]:
        out = {"jobs_done": 0, "parts_good": 0, "parts_rejected": 0}
        for outcome, n, parts in self.db.execute(
                "SELECT outcome, COUNT(*), COALESCE(SUM(parts),0) FROM jobs WHERE closed=1 GROUP BY outcome"):
            if outcome == "good":
                out["parts_good"] += parts
                out["jobs_done"] += n
            elif outcome == "rejected":
                out["parts_rejected"] += parts
        return out

    def get_meta(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return row[0] if row else default

    # ---- writing (the agent's loop only) -----------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(k,v) VALUES(?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (key, value))

    def add(self, job_id: str, *, source: str, state: str = "staged", **values: Any) -> Job:
        if state not in ("staged", "rejected"):
            raise JobStateError(f"job {job_id}: a new job starts staged or rejected, not {state}")
        if self.get(job_id) is not None:
            raise JobStateError(f"job {job_id} already exists")
        bad = set(values) - set(_COLS)
        if bad:
            raise ValueError(f"unknown job fields {sorted(bad)}")
        now = time.time()
        row = {"id": job_id, "source": source, "state": state, "created": now, "updated": now,
               "closed": 1 if state == "rejected" else 0, **values}
        cols = ",".join(row)
        self.db.execute(f"INSERT INTO jobs ({cols}) VALUES ({','.join('?' * len(row))})", tuple(row.values()))
        return self.get(job_id)  # type: ignore[return-value]

    def transition(self, job_id: str, new_state: str, **values: Any) -> Job:
        """Move a job to `new_state` (committed durably before this returns)."""
        job = self.get(job_id)
        if job is None:
            raise JobStateError(f"no job {job_id}")
        if job.closed:
            raise JobStateError(f"job {job_id} is closed")
        if new_state not in TRANSITIONS[job.state]:
            raise JobStateError(f"job {job_id}: cannot go from {job.state} to {new_state}")
        self._update(job_id, state=new_state, **values)
        return self.get(job_id)  # type: ignore[return-value]

    def progress(self, job_id: str, acked_line: int, layer: int) -> None:
        """Remember the last acknowledged line (called in batches, not per line)."""
        self._update(job_id, acked_line=acked_line, layer=layer)

    def close_job(self, job_id: str, outcome: str) -> Job:
        """BED CLEAR: the operator took the work off the machine."""
        if outcome not in ("good", "rejected"):
            raise ValueError(f"outcome must be good or rejected, not {outcome!r}")
        job = self.get(job_id)
        if job is None or job.closed:
            raise JobStateError(f"job {job_id} is not open")
        if job.state not in FINISHED + ("interrupted",):
            raise JobStateError(f"job {job_id} is {job.state}: only a finished job is closed")
        if job.state == "interrupted":
            self._update(job_id, state="cancelled")
        self._update(job_id, outcome=outcome, closed=1)
        return self.get(job_id)  # type: ignore[return-value]

    def discard(self, job_id: str) -> Job:
        """Close a job cancelled before it ever ran: nothing was made, so no outcome and no BED CLEAR."""
        job = self.get(job_id)
        if job is None or job.closed or job.state != "cancelled" or job.acked_line:
            raise JobStateError(f"job {job_id} ran or is open: it is closed by BED CLEAR")
        self._update(job_id, closed=1)
        return self.get(job_id)  # type: ignore[return-value]

    def outcome_sent(self, job_id: str) -> None:
        """The part.outcome of a closed job is durable in the telemetry spool."""
        self._update(job_id, outcome_sent=1)

    def unsent_outcomes(self) -> list[Job]:
        """Closed jobs whose part.outcome may not have reached the spool (a crash in between)."""
        rows = self.db.execute(f"SELECT {','.join(_COLS)} FROM jobs WHERE closed=1 AND outcome_sent=0 "
                               "AND outcome IN ('good','rejected') AND state != 'rejected' ORDER BY seq").fetchall()
        return [Job(*r) for r in rows]

    def recover(self) -> list[Job]:
        """At start-up: jobs cut short by a crash become interrupted (never restarted)."""
        out = []
        for job in self.list(limit=1000, open_only=True):
            if job.state in ("running", "paused"):
                out.append(self.transition(job.id, "interrupted",
                                           error=f"the agent stopped while the job was {job.state}"))
        return out

    def _update(self, job_id: str, **values: Any) -> None:
        values["updated"] = time.time()
        sets = ",".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*values.values(), job_id))
