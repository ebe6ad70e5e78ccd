"""``pinwatch demo``: replay a pinning incident through the real functions on local emulated AWS.

Starts moto (server mode) and DynamoDB Local on free loopback ports, creates the stack's resources
from ``template.yaml``, replays ~30 simulated minutes (metrics, subscription payloads through the
ingest handler, the check handler every minute) and prints the alert timeline, every Slack message
as the local receiver got it, the SNS message as its SQS subscriber got it, the exactly-once
evidence and the final ``pinwatch report``. Exits 1 if any stage failed, 2 if it cannot start.
See :mod:`pinwatch.local.demo` for what runs where.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, CliError
from pinwatch.metrics import CLIENT_CONNECTIONS, DATABASE_CONNECTIONS, MAX_ALLOWED, PINNED
from pinwatch.records import Kind
from pinwatch.timebase import MINUTE_MS

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress
    from rich.text import Text

    from pinwatch.local.demo import (
        AlertEvent,
        DemoResult,
        DemoStack,
        Endpoints,
        LocalFunctions,
        SlackMessage,
        SnsMessage,
        Tick,
    )
    from pinwatch.local.demo.org import OrgDemoResult, OrgStack, OrgTick
    from pinwatch.local.incident import Incident
    from pinwatch.local.slack_receiver import SlackReceiver

HELP = "replay a pinning incident through the real functions on local emulated AWS (no account needed)"
DEFAULT_PROXY = "orders-db"
DEFAULT_MINUTES = 30

_SEVERITY_STYLE = {"critical": "bold red", "warning": "dark_orange", "info": "cyan", "ok": "green"}
# What moto serves in the single-account demo (the organization's list is _ORG_SERVICES).
_SERVICES = "RDS, CloudWatch, Logs, SNS, SQS, Secrets Manager"
_MARK = {"critical": "🔴", "warning": "🟠", "info": "🔵", "ok": "🟢"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pinwatch.local.incident import AFTER_FIX_MINUTES, MIN_MINUTES

    parser.add_argument(
        "--minutes",
        type=_minutes(MIN_MINUTES),
        default=DEFAULT_MINUTES,
        metavar="N",
        help=f"simulated minutes to replay (default {DEFAULT_MINUTES}, at least {MIN_MINUTES}); "
        f"the fix lands {AFTER_FIX_MINUTES} before the end",
    )
    parser.add_argument("--proxy", default=DEFAULT_PROXY, help=f"name of the simulated proxy (default {DEFAULT_PROXY})")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the emulation running afterwards and print its endpoints and example commands, until Ctrl-C",
    )
    parser.add_argument(
        "--function-log",
        type=Path,
        metavar="FILE",
        help="write what the functions printed (JSON log lines and EMF metric documents) to FILE",
    )
    parser.add_argument(
        "--org",
        action="store_true",
        help="organization mode: two member accounts with a proxy of the same name, their pin lines through "
        "the organization's Kinesis stream, their alarms' events to the central check (docs/demo.md)",
    )
    parser.add_argument(
        "--no-dynamodb-local",
        action="store_true",
        help="serve the summary table from moto even when Java and DynamoDB Local are available",
    )


def _minutes(minimum: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {value!r}")
        return number

    return parse


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console

    from pinwatch.cli.aws import describe_aws_error
    from pinwatch.local.demo import DemoError
    from pinwatch.local.dynamodb_local import DynamoDBLocalUnavailable

    console = Console(highlight=False)
    started = time.perf_counter()
    try:
        with _stop_on_termination():
            if args.org:
                return _run_org(args, console, started)
            return _run(args, console, started)
    except (DemoError, DynamoDBLocalUnavailable) as exc:
        raise CliError(str(exc)) from None
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"the local emulation failed: {describe_aws_error(exc)}") from None


@contextlib.contextmanager
def _stop_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the demo like Ctrl-C does, so DynamoDB Local (a child process) is stopped too."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, console: Console, started: float) -> int:
    from pinwatch.local.demo import create_stack, local_functions
    from pinwatch.local.incident import Incident

    console.rule("[bold]pinwatch demo[/]: an RDS Proxy pinning incident, replayed on local AWS")
    with contextlib.ExitStack() as stack:
        endpoints, slack_url, receiver = _start_emulation(console, stack, args)
        with console.status("Creating the stack's resources from template.yaml…"):
            demo_stack = create_stack(endpoints, args.proxy, slack_url)
        _print_stack(console, demo_stack)

        # The incident ends a minute before now, so `pinwatch report` and the table's hours line up with real time.
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - now_ms % MINUTE_MS - (args.minutes + 1) * MINUTE_MS
        incident = Incident(args.proxy, start_ms, args.minutes)
        functions = stack.enter_context(local_functions(demo_stack))
        console.print(
            f"\nReplaying {args.minutes} minutes ({_clock(incident.start_ms)}–{_clock(incident.end_ms)} UTC) on a "
            "simulated clock: each minute the proxy's metrics go to CloudWatch, its log lines go through the "
            "ingest function as subscription payloads, and the check function runs.\n"
        )
        result = _replay(console, demo_stack, functions, incident, receiver)

        _print_slack(console, result.slack)
        _print_sns(console, result.sns)
        _print_exactly_once(console, result)
        _print_report(
            console,
            ["--table", demo_stack.table, "--proxy", demo_stack.proxy],
            endpoints,
            incident.start_ms,
            "pinwatch report",
        )
        _print_result(console, result, time.perf_counter() - started, "demo")
        return _finish(args, console, result, lambda: _keep_lines(demo_stack))
    raise AssertionError("unreachable")  # pragma: no cover


def _replay(
    console: Console, stack: DemoStack, functions: LocalFunctions, incident: Incident, receiver: SlackReceiver
) -> DemoResult:
    from pinwatch.local.demo import Replay

    with _progress(console) as progress:
        task = progress.add_task("simulated minutes", total=len(incident))

        def on_tick(tick: Tick) -> None:
            for line in _timeline(tick):
                progress.console.print(line)
            m = tick.minute.metrics
            progress.update(
                task,
                advance=1,
                description=f"{_clock(tick.checked_at_ms)} UTC · pinned {m[PINNED]:.0f} · DB connections "
                f"{m[DATABASE_CONNECTIONS]:.0f}/{m[MAX_ALLOWED]:.0f} · clients {m[CLIENT_CONNECTIONS]:.0f}",
            )

        return Replay(stack, functions, incident, receiver, on_tick=on_tick).run()


# ------------------------------------------------------------------------------------- output


def _print_endpoints(console: Console, endpoints: Endpoints, services: str = _SERVICES) -> None:
    console.print(f"moto server ([dim]{services}[/]): {endpoints.moto}")
    if endpoints.dynamodb_engine == "moto":
        why = f" ({endpoints.dynamodb_note})" if endpoints.dynamodb_note else ""
        console.print(f"Summary table on [bold]moto's DynamoDB[/]{why}")
    else:
        console.print(f"Summary table on [bold]DynamoDB Local[/] (AWS's own engine): {endpoints.dynamodb}")


def _print_stack(console: Console, stack: DemoStack) -> None:
    console.print(
        f"Created: table [cyan]{stack.table}[/] (template's SummaryTable), SNS topic with an SQS subscriber, "
        f"Slack webhook secret → local receiver, RDS proxy [cyan]{stack.proxy}[/] "
        f"(POSTGRESQL, target {stack.db_instance}), log group {stack.log_group}"
    )


def _timeline(tick: Tick) -> Iterator[RenderableType]:
    """What happened in one simulated minute worth a line: the story, a redelivery, alerts, errors."""
    from rich.text import Text

    minute_at, checked_at = _clock(tick.minute.start_ms), _clock(tick.checked_at_ms)
    if tick.minute.note:
        yield _row(minute_at, "▶", Text(tick.minute.note, "bold"))
    for call in tick.ingest:
        if call.redelivery:
            s = call.summary
            text = (
                f"the payload of {call.stream} ({call.lines} lines) is delivered again: "
                f"{s.get('appliedChunks', 0)} chunk(s) applied, {s.get('duplicateChunks', 0)} skipped as already counted"
            )
            yield _row(minute_at, "↻", Text(text))
    capture = tick.capture
    if capture is not None and capture.status in ("started", "stopped", "failed", "released"):
        yield _row(checked_at, "◉", Text(_capture_text(tick), "magenta"))
    for alert in tick.alerts:
        yield _alert_row(checked_at, alert)
    for error in tick.errors:
        yield _row(checked_at, "✗", Text(error, "red"))


def _capture_text(tick: Tick) -> str:
    """Reason capture's move in this minute's check, as the alert words it."""
    from pinwatch.alerts.render import capture_lines
    from pinwatch.findings import ProxyReport

    report = ProxyReport(proxy="", engine=None, status="", findings=(), capture=tick.capture)
    lines = capture_lines(report)
    withheld = (
        f" (this minute's {tick.withheld} pin lines were not written: logging was still off)" if tick.withheld else ""
    )
    return (lines[0] if lines else "reason capture") + (
        withheld if tick.capture and tick.capture.status == "started" else ""
    )


def _row(
    at: str, mark: str, text: Text, rule: str | None = None, what: Text | None = None, channels: str = ""
) -> RenderableType:
    """One timeline line; a long summary wraps under itself, not under the time."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=5, style="dim")
    grid.add_column(width=2)
    cells: list[RenderableType] = [at, mark]
    if rule is not None and what is not None:
        grid.add_column(width=20, no_wrap=True, style="bold")
        grid.add_column(width=29, no_wrap=True)
        cells += [rule, what]
    grid.add_column(ratio=1, overflow="fold")
    cells.append(text)
    if channels:
        grid.add_column(no_wrap=True, style="dim")
        cells.append(channels)
    grid.add_row(*cells)
    return grid


