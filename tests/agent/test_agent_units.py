"""Unit tests of the agent's own parts: job store, panel on MockFactory pins, sd_notify, resume, folders."""

from __future__ import annotations

import os
import queue
import socket
import time
from pathlib import Path

import pytest

from drivers.gpio import Pins
from edge.config import default
from edge.events import BedCleared, PauseToggled, StartPressed, StopHeld, StopPressed
from edge.jobs import JobStateError, JobStore
from edge.panel import Panel
from edge.resume import scan, write_resume
from edge.sdnotify import Notifier
from edge.watchfolder import FolderWatcher


# ---- job store -------------------------------------------------------------------------

def test_jobs_lifecycle_persists_and_derives_machine_state(tmp_path):
    db = tmp_path / "jobs.db"
    s = JobStore(db)
    assert s.machine_state() == "idle"
    s.add("j1", source="cli", design="bracket", parts=3, lines=100)
    assert s.machine_state() == "staged"
    s.transition("j1", "armed")
    assert s.machine_state() == "armed"
    with pytest.raises(JobStateError, match="cannot go from armed to done"):
        s.transition("j1", "done")
    s.transition("j1", "running")
    s.progress("j1", 42, 3)
    s.close()
    # a new process sees what was committed, and a crash mid-job comes back interrupted
    s2 = JobStore(db)
    (job,) = s2.recover()
    assert (job.state, job.acked_line, job.layer) == ("interrupted", 42, 3)
    assert s2.machine_state() == "interrupted"
    with pytest.raises(JobStateError):
        s2.transition("j1", "running")        # never restarted by itself
    closed = s2.close_job("j1", "rejected")
    assert closed.closed and closed.outcome == "rejected"
    assert s2.machine_state() == "idle"
    with pytest.raises(JobStateError):
        s2.close_job("j1", "good")              # exactly one outcome per job
    assert s2.counters()["parts_rejected"] == 3


