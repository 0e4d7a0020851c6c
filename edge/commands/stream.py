"""`fabedge stream FILE --port P [--baud B] [--config C]`: check a G-code file,
then stream it to a printer (or laser) with a one-line progress bar.

A file that fails the checks never reaches the machine (exit 2, with each
line and reason). Ctrl-C asks whether to pause or cancel and does it through
the driver (never by dropping the port). A failed job exits 1 with one
sentence saying why.

Safety: to a real serial device (anything but a simulator's pseudo-terminal)
nothing is sent until a person presses START on that machine's panel; STOP on
the panel pauses at once and, held, cancels (edge/stream_gate.py). That needs
`--config` with the panel's pins; without a START button the command refuses.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time

from drivers.base import (DriverError, JobCancelled, JobFailed, JobFinished, LineAcked, Paused, Resumed,
                          Temperatures)
from edge import config as config_mod
from edge.errors import FabedgeError, GcodeError
from edge.stream import JobProgress, job_lines, open_driver
from edge.stream_gate import StartGate, StreamRefused, is_virtual_port

REDRAW_S = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="G-code file")
    parser.add_argument("--port", required=True, help="serial device, e.g. /dev/fabedge/machine or a sim's pty")
    parser.add_argument("--baud", type=int, default=None, help="default: serial.baud from the config")
    parser.add_argument("--config", default=None, help="fabedge.toml (default: built-in printer settings); "
                        "required for a real machine: its [panel] START button begins the job")
    parser.add_argument("--connect-timeout", type=float, default=15.0, help="seconds to wait for the firmware")


class _Sink:
    """Driver events into the main thread: the last acked line as a number, the rest on a small queue."""

    def __init__(self) -> None:
        self.line = 0
        self.temps = ""
        self.events: queue.Queue = queue.Queue(maxsize=1000)

    def __call__(self, event) -> None:
        if isinstance(event, LineAcked):
            self.line = event.line
        elif isinstance(event, Temperatures):
            self.temps = "  ".join(f"{k} {cur:.0f}/{tgt:.0f}" for k, (cur, tgt) in event.readings.items())
        elif isinstance(event, (JobFinished, JobFailed, JobCancelled, Paused, Resumed)):
            self.events.put(event)


def run(args: argparse.Namespace) -> int:
    from edge.toolpath import analyze

    real = not is_virtual_port(args.port)
    if real and not args.config:
        print(f"fabedge stream: {args.port} is a real serial device: --config is required so that the job "
              "starts only when START is pressed on that machine's panel; nothing was sent", file=sys.stderr)
        return 2
    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    try:
        analysis = analyze(args.file, cfg)
    except GcodeError as exc:
        print(f"fabedge stream: {exc}", file=sys.stderr)
        return 2
    if not analysis.ok:
        for f in analysis.errors:
            print(f"{args.file}: {f.message}", file=sys.stderr)
        print(f"fabedge stream: {args.file} failed {len(analysis.errors)} check(s); nothing was sent", file=sys.stderr)
        return 2
    sink = _Sink()
    driver = open_driver(cfg, sink, port=args.port, baud=args.baud)
    gate = None
    if real:
        try:
            gate = StartGate(cfg, driver)
        except FabedgeError as exc:
            print(f"fabedge stream: {exc}; nothing was sent", file=sys.stderr)
            return 2
    try:
        return _connect_and_stream(args, cfg, analysis, driver, sink, gate)
    finally:
        if gate is not None:
            gate.close()


def _connect_and_stream(args, cfg, analysis, driver, sink: _Sink, gate: StartGate | None) -> int:
    try:
        connected = driver.open(timeout=args.connect_timeout)
    except DriverError as exc:
        print(f"fabedge stream: {exc}", file=sys.stderr)
        return 1
    if cfg.machine.kind == "laser":
        from edge.laser import LaserRefused, preflight
        try:
            report = preflight(driver, analysis.toolpath, cfg)  # laser mode, power, Z: before anything moves
        except LaserRefused as exc:
            driver.close()
            print(f"fabedge stream: {exc}; nothing was sent", file=sys.stderr)
            return 2
        print(f"laser: {report.power_mode}, S up to {report.max_power:g} (limit {report.power_limit:g}), "
              f"{report.laser_on_mm / 1000:.2f} m cut in about {report.cut_time_s / 60:.1f} min")
    try:
        if gate is not None:
            print(f"{connected.firmware} on {args.port}: {args.file} checked and ready", flush=True)
            try:
                gate.wait_for_start(lambda text: print(text, flush=True))
            except StreamRefused as exc:
                print(f"fabedge stream: {exc}; nothing was sent", file=sys.stderr)
                return 1
        print(f"{connected.firmware} on {args.port}: streaming {args.file} "
              f"({analysis.lines} lines, {analysis.layers} layers, about {analysis.estimated_time_s / 60:.1f} min)")
        return _stream(driver, analysis, sink, gate)
    finally:
        driver.close()


def _stream(driver, analysis, sink: _Sink, gate: StartGate | None = None) -> int:
    progress = JobProgress(analysis)
    tty = sys.stdout.isatty()
    driver.start_job(job_lines(analysis))
    last_draw = 0.0
    paused = False
    while True:
        try:
            while gate is not None and (press := gate.next_event()) is not None:
                gate.handle(press, paused)
            try:
                event = sink.events.get(timeout=REDRAW_S)
            except queue.Empty:
                event = None
            now = time.monotonic()
            if now - last_draw >= (REDRAW_S if tty else 10.0) or event is not None:
                _draw(progress.update(sink.line, now).bar() + (f"  {sink.temps}" if sink.temps else ""), tty)
                last_draw = now
            if isinstance(event, JobFinished):
                _draw(progress.update(sink.line).bar(), tty, end=True)
                print(f"done: {event.lines} lines acknowledged")
                return 0
            if isinstance(event, JobFailed):
                _draw(progress.update(sink.line).bar(), tty, end=True)
                print(f"fabedge stream: the job failed after line {event.last_acked_line}: {event.reason}",
                      file=sys.stderr)
                return 1
            if isinstance(event, JobCancelled):
                _draw(progress.update(sink.line).bar(), tty, end=True)
                print(f"fabedge stream: cancelled after line {event.last_acked_line}", file=sys.stderr)
                return 1
            if isinstance(event, Resumed):
                paused = False
                if gate is not None:
                    gate.show("running")
            if isinstance(event, Paused):
                paused = True
                _draw(f"paused ({event.reason}) at {event.position or 'unknown position'}", tty, end=True)
                if gate is None:
                    _ask_paused(driver)
                else:                      # resuming moves the machine: only from its panel
                    gate.show("paused")
                    print(f"press PAUSE or START on {gate.machine_id} to resume; hold STOP (or Ctrl-C) to cancel",
                          flush=True)
        except KeyboardInterrupt:
            if gate is not None and paused:
                driver.cancel()
                print("cancelling: the job stops here; a printer then turns heaters and fan off")
            else:
                _ask_running(driver)


def _ask_running(driver) -> None:
    """Ctrl-C while streaming: the stream goes on while the operator decides."""
    answer = _ask("\npause (p), cancel (c) or keep going (Enter)? ")
    if answer.startswith("p"):
        driver.pause("operator")
        print("pausing: lines already in the printer finish, then the head parks")
    elif answer.startswith("c"):
        driver.cancel()
        print("cancelling: the job stops here; a printer then turns heaters and fan off")


def _ask_paused(driver) -> None:
    answer = _ask("resume (r) or cancel (c)? ")
    if answer.startswith("r"):
        driver.resume()
    else:
        driver.cancel()


def _ask(prompt: str) -> str:
    try:
        return input(prompt).strip().lower()
    except (EOFError, KeyboardInterrupt):
        return "c"                         # no one to ask, or Ctrl-C again: the safe choice


def _draw(text: str, tty: bool, end: bool = False) -> None:
    if tty:
        sys.stdout.write("\r" + text[:200].ljust(100) + ("\n" if end else ""))
        sys.stdout.flush()
    else:
        print(text, flush=True)
