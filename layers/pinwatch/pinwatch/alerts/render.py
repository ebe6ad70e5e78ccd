"""Alert messages: Slack Block Kit, plain text, and the SNS publish request. Pure.

One :class:`Alert` (a proxy's report plus the rules that transitioned in this run) is turned into
a neutral set of parts — headline, what happened, numbers, top reasons, hints, links — and each
channel formats those parts within its own limits:

- Slack: ≤ 50 blocks, header ≤ 150 characters, section text ≤ 3000, ≤ 10 fields of ≤ 2000, and a
  top-level ``text`` fallback (what notifications and screen readers show). Text is truncated at a
  safe point: never inside a ``<link|label>``, an ``&amp;`` entity or a code span.
- SNS: Subject < 100 characters, ASCII only, one line. ``MessageStructure=json`` with a plain-text
  ``default``, the same text for ``email`` and a one-line ``sms``. With chat notifications on,
  ``default`` carries the Amazon Q Developer in chat applications custom schema instead (that
  service only renders that schema and reads ``default``); email and SMS subscribers keep plain
  text through their own keys; SQS, Lambda and HTTPS subscribers then receive the JSON schema.
  Message attributes ``severity``, ``proxy`` and ``transition`` allow subscription filter policies.

A proxy of an organization (a report keyed ``<account>:<region>:<name>``, see :mod:`pinwatch.scope`)
is named by its name with its account and Region in every channel: the headline (Slack header and
fallback, e-mail, SMS, chat title), Slack fields, an e-mail line, the chat metadata, and SNS message
attributes ``account`` and ``region`` next to ``proxy`` (then the bare name), so a subscription filter
policy can route one account's alerts. Its RDS console link opens the proxy's own Region.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pinwatch.alerts.policy import RuleDecision, Transition
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.records import ReasonCount
from pinwatch.scope import Scope, split_key

SlackMention = Literal["here", "channel", "none"]

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks), counted conservatively
# in UTF-16 code units because an emoji may count as two characters.
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_MAX_FIELDS = 10
SLACK_CONTEXT_MAX_ELEMENTS = 10
SLACK_FALLBACK_MAX = 3000
# SNS limits (Publish API reference).
SNS_SUBJECT_MAX = 99  # "must be less than 100 characters"
SNS_MESSAGE_MAX_BYTES = 256 * 1024
SMS_MAX = 140

DIGEST_MAX = 120  # statement digests are shown, never dumped
REASON_TEXT_MAX = 110
MAX_REASONS = 5
MAX_HINT_REASONS = 3
HINTS_PER_REASON = 2

# Figures in ProxyReport.figures are keyed by CloudWatch metric name (see pinwatch.metrics).
CLIENT_CONNECTIONS = "ClientConnections"
DATABASE_CONNECTIONS = "DatabaseConnections"
MAX_ALLOWED = "MaxDatabaseConnectionsAllowed"
PINNED = "DatabaseConnectionsCurrentlySessionPinned"
IN_TRANSACTION = "DatabaseConnectionsCurrentlyInTransaction"
BORROWED = "DatabaseConnectionsCurrentlyBorrowed"
BORROW_LATENCY_US = "DatabaseConnectionsBorrowLatency"

UNDERSIZED_POOL = "undersized_pool"
POOL_FIX_HEADING = "What to change: pool size"

_EMOJI = {Severity.CRITICAL: "🔴", Severity.WARNING: "🟠", Severity.INFO: "🔵", Severity.OK: "🟢"}
_RESOLVED_EMOJI = "✅"

# Short titles for the headline; the finding's summary sentence carries the detail.
RULE_TITLES: Mapping[str, str] = {
    "pinned_share": "connections pinned",
    "multiplexing_lost": "multiplexing lost",
    "pool_pressure": "connection pool nearly full",
    "undersized_pool": "connection pool too small",
    "exhaustion_forecast": "pool exhaustion forecast",
    "open_transactions": "open transactions holding connections",
    "borrow_latency": "slow connection borrow",
    "connection_setup_failed": "database connections failing to open",
    "no_connections_allowed": "no database connections allowed",
    "enhanced_logging_off": "enhanced logging off",
    "proxy_unavailable": "proxy unavailable",
    "proxy_not_found": "proxy not found",
    "not_checked": "not checked",
    "member_unreachable": "member account unreachable",
}

# The organization contract's key for a finding about a whole member (account, Region) rather than
# one proxy, e.g. its read role missing: ``<account>:<region>:*`` (docs/organization.md).
EVERY_PROXY = "*"


@dataclass(frozen=True, slots=True)
class RenderSettings:
    region: str | None = None
    dashboard_url: str | None = None
    mention_on_critical: SlackMention = "here"
    chat_notifications: bool = False


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One rule in a message: what happened to it and how bad it is (was, for a resolution)."""

    rule: str
    transition: Transition
    severity: Severity
    previous_severity: Severity | None
    summary: str
    details: tuple[str, ...] = ()
    active_since_ms: int | None = None
    retry: bool = False

    @property
    def resolved(self) -> bool:
        return self.transition is Transition.RESOLVED

    @classmethod
    def from_decision(cls, decision: RuleDecision) -> AlertItem:
        transition = decision.shown_transition
        if transition is None:
            raise ValueError(f"rule {decision.rule} has nothing to announce")
        before, after, finding = decision.before, decision.after, decision.finding
        if transition is Transition.RESOLVED:
            severity = after.last_notified_severity or before.last_notified_severity or Severity.WARNING
            # Say how things are now; without a current finding, what was last reported.
            last = after.summary or before.summary
            summary = f"Now: {finding.summary}" if finding is not None else (f"Last reported: {last}" if last else "")
        else:
            severity = after.severity
            summary = finding.summary if finding is not None else after.summary
        return cls(
            rule=decision.rule,
            transition=transition,
            severity=severity,
            previous_severity=before.last_notified_severity if transition is Transition.ESCALATED else None,
            summary=summary,
            details=finding.details if finding is not None and transition is not Transition.RESOLVED else (),
            active_since_ms=after.first_active_ms,
            retry=decision.transition is None,
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """What one message is about: one proxy, the rules it announces (most severe first), when."""

    report: ProxyReport
    items: tuple[AlertItem, ...]
    now_ms: int

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("an alert needs at least one item")

    @classmethod
    def from_decisions(cls, report: ProxyReport, decisions: Sequence[RuleDecision], now_ms: int) -> Alert:
        return cls(report, tuple(AlertItem.from_decision(d) for d in decisions), now_ms)

    @property
    def lead(self) -> AlertItem:
        return self.items[0]

    @property
    def resolved(self) -> bool:
        return all(i.resolved for i in self.items)

    @property
    def severity(self) -> Severity:
        return self.lead.severity

    @property
    def transition(self) -> Transition:
        return self.lead.transition


# ---------------------------------------------------------------------------------------------
# Neutral parts shared by every format


def rule_title(rule: str, report: ProxyReport) -> str:
    if rule == "exhaustion_forecast" and report.exhaustion_eta_minutes is not None:
        return f"pool exhausted in ~{_minutes(report.exhaustion_eta_minutes)}"
    in_use, label = _in_use(report)
    if rule == "pinned_share":
        pct = _pct(_figure(report, PINNED), in_use)
        if pct is not None:
            return f"{pct:.0f}% of {label} pinned"
    if rule == "pool_pressure":
        pct = _pct(in_use, _figure(report, MAX_ALLOWED))
        if pct is not None:
            return f"pool {pct:.0f}% used"
    return RULE_TITLES.get(rule, rule.replace("_", " "))


def proxy_label(key: str, markup: Markup = "plain") -> str:
    """How a message names a proxy: ``orders-db``, or ``orders-db (111111111111, eu-west-1)`` in an organization.

    The name is made inert for ``markup``; account and Region are validated digits and a Region code.
    """
    scope, name = split_key(key)
    if scope is not None and name == EVERY_PROXY:
        return f"all proxies {_where(scope)}"
    shown = untrusted(name, markup)
    return shown if scope is None else f"{shown} {_where(scope)}"


def _where(scope: Scope) -> str:
    return f"({scope.account}, {scope.region})"


def _headline_parts(alert: Alert) -> tuple[str, str, str]:
    """(severity label, emoji, title) of the headline."""
    lead = alert.lead
    label = "RESOLVED" if alert.resolved else lead.severity.value.upper()
    mark = _RESOLVED_EMOJI if alert.resolved else _EMOJI[lead.severity]
    title = RULE_TITLES.get(lead.rule, lead.rule.replace("_", " ")) if alert.resolved else None
    return label, mark, title or rule_title(lead.rule, alert.report)


def headline(alert: Alert, *, emoji: bool = True, separator: str = " · ", markup: Markup = "plain") -> str:
    """The one-line summary. ``plain`` for text and Slack's plain_text header (the fallback escapes it whole)."""
    label, mark, title = _headline_parts(alert)
    parts = [f"{mark} {label}" if emoji else label, proxy_label(alert.report.proxy, markup), title]
    return separator.join(parts)


def what_happened(item: AlertItem, now_ms: int) -> str:
    """``critical, escalated from warning``, ``warning, still active after 2 h 05 min``, ``resolved after 42 min``…"""
    since = _duration(now_ms - item.active_since_ms) if item.active_since_ms is not None else None
    severity = item.severity.value
    if item.transition is Transition.NEW:
        text = f"{severity}, new"
    elif item.transition is Transition.ESCALATED:
        previous = item.previous_severity.value if item.previous_severity else "a lower severity"
        text = f"{severity}, escalated from {previous}"
    elif item.transition is Transition.RENOTIFY:
        text = f"{severity}, still active after {since}" if since else f"{severity}, still active"
    else:
        text = f"resolved after {since} active, was {severity}" if since else f"resolved, was {severity}"
    return text + " (delivery retried)" if item.retry else text


def item_title(rule: str) -> str:
    """The rule's name for people: ``Pool exhaustion forecast``."""
    title = RULE_TITLES.get(rule, rule.replace("_", " "))
    return title[:1].upper() + title[1:]


def numbers(report: ProxyReport) -> list[tuple[str, str]]:
    """(label, value) pairs for the figures the report has data for, in reading order."""
    clients = _figure(report, CLIENT_CONNECTIONS)
    db = _figure(report, DATABASE_CONNECTIONS)
    in_use, _ = _in_use(report)
    cap = _figure(report, MAX_ALLOWED)
    pinned = _figure(report, PINNED)
    in_tx = _figure(report, IN_TRANSACTION)
    latency = _figure(report, BORROW_LATENCY_US)
    borrowed = _figure(report, BORROWED) is not None
    rows: list[tuple[str, str]] = []
    if clients is not None:
        rows.append(("Client connections", _count(clients)))
    if in_use is not None:
        used = _pct(in_use, cap)
        label = "DB connections in use / max" if borrowed else "DB connections / max"
        rows.append((label, f"{_count(in_use)} / {_count(cap)} ({used:.0f}%)" if used is not None else _count(in_use)))
    if borrowed and db is not None and in_use is not None and db > in_use:
        # Idle pooled connections are open but not load: shown apart so the pool does not look busier.
        rows.append(("DB connections open", f"{_count(db)} ({_count(db - in_use)} idle in the pool)"))
    if pinned is not None:
        share = _pct(pinned, in_use)
        rows.append(("Pinned", f"{_count(pinned)} ({share:.0f}%)" if share is not None else _count(pinned)))
    if in_tx is not None:
        rows.append(("In transaction", _count(in_tx)))
    if clients is not None and in_use:
        rows.append(("Clients per DB connection" + (" in use" if borrowed else ""), f"{clients / in_use:.2f}"))
    if report.exhaustion_eta_minutes is not None:
        rows.append(("Pool exhausted in", f"~{_minutes(report.exhaustion_eta_minutes)}"))
    if latency is not None:
        rows.append(("Borrow latency", f"{latency / 1000:,.1f} ms"))
    return rows


def top_reasons(report: ProxyReport) -> tuple[str, tuple[ReasonCount, ...]]:
    """The reasons to show and their heading: the last hour, or all time when the hour had none."""
    if report.top_reasons_last_hour:
        return "Top pinning reasons, last hour", report.top_reasons_last_hour[:MAX_REASONS]
    if report.top_reasons_all_time:
        return "Top pinning reasons, all time (none in the last hour)", report.top_reasons_all_time[:MAX_REASONS]
    return "", ()


def pool_fix_lines(report: ProxyReport) -> list[str]:
    """The fixes for a pool that is too small, when that is the proxy's problem (it outranks the pinning).

    ``undersized_pool`` reaches warning only when pins do not dominate, so whenever these lines
    exist they lead: the pinning hints come after them.
    """
    for finding in report.findings:
        if finding.rule == UNDERSIZED_POOL and finding.severity.rank >= Severity.WARNING.rank:
            return list(finding.details)
    return []


def _item_details(item: AlertItem, report: ProxyReport) -> tuple[str, ...]:
    """An item's detail lines, unless they are shown in a section of their own (the pool-size fixes)."""
    if item.rule == UNDERSIZED_POOL and pool_fix_lines(report):
        return ()
    return item.details


def hint_lines(report: ProxyReport) -> list[str]:
    """The concrete advice for the leading reasons, best first, without repeats."""
    _, reasons = top_reasons(report)
    order = [r.reason for r in reasons[:MAX_HINT_REASONS]] or list(report.hints)[:MAX_HINT_REASONS]
    seen: set[str] = set()
    lines: list[str] = []
    for reason in order:
        for hint in report.hints.get(reason, ())[:HINTS_PER_REASON]:
            if hint not in seen:
                seen.add(hint)
                lines.append(hint)
    return lines


def notes(alert: Alert) -> list[str]:
    """Context that is not itself alerting: info findings and other rules still active."""
    announced = {i.rule for i in alert.items}
    lines = []
    for finding in _sorted_findings(alert.report.findings):
        if finding.rule in announced:
            continue
        if finding.severity is Severity.INFO:
            lines.append(finding.summary)
        elif finding.severity.rank >= Severity.WARNING.rank:
            lines.append(f"Also {finding.severity.value}: {finding.summary}")
    return lines


def capture_lines(report: ProxyReport, markup: Markup = "plain") -> list[str]:
    """What reason capture did, and how much of the window the reasons cover (pinwatch.capture).

    Said whenever capture acted or runs, so a top reason from a short capture is not overstated.
    The reason and error carry AWS error texts: they are made inert for ``markup``; the rest is
    pinwatch's own wording.
    """
    capture = report.capture
    if capture is None:
        return []
    reason = untrusted(capture.reason, markup)
    error = untrusted(capture.error or "", markup)
    lines: list[str] = []
    since = _time_of_day(capture.since_ms) if capture.since_ms is not None else None
    if capture.status == "started":
        lines.append(
            f"Reason capture started: pinwatch switched enhanced logging on at {since}; "
            "reasons follow in the next checks."
        )
    elif capture.status == "capturing":
        lines.append(f"Capturing reasons since {since} (pinwatch switched enhanced logging on; {capture.mode}).")
    elif capture.status == "stopped":
        lines.append(f"Reason capture stopped at {since}: {reason}; enhanced logging is off again.")
    elif capture.status == "released":
        lines.append(f"Reason capture ended: {reason}.")
    elif capture.status == "failed":
        starting = capture.reason.startswith("could not switch enhanced logging on")
        lines.append(f"Reason capture did not start: {error}." if starting else f"Reason capture: {reason}.")
    elif capture.status == "planned":
        lines.append(f"Reason capture {reason}.")
    if capture.covered_minutes is not None and capture.window_minutes is not None and capture.status != "started":
        lines.append(
            f"Reasons from the last {capture.covered_minutes} of {capture.window_minutes} minutes "
            "(enhanced logging was off before): the top reason may not be the whole story."
        )
    return lines


def console_url(proxy: str, region: str | None) -> str | None:
    if not region:
        return None
    return f"https://console.aws.amazon.com/rds/home?region={quote(region, safe='')}#proxy-details:id={quote(proxy, safe='')}"


def links(alert: Alert, settings: RenderSettings) -> list[tuple[str, str]]:
    # An organization's proxy lives in its own Region, not the deployment's. The console opens in
    # whichever account the reader is signed in to: the account is in the message, not the link.
    scope, name = split_key(alert.report.proxy)
    region = scope.region if scope is not None else settings.region
    console = console_url(name, region) if name != EVERY_PROXY or scope is None else None
    found = [("Dashboard", settings.dashboard_url), ("RDS console", console)]
    return [(label, url) for label, url in found if url]


# ---------------------------------------------------------------------------------------------
# Slack


def render_slack(alert: Alert, settings: RenderSettings) -> dict[str, Any]:
    """The webhook payload: ``{"text": fallback, "blocks": [...]}``."""
    title = headline(alert)
    mention = _mention(alert, settings)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _truncate(title, SLACK_HEADER_MAX), "emoji": True}}
    ]

    lines = [mention] if mention else []
    for item in alert.items:
        lines.append(f"*{_plain(item_title(item.rule))}* — {_escape(what_happened(item, alert.now_ms))}")
        if item.summary:
            lines.append(_text(item.summary))
        lines.extend(f"• {_text(d)}" for d in _item_details(item, alert.report))
    main: dict[str, Any] = {"type": "section", "text": _mrkdwn(_truncate_mrkdwn("\n".join(lines), SLACK_SECTION_MAX))}
    fields = [
        _mrkdwn(_truncate_mrkdwn(f"*{label}*\n{_escape(value)}", SLACK_FIELD_MAX))
        for label, value in [*_place_fields(alert.report), *numbers(alert.report)]
    ]
    if fields:
        main["fields"] = fields[:SLACK_MAX_FIELDS]
    blocks.append(main)
    blocks.extend(_slack_capture(alert.report))

    if not alert.resolved:
        fixes = pool_fix_lines(alert.report)
        if fixes:
            text = "\n".join([f"*{POOL_FIX_HEADING}*", *(f"• {_text(f)}" for f in fixes)])
            blocks.append({"type": "section", "text": _mrkdwn(_truncate_mrkdwn(text, SLACK_SECTION_MAX))})
        heading, reasons = top_reasons(alert.report)
        if reasons:
            blocks.append({"type": "divider"})
            text = "\n".join([f"*{heading}*", *(_slack_reason(i, r) for i, r in enumerate(reasons, 1))])
            blocks.append({"type": "section", "text": _mrkdwn(_truncate_mrkdwn(text, SLACK_SECTION_MAX))})
        hints = hint_lines(alert.report)
        if hints:
            text = "\n".join(["*What to change*", *(f"• {_text(h)}" for h in hints)])
            blocks.append({"type": "section", "text": _mrkdwn(_truncate_mrkdwn(text, SLACK_SECTION_MAX))})
        extra = notes(alert)
        if extra:
            elements = [_mrkdwn(_truncate_mrkdwn(f"ℹ️ {_text(n)}", SLACK_SECTION_MAX)) for n in extra]
            blocks.append({"type": "context", "elements": elements[:SLACK_CONTEXT_MAX_ELEMENTS]})

    footer = [f"<{_escape(url)}|{label}>" for label, url in links(alert, settings)]
    footer.append(f"pinwatch · checked {_clock(alert.report.checked_at_ms or alert.now_ms)}")
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(footer))]})

    # The fallback is what notifications show; Slack reads it as mrkdwn too, so it is escaped.
    fallback = _escape(title + (f": {_one_line(alert.lead.summary)}" if alert.lead.summary else ""))
    short = _cut_line(fallback, SLACK_FALLBACK_MAX - 20)
    fallback = short if short == fallback else short + "…"
    return {"text": f"{mention} {fallback}" if mention else fallback, "blocks": _cap_blocks(blocks)}


