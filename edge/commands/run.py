"""`fabedge run --config C`: the agent daemon that systemd starts (Type=notify, watchdog).

SIGTERM / SIGINT ask the loop to stop cleanly (progress flushed, `offline`
published); a job that is running then is found `interrupted` at the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from edge import config

DEFAULT_CONFIG = "/etc/fabedge/fabedge.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(levelname)s %(name)s: %(message)s")   # journald adds the time
    cfg = config.load(args.config)
    from edge.agent import Agent
    agent = Agent(cfg)
    def on_signal(signum: int, _frame: object) -> None:
        # The handler runs on the loop's own thread, possibly inside queue.get() holding the
        # queue's lock: post from another thread so the handler never waits on that lock.
        threading.Thread(target=agent.shutdown, args=(signal.Signals(signum).name,), daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    agent.start()
    agent.run()
    return 0