def test_jobs_readonly_reader_sees_writer(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    s.add("abc123", source="cli")
    r = JobStore(tmp_path / "jobs.db", readonly=True)
    assert r.find("abc").id == "abc123"
    assert [j.id for j in r.list()] == ["abc123"]
    with pytest.raises(Exception):
        r.add("x", source="cli")
    with pytest.raises(Exception, match="no job store"):
        JobStore(tmp_path / "nope.db", readonly=True)


def test_job_original_line_maps_resume_file(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    s.add("j", source="cli")
    s.transition("j", "armed", resume_path="x", resume_pre=10, resume_base=500)
    job = s.get("j")
    assert job.original_line(11) == 500 and job.original_line(3) == 499


# ---- panel ---------------------------------------------------------------------------------

def _panel(**over):
    cfg = default().replace(panel={"pin_factory": "mock", "stop_cancel_hold_s": 0.5, "bed_clear_hold_s": 0.2,
                                   "reject_hold_s": 0.6, **over}).panel
    q: queue.Queue = queue.Queue()
    hooked = []
    panel = Panel(cfg, q.put, stop_hook=lambda: hooked.append(time.monotonic()), pins=Pins("mock"))
    return cfg, panel, q, hooked


def _drain(q, wait=0.05):
    time.sleep(wait)
    out = []
    while not q.empty():
        out.append(q.get())
    return out


def test_panel_buttons_measure_holds_themselves():
    cfg, panel, q, hooked = _panel()
    pins = panel.pins
    try:
        pins.press(cfg.start); time.sleep(0.05); pins.release(cfg.start)
        (ev,) = _drain(q)
        assert isinstance(ev, StartPressed) and 0.04 < ev.held_s < 0.5
        # BED CLEAR: short = nothing, 0.2 s = good, 0.6 s = rejected
        pins.press(cfg.bed_clear); time.sleep(0.05); pins.release(cfg.bed_clear)
        assert _drain(q) == []
        pins.press(cfg.bed_clear); time.sleep(0.3); pins.release(cfg.bed_clear)
        assert _drain(q) == [BedCleared("good")]
        pins.press(cfg.bed_clear); time.sleep(0.7); pins.release(cfg.bed_clear)
        assert _drain(q) == [BedCleared("rejected")]
        pins.press(cfg.reject); time.sleep(0.3); pins.release(cfg.reject)
        assert _drain(q) == [BedCleared("rejected")]
        pins.press(cfg.pause); pins.release(cfg.pause)
        assert _drain(q) == [PauseToggled()]
    finally:
        panel.close()


def test_panel_stop_calls_hook_at_once_and_hold_cancels():
    cfg, panel, q, hooked = _panel()
    try:
        t0 = time.monotonic()
        panel.pins.press(cfg.stop)
        assert hooked and hooked[0] - t0 < 0.05           # the direct path, no queue involved
        time.sleep(0.7)
        panel.pins.release(cfg.stop)
        assert _drain(q) == [StopPressed(), StopHeld()]
        panel.pins.press(cfg.stop); time.sleep(0.1); panel.pins.release(cfg.stop)
        assert _drain(q) == [StopPressed()]                  # a short press only pauses
    finally:
        panel.close()


def test_panel_leds_follow_state_and_unfitted_pins_are_skipped():
    cfg, panel, q, _ = _panel(reject=0, led_blue=0)
    try:
        panel.show("idle", link_up=True)
        assert panel.pins.level(cfg.led_green) and not panel.pins.level(cfg.led_red)
        assert "blue" not in panel.leds
        panel.show("armed", link_up=False)
        assert panel.leds["amber"] == "blink" and panel.leds["green"] == "off"
        panel.show("running", link_up=False)
        assert panel.leds["amber"] == "on" and panel.pins.level(cfg.led_amber)
        panel.show("fault", link_up=False)
        assert panel.pins.level(cfg.led_red)
        # without a REJECT button, a long BED CLEAR hold still rejects
        panel.pins.press(cfg.bed_clear); time.sleep(0.7); panel.pins.release(cfg.bed_clear)
        assert _drain(q) == [BedCleared("rejected")]
    finally:
        panel.close()


# ---- systemd notify --------------------------------------------------------------------

def test_sdnotify_ready_status_and_watchdog_only_when_healthy(tmp_path):
    path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(1)
    try:
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())})
        assert n.watchdog_interval == pytest.approx(0.1)
        n.ready("up")
        assert srv.recv(100) == b"READY=1\nSTATUS=up"
        assert n.watchdog(healthy=False) is False
        assert n.watchdog() is True
        assert srv.recv(100) == b"WATCHDOG=1"
        assert n.watchdog() is False                # not before half the interval
        time.sleep(0.11)
        assert n.watchdog() is True
        n.close()
        other = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        assert other.watchdog_interval == 0          # the watchdog is meant for another process
        assert not Notifier({}).enabled and Notifier({}).ready() is False
    finally:
        srv.close()


# ---- resume ------------------------------------------------------------------------------

GCODE = """M140 S60
M104 S215
G28
M190 S60
M109 S215
M83
G1 Z0.2 F600
G1 X10 Y10 E1.5 F1200 ; layer 0
G1 X20 Y10 E1.0
M106 S200
G1 Z0.4
G1 X10 Y20 E2.0 ; layer 1
G1 X30 Y30 E1.0
"""


def test_resume_from_layer_rebuilds_state(tmp_path):
    src = tmp_path / "part.gcode"
    src.write_text(GCODE)
    st = scan(src, 12)
    assert (st.z, st.nozzle_c, st.bed_c, st.fan, st.e_absolute) == (0.4, 215, 60, 200, False)
    out = tmp_path / "resume.gcode"
    pre = write_resume(src, out, 12, layer=1, z_now=0.4)
    lines = out.read_text().splitlines()
    assert lines[pre:] == GCODE.splitlines()[11:]
    preamble = lines[:pre]
    assert "G28 X Y" in preamble and not any(l.strip() in ("G28", "G28 Z") for l in preamble)
    assert "M109 S215" in preamble and "M190 S60" in preamble and "G92 Z0.400" in preamble
    assert "M83" in preamble and "M106 S200" in preamble and "G1 Z0.400 F600" in preamble
    # the lift happens before X/Y homing
    assert preamble.index("G1 Z5.000 F600") < preamble.index("G28 X Y")
    with pytest.raises(Exception, match="line 99"):
        write_resume(src, out, 99, layer=5)


