"""The ``pinwatch`` command line.

Each subcommand lives in its own module exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so
``pinwatch analyze`` never pays for boto3.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
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
EXIT_USAGE = 2  # bad arguments, unreadable input, missing table or credentials, bad configuration

# Modules of the ``cli`` extra: a plain install lacks them (the Lambda layer does not ship them).
CLI_EXTRA_MODULES = frozenset({"boto3", "botocore", "rich", "yaml"})


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
    """Run one subcommand: its exit code, or 2 with one line for any configuration problem.

    With stdout closed (``pinwatch … >&-``) the command still runs, its output discarded; a reader
    that goes away mid-output (``pinwatch report | head``) ends the command quietly.
    """
    if sys.stdout is None:  # Python's stand-in for a closed file descriptor 1
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted, it has; stop quietly, like `analyze` does.
        _discard_stdout()
        return EXIT_OK
    except SystemExit as exc:
        # rich's Console answers a broken pipe by pointing stdout at /dev/null and exiting 1
        # (Console.on_broken_pipe); the same event, so the same quiet exit 0.
        if exc.code == 1 and _stdout_is_devnull():
            return EXIT_OK
        raise


def _main(argv: Sequence[str] | None) -> int:
    from pinwatch.config import ConfigError

    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if a in SUBCOMMANDS), None)
    try:
        parser = build_parser(only=command)
        args = parser.parse_args(args_list)
        module = importlib.import_module(SUBCOMMANDS[args.command][0])
        code: int = module.run(args)
    except (CliError, ConfigError) as exc:
        _error(command, str(exc))
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in CLI_EXTRA_MODULES:
            raise
        _error(command, f"this command needs the CLI extra ({exc.name} is missing): pip install 'pinwatch[cli]'")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


def _error(command: str | None, message: str) -> None:
    prefix = f"pinwatch {command}" if command else "pinwatch"
    print(f"{prefix}: error: {' '.join(message.split())}", file=sys.stderr)


def _stdout_is_devnull() -> bool:
    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail again (Python docs, "Note on SIGPIPE")."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
