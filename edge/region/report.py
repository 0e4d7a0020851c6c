"""`fabedge region report`: parts good / rejected per design, site and day, and the rate per day.

Built only from counted part.outcome events (distinct event ids), so it is the
region's exact count, whatever was replayed or delivered twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from edge.region.store import CampaignStore


def summary(store: CampaignStore) -> dict[str, Any]:
    """{"rows": [{design, site, day, good, rejected}], "days": {day: {design: {good, rejected}}},
    "designs": {design: {good, rejected, quantity, rate_per_day}}, "events": n}."""
    cells: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: {"good": 0, "rejected": 0})
    days: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: {"good": 0, "rejected": 0}))
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"good": 0, "rejected": 0})
    for design, site, day, outcome, parts in store.outcome_rows():
        cells[(design, site, day)][outcome] += parts
        days[day][design][outcome] += parts
        totals[design][outcome] += parts
    quantities = {d.name: d.quantity for d in store.designs(active_only=False)}
    for design, t in totals.items():
        n_days = sum(1 for d in days.values() if design in d)
        t["quantity"] = quantities.get(design)
        t["days"] = n_days
        t["rate_per_day"] = round(t["good"] / n_days, 1) if n_days else 0.0
    for design, q in quantities.items():
        totals.setdefault(design, {"good": 0, "rejected": 0, "quantity": q, "days": 0, "rate_per_day": 0.0})
    return {"rows": [{"design": d, "site": s, "day": day, **c} for (d, s, day), c in sorted(cells.items())],
            "days": {day: {d: dict(v) for d, v in sorted(per.items())} for day, per in sorted(days.items())},
            "designs": dict(sorted(totals.items())), "events": store.outcome_events()}


def render(data: dict[str, Any]) -> str:
    lines = [f"{'design':24} {'site':20} {'day':10} {'good':>7} {'rejected':>9}"]
    for r in data["rows"]:
        lines.append(f"{r['design'][:24]:24} {r['site'][:20]:20} {r['day']:10} {r['good']:7d} {r['rejected']:9d}")
    lines.append("")
    lines.append("per day (good parts; rejected in brackets):")
    for day, per in data["days"].items():
        lines.append(f"  {day}  " + ", ".join(f"{d} {c['good']} ({c['rejected']})" for d, c in per.items()))
    lines.append("")
    lines.append(f"{'design':24} {'good':>7} {'rejected':>9} {'quantity':>9} {'done':>6} {'rate/day':>9}")
    for design, t in data["designs"].items():
        q = t.get("quantity")
        done = f"{100.0 * t['good'] / q:5.1f}%" if q else "     -"
        lines.append(f"{design[:24]:24} {t['good']:7d} {t['rejected']:9d} {q if q is not None else '-':>9} {done:>6} "
                     f"{t['rate_per_day']:9.1f}")
    lines.append(f"({data['events']} part.outcome events counted, each event id once)")
    return "\n".join(lines)


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True)
