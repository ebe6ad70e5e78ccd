"""The ``pinwatch`` command line.

Each subcommand lives in its own module exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so
``pinwatch analyze`` never pays for boto3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pinwatch import __version__

# subcommand -> (module, one-line help). Help text lives here so `pinwatch --help` imports nothing.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("pinwatch.cli.analyze", "rank pinning reasons in exported proxy logs (no AWS needed)"),
    "reasons": ("pinwatch.cli.reasons", "list the pinning reason catalog, or show one reason in full"),
    "report": ("pinwatch.cli.report", "top pinning reasons per proxy from the summary table, with trend and fixes"),
    "check": ("pinwatch.cli.check", "diagnose every proxy now (the scheduled check); --dry-run previews alerts"),
    "backfill": ("pinwatch.cli.backfill", "count pins in a proxy's log history; --write adds them to the table"),
    "demo": ("pinwatch.cli.demo", "replay a pinning incident through the real functions on local emulated AWS"),
}

EXIT_OK = 0
EXIT_FINDINGS = 1  # e.g. --fail-on-pins found pins
EXIT_USAGE = 2  # bad arguments, unreadable input, missing table or credentials


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinwatch", description="Find, count and explain Amazon RDS Proxy connection pinning."
    )
    parser.add_argument("--version", action="version", version=f"pinwatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if a in SUBCOMMANDS), None)
    parser = build_parser(only=command)
    args = parser.parse_args(args_list)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        code: int = module.run(args)
    except CliError as exc:
        print(f"pinwatch {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
