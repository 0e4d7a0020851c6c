"""The whole loop with real pieces: mosquitto on a free port, a virtual Marlin on a
pseudo-terminal, the agent's panel on gpiozero MockFactory pins, signed offers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.sim.marlin import strip_framing
from edge.commands.demo import DEMO_GCODE, DemoRig
from edge.jobs import JobStore
from edge.toolpath import command_lines, load

ROOT = Path(__file__).resolve().parents[2]
HANDSHAKE = ("M110", "M115", "M155", "M105", "M114")


def job_commands(path: Path) -> list[str]:
    return [cmd.decode() for _, cmd in command_lines(load(str(path)))]


def job_lines_in(executed: list[str], park: list[str]) -> list[str]:
    return [c for c in executed if not c.startswith(HANDSHAKE)]


def without_probes(executed: list[str]) -> list[str]:
    """The host's own status polls (M105 temperature, M114 position) are not job lines."""
    return [c for c in executed if c not in ("M105", "M114")]


def ro_state(state_dir: Path) -> str:
    """The machine state as `fabedge job list` reads it ("" while the agent is still creating its store)."""
    from edge.errors import FabedgeError
    try:
        return JobStore(state_dir / "jobs.db", readonly=True).machine_state()
    except FabedgeError:
        return ""


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module", autouse=True)
def warm_toolpath():
    """Compile (or load from NUMBA_CACHE_DIR) the toolpath kernels once, outside the timed waits."""
    from edge.config import default
    from edge.toolpath import analyze
    analyze(DEMO_GCODE, default())


@pytest.fixture
def rig_factory(broker, tmp_path):
    rigs = []

    def make(time_scale: float = 20.0, persistent: bool = False, **over) -> DemoRig:
        rig = DemoRig(tmp_path / f"rig{len(rigs)}", broker, time_scale=time_scale, cfg_overrides=over)
        rigs.append(rig)
        rig.watch(persistent=persistent)
        return rig

    yield make
    for r in rigs:
        r.close()


