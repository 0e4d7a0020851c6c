"""The `fabedge` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in `edge/commands/<module>.py` and defines
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their command runs, so `fabedge --version` or `fabedge config check` never pays
for numba, OpenCV or paho.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

from edge import __version__
from edge.errors import FabedgeError, UsageError  # noqa: F401  (UsageError re-exported for commands)

# command name -> (module under edge.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the agent daemon (what systemd starts)"),
    "demo": ("demo", "the whole loop on a virtual printer, a local broker and mock buttons"),
    "analyze": ("analyze", "parse, plan and check a G-code file"),
    "config": ("config", "check a configuration file"),
    "stream": ("stream", "check a G-code file and stream it to a printer or laser"),
    "sim": ("sim", "run a virtual Marlin printer or GRBL laser on a pseudo-terminal"),
    "inspect": ("inspect", "camera inspection: bed clear, first layer, laser cut"),
    "keys": ("keys", "make region key pairs and sign commands"),
    "fleet": ("fleet", "watch (or simulate) a region's machines over MQTT"),
    "job": ("job", "add, list and act on the local job queue"),
    "doctor": ("doctor", "check serial, camera, GPIO, broker, clock, disk and cache"),
    "firstboot": ("firstboot", "provision this Pi from the boot partition's fabedge.toml"),
    "region": ("region", "a region's campaign dispatcher and report"),
}




class _Parser(argparse.ArgumentParser):
    """Usage mistakes exit 1: exit 2 means "job rejected" for analyze and stream."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _subparsers_for(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in names:
        module_name, help_text = COMMANDS[name]
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        module = _load(module_name)
        if module is not None:
            module.add_arguments(sp)


def _load(module_name: str):
    try:
        return importlib.import_module(f"edge.commands.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"edge.commands.{module_name}":
            return None  # command not built into this install
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="fabedge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fabedge {__version__}")
    names = [only] if only in COMMANDS else [n for n in COMMANDS if _load_spec_exists(n)]
    _subparsers_for(parser, names)
    return parser


def _load_spec_exists(name: str) -> bool:
    return importlib.util.find_spec(f"edge.commands.{COMMANDS[name][0]}") is not None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the module of the command being run (keeps start-up fast).
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        parser.print_help()
        return 1
    module = _load(args._module)
    if module is None:
        print(f"fabedge: the '{args.command}' command is not available in this build", file=sys.stderr)
        return 1
    try:
        return int(module.run(args) or 0)
    except (FabedgeError, OSError) as exc:
        # UsageError, ConfigError, unreadable files...: one clear line, no traceback.
        print(f"fabedge {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

