"""The alert policy: transitions, hysteresis, delivery feedback, and its invariants (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwatch.alerts.policy import (
    AlertState,
    AlertStatus,
    DeliveryStatus,
    Plan,
    PolicySettings,
    RuleDecision,
    Transition,
    evaluate,
    settle,
)
from pinwatch.findings import Finding, Severity

PROXY = "orders-proxy"
RULE = "pinned_share"
MIN = 60_000
T0 = 1_764_000_000_000
CHANNELS = ("slack", "sns")
SETTINGS = PolicySettings(renotify_ms=60 * MIN, resolve_after_checks=3)
ALL_OK = dict.fromkeys(CHANNELS, DeliveryStatus.ACCEPTED)

W, C, INFO, OK = Severity.WARNING, Severity.CRITICAL, Severity.INFO, Severity.OK


def finding(severity: Severity, rule: str = RULE, *, insufficient: bool = False) -> Finding:
    return Finding(PROXY, rule, severity, f"{rule} is {severity.value}", insufficient_data=insufficient)


def active(
    severity: Severity = W,
    *,
    notified_ago_min: int = 5,
    notified: Severity | None = None,
    streak: int = 0,
    pending: frozenset[str] = frozenset(),
    rule: str = RULE,
) -> AlertState:
    return AlertState(
        proxy=PROXY,
        rule=rule,
        status=AlertStatus.ACTIVE,
        severity=severity,
        first_active_ms=T0 - 90 * MIN,
        last_notified_ms=T0 - notified_ago_min * MIN,
        last_notified_severity=notified or severity,
        last_transition=Transition.NEW,
        healthy_streak=streak,
        pending_channels=pending,
        summary="was bad",
        version=3,
    )


def decide(
    findings: Sequence[Finding],
    states: Mapping[str, AlertState] | None = None,
    *,
    now_ms: int = T0,
    available: bool = True,
    channels: Sequence[str] = CHANNELS,
) -> Plan:
    return evaluate(PROXY, findings, states or {}, now_ms, SETTINGS, channels, proxy_available=available)


def only(plan: Plan, rule: str = RULE) -> RuleDecision:
    return next(d for d in plan.decisions if d.rule == rule)


# ---------------------------------------------------------------------------------------------
# Table-driven transitions (every channel accepts)

CASES = [
    # id, stored state, finding this run, expected transition, expected (status, severity) afterwards
    ("ok_to_warning_is_new", None, finding(W), Transition.NEW, (AlertStatus.ACTIVE, W)),
    ("ok_to_critical_is_new", None, finding(C), Transition.NEW, (AlertStatus.ACTIVE, C)),
    ("info_never_alerts", None, finding(INFO), None, (AlertStatus.OK, OK)),
    ("same_severity_inside_cooldown_is_quiet", active(W), finding(W), None, (AlertStatus.ACTIVE, W)),
    (
        "warning_to_critical_escalates_inside_cooldown",
        active(W),
        finding(C),
        Transition.ESCALATED,
        (AlertStatus.ACTIVE, C),
    ),
    ("critical_to_warning_updates_quietly", active(C), finding(W), None, (AlertStatus.ACTIVE, W)),
    (
        "back_to_critical_after_a_dip_inside_cooldown_is_not_a_duplicate",
        active(W, notified=C),
        finding(C),
        None,
        (AlertStatus.ACTIVE, C),
    ),
    (
        "still_active_after_renotify_interval_reminds",
        active(W, notified_ago_min=60),
        finding(W),
        Transition.RENOTIFY,
        (AlertStatus.ACTIVE, W),
    ),
    ("first_healthy_check_does_not_resolve", active(W), finding(OK), None, (AlertStatus.ACTIVE, W)),
    ("third_healthy_check_resolves", active(W, streak=2), finding(OK), Transition.RESOLVED, (AlertStatus.OK, OK)),
    ("info_counts_as_healthy", active(W, streak=2), finding(INFO), Transition.RESOLVED, (AlertStatus.OK, OK)),
    (
        "insufficient_critical_opens_only_a_warning",
        None,
        finding(C, insufficient=True),
        Transition.NEW,
        (AlertStatus.ACTIVE, W),
    ),
    (
        "insufficient_ok_is_not_healthy",
        active(W, streak=2),
        finding(OK, insufficient=True),
        None,
        (AlertStatus.ACTIVE, W),
    ),
    (
        "insufficient_warning_never_lowers_critical",
        active(C),
        finding(W, insufficient=True),
        None,
        (AlertStatus.ACTIVE, C),
    ),
    ("insufficient_critical_never_escalates", active(W), finding(C, insufficient=True), None, (AlertStatus.ACTIVE, W)),
    ("absent_rule_on_available_proxy_is_healthy", active(W, streak=2), None, Transition.RESOLVED, (AlertStatus.OK, OK)),
]


@pytest.mark.parametrize(
    ("stored", "current", "transition", "after"),
    [pytest.param(s, f, t, a, id=i) for i, s, f, t, a in CASES],
)
def test_given_state_and_finding_when_evaluated_then_transition_and_state_follow_the_table(
    stored: AlertState | None,
    current: Finding | None,
    transition: Transition | None,
    after: tuple[AlertStatus, Severity],
) -> None:
    plan = decide([current] if current else [], {RULE: stored} if stored else {})
    decision = only(plan)
    assert decision.transition is transition
    assert (decision.after.status, decision.after.severity) == after
    assert decision.send_to == (frozenset(CHANNELS) if transition else frozenset())


def test_given_unhealthy_check_between_healthy_ones_when_evaluated_then_the_streak_restarts() -> None:
    state = active(W, streak=2)
    decision = only(decide([finding(W)], {RULE: state}))
    assert decision.transition is None
    assert decision.after.healthy_streak == 0


def test_given_unavailable_proxy_without_the_rule_when_evaluated_then_nothing_changes() -> None:
    state = active(W, streak=2)
    decision = only(decide([finding(W, rule="proxy_unavailable")], {RULE: state}, available=False))
    assert decision.transition is None
    assert decision.after == state


def test_given_resolution_when_settled_then_state_keeps_how_bad_it_was_and_when_it_ended() -> None:
    plan = decide([finding(OK)], {RULE: active(C, streak=2)})
    (stored,) = settle(plan, ALL_OK)
    assert stored.status is AlertStatus.OK
    assert stored.last_notified_severity is C
    assert stored.resolved_ms == T0
    assert stored.last_transition is Transition.RESOLVED


def test_given_two_rules_transitioning_when_planned_then_one_message_leads_with_the_most_severe() -> None:
    states = {"pool_pressure": active(W, rule="pool_pressure", streak=2)}
    plan = decide([finding(W, "pinned_share"), finding(C, "exhaustion_forecast"), finding(OK, "pool_pressure")], states)
    ordered = [(d.rule, d.shown_transition) for d in plan.for_channel("slack")]
    assert ordered == [
        ("exhaustion_forecast", Transition.NEW),
        ("pinned_share", Transition.NEW),
        ("pool_pressure", Transition.RESOLVED),
    ]


# ---------------------------------------------------------------------------------------------
# Delivery feedback


def test_given_every_channel_failed_when_settled_then_nothing_advances_and_the_next_run_decides_again() -> None:
    plan = decide([finding(W)])
    assert settle(plan, {"slack": DeliveryStatus.FAILED, "sns": DeliveryStatus.FAILED}) == ()
    again = decide([finding(W)], now_ms=T0 + MIN)
    assert only(again).transition is Transition.NEW


def test_given_reminder_nobody_heard_when_settled_then_the_unhealthy_check_still_breaks_the_healthy_streak() -> None:
    state = active(W, notified_ago_min=60, streak=2)
    plan = decide([finding(W)], {RULE: state})
    assert only(plan).transition is Transition.RENOTIFY
    (stored,) = settle(plan, {"slack": DeliveryStatus.FAILED, "sns": DeliveryStatus.FAILED})
    assert stored.healthy_streak == 0
    assert stored.last_notified_ms == state.last_notified_ms
    assert only(decide([finding(OK)], {RULE: stored}, now_ms=T0 + MIN)).transition is None


def test_given_one_channel_failed_when_settled_then_state_advances_and_that_channel_is_pending() -> None:
    plan = decide([finding(W)])
    (stored,) = settle(plan, {"slack": DeliveryStatus.FAILED, "sns": DeliveryStatus.ACCEPTED})
    assert stored.status is AlertStatus.ACTIVE
    assert stored.accepted_channels == {"sns"}
    assert stored.pending_channels == {"slack"}


def test_given_pending_channel_when_next_run_has_no_transition_then_only_that_channel_gets_the_message() -> None:
    state = active(W, notified_ago_min=1, pending=frozenset({"slack"}))
    decision = only(decide([finding(W)], {RULE: state}))
    assert decision.transition is None
    assert decision.send_to == {"slack"}
    assert decision.retry_of is Transition.NEW
    (stored,) = settle(decide([finding(W)], {RULE: state}), {"slack": DeliveryStatus.ACCEPTED})
    assert stored.pending_channels == frozenset()
    assert "slack" in stored.accepted_channels


def test_given_pending_channel_failing_again_when_settled_then_it_stays_pending() -> None:
    state = active(W, notified_ago_min=1, pending=frozenset({"slack"}))
    (stored,) = settle(decide([finding(W)], {RULE: state}), {"slack": DeliveryStatus.FAILED})
    assert stored.pending_channels == {"slack"}
    assert stored.last_notified_ms == state.last_notified_ms


def test_given_pending_older_than_renotify_interval_when_evaluated_then_it_is_dropped() -> None:
    state = replace(
        active(W, pending=frozenset({"slack"})), status=AlertStatus.OK, severity=OK, last_notified_ms=T0 - 61 * MIN
    )
    decision = only(decide([finding(OK)], {RULE: state}))
    assert decision.send_to == frozenset()
    assert decision.after.pending_channels == frozenset()


def test_given_pending_channel_when_a_new_transition_happens_then_it_supersedes_the_retry() -> None:
    state = active(W, notified_ago_min=1, pending=frozenset({"slack"}))
    decision = only(decide([finding(C)], {RULE: state}))
    assert decision.transition is Transition.ESCALATED
    assert decision.send_to == set(CHANNELS)
    (stored,) = settle(decide([finding(C)], {RULE: state}), ALL_OK)
    assert stored.pending_channels == frozenset()


def test_given_only_permanent_rejections_when_settled_then_state_advances_without_pending() -> None:
    plan = decide([finding(W)], channels=["slack"])
    (stored,) = settle(plan, {"slack": DeliveryStatus.REJECTED})
    assert stored.status is AlertStatus.ACTIVE
    assert stored.pending_channels == frozenset()
    assert stored.accepted_channels == frozenset()


def test_given_removed_channel_pending_when_evaluated_then_it_is_forgotten() -> None:
    state = active(W, notified_ago_min=1, pending=frozenset({"slack"}))
    decision = only(decide([finding(W)], {RULE: state}, channels=["sns"]))
    assert decision.send_to == frozenset()
    assert decision.after.pending_channels == frozenset()


# ---------------------------------------------------------------------------------------------
# Properties over random check sequences


@dataclass(frozen=True)
class Step:
    severity: Severity | None  # None: the rule is absent from the report
    insufficient: bool
    minutes: int  # since the previous check
    outcomes: tuple[DeliveryStatus, DeliveryStatus]  # slack, sns


@dataclass(frozen=True)
class Record:
    step: Step
    now_ms: int
    before: AlertState
    decision: RuleDecision
    after: AlertState  # as stored after delivery

    @property
    def notified(self) -> Transition | None:
        """A transition that took effect (delivered, or given up as permanently undeliverable)."""
        took_effect = self.after.last_notified_ms != self.before.last_notified_ms
        if self.decision.transition is not None and took_effect:
            return self.decision.transition
        return None

    @property
    def kind(self) -> str:
        s = self.step
        if s.insufficient and s.severity is not None:
            return "unhealthy" if s.severity is not None and s.severity.rank >= W.rank else "unknown"
        if s.severity is None or s.severity.rank < W.rank:
            return "healthy"
        return "unhealthy"


statuses = st.sampled_from([DeliveryStatus.ACCEPTED] * 4 + [DeliveryStatus.FAILED, DeliveryStatus.REJECTED])
steps = st.builds(
    Step,
    severity=st.one_of(st.none(), st.sampled_from([OK, INFO, W, C])),
    insufficient=st.sampled_from([False, False, False, True]),
    minutes=st.sampled_from([1, 1, 1, 5, 30, 59, 60, 61, 120]),
    outcomes=st.tuples(statuses, statuses),
)


def simulate(sequence: Sequence[Step]) -> list[Record]:
    state = AlertState(proxy=PROXY, rule=RULE)
    now = T0
    records = []
    for step in sequence:
        now += step.minutes * MIN
        findings = [] if step.severity is None else [finding(step.severity, insufficient=step.insufficient)]
        plan = decide(findings, {RULE: state}, now_ms=now)
        outcomes = dict(zip(CHANNELS, step.outcomes, strict=True))
        changed = {s.rule: s for s in settle(plan, outcomes)}
        after = changed.get(RULE, state)
        after = replace(after, version=state.version + 1) if RULE in changed else after
        records.append(Record(step, now, state, only(plan), after))
        state = after
    return records


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_property_no_duplicate_notification_inside_the_cooldown(sequence: list[Step]) -> None:
    last: Record | None = None
    for record in simulate(sequence):
        transition = record.notified
        if transition is None:
            continue
        if transition in (Transition.NEW, Transition.RESOLVED):
            last = record if transition is Transition.NEW else None
            continue
        assert last is not None, "a reminder or escalation outside an announced episode"
        if record.now_ms - last.now_ms < SETTINGS.renotify_ms:
            assert transition is Transition.ESCALATED
            assert record.after.severity.rank > (last.after.last_notified_severity or OK).rank
        last = record


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_property_every_escalation_and_every_new_problem_notifies(sequence: list[Step]) -> None:
    for record in simulate(sequence):
        if record.kind != "unhealthy":
            continue
        severity = W if record.step.insufficient else record.step.severity
        assert severity is not None
        if not record.before.active:
            assert record.decision.transition is Transition.NEW
        elif not record.step.insufficient and severity.rank > (record.before.last_notified_severity or OK).rank:
            assert record.decision.transition is Transition.ESCALATED


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_property_resolve_only_after_m_healthy_checks_without_an_unhealthy_one(sequence: list[Step]) -> None:
    records = simulate(sequence)
    for i, record in enumerate(records):
        if record.decision.transition is not Transition.RESOLVED:
            continue
        known = [r.kind for r in records[: i + 1] if r.kind != "unknown"]
        assert known[-SETTINGS.resolve_after_checks :] == ["healthy"] * SETTINGS.resolve_after_checks


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_property_never_resolve_without_having_notified_active(sequence: list[Step]) -> None:
    announced = False
    for record in simulate(sequence):
        if record.notified is Transition.NEW:
            announced = True
        if record.decision.transition is Transition.RESOLVED:
            assert announced
        if record.notified is Transition.RESOLVED:
            announced = False


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_property_a_transition_nobody_heard_never_advances_state(sequence: list[Step]) -> None:
    for record in simulate(sequence):
        outcomes = record.step.outcomes
        nobody = DeliveryStatus.ACCEPTED not in outcomes and DeliveryStatus.FAILED in outcomes
        if record.decision.transition is not None and nobody:
            notified = ("status", "last_notified_ms", "last_notified_severity", "last_transition", "pending_channels")
            assert {f: getattr(record.after, f) for f in notified} == {f: getattr(record.before, f) for f in notified}