def test_agent_offer_to_part_counted_and_nothing_moves_without_start(rig_factory, tmp_path):
    import socket
    from edge.sdnotify import Notifier

    sock_path = str(tmp_path / "notify")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(sock_path)
    systemd.settimeout(0.2)
    got: list[str] = []

    def listen() -> None:
        while True:
            try:
                got.append(systemd.recv(200).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    import threading
    threading.Thread(target=listen, daemon=True).start()
    rig = rig_factory(time_scale=25.0)
    rig.start_agent(notifier=Notifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"}))
    wait_for(lambda: rig.agent.driver_ok, 40, "the printer")
    cmd = rig.offer("nut-1", parts=4)
    rig.wait_state("armed", 60)
    # Without START nothing reaches the printer: wait, then read the printer's own log.
    time.sleep(1.5)
    assert job_lines_in(rig.executed(), []) == []
    assert rig.machine_state() == "armed"
    n0 = len(rig.executed())
    rig.press("start")
    rig.wait_state("running", 30)
    rig.wait_state("awaiting_bed_clear", 60)
    # exactly the file's commands, once each, in order
    assert without_probes(rig.executed()[n0:]) == job_commands(DEMO_GCODE)
    rig.press("bed_clear", hold_s=1.2)
    rig.wait_state("idle", 30)
    wait_for(lambda: rig.events("part.outcome"), 30, "part.outcome at the subscriber")
    time.sleep(0.3)
    assert rig.states() == ["idle", "staged", "armed", "running", "awaiting_bed_clear", "idle"]
    done_state = [m for t, m in list(rig.messages) if t.endswith("/state") and m["state"] == "awaiting_bed_clear"]
    assert done_state[0]["temperatures"]["T0"]["actual"] > 0      # retained state carries temperatures
    (outcome,) = rig.events("part.outcome")
    assert (outcome["job_id"], outcome["design"], outcome["parts"], outcome["outcome"]) == ("nut-1", "m3-nut", 4, "good")
    types = [m["id"] and t.rsplit("/", 1)[1] for t, m in rig.messages if "/evt/" in t]
    assert types == ["job.staged", "job.armed", "job.started", "job.done", "part.outcome"]
    statuses = [r["status"] for r in rig.replies(cmd)]
    assert statuses[:3] == ["received", "accepted", "running"] and statuses[-1] == "done"
    assert rig.fleet.parts_today()          # the region's view counted it
    birth = [m for t, m in rig.messages if t.endswith("/birth")][-1]
    assert birth["capabilities"]["job.offer"] and birth["counters"]["parts_good"] == 4
    # systemd heard READY=1 once and WATCHDOG=1 from the loop while it ran
    time.sleep(0.3)
    systemd.close()
    assert sum(m.startswith("READY=1") for m in got) == 1
    assert sum(m == "WATCHDOG=1" for m in got) >= 10
    assert any(m.startswith("STATUS=") and "awaiting_bed_clear" in m for m in got)


def test_agent_stop_press_stops_feeding_fast_and_hold_cancels(rig_factory):
    rig = rig_factory(time_scale=10.0)
    rig.start_agent()
    wait_for(lambda: rig.agent.driver_ok, 40, "the printer")
    rig.offer("nut-stop")
    rig.wait_state("armed", 60)
    n0 = len(rig.executed())
    rig.press("start")
    printer = rig.printer
    wait_for(lambda: len(rig.executed()) - n0 > 100, 60, "the job to be under way")
    rig.press("pause")                          # PAUSE/RESUME: one button, two presses
    rig.wait_state("paused", 10)
    time.sleep(0.3)
    held_at = printer.lines_received
    time.sleep(0.5)
    assert printer.lines_received == held_at    # nothing fed while paused (park moves were already sent)
    rig.press("pause")
    rig.wait_state("running", 10)
    wait_for(lambda: [e["by"] for e in rig.events("job.resumed")] == ["operator"], 10, "job.resumed")
    wait_for(lambda: printer.lines_received > held_at + 30, 30, "feeding again")
    # Watch what the host writes to the port (the real driver's write, timestamped).
    driver = rig.agent.driver
    writes: list[tuple[float, bytes]] = []
    real_write = driver._write
    driver._write = lambda data: (writes.append((time.monotonic(), bytes(data))), real_write(data))[1]
    pin = rig.cfg.panel.stop
    park = list(rig.cfg.stream.park_gcode)
    t0 = time.monotonic()
    rig.pins.press(pin)                         # held: a press pauses at once, 2 s cancels
    time.sleep(0.7)
    late = [strip_framing(d.decode(errors="replace")) for t, d in writes if t > t0 + 0.1]
    # after 100 ms the host fed nothing more of the job: only the park moves (and status polls)
    assert all(c in park or c in ("M105", "M114") for c in late), late
    assert rig.machine_state() == "paused"
    wait_for(lambda: time.monotonic() - t0 > rig.cfg.panel.stop_cancel_hold_s + 0.3, 5, "the hold")
    rig.pins.release(pin)
    rig.wait_state("awaiting_bed_clear", 60)
    job = rig.store.get("nut-stop")
    assert job.state == "cancelled"
    time.sleep(1.0)
    restore = list(rig.cfg.stream.restore_gcode)
    executed = without_probes(rig.executed()[n0:])
    safe = ["M108", *rig.cfg.stream.cancel_gcode]   # a cancel ends any heat wait, then heaters and fan off
    assert executed[-len(safe):] == safe, executed[-8:]
    executed = executed[:-len(safe)]
    if executed[-len(park):] == park:
        executed = executed[:-len(park)]
    # the PAUSE/RESUME in the middle parked and restored the head: take those moves out
    for i in range(len(executed) - len(park) - len(restore) + 1):
        if executed[i:i + len(park)] == park and executed[i + len(park):i + len(park) + len(restore)] == restore:
            executed = executed[:i] + executed[i + len(park) + len(restore):]
            break
    expected = job_commands(DEMO_GCODE)
    # what ran is a prefix of the file: nothing skipped, nothing after what was already in the buffers
    assert executed == expected[:len(executed)]
    # ...and all of it had been fed before STOP + 100 ms (the host wrote no job line after that)
    assert len(executed) <= printer.lines_received - n0
    assert len(executed) < len(expected)
    rig.press("bed_clear", hold_s=1.2)          # a cancelled job's parts are rejected
    rig.wait_state("idle", 30)
    wait_for(lambda: rig.events("part.outcome"), 30, "part.outcome")
    assert [e["outcome"] for e in rig.events("part.outcome")] == ["rejected"]
    assert [e["job_id"] for e in rig.events("job.cancelled")] == ["nut-stop"]


def test_agent_rejects_a_job_that_fails_its_checks(rig_factory, tmp_path):
    rig = rig_factory()
    rig.start_agent()
    bad = tmp_path / "bad.gcode"
    bad.write_text("G28\nM104 S200\nG1 X10 Y10 Z0.2 F3000\nG1 X300 Y10 E5\nM500\n")
    cmd = rig.offer("bad-1", gcode_path=bad)
    wait_for(lambda: any(r["status"] == "rejected" for r in rig.replies(cmd)), 60, "the rejection")
    (rej,) = [r for r in rig.replies(cmd) if r["status"] == "rejected"]
    assert rej["code"] == "checks_failed" and "line 4" in rej["reason"] and "X" in rej["reason"]
    assert rej["errors"] and rej["errors"][0]["line"] == 4
    time.sleep(0.5)
    assert "armed" not in rig.states() and rig.machine_state() == "idle"
    assert rig.store.get("bad-1").state == "rejected"
    (evt,) = rig.events("job.rejected")
    assert evt["findings"][0]["line"] == 4
    assert job_lines_in(rig.executed(), []) == []
    # the region may cancel a job it offered; one that never ran needs no BED CLEAR
    rig.offer("nut-x")
    rig.wait_state("armed", 60)
    from edge.telemetry import signing
    from edge.telemetry.schema import Topics
    env = signing.make_envelope(rig.key, "demo-region", rig.audience, "job.cancel", {"job_id": "nut-x"})
    rig.watcher.publish(Topics(rig.cfg.machine.site, rig.cfg.machine.id).cmd_req, json.dumps(env).encode())
    rig.wait_state("idle", 30)
    wait_for(lambda: any(r["status"] == "done" for r in rig.replies(env["id"])), 30, "the cancel's answer")
    job = rig.store.get("nut-x")
    assert (job.state, job.closed, job.outcome) == ("cancelled", 1, "")
    assert rig.events("part.outcome") == [] and [e["by"] for e in rig.events("job.cancelled")] == ["region"]


def test_agent_broker_down_for_the_whole_job_loses_no_event(rig_factory, broker, tmp_path):
    watch = tmp_path / "usb"
    watch.mkdir()
    from edge.telemetry.service import Telemetry

    rig = rig_factory(time_scale=30.0, persistent=True, paths={"watch_dir": str(watch)})
    # reconnect attempts at most 2 s apart (the default backs off to 30 s)
    rig.start_agent(telemetry_factory=lambda cfg, path, **kw: Telemetry(cfg, path, backoff_max_s=2.0, **kw))
    wait_for(lambda: rig.agent.driver_ok and rig.agent.link_up, 40, "printer and broker")
    # The region's subscriber has a persistent session; a clean stop makes the broker save it to disk,
    # so what matters here is only the machine's own spool.
    broker.stop()
    (watch / "nut.gcode").write_bytes(DEMO_GCODE.read_bytes())   # a job from a USB stick
    rig.wait_state("armed", 60)
    rig.press("start")
    rig.wait_state("awaiting_bed_clear", 60)
    rig.press("bed_clear", hold_s=1.2)
    rig.wait_state("idle", 30)
    assert rig.events() == [] or all("replayed" in e for e in rig.events())
    seen_before = len(rig.events())
    broker.start()
    wait_for(lambda: rig.events("part.outcome"), 40, "the spooled events after the broker returned")
    time.sleep(1.0)
    types = [t.rsplit("/", 1)[1] for t, m in rig.messages if "/evt/" in t][seen_before:]
    assert types == ["job.staged", "job.armed", "job.started", "job.done", "part.outcome"]
    assert all(e["replayed"] for e in rig.events()[seen_before:])
    assert len(rig.events("part.outcome")) == 1


def _agent_toml(path: Path, rig: DemoRig) -> None:
    c = rig.cfg
    key = c.trust.keys[0]
    path.write_text(f"""
[machine]
id = "{c.machine.id}"
site = "{c.machine.site}"
[serial]
port = "{c.serial.port}"
timeout_s = 5.0
[volume]
y = [-4.0, 210.0]
[broker]
url = "{c.broker.url}"
[[trust.keys]]
id = "{key.id}"
public_key = "{key.public_key}"
[panel]
pin_factory = "mock"
[paths]
state_dir = "{c.paths.state_dir}"
cache_dir = "{c.paths.cache_dir}"
""")


def test_agent_kill9_mid_job_comes_back_interrupted_and_never_restarts(rig_factory, tmp_path):
    from edge.cli import main as cli

    rig = rig_factory(time_scale=10.0)
    conf = tmp_path / "agent.toml"
    _agent_toml(conf, rig)
    trigger = tmp_path / "trigger"
    trigger.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/agent/agent_proc.py"), str(conf), str(trigger)],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        state_dir = Path(rig.cfg.paths.state_dir)
        wait_for(lambda: (state_dir / "inbox").is_dir() and (state_dir / "jobs.db").exists(), 60, "the agent")
        assert cli(["job", "--config", str(conf), "add", str(DEMO_GCODE), "--design", "m3-nut"]) == 0
        wait_for(lambda: ro_state(state_dir) == "armed", 60, "armed")
        (trigger / "press-start").touch()
        wait_for(lambda: len(job_lines_in(rig.executed(), [])) > 120, 60, "the job under way")
        time.sleep(0.6)                          # let a progress batch be saved
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(1.0)                          # the printer finishes what is in its buffers
        before = rig.executed()
        boots = rig.printer.boots
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(conf)], env=env,
                                stderr=subprocess.DEVNULL)
        store = lambda: JobStore(state_dir / "jobs.db", readonly=True)
        wait_for(lambda: ro_state(state_dir) == "interrupted", 60, "interrupted")
        (job,) = [j for j in store().list() if j.source == "cli"]
        assert job.state == "interrupted" and job.acked_line > 100 and job.layer >= 0
        wait_for(lambda: rig.events("job.interrupted"), 40, "job.interrupted at the subscriber")
        time.sleep(2.0)
        after = rig.executed()[len(before):]
        assert job_lines_in(after, []) == [], f"the restarted agent sent {after[:5]}"
        assert rig.printer.boots == boots        # reopening the port did not reset the printer
        assert store().machine_state() == "interrupted"
        proc.send_signal(signal.SIGTERM)          # systemd's stop: a clean exit
        assert proc.wait(30) == 0
        wait_for(lambda: any(t.endswith("/status") and m.get("status") == "offline" for t, m in rig.messages),
                 10, "the retained offline status")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_agent_resume_from_layer_only_after_start(rig_factory, capsys):
    from edge.cli import main as cli
    rig = rig_factory(time_scale=10.0)
    rig.start_agent()
    rig.offer("nut-r")
    rig.wait_state("armed", 60)
    n0 = len(rig.executed())
    rig.press("start")
    wait_for(lambda: len(rig.executed()) - n0 > 300, 60, "a few layers printed")
    rig.stop_agent()                             # the agent goes away mid-job (as on a power cut)
    time.sleep(1.0)
    rig.start_agent()
    rig.wait_state("interrupted", 30)
    job = rig.store.get("nut-r")
    assert job.state == "interrupted" and job.layer >= 1
    conf = rig.workdir / "agent.toml"
    _agent_toml(conf, rig)
    assert cli(["job", "--config", str(conf), "list"]) == 0
    assert "interrupted" in capsys.readouterr().out
    time.sleep(1.0)
    n1 = len(rig.executed())
    assert cli(["job", "--config", str(conf), "resume", "nut-r"]) == 0
    rig.wait_state("armed", 30)                  # armed with the resume file: still waiting for a person
    job = rig.store.get("nut-r")
    assert job.resume_path and job.resume_base > 1
    rig.stop_agent()                             # a restart while the resume waits for START...
    rig.start_agent()
    rig.wait_state("armed", 30)                  # ...keeps it armed with the resume file
    time.sleep(1.0)
    assert job_lines_in(without_probes(rig.executed()[n1:]), []) == []
    n1 = len(rig.executed())
    rig.press("start")
    rig.wait_state("awaiting_bed_clear", 60)
    resumed = without_probes(rig.executed()[n1:])
    resume_file = job_commands(Path(job.resume_path))
    assert resumed == resume_file
    assert "G28 X Y" in resumed[:job.resume_pre] and "G28" not in resumed[:job.resume_pre]
    from_layer = [c.decode() for n, c in command_lines(load(str(DEMO_GCODE))) if n >= job.resume_base]
    assert resumed[-len(from_layer):] == from_layer
    rig.press("bed_clear", hold_s=1.2)
    rig.wait_state("idle", 30)
    wait_for(lambda: rig.events("part.outcome"), 30, "part.outcome")
    assert [e["job_id"] for e in rig.events("part.outcome")] == ["nut-r"]


