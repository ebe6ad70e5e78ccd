"""``pinwatch check``: the scheduled function's diagnosis, run now against the current account.

Thresholds come from the same environment variables as the function (``PINNED_WARNING_PCT``, …;
unset means the documented default). With ``--table`` the report gets the top pinning reasons
and hints from the summary table, and ``--dry-run`` previews the alert messages against the
stored alert state. Without ``--dry-run`` alerts are sent (and alert state updated) only when a
table and a channel (``ALERT_TOPIC_ARN`` / ``SLACK_WEBHOOK_SECRET_ARN``) are configured, exactly
as the function would.

Endpoints: ``--endpoint-url`` applies to every AWS call; ``AWS_ENDPOINT_URL`` and per-service
variables such as ``AWS_ENDPOINT_URL_DYNAMODB`` are honoured by boto3 when it is not given.

Organization mode (docs/organization.md): with ``--member-stack-set`` (or ``ORG_MEMBER_STACK_SET``)
the check reads every member account and Region of that StackSet through the member role, as the
central function does (:func:`pinwatch.wiring.org_check`), plus each ``--extra-target`` (or
``ORG_EXTRA_TARGETS``) enrolled outside it. The member roles trust the check's role and the
template's ``OperatorRoleArns``. Proxies are then named by their key,
``<account>:<region>:<name>``; the table and the JSON show account and Region.
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
from pinwatch.config import (
    REASON_CAPTURE_MAX_HOURS_RANGE,
    REASON_CAPTURE_MODES,
    STACK_SET_CALL_AS,
    CheckConfig,
    ConfigError,
)
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.scope import SCOPE_WIDE, split_key

if TYPE_CHECKING:
    from pinwatch.alerts.dispatcher import DispatchResult
    from pinwatch.check import Check, CheckResult, Dispatcher

HELP = "diagnose every proxy now (the scheduled check); --dry-run previews alerts"
FORMATS = ("table", "json")
_SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}
# Organization flags -> the function's variables they stand for: one parser reads both (CheckConfig.from_env).
_ORG_FLAGS = {
    "member_stack_set": "ORG_MEMBER_STACK_SET",
    "call_as": "ORG_STACK_SET_CALL_AS",
    "member_role": "ORG_MEMBER_ROLE_NAME",
    "extra_target": "ORG_EXTRA_TARGETS",  # repeatable: its values joined as the variable lists them
}
KEY_EXAMPLE = "111111111111:eu-west-1:orders-db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy",
        action="append",
        metavar="NAME",
        help="check only this proxy (repeatable); default: every proxy. Organization mode: its key "
        "ACCOUNT:REGION:NAME (ACCOUNT:REGION:* for a whole member)",
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
    org = parser.add_argument_group("organization mode (docs/organization.md)")
    org.add_argument(
        "--member-stack-set",
        metavar="NAME",
        help="check every member account and Region this StackSet is deployed to, through the member role "
        "(default: $ORG_MEMBER_STACK_SET; unset: this account and Region only)",
    )
    org.add_argument(
        "--call-as",
        type=str.upper,
        choices=STACK_SET_CALL_AS,
        help="list the StackSet as the management account (SELF) or a delegated administrator "
        "(default: $ORG_STACK_SET_CALL_AS, else SELF)",
    )
    org.add_argument(
        "--member-role",
        metavar="NAME",
        help="the read role assumed in each member account (default: $ORG_MEMBER_ROLE_NAME, else "
        "pinwatch-member-reader)",
    )
    org.add_argument(
        "--extra-target",
        action="append",
        metavar="ACCOUNT:REGION",
        help="also check this account and Region, enrolled outside the StackSet (repeatable; e.g. the "
        "management account; default: $ORG_EXTRA_TARGETS)",
    )
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config, keys = _config(args)
    clients = AwsClients(args)
    dispatcher = _dispatcher(config, clients, args.dry_run)
    check = _check(config, clients, dispatcher, getattr(args, "endpoint_url", None))
    now_ms = int(time.time() * 1000)
    result = clients.call(lambda: check.run(now_ms, dry_run=args.dry_run, names=keys))
    if args.format == "json":
        json.dump(findings_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(result, show_ok=args.all, dry_run=args.dry_run, org=config.org_mode)
    if (
        dispatcher is None
        and not args.dry_run
        and any(r.severity.rank >= Severity.WARNING.rank for r in result.reports)
    ):
        print(_not_sent_reason(config), file=sys.stderr)
    unmatched = _unmatched(keys, result)
    for key in unmatched:
        print(f"pinwatch check: {key}: {_no_such_proxy(key)}", file=sys.stderr)
    for proxy, error in result.failures.items():
        print(f"pinwatch check: alerting failed for {_proxy_label(proxy)}: {error}", file=sys.stderr)
    if result.failures:
        return EXIT_FINDINGS
    # A key that matched no proxy counts as a warning, as a single account's proxy_not_found does.
    worst = max([r.severity.rank for r in result.reports] + [Severity.WARNING.rank] * bool(unmatched), default=0)
    if args.fail_on and worst >= Severity(args.fail_on).rank:
        return EXIT_FINDINGS
    return EXIT_OK


# ------------------------------------------------------------------ configuration and AWS wiring


def _config(args: argparse.Namespace) -> tuple[CheckConfig, tuple[str, ...] | None]:
    """The check's settings, and in organization mode the keys ``--proxy`` named (None: every proxy).

    A single account's ``--proxy`` names go into ``proxy_names``, as ``PROXY_NAMES`` would; an
    organization's keys limit the run instead (names are unique only per account and Region).
    """
    given = {var: _flag_value(getattr(args, flag, None)) for flag, var in _ORG_FLAGS.items()}
    try:
        config = CheckConfig.from_env({**os.environ, **{k: v for k, v in given.items() if v}}, require_table=False)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if not config.org_mode and (args.call_as or args.member_role):
        raise CliError("--call-as and --member-role are for organization mode: add --member-stack-set NAME")
    proxies = tuple(dict.fromkeys(args.proxy)) if args.proxy else ()
    keys: tuple[str, ...] | None = None
    if config.org_mode:
        keys = _member_keys(proxies) if proxies else None
        names = config.proxy_names
    else:
        _refuse_keys(proxies)
        names = proxies or config.proxy_names
    # A check by hand reads every metric: saving the periodic ones' cost is for the schedule.
    config = dataclasses.replace(
        config, summary_table_name=args.table or "", proxy_names=names, setup_failed_every_minutes=1
    )
    config = _with_capture(
        config, getattr(args, "reason_capture", None), getattr(args, "reason_capture_max_hours", None)
    )
    return config, keys


def _flag_value(value: str | list[str] | None) -> str | None:
    """A flag as its variable's text: a repeated flag's values comma-separated, as ``ORG_EXTRA_TARGETS`` lists them."""
    return ",".join(value) if isinstance(value, list) else value


def _member_keys(proxies: Sequence[str]) -> tuple[str, ...]:
    """``--proxy`` values as an organization's keys; a bare name would mean a different proxy in each member."""
    bare = [p for p in proxies if split_key(p)[0] is None or not split_key(p)[1]]
    if bare:
        raise CliError(
            f"--proxy {bare[0]}: in organization mode name a proxy by its key ACCOUNT:REGION:NAME "
            f"(e.g. {KEY_EXAMPLE}), or ACCOUNT:REGION:* for every proxy of a member"
        )
    return tuple(proxies)


