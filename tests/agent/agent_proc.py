"""The agent as its own process, for the kill -9 test: mock pins pressed through files.

usage: python agent_proc.py CONFIG TRIGGER_DIR
A file `press-<button>` (e.g. press-start) appearing in TRIGGER_DIR presses
that button for 50 ms, as an operator would; the file is removed.
"""

import signal
import sys
import threading
import time
from pathlib import Path

from drivers.gpio import Pins
from edge import config
from edge.agent import Agent


def main() -> None:
    cfg = config.load(sys.argv[1])
    trigger = Path(sys.argv[2])
    pins = Pins("mock")
    agent = Agent(cfg, pins=pins)

    def presser() -> None:
        while True:
            for f in trigger.glob("press-*"):
                pin = getattr(cfg.panel, f.name[len("press-"):])
                f.unlink()
                pins.press(pin)
                time.sleep(0.05)
                pins.release(pin)
            time.sleep(0.05)

    threading.Thread(target=presser, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=agent.shutdown, daemon=True).start())
    agent.start()
    agent.run()


if __name__ == "__main__":
    main()