def _alert_row(at: str, alert: AlertEvent, where: str | None = None) -> RenderableType:
    """One alert's line; ``where`` (organization mode: the account and Region) leads its summary."""
    from rich.text import Text

    severity = alert.severity.value
    summary = alert.summary
    if alert.transition == "resolved":
        mark, what, style = "✅", f"resolved, was {severity}", "green"
        summary = f"now: {alert.current}" if alert.current else summary
    elif alert.transition == "escalated":
        previous = alert.previous_severity.value if alert.previous_severity else "lower"
        mark, what, style = _MARK[severity], f"escalated {previous} → {severity}", _SEVERITY_STYLE[severity]
    elif alert.transition == "renotify":
        mark, what, style = _MARK[severity], f"reminder, still {severity}", _SEVERITY_STYLE[severity]
    else:
        mark, what, style = _MARK[severity], f"new, {severity}", _SEVERITY_STYLE[severity]
    channels = " ".join(
        f"{name} {'✓' if status == 'accepted' else '✗ ' + status}" for name, status in alert.channels.items()
    )
    text = Text.assemble((f"{where} ", "bold cyan"), summary) if where else Text(summary)
    return _row(at, mark, text, alert.rule, Text(what, style), channels)


def _print_slack(console: Console, messages: list[SlackMessage]) -> None:
    console.print()
    console.rule(f"Slack: {len(messages)} message(s), as the local webhook receiver got them")
    seen: dict[str, str] = {}
    for message in messages:
        console.print(slack_panel(message, seen))