def test_agent_camera_checks_bed_before_start_and_first_layer(rig_factory, tmp_path):
    import cv2
    from vision.synth import bed_clear_scene

    scene = bed_clear_scene(3, occupied=True)          # a part left on the bed
    cam = tmp_path / "camera"
    cam.mkdir()
    cv2.imwrite(str(cam / "frame.png"), scene.image)
    ref = tmp_path / "bed-reference.png"
    cv2.imwrite(str(ref), scene.reference)
    rig = rig_factory(time_scale=10.0, camera={"source": f"folder:{cam}", "reference": str(ref)},
                      panel={"override_hold_s": 1.0})
    rig.start_agent()
    rig.offer("nut-cam")
    rig.wait_state("armed", 60)
    n0 = len(rig.executed())
    rig.press("start")                                   # refused: the bed is not clear
    wait_for(lambda: rig.events("inspect.bed_clear"), 60, "the bed check")
    (bed,) = rig.events("inspect.bed_clear")
    assert bed["verdict"] == "occupied" and "on the bed" in bed["reasons"][0]
    time.sleep(0.5)
    assert rig.machine_state() == "armed" and job_lines_in(rig.executed()[n0:], []) == []
    assert rig.pins.level(rig.cfg.panel.led_red)
    assert any("START refused" in e["message"] for e in rig.events("error"))
    rig.press("start", hold_s=1.3)                       # the operator overrides with a long hold
    rig.wait_state("running", 60)
    # the first layer is judged when its last line is acknowledged; this frame shows no first layer
    wait_for(lambda: rig.events("inspect.first_layer"), 90, "the first-layer check")
    (fl,) = rig.events("inspect.first_layer")
    assert fl["verdict"] == "fail", fl
    assert Path(fl["overlay_path"]).is_file() and len(fl["overlay_sha256"]) == 64
    import hashlib
    assert hashlib.sha256(Path(fl["overlay_path"]).read_bytes()).hexdigest() == fl["overlay_sha256"]
    rig.wait_state("paused", 10)                         # first_layer_fail_action = pause
    assert rig.store.get("nut-cam").state == "paused"
    rig.press("stop", hold_s=rig.cfg.panel.stop_cancel_hold_s + 0.3)
    rig.wait_state("awaiting_bed_clear", 30)


