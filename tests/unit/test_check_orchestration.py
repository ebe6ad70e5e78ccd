"""ConnectionCheck wiring: one metrics read, reasons and hints only where they help, every report dispatched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from pinwatch import diagnose as dx
from pinwatch.alerts.channels import DeliveryOutcome
from pinwatch.alerts.dispatcher import DispatchResult
from pinwatch.alerts.policy import GONE_STATUS, DeliveryStatus
from pinwatch.check import NOT_FOUND_STATUS, ConnectionCheck, Dispatcher
from pinwatch.config import Thresholds
from pinwatch.discovery import Discovery, ProxyInfo
from pinwatch.findings import ProxyReport, Severity
from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    MINUTE_MS,
    PINNED,
    ProxyMetrics,
)
from pinwatch.records import EngineFamily, PoolConfig, ReasonCount

NOW_MS = 1_764_100_000_000
WINDOW = 10
POOL = PoolConfig(session_pinning_filters=("EXCLUDE_VARIABLE_SETS",), init_query="SET time_zone = 'UTC'")
PINNING = ProxyInfo("orders", EngineFamily.MYSQL, "available", debug_logging=True, pool=POOL)
HEALTHY = ProxyInfo("billing", EngineFamily.POSTGRESQL, "available", debug_logging=True)
MODIFYING = ProxyInfo("reports", EngineFamily.POSTGRESQL, "modifying")


def series_for(proxy: str, pinned: float, db: float = 40) -> ProxyMetrics:
    start = NOW_MS - NOW_MS % MINUTE_MS - WINDOW * MINUTE_MS
    constant = {
        CLIENT_CONNECTIONS: 400.0,
        DATABASE_CONNECTIONS: db,
        PINNED: pinned,
        IN_TRANSACTION: 5.0,
        BORROWED: 20.0 + pinned,  # pinned sessions hold their connections on top of the shared ones
        MAX_ALLOWED: 50.0,
        BORROW_LATENCY: 1500.0,
    }
    return ProxyMetrics(
        proxy,
        tuple(start + i * MINUTE_MS for i in range(WINDOW)),
        {metric: (value,) * WINDOW for metric, value in constant.items()},
    )


@dataclass
class FakeProxies:
    discovery: Discovery
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def discover(self, names: Sequence[str] = ()) -> Discovery:
        self.asked.append(tuple(names))
        return self.discovery


@dataclass
class FakeMetrics:
    data: Mapping[str, ProxyMetrics]
    reads: list[tuple[tuple[str, ...], int, int]] = field(default_factory=list)

    def read(self, proxies: Sequence[str], end_ms: int, window_minutes: int) -> Mapping[str, ProxyMetrics]:
        self.reads.append((tuple(proxies), end_ms, window_minutes))
        return {p: self.data[p] for p in proxies if p in self.data}


@dataclass
class FakeReasons:
    last_hour: Mapping[str, list[ReasonCount]]
    totals: Mapping[str, list[ReasonCount]]
    fail: bool = False
    asked: list[tuple[str, int, int, int]] = field(default_factory=list)

    def top_reasons(self, proxy: str, since_ms: int, until_ms: int, limit: int = 5) -> list[ReasonCount]:
        self.asked.append((proxy, since_ms, until_ms, limit))
        if self.fail:
            raise ConnectionError("table unreachable")
        return list(self.last_hour.get(proxy, []))[:limit]

    def reason_totals(self, proxy: str) -> list[ReasonCount]:
        return list(self.totals.get(proxy, []))


@dataclass
class RecordingHints:
    calls: list[tuple[str, EngineFamily | None, str | None, PoolConfig | None]] = field(default_factory=list)

    def __call__(
        self, reason: str, engine: EngineFamily | None, digest: str | None, pool: PoolConfig | None
    ) -> list[str]:
        self.calls.append((reason, engine, digest, pool))
        return [] if reason == "unknown" else [f"fix {reason} on {engine}"]


@dataclass
class RecordingDispatcher:
    fail_for: frozenset[str] = frozenset()
    calls: list[tuple[ProxyReport, int, bool]] = field(default_factory=list)
    alerting: frozenset[str] = frozenset()

    def process(
        self, report: ProxyReport, now_ms: int, dry_run: bool = False, deadline: float | None = None
    ) -> DispatchResult:
        self.calls.append((report, now_ms, dry_run))
        if report.proxy in self.fail_for:
            raise TimeoutError("sns timed out")
        return DispatchResult(report.proxy, dry_run=dry_run)

    def alerting_proxies(self) -> frozenset[str]:
        return self.alerting


def rc(proxy: str, reason: str, count: int, digest: str | None = None) -> ReasonCount:
    return ReasonCount(proxy=proxy, reason=reason, count=count, example_digest=digest)


LAST_HOUR = {
    "orders": [rc("orders", "set_variable", 40, "SET names ?"), rc("orders", "prepared_statement", 7)],
    "billing": [rc("billing", "set_variable", 1)],
}
TOTALS = {
    "orders": [
        rc("orders", "unknown", 2),
        rc("orders", "prepared_statement", 900, "PREPARE s1 FROM ?"),
        rc("orders", "set_variable", 5000, "SET sql_mode = ?"),
        rc("orders", "temporary_table", 30),
    ]
}


def make_check(
    *,
    proxies: Sequence[ProxyInfo] = (PINNING, HEALTHY, MODIFYING),
    missing: Sequence[str] = (),
    reasons: FakeReasons | None = None,
    dispatcher: Dispatcher | None = None,
    names: Sequence[str] = (),
    reason_limit: int = 5,
) -> tuple[ConnectionCheck, FakeProxies, FakeMetrics, RecordingHints]:
    fake_proxies = FakeProxies(Discovery(tuple(proxies), tuple(missing)))
    fake_metrics = FakeMetrics({"orders": series_for("orders", pinned=24), "billing": series_for("billing", pinned=0)})
    hints = RecordingHints()
    check = ConnectionCheck(
        proxies=fake_proxies,
        metrics=fake_metrics,
        thresholds=Thresholds(),
        window_minutes=WINDOW,
        proxy_names=names,
        reasons=reasons if reasons is not None else FakeReasons(LAST_HOUR, TOTALS),
        hints=hints,
        dispatcher=dispatcher,
        reason_limit=reason_limit,
    )
    return check, fake_proxies, fake_metrics, hints


def by_proxy(reports: Sequence[ProxyReport]) -> dict[str, ProxyReport]:
    return {r.proxy: r for r in reports}


def test_given_several_proxies_when_checked_then_metrics_are_read_once_for_the_available_ones_only() -> None:
    check, proxies, metrics, _ = make_check(names=("orders", "billing", "reports"))
    check.run(NOW_MS)
    assert proxies.asked == [("orders", "billing", "reports")]
    assert metrics.reads == [(("orders", "billing"), NOW_MS, WINDOW)]


def test_given_a_pinning_proxy_when_checked_then_its_report_carries_findings_figures_and_top_reasons() -> None:
    check, *_ = make_check(reason_limit=2)
    report = by_proxy(check.run(NOW_MS).reports)["orders"]
    assert report.severity is Severity.CRITICAL  # 24 of 44 in use pinned = 55%, the pool 88% used
    assert {f.rule for f in report.findings} == set(dx.METRIC_RULES)
    assert (report.engine, report.pool, report.debug_logging, report.checked_at_ms) == (
        EngineFamily.MYSQL,
        POOL,
        True,
        NOW_MS,
    )
    assert report.figures[PINNED] == 24
    assert [r.reason for r in report.top_reasons_last_hour] == ["set_variable", "prepared_statement"]
    assert [r.reason for r in report.top_reasons_all_time] == ["set_variable", "prepared_statement"]


def test_given_top_reasons_when_checked_then_the_last_hour_is_asked_for_and_all_time_is_ranked_and_capped() -> None:
    reasons = FakeReasons(LAST_HOUR, TOTALS)
    check, *_ = make_check(reasons=reasons, reason_limit=3)
    report = by_proxy(check.run(NOW_MS).reports)["orders"]
    assert ("orders", NOW_MS - 3_600_000, NOW_MS, 3) in reasons.asked
    assert [(r.reason, r.count) for r in report.top_reasons_all_time] == [
        ("set_variable", 5000),
        ("prepared_statement", 900),
        ("temporary_table", 30),
    ]


def test_given_reasons_when_checked_then_hints_are_asked_per_reason_with_engine_pool_and_freshest_digest() -> None:
    check, _, _, hints = make_check()
    report = by_proxy(check.run(NOW_MS).reports)["orders"]
    orders_calls = {call[0]: call for call in hints.calls if call[1] is EngineFamily.MYSQL}
    # The last hour's digest wins over the all-time one; a reason without one falls back to all time.
    assert orders_calls["set_variable"] == ("set_variable", EngineFamily.MYSQL, "SET names ?", POOL)
    assert orders_calls["prepared_statement"] == ("prepared_statement", EngineFamily.MYSQL, "PREPARE s1 FROM ?", POOL)
    assert set(orders_calls) == {"set_variable", "prepared_statement", "unknown", "temporary_table"}
    assert report.hints == {
        "set_variable": ("fix set_variable on MYSQL",),
        "prepared_statement": ("fix prepared_statement on MYSQL",),
        "temporary_table": ("fix temporary_table on MYSQL",),
    }


def test_given_a_healthy_proxy_without_pins_when_checked_then_no_reasons_are_read_for_it() -> None:
    reasons = FakeReasons(LAST_HOUR, TOTALS)
    check, *_ = make_check(reasons=reasons)
    report = by_proxy(check.run(NOW_MS).reports)["billing"]
    assert report.severity is Severity.OK
    assert report.top_reasons_last_hour == ()
    assert "billing" not in {asked[0] for asked in reasons.asked}


def test_given_an_unavailable_proxy_when_checked_then_it_is_reported_without_metrics_or_reasons() -> None:
    reasons = FakeReasons(LAST_HOUR, TOTALS)
    check, *_ = make_check(reasons=reasons)
    report = by_proxy(check.run(NOW_MS).reports)["reports"]
    assert report.status == "modifying"
    assert [f.rule for f in report.findings if not f.insufficient_data] == [dx.PROXY_UNAVAILABLE]
    assert "reports" not in {asked[0] for asked in reasons.asked}


def test_given_a_configured_proxy_that_does_not_exist_when_checked_then_a_not_found_report_is_dispatched() -> None:
    dispatcher = RecordingDispatcher()
    check, *_ = make_check(missing=("ghost",), dispatcher=dispatcher, names=("orders", "ghost"))
    report = by_proxy(check.run(NOW_MS).reports)["ghost"]
    assert report.status == NOT_FOUND_STATUS
    assert [(f.rule, f.severity) for f in report.findings] == [(dx.PROXY_NOT_FOUND, Severity.WARNING)]
    assert "ghost" in {call[0].proxy for call in dispatcher.calls}


@pytest.mark.parametrize("dry_run", [False, True])
def test_given_a_dispatcher_when_checked_then_every_report_goes_to_it_with_the_run_time_and_dry_run_flag(
    dry_run: bool,
) -> None:
    dispatcher = RecordingDispatcher()
    check, *_ = make_check(dispatcher=dispatcher)
    result = check.run(NOW_MS, dry_run=dry_run)
    assert [(r.proxy, now, dry) for r, now, dry in dispatcher.calls] == [
        ("orders", NOW_MS, dry_run),
        ("billing", NOW_MS, dry_run),
        ("reports", NOW_MS, dry_run),
    ]
    assert [o.dispatch for o in result.outcomes] == [
        DispatchResult(p, dry_run=dry_run) for p in ("orders", "billing", "reports")
    ]


def test_given_alerting_fails_for_one_proxy_when_checked_then_the_others_are_still_dispatched() -> None:
    dispatcher = RecordingDispatcher(fail_for=frozenset({"orders"}))
    check, *_ = make_check(dispatcher=dispatcher)
    result = check.run(NOW_MS)
    assert [call[0].proxy for call in dispatcher.calls] == ["orders", "billing", "reports"]
    assert result.failures == {"orders": "TimeoutError: sns timed out"}


def test_given_the_reason_source_fails_when_checked_then_the_report_is_still_made_without_reasons() -> None:
    dispatcher = RecordingDispatcher()
    check, *_ = make_check(reasons=FakeReasons(LAST_HOUR, TOTALS, fail=True), dispatcher=dispatcher)
    result = check.run(NOW_MS)
    report = by_proxy(result.reports)["orders"]
    assert report.severity is Severity.CRITICAL
    assert (report.top_reasons_last_hour, report.hints) == ((), {})
    assert result.failures == {}
    assert len(dispatcher.calls) == 3


def test_given_no_available_proxy_when_checked_then_no_metrics_are_read() -> None:
    check, _, metrics, _ = make_check(proxies=(MODIFYING,))
    result = check.run(NOW_MS)
    assert metrics.reads == []
    assert [r.proxy for r in result.reports] == ["reports"]


def test_given_a_run_when_counted_then_findings_by_severity_counts_decided_findings_per_severity() -> None:
    check, *_ = make_check(missing=("ghost",))
    counts = check.run(NOW_MS).findings_by_severity()
    reports = check.run(NOW_MS).reports
    decided = [f for r in reports for f in r.findings if not f.insufficient_data]
    assert set(counts) == set(Severity)
    assert sum(counts.values()) == len(decided)
    assert counts[Severity.CRITICAL] == sum(1 for f in decided if f.severity is Severity.CRITICAL) > 0
    info = [(f.proxy, f.rule) for f in decided if f.severity is Severity.INFO]
    assert counts[Severity.INFO] == len(info)
    assert ("reports", "proxy_unavailable") in info  # reports is modifying


@dataclass
class ChannelDispatcher:
    """Answers each proxy's messages with the given channel statuses; raises for the proxies in ``fail_for``."""

    statuses: Mapping[str, Mapping[str, DeliveryStatus]]
    fail_for: frozenset[str] = frozenset()

    def process(
        self, report: ProxyReport, now_ms: int, dry_run: bool = False, deadline: float | None = None
    ) -> DispatchResult:
        if report.proxy in self.fail_for:
            raise TimeoutError("alert state unavailable")
        outcomes = {c: DeliveryOutcome(c, status) for c, status in self.statuses.get(report.proxy, {}).items()}
        return DispatchResult(report.proxy, outcomes=outcomes)

    def alerting_proxies(self) -> frozenset[str]:
        return frozenset()


