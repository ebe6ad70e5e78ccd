"""The alert policy: when a proxy's findings become a notification, and what state that leaves.

Pure. State is kept per proxy+rule (never per event) and moves through two statuses:

- ``ok`` → ``active`` when a rule's finding reaches the alerting severity (warning by default): **new**.
- While active: severity above the last one people were told about → **escalated** (at once, no
  cooldown); otherwise a reminder every ``renotify_ms`` → **renotify**. A drop in severity is
  recorded but not announced (people already know it was worse; the next reminder says "warning").
- ``active`` → ``ok`` only after ``resolve_after_checks`` healthy checks with no unhealthy check in
  between (hysteresis): **resolved**.

Findings with ``insufficient_data`` never raise a critical alert and never count as healthy: below
warning they are "unknown" and leave the state alone; at warning or above they hold an active
alert (or open a warning one) without escalating to critical or de-escalating from it. Checks that
are unknown neither extend nor break a healthy streak, like CloudWatch's "missing data: ignore".

A proxy that is gone (a run over every proxy in the region no longer finds it) resolves every open alert
at once, without the healthy streak: nothing will ever be observed about it again. Its rules go
out in one "resolved" message, and the resolved states then expire from the table. A gone report
may carry a finding whose summary says why instead of "no longer found" (organization mode: a
member account or Region that is no longer enrolled).

Delivery feeds back into state: a rule's transition only takes effect once at least one channel
accepted the message (or every failure was permanent, so a retry could not help). A channel that
failed transiently stays *pending* for that rule and gets the message again on the next run, until
it accepts, a newer transition supersedes it, or the reminder interval passes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from pinwatch.findings import Finding, Severity
from pinwatch.scope import split_key
from pinwatch.timebase import HOUR_MS, MINUTE_MS

GONE_STATUS = "gone"  # ProxyReport.status of a proxy that had open alerts and no longer exists


class AlertStatus(StrEnum):
    OK = "ok"
    ACTIVE = "active"


class Transition(StrEnum):
    NEW = "new"
    ESCALATED = "escalated"
    RENOTIFY = "renotify"
    RESOLVED = "resolved"


class DeliveryStatus(StrEnum):
    """How one channel answered one message."""

    ACCEPTED = "accepted"
    FAILED = "failed"  # transient (timeout, 5xx, rate limit beyond the run's budget): retried next run
    REJECTED = "rejected"  # permanent (bad payload, revoked webhook, archived channel): not retried
    SKIPPED = "skipped"  # not sent (dry run, or nothing for this channel)


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the policy remembers about one rule of one proxy between check runs.

    ``version``, ``lease_owner`` and ``lease_until_ms`` belong to the state store (optimistic
    concurrency between overlapping runs); the policy carries them through untouched.
    """

    proxy: str
    rule: str
    status: AlertStatus = AlertStatus.OK
    severity: Severity = Severity.OK  # latest observed while active; ok once resolved
    first_active_ms: int | None = None  # start of the current (or last) active episode
    last_notified_ms: int | None = None
    last_notified_severity: Severity | None = None
    last_transition: Transition | None = None
    healthy_streak: int = 0
    accepted_channels: frozenset[str] = frozenset()  # channels that accepted the last notification
    pending_channels: frozenset[str] = frozenset()  # channels that still owe it (failed transiently)
    summary: str = ""  # the finding's sentence at the last unhealthy check (for the resolved message)
    resolved_ms: int | None = None
    version: int = 0  # 0 = never stored
    lease_owner: str | None = None
    lease_until_ms: int | None = None

    @property
    def active(self) -> bool:
        return self.status is AlertStatus.ACTIVE

    def content(self) -> tuple[object, ...]:
        """Everything but the storage bookkeeping: equal content = nothing to write."""
        return (
            self.status,
            self.severity,
            self.first_active_ms,
            self.last_notified_ms,
            self.last_notified_severity,
            self.last_transition,
            self.healthy_streak,
            self.accepted_channels,
            self.pending_channels,
            self.summary,
            self.resolved_ms,
        )


@dataclass(frozen=True, slots=True)
class PolicySettings:
    renotify_ms: int = HOUR_MS
    resolve_after_checks: int = 3
    alert_severity: Severity = Severity.WARNING  # the lowest severity that opens an alert

    def __post_init__(self) -> None:
        if self.renotify_ms <= 0:
            raise ValueError("renotify_ms must be positive")
        if self.resolve_after_checks < 1:
            raise ValueError("resolve_after_checks must be at least 1")
        if self.alert_severity.rank < Severity.INFO.rank:
            raise ValueError("alert_severity must be info or above")

    @classmethod
    def from_minutes(cls, renotify_minutes: float, resolve_after_checks: int) -> PolicySettings:
        return cls(renotify_ms=round(renotify_minutes * MINUTE_MS), resolve_after_checks=resolve_after_checks)


