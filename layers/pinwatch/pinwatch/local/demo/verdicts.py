"""The demo's verdicts: what must have happened in the replay for the demo to count as a success.

Each :class:`Stage` names one end-to-end property (a critical alert with its ETA on each channel,
reason capture starting with the first alert, reasons only once logging is on, the culprit and its
fix in a later alert, capture off again after the fix, every alert resolved after the fix, exact
table counts and metrics, a redelivered payload counted once, no errors) and says what was seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pinwatch.records import Kind

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pinwatch.local.demo.replay import AlertEvent, DemoResult, SlackMessage


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    ok: bool
    detail: str


def verify(result: DemoResult) -> list[Stage]:
    """The stages that make the demo a success, each with what was seen."""
    fix = result.incident.fix
    return [
        _critical_with_eta("Slack", [slack_text(m) for m in result.slack if slack_critical(m)]),
        _critical_with_eta("SNS", [m.message for m in result.sns if m.attributes.get("severity") == "critical"]),
        _capture_starts_with_first_alert(result),
        _reasons_once_logging_is_on(result),
        _culprit_after_capture(result),
        _capture_off_after_fix(result, fix),
        _resolved_after_fix(result, fix),
        _exact_counts(result),
        _redelivery(result),
        _metrics_exact(result),
        _no_errors(result),
    ]


def slack_text(message: SlackMessage) -> str:
    """The webhook payload as one string, for looking for a phrase anywhere in it."""
    return json.dumps(message.payload, ensure_ascii=False)


def slack_critical(message: SlackMessage) -> bool:
    blocks = message.payload.get("blocks") or [{}]
    header = blocks[0].get("text", {}).get("text", "")
    return "CRITICAL" in header


def channel_failures(alerts: Iterable[AlertEvent]) -> list[str]:
    """Each notification a channel did not accept, one line each."""
    return [
        f"minute {a.minute}: {a.rule} to {channel} {status}"
        for a in alerts
        for channel, status in a.channels.items()
        if status != "accepted"
    ]


def failed(name: str, problems: list[str]) -> Stage:
    """A failed stage listing its first five problems (a broken run can have one per minute)."""
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return Stage(name, False, "; ".join(problems[:5]) + more)


def _critical_with_eta(channel: str, critical_texts: list[str]) -> Stage:
    name = f"critical alert with an exhaustion ETA on {channel}"
    with_eta = [t for t in critical_texts if "exhausted in ~" in t]
    if with_eta:
        return Stage(name, True, f"{len(critical_texts)} critical message(s), {len(with_eta)} with the ETA")
    detail = "no critical message" if not critical_texts else "critical messages carry no ETA"
    return Stage(name, False, detail)


def _capture_start(result: DemoResult) -> int | None:
    """The minute whose check switched enhanced logging on."""
    return next((t.minute.index for t in result.ticks if t.capture is not None and t.capture.status == "started"), None)


def _capture_starts_with_first_alert(result: DemoResult) -> Stage:
    name = "first alert: reasons unknown, reason capture started"
    if not result.slack:
        return Stage(name, False, "no Slack message")
    first = result.slack[0]
    text = slack_text(first)
    unknown = "pin reasons are unknown" in text
    started = "Reason capture started" in text
    ok = unknown and started and _capture_start(result) == first.minute
    seen = f"minute {first.minute}: says reasons unknown: {unknown}; says capture started: {started}"
    return Stage(name, ok, seen + f"; capture started in minute {_capture_start(result)}")


def _reasons_once_logging_is_on(result: DemoResult) -> Stage:
    name = "pin lines only once enhanced logging is on"
    start = _capture_start(result)
    before = [t for t in result.ticks if start is None or t.minute.index <= start]
    withheld = sum(t.withheld for t in before)
    logged_before = [t.minute.index for t in before if t.debug_logging]
    pins = sum(n for (kind, _), n in result.table_totals.items() if kind is Kind.PINNED)
    ok = start is not None and withheld > 0 and not logged_before and pins > 0
    return Stage(
        name,
        ok,
        f"{withheld} pin line(s) not written before capture (minute {start}); {pins} pins counted after it",
    )


def _culprit_after_capture(result: DemoResult) -> Stage:
    name = "a later alert names the culprit statement and its fix"
    start = _capture_start(result)
    later = [m for m in result.slack if start is not None and m.minute > start]
    for message in later:
        text = slack_text(message)
        if "set search_path" in text and "What to change" in text:
            coverage = "Reasons from the last" in text
            return Stage(name, True, f"minute {message.minute}: the digest, a fix, coverage shown: {coverage}")
    return Stage(name, False, f"{len(later)} message(s) after capture started, none with the digest and a fix")


def _capture_off_after_fix(result: DemoResult, fix: int) -> Stage:
    name = "reason capture switched enhanced logging off after the fix"
    stopped = [
        t.minute.index
        for t in result.ticks
        if t.minute.index >= fix and t.capture is not None and t.capture.status == "stopped"
    ]
    ok = bool(stopped) and result.debug_logging_after is False
    where = f"in minute {stopped[0]}" if stopped else "never"
    return Stage(name, ok, f"switched off {where}; enhanced logging at the end: {result.debug_logging_after}")


def _resolved_after_fix(result: DemoResult, fix: int) -> Stage:
    name = "every alert resolved after the fix, on both channels"
    opened = {a.rule for a in result.alerts if a.transition == "new"}
    resolved = {a.rule for a in result.alerts if a.transition == "resolved" and a.minute >= fix}
    slack = [m for m in result.slack if m.minute >= fix and "RESOLVED" in slack_text(m)]
    sns = [m for m in result.sns if m.minute >= fix and m.attributes.get("transition") == "resolved"]
    open_rules = sorted(opened - resolved)
    ok = bool(opened) and not open_rules and bool(slack) and bool(sns)
    detail = f"{len(resolved)} of {len(opened)} rules resolved; {len(slack)} Slack / {len(sns)} SNS resolved messages"
    if open_rules:
        detail += f"; still open: {', '.join(open_rules)}"
    return Stage(name, ok, detail)


def _exact_counts(result: DemoResult) -> Stage:
    name = "summary table counts equal the replayed lines"
    stored = {key: n for key, n in result.expected.items() if key[0] is not Kind.OTHER}
    pins_and_would = {key: n for key, n in stored.items() if key[0] is not Kind.UNPARSED}
    mismatches = [
        f"{kind.value}/{reason}: replayed {n}, hourly {result.table_hourly.get((kind, reason), 0)}"
        for (kind, reason), n in sorted(stored.items(), key=str)
        if result.table_hourly.get((kind, reason), 0) != n
    ]
    mismatches += [
        f"{kind.value}/{reason}: replayed {n}, total {result.table_totals.get((kind, reason), 0)}"
        for (kind, reason), n in sorted(pins_and_would.items(), key=str)
        if result.table_totals.get((kind, reason), 0) != n
    ]
    extra = set(result.table_hourly) - set(stored)
    mismatches += [
        f"{kind.value}/{reason}: not replayed, stored {result.table_hourly[(kind, reason)]}" for kind, reason in extra
    ]
    if mismatches:
        return Stage(name, False, "; ".join(mismatches))
    return Stage(name, True, f"{sum(stored.values())} lines in {len(stored)} (kind, reason) keys, each exact")


def _redelivery(result: DemoResult) -> Stage:
    name = "a payload delivered twice is counted once"
    pairs = result.redeliveries
    if not pairs:
        return Stage(name, False, "no payload was delivered twice")
    first, again = pairs[0]
    applied_first = int(first.summary.get("appliedChunks", 0))
    applied_again = int(again.summary.get("appliedChunks", 0))
    duplicates = int(again.summary.get("duplicateChunks", 0))
    ok = applied_first >= 1 and applied_again == 0 and duplicates == applied_first
    return Stage(
        name,
        ok,
        f"first delivery applied {applied_first} chunk(s); the second applied {applied_again}, skipped {duplicates}",
    )


def _metrics_exact(result: DemoResult) -> Stage:
    name = "ingest metrics (EMF PinEvents) equal the replayed pins"
    pins = sum(n for (kind, _), n in result.expected.items() if kind is Kind.PINNED)
    would = sum(n for (kind, _), n in result.expected.items() if kind is Kind.WOULD_PIN)
    ok = result.emf_pin_events == pins and result.emf_would_pin_events == would
    return Stage(
        name,
        ok,
        f"PinEvents {result.emf_pin_events} of {pins}, WouldPinEvents {result.emf_would_pin_events} of {would}",
    )


def _no_errors(result: DemoResult) -> Stage:
    name = "functions ran and channels accepted every message"
    problems = [f"minute {t.minute.index}: {e}" for t in result.ticks for e in t.errors]
    problems += channel_failures(result.alerts)
    if problems:
        return failed(name, problems)
    calls = len(result.ingest_calls)
    return Stage(name, True, f"{calls} ingest and {len(result.ticks)} check invocations, no errors")
