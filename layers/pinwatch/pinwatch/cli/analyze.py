"""``pinwatch analyze [FILE ...|-]``: rank pinning reasons in exported proxy logs, offline.

Reads plain log text, ``aws logs`` JSON and gzip (see :mod:`pinwatch.cli.inputs`), streaming, and
prints a ranking with the most useful fix for each reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from pinwatch.analysis import Analysis, ReasonSummary
from pinwatch.catalog import DRIVERS, driver_name
from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, CliError
from pinwatch.cli.inputs import STDIN, InputError, InputLine, check_readable, read_messages
from pinwatch.hints import hints_for
from pinwatch.parse import parse_message
from pinwatch.records import EngineFamily, Kind, LogRecord

FORMATS = ("table", "json", "markdown", "jsonl")
ENGINES = ("mysql", "postgresql", "sqlserver")
HINTS_PER_REASON = 3  # in markdown's "How to fix" section
DIGEST_COLUMN_CHARS = 60


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
    parser.add_argument(
        "--engine", type=_engine, metavar="{mysql,postgresql,sqlserver}", help="proxy engine family, for hints"
    )
    parser.add_argument(
        "--driver",
        action="append",
        default=[],
        type=_driver,
        metavar="NAME",
        help=f"client driver/ORM in use, for hints (repeatable): {', '.join(DRIVERS)}",
    )
    parser.add_argument("--fail-on-pins", action="store_true", help="exit 1 when any pin is found (for CI)")
    parser.add_argument("--top", type=_positive, metavar="N", help="show only the N most frequent reasons")


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
            _print_table(analysis, args, sources)
        elif args.format == "json":
            json.dump(_summary_object(analysis, args, sources), out, indent=2)
            out.write("\n")
        elif args.format == "markdown":
            out.write(_markdown(analysis, args))
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
        "timestamp": _iso(record.timestamp_ms),
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


def _summary_object(analysis: Analysis, args: argparse.Namespace, sources: list[str]) -> dict[str, Any]:
    summary = analysis.to_dict(args.top)
    summary["first_seen"] = _iso(analysis.first_seen_ms)
    summary["last_seen"] = _iso(analysis.last_seen_ms)
    for section in ("pins", "would_pins"):
        for reason in summary[section]:
            reason["first_seen"] = _iso(reason["first_seen_ms"])
            reason["last_seen"] = _iso(reason["last_seen_ms"])
    return {"proxy": args.proxy, "sources": sources, **summary}


def _print_table(analysis: Analysis, args: argparse.Namespace, sources: list[str]) -> None:
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False)
    label = args.proxy or ", ".join("stdin" if s == STDIN else os.path.basename(s) for s in sources)
    pins = analysis.pins(args.top)
    if pins:
        console.print(_reason_table(f"Pinning reasons: {label}", pins, console.width))
    else:
        console.print(f"[green]No pinning found[/green] in {analysis.lines} lines from {label}.")
    would = analysis.would_pins(args.top)
    if would:
        console.print(
            _reason_table("Would pin (INFO: prepared statements that pin when run)", would, console.width, brief=True)
        )
    console.print(_totals_line(analysis))
    if analysis.unparsed_samples:
        first = analysis.unparsed_samples[0]
        where = f"{first.source}:{first.line}" if first.source and first.line else "input"
        console.print(
            f"[dim]{analysis.unparsed_count} line(s) were not proxy log lines (first at {where}: "
            f"{_short(first.text, 50)!r}).[/dim]",
            markup=True,
        )
    if pins:
        console.print(f"[dim]All hints for a reason: pinwatch reasons {pins[0].reason}[/dim]")


# Column layouts by terminal width: (min console width, content widths of the fixed columns).
# The hint column takes what is left. rich's own sizing lets a long hint squeeze everything else.
_WIDE, _MEDIUM = 150, 110
_REASON_CHARS, _DIGEST_CHARS, _SEEN_CHARS, _ENGINE_CHARS = 20, 34, 19, 10


def _reason_table(title: str, summaries: list[ReasonSummary], width: int, brief: bool = False) -> Any:
    from rich.table import Table
    from rich.text import Text

    wide = width >= _WIDE and not brief
    medium = width >= _MEDIUM
    table = Table(title=title, title_justify="left", show_lines=not brief, width=width)
    table.add_column("Reason", width=_REASON_CHARS)
    table.add_column("Pins" if not brief else "Count", justify="right", width=5)
    if not brief:
        table.add_column("Share", justify="right", width=5)
    if wide:
        table.add_column("Engine", width=_ENGINE_CHARS)
        table.add_column("Seen (UTC)", width=_SEEN_CHARS)
    if medium:
        table.add_column("Example digest", width=_DIGEST_CHARS, overflow="fold")
    table.add_column("Top hint", ratio=1, overflow="fold")
    for s in summaries:
        reason = Text.assemble((s.reason, "bold"), "\n", (s.title, "dim"))
        if not medium and s.example_digest:
            reason.append("\n" + (_short(s.example_digest, 60) or ""), "cyan")
        row: list[Any] = [reason, str(s.count)]
        if not brief:
            row.append(f"{s.share:.0%}")
        if wide:
            row += [_engines(s), _seen(s)]
        if medium:
            row.append(_digest_cell(s))
        row.append(s.top_hint or "-")
        table.add_row(*row)
    return table


def _totals_line(analysis: Analysis) -> str:
    parts = [
        f"pins {analysis.pin_count}",
        f"would-pins {analysis.would_pin_count}",
        f"other {analysis.totals[Kind.OTHER]}",
        f"unparsed {analysis.unparsed_count}",
        f"lines {analysis.lines}",
    ]
    if analysis.first_seen_ms is not None and analysis.last_seen_ms is not None:
        parts.append(f"{_clock(analysis.first_seen_ms)} to {_clock(analysis.last_seen_ms)} UTC")
    return " · ".join(parts)


def _markdown(analysis: Analysis, args: argparse.Namespace) -> str:
    title = f"RDS Proxy pinning: {args.proxy}" if args.proxy else "RDS Proxy pinning"
    lines = [f"## {title}", "", _md_escape(_totals_line(analysis)), ""]
    pins = analysis.pins(args.top)
    if not pins:
        lines += ["No pinning found.", ""]
    else:
        lines += [
            "| Reason | Pins | Share | Engine | First seen (UTC) | Last seen (UTC) | Example digest |",
            "|---|---:|---:|---|---|---|---|",
        ]
        lines += [
            f"| {_md_escape(s.title)} (`{s.reason}`) | {s.count} | {s.share:.0%} | {_engines(s)} | "
            f"{_clock(s.first_seen_ms)} | {_clock(s.last_seen_ms)} | {_md_code(_short(s.example_digest))} |"
            for s in pins
        ]
        lines += ["", "### How to fix", ""]
        for s in pins:
            engine = EngineFamily(s.engines[0]) if len(s.engines) == 1 else None
            hints = hints_for(s.reason, engine, s.example_digest, None, args.driver)[:HINTS_PER_REASON]
            lines.append(f"**{_md_escape(s.title)}** (`{s.reason}`, {s.count} pin{'' if s.count == 1 else 's'})")
            lines += [f"- {h.text}" + (f" ([docs]({h.doc_url}))" if h.doc_url else "") for h in hints]
            lines.append("")
    would = analysis.would_pins(args.top)
    if would:
        lines += ["### Would pin (INFO)", "", "| Reason | Count | Example digest |", "|---|---:|---|"]
        lines += [f"| `{s.reason}` | {s.count} | {_md_code(_short(s.example_digest))} |" for s in would]
        lines.append("")
    return "\n".join(lines)


def _digest_cell(summary: ReasonSummary) -> Any:
    from rich.text import Text

    cell = Text(_short(summary.example_digest) or "-", style="cyan")
    if summary.distinct_digests > 1:
        cell.append(
            f"\n(+{summary.distinct_digests - 1} other digest{'s' if summary.distinct_digests > 2 else ''})", "dim"
        )
    return cell


def _engines(summary: ReasonSummary) -> str:
    return ", ".join(e.lower() for e in summary.engines) or "-"


def _seen(summary: ReasonSummary) -> str:
    if summary.first_seen_ms is None or summary.last_seen_ms is None:
        return "-"
    return f"{_clock(summary.first_seen_ms)}\n{_clock(summary.last_seen_ms)}"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clock(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str | None, limit: int = 2 * DIGEST_COLUMN_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_code(text: str | None) -> str:
    if not text:
        return "-"
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', '\\|')}{pad}{fence}"


def _engine(value: str) -> EngineFamily:
    engine = EngineFamily.parse(value)
    if engine is None:
        raise argparse.ArgumentTypeError(f"unknown engine {value!r} (choose from {', '.join(ENGINES)})")
    return engine


def _driver(value: str) -> str:
    name = driver_name(value)
    if name is None:
        raise argparse.ArgumentTypeError(f"unknown driver {value!r} (choose from {', '.join(DRIVERS)})")
    return name


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number
