"""The ranking of pinning reasons that ``pinwatch analyze`` and ``pinwatch backfill`` print.

Both commands fold log lines into an :class:`~pinwatch.analysis.Analysis` and show it the same way:
the options that shape the ranking and its hints (``--engine``, ``--driver``, ``--top``) and its
three renderings — a rich table for the terminal, a JSON summary, markdown for a ticket.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from pinwatch.analysis import Analysis, ReasonSummary
from pinwatch.catalog import DRIVERS, driver_name
from pinwatch.hints import hints_for
from pinwatch.records import EngineFamily, Kind
from pinwatch.report import iso

ENGINES = ("mysql", "postgresql", "sqlserver")
HINTS_PER_REASON = 3  # in markdown's "How to fix" section
DIGEST_CHARS = 120  # a digest longer than this is cut (with an ellipsis) in tables and markdown

# Column layouts by terminal width: (min console width, content widths of the fixed columns).
# The hint column takes what is left. rich's own sizing lets a long hint squeeze everything else.
_WIDE, _MEDIUM = 150, 110
_REASON_CHARS, _DIGEST_CHARS, _SEEN_CHARS, _ENGINE_CHARS = 20, 34, 19, 10


# ------------------------------------------------------------------ options


def add_ranking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--driver`` (repeatable) and ``--top``; read them back with :class:`RankingOptions`."""
    parser.add_argument(
        "--engine",
        type=engine_family,
        metavar="{mysql,postgresql,sqlserver}",
        help="proxy engine family, for hints (default: inferred from the log lines)",
    )
    parser.add_argument(
        "--driver",
        action="append",
        default=[],
        type=driver,
        metavar="NAME",
        help=f"client driver/ORM in use, for hints (repeatable): {', '.join(DRIVERS)}",
    )
    parser.add_argument("--top", type=positive_int, metavar="N", help="show only the N most frequent reasons")


def engine_family(value: str) -> EngineFamily:
    """argparse type: an engine family by any of its spellings (``postgres``, ``MYSQL``, …)."""
    engine = EngineFamily.parse(value)
    if engine is None:
        raise argparse.ArgumentTypeError(f"unknown engine {value!r} (choose from {', '.join(ENGINES)})")
    return engine


def driver(value: str) -> str:
    """argparse type: a driver/ORM of the catalog, by its name or an alias."""
    name = driver_name(value)
    if name is None:
        raise argparse.ArgumentTypeError(f"unknown driver {value!r} (choose from {', '.join(DRIVERS)})")
    return name


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


# ------------------------------------------------------------------ renderings


def print_table(analysis: Analysis, label: str, *, top: int | None = None) -> None:
    """The ranking as rich tables on stdout (pins, then would-pins), sized to the terminal, with a totals line."""
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False)
    pins = analysis.pins(top)
    if pins:
        console.print(_reason_table(f"Pinning reasons: {label}", pins, console.width))
    else:
        console.print(f"[green]No pinning found[/green] in {analysis.lines} lines from {label}.")
    would = analysis.would_pins(top)
    if would:
        console.print(
            _reason_table("Would pin (INFO: prepared statements that pin when run)", would, console.width, brief=True)
        )
    console.print(totals_line(analysis))
    if analysis.unparsed_samples:
        first = analysis.unparsed_samples[0]
        where = f"{first.source}:{first.line}" if first.source and first.line else "input"
        console.print(
            f"[dim]{analysis.unparsed_count} line(s) were not proxy log lines (first at {where}: "
            f"{shorten(first.text, 50)!r}).[/dim]",
            markup=True,
        )
    if pins:
        console.print(f"[dim]All hints for a reason: pinwatch reasons {pins[0].reason}[/dim]")


def summary_object(
    analysis: Analysis, *, proxy: str | None, sources: list[str], top: int | None = None
) -> dict[str, Any]:
    """The ranking as a JSON-ready object: totals, then pins and would-pins with ISO 8601 times."""
    summary = analysis.to_dict(top)
    summary["first_seen"] = iso_ms(analysis.first_seen_ms)
    summary["last_seen"] = iso_ms(analysis.last_seen_ms)
    for section in ("pins", "would_pins"):
        for reason in summary[section]:
            reason["first_seen"] = iso_ms(reason["first_seen_ms"])
            reason["last_seen"] = iso_ms(reason["last_seen_ms"])
    return {"proxy": proxy, "sources": sources, **summary}


def markdown(analysis: Analysis, *, proxy: str | None, top: int | None = None, drivers: list[str] | None = None) -> str:
    """The ranking as markdown for a ticket: a table of pins, then how to fix each reason, then would-pins."""
    title = f"RDS Proxy pinning: {proxy}" if proxy else "RDS Proxy pinning"
    lines = [f"## {title}", "", _md_escape(totals_line(analysis)), ""]
    pins = analysis.pins(top)
    if not pins:
        lines += ["No pinning found.", ""]
    else:
        lines += [
            "| Reason | Pins | Share | Engine | First seen (UTC) | Last seen (UTC) | Example digest |",
            "|---|---:|---:|---|---|---|---|",
        ]
        lines += [
            f"| {_md_escape(s.title)} (`{s.reason}`) | {s.count} | {s.share:.0%} | {_engines(s)} | "
            f"{_clock(s.first_seen_ms)} | {_clock(s.last_seen_ms)} | {_md_code(shorten(s.example_digest))} |"
            for s in pins
        ]
        lines += ["", "### How to fix", ""]
        for s in pins:
            engine = EngineFamily(s.engines[0]) if len(s.engines) == 1 else None
            hints = hints_for(s.reason, engine, s.example_digest, None, drivers or [])[:HINTS_PER_REASON]
            lines.append(f"**{_md_escape(s.title)}** (`{s.reason}`, {s.count} pin{'' if s.count == 1 else 's'})")
            lines += [f"- {h.text}" + (f" ([docs]({h.doc_url}))" if h.doc_url else "") for h in hints]
            lines.append("")
    would = analysis.would_pins(top)
    if would:
        lines += ["### Would pin (INFO)", "", "| Reason | Count | Example digest |", "|---|---:|---|"]
        lines += [f"| `{s.reason}` | {s.count} | {_md_code(shorten(s.example_digest))} |" for s in would]
        lines.append("")
    return "\n".join(lines)


def totals_line(analysis: Analysis) -> str:
    """``pins 4 · would-pins 0 · other 2 · unparsed 2 · lines 8 · <first> to <last> UTC``."""
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


def iso_ms(ms: int | None) -> str | None:
    """UTC ISO 8601 to the millisecond (``2024-05-01T10:00:00.000Z``); None for None."""
    return iso(ms, "milliseconds") or None


def shorten(text: str | None, limit: int = DIGEST_CHARS) -> str | None:
    """`text` cut to `limit` characters, the last one an ellipsis; None stays None."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ internals


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
            reason.append("\n" + (shorten(s.example_digest, 60) or ""), "cyan")
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


def _digest_cell(summary: ReasonSummary) -> Any:
    from rich.text import Text

    cell = Text(shorten(summary.example_digest) or "-", style="cyan")
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


def _clock(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_code(text: str | None) -> str:
    if not text:
        return "-"
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', '\\|')}{pad}{fence}"
