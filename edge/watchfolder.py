"""Local job sources: a watched folder (USB stick, network share) and the agent's inbox.

A small polling thread (inotify does not see USB sticks mounted later or SMB
shares written by another host) reports each new file once its size and mtime
have stayed the same for one poll, so a half-copied file is never taken. What
was reported is remembered in a small file written atomically, so a restart
does not queue the same stick again. The thread only posts; the agent decides.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable

from edge.atomicfile import write_atomic  # noqa: F401  (also used by the job inbox)

GCODE_SUFFIXES = (".gcode", ".gco", ".g", ".nc")
SEEN_MAX = 2000


class FolderWatcher:
    """Calls `on_file(path)` once for each complete new file matching `suffixes` in `folder`."""

    def __init__(self, folder: str | Path, on_file: Callable[[Path], None], *,
                 suffixes: tuple[str, ...] = GCODE_SUFFIXES, interval: float = 1.0,
                 seen_path: str | Path | None = None, remember: bool = True) -> None:
        self.folder = Path(folder)
        self.on_file = on_file
        self.suffixes = suffixes
        self.interval = interval
        self.remember = remember
        self.seen_path = Path(seen_path) if seen_path else None
        self._seen: dict[str, list] = self._load_seen()
        self._pending: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load_seen(self) -> dict[str, list]:
        if self.seen_path and self.seen_path.exists():
            try:
                return dict(json.loads(self.seen_path.read_text()))
            except (ValueError, OSError):
                return {}
        return {}

    def poll(self) -> list[Path]:
        """One look at the folder; returns (and reports) files that became complete."""
        found: list[Path] = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return found                      # stick not mounted (yet): try again later
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.name.lower().endswith(self.suffixes):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            if not entry.is_file():
                continue
            sig = (st.st_size, st.st_mtime_ns)
            key = entry.path
            if self.remember and self._seen.get(key) == list(sig):
                continue
            if self._pending.get(key) != sig:
                self._pending[key] = sig      # seen once: wait one poll for it to settle
                continue
            del self._pending[key]
            if self.remember:
                self._seen[key] = list(sig)
            found.append(Path(entry.path))
        if found and self.remember:
            self._save_seen()
        for path in found:
            self.on_file(path)
        return found

    def _save_seen(self) -> None:
        if len(self._seen) > SEEN_MAX:
            self._seen = dict(list(self._seen.items())[-SEEN_MAX:])
        if self.seen_path:
            self.seen_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.seen_path, json.dumps(self._seen).encode())

    def start(self) -> "FolderWatcher":
        self._thread = threading.Thread(target=self._run, name=f"watch:{self.folder.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
