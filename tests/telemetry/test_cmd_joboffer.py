"""job.offer downloads from a real local HTTP server: verified, analysed with the
machine's real checks, staged atomically; every failure is a reason code and
leaves nothing in the job directory."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from cmd_support import GOOD_GCODE, HOT_GCODE, Region, machine_config, offer_args
from edge.telemetry.commands import CommandRejected
from edge.telemetry.joboffer import fetch_job


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):   # keep test output quiet
        pass

    def do_GET(self):
        if self.path == "/no-length":            # close-delimited body without Content-Length
            body = b"G1 X1\n" * 2000
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"G1")
            self.wfile.flush()
            time.sleep(2)
        else:
            super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    httpd.root = root
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cfg(tmp_path):
    return machine_config(Region(), tmp_path / "state")


@pytest.fixture
def jobs(tmp_path):
    d = tmp_path / "jobs"
    d.mkdir()
    return d


def leftovers(jobs: Path) -> list[str]:
    return sorted(str(p.relative_to(jobs)) for p in jobs.rglob("*") if p.is_file())


def rejected(args, jobs, cfg, **kw) -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        fetch_job(args, jobs, cfg, cmd_id="c-9", **kw)
    assert info.value.cmd_id == "c-9"
    assert leftovers(jobs) == []          # nothing staged, no temp file left
    return info.value


def test_download_verify_analyse_stage(server, jobs, cfg):
    (server.root / "bracket.gcode").write_bytes(GOOD_GCODE)
    staged = fetch_job(offer_args(GOOD_GCODE, f"{server.base}/bracket.gcode"), jobs, cfg)
    assert staged.path == jobs / "job-1.gcode" and staged.path.read_bytes() == GOOD_GCODE
    assert (staged.size, staged.sha256) == (len(GOOD_GCODE), hashlib.sha256(GOOD_GCODE).hexdigest())
    assert (staged.design, staged.parts, staged.name) == ("bracket-v2", 4, "Bracket")
    assert staged.analysis.ok
    assert leftovers(jobs) == ["job-1.gcode"]


def test_same_job_id_is_not_staged_twice(server, jobs, cfg):
    (server.root / "a.gcode").write_bytes(GOOD_GCODE)
    fetch_job(offer_args(GOOD_GCODE, f"{server.base}/a.gcode"), jobs, cfg)
    with pytest.raises(CommandRejected) as info:
        fetch_job(offer_args(GOOD_GCODE, f"{server.base}/a.gcode"), jobs, cfg)
    assert info.value.code == "bad_args" and "already staged" in info.value.message


def test_inline_gcode_and_file_url(tmp_path, jobs, cfg):
    staged = fetch_job({"job_id": "in-1", "design": "d", "parts": 1, "gcode": GOOD_GCODE.decode()}, jobs, cfg)
    assert staged.path.read_bytes() == GOOD_GCODE and staged.source == "inline"
    src = tmp_path / "local.gcode"
    src.write_bytes(GOOD_GCODE)
    staged = fetch_job(offer_args(GOOD_GCODE, src.as_uri(), job_id="file-1"), jobs, cfg)
    assert staged.path.read_bytes() == GOOD_GCODE


def test_sha256_mismatch(server, jobs, cfg):
    (server.root / "a.gcode").write_bytes(GOOD_GCODE)
    args = offer_args(GOOD_GCODE, f"{server.base}/a.gcode", sha256="ab" * 32)
    exc = rejected(args, jobs, cfg)
    assert exc.code == "sha256_mismatch" and "ab" * 32 in exc.message


def test_size_mismatch_from_content_length(server, jobs, cfg):
    (server.root / "a.gcode").write_bytes(GOOD_GCODE)
    exc = rejected(offer_args(GOOD_GCODE, f"{server.base}/a.gcode", size=len(GOOD_GCODE) - 1), jobs, cfg)
    assert exc.code == "size_mismatch"


@pytest.mark.parametrize("declared, fragment", [(100, "longer than the 100 bytes"), (20000, "got 12000 bytes")])
def test_size_mismatch_without_content_length_stops_reading(server, jobs, cfg, declared, fragment):
    exc = rejected(offer_args(b"", f"{server.base}/no-length", size=declared, sha256="0" * 64), jobs, cfg)
    assert exc.code == "size_mismatch" and fragment in exc.message


def test_inline_size_and_sha_are_checked(jobs, cfg):
    args = {"job_id": "in-2", "design": "d", "parts": 1, "gcode": GOOD_GCODE.decode(), "size": 5}
    assert rejected(args, jobs, cfg).code == "size_mismatch"
    args = {"job_id": "in-2", "design": "d", "parts": 1, "gcode": GOOD_GCODE.decode(), "sha256": "1" * 64}
    assert rejected(args, jobs, cfg).code == "sha256_mismatch"


@pytest.mark.parametrize("path, fragment", [("/missing.gcode", "HTTP 404")])
def test_http_error(server, jobs, cfg, path, fragment):
    exc = rejected(offer_args(GOOD_GCODE, server.base + path), jobs, cfg)
    assert exc.code == "download_failed" and fragment in exc.message


def test_unreachable_and_slow_servers(server, jobs, cfg, tmp_path):
    import socket
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert rejected(offer_args(GOOD_GCODE, f"http://127.0.0.1:{port}/a.gcode"), jobs, cfg).code == "download_failed"
    t0 = time.monotonic()
    exc = rejected(offer_args(b"x" * 100, f"{server.base}/slow"), jobs, cfg, timeout=0.5)
    assert exc.code == "download_failed" and time.monotonic() - t0 < 1.8
    missing = (tmp_path / "nope.gcode").as_uri()
    assert rejected(offer_args(GOOD_GCODE, missing), jobs, cfg).code == "download_failed"


def test_bad_args_before_any_download(jobs, cfg):
    exc = rejected({"job_id": "../../etc/passwd", "design": "d", "parts": 1, "gcode": "G1"}, jobs, cfg)
    assert exc.code == "bad_args"


def test_file_that_fails_checks_names_line_and_reason(server, jobs, cfg):
    (server.root / "hot.gcode").write_bytes(HOT_GCODE)
    exc = rejected(offer_args(HOT_GCODE, f"{server.base}/hot.gcode"), jobs, cfg)
    assert exc.code == "checks_failed"
    first = exc.details["errors"][0]
    assert first["line"] == 6 and "400" in first["message"]
    assert exc.message.startswith("line 6:")
    res = exc.response()
    assert res["status"] == "rejected" and res["code"] == "checks_failed" and res["errors"][0]["line"] == 6


def test_binary_garbage_fails_checks_and_never_crashes(server, jobs, cfg):
    junk = bytes(range(256)) * 40
    (server.root / "junk.gcode").write_bytes(junk)
    exc = rejected(offer_args(junk, f"{server.base}/junk.gcode"), jobs, cfg)
    assert exc.code == "checks_failed" and exc.details["errors"]


def test_partial_download_left_by_a_crash_is_cleaned(server, jobs, cfg):
    import os
    incoming = jobs / ".incoming"
    incoming.mkdir()
    old = incoming / "job-0.deadbeef.gcode"
    old.write_bytes(b"G1 X1\n" * 100)
    os.utime(old, (time.time() - 7 * 3600,) * 2)
    fresh = incoming / "job-9.cafebabe.gcode"     # possibly another download still running
    fresh.write_bytes(b"G1")
    fetch_job({"job_id": "in-3", "design": "d", "parts": 1, "gcode": GOOD_GCODE.decode()}, jobs, cfg)
    assert not old.exists() and fresh.exists()
