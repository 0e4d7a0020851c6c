"""Helpers shared by the signed-command tests (tests/telemetry/test_cmd_*.py): a region key
pair, a machine config that trusts it, and signed envelopes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edge import config
from edge.telemetry import signing

SITE, MACHINE = "fablab-north", "prusa-01"
AUD = f"{SITE}/{MACHINE}"
NOW = 1_800_000_000.0


class Region:
    """A region's signing keys: `main` may sign everything, `telemetry` only telemetry.rate."""

    def __init__(self) -> None:
        self.main = signing.generate_private_key()
        self.tele_only = signing.generate_private_key()
        self.stranger = signing.generate_private_key()   # not in any trust store

    def trust(self) -> list[dict[str, Any]]:
        return [{"id": "region-main", "public_key": signing.public_key_b64(self.main), "operations": ["*"]},
                {"id": "region-tele", "public_key": signing.public_key_b64(self.tele_only),
                 "operations": ["telemetry.rate"]}]

    def envelope(self, op: str, args: dict[str, Any] | None = None, *, key: str = "region-main",
                 aud: str = AUD, cmd_id: str | None = None, ttl: float = 300, now: float = NOW,
                 priv=None) -> dict[str, Any]:
        priv = priv or {"region-main": self.main, "region-tele": self.tele_only}.get(key, self.stranger)
        return signing.make_envelope(priv, key, aud, op, args or {}, ttl_s=ttl, cmd_id=cmd_id, now=now)


def machine_config(region: Region, state_dir: Path, **sections: Any) -> config.Config:
    return config.default().replace(machine={"id": MACHINE, "site": SITE},
                                    trust={"keys": region.trust()},
                                    paths={"state_dir": str(state_dir), "cache_dir": str(state_dir / "numba")},
                                    **sections)


def raw(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


def offer_args(data: bytes, url: str, job_id: str = "job-1", **over: Any) -> dict[str, Any]:
    args = {"job_id": job_id, "design": "bracket-v2", "parts": 4, "name": "Bracket", "url": url,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    args.update(over)
    return args


GOOD_GCODE = b"""; a small valid job
G21
G90
M82
M104 S200
M140 S60
G28
M109 S200
G1 Z0.2 F1200
G1 X10 Y10 F3000
G1 X50 Y10 E2.0 F1200
G1 X50 Y50 E4.0
G1 X10 Y50 E6.0
G1 X10 Y10 E8.0
G1 Z0.4
G1 X50 Y10 E10.0
M104 S0
M140 S0
"""

# line 6 asks for 400 C, far above limits.max_nozzle_c (280)
HOT_GCODE = GOOD_GCODE.replace(b"M140 S60", b"M104 S400")
