"""The fleet view: every machine of a region, built from the MQTT messages it publishes.

`FleetView.apply(topic, payload)` takes each message (retained birth/status/state
and live events) and `table()` gives one row per machine: status, state, job,
progress, ETA, last seen and the parts made today per design. Parts are counted
by distinct event id, so a QoS 1 duplicate or a replay after an outage never
counts twice; a `status` carrying an older session than the one already seen
(a stale last will) is ignored. Used by `fabedge fleet watch` and reusable by a
region's dispatcher. Pure bookkeeping: no network, no clocks except `now`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.telemetry import schema

KEEP_DAYS = 2   # part counters (and the event ids behind them) are kept for today and yesterday


@dataclass
class MachineRow:
    site: str
    machine: str
    status: str = "unknown"
    session: int = -1
    state: dict[str, Any] = field(default_factory=dict)
    birth: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0
    last_event: str = ""


def _local_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).date().isoformat()


class FleetView:
    """Machines and part counts from fabedge topics; `apply` never raises on bad input."""

    def __init__(self, now: Callable[[], float] = time.time, day_of: Callable[[float], str] = _local_day) -> None:
        self._now = now
        self._day_of = day_of
        self.machines: dict[tuple[str, str], MachineRow] = {}
        # day -> (site, machine, design) -> {"good": n, "rejected": n}
        self._parts: dict[str, dict[tuple[str, str, str], dict[str, int]]] = {}
        self._seen: dict[str, set[str]] = {}     # day -> part.outcome event ids already counted
        self.ignored_stale = 0
        self.ignored_bad = 0

    # ---- input ------------------------------------------------------------------------
    def apply(self, topic: str, payload: bytes | str | dict) -> bool:
        """Fold one message into the view; False when it was ignored (foreign, malformed, stale)."""
        where = schema.parse_topic(topic)
        if where is None or where.kind in ("cmd/req", "cmd/res"):
            return False
        msg = payload if isinstance(payload, dict) else schema.decode(
            payload.encode() if isinstance(payload, str) else payload)
        if msg is None:
            self.ignored_bad += 1
            return False
        row = self.machines.get((where.site, where.machine))
        if row is None:
            row = self.machines[(where.site, where.machine)] = MachineRow(where.site, where.machine)
        ts = msg.get("ts")
        seen = float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else self._now()
        handler = {"status": self._status, "state": self._state, "birth": self._birth,
                   "evt": self._event, "tele": lambda r, m, w: True}[where.kind]
        if not handler(row, msg, where):
            return False
        row.last_seen = max(row.last_seen, seen)
        return True

    def _status(self, row: MachineRow, msg: dict, _where: schema.ParsedTopic) -> bool:
        status, session = msg.get("status"), msg.get("session")
        if status not in schema.STATUS_VALUES or not isinstance(session, int) or isinstance(session, bool):
            self.ignored_bad += 1
            return False
        if session < row.session:
            self.ignored_stale += 1   # a will from an older connection: the machine is back already
            return False
        row.status, row.session = status, session
        return True

    def _state(self, row: MachineRow, msg: dict, _where: schema.ParsedTopic) -> bool:
        row.state = {k: v for k, v in msg.items() if k not in schema.ENVELOPE_KEYS}
        return True

    def _birth(self, row: MachineRow, msg: dict, _where: schema.ParsedTopic) -> bool:
        row.birth = {k: v for k, v in msg.items() if k not in schema.ENVELOPE_KEYS}
        return True

    def _event(self, row: MachineRow, msg: dict, where: schema.ParsedTopic) -> bool:
        row.last_event = where.sub
        if where.sub != "part.outcome":
            return True
        event_id, ts = msg.get("id"), msg.get("ts")
        outcome, parts = msg.get("outcome"), msg.get("parts", 1)
        if (not isinstance(event_id, str) or not isinstance(ts, (int, float)) or outcome not in schema.PART_OUTCOMES
                or not isinstance(parts, int) or isinstance(parts, bool) or parts < 0):
            self.ignored_bad += 1
            return False
        day = self._day_of(float(ts))
        seen = self._seen.setdefault(day, set())
        if event_id in seen:
            return False   # a duplicate delivery or a replay: already counted
        seen.add(event_id)
        design = str(msg.get("design") or "?")
        site = str(msg.get("site") or where.site)
        counts = self._parts.setdefault(day, {}).setdefault((site, where.machine, design), {"good": 0, "rejected": 0})
        counts[outcome] += parts
        self._forget_old_days()
        return True

    def _forget_old_days(self) -> None:
        if len(self._seen) > KEEP_DAYS:
            for day in sorted(self._seen)[:-KEEP_DAYS]:
                self._seen.pop(day, None)
                self._parts.pop(day, None)

    # ---- output -----------------------------------------------------------------------
    def parts_today(self) -> dict[tuple[str, str], dict[str, int]]:
        """(site, design) -> {"good": n, "rejected": n} for today."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        for (site, _machine, design), c in self._parts.get(self._day_of(self._now()), {}).items():
            tot = out.setdefault((site, design), {"good": 0, "rejected": 0})
            tot["good"] += c["good"]
            tot["rejected"] += c["rejected"]
        return out

    def table(self) -> list[dict[str, Any]]:
        """One dict per machine, sorted by site and machine."""
        today = self._parts.get(self._day_of(self._now()), {})
        rows = []
        for (site, machine), r in sorted(self.machines.items()):
            st = r.state
            job = st.get("job")
            jd = job if isinstance(job, dict) else {}
            parts = {design: dict(c) for (s, m, design), c in sorted(today.items()) if (s, m) == (site, machine)}
            rows.append({
                "site": site, "machine": machine, "status": r.status, "session": r.session,
                "state": st.get("state", ""),
                "job": (job.get("id") or job.get("name") or "") if isinstance(job, dict) else (job or ""),
                "design": job.get("design", "") if isinstance(job, dict) else "",
                "progress": _progress(st.get("progress", jd.get("progress"))),
                "eta_s": _number(st.get("eta_s", jd.get("eta_s"))),
                "last_seen": r.last_seen, "last_event": r.last_event, "parts_today": parts,
            })
        return rows

    def render(self) -> str:
        """The table as fixed-width text for a terminal."""
        now = self._now()
        head = ("SITE", "MACHINE", "STATUS", "STATE", "JOB", "PROGRESS", "ETA", "LAST SEEN", "PARTS TODAY")
        lines = [head]
        for r in self.table():
            parts = " ".join(f"{d}:{c['good']}" + (f"/-{c['rejected']}" if c["rejected"] else "")
                             for d, c in r["parts_today"].items())
            lines.append((r["site"], r["machine"], f"{r['status']}#{r['session']}", r["state"], str(r["job"])[:24],
                          "" if r["progress"] is None else f"{r['progress']:5.1f}%",
                          _duration(r["eta_s"]), _ago(now, r["last_seen"]), parts))
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        text = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
        totals = self.parts_today()
        if totals:
            text.append("")
            text.append("parts today: " + ", ".join(
                f"{site}/{design} {c['good']} good" + (f", {c['rejected']} rejected" if c["rejected"] else "")
                for (site, design), c in sorted(totals.items())))
        return "\n".join(text)

    def to_json(self) -> str:
        return json.dumps({"machines": self.table(),
                           "parts_today": [{"site": s, "design": d, **c} for (s, d), c in
                                           sorted(self.parts_today().items())]}, sort_keys=True)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _progress(value: Any) -> float | None:
    """Progress in percent, 0..100."""
    v = _number(value)
    return None if v is None else max(0.0, min(100.0, v))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _ago(now: float, ts: float) -> str:
    if not ts:
        return "never"
    d = max(0, int(now - ts))
    return f"{d}s ago" if d < 120 else f"{d // 60}m ago" if d < 7200 else f"{d // 3600}h ago"
