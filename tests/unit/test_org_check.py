"""Organization mode's orchestration: scoped checks keyed by account and Region, members run apart and bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from pinwatch import diagnose as dx
from pinwatch.alerts.policy import GONE_STATUS
from pinwatch.check import CheckResult, ConnectionCheck, Dispatcher, ProxyOutcome
from pinwatch.config import Thresholds
from pinwatch.discovery import Discovery
from pinwatch.findings import CaptureNote, Finding, ProxyReport, Severity
from pinwatch.org import NOT_ENROLLED, MemberAccessError, OrgCheck, TargetListing
from pinwatch.records import ReasonCount
from pinwatch.scope import Scope
from tests.unit.test_check_orchestration import (
    NOW_MS,
    PINNING,
    FakeMetrics,
    FakeProxies,
    FakeReasons,
    RecordingDispatcher,
    series_for,
)

A = Scope("111111111111", "eu-west-1")
B = Scope("222222222222", "us-east-1")


@dataclass
class RecordingCapture:
    applied: list[str] = field(default_factory=list)

    def apply(
        self,
        proxy: str,
        debug_logging: bool | None,
        findings: Sequence[Finding],
        reasons: Sequence[ReasonCount],
        now_ms: int,
        *,
        dry_run: bool = False,
    ) -> CaptureNote:
        self.applied.append(proxy)
        return CaptureNote("on-incident", "idle", "no incident")


def scoped_check(
    dispatcher: RecordingDispatcher | None = None,
) -> tuple[ConnectionCheck, FakeProxies, FakeMetrics, FakeReasons, RecordingCapture]:
    proxies = FakeProxies(Discovery((PINNING,)))
    metrics = FakeMetrics({PINNING.name: series_for(PINNING.name, pinned=30)})
    reasons = FakeReasons({}, {})
    capture = RecordingCapture()
    check = ConnectionCheck(
        proxies=proxies,
        metrics=metrics,
        thresholds=Thresholds(),
        window_minutes=10,
        reasons=reasons,
        dispatcher=dispatcher,
        capture=capture,
        scope=A,
    )
    return check, proxies, metrics, reasons, capture


def test_given_a_scoped_check_when_it_runs_then_aws_gets_bare_names_and_everything_else_keys() -> None:
    check, proxies, metrics, reasons, capture = scoped_check()
    (report,) = check.run(NOW_MS).reports
    key = A.key(PINNING.name)
    assert report.proxy == key
    assert {f.proxy for f in report.findings} == {key}
    assert report.severity is not Severity.OK
    assert proxies.asked == [()]
    assert metrics.reads[0][0] == (PINNING.name,)
    assert {asked[0] for asked in reasons.asked} == {key}
    assert capture.applied == [key]


def test_given_keys_of_several_scopes_when_a_scoped_check_runs_them_then_it_reads_only_its_own() -> None:
    check, proxies, _, _, _ = scoped_check()
    check.run(NOW_MS, names=[A.key("orders"), B.key("orders"), "orders", A.key(dx.SCOPE_WIDE)])
    assert proxies.asked == [("orders",)]


def test_given_open_alerts_in_several_scopes_when_a_scoped_sweep_misses_a_proxy_then_only_its_own_is_gone() -> None:
    alerting = frozenset({A.key("deleted"), B.key("elsewhere"), A.key(dx.SCOPE_WIDE), A.key(PINNING.name)})
    dispatcher = RecordingDispatcher(alerting=alerting)
    check, *_ = scoped_check(dispatcher)
    result = check.run(NOW_MS)
    assert [r.proxy for r in result.reports if r.status == GONE_STATUS] == [A.key("deleted")]


@dataclass
class FakeScopeCheck:
    """A member's check: reports one healthy proxy per name, or raises what it is told to."""

    scope: Scope
    error: Exception | None = None
    runs: list[tuple[str, ...] | None] = field(default_factory=list)
    delay_s: float = 0.0
    gauge: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(
        self,
        now_ms: int,
        *,
        dry_run: bool = False,
        deadline: float | None = None,
        names: Sequence[str] | None = None,
    ) -> CheckResult:
        with self.lock:
            self.gauge["now"] = self.gauge.get("now", 0) + 1
            self.gauge["max"] = max(self.gauge.get("max", 0), self.gauge["now"])
        try:
            time.sleep(self.delay_s)
            self.runs.append(None if names is None else tuple(names))
            if self.error is not None:
                raise self.error
            keys = names if names is not None else [self.scope.key("orders")]
            return CheckResult(tuple(ProxyOutcome(ProxyReport(k, None, "available", ())) for k in keys), now_ms)
        finally:
            with self.lock:
                self.gauge["now"] -= 1

    def alerting_proxies(self) -> frozenset[str]:
        return frozenset()


@dataclass
class Targets:
    listed: list[Scope]
    current: bool = True  # False: the listing failed and the previous list is kept

    def listing(self) -> TargetListing:
        return TargetListing(tuple(self.listed), self.current)


