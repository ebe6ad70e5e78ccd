"""Discovery, batched metric reads and diagnosis against real RDS proxies and metrics on moto server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pinwatch import diagnose as dx
from pinwatch.check import NOT_FOUND_STATUS
from pinwatch.config import CheckConfig
from pinwatch.discovery import RdsProxyDiscovery
from pinwatch.findings import Severity
from pinwatch.metrics import (
    DATABASE_CONNECTIONS,
    MAX_ALLOWED,
    PINNED,
    CloudWatchMetricsReader,
    metrics_for,
    window_end_ms,
)
from pinwatch.records import EngineFamily
from pinwatch.wiring import build_connection_check
from tests.integration.aws_proxies import (
    WINDOW,
    CallRecorder,
    ProxyFactory,
    clients,
    draining_shapes,
    healthy_busy_shapes,
    put_series,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> dict[str, Any]:
    """Two proxies with 30 minutes of metrics: one draining its pool through pins, one healthy and busy."""
    factory = ProxyFactory(moto_endpoint)
    draining = factory.create("orders", "MYSQL", debug_logging=False, pinning_filters=("EXCLUDE_VARIABLE_SETS",))
    healthy = factory.create("billing", "POSTGRESQL", debug_logging=True)
    (cloudwatch,) = clients(moto_endpoint, "cloudwatch")
    now_ms = int(time.time() * 1000)
    end_ms = window_end_ms(now_ms)
    put_series(cloudwatch, draining, end_ms, draining_shapes())
    put_series(cloudwatch, healthy, end_ms, healthy_busy_shapes())
    return {"draining": draining, "healthy": healthy, "now_ms": now_ms, "endpoint": moto_endpoint}


def config(*names: str) -> CheckConfig:
    # Every metric on every run, so the setup-failure rule decides whatever minute the test runs in.
    environ = {"PROXY_NAMES": ",".join(names), "SETUP_FAILED_EVERY_MINUTES": "1"}
    return CheckConfig.from_env(environ, require_table=False)


def test_given_proxies_in_the_region_when_discovered_then_engine_status_logging_and_pool_are_read(
    world: dict[str, Any],
) -> None:
    (rds,) = clients(world["endpoint"], "rds")
    found = RdsProxyDiscovery(rds).discover()
    by_name = {p.name: p for p in found.proxies}
    draining, healthy = by_name[world["draining"]], by_name[world["healthy"]]
    assert (draining.engine, draining.status, draining.debug_logging, draining.idle_client_timeout_s) == (
        EngineFamily.MYSQL,
        "available",
        False,
        900,
    )
    assert draining.pool is not None
    assert draining.pool.session_pinning_filters == ("EXCLUDE_VARIABLE_SETS",)
    assert draining.pool.max_connections_percent == 100
    # Every setting the rules weigh: the idle allowance (half of MaxConnectionsPercent by default) and the timeout.
    assert (draining.pool.max_idle_connections_percent, draining.pool.connection_borrow_timeout_s) == (50, 120)
    assert (healthy.engine, healthy.debug_logging) == (EngineFamily.POSTGRESQL, True)
    assert healthy.pool is not None
    assert healthy.pool.session_pinning_filters == ()
    assert found.missing == ()


def test_given_configured_names_with_one_missing_when_discovered_then_the_missing_one_is_listed_not_raised(
    world: dict[str, Any],
) -> None:
    (rds,) = clients(world["endpoint"], "rds")
    found = RdsProxyDiscovery(rds).discover([world["healthy"], "no-such-proxy"])
    assert [p.name for p in found.proxies] == [world["healthy"]]
    assert found.missing == ("no-such-proxy",)


def test_given_two_proxies_when_metrics_are_read_then_one_call_returns_minute_aligned_summed_series(
    world: dict[str, Any],
) -> None:
    (cloudwatch,) = clients(world["endpoint"], "cloudwatch")
    calls = CallRecorder(cloudwatch, "GetMetricData")
    series = CloudWatchMetricsReader(cloudwatch).read([world["draining"], world["healthy"]], world["now_ms"], WINDOW)
    assert calls.sent == 1
    assert len(calls.params[0]["MetricDataQueries"]) == 2 * len(metrics_for(world["now_ms"]))
    query = calls.params[0]["MetricDataQueries"][0]["MetricStat"]
    assert "Unit" not in query
    assert query["Metric"]["Dimensions"] == [{"Name": "ProxyName", "Value": world["draining"]}]
    draining, healthy = series[world["draining"]], series[world["healthy"]]
    end_ms = window_end_ms(world["now_ms"])
    assert draining.timestamps_ms == tuple(end_ms - (WINDOW - i) * 60_000 for i in range(WINDOW))
    # Two instances each publish: Sum adds them up.
    assert draining.values(DATABASE_CONNECTIONS) == tuple(2 * (20.0 + 1.5 * m) for m in range(WINDOW))
    assert draining.latest(MAX_ALLOWED) == 150.0
    # Nothing pinned means nothing published: read as 0, not as missing.
    assert healthy.values(PINNED) == (0.0,) * WINDOW


def test_given_a_small_batch_limit_when_metrics_are_read_then_calls_are_ceil_queries_over_limit_and_results_match(
    world: dict[str, Any],
) -> None:
    (cloudwatch,) = clients(world["endpoint"], "cloudwatch")
    proxies = [world["draining"], world["healthy"]]
    # Every metric, the periodic one too, whatever minute this runs in: 2 x 8 queries.
    one_call = CloudWatchMetricsReader(cloudwatch, periodic_every_minutes=1).read(proxies, world["now_ms"], WINDOW)
    calls = CallRecorder(cloudwatch, "GetMetricData")
    batched = CloudWatchMetricsReader(cloudwatch, max_queries_per_call=5, periodic_every_minutes=1).read(
        proxies, world["now_ms"], WINDOW
    )
    assert calls.sent == 4  # 16 queries, 5 per call
    assert [len(p["MetricDataQueries"]) for p in calls.params] == [5, 5, 5, 1]
    assert batched == one_call


def test_given_a_draining_and_a_healthy_busy_proxy_when_checked_then_only_the_draining_one_is_critical_with_an_eta(
    world: dict[str, Any],
) -> None:
    rds, cloudwatch = clients(world["endpoint"], "rds", "cloudwatch")
    calls = CallRecorder(cloudwatch, "GetMetricData")
    check = build_connection_check(
        config(world["draining"], world["healthy"], "ghost-proxy"), rds_client=rds, cloudwatch_client=cloudwatch
    )
    reports = {r.proxy: r for r in check.run(world["now_ms"]).reports}
    assert calls.sent == 1

    draining = reports[world["draining"]]
    findings = {f.rule: f for f in draining.findings}
    assert draining.severity is Severity.CRITICAL
    forecast = findings[dx.EXHAUSTION_FORECAST]
    assert forecast.severity is Severity.CRITICAL
    # 127 of 150 allowed at +3/min: (150 - 127) / 3 = 7.7 min.
    assert draining.exhaustion_eta_minutes == pytest.approx(23 / 3, abs=0.05)
    assert (
        forecast.summary == "pool exhausted in ~8 min at +3.0 connections/min (127 connections in use of 150 allowed)"
    )
    assert findings[dx.PINNED_SHARE].severity is Severity.CRITICAL  # 117 of 127
    assert findings[dx.POOL_PRESSURE].severity is Severity.WARNING  # 85%
    assert findings[dx.MULTIPLEXING_LOST].severity is Severity.WARNING
    # 250 ms borrows against the default 120 s ConnectionBorrowTimeout: slow, but nobody nears the error.
    assert findings[dx.BORROW_LATENCY_RULE].severity is Severity.OK
    assert findings[dx.ENHANCED_LOGGING_OFF].severity is Severity.INFO
    assert draining.pool is not None
    assert draining.pool.session_pinning_filters == ("EXCLUDE_VARIABLE_SETS",)

    healthy = reports[world["healthy"]]
    assert [(f.rule, f.severity) for f in healthy.findings if f.severity is not Severity.OK] == []
    assert [f.rule for f in healthy.findings if f.insufficient_data] == []
    multiplexing = next(f for f in healthy.findings if f.rule == dx.MULTIPLEXING_LOST)
    assert multiplexing.figures["clients_per_connection_in_use"] == pytest.approx(400 / 50, abs=0.01)

    ghost = reports["ghost-proxy"]
    assert (ghost.status, [f.rule for f in ghost.findings]) == (NOT_FOUND_STATUS, [dx.PROXY_NOT_FOUND])


def test_given_a_proxy_without_metrics_when_checked_then_its_findings_are_insufficient_and_not_critical(
    world: dict[str, Any],
) -> None:
    factory = ProxyFactory(world["endpoint"])
    quiet = factory.create("quiet", "POSTGRESQL", debug_logging=True)
    rds, cloudwatch = clients(world["endpoint"], "rds", "cloudwatch")
    (report,) = (
        build_connection_check(config(quiet), rds_client=rds, cloudwatch_client=cloudwatch).run(world["now_ms"]).reports
    )
    assert all(f.insufficient_data for f in report.findings)
    assert report.severity is Severity.OK
