"""The organization demo's verdicts: what must have happened for ``pinwatch demo --org`` to count as a success.

Each :class:`~pinwatch.local.demo.verdicts.Stage` names one end-to-end property of organization
mode (docs/organization.md): each account's counts exact and apart under its own key, the critical
alert naming the paged account and its Region on both channels, no critical alert for the healthy
account, the member alarms' events carrying the member, the paged account's first alert within
two minutes of its alarm event (not at the next sweep), a re-sent record and a retried one adding
nothing, and no errors anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinwatch.findings import Severity
from pinwatch.local.demo.org import HEALTHY, ORG_REGION, PAGED
from pinwatch.local.demo.verdicts import Stage, channel_failures, failed, slack_critical, slack_text
from pinwatch.records import Kind

# How soon after its member alarm's ALARM event the paged account's first alert must come, in simulated minutes.
# The event brings one check; the proxy stays hot after it (pinwatch.store.hot_state), so the pinning
# crossing a rule a minute or two later is alerted on then, not at the next sweep.
FIRST_ALERT_MINUTES = 2

if TYPE_CHECKING:
    from pinwatch.local.demo.org import OrgDemoResult


def verify_org(result: OrgDemoResult) -> list[Stage]:
    """The stages that make the organization demo a success, each with what was seen."""
    return [
        _exact_counts_per_account(result),
        _critical_names_the_account("Slack", [slack_text(m) for m in result.slack if slack_critical(m)]),
        _critical_names_the_account(
            "SNS", [f"{m.subject}\n{m.message}" for m in result.sns if m.attributes.get("severity") == "critical"]
        ),
        _healthy_account_not_paged(result),
        _alarm_events_name_the_member(result),
        _first_alert_follows_the_alarm(result),
        _resent_record(result),
        _retried_record(result),
        _metrics_exact(result),
        _no_errors(result),
    ]


def _exact_counts_per_account(result: OrgDemoResult) -> Stage:
    name = "each account's counts equal the lines it replayed, under its own key"
    problems: list[str] = []
    seen: list[str] = []
    for counts in result.counts:
        account = counts.member.scope.account
        expected = counts.expected
        pins = {key: n for key, n in expected.items() if key[0] in (Kind.PINNED, Kind.WOULD_PIN)}
        if not pins:
            problems.append(f"{account}: no pin line replayed")
        if counts.hourly != expected:
            problems.append(f"{account}: hourly {dict(counts.hourly)} != replayed {dict(expected)}")
        if counts.totals != expected:
            problems.append(f"{account}: running totals {dict(counts.totals)} != replayed {dict(expected)}")
        seen.append(f"{account} {sum(expected.values())}")
    keys = {c.member.key for c in result.counts}
    if result.keys_in_table != keys:
        problems.append(f"proxies in the table {sorted(result.keys_in_table)}, expected {sorted(keys)}")
    if problems:
        return Stage(name, False, "; ".join(problems))
    return Stage(name, True, f"lines per account: {', '.join(seen)}; keys {', '.join(sorted(keys))}")


def _critical_names_the_account(channel: str, critical_texts: list[str]) -> Stage:
    name = f"critical alert on {channel} names account {PAGED.account} and {ORG_REGION}"
    naming = [t for t in critical_texts if PAGED.account in t and ORG_REGION in t]
    if naming and len(naming) == len(critical_texts):
        return Stage(name, True, f"{len(naming)} critical message(s), each naming the account and Region")
    if not critical_texts:
        return Stage(name, False, "no critical message")
    return Stage(name, False, f"{len(critical_texts) - len(naming)} of {len(critical_texts)} do not name them")


def _healthy_account_not_paged(result: OrgDemoResult) -> Stage:
    name = f"the healthy account {HEALTHY.account} gets no critical alert"
    critical = [a for a in result.alerts if a.proxy.startswith(HEALTHY.prefix) and a.severity is Severity.CRITICAL] + [
        m for m in result.slack if slack_critical(m) and HEALTHY.account in slack_text(m)
    ]
    sns = [
        m
        for m in result.sns
        if m.attributes.get("severity") == "critical" and m.attributes.get("account") == HEALTHY.account
    ]
    any_alert = sorted({f"{a.rule} ({a.severity.value})" for a in result.alerts if a.proxy.startswith(HEALTHY.prefix)})
    if critical or sns:
        return Stage(name, False, f"{len(critical) + len(sns)} critical alert(s) or message(s) about it")
    checked = sum(1 for t in result.ticks for m in t.members if m.scope == HEALTHY)
    return Stage(
        name,
        True,
        f"checked in {checked} minutes; its alerts: {', '.join(any_alert) if any_alert else 'none'}",
    )


def _alarm_events_name_the_member(result: OrgDemoResult) -> Stage:
    name = "member alarm events carry the member's account and Region to the check"
    events = [(t, e) for t in result.ticks for e in t.contributor_events]
    paged = [
        (t, e)
        for t, e in events
        if (e.get("account"), e.get("region")) == (PAGED.account, PAGED.region)
        and e.get("detail", {}).get("state", {}).get("value") == "ALARM"
    ]
    # The check that event invoked read the paged member's proxy under its key.
    key = next(c.member.key for c in result.counts if c.member.scope == PAGED)
    read = [t for t, _ in paged if key in t.checked and any("contributor in ALARM" in w for w in t.triggers)]
    if paged and read:
        return Stage(
            name,
            True,
            f"{len(events)} contributor event(s); {PAGED} went ALARM in minute {paged[0][0].index} and "
            f"the check it invoked read {key}",
        )
    return Stage(name, False, f"{len(events)} contributor event(s), {len(paged)} from {PAGED} in ALARM")


def _first_alert_follows_the_alarm(result: OrgDemoResult) -> Stage:
    name = f"the paged account's first alert comes within {FIRST_ALERT_MINUTES} minutes of its alarm event"
    key = next(c.member.key for c in result.counts if c.member.scope == PAGED)
    alarmed = [
        t.index
        for t in result.ticks
        for e in t.contributor_events
        if (e.get("account"), e.get("region")) == (PAGED.account, PAGED.region)
        and e.get("detail", {}).get("state", {}).get("value") == "ALARM"
    ]
    alerted = [a.minute for a in result.alerts if a.proxy == key]
    if not alarmed:
        return Stage(name, False, f"no ALARM event from {PAGED}")
    if not alerted:
        return Stage(name, False, f"{PAGED} went ALARM in minute {alarmed[0]}; no alert about {key}")
    delay = alerted[0] - alarmed[0]
    return Stage(
        name,
        0 <= delay <= FIRST_ALERT_MINUTES,
        f"ALARM event in minute {alarmed[0]}, first alert in minute {alerted[0]}: {delay} minute(s) later",
    )


def _resent_record(result: OrgDemoResult) -> Stage:
    name = "a record the destination re-sent adds nothing"
    resent = [r for r in result.records if r.resent]
    batch = resent[0].batch_id if resent else None
    if batch is None:
        return Stage(name, False, "no record was re-sent")
    record = resent[0]
    applies = result.applies(batch)
    done = [r for r, error in applies if r is not None]
    applied = sum(r.applied_chunks for r in done)
    chunks = done[0].chunks if done else 0
    last = done[-1] if done else None
    ok = len(done) >= 2 and applied == chunks >= 1 and last is not None and last.applied_chunks == 0
    detail = (
        f"{record.scope.account if record.scope else '?'} {record.stream} ({record.lines} lines, minute "
        f"{record.minute}): {len(done)} deliveries, {applied} of {chunks} chunk(s) applied in all"
    )
    if last is not None:
        detail += f"; the re-sent copy applied {last.applied_chunks}, skipped {last.duplicate_chunks}"
    return Stage(name, ok, detail)


def _retried_record(result: OrgDemoResult) -> Stage:
    name = "a record whose write failed is retried by the mapping and counted once"
    failed = [bid for bid, r, error in result.applied if r is None and error]
    if not failed:
        return Stage(name, False, "no record's write failed")
    batch = failed[0]
    done = [r for r, _ in result.applies(batch) if r is not None]
    applied = sum(r.applied_chunks for r in done)
    chunks = done[0].chunks if done else 0
    stats = result.mapping
    ok = stats.partial_failures >= 1 and bool(done) and applied == chunks >= 1 and not stats.on_failure
    record = next((r for r in result.records if r.batch_id == batch), None)
    where = f"{record.scope.account if record and record.scope else '?'} minute {record.minute if record else '?'}"
    return Stage(
        name,
        ok,
        f"{where}: partial batch responses {stats.partial_failures}; {applied} of {chunks} chunk(s) applied on "
        f"retry; {stats.records_sent} records sent to the function for {len(result.records)} in the stream",
    )


def _metrics_exact(result: OrgDemoResult) -> Stage:
    name = "stream function metrics (EMF PinEvents) equal the replayed pins"
    pins = sum(n for c in result.counts for (kind, _), n in c.expected.items() if kind is Kind.PINNED)
    return Stage(name, result.emf_pin_events == pins, f"PinEvents {result.emf_pin_events} of {pins}")


def _no_errors(result: OrgDemoResult) -> Stage:
    name = "functions ran and channels accepted every message"
    problems = [f"minute {t.index}: {e}" for t in result.ticks for e in t.errors]
    problems += channel_failures(result.alerts)
    injected = sum(1 for t in result.ticks if t.throttled)
    failed_writes = sum(1 for _, r, error in result.applied if r is None and error)
    if failed_writes != injected:
        problems.append(f"{failed_writes} failed writes, {injected} throttled on purpose")
    if result.mapping.function_errors:
        problems.append(f"{result.mapping.function_errors} stream function error(s)")
    if result.mapping.on_failure:
        problems.append(f"{len(result.mapping.on_failure)} batch(es) given up to the on-failure destination")
    if result.parked:
        problems.append(f"{result.parked} record(s) parked")
    if problems:
        return failed(name, problems)
    return Stage(
        name,
        True,
        f"{result.mapping.invocations} stream and {len(result.ticks)} scheduled check invocations, no errors",
    )