def slack_panel(message: SlackMessage, seen: dict[str, str] | None = None) -> RenderableType:
    """One webhook payload as Slack shows it: header, sections, fields in two columns, context.

    `seen` maps section texts already shown to when: a repeat (the same advice in every message of
    an incident) is shown as one line pointing back, so a run's messages stay readable in a terminal.
    """
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    blocks: list[Mapping[str, Any]] = list(message.payload.get("blocks") or [])
    header = ""
    parts: list[RenderableType] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            header = block.get("text", {}).get("text", "")
        elif kind == "section":
            text = block.get("text", {}).get("text", "")
            shown_at = seen.get(text) if seen is not None and not block.get("fields") else None
            if shown_at is not None:
                title = text.split("\n", 1)[0].strip("*")
                parts.append(Text(f"{title}: as in the {shown_at} message", "dim italic"))
                continue
            if seen is not None and text.startswith("*What to change*"):
                seen[text] = _clock(message.at_ms)
            if text:
                parts.append(mrkdwn(text))
            fields = block.get("fields") or []
            if fields:
                grid = Table.grid(padding=(0, 3))
                grid.add_column()
                grid.add_column()
                cells = [mrkdwn(f.get("text", "")) for f in fields]
                for i in range(0, len(cells), 2):
                    grid.add_row(*cells[i : i + 2])
                parts.append(grid)
        elif kind == "divider":
            parts.append(mrkdwn("─" * 24, style="dim"))
        elif kind == "context":
            parts.extend(mrkdwn(element.get("text", ""), style="dim") for element in block.get("elements") or [])
    if not blocks:
        parts.append(mrkdwn(str(message.payload.get("text", ""))))
    style = "green" if "RESOLVED" in header else "red" if "CRITICAL" in header else "dark_orange"
    title = f"[bold]{_escape_markup(header)}[/]" if header else "message"
    return Panel(
        Group(*parts), title=title, title_align="left", subtitle=f"{_clock(message.at_ms)} UTC", border_style=style
    )


