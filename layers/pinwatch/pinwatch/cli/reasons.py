"""``pinwatch reasons [CODE]``: the pinning reason catalog, or one reason in full with each hint's sources."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pinwatch.catalog import CATALOG, DRIVERS, Advice, ReasonEntry
from pinwatch.cli import EXIT_OK, CliError
from pinwatch.records import EngineFamily

ENGINE_TITLES = {
    EngineFamily.MYSQL: "MySQL",
    EngineFamily.POSTGRESQL: "PostgreSQL",
    EngineFamily.SQLSERVER: "SQL Server",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "code", nargs="?", metavar="CODE", help="a reason code (e.g. session_settings); omit to list all"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument(
        "--engine", type=_engine, metavar="{mysql,postgresql,sqlserver}", help="only this engine family"
    )


def run(args: argparse.Namespace) -> int:
    engine: EngineFamily | None = args.engine
    if args.code is not None:
        code = args.code.strip().lower()
        if code not in CATALOG:
            raise CliError(f"unknown reason code {args.code!r}; `pinwatch reasons` lists the codes")
        item = CATALOG[code]
        if args.format == "json":
            _print_json(_entry_object(item, engine))
        else:
            _print_entry(item, engine)
        return EXIT_OK
    entries = [e for e in CATALOG.values() if engine is None or engine in e.engines]
    if args.format == "json":
        _print_json([_entry_object(e, engine) for e in entries])
    else:
        _print_catalog(entries)
    return EXIT_OK


def _entry_object(item: ReasonEntry, engine: EngineFamily | None) -> dict[str, Any]:
    engine_hints = {
        family.value: _advice_objects(hints)
        for family, hints in sorted(item.engine_hints.items())
        if engine is None or family is engine
    }
    driver_hints = {
        name: _advice_objects(hints) for name, hints in item.driver_hints.items() if item.driver_applies(name, engine)
    }
    return {
        "code": item.code,
        "title": item.title,
        "engines": sorted(e.value for e in item.engines),
        "pins": item.pins,
        "why": item.why,
        "hints": {"general": _advice_objects(item.hints), "engines": engine_hints, "drivers": driver_hints},
        "doc_url": item.doc_url,
    }


def _advice_objects(hints: tuple[Advice, ...]) -> list[dict[str, Any]]:
    return [{"text": a.text, "sources": list(a.sources)} for a in hints]


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _print_catalog(entries: list[ReasonEntry]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Pinning reasons", title_justify="left")
    table.add_column("Code", style="bold", no_wrap=True)
    table.add_column("Title")
    table.add_column("Engines")
    table.add_column("Pins")
    table.add_column("Hints", justify="right")
    for e in entries:
        table.add_row(e.code, e.title, _engines(e), "yes" if e.pins else "no (note)", str(len(e.all_hints())))
    console = Console(file=sys.stdout, highlight=False)
    console.print(table)
    console.print("[dim]One reason in full: pinwatch reasons CODE[/dim]")


def _print_entry(item: ReasonEntry, engine: EngineFamily | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console(file=sys.stdout, highlight=False)
    console.print(f"[bold]{item.code}[/bold]: {escape(item.title)}")
    console.print(f"Engines: {_engines(item)}")
    if not item.pins:
        console.print("Does not pin: a note about statements the proxy does not pin for.")
    console.print()
    console.print(escape(item.why))
    sections: list[tuple[str, tuple[Advice, ...]]] = [("General", item.hints)]
    sections += [
        (ENGINE_TITLES[family], hints)
        for family, hints in sorted(item.engine_hints.items())
        if engine is None or family is engine
    ]
    sections += [
        (DRIVERS[name].title if name in DRIVERS else name, hints)
        for name, hints in item.driver_hints.items()
        if item.driver_applies(name, engine)
    ]
    for heading, hints in sections:
        console.print()
        console.print(f"[bold]{escape(heading)}[/bold]")
        for advice in hints:
            bullet = Table.grid(padding=(0, 1))
            bullet.add_column(width=3, justify="right")
            bullet.add_column()
            bullet.add_row("•", Text(advice.text))
            console.print(bullet)
            # Sources unwrapped (soft wrap), so a long URL stays whole for copying or clicking.
            for source in advice.sources:
                console.print(Text(f"     source: {source}", style="dim"), soft_wrap=True)
    console.print()
    console.print(f"Docs: {item.doc_url}")
    console.print("[dim]Sources are the pages each hint rests on; '(unverified)' marks what none confirms.[/dim]")


def _engines(item: ReasonEntry) -> str:
    return ", ".join(sorted(e.value.lower() for e in item.engines))


def _engine(value: str) -> EngineFamily:
    engine = EngineFamily.parse(value)
    if engine is None:
        raise argparse.ArgumentTypeError(f"unknown engine {value!r} (choose from mysql, postgresql, sqlserver)")
    return engine