def test_given_channel_outcomes_when_counted_then_accepted_are_sent_and_failed_rejected_and_raised_are_failures() -> (
    None
):
    dispatcher = ChannelDispatcher(
        {
            "orders": {"slack": DeliveryStatus.ACCEPTED, "sns": DeliveryStatus.FAILED},
            "billing": {"slack": DeliveryStatus.SKIPPED, "sns": DeliveryStatus.REJECTED},
        },
        fail_for=frozenset({"reports"}),
    )
    check, *_ = make_check(dispatcher=dispatcher)
    result = check.run(NOW_MS)
    assert result.alerts_sent == 1
    assert result.delivery_failures == 3  # orders' SNS, billing's SNS, and reports, whose alerting raised
    assert result.failures == {"reports": "TimeoutError: alert state unavailable"}


def test_given_a_run_when_asked_for_unhealthy_proxies_then_each_not_ok_proxy_has_its_worst_severity() -> None:
    check, *_ = make_check(missing=("ghost",))
    result = check.run(NOW_MS)
    assert result.unhealthy == {r.proxy: r.severity for r in result.reports if r.severity is not Severity.OK}
    assert result.unhealthy["orders"] is Severity.CRITICAL
    assert "billing" not in result.unhealthy


# ---------------------------------------------------------------------------- runs limited to some proxies
def test_given_names_when_checked_then_only_those_are_discovered_and_read() -> None:
    check, proxies, metrics, _ = make_check(proxies=(PINNING,))
    result = check.run(NOW_MS, names=["orders"])
    assert proxies.asked == [("orders",)]
    assert [r[0] for r in metrics.reads] == [("orders",)]
    assert [r.proxy for r in result.reports] == ["orders"]