_MRKDWN = re.compile(r"(?P<link><(?P<target>[^>|]+)(?:\|(?P<label>[^>]+))?>)|(?P<code>`[^`\n]+`)|(?P<bold>\*[^*\n]+\*)")


def mrkdwn(text: str, style: str = "") -> Text:
    """Slack mrkdwn as rich text: *bold*, `code`, <url|label> links, <!here> mentions, &amp; entities."""
    from rich.text import Text

    out = Text(style=style)
    pos = 0
    for match in _MRKDWN.finditer(text):
        out.append(_unescape(text[pos : match.start()]))
        if match.group("link"):
            target = match.group("target")
            if target.startswith("!"):
                out.append(f"@{target[1:]}", "bold magenta")
            else:
                out.append(_unescape(match.group("label") or target), f"underline link {_unescape(target)}")
        elif match.group("code"):
            out.append(_unescape(match.group("code")[1:-1]), "cyan")
        else:
            out.append(_unescape(match.group("bold")[1:-1]), "bold")
        pos = match.end()
    out.append(_unescape(text[pos:]))
    return out


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_sns(console: Console, messages: list[SnsMessage]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console.print()
    console.rule(f"SNS: {len(messages)} message(s), as the SQS subscriber got them")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("time (UTC)", "Subject", "severity", "transition"):
        table.add_column(column)
    for m in messages:
        severity = m.attributes.get("severity", "")
        table.add_row(
            _clock(m.at_ms),
            m.subject,
            Text(severity, _SEVERITY_STYLE.get(severity, "")),
            m.attributes.get("transition", ""),
        )
    console.print(table)
    critical = [m for m in messages if m.attributes.get("severity") == "critical" and "exhausted in ~" in m.message]
    shown = next((m for m in critical if "exhausted" in m.subject), critical[0] if critical else None)
    if shown is None and messages:
        shown = messages[0]
    if shown is not None:
        attributes = ", ".join(f"{k}={v}" for k, v in sorted(shown.attributes.items()))
        console.print(
            Panel(
                Text(shown.message),
                title=f"[bold]Subject: {_escape_markup(shown.subject)}[/]",
                title_align="left",
                subtitle=f"{_clock(shown.at_ms)} UTC · attributes {attributes}",
                border_style="red" if shown.attributes.get("severity") == "critical" else "dark_orange",
            )
        )


def _print_exactly_once(console: Console, result: DemoResult) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print()
    console.rule("Exactly once: what was replayed, what the summary table holds")
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("kind")
    table.add_column("reason")
    table.add_column("lines replayed", justify="right")
    table.add_column("hourly items", justify="right")
    table.add_column("running total", justify="right")
    table.add_column("")
    for (kind, reason), count in sorted(result.expected.items(), key=lambda item: (item[0][0].value, item[0][1] or "")):
        if kind is Kind.OTHER:
            table.add_row(kind.value, "(connects, closes, resets)", str(count), "-", "-", Text("not stored", "dim"))
            continue
        hourly = result.table_hourly.get((kind, reason), 0)
        total = result.table_totals.get((kind, reason), 0) if kind is not Kind.UNPARSED else None
        ok = hourly == count and (total is None or total == count)
        table.add_row(
            kind.value,
            reason or "-",
            str(count),
            str(hourly),
            "-" if total is None else str(total),
            Text("✓", "green") if ok else Text("✗", "bold red"),
        )
    console.print(table)
    for first, again in result.redeliveries:
        console.print(
            f"Delivered twice: the payload of {first.stream} at {_clock(first.minute * MINUTE_MS + result.incident.start_ms)}"
            f" (batch {str(first.summary.get('batchId', ''))[:12]}…): first {first.summary.get('appliedChunks')} chunk "
            f"applied ({first.summary.get('writes')} writes), then {again.summary.get('appliedChunks')} applied, "
            f"{again.summary.get('duplicateChunks')} skipped."
        )
    console.print(
        f"EMF metrics from the ingest: PinEvents {result.emf_pin_events}, WouldPinEvents {result.emf_would_pin_events}"
        " (a redelivered batch adds nothing)."
    )


def _start_emulation(
    console: Console, stack: contextlib.ExitStack[Any], args: argparse.Namespace, services: str = _SERVICES
) -> tuple[Endpoints, str, SlackReceiver]:
    """moto, the summary table's engine and the Slack receiver, entered on `stack`; AWS_* point at them."""
    from pinwatch.local.demo import AWS_VARIABLES_TO_CLEAR, emulation, patched_environ
    from pinwatch.local.slack_receiver import slack_receiver

    with console.status("Starting moto and DynamoDB Local on loopback ports…"):
        endpoints = stack.enter_context(emulation(use_dynamodb_local=not args.no_dynamodb_local))
        slack_url, receiver = stack.enter_context(slack_receiver())
    _print_endpoints(console, endpoints, services)
    stack.enter_context(patched_environ(endpoints.aws_environment(), AWS_VARIABLES_TO_CLEAR))
    return endpoints, slack_url, receiver


def _progress(console: Console) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    # The functions print to stdout (as in Lambda); the replay captures it, so the bar must not.
    return Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=False, transient=True)


