"""Diagnosis rules, their thresholds and minimum-traffic guards (the forecast maths: test_forecast.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from pinwatch import diagnose as dx
from pinwatch.config import Thresholds
from pinwatch.discovery import ProxyInfo
from pinwatch.findings import Finding, Severity
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
from pinwatch.records import EngineFamily

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
    minutes: int = MINUTES,
) -> ProxyMetrics:
    """A busy, healthy proxy unless told otherwise."""
    return ProxyMetrics(
        "orders",
        tuple(START_MS + i * MINUTE_MS for i in range(minutes)),
        {
            CLIENT_CONNECTIONS: series(clients, minutes),
            DATABASE_CONNECTIONS: series(db, minutes),
            PINNED: series(pinned, minutes),
            IN_TRANSACTION: series(in_tx, minutes),
            BORROWED: series(borrowed, minutes),
            MAX_ALLOWED: series(max_allowed, minutes),
            BORROW_LATENCY: series(latency_us, minutes),
        },
    )


def rule(finding_rule: str, m: ProxyMetrics, proxy: ProxyInfo = PROXY, thresholds: Thresholds | None = None) -> Finding:
    result = dx.diagnose(proxy, m, thresholds or Thresholds())
    (finding,) = [f for f in result.findings if f.rule == finding_rule]
    return finding


# --------------------------------------------------------------------------- the healthy baseline


def test_given_a_healthy_busy_proxy_when_diagnosed_then_every_rule_is_ok_with_data() -> None:
    noisy_db = [80 + (i % 3) for i in range(MINUTES)]
    result = dx.diagnose(PROXY, metrics(db=noisy_db), Thresholds())
    assert {f.rule for f in result.findings} == set(dx.METRIC_RULES)
    assert [(f.rule, f.severity, f.insufficient_data) for f in result.findings if f.severity is not Severity.OK] == []
    assert not any(f.insufficient_data for f in result.findings)
    assert result.exhaustion_eta_minutes is None
    assert result.figures[DATABASE_CONNECTIONS] == noisy_db[-1]
    assert result.figures[BORROW_LATENCY] == 2_000  # report figures: latest per metric, in CloudWatch's units
    (multiplexing,) = [f for f in result.findings if f.rule == dx.MULTIPLEXING_LOST]
    assert multiplexing.figures == {
        "client_connections": 400,
        "database_connections": noisy_db[-1],
        "pinned_connections": 0,
        "clients_per_db_connection": round(400 / noisy_db[-1], 2),
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
    db: list[float | None] = [*ramp(20, 0, MINUTES - 1), None]
    pinned: list[float | None] = [*([12.0] * (MINUTES - 1)), None]
    finding = rule(dx.PINNED_SHARE, metrics(db=db, pinned=pinned))
    assert finding.severity is Severity.CRITICAL
    assert finding.figures["pinned_pct"] == 60.0


# --------------------------------------------------------------------------- pinned_share


@pytest.mark.parametrize(
    ("pinned", "db", "severity", "pct"),
    [
        (0, 40, Severity.OK, 0.0),
        (2, 10, Severity.OK, 20.0),  # 20% but below the 3-pinned minimum
        (3, 31, Severity.OK, 9.7),
        (3, 30, Severity.WARNING, 10.0),  # warning at exactly 10%
        (9, 20, Severity.WARNING, 45.0),
        (10, 20, Severity.CRITICAL, 50.0),  # critical at exactly 50%
        (40, 40, Severity.CRITICAL, 100.0),
    ],
)
def test_given_pinned_and_database_connections_when_diagnosed_then_pinned_share_grades_the_share(
    pinned: float, db: float, severity: Severity, pct: float
) -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=pinned, db=db))
    assert (finding.severity, finding.figures["pinned_pct"]) == (severity, pct)
    assert f"{pinned:g} of {db:g} database connections pinned" in finding.summary


def test_given_raised_thresholds_when_diagnosed_then_pinned_share_uses_them() -> None:
    thresholds = Thresholds(pinned_warning_pct=20, pinned_critical_pct=60, pinned_min_connections=5)
    assert rule(dx.PINNED_SHARE, metrics(pinned=6, db=40), thresholds=thresholds).severity is Severity.OK
    assert rule(dx.PINNED_SHARE, metrics(pinned=8, db=40), thresholds=thresholds).severity is Severity.WARNING
    assert rule(dx.PINNED_SHARE, metrics(pinned=4, db=4), thresholds=thresholds).severity is Severity.OK


@pytest.mark.parametrize(("pinned", "db"), [(None, 40), (3, None)])
def test_given_missing_pinned_or_connections_when_diagnosed_then_pinned_share_is_insufficient(
    pinned: float | None, db: float | None
) -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=pinned, db=db))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK
    # Latest figures come from the newest minute with database connections: without it, none.
    expected_pinned = pinned if db is not None else None
    assert finding.figures == {"pinned_connections": expected_pinned, "database_connections": db}


def test_given_no_database_connections_when_diagnosed_then_pinned_share_is_ok() -> None:
    finding = rule(dx.PINNED_SHARE, metrics(pinned=0, db=0))
    assert (finding.severity, finding.insufficient_data) == (Severity.OK, False)


# --------------------------------------------------------------------------- multiplexing_lost


@pytest.mark.parametrize(
    ("clients", "db", "severity"),
    [
        (400, 80, Severity.OK),
        (31, 20, Severity.OK),  # 1.55
        (30, 20, Severity.WARNING),  # 1.5: warning at the threshold
        (20, 20, Severity.WARNING),  # exactly the 20-client minimum
        (19, 19, Severity.OK),  # 1:1 but too few clients to judge
        (5, 5, Severity.OK),
        (25, 0, Severity.OK),
    ],
)
def test_given_clients_and_database_connections_when_diagnosed_then_multiplexing_lost_needs_traffic(
    clients: float, db: float, severity: Severity
) -> None:
    finding = rule(dx.MULTIPLEXING_LOST, metrics(clients=clients, db=db, pinned=0))
    assert finding.severity is severity
    assert not finding.insufficient_data


def test_given_lost_multiplexing_with_pins_when_diagnosed_then_the_summary_states_the_ratio_and_pins() -> None:
    finding = rule(dx.MULTIPLEXING_LOST, metrics(clients=44, db=40, pinned=12))
    assert finding.summary.startswith(
        "only 1.1 clients per database connection (44 clients on 40 connections, 12 pinned)"
    )
    assert finding.figures["clients_per_db_connection"] == 1.1


def test_given_no_client_data_when_diagnosed_then_multiplexing_lost_is_insufficient() -> None:
    assert rule(dx.MULTIPLEXING_LOST, metrics(clients=None)).insufficient_data


# --------------------------------------------------------------------------- pool_pressure


@pytest.mark.parametrize(
    ("db", "max_allowed", "severity"),
    [(79, 100, Severity.OK), (80, 100, Severity.WARNING), (94, 100, Severity.WARNING), (95, 100, Severity.CRITICAL)],
)
def test_given_connections_against_the_limit_when_diagnosed_then_pool_pressure_grades_the_use(
    db: float, max_allowed: float, severity: Severity
) -> None:
    finding = rule(dx.POOL_PRESSURE, metrics(db=db, max_allowed=max_allowed, clients=1000))
    assert finding.severity is severity
    assert finding.figures == {
        "database_connections": db,
        "max_connections_allowed": max_allowed,
        "pool_used_pct": round(db / max_allowed * 100, 1),
    }


@pytest.mark.parametrize("max_allowed", [None, 0])
def test_given_no_usable_limit_when_diagnosed_then_pool_pressure_is_insufficient(max_allowed: float | None) -> None:
    finding = rule(dx.POOL_PRESSURE, metrics(max_allowed=max_allowed))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK


# --------------------------------------------------------------------------- exhaustion_forecast


@pytest.mark.parametrize(
    ("db", "max_allowed", "severity", "eta"),
    [
        (ramp(10, 3), 200, Severity.WARNING, (200 - 97) / 3),  # ~34 min
        (ramp(73, 3), 200, Severity.CRITICAL, (200 - 160) / 3),  # ~13 min
        (ramp(10, 1), 500, Severity.OK, (500 - 39) / 1),  # exhausts, but not within the hour
        (ramp(10, 3), 97, Severity.CRITICAL, 0.0),  # already at the limit and still rising
    ],
)
def test_given_rising_connections_when_diagnosed_then_the_forecast_gives_the_eta_to_the_limit(
    db: list[float], max_allowed: float, severity: Severity, eta: float
) -> None:
    m = metrics(db=db, max_allowed=max_allowed, clients=1000)
    finding = rule(dx.EXHAUSTION_FORECAST, m)
    assert finding.severity is severity
    assert finding.figures["eta_minutes"] == pytest.approx(eta, abs=0.05)
    assert finding.figures["db_slope_per_minute"] == pytest.approx(db[1] - db[0])
    assert dx.diagnose(PROXY, m, Thresholds()).exhaustion_eta_minutes == pytest.approx(eta, abs=0.05)


def test_given_a_draining_pool_when_diagnosed_then_the_summary_states_eta_and_rate() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=ramp(70.9, 3.1), max_allowed=200, clients=1000))
    assert (
        finding.summary
        == "pool exhausted in ~13 min at +3.1 connections/min (160.8 database connections of 200 allowed)"
    )


def test_given_a_pool_already_at_its_limit_when_diagnosed_then_the_summary_says_exhausted_now() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=ramp(13, 3), max_allowed=100, clients=1000))
    assert finding.summary.startswith("pool exhausted now and still rising at +3.0 connections/min")


def test_given_pins_replacing_shared_connections_when_diagnosed_then_the_pinned_trend_drives_the_forecast() -> None:
    # Database connections hold steady at 80 of 100 while pinned sessions take them over.
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=80, pinned=ramp(20, 2), max_allowed=100, clients=1000))
    assert finding.severity is Severity.CRITICAL
    assert finding.figures["eta_minutes"] == pytest.approx((100 - 78) / 2)
    assert "at +2.0 pinned connections/min (78 pinned connections of 100 allowed)" in finding.summary


@pytest.mark.parametrize(
    ("db", "why"),
    [
        ([80.0] * MINUTES, r"database connections are flat \(0\.0/min\)"),
        (ramp(150, -2), r"database connections are falling \(-2\.0/min\)"),
        (ramp(80, 0.05), r"database connections rise too slowly to matter \(\+0\.05/min < 0\.1/min\)"),
        # A slight rise buried in noise: a slope, but a line that explains little of the series.
        (
            [80 + (12 if i % 2 else -12) + 0.2 * i for i in range(MINUTES)],
            r"database connections are too noisy for a trend \(\+0\.\d/min, r² 0\.\d\d < 0\.5\)",
        ),
    ],
    ids=["flat", "falling", "noise-floor", "low-r2"],
)
def test_given_no_clear_rise_when_diagnosed_then_there_is_no_forecast_and_the_summary_says_why(
    db: list[float], why: str
) -> None:
    m = metrics(db=db, max_allowed=100, clients=1000)
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
    db = [80 + (12 if i % 2 else -12) + 1.0 * i for i in range(MINUTES)]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=db, pinned=ramp(40, -1), max_allowed=200, clients=1000))

    assert finding.severity is Severity.OK
    assert "no rising trend" not in finding.summary
    assert re.search(
        r"database connections are too noisy for a trend \(\+1\.\d/min, r² 0\.\d\d < 0\.5\)", finding.summary
    )
    assert finding.summary.endswith("; pinned connections are falling (-1.0/min)")


def test_given_pins_published_for_only_a_few_minutes_when_diagnosed_then_the_summary_says_so() -> None:
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=80, pinned=[None] * (MINUTES - 3) + [1, 2, 3], max_allowed=200))

    assert finding.summary.endswith("pinned connections have too few points for a trend (3 of the 5 minutes needed)")


def test_given_fewer_points_than_a_trend_needs_when_diagnosed_then_the_forecast_is_insufficient() -> None:
    db: list[float | None] = [None] * (MINUTES - 4) + [10, 40, 70, 100]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=db, max_allowed=110, clients=1000))
    assert finding.insufficient_data
    assert finding.severity is Severity.OK
    assert "4 of the 5 minutes needed" in finding.summary


def test_given_a_rise_with_gaps_when_diagnosed_then_the_forecast_uses_the_minutes_that_have_data() -> None:
    db: list[float | None] = [10 + 3.0 * i if i % 4 else None for i in range(MINUTES)]
    finding = rule(dx.EXHAUSTION_FORECAST, metrics(db=db, max_allowed=200, clients=1000))
    assert finding.figures["db_slope_per_minute"] == pytest.approx(3.0)
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
    ("latency_us", "severity"),
    [(2_000, Severity.OK), (100_000, Severity.OK), (100_001, Severity.WARNING), (450_000, Severity.WARNING)],
)
def test_given_borrow_latency_in_microseconds_when_diagnosed_then_it_is_compared_in_milliseconds(
    latency_us: float, severity: Severity
) -> None:
    finding = rule(dx.BORROW_LATENCY_RULE, metrics(latency_us=latency_us))
    assert finding.severity is severity
    assert f"{latency_us / 1000:.0f} ms" in finding.summary


def test_given_no_latency_datapoint_when_diagnosed_then_borrow_latency_is_insufficient() -> None:
    assert rule(dx.BORROW_LATENCY_RULE, metrics(latency_us=None)).insufficient_data


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
    m = metrics(db=sparse, pinned=sparse, clients=sparse, max_allowed=None, in_tx=None, latency_us=None)
    findings = {f.rule: f for f in dx.diagnose(PROXY, m, Thresholds()).findings}
    assert findings[dx.PINNED_SHARE].severity is Severity.CRITICAL  # one real minute is enough for a share
    undecided = {rule for rule, f in findings.items() if f.insufficient_data}
    assert undecided == {dx.POOL_PRESSURE, dx.EXHAUSTION_FORECAST, dx.OPEN_TRANSACTIONS, dx.BORROW_LATENCY_RULE}
    assert all(findings[rule].severity is Severity.OK for rule in undecided)
