"""``pinwatch report``: top pinning reasons per proxy from the summary table, with trend and fixes.

Reads only: one Query per proxy (the window plus the previous window of equal length, for the
trend). The endpoint comes from ``--endpoint-url`` or ``AWS_ENDPOINT_URL`` (boto3 honours it), so
the same command reads DynamoDB Local.

Across an organization (keys ``<account>:<region>:<name>``) the tables come grouped by account,
each account led by its top reasons over all its proxies; ``--account`` and ``--proxy-region``
select members (``--region`` stays the AWS Region of the table, as in every subcommand), and a bare
``--proxy`` name means that proxy in every account and Region that has one.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from pinwatch.cli import EXIT_OK, CliError
from pinwatch.cli.aws import AwsClients, add_aws_arguments
from pinwatch.cli.ranking import shorten
from pinwatch.records import EngineFamily, HourlyCount, Kind
from pinwatch.report import (
    HOUR_COLUMNS,
    REASON_COLUMNS,
    AccountReasonRow,
    HintFn,
    HourRow,
    ReasonRow,
    ReportError,
    Window,
    account_reasons,
    by_place,
    check_filters,
    expand_names,
    hour_iso,
    hour_record,
    hour_rows,
    iso,
    parse_time,
    rank_reasons,
    reason_record,
    select,
    series,
    sparkline,
    to_csv,
    to_json,
    to_markdown,
    with_place,
)
from pinwatch.scope import split_key

if TYPE_CHECKING:
    from rich.table import Table

    from pinwatch.store.summary import SummaryStore

HELP = "top pinning reasons per proxy from the summary table, with trend and fixes"
FORMATS = ("table", "json", "csv", "markdown")
MARKDOWN_REASON_COLUMNS = (
    "proxy",
    "reason",
    "count",
    "share",
    "trend",
    "first_seen",
    "last_seen",
    "example_digest",
    "hint",
)
_KINDS = {"pinned": Kind.PINNED, "would_pin": Kind.WOULD_PIN}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", required=True, help="summary table name (the stack's SummaryTable)")
    parser.add_argument("--proxy", action="append", help="only this proxy (repeatable); default: every proxy seen")
    parser.add_argument(
        "--account", action="append", help="organization: only proxies of this member account ID (repeatable)"
    )
    parser.add_argument(
        "--proxy-region",
        action="append",
        help="organization: only proxies in this Region, e.g. eu-west-1 (repeatable; --region is the table's)",
    )
    parser.add_argument("--since", default="24h", help="window start: a duration before now (90m, 24h, 7d) or ISO 8601")
    parser.add_argument("--until", default="now", help="window end: now (default), a duration before now, or ISO 8601")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--by", choices=("reason", "hour"), default="reason", help="rank reasons (default) or a time series per hour"
    )
    parser.add_argument(
        "--kind",
        choices=tuple(_KINDS),
        default="pinned",
        help="pins (default) or would-pin warnings (prepared statements that would pin if they ran)",
    )
    parser.add_argument("--limit", type=int, default=10, help="reasons per proxy with --by reason (default 10)")
    parser.add_argument(
        "--engine",
        choices=[e.value.lower() for e in EngineFamily],
        help="engine family for engine-specific fixes (default: inferred from the statement digest)",
    )
    add_aws_arguments(parser, "DynamoDB endpoint, e.g. http://localhost:8000 for DynamoDB Local")


def run(args: argparse.Namespace) -> int:
    now_ms = int(time.time() * 1000)
    try:
        window = Window(parse_time(args.since, now_ms), parse_time(args.until, now_ms))
    except ReportError as exc:
        raise CliError(str(exc)) from None
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    accounts, regions = args.account or [], args.proxy_region or []
    try:
        check_filters(accounts, regions)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    kind = _KINDS[args.kind]
    store, clients, where = _store(args)

    def listed() -> list[str]:
        return clients.call(lambda: [p.proxy for p in store.proxies()], where)

    if args.proxy:
        # A bare name may stand for that proxy in several accounts: the listing says which.
        bare = any(split_key(p)[0] is None for p in args.proxy)
        proxies = expand_names(args.proxy, listed() if bare else [])
    else:
        proxies = listed()
    proxies = select(proxies, accounts, regions)
    # One query per proxy covers both the window and the previous one (the trend's baseline).
    since_ms = window.previous.since_ms
    counts: dict[str, list[HourlyCount]] = {}
    for proxy in proxies:
        counts[proxy] = clients.call(partial(store.hourly, proxy, since_ms, window.until_ms), where)

    if args.by == "hour":
        rows_by_proxy = {p: hour_rows(p, c, window, kind) for p, c in counts.items()}
        if args.format == "table":
            _print_hour_tables(rows_by_proxy, counts, window, kind)
        else:
            records = [hour_record(r) for rows in rows_by_proxy.values() for r in rows]
            columns = with_place(HOUR_COLUMNS, records)
            _print_records(records, columns, columns, args.format)
        return EXIT_OK

    engine = EngineFamily.parse(args.engine)
    ranked = {
        p: rank_reasons(p, c, window, kind, _hint_fn(engine or _guess_engine(c)), args.limit) for p, c in counts.items()
    }
    if args.format == "table":
        coverage = _coverage(store, clients, where, list(ranked), window)
        _print_reason_tables(ranked, counts, window, kind, coverage, args.limit)
    else:
        records = [reason_record(r) for rows in ranked.values() for r in rows]
        columns = with_place(REASON_COLUMNS, records)
        _print_records(records, columns, with_place(MARKDOWN_REASON_COLUMNS, records), args.format)
    return EXIT_OK


# ------------------------------------------------------------------ AWS wiring


def _store(args: argparse.Namespace) -> tuple[SummaryStore, AwsClients, str]:
    """The store, the clients (whose `call` turns AWS failures into one-line errors), and where it points."""
    from pinwatch.store.summary import SummaryStore

    clients = AwsClients(args, table=args.table)
    return SummaryStore(clients.get("dynamodb"), args.table), clients, clients.where("dynamodb")


def _guess_engine(counts: list[HourlyCount]) -> EngineFamily | None:
    """A proxy's engine family from its digests' placeholders ($1 vs ?) or its reasons' wording, if any tell."""
    from pinwatch.digest import guess_engine_from

    for text, digest in sorted({(h.reason_text or "", h.example_digest or "") for h in counts}):
        engine = guess_engine_from(text, digest)
        if engine is not None:
            return engine
    return None


