"""``pinwatch check``: the scheduled function's diagnosis, run now against the current account.

Thresholds come from the same environment variables as the function (``PINNED_WARNING_PCT``, …;
unset means the documented default). With ``--table`` the report gets the top pinning reasons
and hints from the summary table, and ``--dry-run`` previews the alert messages against the
stored alert state. Without ``--dry-run`` alerts are sent (and alert state updated) only when a
table and a channel (``ALERT_TOPIC_ARN`` / ``SLACK_WEBHOOK_SECRET_ARN``) are configured, exactly
as the function would.

Endpoints: ``--endpoint-url`` applies to every AWS call; ``AWS_ENDPOINT_URL`` and per-service
variables such as ``AWS_ENDPOINT_URL_DYNAMODB`` are honoured by boto3 when it is not given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pinwatch.cli import EXIT_FINDINGS, EXIT_OK, CliError
from pinwatch.cli.aws import AwsClients, add_aws_arguments
from pinwatch.config import REASON_CAPTURE_MAX_HOURS_RANGE, REASON_CAPTURE_MODES, CheckConfig, ConfigError
from pinwatch.findings import Finding, ProxyReport, Severity

if TYPE_CHECKING:
    from pinwatch.alerts.dispatcher import DispatchResult
    from pinwatch.check import CheckResult, Dispatcher

HELP = "diagnose every proxy now (the scheduled check); --dry-run previews alerts"
FORMATS = ("table", "json")
_SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy", action="append", metavar="NAME", help="check only this proxy (repeatable); default: every proxy"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print findings and the messages that would be sent, without sending or changing alert state",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--table",
        default=os.environ.get("SUMMARY_TABLE_NAME") or None,
        help="summary table, for top reasons, hints and alert state (default: $SUMMARY_TABLE_NAME; none: metrics only)",
    )
    parser.add_argument("--all", action="store_true", help="table format: list ok findings too")
    parser.add_argument(
        "--fail-on",
        choices=("info", "warning", "critical"),
        help="exit 1 when any finding is at or above this severity (for scripts and CI)",
    )
    parser.add_argument(
        "--reason-capture",
        choices=REASON_CAPTURE_MODES,
        default=None,
        help="switch enhanced logging on for pinning incidents (on-incident) or keep it on (always); needs --table "
        "and rds:ModifyDBProxy; --dry-run only says what it would do (default: $REASON_CAPTURE, else off)",
    )
    parser.add_argument(
        "--reason-capture-max-hours",
        type=float,
        default=None,
        metavar="HOURS",
        help="longest on-incident capture (default: $REASON_CAPTURE_MAX_HOURS, else 2)",
    )
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    clients = AwsClients(args)
    dispatcher = _dispatcher(config, clients, args.dry_run)
    from pinwatch import wiring

    check = wiring.connection_check(config, clients.get, dispatcher=dispatcher)
    result = clients.call(lambda: check.run(int(time.time() * 1000), dry_run=args.dry_run))
    if args.format == "json":
        json.dump(findings_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(result, show_ok=args.all, dry_run=args.dry_run)
    if (
        dispatcher is None
        and not args.dry_run
        and any(r.severity.rank >= Severity.WARNING.rank for r in result.reports)
    ):
        print(_not_sent_reason(config), file=sys.stderr)
    for proxy, error in result.failures.items():
        print(f"pinwatch check: alerting failed for {proxy}: {error}", file=sys.stderr)
    if result.failures:
        return EXIT_FINDINGS
    if args.fail_on and any(r.severity.rank >= Severity(args.fail_on).rank for r in result.reports):
        return EXIT_FINDINGS
    return EXIT_OK


# ------------------------------------------------------------------ configuration and AWS wiring


def _config(args: argparse.Namespace) -> CheckConfig:
    try:
        config = CheckConfig.from_env(os.environ, require_table=False)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    names = tuple(dict.fromkeys(args.proxy)) if args.proxy else config.proxy_names
    # A check by hand reads every metric: saving the periodic ones' cost is for the schedule.
    config = dataclasses.replace(
        config, summary_table_name=args.table or "", proxy_names=names, setup_failed_every_minutes=1
    )
    return _with_capture(config, getattr(args, "reason_capture", None), getattr(args, "reason_capture_max_hours", None))


def _with_capture(config: CheckConfig, mode: str | None, max_hours: float | None) -> CheckConfig:
    """The command line's reason-capture options over the environment's (docs/reason-capture.md)."""
    low, high = REASON_CAPTURE_MAX_HOURS_RANGE
    if max_hours is not None and not low <= max_hours <= high:
        raise CliError(
            f"--reason-capture-max-hours must be from {low:g} to {high:g} (AWS switches logging off after 24 h)"
        )
    config = dataclasses.replace(
        config,
        reason_capture=mode or config.reason_capture,
        reason_capture_max_hours=config.reason_capture_max_hours if max_hours is None else max_hours,
    )
    if config.reason_capture != "off" and not config.summary_table_name:
        raise CliError("--reason-capture needs --table: the capture state lives in the summary table")
    return config


def _dispatcher(config: CheckConfig, clients: AwsClients, dry_run: bool) -> Dispatcher | None:
    channels = bool(config.alert_topic_arn or config.slack_webhook_secret_arn)
    # Sending without a table would re-alert every run; a table without channels would record
    # alerts as handled that nobody received. Only a dry run works with either missing.
    if not dry_run and not (channels and config.summary_table_name):
        return None
    from pinwatch import wiring

    try:
        return clients.call(lambda: wiring.alert_dispatcher(config, clients.get))
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _not_sent_reason(config: CheckConfig) -> str:
    if not config.summary_table_name:
        return "pinwatch check: no alerts sent: pass --table (alert state lives in the summary table); --dry-run previews them"
    return (
        "pinwatch check: no alerts sent: set ALERT_TOPIC_ARN and/or SLACK_WEBHOOK_SECRET_ARN to send them; "
        "--dry-run previews them"
    )


# ------------------------------------------------------------------ output


def findings_json(result: CheckResult) -> list[dict[str, Any]]:
    """Every finding of every proxy as a plain object; a dry run adds what would be sent."""
    out: list[dict[str, Any]] = []
    for outcome in result.outcomes:
        report, dispatch = outcome.report, outcome.dispatch
        notified = {n.rule: n for n in dispatch.notifications} if dispatch is not None else {}
        for finding in report.findings:
            item = _finding_json(report, finding)
            if dispatch is not None and dispatch.dry_run:
                note = notified.get(finding.rule)
                item["notification"] = (
                    None if note is None else {"transition": note.transition.value, "channels": list(note.channels)}
                )
                # One message per channel covers all of the proxy's notified rules.
                item["messages"] = dict(dispatch.messages) if note is not None else {}
            out.append(item)
    return out


def _finding_json(report: ProxyReport, finding: Finding) -> dict[str, Any]:
    return {
        "proxy": report.proxy,
        "engine": report.engine.value if report.engine else None,
        "status": report.status,
        "rule": finding.rule,
        "severity": finding.severity.value,
        "summary": finding.summary,
        "insufficient_data": finding.insufficient_data,
        "figures": dict(finding.figures),
        "details": list(finding.details),
        "exhaustion_eta_minutes": report.exhaustion_eta_minutes,
        "top_reasons_last_hour": [_reason_json(r) for r in report.top_reasons_last_hour],
        "top_reasons_all_time": [_reason_json(r) for r in report.top_reasons_all_time],
        "hints": {reason: list(texts) for reason, texts in report.hints.items()},
        "checked_at_ms": report.checked_at_ms,
        "reason_capture": None if report.capture is None else dataclasses.asdict(report.capture),
    }


def _reason_json(reason: Any) -> dict[str, Any]:
    return {"reason": reason.reason, "count": reason.count, "example_digest": reason.example_digest}


def _print_table(result: CheckResult, *, show_ok: bool, dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not result.outcomes:
        console.print("No RDS proxies in this account and region.")
        return
    table = Table(title="pinwatch check", title_justify="left")
    for column in ("proxy", "engine", "rule", "severity", "summary"):
        table.add_column(column, overflow="fold")
    for report in result.reports:
        engine = report.engine.value if report.engine else "-"
        for rule, severity, summary in _rows(report, show_ok):
            table.add_row(report.proxy, engine, rule, severity, summary)
    console.print(table)
    for report in result.reports:
        _print_explanation(console, report)
    if dry_run:
        for outcome in result.outcomes:
            if outcome.dispatch is not None:
                _print_messages(console, outcome.dispatch)


def _rows(report: ProxyReport, show_ok: bool) -> list[tuple[str, str, str]]:
    """Table rows for one proxy: problems first-class, healthy and no-data rules folded unless --all."""
    if show_ok:
        return [(f.rule, _label(f), f.summary) for f in report.findings]
    problems = [(f.rule, _label(f), f.summary) for f in report.findings if f.severity is not Severity.OK]
    undecided = [f for f in report.findings if f.insufficient_data and f.severity is Severity.OK]
    ok = len(report.findings) - len(problems) - len(undecided)
    if undecided:
        summary = undecided[0].summary
        if len(undecided) < len(report.findings):
            summary += f" ({', '.join(f.rule for f in undecided)})"
        problems.append((_rules(len(undecided)), "no data", summary))
    if ok:
        problems.append((_rules(ok), _severity(Severity.OK), "ok"))
    return problems


def _rules(count: int) -> str:
    return f"{count} rule" if count == 1 else f"{count} rules"


def _label(finding: Finding) -> str:
    return "no data" if finding.insufficient_data else _severity(finding.severity)


def _severity(severity: Severity) -> str:
    return f"[{_SEVERITY_STYLE[severity]}]{severity.value}[/]"


def _print_explanation(console: Any, report: ProxyReport) -> None:
    """What to do next: the findings' own advice, then the top reasons with their best hints."""
    for finding in report.findings:
        if finding.severity is not Severity.OK and finding.details:
            console.print(f"\n[bold]{report.proxy}[/] {finding.rule}:", highlight=False)
            for detail in finding.details:
                console.print(f"  - {detail}", highlight=False, markup=False)
    from rich.markup import escape

    from pinwatch.alerts.render import capture_lines

    for line in capture_lines(report):
        console.print(f"\n[bold]{report.proxy}[/]: {escape(line)}", highlight=False)
    reasons = report.top_reasons_last_hour or report.top_reasons_all_time
    if not reasons:
        return
    when = "last hour" if report.top_reasons_last_hour else "all time"
    listed = ", ".join(f"{r.reason} ({r.count})" for r in reasons)
    console.print(f"\n[bold]{report.proxy}[/]: top pinning reasons, {when}: {listed}", highlight=False)
    for reason in reasons[:2]:
        for hint in report.hints.get(reason.reason, ())[:2]:
            console.print(f"  - {hint}", highlight=False, markup=False)


def _print_messages(console: Any, dispatch: DispatchResult) -> None:
    if not dispatch.messages:
        return
    rules = ", ".join(f"{n.rule} ({n.transition.value})" for n in dispatch.notifications)
    for channel, payload in dispatch.messages.items():
        console.rule(f"would send to {channel} for {dispatch.proxy}: {rules}")
        console.print_json(json.dumps(_printable(payload)))


def _printable(payload: Mapping[str, Any] | Sequence[Any] | Any) -> Any:
    """Payloads may carry nested JSON strings (SNS MessageStructure=json): show them expanded."""
    if isinstance(payload, Mapping):
        return {k: _printable(v) for k, v in payload.items()}
    if isinstance(payload, list | tuple):
        return [_printable(v) for v in payload]
    if isinstance(payload, str) and payload[:1] in "{[":
        try:
            return _printable(json.loads(payload))
        except ValueError:
            return payload
    return payload