def _print_report(console: Console, table_args: list[str], endpoints: Endpoints, since_ms: int, title: str) -> None:
    from pinwatch.cli import main

    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
    argv = ["report", *table_args, "--since", since]
    argv += ["--endpoint-url", endpoints.dynamodb, "--region", endpoints.region]
    console.print()
    console.rule(title)
    console.print(f"$ pinwatch {' '.join(argv)}", style="dim")
    sys.stdout.flush()
    code = main(argv)
    if code != EXIT_OK:
        console.print(f"[red]pinwatch report exited with {code}[/]")


def _print_result(console: Console, result: DemoResult | OrgDemoResult, seconds: float, name: str) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print()
    console.rule("Result")
    table = Table(show_header=False, show_edge=False, pad_edge=False)
    table.add_column()
    table.add_column()
    table.add_column(style="dim")
    for stage in result.stages:
        table.add_row(Text("✓", "green") if stage.ok else Text("✗", "bold red"), stage.name, stage.detail)
    console.print(table)
    verdict = f"[bold green]{name} passed[/]" if result.ok else f"[bold red]{name} FAILED[/]"
    console.print(
        f"{verdict} in {seconds:.1f} s ({len(result.ticks)} simulated minutes replayed in {result.seconds:.1f} s)"
    )


def _finish(
    args: argparse.Namespace, console: Console, result: DemoResult | OrgDemoResult, keep_lines: Callable[[], list[str]]
) -> int:
    """The run's tail in both modes: the function log, --keep, the exit code."""
    if args.function_log:
        args.function_log.write_text(result.function_output, encoding="utf-8")
        console.print(f"The functions' log lines and EMF metrics: {args.function_log}")
    if args.keep:
        _keep(console, keep_lines())
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _keep(console: Console, lines: list[str]) -> None:
    console.print()
    console.rule("The emulation keeps running: press Ctrl-C (or send SIGTERM) to stop it")
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    stop = threading.Event()
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(3600):
            pass
    console.print("\nStopping the emulation.")