def _hint_fn(engine: EngineFamily | None) -> HintFn:
    from pinwatch.hints import top_hint

    def hint(reason: str, digest: str | None) -> str | None:
        return top_hint(reason, engine, digest)

    return hint


# ------------------------------------------------------------------ output


def _print_records(
    records: list[dict[str, object]], columns: tuple[str, ...], md_columns: tuple[str, ...], fmt: str
) -> None:
    if fmt == "json":
        sys.stdout.write(to_json(records) + "\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(records, columns))
    else:
        if "share" in md_columns:
            records = [{**r, "share": _percent(r["share"])} for r in records]
        sys.stdout.write(to_markdown(records, md_columns))


def _percent(share: object) -> str:
    return f"{share * 100:.1f}%" if isinstance(share, float | int) else ""


def _footer(counts: list[HourlyCount], window: Window) -> str:
    would = sum(h.count for h in counts if h.kind is Kind.WOULD_PIN and window.holds(h.hour))
    unparsed = sum(h.count for h in counts if h.kind is Kind.UNPARSED and window.holds(h.hour))
    parts = []
    if would:
        parts.append(f"{would} would-pin warning{'s' if would != 1 else ''} (see --kind would_pin)")
    if unparsed:
        parts.append(f"{unparsed} unparsed line{'s' if unparsed != 1 else ''}")
    return "; ".join(parts)


def _window_text(window: Window) -> str:
    return f"{iso(window.since_ms, 'minutes')} → {iso(window.until_ms, 'minutes')} (UTC, hour resolution)"


# The reason table at any terminal width: reason, numbers and times never wrap; Fix and the example
# digest share the rest, Fix twice as much. When the rest cannot hold both at a readable width, the
# digest moves under the reason (as in `pinwatch analyze`), so Fix keeps a width a sentence reads at.
_MIN_DIGEST_WIDTH, _MIN_FIX_WIDTH = 16, 32
_TABLE_DIGEST_CHARS = 60  # longer digests end in an ellipsis (the machine formats keep them whole)
_DIGEST_LINES_UNDER_REASON = 2
_DIGEST_UNDER_REASON_WIDTH = 24
_MIN_REASON_WIDTH = 18


def _noun(kind: Kind) -> str:
    return "pins" if kind is Kind.PINNED else "would-pin warnings"


def _print_tables[Rows](
    by_proxy: Mapping[str, Rows],
    build: Callable[[str, Rows, int], tuple[Table, str | None]],
    counts: dict[str, list[HourlyCount]],
    window: Window,
    kind: Kind,
    account_table: Callable[[str, int], Table] | None = None,
) -> None:
    """One table per proxy, as `build(proxy, rows, width)` makes it (with what to say when it is empty).

    An organization's proxies come grouped: a heading per account, then (``account_table``) the
    account's reasons over all its proxies, then its proxies Region by Region.
    """
    from rich.console import Console

    console = Console()
    if not by_proxy:
        console.print(f"No proxies in the table yet: no {_noun(kind)} have been ingested.")
        return
    account: str | None = None
    for scope, keys in by_place(by_proxy).items():
        if scope is not None and scope.account != account:
            account = scope.account
            console.rule(f"Account {account}", align="left")
            if account_table is not None:
                console.print(account_table(account, console.width))
        for proxy in keys:
            table, empty = build(proxy, by_proxy[proxy], console.width)
            table.caption = "; ".join(text for text in (empty, _footer(counts[proxy], window)) if text) or None
            console.print(table)


def _label(key: str) -> str:
    """A proxy in a title: its name, with account and Region for an organization's key."""
    scope, name = split_key(key)
    return name if scope is None else f"{name} ({scope.account}, {scope.region})"


def _coverage(
    store: SummaryStore, clients: AwsClients, where: str, proxies: list[str], window: Window
) -> dict[str, str]:
    """Per proxy, what to say when reason capture covered only part of the window (docs/reason-capture.md)."""
    from pinwatch.capture import window_coverage
    from pinwatch.store.capture_state import CaptureStateStore

    states = CaptureStateStore(clients.get("dynamodb"), store.table_name)
    out: dict[str, str] = {}
    for proxy in proxies:
        text = window_coverage(clients.call(partial(states.load, proxy), where), window.since_ms, window.until_ms)
        if text:
            out[proxy] = text
    return out


def _print_reason_tables(
    ranked: dict[str, list[ReasonRow]],
    counts: dict[str, list[HourlyCount]],
    window: Window,
    kind: Kind,
    coverage: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> None:
    def build(proxy: str, rows: list[ReasonRow], width: int) -> tuple[Table, str | None]:
        table = _reason_table(f"{_label(proxy)}: {_noun(kind)} by reason, {_window_text(window)}", rows, window, width)
        empty = None if rows else f"no {_noun(kind)} in this window or the previous one"
        covered = (coverage or {}).get(proxy)
        return table, "; ".join(t for t in (covered, empty) if t) or None

    def account_table(account: str, _width: int) -> Table:
        proxies = [key for key in counts if split_key(key)[0] is not None and key.startswith(f"{account}:")]
        over = "its proxy" if len(proxies) == 1 else f"its {len(proxies)} proxies"
        title = f"Account {account}: {_noun(kind)} by reason over {over}, {_window_text(window)}"
        return _account_table(title, account_reasons(account, counts, window, kind, limit))

    _print_tables(ranked, build, counts, window, kind, account_table)


_ACCOUNT_PROXIES_SHOWN = 3


def _account_table(title: str, rows: list[AccountReasonRow]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Reason", no_wrap=True)
    for header in ("Count", "Share", "Trend"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Proxies (pins in the window)", overflow="fold")
    for row in rows:
        r = row.reason
        shown = [f"{_label(key)} {n}" for key, n in row.proxies[:_ACCOUNT_PROXIES_SHOWN]]
        if len(row.proxies) > _ACCOUNT_PROXIES_SHOWN:
            shown.append(f"+{len(row.proxies) - _ACCOUNT_PROXIES_SHOWN} more")
        table.add_row(r.reason, str(r.count), f"{r.share * 100:.0f}%", r.trend, ", ".join(shown) or "-")
    if not rows:
        table.caption = "no reasons in this window or the previous one"
    return table


def _reason_table(title: str, rows: list[ReasonRow], window: Window, width: int) -> Table:
    from rich.table import Table
    from rich.text import Text

    stamp = partial(_compact_time, with_year=_spans_years(window))
    fixed_headers = ("Count", "Share", "Trend", "Seen (UTC)")
    fixed_cells = [(str(r.count), f"{r.share * 100:.0f}%", r.trend, _seen(r, stamp)) for r in rows]
    longest_reason = max([_MIN_REASON_WIDTH, *(len(r.reason) for r in rows)])
    fixed = longest_reason + sum(
        max(len(line) for text in (header, *column) for line in text.splitlines())
        for header, column in zip(fixed_headers, zip(*fixed_cells, strict=True), strict=False)
    )

    def room(columns: int) -> int:
        """What is left for the text columns: each column costs a space on both sides and a border."""
        return width - fixed - 3 * columns - 1

    digest_column = room(7) >= _MIN_DIGEST_WIDTH + _MIN_FIX_WIDTH
    # Under the reason, the digest may widen that column by what Fix can spare.
    spare = min(room(6) - _MIN_FIX_WIDTH, _DIGEST_UNDER_REASON_WIDTH - longest_reason)
    reason_width = longest_reason + max(0, spare)

    # expand: rich shares the width out by ratio only across the whole terminal.
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("Reason", no_wrap=True)
    for header in fixed_headers:
        table.add_column(header, justify="left" if header.startswith("Seen") else "right", no_wrap=True)
    if digest_column:
        table.add_column("Example digest", style="cyan", ratio=1, min_width=_MIN_DIGEST_WIDTH, overflow="fold")
    table.add_column("Fix", ratio=2 if digest_column else 1, min_width=_MIN_FIX_WIDTH, overflow="fold")
    for r, cells in zip(rows, fixed_cells, strict=True):
        reason = Text(r.reason)
        if not digest_column and r.example_digest:
            reason.append("\n" + _clip(r.example_digest, reason_width, _DIGEST_LINES_UNDER_REASON), "cyan")
        digest = [shorten(r.example_digest, _TABLE_DIGEST_CHARS) or ""] if digest_column else []
        table.add_row(reason, *cells, *digest, r.hint or "")
    return table


def _seen(row: ReasonRow, stamp: Callable[[int | None], str]) -> str:
    """First seen over last seen; one dash for a reason that stopped (no lines in the window)."""
    if row.first_seen_ms is None and row.last_seen_ms is None:
        return "-"
    return f"{stamp(row.first_seen_ms)}\n{stamp(row.last_seen_ms)}"


def _compact_time(ms: int | None, with_year: bool = False) -> str:
    """``11-25 21:09`` (UTC); with the year when the window spans a new year; ``-`` for None."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M")


def _spans_years(window: Window) -> bool:
    first = datetime.fromtimestamp(window.since_ms / 1000, tz=UTC)
    last = datetime.fromtimestamp((window.until_ms - 1) / 1000, tz=UTC)
    return first.year != last.year


def _clip(text: str, width: int, lines: int) -> str:
    """`text` wrapped at `width` on at most `lines` lines, the last one ending in an ellipsis if cut."""
    wrapped = textwrap.wrap(text, width, break_on_hyphens=False) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], wrapped[lines - 1][: width - 1] + "…"]
    return "\n".join(wrapped)


def _print_hour_tables(
    rows_by_proxy: dict[str, list[HourRow]], counts: dict[str, list[HourlyCount]], window: Window, kind: Kind
) -> None:
    _print_tables(rows_by_proxy, partial(_hour_table, window=window, kind=kind), counts, window, kind)


def _hour_table(
    proxy: str, rows: list[HourRow], _width: int, *, window: Window, kind: Kind
) -> tuple[Table, str | None]:
    from rich.table import Table

    per_reason = series(rows, window)
    hours = window.hours
    table = Table(title=f"{_label(proxy)}: {_noun(kind)} per hour, {_window_text(window)}", title_justify="left")
    table.add_column("Reason", no_wrap=True)
    table.add_column("Total", justify="right", no_wrap=True)
    table.add_column("Peak hour", no_wrap=True)
    table.add_column(f"{hour_iso(hours[0])} … {hour_iso(hours[-1])}", no_wrap=True)
    totals = [0] * len(hours)
    for reason, values in per_reason.items():
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        peak = max(range(len(values)), key=values.__getitem__)
        table.add_row(reason, str(sum(values)), f"{hour_iso(hours[peak])} ({values[peak]})", sparkline(values))
    if len(per_reason) > 1:
        peak = max(range(len(totals)), key=totals.__getitem__)
        table.add_row("all", str(sum(totals)), f"{hour_iso(hours[peak])} ({totals[peak]})", sparkline(totals))
    return table, None if per_reason else f"no {_noun(kind)} in this window"