# ---- folders -------------------------------------------------------------------------

def test_watchfolder_waits_for_complete_files_and_remembers(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    seen = tmp_path / "seen.json"
    got: list[Path] = []
    w = FolderWatcher(folder, got.append, seen_path=seen)
    (folder / "a.gcode").write_text("G1 X1\n")
    (folder / "notes.txt").write_text("x")
    assert w.poll() == []                       # first sight: wait for it to settle
    with open(folder / "a.gcode", "a") as f:
        f.write("G1 X2\n")                      # still being copied
    assert w.poll() == []
    assert w.poll() == [folder / "a.gcode"]
    assert w.poll() == [] and got == [folder / "a.gcode"]
    w2 = FolderWatcher(folder, got.append, seen_path=seen)   # after a restart: not again
    assert w2.poll() == [] and w2.poll() == []


def test_sdnotify_never_blocks_when_nobody_reads(tmp_path):
    path = str(tmp_path / "full.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    try:
        n = Notifier({"NOTIFY_SOCKET": path})
        t0 = time.monotonic()
        results = [n.status("x" * 1000) for _ in range(5000)]   # far more than the socket holds
        assert time.monotonic() - t0 < 5
        assert results[0] is True and results[-1] is False        # dropped, not blocked
    finally:
        srv.close()


# ---- fabedge job (no agent needed for these) ------------------------------------------

def _conf(tmp_path) -> Path:
    conf = tmp_path / "fabedge.toml"
    conf.write_text(f'[panel]\npin_factory = "mock"\n[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    return conf


def test_job_cli_refuses_clearly_without_an_agent(tmp_path, capsys):
    from edge.cli import main as cli

    conf = _conf(tmp_path)
    assert cli(["job", "--config", str(conf), "add", str(tmp_path / "missing.gcode")]) == 1
    assert "missing.gcode: no such file" in capsys.readouterr().err
    part = tmp_path / "part.gcode"
    part.write_text("G28\n")
    assert cli(["job", "--config", str(conf), "add", str(part)]) == 1
    assert "is the agent running" in capsys.readouterr().err
    assert cli(["job", "--config", str(conf), "list"]) == 1
    assert "no job store" in capsys.readouterr().err


def test_job_cli_hands_requests_to_the_inbox_and_lists_the_store(tmp_path, capsys):
    import json
    from edge.cli import main as cli

    conf = _conf(tmp_path)
    state = tmp_path / "state"
    (state / "inbox").mkdir(parents=True)
    store = JobStore(state / "jobs.db")
    store.add("cli-abc", source="cli", design="nut", lines=10)
    part = tmp_path / "part.gcode"
    part.write_text("G28\n")
    assert cli(["job", "--config", str(conf), "add", str(part), "--design", "bracket", "--parts", "2"]) == 0
    (req,) = (state / "inbox").glob("*.json")
    body = json.loads(req.read_text())
    assert body["action"] == "add" and body["args"]["design"] == "bracket" and body["args"]["parts"] == 2
    assert Path(body["args"]["file"]).read_text() == "G28\n"        # a copy the agent can read
    assert cli(["job", "--config", str(conf), "cancel", "cli-a"]) == 0   # unique prefix
    reqs = [json.loads(p.read_text()) for p in (state / "inbox").glob("*.json")]
    assert {"action": "cancel", "args": {"job_id": "cli-abc"}} in reqs
    capsys.readouterr()
    assert cli(["job", "--config", str(conf), "list"]) == 0
    out = capsys.readouterr().out
    assert "machine: staged" in out and "cli-abc" in out
    assert cli(["job", "--config", str(conf), "show", "cli-abc"]) == 0
    assert json.loads(capsys.readouterr().out)["design"] == "nut"