def _place_fields(report: ProxyReport) -> list[tuple[str, str]]:
    """Account and Region of an organization's proxy, as the first fields (numbers come to 8 at most)."""
    scope, _ = split_key(report.proxy)
    return [] if scope is None else [("Account", scope.account), ("Region", scope.region)]


def _slack_capture(report: ProxyReport) -> list[dict[str, Any]]:
    lines = capture_lines(report, "mrkdwn")
    if not lines:
        return []
    text = "\n".join(["*Reason capture*", *lines])
    return [{"type": "section", "text": _mrkdwn(_truncate_mrkdwn(text, SLACK_SECTION_MAX))}]


def _slack_reason(index: int, reason: ReasonCount) -> str:
    line = f"{index}. `{_code(reason.reason)}` — *{reason.count:,}* pin{'s' if reason.count != 1 else ''}"
    if reason.reason_text:
        line += f" · {untrusted(reason.reason_text, 'mrkdwn', REASON_TEXT_MAX)}"
    if reason.example_digest:
        line += f"\n      e.g. `{_code(reason.example_digest, DIGEST_MAX)}`"
    return line


def _mention(alert: Alert, settings: RenderSettings) -> str:
    # Page people when something becomes critical; reminders and resolutions stay quiet.
    if settings.mention_on_critical == "none" or alert.severity is not Severity.CRITICAL:
        return ""
    if alert.transition not in (Transition.NEW, Transition.ESCALATED):
        return ""
    return f"<!{settings.mention_on_critical}>"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three Slack asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