class _Kind(StrEnum):
    UNHEALTHY = "unhealthy"
    HEALTHY = "healthy"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Observation:
    """One check's evidence about one rule, reduced to what the policy acts on."""

    kind: _Kind
    severity: Severity = Severity.OK
    capped: bool = False  # from insufficient data: may hold or open a warning, never move critical

    @classmethod
    def of(cls, finding: Finding | None, *, proxy_available: bool, settings: PolicySettings) -> Observation:
        if finding is None:
            # A diagnosed proxy reports every rule it could evaluate; a rule that is absent has
            # nothing to say. A proxy that was not diagnosed (unavailable) tells us nothing.
            return cls(_Kind.HEALTHY) if proxy_available else cls(_Kind.UNKNOWN)
        if finding.insufficient_data:
            if finding.severity.rank >= max(settings.alert_severity.rank, Severity.WARNING.rank):
                return cls(_Kind.UNHEALTHY, Severity.WARNING, capped=True)
            return cls(_Kind.UNKNOWN)
        if finding.severity.rank >= settings.alert_severity.rank:
            return cls(_Kind.UNHEALTHY, finding.severity)
        return cls(_Kind.HEALTHY)


@dataclass(frozen=True, slots=True)
class RuleDecision:
    """The policy's verdict on one rule in one run.

    ``after`` is the state to store once the run's message is settled (for a transition) or
    unconditionally (no transition). ``send_to`` names the channels this rule goes to in this run:
    every channel for a transition, the pending ones for a retry, none otherwise.
    """

    rule: str
    before: AlertState
    after: AlertState
    transition: Transition | None
    finding: Finding | None
    send_to: frozenset[str] = frozenset()
    retry_of: Transition | None = None  # a pending message re-sent to channels that failed last time

    @property
    def notifying(self) -> bool:
        return bool(self.send_to) or self.transition is not None

    @property
    def shown_transition(self) -> Transition | None:
        """What the message says happened to this rule (a retry repeats the original transition)."""
        return self.transition or self.retry_of


@dataclass(frozen=True, slots=True)
class Plan:
    proxy: str
    decisions: tuple[RuleDecision, ...]
    channels: frozenset[str] = field(default_factory=frozenset)

    @property
    def notifying(self) -> tuple[RuleDecision, ...]:
        return tuple(d for d in self.decisions if d.notifying)

    def for_channel(self, channel: str) -> tuple[RuleDecision, ...]:
        """The rules one channel's message covers in this run, most severe first."""
        return _most_severe_first(d for d in self.decisions if channel in d.send_to)


def evaluate(
    proxy: str,
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    now_ms: int,
    settings: PolicySettings,
    channels: Collection[str],
    *,
    proxy_available: bool = True,
    proxy_gone: bool = False,
) -> Plan:
    """Decide, for every rule known from this run's findings or from stored state, what happens."""
    if proxy_gone:
        why = findings[0].summary if findings else None
        return Plan(
            proxy=proxy,
            decisions=tuple(_gone(states[rule], now_ms, frozenset(channels), why) for rule in sorted(states)),
            channels=frozenset(channels),
        )
    by_rule: dict[str, Finding] = {}
    for finding in findings:
        # Two findings for one rule should not happen; if it does, the worse one speaks.
        known = by_rule.get(finding.rule)
        if known is None or finding.severity.rank > known.severity.rank:
            by_rule[finding.rule] = finding
    channel_set = frozenset(channels)
    decisions = []
    for rule in sorted(by_rule.keys() | states.keys()):
        before = states.get(rule) or AlertState(proxy=proxy, rule=rule)
        current = by_rule.get(rule)
        observation = Observation.of(current, proxy_available=proxy_available, settings=settings)
        decisions.append(_decide(before, observation, current, now_ms, settings, channel_set))
    return Plan(proxy=proxy, decisions=tuple(decisions), channels=channel_set)


def _decide(
    before: AlertState,
    obs: Observation,
    finding: Finding | None,
    now_ms: int,
    settings: PolicySettings,
    channels: frozenset[str],
) -> RuleDecision:
    after = before
    transition: Transition | None = None
    if obs.kind is _Kind.UNHEALTHY:
        summary = finding.summary if finding is not None else before.summary
        if not before.active:
            transition = Transition.NEW
            after = replace(
                before,
                status=AlertStatus.ACTIVE,
                severity=obs.severity,
                first_active_ms=now_ms,
                healthy_streak=0,
                summary=summary,
                resolved_ms=None,
            )
        else:
            severity = _max(before.severity, obs.severity) if obs.capped else obs.severity
            told = before.last_notified_severity or Severity.OK
            if severity.rank > told.rank:
                transition = Transition.ESCALATED
            elif before.last_notified_ms is None or now_ms - before.last_notified_ms >= settings.renotify_ms:
                transition = Transition.RENOTIFY
            after = replace(before, severity=severity, healthy_streak=0, summary=summary)
        if transition is not None:
            after = replace(after, last_notified_ms=now_ms, last_notified_severity=after.severity)
    elif obs.kind is _Kind.HEALTHY and before.active:
        streak = before.healthy_streak + 1
        if streak >= settings.resolve_after_checks:
            transition = Transition.RESOLVED
            after = _closed(before, now_ms)
        else:
            after = replace(before, healthy_streak=streak)

    if transition is not None:
        after = replace(after, last_transition=transition)
        return RuleDecision(before.rule, before, after, transition, finding, send_to=channels)
    return _pending_retry(before, after, finding, now_ms, settings, channels)


