"""``pinwatch backfill --proxy P --since 7d``: pinning in a proxy's CloudWatch Logs history.

Reads ``/aws/rds/proxy/<P>`` with ``FilterLogEvents`` (see :mod:`pinwatch.backfill`), prints the
same ranking as ``pinwatch analyze``, and with ``--write --table T`` adds the lines to the summary
table through the ingest's exactly-once path, so the history shows up in ``pinwatch report`` and in
alerts' all-time reasons. A writing backfill stops at the UTC hour in which the live ingest began
counting the proxy and says which hours it left to it (``--ignore-live-start`` overrides that).
``--checkpoint FILE`` makes an interrupted run resumable. The progress bar goes to stderr, so
``--format json`` and ``markdown`` stay clean on stdout. Full documentation: docs/backfill.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinwatch.cli import EXIT_OK, CliError
from pinwatch.cli.aws import AwsClients, add_aws_arguments, describe_aws_error
from pinwatch.cli.ranking import add_ranking_arguments, markdown, print_table, summary_object
from pinwatch.report import iso

if TYPE_CHECKING:
    from pinwatch.backfill import BackfillResult, Guarded, Span

HELP = "count pins in a proxy's log history; --write adds them to the table"
FORMATS = ("table", "json", "markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy", required=True, help="the RDS Proxy whose log group /aws/rds/proxy/<proxy> is read")
    parser.add_argument(
        "--since", required=True, help="window start: a duration before now (90m, 24h, 7d) or ISO 8601 (UTC)"
    )
    parser.add_argument("--until", default="now", help="window end: now (default), a duration before now, or ISO 8601")
    parser.add_argument(
        "--write",
        action="store_true",
        help="add the lines to the summary table (--table), exactly once: whole UTC hours that have ended, "
        "stopping at the hour in which the live ingest began counting this proxy (those hours are its own)",
    )
    parser.add_argument("--table", help="summary table to write with --write (the stack's SummaryTable)")
    parser.add_argument(
        "--ignore-live-start",
        action="store_true",
        help="with --write, also write hours after live counting began, for a proxy whose subscription was off "
        "for a while. RISK: every line the ingest function did receive in those hours is counted twice; "
        "bound --since/--until to exactly the hours it missed",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="record progress in FILE after every page; a rerun with the same FILE resumes where it stopped",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    add_ranking_arguments(parser)
    parser.add_argument(
        "--page-size",
        type=_page_size,
        default=10_000,
        metavar="N",
        help="events per FilterLogEvents page, 1-10000 (default 10000)",
    )
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pinwatch.backfill import LOGS_RETRIES, Backfill, BackfillError, Guarded, LogPages, Span, guard, whole_hours
    from pinwatch.report import ReportError, parse_time

    if args.write and not args.table:
        raise CliError("--write needs --table (the stack's SummaryTable)")
    if args.table and not args.write:
        raise CliError("--table is only used with --write; add --write to write the lines into it")
    if args.ignore_live_start and not args.write:
        raise CliError("--ignore-live-start is only used with --write")
    now_ms = int(time.time() * 1000)
    try:
        since_ms, until_ms = parse_time(args.since, now_ms), parse_time(args.until, now_ms)
        window = whole_hours(since_ms, until_ms, now_ms) if args.write else Span(since_ms, min(until_ms, now_ms))
    except (ReportError, BackfillError) as exc:
        raise CliError(str(exc)) from None

    clients = AwsClients(args, table=args.table, retries=LOGS_RETRIES)
    store = None
    if args.write:
        from pinwatch.store.summary import SummaryStore

        store = SummaryStore(clients.get("dynamodb"), args.table)
    progress = _ProgressBar()
    pages = LogPages(clients.get("logs"), page_size=args.page_size)
    backfill = Backfill(
        pages,
        args.proxy,
        store=store,
        table=args.table,
        engine=args.engine,
        drivers=args.driver,
        checkpoint=args.checkpoint,
        on_page=progress.update,
    )
    guarded = Guarded(window)
    unseen_lines: int | None = None
    try:
        resumed = backfill.resume_point()
        if resumed is not None:
            # The window was guarded when the checkpoint was made; what a run wrote must not change.
            window = Span(resumed.since_ms, resumed.until_ms)
            guarded = Guarded(window)
            _note(f"resuming from {args.checkpoint}: {resumed.pages} page(s) of {_span(window)} already read")
        elif store is not None:
            if args.ignore_live_start:
                _note("--ignore-live-start: lines the ingest function already counted in this window count again")
            else:
                guarded = guard(window, store.live_start_ms(args.proxy, window.since_ms, window.until_ms))
                window = guarded.window
                if guarded.live is not None and guarded.live_start_ms is not None:
                    _note(_live_line(guarded.live, guarded.live_start_ms))
            _note(f"writing whole UTC hours: {_span(window)}")
        with progress.running(window):
            result = backfill.run(window)
        if guarded.unseen is not None:
            # Read only: these lines reached neither writer, and saying how many is the honest answer.
            unseen_lines = Backfill(pages, args.proxy).run(guarded.unseen).matched
    except BackfillError as exc:
        raise CliError(_explain(exc, clients)) from None
    except KeyboardInterrupt:
        if args.checkpoint:
            _note(f"interrupted; run the same command again to resume from {args.checkpoint}")
        raise
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, BotoCoreError | ClientError):
            raise
        message = describe_aws_error(exc, table=args.table, where=clients.where("logs"))
        if args.checkpoint:
            message += f"; rerun to resume from {args.checkpoint}"
        raise CliError(message) from None
    _print(args, result, guarded, unseen_lines)
    return EXIT_OK


def _live_line(live: Span, live_start_ms: int) -> str:
    """Which hours the backfill left to the live ingest, and why."""
    return (
        f"live counting of this proxy began at {_iso(live_start_ms)}: {_span(live)} "
        "is left to the live ingest (the hour it began in is wholly its own, so nothing is counted twice)"
    )


def _unseen_line(unseen: Span, lines: int | None) -> str:
    return (
        f"{lines} pin or would-pin line(s) in {_span(unseen)}, before the ingest's first counted line, "
        "are counted by neither writer (the ingest owns that hour but the proxy logged them before it was subscribed)"
    )


def _explain(exc: Exception, clients: AwsClients) -> str:
    from pinwatch.backfill import LogGroupNotFound

    if isinstance(exc, LogGroupNotFound):
        return (
            f"log group {exc.log_group} not found{clients.where('logs')}; check --proxy and --region "
            "(a proxy creates its log group when it first logs)"
        )
    return str(exc)


def _print(args: argparse.Namespace, result: BackfillResult, guarded: Guarded, unseen_lines: int | None) -> None:
    notes = [_written_line(args, result)]
    if guarded.live is not None and guarded.live_start_ms is not None:
        text = _live_line(guarded.live, guarded.live_start_ms)
        notes.append(text[0].upper() + text[1:])
    if guarded.unseen is not None:
        notes.append(_unseen_line(guarded.unseen, unseen_lines))
    if args.format == "json":
        summary = summary_object(result.analysis, proxy=args.proxy, sources=[result.log_group], top=args.top)
        summary["backfill"] = _backfill_object(args, result, guarded, unseen_lines)
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if args.format == "markdown":
        sys.stdout.write(f"## Backfill of `{result.log_group}`, {_span(result.window)}\n\n")
        sys.stdout.write(markdown(result.analysis, proxy=args.proxy, top=args.top, drivers=args.driver))
        sys.stdout.write("\n" + "\n\n".join(notes) + "\n")
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(
        f"[bold]{result.log_group}[/], {_span(result.window)}: {result.pages} page(s), "
        f"{result.events:,} events read, {result.matched:,} pin or would-pin lines",
    )
    print_table(result.analysis, args.proxy, top=args.top)
    for note in notes:
        console.print(note)


def _written_line(args: argparse.Namespace, result: BackfillResult) -> str:
    if not args.write:
        return "Nothing written (read only). Add --write --table T to add these lines to the summary table."
    if not result.written:
        return f"Nothing to write to {args.table}: no pin lines in the window."
    return (
        f"Summary table {args.table}: {result.applied_chunks} chunk(s) applied ({result.writes} item writes), "
        f"{result.duplicate_chunks} already applied by an earlier run (skipped, counted once)."
    )


def _backfill_object(
    args: argparse.Namespace, result: BackfillResult, guarded: Guarded, unseen_lines: int | None
) -> dict[str, Any]:
    live = guarded.live
    unseen = guarded.unseen
    return {
        "log_group": result.log_group,
        "since": _iso(result.window.since_ms),
        "until": _iso(result.window.until_ms),
        "pages": result.pages,
        "events_read": result.events,
        "matched": result.matched,
        "resumed_pages": result.resumed_pages,
        "table": args.table if args.write else None,
        "applied_chunks": result.applied_chunks,
        "duplicate_chunks": result.duplicate_chunks,
        "writes": result.writes,
        "ignore_live_start": bool(args.ignore_live_start),
        "live_start": None if guarded.live_start_ms is None else _iso(guarded.live_start_ms),
        "left_to_live": None if live is None else {"since": _iso(live.since_ms), "until": _iso(live.until_ms)},
        "uncounted": None
        if unseen is None
        else {"since": _iso(unseen.since_ms), "until": _iso(unseen.until_ms), "lines": unseen_lines},
    }


class _ProgressBar:
    """A rich progress bar on stderr over the window's time span; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def running(self, window: Span) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("reading", total=window.until_ms - window.since_ms)
        return self._progress

    def update(self, progress: Any) -> None:
        if self._progress is None:
            return
        self._progress.update(
            self._task,
            completed=max(0, progress.position_ms - progress.window.since_ms),
            description=f"{_iso(progress.position_ms)} · {progress.pages} pages · {progress.matched:,} pin lines",
        )


def _note(text: str) -> None:
    print(f"pinwatch backfill: {text}", file=sys.stderr)


def _span(window: Span) -> str:
    return f"{_iso(window.since_ms)} → {_iso(window.until_ms)} (UTC)"


def _iso(ms: int) -> str:
    return iso(ms, "minutes")


def _page_size(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1-10000 events per page, got {value!r}")
    return number
