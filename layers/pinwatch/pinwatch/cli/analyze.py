"""``pinwatch analyze [FILE ...|-]``: rank pinning reasons in exported proxy logs, offline.

Reads plain log text, ``aws logs`` JSON and gzip (see :mod:`pinwatch.cli.inputs`), streaming, and
prints a ranking with the most useful fix for each reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pinwatch.analysis import Analysis
from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, CliError
from pinwatch.cli.inputs import STDIN, InputError, InputLine, check_readable, read_messages
from pinwatch.cli.ranking import add_ranking_arguments, iso_ms, markdown, print_table, summary_object
from pinwatch.parse import parse_message
from pinwatch.records import Kind, LogRecord

FORMATS = ("table", "json", "markdown", "jsonl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="log exports: plain text, `aws logs filter-log-events`/`get-log-events` JSON, or .gz of either; "
        "`-` or nothing reads stdin",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); json summary; markdown for a ticket; jsonl: one object per input line",
    )
    parser.add_argument("--proxy", metavar="LABEL", help="name of the proxy the logs come from (shown in the output)")
    add_ranking_arguments(parser)
    parser.add_argument("--fail-on-pins", action="store_true", help="exit 1 when any pin is found (for CI)")


def run(args: argparse.Namespace) -> int:
    sources: list[str] = list(args.files) or [STDIN]
    if sources == [STDIN] and not args.files and sys.stdin is not None and sys.stdin.isatty():
        raise CliError("no input: give FILE arguments or pipe proxy log lines to stdin")
    try:
        for source in sources:
            check_readable(source)
    except InputError as exc:
        raise CliError(str(exc)) from exc

    analysis = Analysis(engine=args.engine, drivers=args.driver)
    out = sys.stdout
    jsonl = args.format == "jsonl"
    try:
        for source in sources:
            for item in read_messages(source):
                record = _record(item)
                analysis.add(record, args.proxy, line=item.line, source=item.source)
                if jsonl:
                    out.write(json.dumps(_jsonl_object(item, record, args.proxy, len(sources) > 1)) + "\n")
        if args.format == "table":
            label = args.proxy or ", ".join("stdin" if s == STDIN else os.path.basename(s) for s in sources)
            print_table(analysis, label, top=args.top)
        elif args.format == "json":
            json.dump(summary_object(analysis, proxy=args.proxy, sources=sources, top=args.top), out, indent=2)
            out.write("\n")
        elif args.format == "markdown":
            out.write(markdown(analysis, proxy=args.proxy, top=args.top, drivers=args.driver))
        out.flush()
    except InputError as exc:
        raise CliError(str(exc)) from exc
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return EXIT_OK
    return EXIT_FINDINGS if args.fail_on_pins and analysis.pin_count else EXIT_OK


def _record(item: InputLine) -> LogRecord:
    if item.broken:
        return LogRecord(kind=Kind.UNPARSED, raw=item.message, timestamp_ms=item.timestamp_ms)
    return parse_message(item.message, item.timestamp_ms)


def _jsonl_object(item: InputLine, record: LogRecord, proxy: str | None, with_source: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "line": item.line,
        "kind": record.kind.value,
        "reason": record.reason,
        "reason_text": record.reason_text,
        "digest": record.digest,
        "timestamp": iso_ms(record.timestamp_ms),
        "level": record.level,
        "endpoint": record.endpoint,
        "client_connection": record.client_connection,
        "db_connection": record.db_connection,
    }
    if proxy:
        obj["proxy"] = proxy
    if item.log_stream:
        obj["log_stream"] = item.log_stream
    if with_source:
        obj["source"] = item.source
    return obj
