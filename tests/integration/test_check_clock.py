"""The check function's clock: what `pinwatch demo` swaps to run the real handler at a simulated minute."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pinwatch.metrics import window_end_ms
from tests.integration.aws_proxies import ProxyFactory, clients, draining_shapes, put_series
from tests.support.lambda_runtime import CONNECTION_CHECK, SCHEDULE_EVENT, check_context, load_function

pytestmark = pytest.mark.integration

REGION = "us-east-1"
HOURS_AGO = 3


@pytest.fixture
def past_incident(
    moto_endpoint: str, dynamodb_endpoint: str, summary_table: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """A proxy whose metrics show a draining pool that ended hours ago, and nothing since."""
    proxy = ProxyFactory(moto_endpoint, region=REGION).create("clock", "POSTGRESQL", debug_logging=True)
    (cloudwatch,) = clients(moto_endpoint, "cloudwatch", region=REGION)
    then_ms = window_end_ms(int(time.time() * 1000)) - HOURS_AGO * 3_600_000
    put_series(cloudwatch, proxy, then_ms, draining_shapes())
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "SUMMARY_TABLE_NAME": summary_table,
        "ALERT_TOPIC_ARN": "",
        "SLACK_WEBHOOK_SECRET_ARN": "",
        "PROXY_NAMES": proxy,
    }.items():
        monkeypatch.setenv(name, value)
    return proxy, then_ms


def test_given_metrics_from_hours_ago_when_the_clock_is_set_back_to_then_the_check_diagnoses_that_minute(
    past_incident: tuple[str, int],
) -> None:
    proxy, then_ms = past_incident
    app = load_function(CONNECTION_CHECK)
    app.clock = lambda: (then_ms + 5_000) / 1000
    summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, check_context())
    assert summary["unhealthyProxies"] == {proxy: "critical"}


def test_given_metrics_from_hours_ago_when_the_wall_clock_is_used_then_the_check_sees_no_recent_data(
    past_incident: tuple[str, int],
) -> None:
    app = load_function(CONNECTION_CHECK)
    assert app.clock is time.time
    summary: dict[str, Any] = app.lambda_handler(SCHEDULE_EVENT, check_context())
    assert summary["proxies"] == 1
    assert summary["unhealthyProxies"] == {}