Markup = Literal["mrkdwn", "code", "plain"]


def untrusted(text: str, markup: Markup = "mrkdwn", limit: int | None = None) -> str:
    """Text from outside pinwatch (digests, reason texts, proxy names, API errors) made inert.

    Every renderer passes such text through here. The text becomes one line (a newline cannot
    forge a line of the message, control characters go), is cut to ``limit`` before it is
    escaped (so a cut never splits an entity), and then:

    - ``mrkdwn`` (Slack and the Amazon Q chat schema, which Slack renders as mrkdwn): ``&``, ``<``
      and ``>`` escaped as Slack asks ("Formatting text for app surfaces: Escaping text"), so no
      ``<!channel>``, ``<!here>`` or ``<url|label>`` can form; backticks become ``'`` so no code
      span opens or closes;
    - ``code``: the same, for text placed inside a code span (a backtick would end the span);
    - ``plain`` (e-mail text, SMS): one line, nothing else — plain text has no markup.
    """
    line = _one_line("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text))
    if limit is not None:
        line = _truncate(line, limit)
    if markup == "plain":
        return line
    return _escape(line.replace("`", "'"))


def _text(text: str) -> str:
    """Prose that may carry `code`: escaped, one line, and a stray backtick cannot open a code span."""
    text = _escape(_one_line(text))
    if text.count("`") % 2:
        head, _, tail = text.rpartition("`")
        text = f"{head}'{tail}"
    return text


def _plain(text: str) -> str:
    """Text from proxy logs: shown as is, never as markup."""
    return untrusted(text, "mrkdwn")


def _code(text: str, limit: int | None = None) -> str:
    """Text for inside a code span: escaped, with backticks (which would end the span) swapped."""
    return untrusted(text, "code", limit)


def _cap_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(blocks) <= SLACK_MAX_BLOCKS:
        return blocks
    # Keep the header and the first blocks, and always the footer with the links.
    kept = [*blocks[: SLACK_MAX_BLOCKS - 2], blocks[-1]]
    omitted = len(blocks) - len(kept)
    kept.insert(-1, {"type": "context", "elements": [_mrkdwn(f"… {omitted} more blocks omitted")]})
    return kept


# ---------------------------------------------------------------------------------------------
# Plain text (SNS default / email) and the Amazon Q Developer custom notification


def render_text(alert: Alert, settings: RenderSettings) -> str:
    out = [headline(alert, emoji=False, separator=" - "), ""]
    scope, name = split_key(alert.report.proxy)
    if scope is not None:
        which = "Every proxy" if name == EVERY_PROXY else f"Proxy {untrusted(name, 'plain')}"
        out += [f"{which} in account {scope.account}, Region {scope.region}", ""]
    for item in alert.items:
        out.append(f"* {item_title(item.rule)} ({what_happened(item, alert.now_ms)})")
        if item.summary:
            out.append(f"  {untrusted(item.summary, 'plain')}")
        out.extend(f"  - {untrusted(d, 'plain')}" for d in _item_details(item, alert.report))
    rows = numbers(alert.report)
    if rows:
        width = max(len(label) for label, _ in rows)
        out += ["", "Numbers (latest minute)"]
        out += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    out += _text_capture(alert.report)
    if not alert.resolved:
        fixes = pool_fix_lines(alert.report)
        if fixes:
            out += ["", POOL_FIX_HEADING]
            out += [f"  - {untrusted(f, 'plain')}" for f in fixes]
        heading, reasons = top_reasons(alert.report)
        if reasons:
            out += ["", heading]
            for i, r in enumerate(reasons, 1):
                line = f"  {i}. {untrusted(r.reason, 'plain')}: {r.count:,} pin{'s' if r.count != 1 else ''}"
                if r.reason_text:
                    line += f" - {untrusted(r.reason_text, 'plain', REASON_TEXT_MAX)}"
                out.append(line)
                if r.example_digest:
                    out.append(f"     e.g. {untrusted(r.example_digest, 'plain', DIGEST_MAX)}")
        hints = hint_lines(alert.report)
        if hints:
            out += ["", "What to change"]
            out += [f"  - {untrusted(h, 'plain')}" for h in hints]
        extra = notes(alert)
        if extra:
            out += ["", "Notes"]
            out += [f"  - {untrusted(n, 'plain')}" for n in extra]
    found = links(alert, settings)
    if found:
        out += ["", *(f"{label}: {url}" for label, url in found)]
    out += ["", f"-- pinwatch, checked {_clock(alert.report.checked_at_ms or alert.now_ms)}"]
    return "\n".join(out)


def _text_capture(report: ProxyReport) -> list[str]:
    lines = capture_lines(report)
    return ["", "Reason capture", *(f"  {line}" for line in lines)] if lines else []


def render_sms(alert: Alert) -> str:
    text = headline(alert, emoji=False, separator=" ")
    return _truncate(_ascii_line(text), SMS_MAX)


def render_chat(alert: Alert, settings: RenderSettings, description_max: int = 4000) -> dict[str, Any]:
    """The Amazon Q Developer in chat applications custom notification (version 1.0)."""
    lines = []
    for item in alert.items:
        lines.append(f"*{item_title(item.rule)}* ({what_happened(item, alert.now_ms)})")
        if item.summary:
            lines.append(_text(item.summary))
    rows = numbers(alert.report)
    if rows:
        lines.append("")
        lines += [f"• {label}: {value}" for label, value in rows]
    capture = capture_lines(alert.report, "mrkdwn")
    if capture:
        lines += ["", *capture]
    if not alert.resolved:
        fixes = pool_fix_lines(alert.report)
        if fixes:
            lines += ["", f"*{POOL_FIX_HEADING}*", *(f"• {_text(f)}" for f in fixes)]
        heading, reasons = top_reasons(alert.report)
        if reasons:
            lines += ["", f"*{heading}*"]
            for i, r in enumerate(reasons, 1):
                digest = f" e.g. `{_code(r.example_digest, DIGEST_MAX)}`" if r.example_digest else ""
                lines.append(f"{i}. `{_code(r.reason)}`: {r.count:,}{digest}")
    found = links(alert, settings)
    if found:
        lines += ["", " · ".join(f"<{_escape(url)}|{label}>" for label, url in found)]
    steps = pool_fix_lines(alert.report) + hint_lines(alert.report)  # the pool size leads when it is the problem
    next_steps = [] if alert.resolved else [_text(_truncate(h, 300)) for h in steps[:5]]
    scope, name = split_key(alert.report.proxy)
    # The thread is the key: one thread per proxy, and two accounts' equal names never share one.
    place = {} if scope is None else {"account": scope.account, "region": scope.region}
    return {
        "version": "1.0",
        "source": "custom",
        "id": f"pinwatch:{alert.report.proxy}:{alert.lead.rule}:{alert.transition.value}:{alert.now_ms}",
        "content": {
            "textType": "client-markdown",
            "title": _truncate(headline(alert, markup="mrkdwn"), SLACK_HEADER_MAX),
            "description": _truncate("\n".join(lines), description_max),
            "nextSteps": next_steps,
            "keywords": [
                alert.severity.value,
                untrusted(name),
                *place.values(),
                *sorted({i.rule for i in alert.items}),
            ],
        },
        "metadata": {
            "threadId": alert.report.proxy,
            "summary": _truncate(headline(alert, emoji=False, separator=" - ", markup="mrkdwn"), SLACK_HEADER_MAX),
            "eventType": f"pinwatch.{alert.transition.value}",
            "enableCustomActions": False,
            "additionalContext": {
                "proxy": untrusted(name),
                **place,
                "severity": alert.severity.value,
                "transition": alert.transition.value,
                "rules": ",".join(i.rule for i in alert.items),
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# SNS


def render_sns(alert: Alert, settings: RenderSettings) -> dict[str, Any]:
    """``sns.publish`` keyword arguments (without ``TopicArn``), within SNS's limits."""
    scope, name = split_key(alert.report.proxy)
    subject = sns_subject(headline(alert, emoji=False, separator=" - ")) if scope is None else _scoped_subject(alert)
    attributes = {
        "severity": {"DataType": "String", "StringValue": alert.severity.value},
        "proxy": {"DataType": "String", "StringValue": name},
        "transition": {"DataType": "String", "StringValue": alert.transition.value},
    }
    if scope is not None:
        attributes["account"] = {"DataType": "String", "StringValue": scope.account}
        attributes["region"] = {"DataType": "String", "StringValue": scope.region}
    text = render_text(alert, settings)
    budget = SNS_MESSAGE_MAX_BYTES - _attributes_size(attributes) - len(subject)
    message = _sns_message(alert, settings, text)
    while len(message.encode("utf-8")) > budget and len(text) > 200:
        # Only absurd inputs get here (megabyte summaries); halve the prose until it fits.
        text = _truncate(text, max(len(text) // 2, 200))
        message = _sns_message(alert, settings, text, description_max=len(text))
    return {
        "Subject": subject,
        "Message": message,
        "MessageStructure": "json",
        "MessageAttributes": attributes,
    }


def _sns_message(alert: Alert, settings: RenderSettings, text: str, description_max: int = 4000) -> str:
    default = json.dumps(render_chat(alert, settings, description_max)) if settings.chat_notifications else text
    return json.dumps({"default": default, "email": text, "sms": render_sms(alert)}, ensure_ascii=False)


def sns_subject(text: str) -> str:
    """An SNS Subject: ASCII, printable, one line, under 100 characters, never empty."""
    return _truncate(_ascii_line(text), SNS_SUBJECT_MAX, ellipsis="...") or "pinwatch alert"


# A subject keeps the rule's title only when at least this much of it fits.
_SUBJECT_MIN_TITLE = 12


def _scoped_subject(alert: Alert) -> str:
    """The Subject for an organization's proxy: severity, account and Region always survive the 99 characters.

    Shortened in order of what matters least: the rule's title first (cut, then dropped), then the
    proxy's name. A 63-character name in ap-southeast-2 fits only that way.
    """
    scope, name = split_key(alert.report.proxy)
    assert scope is not None
    label, _, title = _headline_parts(alert)
    name = "all proxies" if name == EVERY_PROXY else _ascii_line(name)
    title, where = _ascii_line(title), _where(scope)
    head = f"{label} - {name} {where}"
    room = SNS_SUBJECT_MAX - len(head) - len(" - ")
    if len(title) <= room:
        return sns_subject(f"{head} - {title}")
    if room >= _SUBJECT_MIN_TITLE:
        return sns_subject(f"{head} - {_truncate(title, room, ellipsis='...')}")
    room = SNS_SUBJECT_MAX - len(f"{label} -  {where}")
    return sns_subject(f"{label} - {_truncate(name, room, ellipsis='...')} {where}")


def _attributes_size(attributes: Mapping[str, Mapping[str, str]]) -> int:
    return sum(len(k) + sum(len(v.encode("utf-8")) for v in a.values()) for k, a in attributes.items())


# ---------------------------------------------------------------------------------------------
# Text helpers


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    if utf16_len(text) <= limit:
        return text
    room = limit - utf16_len(ellipsis)
    out = text[:room]
    while out and utf16_len(out) > room:
        out = out[:-1]
    return out.rstrip() + ellipsis


def _truncate_mrkdwn(text: str, limit: int) -> str:
    """Cut Slack mrkdwn to ``limit`` without breaking a link, an entity or a code span.

    Whole lines are kept while they fit; a single overlong line is cut at a safe position.
    """
    if utf16_len(text) <= limit:
        return text
    marker = "\n…"
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        cost = utf16_len(line) + (1 if kept else 0)
        if used + cost + utf16_len(marker) > limit:
            if not kept:
                return _cut_line(line, limit - 1) + "…"
            break
        kept.append(line)
        used += cost
    return "\n".join(kept) + marker


def _cut_line(line: str, limit: int) -> str:
    if utf16_len(line) <= limit:
        return line
    cut = _truncate(line, limit, ellipsis="")
    # Back off out of an unfinished <link|label> or &entity;, then close an unbalanced code span.
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start != -1 and cut.find(closer, start) == -1:
            cut = cut[:start]
    if cut.count("`") % 2:
        cut = cut[: cut.rfind("`")]
    return cut.rstrip()


def _ascii_line(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in folded)
    return " ".join(printable.split())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _figure(report: ProxyReport, name: str) -> float | None:
    value = report.figures.get(name)
    return None if value is None else float(value)


def _in_use(report: ProxyReport) -> tuple[float | None, str]:
    """Connections in use (max of borrowed and pinned, as the check reads them) and what to call them.

    Reports without the borrowed gauge fall back to open connections, as the check does.
    """
    borrowed, pinned = _figure(report, BORROWED), _figure(report, PINNED)
    if borrowed is None:
        return _figure(report, DATABASE_CONNECTIONS), "DB connections"
    return max(borrowed, pinned or 0.0), "DB connections in use"


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def _count(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _minutes(value: float) -> str:
    return f"{max(value, 0):.0f} min" if value < 120 else _duration(round(value * 60_000))


def _duration(ms: int) -> str:
    minutes = max(ms, 0) // 60_000
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _time_of_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M UTC")


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.rule))