@dataclass
class Members:
    """The factory: one FakeScopeCheck per member, counting how often each is built."""

    errors: dict[Scope, Exception] = field(default_factory=dict)
    delay_s: float = 0.0
    built: list[Scope] = field(default_factory=list)
    checks: dict[Scope, FakeScopeCheck] = field(default_factory=dict)
    gauge: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, scope: Scope, dispatcher: Dispatcher | None) -> FakeScopeCheck:
        self.built.append(scope)
        check = FakeScopeCheck(scope, self.errors.get(scope), delay_s=self.delay_s, gauge=self.gauge, lock=self.lock)
        self.checks[scope] = check
        return check


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def org(
    members: Members, scopes: Sequence[Scope] = (A, B), dispatcher: RecordingDispatcher | None = None, **kwargs: object
) -> tuple[OrgCheck, Targets]:
    targets = Targets(list(scopes))
    check = OrgCheck(
        targets=targets,
        factory=members,
        role_name="pinwatch-member-reader",
        dispatcher=dispatcher,
        **kwargs,  # type: ignore[arg-type]
    )
    return check, targets


def denied(scope: Scope) -> MemberAccessError:
    arn = f"arn:aws:iam::{scope.account}:role/pinwatch-member-reader"
    return MemberAccessError(scope.account, arn, "AccessDenied", "not authorized to perform: sts:AssumeRole")


def test_given_keys_of_two_members_when_run_then_each_member_gets_its_own_keys_and_others_are_left_out() -> None:
    members = Members()
    check, _ = org(members)
    keys = [B.key("x"), A.key("y"), "plain", Scope("333333333333", "eu-west-1").key("z"), A.key("w")]
    result = check.run(NOW_MS, names=keys)
    assert members.checks[A].runs == [(A.key("y"), A.key("w"))]
    assert members.checks[B].runs == [(B.key("x"),)]
    assert [r.proxy for r in result.reports] == [A.key("y"), A.key("w"), B.key("x")]


def test_given_a_members_own_key_when_run_then_that_whole_member_is_read() -> None:
    members = Members()
    check, _ = org(members)
    check.run(NOW_MS, names=[A.key(dx.SCOPE_WIDE), A.key("orders")])
    assert members.checks[A].runs == [None]
    assert B not in members.checks


def test_given_a_denied_member_when_run_again_before_the_retry_time_then_it_is_not_tried_but_still_reported() -> None:
    members, clock = Members(errors={B: denied(B)}), Clock()
    dispatcher = RecordingDispatcher()
    check, _ = org(members, dispatcher=dispatcher, retry_after_s=900.0, clock=clock)
    first = check.run(NOW_MS)
    clock.now = 899.0
    second = check.run(NOW_MS + 60_000)
    for result in (first, second):
        (unreachable,) = [r for r in result.reports if r.status == "unreachable"]
        assert unreachable.proxy == B.key("*")
        assert unreachable.findings[0].rule == dx.MEMBER_UNREACHABLE
    assert members.checks[B].runs == [None]  # tried once
    assert len(members.checks[A].runs) == 2
    assert [c[0].proxy for c in dispatcher.calls].count(B.key("*")) == 2  # the policy dedups what it sends
    clock.now = 901.0
    check.run(NOW_MS + 120_000)
    assert members.checks[B].runs == [None, None]


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeDBProxies")


def test_given_a_throttled_member_when_run_again_then_it_is_tried_on_the_next_run() -> None:
    members = Members(errors={A: throttled()})
    check, _ = org(members)
    (report,) = [r for r in check.run(NOW_MS).reports if r.proxy == A.key("*")]
    assert "Throttling" in report.findings[0].summary
    assert "next run" in report.findings[0].summary
    check.run(NOW_MS + 60_000)
    assert members.checks[A].runs == [None, None]


def test_given_a_member_reachable_again_with_an_open_unreachable_alert_then_a_healthy_report_resolves_it() -> None:
    members = Members()
    dispatcher = RecordingDispatcher(alerting=frozenset({A.key("*")}))
    check, _ = org(members, dispatcher=dispatcher)
    reports = {r.proxy: r for r in check.run(NOW_MS).reports}
    healed = reports[A.key("*")]
    assert (healed.status, healed.findings[0].rule, healed.findings[0].severity) == (
        "available",
        dx.MEMBER_UNREACHABLE,
        Severity.OK,
    )
    assert B.key("*") not in reports  # no open alert there: nothing to resolve


def test_given_many_members_when_run_then_at_most_max_workers_run_at_once() -> None:
    scopes = [Scope(f"{i:012d}", "eu-west-1") for i in range(1, 13)]
    members = Members(delay_s=0.05)
    check, _ = org(members, scopes, max_workers=3)
    result = check.run(NOW_MS)
    assert len(result.reports) == 12
    assert members.gauge["max"] == 3


