"""``pinwatch backfill --proxy P --since 7d``: pinning in a proxy's CloudWatch Logs history.

Reads ``/aws/rds/proxy/<P>`` with ``FilterLogEvents`` (see :mod:`pinwatch.backfill`), prints the
same ranking as ``pinwatch analyze``, and with ``--write --table T`` adds the lines to the summary
table through the ingest's exactly-once path, so the history shows up in ``pinwatch report`` and in
alerts' all-time reasons. A writing backfill stops at the UTC hour in which the live ingest began
counting the proxy and says which hours it left to it (``--ignore-live-start`` overrides that).
``--checkpoint FILE`` makes an interrupted run resumable. The progress bar goes to stderr, so
``--format json`` and ``markdown`` stay clean on stdout.

In an organization, ``--member ACCOUNT:REGION`` names the member account and Region whose log group
is read: the lines are written under the member's keys (``<account>:<region>:<proxy>``), which the
organization's report, check and alerts read. The log group is read with the CLI's credentials
(``--profile``: the member's), checked with ``sts:GetCallerIdentity`` to be the member account's;
the table with ``--table-profile`` (the monitoring account's; default ``--profile``) in ``--region``.
A writing backfill without ``--member`` into an organization's table is refused. Full
documentation: docs/backfill.md.
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
from pinwatch.scope import Scope, proxy_key

if TYPE_CHECKING:
    from pinwatch.backfill import BackfillResult, Guarded, Span
    from pinwatch.store.summary import SummaryStore

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
    parser.add_argument(
        "--member",
        type=_member,
        metavar="ACCOUNT:REGION",
        help="organization mode: the member account and Region whose log group is read; lines are written under "
        "its keys (ACCOUNT:REGION:PROXY). The log group is read with the CLI's credentials, which must be that "
        "account's (e.g. --profile for it; checked with sts:GetCallerIdentity); --region is then the table's Region",
    )
    parser.add_argument(
        "--table-profile",
        metavar="PROFILE",
        help="with --member: AWS named profile for the summary table, in the monitoring account (default: --profile)",
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
    if args.table_profile and not (args.member and args.write):
        raise CliError("--table-profile is only used with --member and --write (the table's credentials)")
    now_ms = int(time.time() * 1000)
    try:
        since_ms, until_ms = parse_time(args.since, now_ms), parse_time(args.until, now_ms)
        window = whole_hours(since_ms, until_ms, now_ms) if args.write else Span(since_ms, min(until_ms, now_ms))
    except (ReportError, BackfillError) as exc:
        raise CliError(str(exc)) from None

    member: Scope | None = args.member
    clients = AwsClients(_member_args(args, member), table=args.table, retries=LOGS_RETRIES)
    if member is not None:
        _require_member_credentials(clients, member)
    store = None
    if args.write:
        from pinwatch.store.summary import SummaryStore

        table_clients = clients
        if member is not None:
            # The table is the monitoring account's, in its own Region; the log group is the member's.
            table_clients = AwsClients(_table_args(args), table=args.table, retries=LOGS_RETRIES)
        store = SummaryStore(table_clients.get("dynamodb"), args.table)
        if member is None:
            _refuse_organization_table(table_clients, store, args.table)
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
        scope=member,
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
                guarded = guard(window, store.live_start_ms(backfill.key, window.since_ms, window.until_ms))
                window = guarded.window
                if guarded.live is not None and guarded.live_start_ms is not None:
                    _note(_live_line(guarded.live, guarded.live_start_ms))
            _note(f"writing whole UTC hours: {_span(window)}")
        with progress.running(window):
            result = backfill.run(window)
        if guarded.unseen is not None:
            # Read only: these lines reached neither writer, and saying how many is the honest answer.
            unseen_lines = Backfill(pages, args.proxy, scope=member).run(guarded.unseen).matched
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


def _member(value: str) -> Scope:
    account, _, region = value.strip().partition(":")
    try:
        return Scope(account, region)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected ACCOUNT:REGION, e.g. 111111111111:eu-west-1 ({exc})") from None


def _member_args(args: argparse.Namespace, member: Scope | None) -> argparse.Namespace:
    """The log group's clients: with --member, in the member's Region (--region is then the table's)."""
    if member is None:
        return args
    return argparse.Namespace(profile=args.profile, region=member.region, endpoint_url=args.endpoint_url)


def _table_args(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(
        profile=args.table_profile or args.profile, region=args.region, endpoint_url=args.endpoint_url
    )


def _require_member_credentials(clients: AwsClients, member: Scope) -> None:
    """Refuse credentials of another account: its log group of that name would be counted under the member's key."""
    identity = clients.call(lambda: clients.get("sts").get_caller_identity(), clients.where("sts"))
    account = identity.get("Account")
    if account != member.account:
        raise CliError(
            f"the credentials are account {account}'s, not {member.account}'s (--member {member.account}:"
            f"{member.region}); use a profile of the member account (--profile) to read its log group"
        )


def _refuse_organization_table(clients: AwsClients, store: SummaryStore, table: str) -> None:
    """An organization's table keys proxies by account and Region: plain-name lines there are never read."""
    from pinwatch.scope import split_key

    proxies = clients.call(store.proxies, clients.where("dynamodb"))
    scoped = next((p.proxy for p in proxies if split_key(p.proxy)[0] is not None), None)
    if scoped is not None:
        raise CliError(
            f"table {table} is an organization's (its proxies are keyed ACCOUNT:REGION:PROXY, e.g. {scoped}): "
            "add --member ACCOUNT:REGION for the account and Region whose log group is read"
        )


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
    of = "" if args.member is None else f" of account {args.member.account} in {args.member.region}"
    console.print(
        f"[bold]{result.log_group}[/]{of}, {_span(result.window)}: {result.pages} page(s), "
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
        "member": None if args.member is None else {"account": args.member.account, "region": args.member.region},
        "key": proxy_key(args.member, args.proxy),
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