def _keep_lines(stack: DemoStack) -> list[str]:
    endpoints = stack.endpoints
    from pinwatch.store import keys

    proxy_pk = json.dumps({":pk": {"S": keys.proxy_pk(stack.proxy)}, ":t": {"S": keys.pin_total_sk("")}})
    return [
        f"moto ({_SERVICES})  {endpoints.moto}",
        f"{endpoints.dynamodb_engine} (summary table)  {endpoints.dynamodb}",
        f"summary table  {stack.table}",
        f"alert subscriber queue  {stack.queue_url}",
        "",
        "# in another shell:",
        f"export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={endpoints.region}",
        f"pinwatch report --table {stack.table} --endpoint-url {endpoints.dynamodb} --since 2h --by hour",
        f"aws --endpoint-url {endpoints.dynamodb} dynamodb query --table-name {stack.table} "
        f"--key-condition-expression 'pk = :pk AND begins_with(sk, :t)' --expression-attribute-values '{proxy_pk}'",
        f"AWS_ENDPOINT_URL={endpoints.moto} AWS_ENDPOINT_URL_DYNAMODB={endpoints.dynamodb} "
        f"pinwatch check --table {stack.table} --proxy {stack.proxy} --all",
        f"pinwatch backfill --proxy {stack.proxy} --since 2h --endpoint-url {endpoints.moto}",
        f"aws --endpoint-url {endpoints.moto} logs tail {stack.log_group} --since 2h",
    ]


# ------------------------------------------------------------------------------ organization


_ORG_SERVICES = "RDS, CloudWatch, Logs, Kinesis, SNS, SQS, Secrets Manager, STS, IAM, CloudFormation"


def _run_org(args: argparse.Namespace, console: Console, started: float) -> int:
    """``--org``: the central stack and two member accounts; see :mod:`pinwatch.local.demo.org`."""
    from pinwatch.local.demo.org import create_org_stack, incident_start, org_functions

    console.rule("[bold]pinwatch demo --org[/]: a pinning incident in one member account, replayed on local AWS")
    with contextlib.ExitStack() as stack:
        endpoints, slack_url, receiver = _start_emulation(console, stack, args, _ORG_SERVICES)
        with console.status("Creating the central stack and the member accounts…"):
            org_stack = create_org_stack(endpoints, args.proxy, slack_url)
        _print_org_stack(console, org_stack)

        start_ms = incident_start(args.minutes)
        functions = stack.enter_context(org_functions(org_stack))
        console.print(
            f"\nReplaying {args.minutes} minutes ({_clock(start_ms)}–{_clock(start_ms + args.minutes * MINUTE_MS)} "
            "UTC) on a simulated clock: each minute both members' metrics go to their CloudWatch, their pin lines "
            "through the destination and the Kinesis stream to the stream function, their alarms' contributor "
            "events and the schedule to the check function.\n"
        )
        result = _replay_org(console, org_stack, functions, args.minutes, start_ms, receiver)

        _print_slack(console, result.slack)
        _print_sns(console, result.sns)
        _print_exactly_once_org(console, result)
        _print_report(
            console,
            ["--table", org_stack.central.table],
            endpoints,
            start_ms,
            "pinwatch report, across the organization",
        )
        _print_result(console, result, time.perf_counter() - started, "organization demo")
        return _finish(args, console, result, lambda: _keep_org_lines(org_stack))
    raise AssertionError("unreachable")  # pragma: no cover


