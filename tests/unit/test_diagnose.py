"""Diagnosis rules, their thresholds and minimum-traffic guards (the forecast maths: test_forecast.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from pinwatch import diagnose as dx
from pinwatch.alerts.render import numbers
from pinwatch.config import Thresholds
from pinwatch.discovery import ProxyInfo
from pinwatch.findings import Finding, ProxyReport, Severity
from pinwatch.metrics import (
    BORROW_LATENCY,
    BORROWED,
    CLIENT_CONNECTIONS,
    DATABASE_CONNECTIONS,
    IN_TRANSACTION,
    MAX_ALLOWED,
    MINUTE_MS,
    PINNED,
    SETUP_FAILED,
    ProxyMetrics,
)
from pinwatch.records import EngineFamily, PoolConfig

START_MS = 1_764_000_000_000 - 1_764_000_000_000 % MINUTE_MS
MINUTES = 30
PROXY = ProxyInfo("orders", EngineFamily.POSTGRESQL, "available", debug_logging=True)

Series = float | None | Sequence[float | None]


def series(value: Series, minutes: int = MINUTES) -> tuple[float | None, ...]:
    if value is None or isinstance(value, int | float):
        return (value,) * minutes
    assert len(value) == minutes
    return tuple(value)


def ramp(first: float, step: float, minutes: int = MINUTES) -> list[float]:
    return [first + step * i for i in range(minutes)]


def metrics(
    *,
    clients: Series = 400,
    db: Series = 80,
    pinned: Series = 0,
    in_tx: Series = 10,
    borrowed: Series = 50,
    max_allowed: Series = 200,
    latency_us: Series = 2_000,
    setup_failed: Series | str = "not read",
    minutes: int = MINUTES,
) -> ProxyMetrics:
    """A busy, healthy proxy unless told otherwise (``setup_failed`` left out: not read this run)."""
    data = {
        CLIENT_CONNECTIONS: series(clients, minutes),
        DATABASE_CONNECTIONS: series(db, minutes),
        PINNED: series(pinned, minutes),
        IN_TRANSACTION: series(in_tx, minutes),
        BORROWED: series(borrowed, minutes),
        MAX_ALLOWED: series(max_allowed, minutes),
        BORROW_LATENCY: series(latency_us, minutes),
    }
    if not isinstance(setup_failed, str):
        data[SETUP_FAILED] = series(setup_failed, minutes)
    return ProxyMetrics("orders", tuple(START_MS + i * MINUTE_MS for i in range(minutes)), data)


def pooled(
    max_pct: int | None = 100, idle_pct: int | None = 50, timeout_s: int | None = 120, name: str = "orders"
) -> ProxyInfo:
    """The proxy with these target-group settings."""
    pool = PoolConfig(
        max_connections_percent=max_pct, max_idle_connections_percent=idle_pct, connection_borrow_timeout_s=timeout_s
    )
    return ProxyInfo(name, EngineFamily.POSTGRESQL, "available", debug_logging=True, pool=pool)


def rule(finding_rule: str, m: ProxyMetrics, proxy: ProxyInfo = PROXY, thresholds: Thresholds | None = None) -> Finding:
    result = dx.diagnose(proxy, m, thresholds or Thresholds())
    (finding,) = [f for f in result.findings if f.rule == finding_rule]
    return finding


# --------------------------------------------------------------------------- the healthy baseline


def test_given_a_healthy_busy_proxy_when_diagnosed_then_every_rule_is_ok_with_data() -> None:
    noisy_db = [80 + (i % 3) for i in range(MINUTES)]
    result = dx.diagnose(PROXY, metrics(db=noisy_db, setup_failed=0), Thresholds())
    assert {f.rule for f in result.findings} == set(dx.METRIC_RULES)
    assert [(f.rule, f.severity, f.insufficient_data) for f in result.findings if f.severity is not Severity.OK] == []
    assert not any(f.insufficient_data for f in result.findings)
    assert result.exhaustion_eta_minutes is None
    assert result.figures[DATABASE_CONNECTIONS] == noisy_db[-1]
    assert result.figures[BORROW_LATENCY] == 2_000  # report figures: latest per metric, in CloudWatch's units
    (multiplexing,) = [f for f in result.findings if f.rule == dx.MULTIPLEXING_LOST]
    assert multiplexing.figures == {
        "client_connections": 400,
        "in_use_connections": 50,  # the borrowed gauge, not the 80+ open connections
        "pinned_connections": 0,
        "clients_per_connection_in_use": 8.0,
    }


def test_given_no_metrics_when_diagnosed_then_every_rule_is_insufficient_and_none_raises() -> None:
    for m in (
        None,
        metrics(clients=None, db=None, pinned=None, in_tx=None, borrowed=None, max_allowed=None, latency_us=None),
    ):
        result = dx.diagnose(PROXY, m, Thresholds())
        assert len(result.findings) == len(dx.METRIC_RULES)
        assert all(f.insufficient_data and f.severity is Severity.OK for f in result.findings)


def test_given_the_newest_minute_is_not_published_yet_when_diagnosed_then_figures_come_from_the_last_published_minute() -> (
    None
):
    gone: list[float | None] = [*([20.0] * (MINUTES - 1)), None]
    pinned: list[float | None] = [*([12.0] * (MINUTES - 1)), None]
    finding = rule(dx.PINNED_SHARE, metrics(db=gone, borrowed=gone, pinned=pinned, max_allowed=24))
    assert finding.severity is Severity.CRITICAL
    assert finding.figures["pinned_pct"] == 60.0


# --------------------------------------------------------------------------- in use, not open


def test_given_an_idle_pool_after_a_burst_when_diagnosed_then_idle_connections_are_not_load() -> None:
    # 30 clients, 45 connections kept open by the pool, 2 of them in use: the burst is over.
    burst = [80.0] * 10 + [2.0] * (MINUTES - 10)
    m = metrics(clients=30, db=45, borrowed=burst, pinned=0, max_allowed=100, setup_failed=0)
    result = dx.diagnose(pooled(max_pct=100, idle_pct=50), m, Thresholds())
    assert [f.rule for f in result.findings if f.severity is not Severity.OK] == []
    (pressure,) = [f for f in result.findings if f.rule == dx.POOL_PRESSURE]
    assert pressure.summary == (
        "2 of 100 allowed database connections in use (2%); 45 open, 43 of them idle in the pool (not load), "
        "which may keep up to ~50 idle (MaxIdleConnectionsPercent 50%)"
    )


def test_given_a_borrowed_gauge_that_lags_the_pins_when_diagnosed_then_pinned_connections_count_as_in_use() -> None:
    finding = rule(dx.PINNED_SHARE, metrics(borrowed=5, pinned=12, max_allowed=200))
    assert finding.figures["in_use_connections"] == 12
    assert finding.figures["pinned_pct"] == 100.0


def test_given_borrowed_datapoints_missing_in_some_minutes_when_diagnosed_then_they_read_as_none_borrowed() -> None:
    # The gauge published earlier in the window, then nothing while the pool sat idle.
    borrowed: list[float | None] = [30.0] * 10 + [None] * (MINUTES - 10)
    finding = rule(dx.POOL_PRESSURE, metrics(borrowed=borrowed, db=45, pinned=0, max_allowed=50))
    assert (finding.severity, finding.figures["in_use_connections"]) == (Severity.OK, 0)


def test_given_the_borrowed_gauge_missing_in_the_newest_minute_when_diagnosed_then_the_alert_numbers_read_it_as_the_rules_do() -> (
    None
):
    # The report's figures feed the alert's numbers: they must not fall back to the open count
    # (45 of 50, 90%) while the pool-pressure finding says none of them is in use.
    borrowed: list[float | None] = [30.0] * 10 + [None] * (MINUTES - 10)
    result = dx.diagnose(PROXY, metrics(borrowed=borrowed, db=45, pinned=0, max_allowed=50), Thresholds())

    report = ProxyReport("orders", None, "available", result.findings, figures=result.figures)

    assert result.figures[BORROWED] == 0
    assert ("DB connections in use / max", "0 / 50 (0%)") in numbers(report)
    assert ("DB connections open", "45 (45 idle in the pool)") in numbers(report)


def test_given_no_borrowed_gauge_when_diagnosed_then_open_connections_stand_in_for_in_use() -> None:
    finding = rule(dx.POOL_PRESSURE, metrics(borrowed=None, db=90, max_allowed=100))
    assert (finding.severity, finding.figures["in_use_connections"]) == (Severity.WARNING, 90)


# --------------------------------------------------------------------------- pinned_share


@pytest.mark.parametrize(
    ("pinned", "borrowed", "max_allowed", "severity", "pct"),
    [
        (0, 40, 200, Severity.OK, 0.0),
        (2, 10, 200, Severity.OK, 20.0),  # 20% but below the 3-pinned minimum
        (3, 31, 30, Severity.OK, 9.7),
        (3, 30, 30, Severity.WARNING, 10.0),  # warning at exactly 10%, pins hold 10% of the limit
        (3, 30, 200, Severity.INFO, 10.0),  # the same pins far from the limit: reported, nobody woken
        (10, 20, 200, Severity.INFO, 50.0),
        (40, 40, 400, Severity.WARNING, 100.0),  # every connection pinned, but the pool is 10% used
        (9, 20, 25, Severity.WARNING, 45.0),
        (10, 20, 25, Severity.CRITICAL, 50.0),  # critical at 50% pinned with the pool 80% used
        (40, 40, 50, Severity.CRITICAL, 100.0),
    ],
)
def test_given_pins_among_connections_in_use_when_diagnosed_then_pinned_share_grades_by_consequence(
    pinned: float, borrowed: float, max_allowed: float, severity: Severity, pct: float
) -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=pinned, borrowed=borrowed, max_allowed=max_allowed))
    assert (finding.severity, finding.figures["pinned_pct"]) == (severity, pct)
    assert f"{pinned:g} of {borrowed:g} database connections in use are pinned" in finding.summary


def test_given_a_tiny_dev_proxy_with_every_client_pinned_when_diagnosed_then_it_is_info_not_critical() -> None:
    m = metrics(clients=3, db=5, borrowed=3, pinned=3, max_allowed=80, in_tx=0)
    result = {f.rule: f for f in dx.diagnose(PROXY, m, Thresholds()).findings}
    assert result[dx.PINNED_SHARE].severity is Severity.INFO
    assert "they hold only 4% of the 80 allowed" in result[dx.PINNED_SHARE].summary
    assert max(f.severity.rank for f in result.values()) == Severity.INFO.rank


def test_given_raised_thresholds_when_diagnosed_then_pinned_share_uses_them() -> None:
    thresholds = Thresholds(pinned_warning_pct=20, pinned_critical_pct=60, pinned_min_connections=5)
    m = {"max_allowed": 40}
    assert rule(dx.PINNED_SHARE, metrics(pinned=6, borrowed=40, **m), thresholds=thresholds).severity is Severity.OK
    assert (
        rule(dx.PINNED_SHARE, metrics(pinned=8, borrowed=40, **m), thresholds=thresholds).severity is Severity.WARNING
    )
    assert rule(dx.PINNED_SHARE, metrics(pinned=4, borrowed=4, **m), thresholds=thresholds).severity is Severity.OK


@pytest.mark.parametrize(("pinned", "in_use"), [(None, 40), (3, None)])
def test_given_missing_pinned_or_connections_when_diagnosed_then_pinned_share_is_insufficient(
    pinned: float | None, in_use: float | None
) -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=pinned, db=in_use, borrowed=in_use))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK
    # Latest figures come from the newest minute with database connections: without it, none.
    expected_pinned = pinned if in_use is not None else None
    expected_limit = 200 if in_use is not None else None
    assert finding.figures == {
        "pinned_connections": expected_pinned,
        "in_use_connections": in_use,
        "max_connections_allowed": expected_limit,
    }


def test_given_no_connections_in_use_when_diagnosed_then_pinned_share_is_ok() -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=0, borrowed=0))
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, False)


# --------------------------------------------------------------------------- multiplexing_lost


@pytest.mark.parametrize(
    ("clients", "borrowed", "pinned", "severity"),
    [
        (400, 80, 0, Severity.OK),
        (31, 20, 20, Severity.OK),  # 1.55
        (30, 20, 20, Severity.WARNING),  # 1.5: warning at the threshold, pins hold 10% of the limit
        (20, 20, 20, Severity.WARNING),  # exactly the 20-client minimum
        (30, 20, 3, Severity.INFO),  # lost to 3 pins holding 1.5% of the limit: reported, not paged
        (30, 20, 0, Severity.OK),  # every client busy at once, none pinned: load, not lost multiplexing
        (19, 19, 19, Severity.OK),  # 1:1 but too few clients to judge
        (5, 5, 5, Severity.OK),
        (25, 0, 0, Severity.OK),
    ],
)
def test_given_clients_and_connections_in_use_when_diagnosed_then_multiplexing_lost_needs_traffic_and_pins(
    clients: float, borrowed: float, pinned: float, severity: Severity
) -> None:
    finding = rule(dx.MULTIPLEXING_LOST, metrics(clients=clients, borrowed=borrowed, pinned=pinned))
    assert finding.severity is severity
    assert not finding.insufficient_data


def test_given_lost_multiplexing_with_pins_when_diagnosed_then_the_summary_states_the_ratio_and_pins() -> None:
    finding = rule(dx.MULTIPLEXING_LOST, metrics(clients=44, borrowed=40, pinned=12, max_allowed=100))
    assert finding.summary.startswith(
        "only 1.1 clients per database connection in use (44 clients on 40 connections in use, 12 pinned): "
        "multiplexing is lost to pinning"
    )
    assert finding.figures["clients_per_connection_in_use"] == 1.1


def test_given_no_client_data_when_diagnosed_then_multiplexing_lost_is_insufficient() -> None:
    assert rule(dx.MULTIPLEXING_LOST, metrics(clients=None)).insufficient_data


# --------------------------------------------------------------------------- pool_pressure


@pytest.mark.parametrize(
    ("borrowed", "max_allowed", "severity"),
    [(79, 100, Severity.OK), (80, 100, Severity.WARNING), (94, 100, Severity.WARNING), (95, 100, Severity.CRITICAL)],
)
def test_given_connections_in_use_against_the_limit_when_diagnosed_then_pool_pressure_grades_the_use(
    borrowed: float, max_allowed: float, severity: Severity
) -> None:
    finding = rule(dx.POOL_PRESSURE, metrics(borrowed=borrowed, db=100, max_allowed=max_allowed, clients=1000))
    assert finding.severity is severity
    assert finding.figures == {
        "in_use_connections": borrowed,
        "database_connections": 100,
        "max_connections_allowed": max_allowed,
        "pool_used_pct": round(borrowed / max_allowed * 100, 1),
    }


@pytest.mark.parametrize(("max_allowed", "why"), [(None, "no MaxDatabaseConnectionsAllowed datapoint"), (0, "is 0")])
def test_given_no_usable_limit_when_diagnosed_then_pool_pressure_is_insufficient(
    max_allowed: float | None, why: str
) -> None:
    finding = rule(dx.POOL_PRESSURE, metrics(max_allowed=max_allowed))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK
    assert why in finding.summary


# --------------------------------------------------------------------------- no_connections_allowed


@pytest.mark.parametrize(
    ("max_allowed", "severity", "insufficient"),
    [(0, Severity.CRITICAL, False), (100, Severity.OK, False), (None, Severity.OK, True)],
)
def test_given_the_limit_when_diagnosed_then_a_zero_limit_is_a_critical_finding_not_missing_data(
    max_allowed: float | None, severity: Severity, insufficient: bool
) -> None:
    finding = rule(dx.NO_CONNECTIONS_ALLOWED, metrics(max_allowed=max_allowed), proxy=pooled(max_pct=20))
    assert (finding.severity, finding.insufficient_data) == (severity, insufficient)
    if severity is Severity.CRITICAL:
        assert "ConnectionBorrowTimeout (120 s)" in finding.summary
        assert "MaxConnectionsPercent (now 20%)" in finding.details[1]


# --------------------------------------------------------------------------- undersized_pool


def test_given_a_saturated_pool_with_nothing_pinned_when_diagnosed_then_undersized_pool_is_critical_and_names_the_fix() -> (
    None
):
    m = metrics(clients=300, db=100, borrowed=98, pinned=0, max_allowed=100, latency_us=3_000_000)
    result = {f.rule: f for f in dx.diagnose(pooled(max_pct=20, timeout_s=120), m, Thresholds()).findings}
    undersized = result[dx.UNDERSIZED_POOL]
    assert undersized.severity is Severity.CRITICAL
    assert "the pool is too small, not pinned" in undersized.summary
    assert "raise MaxConnectionsPercent (now 20%)" in undersized.summary
    assert undersized.details[0].startswith("Raise MaxConnectionsPercent (now 20%)")
    # 98 in use needs 30% headroom: 20% x 1.3 = 26%.
    assert "MaxConnectionsPercent=26" in undersized.details[0]
    assert "max_connections" in undersized.details[1]
    assert "ConnectionBorrowTimeout (now 120 s)" in undersized.details[2]
    assert all(result[r].severity is Severity.OK for r in dx.PINNING_RULES)


def test_given_max_connections_percent_already_at_100_when_undersized_then_the_instance_size_leads() -> None:
    m = metrics(borrowed=99, pinned=0, max_allowed=100)
    finding = rule(dx.UNDERSIZED_POOL, m, proxy=pooled(max_pct=100))
    assert finding.severity is Severity.CRITICAL
    assert finding.details[0].startswith("Size the database's max_connections")


def test_given_clients_waiting_below_saturation_when_diagnosed_then_undersized_pool_warns() -> None:
    finding = rule(dx.UNDERSIZED_POOL, metrics(borrowed=60, max_allowed=100, latency_us=2_000_000), proxy=pooled())
    assert finding.severity is Severity.WARNING
    assert "borrowing takes 2000 ms" in finding.summary


@pytest.mark.parametrize(
    ("pinned", "severity", "says"),
    [
        (80, Severity.INFO, "pinning dominates, fix the pinning first"),
        (20, Severity.CRITICAL, "under-provisioning dominates: size the pool first"),
    ],
)
def test_given_a_saturated_pool_with_pins_when_diagnosed_then_the_finding_says_which_dominates(
    pinned: float, severity: Severity, says: str
) -> None:
    m = metrics(borrowed=97, pinned=pinned, max_allowed=100)
    finding = rule(dx.UNDERSIZED_POOL, m, proxy=pooled(max_pct=50))
    assert finding.severity is severity
    assert says in finding.summary


def test_given_room_in_the_pool_and_fast_borrows_when_diagnosed_then_undersized_pool_is_ok() -> None:
    assert rule(dx.UNDERSIZED_POOL, metrics()).severity is Severity.OK


# --------------------------------------------------------------------------- exhaustion_forecast


@pytest.mark.parametrize(
    ("borrowed", "max_allowed", "severity", "eta"),
    [
        (ramp(40, 3), 250, Severity.WARNING, (250 - 127) / 3),  # ~41 min, half the pool in use
        (ramp(10, 3), 200, Severity.OK, (200 - 97) / 3),  # ~34 min, but a ramp at 48%: traffic, not exhaustion
        (ramp(73, 3), 200, Severity.CRITICAL, (200 - 160) / 3),  # ~13 min
        (ramp(10, 1), 500, Severity.OK, (500 - 39) / 1),  # exhausts, but not within the hour
        (ramp(10, 3), 97, Severity.CRITICAL, 0.0),  # already at the limit and still rising
    ],
)
def test_given_rising_connections_in_use_when_diagnosed_then_the_forecast_gives_the_eta_to_the_limit(
    borrowed: list[float], max_allowed: float, severity: Severity, eta: float
) -> None:
    m = metrics(borrowed=borrowed, max_allowed=max_allowed, clients=1000)
    finding = rule(dx.EXHAUSTION_FORECAST, m)
    assert finding.severity is severity
    assert finding.figures["eta_minutes"] == pytest.approx(eta, abs=0.05)
    assert finding.figures["in_use_slope_per_minute"] == pytest.approx(borrowed[1] - borrowed[0])
    assert dx.diagnose(PROXY, m, Thresholds()).exhaustion_eta_minutes == pytest.approx(eta, abs=0.05)


def test_given_a_ramp_far_from_the_limit_when_diagnosed_then_the_summary_says_it_is_not_exhaustion() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=ramp(10, 3), max_allowed=200))
    assert finding.summary.endswith(": a ramp far from the limit (48% used; warns from 50%)")


def test_given_open_connections_rising_but_in_use_flat_when_diagnosed_then_there_is_no_forecast() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=ramp(10, 3), borrowed=20, max_allowed=100))
    assert (finding.severity, finding.figures["eta_minutes"]) == (Severity.OK, None)


def test_given_a_draining_pool_when_diagnosed_then_the_summary_states_eta_and_rate() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=ramp(70.9, 3.1), max_allowed=200, clients=1000))
    assert (
        finding.summary == "pool exhausted in ~13 min at +3.1 connections/min (160.8 connections in use of 200 allowed)"
    )


def test_given_a_pool_already_at_its_limit_when_diagnosed_then_the_summary_says_exhausted_now() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=ramp(13, 3), max_allowed=100, clients=1000))
    assert finding.summary.startswith("pool exhausted now and still rising at +3.0 connections/min")


def test_given_pins_replacing_shared_connections_when_diagnosed_then_the_pinned_trend_drives_the_forecast() -> None:
    # Connections in use hold steady at 80 of 100 while pinned sessions take them over.
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=80, pinned=ramp(20, 2), max_allowed=100, clients=1000))
    assert finding.severity is Severity.CRITICAL
    assert finding.figures["eta_minutes"] == pytest.approx((100 - 78) / 2)
    assert "at +2.0 pinned connections/min (78 pinned connections of 100 allowed)" in finding.summary


@pytest.mark.parametrize(
    ("borrowed", "why"),
    [
        ([80.0] * MINUTES, r"connections in use are flat \(0\.0/min\)"),
        (ramp(150, -2), r"connections in use are falling \(-2\.0/min\)"),
        (ramp(80, 0.05), r"connections in use rise too slowly to matter \(\+0\.05/min < 0\.1/min\)"),
        # A slight rise buried in noise: a slope, but a line that explains little of the series.
        (
            [80 + (12 if i % 2 else -12) + 0.2 * i for i in range(MINUTES)],
            r"connections in use are too noisy for a trend \(\+0\.\d/min, r² 0\.\d\d < 0\.5\)",
        ),
    ],
    ids=["flat", "falling", "noise-floor", "low-r2"],
)
def test_given_no_clear_rise_when_diagnosed_then_there_is_no_forecast_and_the_summary_says_why(
    borrowed: list[float], why: str
) -> None:
    m = metrics(borrowed=borrowed, max_allowed=200, clients=1000)
    finding = rule(dx.EXHAUSTION_FORECAST, m)
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, False)
    assert finding.figures["eta_minutes"] is None
    assert re.fullmatch(
        rf"no exhaustion forecast from the last 30 min: {why}; pinned connections are flat \(0\.0/min\)",
        finding.summary,
    ), finding.summary
    assert dx.diagnose(PROXY, m, Thresholds()).exhaustion_eta_minutes is None


def test_given_a_noisy_rise_and_falling_pins_when_diagnosed_then_the_summary_gives_each_series_reason_and_numbers() -> (
    None
):
    # What a pool looks like right after a fix: busy and jittery, pinned sessions draining.
    busy = [80 + (12 if i % 2 else -12) + 1.0 * i for i in range(MINUTES)]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=busy, pinned=ramp(40, -1), max_allowed=200, clients=1000))

    assert finding.severity is Severity.OK
    assert "no rising trend" not in finding.summary
    assert re.search(
        r"connections in use are too noisy for a trend \(\+1\.\d/min, r² 0\.\d\d < 0\.5\)", finding.summary
    )
    assert finding.summary.endswith("; pinned connections are falling (-1.0/min)")


def test_given_pins_published_for_only_a_few_minutes_when_diagnosed_then_the_summary_says_so() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=80, pinned=[None] * (MINUTES - 3) + [1, 2, 3], max_allowed=200))

    assert finding.summary.endswith("pinned connections have too few points for a trend (3 of the 5 minutes needed)")


def test_given_fewer_points_than_a_trend_needs_when_diagnosed_then_the_forecast_is_insufficient() -> None:
    borrowed: list[float | None] = [None] * (MINUTES - 4) + [10, 40, 70, 100]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=borrowed, db=borrowed, max_allowed=110, clients=1000))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK
    assert "4 of the 5 minutes needed" in finding.summary


def test_given_a_rise_with_gaps_when_diagnosed_then_the_forecast_uses_the_minutes_that_have_data() -> None:
    # Minutes nothing was published (no open count either): left out, not read as zero.
    borrowed: list[float | None] = [10 + 3.0 * i if i % 4 else None for i in range(MINUTES)]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(borrowed=borrowed, db=borrowed, max_allowed=200, clients=1000))
    assert finding.figures["in_use_slope_per_minute"] == pytest.approx(3.0)
    assert finding.figures["eta_minutes"] == pytest.approx((200 - 97) / 3, abs=0.05)


# --------------------------------------------------------------------------- open_transactions


def test_given_pins_rising_with_open_transactions_when_diagnosed_then_the_rule_points_away_from_set() -> None:
    finding = rule(dx.OPEN_TRANSACTIONS, metrics(pinned=ramp(3, 1), in_tx=ramp(5, 1.2), db=120, clients=1000))
    assert finding.severity is Severity.WARNING
    assert "likely open transactions (autocommit off, request-wide transactions), not SET" in finding.summary
    assert finding.figures["pinned_in_transaction_correlation"] == pytest.approx(1.0)
    assert finding.details


@pytest.mark.parametrize(
    ("pinned", "in_tx"),
    [
        (ramp(3, 1), 10),  # pins rise, transactions do not: SET/prepare-style pinning
        (30, ramp(5, 1)),  # transactions rise, pins do not
        (ramp(3, 1), [10 + (i * 7) % 5 for i in range(MINUTES)]),  # uncorrelated
    ],
    ids=["pins-only", "transactions-only", "uncorrelated"],
)
def test_given_pins_that_do_not_follow_transactions_when_diagnosed_then_open_transactions_is_ok(
    pinned: Series, in_tx: Series
) -> None:
    finding = rule(dx.OPEN_TRANSACTIONS, metrics(pinned=pinned, in_tx=in_tx, db=120, clients=1000))
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, False)


def test_given_too_few_pins_when_diagnosed_then_open_transactions_has_nothing_to_explain() -> None:
    finding = rule(dx.OPEN_TRANSACTIONS, metrics(pinned=2, in_tx=ramp(5, 1)))
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, False)


def test_given_pins_but_no_transaction_data_when_diagnosed_then_open_transactions_is_insufficient() -> None:
    finding = rule(dx.OPEN_TRANSACTIONS, metrics(pinned=ramp(3, 1), in_tx=None))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK


# --------------------------------------------------------------------------- borrow_latency


@pytest.mark.parametrize(
    ("latency_us", "timeout_s", "severity"),
    [
        (2_000, 120, Severity.OK),
        (90_000, 120, Severity.OK),  # 90 ms is harmless against a 120 s borrow timeout
        (1_199_000, 120, Severity.OK),
        (1_200_000, 120, Severity.WARNING),  # 1% of the timeout
        (12_000_000, 120, Severity.CRITICAL),  # 10% of the timeout: clients wait toward the error
        (99_000, 1, Severity.OK),  # a 1 s timeout: 1% would be 10 ms, the 100 ms floor keeps noise quiet
        (100_000, 1, Severity.WARNING),
        (500_000, 1, Severity.CRITICAL),  # the 500 ms critical floor
        (30_000_000, 0, Severity.WARNING),  # no timeout: clients never get the error, never critical
    ],
)
def test_given_borrow_latency_when_diagnosed_then_it_is_judged_against_the_proxys_borrow_timeout(
    latency_us: float, timeout_s: int, severity: Severity
) -> None:
    finding = rule(dx.BORROW_LATENCY_RULE, metrics(latency_us=latency_us), proxy=pooled(timeout_s=timeout_s))
    assert finding.severity is severity
    assert f"{latency_us / 1000:.0f} ms" in finding.summary


def test_given_an_unknown_borrow_timeout_when_diagnosed_then_the_documented_default_is_used_and_said() -> None:
    finding = rule(dx.BORROW_LATENCY_RULE, metrics(latency_us=1_500_000))
    assert finding.severity is Severity.WARNING
    assert "ConnectionBorrowTimeout 120 s (the default)" in finding.summary


def test_given_no_latency_datapoint_when_diagnosed_then_borrow_latency_is_insufficient() -> None:
    assert rule(dx.BORROW_LATENCY_RULE, metrics(latency_us=None)).insufficient_data


# --------------------------------------------------------------------------- connection_setup_failed


def test_given_the_setup_failure_metric_not_read_this_run_when_diagnosed_then_the_rule_is_no_news() -> None:
    finding = rule(dx.CONNECTION_SETUP_FAILED, metrics())
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, True)
    assert "not read this run" in finding.summary


@pytest.mark.parametrize(
    ("setup_failed", "db", "borrowed", "severity"),
    [
        (0, 80, 50, Severity.OK),
        ([4.0] * 5 + [0.0] * (MINUTES - 5), 80, 50, Severity.WARNING),  # failed earlier, the pool works
        ([0.0] * (MINUTES - 1) + [6.0], 80, 50, Severity.WARNING),  # failing now, connections still open
        ([0.0] * (MINUTES - 3) + [6.0] * 3, 0, 0, Severity.CRITICAL),  # failing now and nothing open
    ],
)
def test_given_failed_connection_setups_when_diagnosed_then_failing_with_nothing_open_is_critical(
    setup_failed: Series, db: float, borrowed: float, severity: Severity
) -> None:
    finding = rule(dx.CONNECTION_SETUP_FAILED, metrics(setup_failed=setup_failed, db=db, borrowed=borrowed))
    assert (finding.severity, finding.insufficient_data) == (severity, False)
    if severity is not Severity.OK:
        assert "describe-db-proxy-targets --db-proxy-name orders" in finding.details[0]


# --------------------------------------------------------------------------- enhanced_logging_off


def test_given_pins_with_enhanced_logging_off_when_diagnosed_then_an_info_note_says_how_to_enable_it() -> None:
    proxy = ProxyInfo("orders", EngineFamily.MYSQL, "available", debug_logging=False)
    pinned = [0.0] * (MINUTES - 1) + [4.0]
    finding = rule(dx.ENHANCED_LOGGING_OFF, metrics(pinned=pinned), proxy=proxy)
    assert finding.severity is Severity.INFO
    assert "pin reasons are unknown" in finding.summary
    assert "aws rds modify-db-proxy --db-proxy-name orders --debug-logging" in finding.details[0]
    assert "24 hours" in finding.details[1]
    assert "ReasonCapture=on-incident" in finding.details[1]


@pytest.mark.parametrize(
    ("debug_logging", "pinned", "severity"),
    [(True, 5, Severity.OK), (None, 5, Severity.OK), (False, 0, Severity.OK)],
    ids=["logging-on", "logging-unknown", "no-pins"],
)
def test_given_logging_on_or_no_pins_when_diagnosed_then_enhanced_logging_off_is_ok(
    debug_logging: bool | None, pinned: float, severity: Severity
) -> None:
    proxy = ProxyInfo("orders", EngineFamily.MYSQL, "available", debug_logging=debug_logging)
    finding = rule(dx.ENHANCED_LOGGING_OFF, metrics(pinned=pinned), proxy=proxy)
    assert (finding.severity, finding.insufficient_data) == (severity, False)


# --------------------------------------------------------------------------- proxies that are not diagnosed


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        ("modifying", Severity.INFO),
        ("creating", Severity.INFO),
        ("incompatible-network", Severity.WARNING),
        ("suspended", Severity.WARNING),
    ],
)
def test_given_an_unavailable_proxy_when_diagnosed_then_it_is_reported_and_no_rule_decides(
    status: str, severity: Severity
) -> None:
    proxy = ProxyInfo("orders", EngineFamily.MYSQL, status)
    result = dx.diagnose(proxy, metrics(pinned=40, db=40), Thresholds())
    (unavailable,) = [f for f in result.findings if f.rule == dx.PROXY_UNAVAILABLE]
    assert unavailable.severity is severity
    assert status in unavailable.summary
    others = [f for f in result.findings if f.rule != dx.PROXY_UNAVAILABLE]
    assert {f.rule for f in others} == set(dx.METRIC_RULES)
    assert all(f.insufficient_data and f.severity is Severity.OK for f in others)


def test_given_a_configured_name_that_does_not_exist_when_reported_then_the_finding_says_so() -> None:
    finding = dx.not_found_finding("ghost")
    assert (finding.rule, finding.severity) == (dx.PROXY_NOT_FOUND, Severity.WARNING)
    assert "PROXY_NAMES" in finding.summary


def test_given_one_minute_of_data_when_diagnosed_then_only_rules_with_data_decide_and_the_rest_stay_ok() -> None:
    sparse: list[float | None] = [None] * MINUTES
    sparse[-1] = 100
    m = metrics(
        db=sparse, borrowed=sparse, pinned=sparse, clients=sparse, max_allowed=None, in_tx=None, latency_us=None
    )
    findings = {f.rule: f for f in dx.diagnose(PROXY, m, Thresholds()).findings}
    # One real minute is enough for a share; without a limit, pins cannot be weighed against capacity.
    assert findings[dx.PINNED_SHARE].severity is Severity.WARNING
    undecided = {rule for rule, f in findings.items() if f.insufficient_data}
    assert undecided == {
        dx.POOL_PRESSURE,
        dx.UNDERSIZED_POOL,
        dx.EXHAUSTION_FORECAST,
        dx.OPEN_TRANSACTIONS,
        dx.BORROW_LATENCY_RULE,
        dx.CONNECTION_SETUP_FAILED,
        dx.NO_CONNECTIONS_ALLOWED,
    }
    assert all(findings[rule].severity is Severity.OK for rule in undecided)
