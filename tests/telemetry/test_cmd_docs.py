"""docs/mqtt.md's Commands section stays true: its test vector verifies, and it names every
reason code and operation the code knows, with the same accepted states."""

from __future__ import annotations

import json
import re
from pathlib import Path

from edge.telemetry import signing
from edge.telemetry.commands import CAPABILITIES, CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def section() -> str:
    text = DOC.read_text()
    start = text.index("## Commands (cmd/req and cmd/res)")
    end = text.find("\n## ", start + 10)
    return text[start:end if end > 0 else None]


def test_test_vector_verifies_and_matches_its_canonical_bytes():
    sec = section()
    envelope = json.loads(re.search(r"### Envelope\s+```json\n(.*?)```", sec, re.S).group(1))
    canonical = re.search(r"Test vector.*?```\n(.*?)\n```", sec, re.S).group(1).encode()
    public = re.search(r"public key `([A-Za-z0-9+/=]{44})`", sec).group(1)
    assert signing.canonical_json(envelope) == canonical
    assert signing.verify(envelope, signing.load_public_key(public))
    assert not signing.verify({**envelope, "exp": envelope["exp"] + 1}, signing.load_public_key(public))


def test_every_code_and_operation_is_documented_with_its_states():
    sec = section()
    for code in CODES:
        assert f"| `{code}` |" in sec, code
    for op, states in CAPABILITIES.items():
        row = next(line for line in sec.splitlines() if line.startswith(f"| `{op}` |"))
        documented = row.split("|")[3].strip()
        expected = "any" if len(states) == 8 else (", ".join(states) or "never")
        assert documented == expected, (op, documented)