def _refuse_keys(proxies: Sequence[str]) -> None:
    keyed = [p for p in proxies if split_key(p)[0] is not None]
    if keyed:
        raise CliError(
            f"--proxy {keyed[0]} is an organization key: add --member-stack-set NAME (or set "
            "ORG_MEMBER_STACK_SET), or name a proxy of this account and Region"
        )


def _check(config: CheckConfig, clients: AwsClients, dispatcher: Dispatcher | None, endpoint_url: str | None) -> Check:
    """The function's check on the CLI's clients: this account's, or the organization's (pinwatch.wiring)."""
    from pinwatch import wiring

    if not config.org_mode:
        return wiring.connection_check(config, clients.get, dispatcher=dispatcher)
    # Member clients are made from the assumed role's credentials, not the CLI's session: they
    # take --endpoint-url (a local emulation) and --region's partition through the environment they read.
    environ = dict(os.environ)
    if endpoint_url:
        environ["AWS_ENDPOINT_URL"] = endpoint_url
    region = clients.get("sts").meta.region_name
    if region:
        environ["AWS_REGION"] = region
    sessions = wiring.member_sessions(config, clients.get("sts"), environ)
    return wiring.org_check(config, clients.get, dispatcher=dispatcher, sessions=sessions)


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


def _unmatched(keys: Sequence[str] | None, result: CheckResult) -> list[str]:
    """Keys ``--proxy`` named that no report answers: no such proxy, or not a member's account and Region.

    A proxy the member does not have comes back without findings (the check reads it as deleted).
    """
    if keys is None:
        return []
    found = {r.proxy for r in result.reports if r.findings}
    scopes = {split_key(key)[0] for key in found}
    return [k for k in keys if k not in found and not (split_key(k)[1] == SCOPE_WIDE and split_key(k)[0] in scopes)]