def test_stop_while_the_bed_check_runs_withdraws_start_and_a_dead_worker_never_blocks_start(rig_factory, tmp_path):
    import cv2
    from edge.events import StartPressed, StopPressed
    from vision.synth import bed_clear_scene

    scene = bed_clear_scene(4, occupied=False)         # a clear bed: the check alone would start the job
    cam = tmp_path / "camera"
    cam.mkdir()
    cv2.imwrite(str(cam / "frame.png"), scene.image)
    ref = tmp_path / "bed-reference.png"
    cv2.imwrite(str(ref), scene.reference)
    rig = rig_factory(time_scale=10.0, camera={"source": f"folder:{cam}", "reference": str(ref)})
    rig.start_agent()
    rig.offer("nut-stop")
    rig.wait_state("armed", 60)
    n0 = len(rig.executed())
    # START, then STOP before the worker's verdict can come back (the loop takes them in order)
    rig.agent.post(StartPressed(0.1))
    rig.agent.post(StopPressed())
    wait_for(lambda: rig.events("inspect.bed_clear"), 60, "the bed check")
    assert rig.events("inspect.bed_clear")[0]["verdict"] == "clear"
    time.sleep(0.5)
    assert rig.machine_state() == "armed" and job_lines_in(rig.executed()[n0:], []) == []
    assert any("START withdrawn" in e["message"] for e in rig.events("error"))
    # the worker dies (the OOM killer picks it first): the next START gets a fresh worker
    rig.agent.inspector.proc.kill()
    rig.agent.inspector.proc.join(5)
    rig.press("start")
    rig.wait_state("running", 60)
    wait_for(lambda: len(rig.events("inspect.bed_clear")) == 2, 30, "the fresh worker's bed check")
    rig.press("stop", hold_s=rig.cfg.panel.stop_cancel_hold_s + 0.3)
    rig.wait_state("awaiting_bed_clear", 30)