def _gone(before: AlertState, now_ms: int, channels: frozenset[str], why: str | None = None) -> RuleDecision:
    if not before.active:
        # Nothing open; a pending retry of an older message about it is moot.
        return RuleDecision(before.rule, before, replace(before, pending_channels=frozenset()), None, None)
    if why is None:
        scope, name = split_key(before.proxy)
        where = "the region" if scope is None else f"account {scope.account}, {scope.region}"
        why = f"{name} is gone (no longer found in {where})"
    gone = f"{why}: the alert is closed. {before.summary}".strip()
    after = _closed(before, now_ms, summary=gone)
    return RuleDecision(before.rule, before, after, Transition.RESOLVED, None, send_to=channels)


def _closed(before: AlertState, now_ms: int, *, summary: str | None = None) -> AlertState:
    """The state of an alert resolved now (by healthy checks, or its proxy gone).

    last_notified_severity is kept: the resolved message says how bad it was.
    """
    return replace(
        before,
        status=AlertStatus.OK,
        severity=Severity.OK,
        healthy_streak=0,
        resolved_ms=now_ms,
        last_notified_ms=now_ms,
        last_transition=Transition.RESOLVED,
        summary=before.summary if summary is None else summary,
    )


def _pending_retry(
    before: AlertState,
    after: AlertState,
    finding: Finding | None,
    now_ms: int,
    settings: PolicySettings,
    channels: frozenset[str],
) -> RuleDecision:
    """No new transition: re-send the last one to channels that still owe it, while it is current."""
    if not before.pending_channels:
        return RuleDecision(before.rule, before, after, None, finding)
    fresh = before.last_notified_ms is not None and now_ms - before.last_notified_ms < settings.renotify_ms
    retry_to = before.pending_channels & channels if fresh else frozenset()
    if not retry_to:
        # Expired (the next reminder will reach every channel) or the channel was removed.
        return RuleDecision(before.rule, before, replace(after, pending_channels=frozenset()), None, finding)
    return RuleDecision(before.rule, before, after, None, finding, send_to=retry_to, retry_of=before.last_transition)


def settle(plan: Plan, outcomes: Mapping[str, DeliveryStatus]) -> tuple[AlertState, ...]:
    """The states to store after delivery, given each channel's answer. Unchanged states are left out."""
    changed = []
    for decision in plan.decisions:
        state = _settled_state(decision, outcomes)
        if state.content() != decision.before.content():
            changed.append(state)
    return tuple(changed)


def _settled_state(decision: RuleDecision, outcomes: Mapping[str, DeliveryStatus]) -> AlertState:
    sent = decision.send_to
    accepted = frozenset(c for c in sent if outcomes.get(c) is DeliveryStatus.ACCEPTED)
    rejected = frozenset(c for c in sent if outcomes.get(c) is DeliveryStatus.REJECTED)
    failed = sent - accepted - rejected  # anything else (failed, or never attempted) is worth a retry
    if decision.transition is not None:
        if accepted or not failed:
            return replace(decision.after, accepted_channels=accepted, pending_channels=failed)
        # Nobody heard it: the notification did not happen and is decided again next run. What was
        # observed still counts — an unhealthy check breaks a healthy streak whether or not the
        # reminder about it got through.
        before, after = decision.before, decision.after
        if before.active and after.active:
            return replace(before, severity=after.severity, healthy_streak=after.healthy_streak, summary=after.summary)
        return before
    if sent:
        return replace(
            decision.after,
            accepted_channels=decision.after.accepted_channels | accepted,
            pending_channels=decision.after.pending_channels - accepted - rejected,
        )
    return decision.after


def _max(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def _most_severe_first(decisions: Iterable[RuleDecision]) -> tuple[RuleDecision, ...]:
    def key(d: RuleDecision) -> tuple[int, int, str]:
        resolved = d.shown_transition is Transition.RESOLVED
        severity = (d.before.last_notified_severity or Severity.OK) if resolved else d.after.severity
        # Open problems before resolutions, then by severity, then by rule name for a stable order.
        return (1 if resolved else 0, -severity.rank, d.rule)

    return tuple(sorted(decisions, key=key))