def _print_org_stack(console: Console, stack: OrgStack) -> None:
    central = stack.central
    console.print(
        f"Central account {stack.organization_account}: table [cyan]{central.table}[/], SNS topic with an SQS "
        f"subscriber, Slack webhook secret → local receiver, Kinesis stream [cyan]{stack.stream_name}[/], "
        f"member StackSet {stack.organization.stack_set}"
    )
    for member in stack.members:
        console.print(
            f"Member [bold]{member.scope.account}[/] ({member.scope.region}): RDS proxy [cyan]{member.proxy}[/] "
            f"(POSTGRESQL), read role {stack.organization.role_name}, log group {member.log_group}"
        )


def _replay_org(
    console: Console, stack: OrgStack, functions: Any, minutes: int, start_ms: int, receiver: SlackReceiver
) -> OrgDemoResult:
    from pinwatch.local.demo.org import PAGED, OrgReplay

    with _progress(console) as progress:
        task = progress.add_task("simulated minutes", total=minutes)

        def on_tick(tick: OrgTick) -> None:
            for line in _timeline_org(tick):
                progress.console.print(line)
            paged = next(m for m in tick.members if m.scope == PAGED)
            m = paged.metrics
            progress.update(
                task,
                advance=1,
                description=f"{_clock(tick.checked_at_ms)} UTC · {PAGED.account}: pinned {m[PINNED]:.0f} · "
                f"DB connections {m[DATABASE_CONNECTIONS]:.0f}/{m[MAX_ALLOWED]:.0f}",
            )

        return OrgReplay(stack, functions, minutes, start_ms, receiver, on_tick=on_tick).run()


def _timeline_org(tick: OrgTick) -> Iterator[RenderableType]:
    """One simulated minute of the organization: the story, alarm events, stream faults, capture, alerts."""
    from rich.text import Text

    from pinwatch.scope import split_key

    minute_at, checked_at = _clock(tick.start_ms), _clock(tick.checked_at_ms)
    if tick.note:
        yield _row(minute_at, "▶", Text(f"{tick.members[-1].scope.account}: {tick.note}", "bold"))
    for record in tick.records:
        if record.resent and record.scope is not None:
            yield _row(
                minute_at,
                "↻",
                Text(
                    f"the destination puts the record of {record.scope.account} {record.stream} ({record.lines} lines) "
                    "into the stream again"
                ),
            )
    if tick.throttled:
        yield _row(
            minute_at,
            "⚡",
            Text("DynamoDB throttles one record's write: the stream function reports it, the mapping retries from it"),
        )
    for event in tick.contributor_events:
        detail = event.get("detail", {})
        proxy = detail.get("alarmContributor", {}).get("attributes", {}).get("ProxyName", "?")
        state = detail.get("state", {}).get("value", "?")
        member = next((m for m in tick.members if m.scope.account == event.get("account")), None)
        # What the check it invoked made of the proxy (alert-worthy or not yet: then the next sweep reads it).
        found = f"; the check reads it: {member.unhealthy or 'ok'}" if member is not None and state == "ALARM" else ""
        yield _row(
            checked_at,
            "⚑",
            Text(
                f"{event.get('account')}/{event.get('region')} alarm contributor {proxy} → {state}: "
                f"the central bus rule invokes the check{found}",
                "yellow",
            ),
        )
    for member in tick.members:
        capture = member.capture
        if capture is not None and capture.status in ("started", "stopped", "failed", "released"):
            from pinwatch.alerts.render import capture_lines
            from pinwatch.findings import ProxyReport

            lines = capture_lines(ProxyReport(proxy="", engine=None, status="", findings=(), capture=capture))
            text = f"{member.scope.account}: " + (lines[0] if lines else "reason capture")
            yield _row(checked_at, "◉", Text(text, "magenta"))
    for alert in tick.alerts:
        scope, _ = split_key(alert.proxy)
        yield _alert_row(checked_at, alert, str(scope) if scope else None)
    for error in tick.errors:
        yield _row(checked_at, "✗", Text(error, "red"))