def test_agent_laser_job_needs_laser_mode_then_cuts_and_counts_wear(broker, tmp_path):
    from drivers.sim.grbl import VirtualGrbl

    laser = VirtualGrbl(time_scale=30.0, settings={32: 0})          # a controller left in spindle mode
    laser.start()
    rig = DemoRig(tmp_path / "laser", broker, printer=laser, cfg_overrides={
        "machine": {"kind": "laser", "id": "laser-1", "profile": "k40"},
        "serial": {"protocol": "grbl"}, "motion": {"planner": "grbl"}})
    try:
        rig.watch()
        rig.start_agent()
        wait_for(lambda: rig.agent.driver_ok, 40, "the laser")
        plate = ROOT / "tests/fixtures/slicer/laser_vector_plate.gcode"
        rig.offer("plate-1", gcode_path=plate, design="plate-80x60", parts=1)
        rig.wait_state("armed", 60)
        n0 = len(rig.executed())
        rig.press("start")
        wait_for(lambda: rig.events("error"), 30, "the refusal")
        assert "$32=1" in rig.events("error")[0]["message"]
        assert rig.machine_state() == "armed" and rig.pins.level(rig.cfg.panel.led_red)
        assert [c for c in rig.executed()[n0:] if c.startswith(("G0", "G1", "G2", "G3", "M4"))] == []
        rig.agent.driver.send_command("$32=1")                     # the operator fixes the controller
        rig.press("start")
        rig.wait_state("awaiting_bed_clear", 60)
        (started,) = rig.events("job.started")
        assert started["laser"]["power_mode"] == "M4" and started["laser"]["laser_on_mm"] > 100
        wear = json.loads((Path(rig.cfg.paths.state_dir) / "laser-wear.json").read_text())
        assert wear["jobs"] == 1 and wear["laser_on_mm"] > 100
        wait_for(lambda: rig.events("job.done"), 30, "job.done")
        used = rig.events("job.done")[0]["laser_used"]             # what this job really burned
        assert used["laser_on_mm"] == pytest.approx(wear["laser_on_mm"], rel=1e-3) and used["laser_on_s"] > 0
        wait_for(lambda: any("machine" in smp for t, m in list(rig.messages) if t.endswith("/tele")
                             for smp in m["samples"]), 30, "GRBL status in tele")
        cut = [c for c in rig.executed()[n0:] if not c.startswith("$")]
        assert cut == [c.replace(" ", "") for c in job_commands(plate)]    # GRBL drops the spaces
        rig.press("bed_clear", hold_s=1.2)
        rig.wait_state("idle", 30)
        wait_for(lambda: rig.events("part.outcome"), 30, "part.outcome")
        assert rig.events("part.outcome")[0]["design"] == "plate-80x60"
    finally:
        rig.close()
