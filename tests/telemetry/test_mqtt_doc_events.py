"""docs/mqtt.md's event and birth tables say exactly what the agent sends.

The agent's payloads are dict literals at a few call sites (announce, telemetry.event,
telemetry.birth, begin's extra for job.started); their keys are read from the source with
`ast`, so a field added, renamed or dropped in the code fails here until the doc follows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edge.telemetry.schema import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mqtt.md").read_text()
AGENT_FILES = sorted((ROOT / "edge").glob("agent*.py"))
TICKED = re.compile(r"`([a-z_][a-z0-9_.]*)`")


def _keys(node: ast.AST) -> set[str]:
    """The top-level string keys of a dict literal, with those of dicts merged into it by `**`
    (values that are dicts themselves, like findings' {line, message}, are not payload keys)."""
    if not isinstance(node, ast.Dict):
        return set()
    out = set()
    for k, v in zip(node.keys, node.values):
        if k is None:                                  # **(...): dict literals inside it merge in
            for inner in ast.walk(v):
                if isinstance(inner, ast.Dict):
                    out |= _keys(inner)
        elif isinstance(k, ast.Constant) and isinstance(k.value, str):
            out.add(k.value)
    return out


def _calls(name: str):
    for path in AGENT_FILES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                yield node


def _announce_base() -> set[str]:
    for path in AGENT_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "announce":
                payload = next(a.value for a in ast.walk(node)
                               if isinstance(a, ast.Assign) and getattr(a.targets[0], "id", "") == "payload")
                # laser_used is added only when the job has finished (announce reads FINISHED)
                return _keys(payload) - {"laser_used"}
    raise AssertionError("announce() not found in edge/agent*.py")


def code_events() -> dict[str, set[str]]:
    """Event type -> every payload key some call site of the agent sends with it."""
    out: dict[str, set[str]] = {}
    base = _announce_base()
    for call in _calls("announce"):
        kind = call.args[1]
        assert isinstance(kind, ast.Constant), ast.unparse(call)
        out.setdefault(kind.value, set(base)).update(_keys(call.args[2]) if len(call.args) > 2 else set())
    for call in _calls("begin"):                      # begin(job, extra): extra goes into job.started
        if len(call.args) > 1:
            out.setdefault("job.started", set(base)).update(_keys(call.args[1]))
    for call in _calls("event"):
        kind, payload = call.args[0], call.args[1]
        if isinstance(kind, ast.Name) and kind.id == "event_type":
            continue                                   # announce() forwarding: its callers are read above
        if isinstance(kind, ast.JoinedStr):            # f"inspect.{ev.kind}": every inspect.* type
            prefix = kind.values[0].value
            types = [t for t in EVENT_TYPES if t.startswith(prefix)]
        else:
            types = [kind.value]
        for t in types:
            out.setdefault(t, set()).update(_keys(payload))
    from edge.jobs import FINISHED
    for state in FINISHED:                             # job.done / job.failed / job.cancelled
        out[f"job.{state}"].add("laser_used")
    return out


def doc_events() -> dict[str, set[str]]:
    table = DOC[DOC.index("| type | when | fields |"):]
    out = {}
    for row in table.splitlines()[2:]:
        if not row.startswith("|"):
            break
        cells = [c.strip() for c in row.strip("|").split("|")]
        (kind,) = TICKED.findall(cells[0])
        # a field's own backticked values in parentheses (`good`/`rejected`) are not fields
        fields = re.sub(r"\([^()]*(?:\([^()]*\)[^()]*)*\)", "", cells[2])
        out[kind] = set(TICKED.findall(fields))
    return out


def test_every_event_type_is_documented_once():
    assert sorted(doc_events()) == sorted(EVENT_TYPES)


def test_documented_event_fields_are_exactly_the_ones_the_agent_sends():
    code, doc = code_events(), doc_events()
    assert set(code) <= set(EVENT_TYPES), set(code) - set(EVENT_TYPES)
    for kind in EVENT_TYPES:
        assert doc[kind] == code.get(kind, set()), \
            f"{kind}: documented but not sent {sorted(doc[kind] - code.get(kind, set()))}, " \
            f"sent but not documented {sorted(code.get(kind, set()) - doc[kind])}"


def test_the_fixed_drift_stays_fixed():
    doc = doc_events()
    assert doc["machine.fault"] == {"reason"}
    assert "lines_sent" in doc["job.done"] and "duration_s" not in doc["job.done"]
    assert "laser" in doc["job.started"]


def test_birth_table_lists_exactly_the_birth_fields():
    (call,) = [c for c in _calls("birth")]
    sent = {k.value for k in call.args[0].keys if isinstance(k, ast.Constant)}
    sec = DOC[DOC.index("### `birth`"):DOC.index("### `state`")]
    rows = [r for r in sec.splitlines() if r.startswith("| `")]
    documented = {TICKED.findall(r.split("|")[1])[0] for r in rows}
    assert documented == sent
    for row in rows:                                   # each field has a type
        assert row.split("|")[2].strip(), row
    example = re.search(r"```json\n(.*?)```", sec, re.S).group(1)
    for key in sent:
        assert f'"{key}":' in example, key


def test_birth_counters_document_the_store_counters_and_the_laser_wear():
    from edge.jobs import JobStore
    import inspect
    counters = re.findall(r'"(\w+)": 0', inspect.getsource(JobStore.counters))
    sec = DOC[DOC.index("### `birth`"):DOC.index("### `state`")]
    row = next(r for r in sec.splitlines() if r.startswith("| `counters`"))
    for key in counters + ["laser"]:
        assert f"`{key}`" in row, key
    from edge.laser import WearCounter
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        wear = WearCounter(Path(d) / "w.json").add(1.0, 2.0)
    para = sec[sec.index("`counters.laser` (laser cutters only"):]
    for key in wear:
        assert f"`{key}`" in para.split("\n\n")[0], key


def test_laser_report_fields_are_documented():
    from edge.laser import LaserReport
    report = LaserReport("x.gcode", "M4", 500.0, 1000.0, 1.0, 1.0, 1.0, 1.0).telemetry()
    para = DOC[DOC.index("`job.started`'s `laser` report"):]
    para = para.split("\n\n")[0]
    for key in report:
        assert f"`{key}`" in para, key


def test_state_table_lists_exactly_the_state_fields():
    import inspect

    from edge.agent import Agent
    body = ast.parse(inspect.getsource(Agent.state_payload).strip())
    sent = set().union(*(_keys(d) for d in ast.walk(body) if isinstance(d, ast.Dict)))
    sent |= {t.slice.value for t in ast.walk(body) if isinstance(t, ast.Subscript)
             and isinstance(t.ctx, ast.Store) and isinstance(t.slice, ast.Constant)}   # out["job"] = ...
    sec = DOC[DOC.index("### `state`"):DOC.index("### `tele`")]
    documented = {TICKED.findall(r.split("|")[1])[0] for r in sec.splitlines() if r.startswith("| `")}
    assert documented == sent