def test_given_a_passed_deadline_when_run_then_no_member_starts() -> None:
    members = Members()
    check, _ = org(members)
    result = check.run(NOW_MS, deadline=time.monotonic() - 1)
    assert result.reports == ()
    assert members.built == []


def test_given_a_member_leaving_the_stack_set_when_it_returns_then_its_check_is_built_anew() -> None:
    members = Members()
    check, targets = org(members)
    check.run(NOW_MS)
    targets.listed = [A]
    check.run(NOW_MS)
    targets.listed = [A, B]
    check.run(NOW_MS)
    assert members.built.count(A) == 1
    assert members.built.count(B) == 2


def test_given_no_member_answering_at_all_when_run_then_the_run_fails_instead_of_every_member_alerting() -> None:
    members = Members(errors={A: NoCredentialsError(), B: EndpointConnectionError(endpoint_url="https://sts")})
    dispatcher = RecordingDispatcher()
    check, _ = org(members, dispatcher=dispatcher)
    with pytest.raises(NoCredentialsError):
        check.run(NOW_MS)
    assert dispatcher.calls == []


def test_given_every_member_answering_with_an_error_when_run_then_each_is_reported() -> None:
    members = Members(errors={A: throttled(), B: NoCredentialsError()})
    check, _ = org(members)
    assert sorted(r.proxy for r in check.run(NOW_MS).reports) == [A.key("*"), B.key("*")]


C = Scope("333333333333", "eu-west-1")  # a member that left: its stack instance is gone


def departed_run(
    alerting: frozenset[str],
    *,
    current: bool = True,
    names: Sequence[str] | None = None,
    listed: Sequence[Scope] = (A,),
) -> tuple[CheckResult, RecordingDispatcher]:
    dispatcher = RecordingDispatcher(alerting=alerting)
    check, targets = org(Members(), listed, dispatcher=dispatcher)
    targets.current = current
    return check.run(NOW_MS, names=names), dispatcher


def test_given_open_alerts_of_a_member_no_longer_listed_when_swept_then_each_key_gets_one_gone_report() -> None:
    alerting = frozenset({A.key("orders"), C.key("billing"), C.key("*"), Scope(A.account, "us-west-2").key("x")})
    result, dispatcher = departed_run(alerting)
    gone = [r for r, _, _ in dispatcher.calls if r.status == GONE_STATUS]
    assert [r.proxy for r in gone] == sorted([C.key("*"), C.key("billing"), Scope(A.account, "us-west-2").key("x")])
    assert all(r.findings[0].rule == NOT_ENROLLED and r.findings[0].severity is Severity.OK for r in gone)
    # The listed member is checked as usual, not closed.
    assert {r.proxy: r.status for r in result.reports}[A.key("orders")] == "available"


def test_given_a_departed_member_when_its_alerts_close_then_the_wording_says_it_is_no_longer_enrolled() -> None:
    _, dispatcher = departed_run(frozenset({C.key("*"), C.key("billing")}))
    why = {r.proxy: r.findings[0].summary for r, _, _ in dispatcher.calls if r.status == GONE_STATUS}
    assert why[C.key("*")].startswith(f"account {C.account} in {C.region} is no longer enrolled")
    assert why[C.key("billing")].startswith(f"billing is no longer watched: account {C.account} in {C.region} is no")


def test_given_a_failed_listing_kept_from_before_when_swept_then_no_alert_is_closed() -> None:
    # StackSetTargets keeps the previous list when ListStackInstances fails: a member missing from
    # it may be missing only because the list is old.
    _, dispatcher = departed_run(frozenset({C.key("*"), C.key("billing")}), current=False)
    assert [r for r, _, _ in dispatcher.calls if r.status == GONE_STATUS] == []


def test_given_a_names_limited_run_when_a_key_of_a_departed_member_is_open_then_it_is_left_alone() -> None:
    _, dispatcher = departed_run(frozenset({C.key("*")}), names=[A.key("orders")])
    assert [r for r, _, _ in dispatcher.calls if r.status == GONE_STATUS] == []


def test_given_no_member_listed_at_all_when_swept_then_every_members_open_alert_is_closed() -> None:
    _, dispatcher = departed_run(frozenset({A.key("orders"), "plain-name"}), listed=())
    # A key without account and Region is no member's: this check cannot tell whether it left.
    assert [(r.proxy, r.status) for r, _, _ in dispatcher.calls] == [(A.key("orders"), GONE_STATUS)]


class FailingAlertQuery(RecordingDispatcher):
    def alerting_proxies(self) -> frozenset[str]:
        raise TimeoutError("dynamodb timed out")


def test_given_the_open_alerts_cannot_be_read_when_swept_then_the_members_are_still_checked() -> None:
    members = Members()
    check, _ = org(members, (A,), dispatcher=FailingAlertQuery())
    assert [r.proxy for r in check.run(NOW_MS).reports] == [A.key("orders")]
