"""job.offer: fetch a job file, verify its size and sha256, analyse it, stage it atomically.

`fetch_job` blocks (download and analysis take seconds), so the agent runs it
in a worker thread and posts the result back to its loop. The file is
streamed to a hidden temp file in `<dest_dir>/.incoming/` while hashing, never
held whole in memory and never larger than the offer's declared size; it is
fsynced, verified, analysed with the machine's checks, and only then renamed
to `<dest_dir>/<job_id>.gcode`. Any failure leaves nothing behind and raises
`CommandRejected` with download_failed / size_mismatch / sha256_mismatch /
checks_failed / bad_args. Staging never starts anything: only START does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from edge.config import Config
from edge.errors import FabedgeError
from edge.telemetry.commands import CommandRejected, validate_args
from edge.atomicfile import fsync_dir

CHUNK = 1 << 20
MAX_JOB_BYTES = 2 << 30          # 2 GiB: far above any real job, below what a Pi's SD card should take
FREE_SPACE_MARGIN = 64 << 20     # keep this much of the disk free after staging
MIN_RATE_BPS = 20_000            # a download slower than this on average is abandoned
MAX_ERRORS_REPORTED = 5
USER_AGENT = "fabedge-joboffer/1"
STALE_PARTIAL_S = 6 * 3600       # a temp file this old in .incoming is a crash's leftover


@dataclass(frozen=True)
class StagedJob:
    """A verified, checked job file in the job directory, ready to be armed by a person."""
    job_id: str
    path: Path
    sha256: str
    size: int
    design: str
    parts: int
    name: str
    source: str          # the URL, or "inline"
    analysis: Any        # edge.toolpath Analysis of the staged file (ok is True)


def fetch_job(args: dict[str, Any], dest_dir: Path, cfg: Config, timeout: float = 30, *,
              cmd_id: str | None = None,
              analyze: Callable[[str | Path, Config], Any] | None = None) -> StagedJob:
    """Download (or take inline), verify, analyse and stage a job.offer; see the module docstring.

    `timeout` bounds each network wait; the whole download is bounded by
    timeout plus the declared size at MIN_RATE_BPS. `cmd_id` is put on any
    CommandRejected raised, so `exc.response()` is ready to publish.
    `analyze` defaults to edge.toolpath.analyze.
    """
    try:
        return _fetch(args, Path(dest_dir), cfg, timeout, analyze)
    except CommandRejected as exc:
        exc.cmd_id = exc.cmd_id or cmd_id
        raise


def _fetch(args: dict[str, Any], dest_dir: Path, cfg: Config, timeout: float,
           analyze: Callable[[str | Path, Config], Any] | None) -> StagedJob:
    args = validate_args("job.offer", args)
    job_id = args["job_id"]
    incoming = dest_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    _remove_stale(incoming)
    final = dest_dir / f"{job_id}.gcode"
    if final.exists():
        raise CommandRejected("bad_args", f"job.offer: job {job_id} is already staged at {final}")
    tmp = incoming / f"{job_id}.{uuid.uuid4().hex[:8]}.gcode"
    try:
        if "url" in args:
            size, sha = _download(args["url"], args["size"], tmp, timeout, dest_dir)
        else:
            size, sha = _write_inline(args["gcode"].encode("utf-8"), tmp)
        _verify(args, size, sha)
        analysis = _analyse(tmp, cfg, analyze)
        try:
            os.link(tmp, final)          # atomic and never overwrites: a concurrent offer of the same id loses
        except FileExistsError:
            raise CommandRejected("bad_args", f"job.offer: job {job_id} is already staged at {final}") from None
        fsync_dir(dest_dir)
    finally:
        tmp.unlink(missing_ok=True)
    return StagedJob(job_id=job_id, path=final, sha256=sha, size=size, design=args["design"], parts=args["parts"],
                     name=args["name"], source=args.get("url", "inline"), analysis=analysis)


def _remove_stale(incoming: Path) -> None:
    """Partial downloads left by a power cut would fill the SD card over months: drop old ones."""
    cutoff = time.time() - STALE_PARTIAL_S
    for p in incoming.iterdir():
        try:
            if p.is_file() and p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass       # raced with another cleaner or a read-only file: harmless


def _download(url: str, declared: int, tmp: Path, timeout: float, dest_dir: Path) -> tuple[int, str]:
    def failed(reason: str) -> CommandRejected:
        return CommandRejected("download_failed", f"{url}: {reason}")

    if declared > MAX_JOB_BYTES:
        raise CommandRejected("bad_args", f"job.offer: size {declared} bytes is above the {MAX_JOB_BYTES >> 20} MB limit")
    free = shutil.disk_usage(dest_dir).free
    if declared + FREE_SPACE_MARGIN > free:
        raise failed(f"not enough disk space: {declared} bytes offered, {free} bytes free in {dest_dir}")
    deadline = time.monotonic() + timeout + declared / MIN_RATE_BPS
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) != declared:
                raise CommandRejected("size_mismatch", f"{url}: server says {int(length)} bytes, "
                                      f"the offer says {declared}")
            return _copy(resp, tmp, declared, deadline, url)
    except CommandRejected:
        raise
    except urllib.error.HTTPError as exc:
        raise failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise failed(str(exc.reason)) from None
    except (socket.timeout, TimeoutError):
        raise failed(f"no data for {timeout:.0f} s") from None
    except (OSError, ValueError) as exc:       # connection reset, bad URL syntax, disk full...
        raise failed(str(exc) or type(exc).__name__) from None


def _copy(src: IO[bytes], tmp: Path, declared: int, deadline: float, url: str) -> tuple[int, str]:
    """Stream src into tmp, hashing; stop as soon as it is longer than declared or too slow."""
    digest = hashlib.sha256()
    total = 0
    with open(tmp, "wb") as out:
        while True:
            chunk = src.read(min(CHUNK, declared + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > declared:
                raise CommandRejected("size_mismatch", f"{url}: longer than the {declared} bytes offered")
            digest.update(chunk)
            out.write(chunk)
            if time.monotonic() > deadline:
                raise CommandRejected("download_failed", f"{url}: too slow ({total} of {declared} bytes "
                                      f"before the deadline)")
        out.flush()
        os.fsync(out.fileno())
    return total, digest.hexdigest()


def _write_inline(data: bytes, tmp: Path) -> tuple[int, str]:
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return len(data), hashlib.sha256(data).hexdigest()


def _verify(args: dict[str, Any], size: int, sha: str) -> None:
    where = args.get("url", "inline gcode")
    if "size" in args and size != args["size"]:
        raise CommandRejected("size_mismatch", f"{where}: got {size} bytes, the offer says {args['size']}")
    if "sha256" in args and sha != args["sha256"]:
        raise CommandRejected("sha256_mismatch", f"{where}: sha256 is {sha}, the offer says {args['sha256']}")


def _analyse(path: Path, cfg: Config, analyze: Callable[[str | Path, Config], Any] | None) -> Any:
    if analyze is None:
        from edge.toolpath import analyze   # numba-heavy: imported only when a job arrives
    try:
        analysis = analyze(path, cfg)
    except FabedgeError as exc:             # unreadable / unparsable file: the parser names file and line
        raise CommandRejected("checks_failed", f"the job file cannot be analysed: {exc}",
                              errors=[{"line": None, "message": str(exc)}]) from None
    if not analysis.ok:
        errors = [{"line": e.line, "message": e.message} for e in analysis.errors[:MAX_ERRORS_REPORTED]]
        first = errors[0] if errors else {"line": None, "message": "rejected by the checks"}
        more = len(analysis.errors) - 1
        headline = first["message"]
        if first["line"] is not None and not headline.startswith(f"line {first['line']}"):
            headline = f"line {first['line']}: {headline}"
        raise CommandRejected("checks_failed", headline
                              + (f" (and {more} more error{'s' if more > 1 else ''})" if more > 0 else ""),
                              errors=errors)
    return analysis