def _print_exactly_once_org(console: Console, result: OrgDemoResult) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print()
    console.rule("Exactly once: what each account replayed, what the summary table holds")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("account", "kind", "reason"):
        table.add_column(column)
    for column in ("lines replayed", "hourly items", "running total"):
        table.add_column(column, justify="right")
    table.add_column("")
    for counts in result.counts:
        for (kind, reason), n in sorted(counts.expected.items(), key=lambda i: (i[0][0].value, i[0][1] or "")):
            hourly, total = counts.hourly.get((kind, reason), 0), counts.totals.get((kind, reason), 0)
            table.add_row(
                counts.member.scope.account,
                kind.value,
                reason or "-",
                str(n),
                str(hourly),
                str(total),
                Text("✓", "green") if hourly == total == n else Text("✗", "bold red"),
            )
    console.print(table)
    console.print(f"Keys in the table: {', '.join(sorted(result.keys_in_table))}")
    for record in (r for r in result.records if r.resent and r.batch_id):
        applies = [r for r, _ in result.applies(record.batch_id or "") if r is not None]
        console.print(
            f"Re-sent by the destination: {record.stream} of {record.scope.account if record.scope else '?'} "
            f"(batch {(record.batch_id or '')[:12]}…): "
            + ", then ".join(f"{a.applied_chunks} chunk(s) applied, {a.duplicate_chunks} skipped" for a in applies)
        )
    failed = [bid for bid, r, error in result.applied if r is None]
    for batch in failed[:1]:
        steps = [
            error if r is None else f"{r.applied_chunks} applied, {r.duplicate_chunks} skipped"
            for r, error in result.applies(batch)
        ]
        console.print(f"Retried by the mapping (batch {batch[:12]}…): " + " → ".join(str(step) for step in steps))
    stats = result.mapping
    console.print(
        f"Event source mapping: {len(result.records)} records in the stream, {stats.invocations} invocations, "
        f"{stats.records_sent} records sent, {stats.partial_failures} partial batch response(s), "
        f"{stats.function_errors} function error(s), {len(stats.on_failure)} on-failure record(s); "
        f"EMF PinEvents {result.emf_pin_events}."
    )


def _keep_org_lines(stack: OrgStack) -> list[str]:
    endpoints = stack.endpoints
    return [
        f"moto ({_ORG_SERVICES})  {endpoints.moto}",
        f"{endpoints.dynamodb_engine} (summary table)  {endpoints.dynamodb}",
        f"summary table  {stack.central.table}",
        f"organization stream  {stack.stream_name}",
        "",
        "# in another shell:",
        f"export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={endpoints.region}",
        f"pinwatch report --table {stack.central.table} --endpoint-url {endpoints.dynamodb} --since 2h",
        f"pinwatch report --table {stack.central.table} --endpoint-url {endpoints.dynamodb} --since 2h "
        f"--account {stack.members[-1].scope.account}",
        f"aws --endpoint-url {endpoints.moto} cloudformation list-stack-instances "
        f"--stack-set-name {stack.organization.stack_set}",
    ]


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")