def _no_such_proxy(key: str) -> str:
    scope, name = split_key(key)
    assert scope is not None  # organization keys only (_member_keys)
    what = "no proxies" if name == SCOPE_WIDE else "no such proxy"
    return (
        f"{what} in account {scope.account}, Region {scope.region} (or the member StackSet has no stack instance there)"
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
    scope, name = split_key(report.proxy)
    # An organization's finding also says where, in fields of their own; ``proxy`` stays the key.
    place = {} if scope is None else {"account": scope.account, "region": scope.region, "name": name}
    return {
        "proxy": report.proxy,
        **place,
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


def _print_table(result: CheckResult, *, show_ok: bool, dry_run: bool, org: bool = False) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not result.outcomes:
        where = "the member accounts and Regions" if org else "this account and region"
        console.print(f"No RDS proxies in {where}.")
        return
    table = Table(title="pinwatch check", title_justify="left")
    # An organization's proxies share names across members: account and Region tell them apart.
    place_columns = ("account", "region") if org else ()
    for column in (*place_columns, "proxy", "engine", "rule", "severity", "summary"):
        table.add_column(column, overflow="fold")
    for report in result.reports:
        engine = report.engine.value if report.engine else "-"
        place = _place(report.proxy) if org else ()
        for rule, severity, summary in _rows(report, show_ok):
            table.add_row(*place, escape(_name(report.proxy)) if org else report.proxy, engine, rule, severity, summary)
    console.print(table)
    for report in result.reports:
        _print_explanation(console, report)
    if dry_run:
        for outcome in result.outcomes:
            if outcome.dispatch is not None:
                _print_messages(console, outcome.dispatch)


def _place(key: str) -> tuple[str, str]:
    scope, _ = split_key(key)
    return ("-", "-") if scope is None else (scope.account, scope.region)


def _name(key: str) -> str:
    """The proxy column of an organization's table: the name, or what a member-wide report covers."""
    name = split_key(key)[1]
    return "all proxies" if name == SCOPE_WIDE else name


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
    from rich.markup import escape

    from pinwatch.alerts.render import capture_lines

    # A plain name prints as before; an organization's key as "name (account, Region)".
    proxy = escape(_proxy_label(report.proxy))
    for finding in report.findings:
        if finding.severity is not Severity.OK and finding.details:
            console.print(f"\n[bold]{proxy}[/] {finding.rule}:", highlight=False)
            for detail in finding.details:
                console.print(f"  - {detail}", highlight=False, markup=False)
    for line in capture_lines(report):
        console.print(f"\n[bold]{proxy}[/]: {escape(line)}", highlight=False)
    reasons = report.top_reasons_last_hour or report.top_reasons_all_time
    if not reasons:
        return
    when = "last hour" if report.top_reasons_last_hour else "all time"
    listed = ", ".join(f"{r.reason} ({r.count})" for r in reasons)
    console.print(f"\n[bold]{proxy}[/]: top pinning reasons, {when}: {listed}", highlight=False)
    for reason in reasons[:2]:
        for hint in report.hints.get(reason.reason, ())[:2]:
            console.print(f"  - {hint}", highlight=False, markup=False)


def _print_messages(console: Any, dispatch: DispatchResult) -> None:
    if not dispatch.messages:
        return
    rules = ", ".join(f"{n.rule} ({n.transition.value})" for n in dispatch.notifications)
    for channel, payload in dispatch.messages.items():
        console.rule(f"would send to {channel} for {_proxy_label(dispatch.proxy)}: {rules}")
        console.print_json(json.dumps(_printable(payload)))


def _proxy_label(key: str) -> str:
    """How the command names a proxy: the alerts' own label (``orders-db (111111111111, eu-west-1)``)."""
    from pinwatch.alerts.render import proxy_label

    return proxy_label(key)


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