def test_given_no_names_when_a_limited_run_is_asked_then_nothing_is_discovered_read_or_dispatched() -> None:
    dispatcher = RecordingDispatcher(alerting=frozenset({"deleted"}))
    check, proxies, metrics, _ = make_check(dispatcher=dispatcher)
    result = check.run(NOW_MS, names=[])
    assert (result.outcomes, proxies.asked, metrics.reads, dispatcher.calls) == ((), [], [], [])


def test_given_a_hot_proxy_that_no_longer_exists_when_a_limited_run_checks_it_then_it_is_gone_and_others_are_left() -> (
    None
):
    dispatcher = RecordingDispatcher(alerting=frozenset({"deleted", "elsewhere"}))
    check, *_ = make_check(proxies=(PINNING,), missing=("deleted",), dispatcher=dispatcher)
    reports = by_proxy(check.run(NOW_MS, names=["orders", "deleted"]).reports)
    assert reports["deleted"].status == GONE_STATUS
    assert "elsewhere" not in reports  # a limited run does not close other proxies' alerts


def test_given_a_configured_name_missing_when_a_limited_run_checks_it_then_it_stays_not_found() -> None:
    check, *_ = make_check(proxies=(), missing=("ghost",), names=("ghost",))
    (report,) = check.run(NOW_MS, names=["ghost"]).reports
    assert report.status == NOT_FOUND_STATUS


def test_given_a_dispatcher_when_asked_for_alerting_proxies_then_it_answers_and_without_one_there_are_none() -> None:
    check, *_ = make_check(dispatcher=RecordingDispatcher(alerting=frozenset({"orders"})))
    bare, *_ = make_check()
    assert (check.alerting_proxies(), bare.alerting_proxies()) == (frozenset({"orders"}), frozenset())
