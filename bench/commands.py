"""Signed-command costs on this machine: the whole CommandGate chain (parse, Ed25519 verify,
durable replay claim with fsync) against a bare Ed25519 verification, and a job.offer download
(HTTP from loopback, streamed to disk with sha256, fsync) against plain sha256 of the same bytes.

    .venv/bin/python bench/commands.py            (prints one line per measurement)
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge import config  # noqa: E402
from edge.telemetry import signing  # noqa: E402
from edge.telemetry.commands import CommandGate  # noqa: E402
from edge.telemetry.joboffer import _download  # noqa: E402


def gate_rate(n: int, work: Path) -> tuple[float, float]:
    key = signing.generate_private_key()
    cfg = config.default().replace(machine={"id": "m1", "site": "s1"},
                                   trust={"keys": [{"id": "k", "public_key": signing.public_key_b64(key)}]})
    gate = CommandGate(cfg, work / "bench-commands.db")
    now = time.time()
    payloads = [json.dumps(signing.make_envelope(key, "k", "s1/m1", "telemetry.rate", {"interval_s": 2},
                                                  cmd_id=f"b-{i}", now=now)).encode() for i in range(n)]
    envs = [json.loads(p) for p in payloads]
    pub = key.public_key()
    t0 = time.perf_counter()
    for env in envs:
        assert signing.verify(env, pub)
    bare = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for p in payloads:
        gate.check(p, False, "idle")
    full = n / (time.perf_counter() - t0)
    gate.close()
    return full, bare


def download_rate(mb: int, work: Path) -> tuple[float, float]:
    www = work / "www"
    www.mkdir()
    data = os.urandom(1 << 20) * mb
    (www / "job.gcode").write_bytes(data)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/job.gcode"
    t0 = time.perf_counter()
    size, sha = _download(url, len(data), work / "job.part", 30, work)
    fetch = mb / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    assert hashlib.sha256(data).hexdigest() == sha and size == len(data)
    plain = mb / (time.perf_counter() - t0)
    httpd.shutdown()
    return fetch, plain


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        full, bare = gate_rate(2000, Path(tmp))
        print(f"gate.check (parse + verify + fsynced replay claim): {full:,.0f} commands/s; "
              f"bare Ed25519 verify: {bare:,.0f}/s; ratio {full / bare:.2f}")
        fetch, plain = download_rate(64, Path(tmp))
        print(f"job.offer download 64 MB over loopback HTTP (stream, sha256, fsync): {fetch:,.0f} MB/s; "
              f"plain sha256 in memory: {plain:,.0f} MB/s; ratio {fetch / plain:.2f}")


if __name__ == "__main__":
    main()
